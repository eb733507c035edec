"""Memorization after every epoch and its three stages (Back to Fundamentals, Fig. 2).

The paper's claim: natural memorization does not grow with training time; it goes through three
stages, almost *none* in the first epochs, a *rise*, then a *fall* late in training. One ensemble
is evaluated after every epoch; each row is an epoch, labelled with its stage
(:func:`detect_stages`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from memjax import estimators, plotting
from memjax.errors import MemjaxError
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "epochs"
STAGE_COLORS = {"none": "#dddddd", "rise": "#fde0c5", "fall": "#c6e2f5", "plateau": "#eeeeee"}


def detect_stages(epochs, counts, counts_se=None, none_fraction: float = 0.1,
                  min_drop: float = 0.05, null_counts=None) -> dict:
  """Splits a memorized-count curve into the paper's three stages.

  * none: the leading evaluations with count <= ``none_fraction`` x peak, or (with
    ``null_counts`` and ``counts_se``) not above the noise floor: count - null <= 2 SE;
  * rise: from there up to the (first) peak;
  * fall: after the peak, when the last count is at least ``min_drop`` x peak below the peak and
    (with ``counts_se``) the drop exceeds 2 combined standard errors; otherwise "plateau".

  Args:
    epochs: [T] epochs of the evaluations.
    counts: [T] memorized counts.
    counts_se: optional [T] standard errors of the counts.
    null_counts: optional [T] counts that estimation noise alone gives
      (:func:`memjax.estimators.null_memorized_count`).

  Returns:
    {"stage": [T] labels, "none": [first, last] epochs or None, "rise": [...], "fall": [...] or
    None, "peak_epoch", "peak_count", "final_count", "drop", "drop_se", "fall_detected"}.

  >>> s = detect_stages([1, 2, 3, 4, 5, 6], [0, 1, 10, 20, 15, 12])
  >>> s["stage"], s["peak_epoch"], s["fall_detected"]
  (['none', 'none', 'rise', 'rise', 'fall', 'fall'], 4, True)
  """
  epochs = np.asarray(epochs)
  counts = np.asarray(counts, np.float64)
  if epochs.shape != counts.shape or counts.ndim != 1 or counts.size == 0:
    raise MemjaxError(f"epochs {epochs.shape} and counts {counts.shape} must be equal-length "
                      "non-empty 1-D arrays.")
  t = counts.size
  peak = int(np.argmax(counts))
  low = counts <= none_fraction * counts[peak]
  if null_counts is not None and counts_se is not None:
    low |= counts - np.asarray(null_counts, np.float64) <= 2 * np.asarray(counts_se)
  n_none = int(np.argmin(low)) if not low.all() else t
  n_none = min(n_none, peak) if counts[peak] > 0 else t
  drop = float(counts[peak] - counts[-1])
  drop_se = (float(math.hypot(counts_se[peak], counts_se[-1])) if counts_se is not None
             else float("nan"))
  fall = (peak < t - 1 and drop >= min_drop * counts[peak] and drop > 0
          and (counts_se is None or drop > 2 * drop_se))
  stage = ["none"] * n_none + ["rise"] * (peak + 1 - n_none) + \
      ["fall" if fall else "plateau"] * (t - peak - 1)
  stage = stage[:t]

  def span(name):
    idx = [i for i, s in enumerate(stage) if s == name]
    return [int(epochs[idx[0]]), int(epochs[idx[-1]])] if idx else None

  return {"stage": stage, "none": span("none"), "rise": span("rise"),
          "fall": span("fall"), "plateau": span("plateau"),
          "peak_epoch": int(epochs[peak]), "peak_count": float(counts[peak]),
          "final_count": float(counts[-1]), "drop": drop, "drop_se": drop_se,
          "fall_detected": bool(fall)}


def train_every_epoch(settings: StudySettings, models: int | None = None,
                      epochs: int | None = None, arch: Arch | None = None):
  """The ensemble of the epochs study, evaluated after every epoch (shared with transient).

  Args:
    settings: the study's settings (scale, seed, config, ...).
    models, epochs: override the scale's ``epochs_models`` / ``epochs_epochs``.
    arch: the architecture (default: the scale's ``epochs_arch``).

  Returns:
    (run, wall seconds, arch).
  """
  sc = settings.scale_spec
  arch = arch or sc.epochs_arch
  config = arch_config(settings.base_config(), arch, models or sc.epochs_models, epochs,
                       settings.seed, eval_every=1, default_epochs=sc.epochs_epochs)
  trained, wall = settings.train(config)
  return trained, wall, arch


def epochs(data: Any = "digits", *, arch: Arch | None = None, **settings) -> StudyResult:
  """Memorization after every epoch and its three stages (Back to Fundamentals, Fig. 2).

  One ensemble (``arch``, default the scale's) is evaluated after every epoch; each row is an
  epoch: memorized count (+- bootstrap SE), the noise floor, mean score, train / test accuracy,
  gap and the stage (:func:`detect_stages`).

  Args:
    data: dataset spec or Dataset.
    arch: ``(family, model, kwargs)`` of the ensemble.
    **settings: fields of :class:`~memjax.studies.StudySettings` (``models`` / ``epochs``
      override the scale's ``epochs_models`` / ``epochs_epochs``).

  Returns:
    :class:`StudyResult`; headline: the stages' epoch spans, peak epoch and count, final count
    and the drop with its SE.
  """
  return run(StudySettings.of(data, **settings), arch=arch)


def run(settings: StudySettings, *, arch: Arch | None = None) -> StudyResult:
  """:func:`epochs` from settings."""
  dataset, threshold = settings.dataset(), settings.threshold
  t0 = time.perf_counter()
  trained, wall, arch = train_every_epoch(settings, settings.models, settings.epochs, arch)
  records = trained.records
  history = estimators.memorization_history(records.train_correct, trained.keep)  # [T, N]
  counts = estimators.is_memorized(history, threshold).sum(-1)
  se = estimators.memorized_count_se(records.train_correct, trained.keep, threshold)
  null = estimators.null_memorized_count(records.train_correct, trained.keep, threshold)
  epoch = np.asarray(records.eval_epochs)
  stages = detect_stages(epoch, counts, se, null_counts=null)
  train_acc = records.train_accuracy().mean(-1)
  test_acc = records.test_accuracy().mean(-1)
  rows = [{"epoch": int(epoch[t]), "memorized": int(counts[t]), "memorized_se": float(se[t]),
           "null_memorized": float(null[t]), "mean_score": float(np.nanmean(history[t])),
           "train_acc": float(train_acc[t]), "test_acc": float(test_acc[t]),
           "gap": float(train_acc[t] - test_acc[t]), "stage": stages["stage"][t]}
          for t in range(len(epoch))]
  headline = {k: v for k, v in stages.items() if k != "stage"}
  headline.update(model=arch_label(arch), models=trained.config.num_models,
                  subset_ratios=list(trained.config.ratios), threshold=threshold, wall_s=time.perf_counter() - t0, train_wall_s=wall)
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(f"Memorization after every epoch, {arch_label(arch)} x "
                   f"{trained.config.num_models} models on {dataset.name}, "
                   f"{settings.ratio_text()}; stage: none (count "
                   "<= 10% of the peak or within 2 SE of the noise floor), rise (to the peak), "
                   "fall (a drop > 5% of the peak and > 2 SE by the last epoch) or plateau."),
      context={"data": dataset.name})


def plot(result: StudyResult, path: str) -> None:
  """Memorized count per epoch on the stages' background, accuracies on a second axis."""
  h = result.headline
  epoch = result.column("epoch")
  fig, (ax,) = plotting.subplots(1, 6.5, 4)
  for e, stage in zip(epoch, result.column("stage")):
    ax.axvspan(e - 0.5, e + 0.5, color=STAGE_COLORS[stage], lw=0)
  ax.errorbar(epoch, result.column("memorized"), yerr=result.column("memorized_se"), marker="o",
              ms=3, capsize=2, color="C3", label="memorized")
  ax.plot(epoch, result.column("null_memorized"), color="C3", ls=":", lw=1,
          label="noise floor (permutation)")
  ax.legend(loc="upper left", fontsize=7)
  ax.set_xlabel("epoch")
  ax.set_ylabel(f"examples memorized (score >= {h['threshold']})")
  ax2 = ax.twinx()
  ax2.plot(epoch, result.column("test_acc"), color="C0", label="test acc")
  ax2.plot(epoch, result.column("train_acc"), color="C0", ls=":", label="train acc")
  ax2.set_ylabel("accuracy")
  ax2.legend(loc="lower right", fontsize=7)
  ax.set_title(f"{h['model']} on {result.context['data']}: none / rise / "
               f"{'fall' if h['fall_detected'] else 'plateau'} (peak epoch {h['peak_epoch']})",
               fontsize=9)
  plotting.save(fig, path)


STUDY = Study(NAME, "memorization per epoch; the stages none / rise / fall (Fig. 2)",
              epochs, run, plot)
