"""C-scores as Jiang et al. define them: held-out accuracy over training-set sizes.

Jiang et al. (2021) define the consistency score of an example as the expected accuracy on it
of models trained on random subsets *not containing it*, averaged over subset ratios (theirs:
10% ... 90% of the training set). One ensemble trains with the C-score design (the models split
evenly over :data:`RATIOS`); for every ratio r, an example's held-out accuracy at r is the mean
correctness of the ratio-r models that did not train on it, and its C-score is the mean over
ratios. The table gives, for each class and for the most and least regular examples, the mean
held-out accuracy at every ratio: regular examples are learned from little data, irregular ones
only from large subsets, if at all (their Fig. 2 and 3).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from memjax import correlation, estimators, plotting
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "cscore"
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # Jiang et al.'s subset ratios
EXTREME_FRACTION = 0.1  # "most / least regular": the top / bottom 10% of C-scores


def cscore(data: Any = "digits", *, arch: Arch | None = None, **settings) -> StudyResult:
  """C-score vs subset ratio, by class and for the most and least regular examples.

  One ensemble of ``arch`` (default: the scale's epochs-study architecture) trains with the
  C-score design: the scale's ``cscore_models`` models (``models`` overrides) split evenly over
  the ratios 0.1 ... 0.9 (the ``keep_ratio`` setting does not apply), each on an independent
  random subset (Bernoulli design). Rows: all examples, each
  class, the most regular and the least regular 10% (by C-score); columns: the number of
  examples, their mean C-score, and their mean held-out accuracy at each ratio ``r=0.1`` ...
  ``r=0.9``.

  Args:
    data: dataset spec or Dataset.
    arch: ``(family, model, kwargs)`` of the ensemble.
    **settings: fields of :class:`~memjax.studies.StudySettings`.

  Returns:
    :class:`StudyResult`; headline: the mean held-out accuracy at each ratio, the mean C-score,
    the classes with the lowest and highest mean C-score, and the Spearman correlation of the
    C-score with memorization at ratio 0.5 (which Jiang et al. and Feldman & Zhang expect to be
    strongly negative).
  """
  return run(StudySettings.of(data, **settings), arch=arch)


def run(settings: StudySettings, *, arch: Arch | None = None) -> StudyResult:
  """:func:`cscore` from settings."""
  dataset, sc = settings.dataset(), settings.scale_spec
  arch = arch or sc.epochs_arch
  t0 = time.perf_counter()
  # Independent subsets per model (Bernoulli), as Jiang et al. draw them; a balanced design
  # would give no IN model at ratio 0.1 to groups of fewer than 5 models.
  base = settings.replace(keep_ratio=None).base_config().replace(keep_ratios=RATIOS,
                                                                 design="bernoulli")
  config = arch_config(base, arch, settings.models or sc.cscore_models, settings.epochs,
                       settings.seed, default_epochs=sc.epochs)
  trained, wall = settings.train(config)
  correct, keep, groups = trained.correct, trained.keep, trained.groups
  by_ratio = np.stack([estimators.cscore(correct[groups == g], keep[groups == g])
                       for g in range(len(RATIOS))])  # [R, N] held-out accuracy at each ratio
  scores = estimators.cscore(correct, keep, groups)  # [N], the mean over ratios
  labels = np.asarray(dataset.y_train)
  order = np.argsort(np.nan_to_num(scores, nan=np.inf))
  k = max(1, int(round(EXTREME_FRACTION * len(scores))))
  selections = {"all": np.ones(len(scores), bool)}
  for c in range(dataset.num_classes):
    name = dataset.class_names[c] if dataset.class_names else str(c)
    selections[f"class {name}"] = labels == c
  selections[f"most regular {EXTREME_FRACTION:.0%}"] = np.isin(np.arange(len(scores)),
                                                              order[::-1][:k])
  selections[f"least regular {EXTREME_FRACTION:.0%}"] = np.isin(np.arange(len(scores)),
                                                               order[:k])
  rows = []
  for group, mask in selections.items():
    row = {"group": group, "examples": int(mask.sum()),
           "mean_cscore": estimators.mean_sd(scores[mask])[0]}
    for r, accuracy in zip(RATIOS, by_ratio):
      row[f"r={r:g}"] = estimators.mean_sd(accuracy[mask])[0]
    rows.append(row)
  half = groups == RATIOS.index(0.5)
  memorization = estimators.memorization(correct[half], keep[half])
  classes = [r for r in rows if r["group"].startswith("class ")]
  headline = {
      "ratios": list(RATIOS), "heldout_accuracy_by_ratio": [rows[0][f"r={r:g}"] for r in RATIOS],
      "mean_cscore": rows[0]["mean_cscore"],
      "hardest_class": min(classes, key=lambda r: r["mean_cscore"])["group"],
      "easiest_class": max(classes, key=lambda r: r["mean_cscore"])["group"],
      "spearman_cscore_vs_memorization_r0.5": correlation.spearman(scores, memorization),
      "models": int(config.num_models), "models_per_ratio": int(half.sum()),
      "epochs": int(config.epochs), "model": arch_label(arch),
      "wall_s": time.perf_counter() - t0, "train_wall_s": wall}
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(f"C-scores (Jiang et al.) on {dataset.name}: {config.num_models} "
                   f"{arch_label(arch)} models, {int(half.sum())} per subset ratio "
                   f"{', '.join(f'{r:g}' for r in RATIOS)}, {config.epochs} epochs. r=R: mean "
                   "held-out accuracy at ratio R (models of that ratio that did not train on the "
                   "example); mean_cscore: its mean over the ratios; most / least regular: the "
                   f"{EXTREME_FRACTION:.0%} of examples with the highest / lowest C-score."),
      context={"data": dataset.name},
      arrays={"cscore": scores, "heldout_accuracy_by_ratio": by_ratio, "labels": labels})


def plot(result: StudyResult, path: str) -> None:
  """Held-out accuracy vs subset ratio: by class (left); all, most and least regular (right)."""
  ratios = result.headline["ratios"]
  fig, (ax1, ax2) = plotting.subplots(2)
  for i, row in enumerate(r for r in result.rows if r["group"].startswith("class ")):
    ax1.plot(ratios, [row[f"r={r:g}"] for r in ratios], marker="o", ms=3, color=f"C{i % 10}",
             label=row["group"].removeprefix("class "))
  others = [r for r in result.rows if not r["group"].startswith("class ")]
  for row, style in zip(others, ("k-", "C2-", "C3-")):
    ax2.plot(ratios, [row[f"r={r:g}"] for r in ratios], style, marker="o", ms=3,
             label=f"{row['group']} (C-score {row['mean_cscore']:.2f})")
  for ax in (ax1, ax2):
    ax.set_xlabel("subset ratio (fraction of the training set)")
    ax.set_ylabel("mean held-out accuracy")
    ax.set_ylim(-0.02, 1.02)
  ax1.legend(title="class", fontsize=6, ncols=2)
  ax2.legend(fontsize=7)
  fig.suptitle(f"C-score vs subset ratio ({result.context['data']}, "
               f"{result.headline['models_per_ratio']} models per ratio)")
  plotting.save(fig, path)


STUDY = Study(NAME, "C-scores (Jiang et al.): held-out accuracy vs subset ratio", cscore, run,
              plot)
