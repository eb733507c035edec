"""The model_size study at scale "small", with an MLP and a ViT family."""

import math

import numpy as np
import pytest

from memjax import studies
from memjax.studies import scales
from study_checks import assert_png

MLP8 = scales.mlp(8)


@pytest.mark.slow
def test_model_size_small(small_studies, small_digits):
  res = small_studies["model_size"]
  assert res.name == "model_size"
  assert res.columns == ("family", "model", "params", "models", "epochs", "train_acc",
                         "test_acc", "gap", "memorized", "memorized_se", "null_memorized",
                         "mean_score", "sd_score", "wall_s")
  assert res.column("model").tolist() == ["mlp[8]", "mlp[64]"]
  d, c = int(np.prod(small_digits.feature_shape)), small_digits.num_classes
  # One hidden layer: d*w + w weights and biases in, w*c + c out.
  assert res.column("params").tolist() == [d * w + w + w * c + c for w in (8, 64)]
  for r in res.rows:
    assert (r["family"], r["models"], r["epochs"]) == ("mlp", 8, 10)
    assert 0 <= r["test_acc"] <= 1 and 0 <= r["train_acc"] <= 1
    assert r["gap"] == pytest.approx(r["train_acc"] - r["test_acc"])
    assert isinstance(r["memorized"], int) and 0 <= r["memorized"] <= small_digits.num_train
    assert r["memorized_se"] > 0 and r["null_memorized"] >= 0
    assert -1 <= r["mean_score"] <= 1 and r["sd_score"] >= 0
  fam = res.headline["families"]["mlp"]
  assert (fam["smallest"], fam["largest"]) == ("mlp[8]", "mlp[64]")
  assert fam["memorized_by_size"] == res.column("memorized").tolist()
  change = fam["memorized_largest"] - fam["memorized_smallest"]
  noise = 2 * math.hypot(*res.column("memorized_se"))
  assert fam["direction"] == ("flat" if abs(change) <= noise
                              else "decreases" if change < 0 else "increases")
  assert "N=300" in res.description and "8 models" in res.description


@pytest.mark.slow
def test_model_size_with_a_vit_family(small_digits, tmp_path):
  vit = ("vit", "vit", {"width": 8, "depth": 1, "heads": 2}, {"epochs": 2, "batch_size": 64})
  studies.clear_cache()
  try:
    res = studies.model_size(small_digits, scale="small", families=[MLP8, vit], models=4)
  finally:
    studies.clear_cache()
  assert res.column("model").tolist() == ["mlp[8]", "vit w8 d1 h2"]
  assert res.column("epochs").tolist() == [10, 2]  # the scale's, the vit recipe's
  assert "10 epochs (vit: 2, its recipe)" in res.description
  assert set(res.headline["families"]) == {"mlp", "vit"}
  res.save(str(tmp_path))
  assert_png(tmp_path / "plot.png")
