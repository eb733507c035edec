import numpy as np
import pytest

from memjax import design
from memjax.errors import MemjaxError


def test_balanced_every_example_in_exactly_round_rm_models():
  for m, r in ((16, 0.5), (10, 0.3), (7, 0.5)):
    keep = design.balanced(m, 500, r, seed=1)
    assert keep.dtype == bool and keep.shape == (m, 500)
    assert (keep.sum(0) == round(r * m)).all()
    assert abs(keep.sum(1).mean() - r * 500) < 1e-9 + 500 * 0.02 * m  # rows hold ~ r*N


def test_bernoulli_rate_and_independence():
  keep = design.bernoulli(200, 2000, 0.3, seed=0)
  assert abs(keep.mean() - 0.3) < 0.005
  assert keep.sum(0).std() > 1  # columns vary, unlike balanced


def test_seeded_and_reproducible():
  a = design.make("balanced", 8, 100, 0.5, seed=3)
  b = design.make("balanced", 8, 100, 0.5, seed=3)
  c = design.make("balanced", 8, 100, 0.5, seed=4)
  np.testing.assert_array_equal(a.keep, b.keep)
  assert (a.keep != c.keep).any()


def test_multi_ratio_groups():
  d = design.make("balanced", 30, 400, (0.2, 0.5, 0.8), seed=0)
  assert d.groups.tolist() == [0] * 10 + [1] * 10 + [2] * 10
  for g, r in enumerate((0.2, 0.5, 0.8)):
    assert (d.keep[d.groups == g].sum(0) == round(r * 10)).all()


def test_extend_keeps_rows_and_balance():
  d = design.make("balanced", 8, 300, 0.5, seed=0)
  grown = design.extend(d, 16)
  np.testing.assert_array_equal(grown.keep[:8], d.keep)
  assert (grown.keep.sum(0) == 8).all() and grown.block_starts == (0, 8)
  assert (grown.keep[8:] != d.keep).any()
  with pytest.raises(MemjaxError, match="shrink"):
    design.extend(d, 4)


def test_custom_design_and_errors():
  keep = ~np.eye(5, dtype=bool)
  d = design.custom(keep, 5)
  assert d.kind == "custom" and d.num_models == 5
  with pytest.raises(MemjaxError, match="cannot be grown"):
    design.extend(d, 10)
  with pytest.raises(MemjaxError, match="boolean"):
    design.custom(keep.astype(int), 5)
  with pytest.raises(MemjaxError, match="no training example"):
    design.custom(np.eye(5, dtype=bool) & False, 5)
  with pytest.raises(MemjaxError, match="outside"):
    design.make("balanced", 4, 10, 1.5, seed=0)
  with pytest.raises(MemjaxError, match="Unknown design"):
    design.make("stratified", 4, 10, 0.5, seed=0)
