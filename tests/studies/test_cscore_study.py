"""The cscore study at scale "small": its table is the means of its per-ratio arrays, and the
C-score is the mean held-out accuracy over the ratios."""

import numpy as np
import pytest

from memjax import studies
from memjax.studies.cscore import RATIOS


@pytest.mark.slow
def test_cscore_small(small_studies, small_digits):
  res = small_studies["cscore"]
  ratios = list(RATIOS)
  assert res.columns == ("group", "examples", "mean_cscore", *[f"r={r:g}" for r in ratios])
  groups = res.column("group").tolist()
  assert groups == (["all"] + [f"class {c}" for c in range(10)]
                    + ["most regular 10%", "least regular 10%"])
  by = {r["group"]: r for r in res.rows}
  assert by["all"]["examples"] == small_digits.num_train
  assert sum(by[f"class {c}"]["examples"] for c in range(10)) == small_digits.num_train
  assert by["most regular 10%"]["examples"] == by["least regular 10%"]["examples"] == 30
  # The C-score is the mean over ratios of the held-out accuracy at each ratio ...
  by_ratio, scores = res.arrays["heldout_accuracy_by_ratio"], res.arrays["cscore"]
  assert by_ratio.shape == (9, small_digits.num_train)
  np.testing.assert_allclose(scores, np.nanmean(by_ratio, axis=0))
  # ... and every cell is the mean of its examples' values.
  labels = res.arrays["labels"]
  for c in range(10):
    row = by[f"class {c}"]
    assert row["mean_cscore"] == pytest.approx(np.nanmean(scores[labels == c]))
    for r, accuracy in zip(ratios, by_ratio):
      assert row[f"r={r:g}"] == pytest.approx(np.nanmean(accuracy[labels == c]))
  h = res.headline
  assert h["heldout_accuracy_by_ratio"] == [by["all"][f"r={r:g}"] for r in ratios]
  assert (h["models"], h["models_per_ratio"]) == (36, 4)
  # By construction: the least regular examples score below the most regular ones, and models
  # trained on 90% of the data beat those trained on 10% on held-out examples.
  assert by["least regular 10%"]["mean_cscore"] < by["all"]["mean_cscore"] < by[
      "most regular 10%"]["mean_cscore"]
  assert h["heldout_accuracy_by_ratio"][-1] > h["heldout_accuracy_by_ratio"][0] + 0.1
  assert h["spearman_cscore_vs_memorization_r0.5"]["rho"] < 0  # regular = rarely memorized
  assert by["all"]["mean_cscore"] == pytest.approx(np.nanmean(scores))


def test_cscore_study_is_registered():
  assert studies.study("cscore").function is studies.cscore
  assert "cscore" in studies.STUDIES
