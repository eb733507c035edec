"""Architectures and scales: which ensembles a study trains, and the TrainConfig of each.

An architecture (:data:`Arch`) is ``(family, model, model kwargs)``, optionally with a 4th
element, the architecture's own training recipe (TrainConfig fields applied over the study's
config, e.g. the ViT's :data:`memjax.config.VIT_DIGITS_RECIPE`). A :class:`Scale` says how many
models, epochs and which architectures every study uses; :data:`SCALES` holds ``small`` (seconds,
the tests), ``default`` (minutes on the embedded digits on a 2-core CPU) and ``large`` (for
accelerators and CIFAR-sized data; not run on the CPU).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from memjax.config import VIT_DIGITS_RECIPE, TrainConfig

IMAGE_MODELS = ("cnn", "vgg", "resnet", "vit")  # families that need image inputs

# (family, model name, model kwargs[, TrainConfig overrides]): the optional 4th element is the
# architecture's own training recipe (e.g. the ViT's), applied over the study's base config.
Arch = tuple[str, str, dict] | tuple[str, str, dict, dict]


@dataclasses.dataclass(frozen=True)
class Scale:
  """How big a study is.

  Attributes:
    models: M, models per ensemble (model_size, transient, gap, natural_vs_artificial).
    epochs: training epochs of those ensembles.
    families: the architectures of model_size / gap, ordered by size within each family (a
      family may bring its own recipe as an Arch's 4th element, see :func:`arch_config`).
    epochs_arch: the architecture of the epochs study (and the temporal transient study), and
      of mitigation, onion and noisy_labels (which train ``models`` of it for ``epochs``).
    epochs_models, epochs_epochs: its ensemble size and epochs (evaluated every epoch).
    transient_pair: indices into ``families`` of the small and the large model (model-wise).
    artificial_archs: the sizes of the natural_vs_artificial study (evaluated every epoch).
    label_fraction, input_fraction: fractions of the training set given a wrong label / replaced
      by Gaussian noise with a random label in natural_vs_artificial.
    overrides: other TrainConfig fields (e.g. a smaller batch for tiny data).
    cscore_models: models of the cscore study, split evenly over its 9 subset ratios (it trains
      ``epochs_arch`` for ``epochs`` epochs).
  """

  models: int
  epochs: int
  families: tuple[Arch, ...]
  epochs_arch: Arch
  epochs_models: int
  epochs_epochs: int
  transient_pair: tuple[int, int]
  artificial_archs: tuple[Arch, ...]
  label_fraction: float = 0.05
  input_fraction: float = 0.05
  overrides: tuple[tuple[str, Any], ...] = ()
  cscore_models: int = 450


def mlp(*widths: int) -> Arch:
  """An MLP with these hidden widths: ``mlp(64, 64)`` is
  ``("mlp", "mlp", {"widths": [64, 64]})``."""
  return ("mlp", "mlp", {"widths": list(widths)})


def vit(*, recipe: dict[str, Any] = VIT_DIGITS_RECIPE, drop: Sequence[str] = (),
        **kwargs) -> Arch:
  """A ViT with knobs ``kwargs`` trained with ``recipe``'s TrainConfig fields, less its model
  and model kwargs (the arch's) and the fields in ``drop`` (left to the study)."""
  leave = {"model", "model_kwargs", *drop}
  return ("vit", "vit", kwargs, {k: v for k, v in recipe.items() if k not in leave})


def _conv(family: str, width: int, depth: int) -> Arch:
  return (family, family, {"width": width, "depth": depth})


SCALES: dict[str, Scale] = {
    # Seconds on 300 digits: the tests.
    "small": Scale(
        models=8, epochs=10, families=(mlp(8), mlp(64)),
        epochs_arch=mlp(64), epochs_models=8, epochs_epochs=10, transient_pair=(0, 1),
        artificial_archs=(mlp(8), mlp(64)), label_fraction=0.1, input_fraction=0.1,
        overrides=(("batch_size", 32),), cscore_models=36),
    # Minutes on the embedded digits (1,437 training images) on a 2-core CPU: the report.
    "default": Scale(
        models=48, epochs=15,
        families=(mlp(16, 16), mlp(64, 64), mlp(256, 256), mlp(512, 512),
                  _conv("vgg", 4, 1), _conv("vgg", 8, 1), _conv("vgg", 16, 1), _conv("vgg", 16, 2),
                  _conv("resnet", 4, 1), _conv("resnet", 4, 2),
                  # ViTs train with their own recipe (config.VIT_DIGITS_RECIPE, its epochs too).
                  vit(width=16, depth=1, heads=2), vit(width=32, depth=2, heads=2),
                  vit(width=64, depth=2, heads=4)),
        epochs_arch=mlp(256, 256), epochs_models=64, epochs_epochs=30, transient_pair=(0, 2),
        artificial_archs=(mlp(16, 16), mlp(64, 64), mlp(256, 256))),
    # For accelerators and CIFAR-sized data (not run on the CPU).
    "large": Scale(
        models=256, epochs=60,
        families=(mlp(64, 64), mlp(512, 512), mlp(2048, 2048),
                  _conv("vgg", 16, 1), _conv("vgg", 32, 1), _conv("vgg", 64, 2),
                  _conv("resnet", 16, 1), _conv("resnet", 16, 2), _conv("resnet", 16, 3),
                  # The digits ViT recipe for the scale's epochs (untried on CIFAR-sized data),
                  # 8x8 patches of 4x4 pixels at 32x32, up to ViT-Ti.
                  vit(width=64, depth=4, heads=4, drop=("epochs",)),
                  vit(width=128, depth=6, heads=4, drop=("epochs",)),
                  vit(size="tiny", drop=("epochs",))),
        epochs_arch=_conv("vgg", 32, 1), epochs_models=256,
        epochs_epochs=100, transient_pair=(3, 8),
        artificial_archs=(mlp(64, 64), mlp(512, 512), mlp(2048, 2048)), cscore_models=2700),
}

_KNOB_ABBREVIATIONS = {"dropout": "drop", "mlp_ratio": "r"}  # else the knob's first letter


def arch_label(arch: Arch) -> str:
  """A short name: ``mlp[64,64]``, ``vgg w8 d1``, ``resnet w4 d2``, ``vit w32 d2 h2``,
  ``vit small d6`` (a ViT size first, then its overridden knobs). The recipe is not named."""
  _, model, kw = arch[:3]
  if model == "mlp":
    return f"mlp[{','.join(str(w) for w in kw.get('widths', (256, 256)))}]"
  kw = dict(kw)
  size = [str(kw.pop("size"))] if kw.get("size") is not None else []
  parts = [f"{_KNOB_ABBREVIATIONS.get(k, k[0])}{v}" for k, v in sorted(kw.items())]
  return " ".join([model, *size, *sorted(parts, key=lambda p: p[0] != "w")])


def arch_config(base: TrainConfig, arch: Arch, models: int, epochs: int | None, seed: int,
                eval_every: int = 0, default_epochs: int | None = None) -> TrainConfig:
  """The TrainConfig of one architecture's ensemble.

  Fields, later ones winning: ``base`` (the study's config with the scale's overrides), the
  arch's own recipe (its optional 4th element), then the arch's model and kwargs and the study's
  ``models``, ``seed`` and ``eval_every``. Epochs: ``epochs`` if given (the caller's explicit
  value), else the recipe's, else ``default_epochs`` (the scale's), else ``base.epochs``. A recipe
  with a misspelt field fails in TrainConfig.replace, naming the close matches.
  """
  _, model, kw, *rest = arch
  recipe = dict(rest[0]) if rest else {}
  epochs = epochs or recipe.pop("epochs", None) or default_epochs or base.epochs
  return base.replace(**recipe).replace(model=model, model_kwargs=kw, num_models=models,
                                        epochs=epochs, seed=seed, eval_every=eval_every)


def epochs_text(archs: Sequence[Arch], default: int, epochs: int | None) -> str:
  """"15 epochs", or "15 epochs (vit: 20, its recipe)" when a family's recipe sets its own."""
  if epochs:
    return f"{epochs} epochs"
  each = [a[3].get("epochs", default) if len(a) > 3 else default for a in archs]
  if len(set(each)) == 1:
    return f"{each[0]} epochs"
  own = {a[0]: e for a, e in zip(archs, each) if e != default}
  return f"{default} epochs ({', '.join(f'{f}: {e}' for f, e in own.items())}, its recipe)"
