"""The epochs study: the stage detector on known curves, the study at scale "small"."""

import math

import numpy as np
import pytest

from memjax import studies
from memjax.errors import MemjaxError


def test_detect_stages_none_rise_fall():
  ep = [1, 2, 3, 4, 5, 6, 7, 8]
  counts = [0, 0, 1, 5, 12, 20, 14, 10]  # none while <= 2 (10% of 20), peak at epoch 6
  s = studies.detect_stages(ep, counts, counts_se=[1.0] * 8)
  assert s["stage"] == ["none"] * 3 + ["rise"] * 3 + ["fall"] * 2
  assert (s["none"], s["rise"], s["fall"], s["plateau"]) == ([1, 3], [4, 6], [7, 8], None)
  assert (s["peak_epoch"], s["peak_count"], s["final_count"]) == (6, 20.0, 10.0)
  assert s["drop"] == 10.0 and s["drop_se"] == pytest.approx(math.sqrt(2))
  assert s["fall_detected"] is True
  # The same drop within 2 combined SE is a plateau, not a fall.
  noisy = studies.detect_stages(ep, counts, counts_se=[6.0] * 8)
  assert noisy["stage"][6:] == ["plateau"] * 2
  assert noisy["fall"] is None and noisy["plateau"] == [7, 8] and not noisy["fall_detected"]
  # Without SE only the relative drop (>= 5% of the peak) matters.
  assert studies.detect_stages(ep, counts)["fall_detected"]
  assert np.isnan(studies.detect_stages(ep, counts)["drop_se"])


def test_detect_stages_noise_floor_counts_as_none():
  # The digits curve of the epochs study: epoch 1's 50 "memorized" examples are estimation noise
  # (the permutation null gives 25 and the SE is 17), so epochs 1-2 are the none stage.
  ep = [1, 2, 3, 4, 5]
  counts, se, null = [50, 17, 29, 56, 30], [16.8, 5.8, 5.0, 6.7, 5.0], [24.75, 5.5, 3, 2.5, 2]
  plain = studies.detect_stages(ep, counts, se)
  assert plain["none"] is None and plain["rise"] == [1, 4]
  s = studies.detect_stages(ep, counts, se, null_counts=null)
  assert s["stage"] == ["none", "none", "rise", "rise", "fall"]
  assert s["none"] == [1, 2] and s["rise"] == [3, 4] and s["fall"] == [5, 5]


def test_detect_stages_without_fall():
  rising = studies.detect_stages([2, 4, 6, 8, 10], [0, 3, 6, 9, 12])  # epochs in steps of 2
  assert rising["stage"] == ["none", "rise", "rise", "rise", "rise"]
  assert rising["none"] == [2, 2] and rising["rise"] == [4, 10]
  assert rising["fall"] is None and rising["plateau"] is None
  assert rising["peak_epoch"] == 10 and rising["drop"] == 0.0 and not rising["fall_detected"]
  flat = studies.detect_stages([1, 2, 3, 4], [0, 10, 10, 10])  # first peak, then level
  assert flat["stage"] == ["none", "rise", "plateau", "plateau"]
  assert flat["peak_epoch"] == 2 and flat["plateau"] == [3, 4] and not flat["fall_detected"]
  small_drop = studies.detect_stages([1, 2, 3], [0, 100, 97])  # 3% < min_drop 5%
  assert small_drop["stage"] == ["none", "rise", "plateau"]
  assert studies.detect_stages([1, 2, 3], [0, 100, 94])["stage"][-1] == "fall"
  early = studies.detect_stages([1, 2, 3], [30, 20, 10])  # peak first: no none stage
  assert early["stage"] == ["rise", "fall", "fall"] and early["none"] is None
  zero = studies.detect_stages([1, 2, 3], [0, 0, 0])
  assert zero["stage"] == ["none"] * 3
  assert zero["rise"] is None and zero["peak_count"] == 0.0 and not zero["fall_detected"]


def test_detect_stages_errors():
  with pytest.raises(MemjaxError, match="equal-length"):
    studies.detect_stages([1, 2, 3], [1, 2])
  with pytest.raises(MemjaxError, match="non-empty"):
    studies.detect_stages([], [])
  with pytest.raises(MemjaxError, match="1-D"):
    studies.detect_stages(np.ones((2, 2)), np.ones((2, 2)))


@pytest.mark.slow
def test_epochs_small(small_studies):
  res = small_studies["epochs"]
  assert res.columns == ("epoch", "memorized", "memorized_se", "null_memorized", "mean_score",
                         "train_acc", "test_acc", "gap", "stage")
  assert res.column("epoch").tolist() == list(range(1, 11))
  counts = res.column("memorized")
  assert all(isinstance(r["memorized"], int) and r["memorized"] >= 0 for r in res.rows)
  assert ((res.column("test_acc") >= 0) & (res.column("test_acc") <= 1)).all()
  assert ((res.column("train_acc") >= 0) & (res.column("train_acc") <= 1)).all()
  assert set(res.column("stage")) <= {"none", "rise", "fall", "plateau"}
  # The stages are detect_stages of the table's own columns.
  stages = studies.detect_stages(res.column("epoch"), counts, res.column("memorized_se"))
  assert res.column("stage").tolist() == stages["stage"]
  h = res.headline
  assert h["peak_epoch"] == int(res.column("epoch")[np.argmax(counts)])
  assert (h["peak_count"], h["final_count"]) == (counts.max(), counts[-1])
  assert (h["model"], h["models"]) == ("mlp[64]", 8)
  # Training on own subsets: the last epoch fits its training subsets well.
  assert res.rows[-1]["train_acc"] > 0.9
