"""What every study takes: the data, the scale, the ensembles' size and training, the threshold.

A :class:`StudySettings` is built once (by ``memjax study``, or from the keyword arguments of
``memjax.studies.model_size(data, scale=..., models=...)`` and its siblings) and handed to a
study's ``run``; the study adds only its own options (which families, which fractions).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Sequence

import numpy as np

from memjax import estimators
from memjax.config import TrainConfig
from memjax.data import Dataset
from memjax.errors import MemjaxError
from memjax.studies.cache import SHARED, RunCache
from memjax.studies.scales import IMAGE_MODELS, SCALES, Arch, Scale, arch_label

THRESHOLD = estimators.DEFAULT_THRESHOLD  # memorized: score >= 0.25, as in the paper
PAPER_KEEP_RATIO = 0.7  # Feldman & Zhang's subset ratio, and the paper's


@dataclasses.dataclass(frozen=True)
class StudySettings:
  """The settings shared by every study.

  Attributes:
    data: dataset spec (``"digits"``, ``"npz:PATH"``, ``"tfds:NAME"``) or a
      :class:`memjax.Dataset`.
    scale: a key of :data:`memjax.studies.SCALES`: ``small``, ``default`` or ``large``.
    models: models per ensemble, overriding the scale's (None: the scale's).
    epochs: training epochs, overriding the scale's and an architecture's own recipe.
    seed: seed of the designs and the training.
    config: base TrainConfig for the other training fields (e.g.
      ``memjax.PRESETS["back_to_fundamentals"]``); None: ``TrainConfig()``.
    threshold: an example is memorized when its score is at least this.
    keep_ratio: the fraction of the training set each model trains on: 0.7 by default, Feldman
      & Zhang's and the paper's (memorization is defined relative to it: a smaller ratio leaves
      each example's OUT models with less data, and inflates the scores); None keeps
      ``config``'s. A ``config`` with several ``keep_ratios`` keeps them.
    progress: progress bars while training.
    log: a print-like callable, given one line per ensemble trained.
    cache: the :class:`~memjax.studies.RunCache` that shares ensembles between studies (None:
      the process-wide :data:`memjax.studies.SHARED`).
  """

  data: Any = "digits"
  scale: str = "default"
  models: int | None = None
  epochs: int | None = None
  seed: int = 0
  config: TrainConfig | None = None
  threshold: float = THRESHOLD
  keep_ratio: float | None = PAPER_KEEP_RATIO
  progress: bool = False
  log: Callable[[str], None] | None = None
  cache: RunCache | None = None

  def __post_init__(self):
    if self.scale not in SCALES:
      raise MemjaxError(f"Unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}.")
    if self.keep_ratio is not None and not 0 < self.keep_ratio < 1:
      raise MemjaxError(f"keep_ratio={self.keep_ratio!r}; a subset ratio lies in (0, 1), e.g. "
                        f"{PAPER_KEEP_RATIO} (the paper's).")
    for name in ("models", "epochs"):
      value = getattr(self, name)
      if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
        raise MemjaxError(f"{name}={value!r}; use a positive integer.")

  @classmethod
  def of(cls, data: Any = "digits", **fields) -> StudySettings:
    """Settings from keyword arguments, with an error naming close matches for a misspelt one.

    >>> StudySettings.of("digits", scal="small")
    Traceback (most recent call last):
    ...
    memjax.errors.MemjaxError: Unknown study setting 'scal' (did you mean 'scale'?); ...
    """
    names = [f.name for f in dataclasses.fields(cls)]
    for key in fields:
      if key not in names:
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MemjaxError(f"Unknown study setting {key!r}{hint}; the settings are "
                          f"{', '.join(names[1:])}, and each study's own options (see its "
                          "docstring).")
    return cls(data=data, **fields)

  def replace(self, **fields) -> StudySettings:
    """A copy with some fields replaced."""
    return dataclasses.replace(self, **fields)

  @property
  def runs(self) -> RunCache:
    """The run cache in use."""
    return SHARED if self.cache is None else self.cache

  @property
  def scale_spec(self) -> Scale:
    """The :class:`~memjax.studies.Scale` named by ``scale``."""
    return SCALES[self.scale]

  def dataset(self) -> Dataset:
    """The data, loaded once per process for a spec string."""
    return self.runs.dataset(self.data)

  def base_config(self) -> TrainConfig:
    """``config`` (or the default) with the scale's overrides and ``keep_ratio``."""
    config = (self.config or TrainConfig()).replace(**dict(self.scale_spec.overrides))
    return config if self.keep_ratio is None else config.replace(keep_ratio=self.keep_ratio)

  def ratio_text(self) -> str:
    """How the subsets are drawn, for a description: "keep ratio 0.7" (or the ratios)."""
    ratios = self.base_config().ratios
    if len(ratios) == 1:
      return f"keep ratio {ratios[0]:g}"
    return f"keep ratios {', '.join(f'{r:g}' for r in ratios)}"

  def train(self, config: TrainConfig, dataset: Dataset | None = None):
    """Trains (or reuses) the ensemble of ``config`` on ``dataset`` (default: the settings'
    data); returns (run, wall seconds)."""
    return self.runs.train(self.dataset() if dataset is None else dataset, config,
                           self.progress, self.log)

  def usable(self, archs: Sequence[Arch], option: str) -> tuple[list[Arch], list[str]]:
    """The architectures the data allows (image-only families need images) and a note for
    each one dropped; raises when none is left, naming ``option`` (the study's argument)."""
    dataset = self.dataset()
    kept, notes = [], []
    for a in archs:
      if a[1] in IMAGE_MODELS and not dataset.is_image:
        notes.append(f"{arch_label(a)} skipped: {dataset.name} has vector features, not "
                     "images.")
      else:
        kept.append(a)
    if not kept:
      raise MemjaxError(f"No architecture left to train on {dataset.name}: " + " ".join(notes)
                        + f" Pass {option}=[('mlp', 'mlp', {{'widths': [64]}}), ...].")
    return kept, notes
