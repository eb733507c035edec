"""The gap study at scale "small": the shared ensembles and the Pearson r."""

import numpy as np
import pytest



@pytest.mark.slow
def test_gap_small(small_studies):
  res, size = small_studies["gap"], small_studies["model_size"]
  assert res.columns == ("family", "model", "params", "train_acc", "test_acc", "gap",
                         "memorized", "memorized_se", "mean_score")
  assert res.column("model").tolist() == ["mlp[8]", "mlp[16]", "mlp[64]"]
  assert (np.diff(res.column("params")) > 0).all()
  # The shared ensembles give model_size's numbers exactly.
  for r in (res.rows[0], res.rows[2]):
    ref = next(s for s in size.rows if s["model"] == r["model"])
    assert all(r[k] == ref[k] for k in res.columns)
  overall = res.headline["pearson_gap_vs_memorized"]
  assert overall["n"] == 3 == res.headline["points"]
  assert overall["r"] == pytest.approx(np.corrcoef(res.column("gap"),
                                                   res.column("memorized"))[0, 1])
  assert res.headline["per_family"]["mlp"] == pytest.approx(overall, nan_ok=True)
  assert res.headline["pearson_gap_vs_mean_score"]["r"] == pytest.approx(
      np.corrcoef(res.column("gap"), res.column("mean_score"))[0, 1])
