"""Estimators against plain numpy loops, hand-computed values and known-by-construction data."""

import numpy as np
import pytest

import memjax
from memjax import estimators
from memjax.errors import MemjaxError


def reference_memorization(correct, keep):
  out = np.full(keep.shape[1], np.nan)
  se = np.full(keep.shape[1], np.nan)
  for i in range(keep.shape[1]):
    a, b = correct[keep[:, i], i].astype(float), correct[~keep[:, i], i].astype(float)
    if len(a) and len(b):
      out[i] = a.mean() - b.mean()
    if len(a) > 1 and len(b) > 1:
      se[i] = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
  return out, se


def random_records(m=40, n=60, seed=0, prob=False):
  rng = np.random.default_rng(seed)
  keep = rng.random((m, n)) < 0.5
  p = rng.random(n)
  correct = rng.random((m, n)) < np.where(keep, 0.5 + p / 2, p)
  if prob:
    correct = np.clip(correct + rng.normal(0, 0.1, (m, n)), 0, 1)
  return correct, keep


@pytest.mark.parametrize("prob", [False, True])
def test_memorization_matches_numpy_loop(prob):
  correct, keep = random_records(prob=prob)
  keep[:, 0] = True  # no OUT models -> NaN
  keep[:, 1] = False  # no IN models -> NaN
  ref, ref_se = reference_memorization(correct, keep)
  np.testing.assert_allclose(memjax.memorization(correct, keep), ref, equal_nan=True)
  np.testing.assert_allclose(memjax.memorization_se(correct, keep), ref_se, equal_nan=True)
  assert np.isnan(memjax.memorization(correct, keep)[:2]).all()


def test_accepts_jax_arrays():
  import jax.numpy as jnp
  correct, keep = random_records()
  np.testing.assert_allclose(memjax.memorization(jnp.asarray(correct), jnp.asarray(keep)),
                             memjax.memorization(correct, keep))


def test_cscore_and_groups_match_loops():
  correct, keep = random_records(m=60)
  ref = np.array([correct[~keep[:, i], i].mean() for i in range(keep.shape[1])])
  np.testing.assert_allclose(memjax.cscore(correct, keep), ref)
  groups = np.repeat([0, 1, 2], 20)
  ref_g = np.array([np.mean([correct[groups == g][~keep[groups == g][:, i], i].mean()
                             for g in range(3)]) for i in range(keep.shape[1])])
  np.testing.assert_allclose(memjax.cscore(correct, keep, groups), ref_g)
  se_ref = np.array([correct[~keep[:, i], i].std(ddof=1) / np.sqrt((~keep[:, i]).sum())
                     for i in range(keep.shape[1])])
  np.testing.assert_allclose(memjax.cscore_se(correct, keep), se_ref)


def test_influence_matches_loop():
  rng = np.random.default_rng(1)
  keep = rng.random((30, 12)) < 0.5
  correct_test = rng.random((30, 7)) < 0.6
  infl = memjax.influence(correct_test, keep)
  assert infl.shape == (12, 7)
  for i in range(12):
    for j in range(7):
      expected = (correct_test[keep[:, i], j].mean() - correct_test[~keep[:, i], j].mean())
      np.testing.assert_allclose(infl[i, j], expected)


def test_known_by_construction():
  # Example 0 is right only when trained on (memorized: 1), example 1 always right (0),
  # example 2 right half of the time regardless of training (0 in expectation).
  m = 200
  keep = np.zeros((m, 3), bool)
  keep[::2] = True
  correct = np.stack([keep[:, 0], np.ones(m, bool), np.arange(m) % 4 < 2], axis=1)
  mem = memjax.memorization(correct, keep)
  np.testing.assert_allclose(mem, [1.0, 0.0, 0.0])
  np.testing.assert_allclose(memjax.cscore(correct, keep), [0.0, 1.0, 0.5])
  assert memjax.count_memorized(mem) == 1
  lo, hi = memjax.memorization_ci(correct, keep)
  assert lo[2] < 0 < hi[2]


def test_standard_error_is_calibrated():
  # With true memorization 0.3, the 95% interval covers it about 95% of the time.
  rng = np.random.default_rng(0)
  m, n = 64, 4000
  keep = rng.random((m, n)) < 0.5
  correct = rng.random((m, n)) < np.where(keep, 0.9, 0.6)
  lo, hi = memjax.memorization_ci(correct, keep)
  coverage = np.mean((lo <= 0.3) & (0.3 <= hi))
  assert 0.92 < coverage < 0.98


def test_count_memorized_ignores_nan():
  assert memjax.count_memorized([0.1, 0.25, np.nan, 0.9]) == 2
  # The mask behind it keeps the shape (e.g. [T, N] histories), NaN never memorized.
  mask = estimators.is_memorized(np.array([[0.1, 0.25], [np.nan, 0.9]], np.float32))
  assert mask.tolist() == [[False, True], [False, True]]
  assert memjax.count_memorized([0.1, 0.9], threshold=0.05) == 2


@pytest.mark.parametrize("correct, keep, message", [
    (np.ones((3, 4)), np.ones((3, 4)) * 0.5, "boolean"),
    (np.ones((2, 4)), np.ones((3, 4), bool), "same number of models"),
    (np.ones((3, 4)) * 2, np.ones((3, 4), bool), r"\[0, 1\]"),
    (np.ones(4), np.ones((3, 4), bool), "same number of models"),
])
def test_bad_inputs(correct, keep, message):
  with pytest.raises(MemjaxError, match=message):
    memjax.memorization(correct, keep)


def test_groups_validation():
  correct, keep = random_records()
  with pytest.raises(MemjaxError, match="groups"):
    estimators.cscore(correct, keep, groups=np.zeros(3, int))
