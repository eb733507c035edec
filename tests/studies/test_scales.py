"""studies.scales: architecture labels, each ensemble's TrainConfig, the scales themselves."""

import pytest

import memjax
from memjax import studies
from memjax.studies import scales

MLP8 = scales.mlp(8)
VGG = ("vgg", "vgg", {"width": 4, "depth": 1})


@pytest.mark.parametrize("arch, label", [
    (("mlp", "mlp", {"widths": [64, 64]}), "mlp[64,64]"),
    (("mlp", "mlp", {"widths": [8]}), "mlp[8]"),
    (("mlp", "mlp", {}), "mlp[256,256]"),
    (("vgg", "vgg", {"width": 8, "depth": 1}), "vgg w8 d1"),
    (("vgg", "vgg", {"depth": 2, "width": 16}), "vgg w16 d2"),
    (("resnet", "resnet", {"width": 4, "depth": 2}), "resnet w4 d2"),
    (("vit", "vit", {"width": 32, "depth": 2, "heads": 2}, {"epochs": 20}), "vit w32 d2 h2"),
    (("vit", "vit", {"size": "small", "depth": 6}), "vit small d6"),
    (("vit", "vit", {"width": 16, "dropout": 0.1, "mlp_ratio": 2, "patch": 4}),
     "vit w16 drop0.1 r2 p4"),
])
def test_arch_label(arch, label):
  assert studies.arch_label(arch) == label


def test_arch_config_applies_the_arch_recipe():
  base = memjax.TrainConfig(batch_size=32, learning_rate=0.3, epochs=9)
  recipe = {"epochs": 7, "learning_rate": 0.05, "batch_size": 16}
  vit = ("vit", "vit", {"width": 16}, recipe)
  cfg = scales.arch_config(base, vit, 4, None, 1, default_epochs=15)
  assert (cfg.model, cfg.model_kwargs, cfg.num_models, cfg.seed) == ("vit", {"width": 16}, 4, 1)
  assert (cfg.epochs, cfg.learning_rate, cfg.batch_size) == (7, 0.05, 16)  # the recipe's
  assert recipe == {"epochs": 7, "learning_rate": 0.05, "batch_size": 16}  # left alone
  # Explicit epochs win over the recipe's; eval_every is the study's.
  cfg = scales.arch_config(base, vit, 4, 3, 1, eval_every=1, default_epochs=15)
  assert (cfg.epochs, cfg.eval_every, cfg.learning_rate) == (3, 1, 0.05)
  # Without a recipe: the scale's epochs (else the base's) and the base's other fields.
  cfg = scales.arch_config(base, MLP8, 4, None, 1, default_epochs=15)
  assert (cfg.epochs, cfg.learning_rate, cfg.batch_size) == (15, 0.3, 32)
  assert scales.arch_config(base, MLP8, 4, None, 1).epochs == 9


def test_epochs_text_names_a_recipe_s_own_epochs():
  vit = ("vit", "vit", {"width": 16}, {"epochs": 20, "batch_size": 32})
  assert scales.epochs_text([MLP8, VGG, vit], 15, None) == "15 epochs (vit: 20, its recipe)"
  assert scales.epochs_text([vit, vit], 15, None) == "20 epochs"
  assert scales.epochs_text([MLP8, ("vit", "vit", {}, {"batch_size": 8})], 15, None) == (
      "15 epochs")
  assert scales.epochs_text([MLP8, vit], 15, 7) == "7 epochs"  # explicit epochs win


@pytest.mark.parametrize("scale, shape", [("default", (8, 8, 1)), ("large", (32, 32, 3))])
def test_scales_have_a_vit_family_with_its_recipe(scale, shape):
  from flax import nnx
  from memjax import models
  vits = [a for a in studies.SCALES[scale].families if a[0] == "vit"]
  assert len(vits) >= 2
  sizes = [models.count_params(nnx.state(nnx.eval_shape(
      lambda a=a: models.build("vit", shape, 10, nnx.Rngs(0), **a[2])), nnx.Param)) for a in vits]
  assert sizes == sorted(set(sizes))  # ordered by size, all different
  recipe = {k: v for k, v in memjax.config.VIT_DIGITS_RECIPE.items()
            if k not in ("model", "model_kwargs")}
  for arch in vits:
    cfg = scales.arch_config(memjax.TrainConfig(), arch, 8, None, 0, default_epochs=3)
    assert {k: getattr(cfg, k) for k in recipe if k != "epochs"} == {
        k: v for k, v in recipe.items() if k != "epochs"}


def test_scales_are_consistent():
  assert set(studies.SCALES) == {"small", "default", "large"}
  assert tuple(studies.FUNCTIONS) == studies.STUDIES
  for sc in studies.SCALES.values():
    small, large = sc.transient_pair
    assert 0 <= small < large < len(sc.families)
    assert min(sc.models, sc.epochs, sc.epochs_models, sc.epochs_epochs) >= 1
    assert 0 <= sc.label_fraction and 0 <= sc.input_fraction
    assert sc.label_fraction + sc.input_fraction < 1
