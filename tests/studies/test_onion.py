"""The onion study: removing examples and ranking them without training; at scale "small", the
rows against the arrays they come from."""

import numpy as np
import pytest

from memjax import studies
from memjax.errors import MemjaxError
from memjax.studies.onion import ranking


def test_remove_examples_keeps_the_others_in_order(small_digits):
  removed = np.zeros(300, bool)
  removed[[0, 5, 299]] = True
  data = studies.remove_examples(small_digits, removed, "top")
  assert data.num_train == 297 and data.num_test == small_digits.num_test
  np.testing.assert_array_equal(data.x_train, small_digits.x_train[~removed])
  np.testing.assert_array_equal(data.y_train, small_digits.y_train[~removed])
  np.testing.assert_array_equal(data.x_test, small_digits.x_test)
  assert data.spec is None and data.name.startswith("digits300-minus3top-")
  # Another subset of the same size has another name (saved runs never mix them up).
  other = removed.copy()
  other[[5, 6]] = [False, True]
  assert studies.remove_examples(small_digits, other, "top").name != data.name
  assert studies.remove_examples(small_digits, removed, "top").name == data.name
  with pytest.raises(MemjaxError, match=r"removed has shape \(3,\); it needs one entry per"):
    studies.remove_examples(small_digits, removed[:3], "top")
  with pytest.raises(MemjaxError, match="Every training example would be removed"):
    studies.remove_examples(small_digits, np.ones(300, bool), "top")


def test_ranking_most_vulnerable_first():
  assert ranking([0.5, 0.9, np.nan, 0.9, 0.1]).tolist() == [1, 3, 0, 4, 2]


@pytest.mark.parametrize("kwargs, match", [
    (dict(fractions=(0.6,)), r"fractions=\[0.6\]; use fractions of the training set in"),
    (dict(fractions=()), "fractions=\\[\\]"),
    (dict(attack="rmia_offline"), "RMIA needs population points"),
])
def test_bad_options_fail_before_training(small_digits, kwargs, match):
  cache = studies.RunCache()
  with pytest.raises(MemjaxError, match=match):
    studies.onion(small_digits, scale="small", cache=cache, **kwargs)
  assert len(cache) == 0


@pytest.mark.slow
def test_onion_small(small_studies):
  res, size = small_studies["onion"], small_studies["model_size"]
  assert res.columns == ("fraction", "k", "removed", "remaining", "test_acc", "attack_auc",
                         "tpr@0.001", "compared", "mean_before", "mean_after", "layer",
                         "layer_before", "layer_after", "layer_in_top", "top_before",
                         "top_after")
  assert res.column("removed").tolist() == ["most vulnerable", "random"]
  assert res.column("k").tolist() == [30, 30] and res.column("remaining").tolist() == [270, 270]
  before = res.arrays["before"]
  top, rand = res.arrays["after_top_0"], res.arrays["after_random_0"]
  order = ranking(before)
  # The 30 most vulnerable are gone from the first retraining, 30 others from the control.
  np.testing.assert_array_equal(np.flatnonzero(np.isnan(top)), np.sort(order[:30]))
  assert np.isnan(rand).sum() == 30 and not np.array_equal(np.isnan(rand), np.isnan(top))
  common = np.isfinite(top) & np.isfinite(rand)
  layer = np.zeros(300, bool)
  layer[order[30:60]] = True
  for row, after in zip(res.rows, (top, rand)):
    assert row["compared"] == common.sum() and row["layer"] == (layer & common).sum()
    assert row["mean_before"] == pytest.approx(before[common].mean())
    assert row["mean_after"] == pytest.approx(after[common].mean())
    assert row["layer_after"] == pytest.approx(after[layer & common].mean())
    assert 0 <= row["layer_in_top"] <= row["layer"]
    assert row["top_after"] >= row["mean_after"] and 0 <= row["test_acc"] <= 1
  h = res.headline["by_fraction"]["0.1"]
  diff = (top - rand)[layer & common]
  assert h["effect"] == pytest.approx(diff.mean())
  assert h["effect_se"] == pytest.approx(diff.std(ddof=1) / np.sqrt(diff.size))
  assert h["exposed"] == (h["effect"] > 2 * h["effect_se"])
  assert res.headline["onion_effect"] == h["exposed"]
  # The first ensemble is model_size's mlp[64] (the same recipe): shared, not retrained.
  assert res.headline["before"]["test_acc"] == pytest.approx(
      next(r["test_acc"] for r in size.rows if r["model"] == "mlp[64]"))
