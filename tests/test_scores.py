"""scores: the score table's intervals, its ratio groups and C-score, and the ranking."""

import types

import numpy as np
import pytest

from memjax import estimators, scores
from memjax.errors import MemjaxError


def fake_records(correct, keep, groups):
  m, n = keep.shape
  return types.SimpleNamespace(
      keep=keep, correct=correct, groups=groups, train_labels=np.zeros(n, np.int32),
      train_loss=np.zeros((1, m, n), np.float32), measures=())


def test_one_ratio_has_intervals_and_no_cscore():
  rng = np.random.default_rng(0)
  keep = rng.random((64, 200)) < 0.5
  correct = rng.random(keep.shape) < np.where(keep, 0.9, 0.6)
  correct[:, 0] = keep[:, 0]  # example 0: right exactly when trained on, memorization 1
  table = scores.table(fake_records(correct, keep, np.zeros(64, np.int32)))
  assert "cscore" not in table and "cscore_se" not in table
  mem, low, high = table["memorization"], table["memorization_lo"], table["memorization_hi"]
  np.testing.assert_array_equal(mem, estimators.memorization(correct, keep))
  assert (low <= mem).all() and (mem <= high).all()
  assert mem[0] == 1.0 and high[0] == 1.0 and 0.8 < low[0] < 0.9  # not a [1, 1] point
  assert table["memorization_se"][0] > 0
  n_out = (~keep).sum(0)
  expected = estimators.proportion_ci((correct & ~keep).sum(0), n_out)
  np.testing.assert_allclose(table["out_accuracy_lo"], expected[0])
  np.testing.assert_allclose(table["out_accuracy_hi"], expected[1])


def test_several_ratios_average_within_ratio_estimates_and_report_cscores():
  # The null world: correctness depends on the model's subset ratio, not on membership.
  rng = np.random.default_rng(1)
  ratios = np.linspace(0.1, 0.9, 9)
  groups = np.repeat(np.arange(9), 30).astype(np.int32)
  keep = rng.random((270, 2000)) < ratios[groups][:, None]
  correct = rng.random(keep.shape) < (0.6 + 0.25 * ratios[groups])[:, None]
  table = scores.table(fake_records(correct, keep, groups))
  pooled = np.nanmean(estimators.memorization(correct, keep))
  assert pooled > 0.05  # pooling all ratios makes IN models look better: a bias
  assert abs(np.nanmean(table["memorization"])) < 0.005
  np.testing.assert_array_equal(table["cscore"], estimators.cscore(correct, keep, groups))


def test_most_memorized_by_score_or_lower_bound():
  columns = {"memorization": np.array([0.9, 0.95, np.nan, 0.5]),
             "memorization_lo": np.array([0.7, 0.4, np.nan, 0.45]),
             "memorization_se": np.array([0.05, 0.2, np.nan, 0.02])}
  assert scores.most_memorized(columns, 3).tolist() == [1, 0, 3]
  assert scores.most_memorized(columns, 3, "lower").tolist() == [0, 3, 1]
  with pytest.raises(MemjaxError, match="rank='best'"):
    scores.most_memorized(columns, 3, "best")
