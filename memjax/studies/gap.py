"""Memorized count vs train-test gap across architectures (Back to Fundamentals, Fig. 3).

The paper's claim: the number of memorized examples follows the train-test gap closely (Pearson
r = 0.99 over its architectures). One point per architecture of ``model_size``, whose ensembles it
shares.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from memjax import correlation, plotting
from memjax.studies.model_size import run as run_model_size
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch
from memjax.studies.settings import StudySettings

NAME = "gap"
COLUMNS = ("family", "model", "params", "train_acc", "test_acc", "gap", "memorized",
           "memorized_se", "mean_score")


def gap(data: Any = "digits", *, families: Sequence[Arch] | None = None,
        **settings) -> StudyResult:
  """Memorized count vs train-test gap across architectures (Back to Fundamentals, Fig. 3).

  One point per architecture of the scale's families (the ensembles of
  :func:`~memjax.studies.model_size`, shared through the run cache): gap = mean train accuracy on
  the models' own subsets - mean test accuracy. Pearson r over all points (with p-value and 95%
  interval) and within each family.

  Args:
    data, families, **settings: as in :func:`~memjax.studies.model_size`.

  Returns:
    :class:`StudyResult`; headline: Pearson r (all points and per family).
  """
  return run(StudySettings.of(data, **settings), families=families)


def run(settings: StudySettings, *, families: Sequence[Arch] | None = None) -> StudyResult:
  """:func:`gap` from settings."""
  size = run_model_size(settings, families=families)
  rows = [{k: r[k] for k in COLUMNS} for r in size.rows]
  gaps = [r["gap"] for r in rows]
  per_family = {}
  for family in dict.fromkeys(r["family"] for r in rows):
    in_family = [r for r in rows if r["family"] == family]
    per_family[family] = correlation.pearson([r["gap"] for r in in_family],
                                             [r["memorized"] for r in in_family])
  headline = {
      "pearson_gap_vs_memorized": correlation.pearson(gaps, [r["memorized"] for r in rows]),
      "pearson_gap_vs_mean_score": correlation.pearson(gaps, [r["mean_score"] for r in rows]),
      "per_family": per_family, "points": len(rows), "threshold": settings.threshold,
      "subset_ratios": size.headline["subset_ratios"]}
  return StudyResult(
      name=NAME, columns=COLUMNS, rows=rows, headline=headline,
      description=("Memorized count vs train-test gap, one point per architecture. "
                   + size.description), notes=size.notes,
      context={"data": size.context["data"]})


def plot(result: StudyResult, path: str) -> None:
  """Memorized count vs gap, one colour per family, with the least-squares line."""
  h = result.headline
  overall = h["pearson_gap_vs_memorized"]
  r = np.nan if overall["r"] is None else overall["r"]  # NaN is saved as null
  fig, (ax,) = plotting.subplots(1, 6, 4.2)
  for i, family in enumerate(h["per_family"]):
    rows = [row for row in result.rows if row["family"] == family]
    color, marker = plotting.family_style(family, i)
    ax.errorbar([row["gap"] for row in rows], [row["memorized"] for row in rows],
                yerr=[row["memorized_se"] for row in rows], fmt=marker, color=color, capsize=3,
                label=family)
    for row in rows:
      ax.annotate(row["model"], (row["gap"], row["memorized"]), fontsize=6, xytext=(3, 3),
                  textcoords="offset points")
  if np.isfinite(r):
    gaps, counts = result.column("gap"), result.column("memorized")
    slope, intercept = np.polyfit(gaps, counts, 1)
    xs = np.linspace(gaps.min(), gaps.max(), 10)
    ax.plot(xs, slope * xs + intercept, "k--", lw=1)
  ax.set_xlabel("train-test gap (train acc on own subset - test acc)")
  ax.set_ylabel(f"examples memorized (score >= {h['threshold']})")
  ax.set_title(f"{result.context['data']}: Pearson r = {r:.2f} (n={overall['n']})")
  ax.legend(fontsize=7)
  plotting.save(fig, path)


STUDY = Study(NAME, "memorization count vs train-test gap, Pearson r (Fig. 3)", gap, run, plot)
