"""Memorization vs model size within families (Back to Fundamentals, Table 1 and Fig. 1).

The paper's claim: natural memorization *decreases* as a family grows (its Table 1), although
larger models could memorize more. One ensemble per architecture; each row is an architecture.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

from memjax import plotting
from memjax.studies.figures import ensemble_figures
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label, epochs_text
from memjax.studies.settings import StudySettings

NAME = "model_size"


def model_size(data: Any = "digits", *, families: Sequence[Arch] | None = None,
               **settings) -> StudyResult:
  """Memorization vs model size within families (Back to Fundamentals, Table 1 and Fig. 1).

  Trains one ensemble per architecture and reports parameters, mean train accuracy (on each
  model's own subset) and test accuracy, the train-test gap, the number of examples memorized at
  the threshold (+- bootstrap SE), the count estimation noise alone gives, and the mean +- sd
  memorization score.

  Args:
    data: dataset spec or Dataset.
    families: architectures ``(family, model, kwargs)`` ordered by size (default: the scale's),
      or ``(family, model, kwargs, overrides)`` with the arch's own TrainConfig fields (a recipe,
      applied over ``config``; see :func:`memjax.studies.scales.arch_config`).
    **settings: fields of :class:`~memjax.studies.StudySettings`: ``scale``, ``models``,
      ``epochs`` (also overrides an arch's recipe), ``seed``, ``config``, ``threshold``,
      ``progress``, ``log``, ``cache``.

  Returns:
    :class:`StudyResult`; headline: per family the count at the smallest and the largest size
    and whether memorization decreases, increases or stays flat (within 2 combined SE).
  """
  return run(StudySettings.of(data, **settings), families=families)


def run(settings: StudySettings, *, families: Sequence[Arch] | None = None) -> StudyResult:
  """:func:`model_size` from settings."""
  dataset, sc = settings.dataset(), settings.scale_spec
  archs, notes = settings.usable(families or sc.families, "families")
  models = settings.models or sc.models
  epochs = epochs_text(archs, sc.epochs, settings.epochs)
  base = settings.base_config()
  t0 = time.perf_counter()
  rows = []
  for arch in archs:
    config = arch_config(base, arch, models, settings.epochs, settings.seed,
                         default_epochs=sc.epochs)
    trained, wall = settings.train(config)
    rows.append(summarize(trained, wall, arch, settings.threshold))
  headline = {"threshold": settings.threshold, "subset_ratios": list(base.ratios),
              "families": {}}
  for family in dict.fromkeys(r["family"] for r in rows):
    by_size = sorted([r for r in rows if r["family"] == family], key=lambda r: r["params"])
    small, large = min(by_size, key=lambda r: r["params"]), max(by_size, key=lambda r: r["params"])
    change = large["memorized"] - small["memorized"]
    noise = 2 * math.hypot(small["memorized_se"], large["memorized_se"])
    direction = ("flat" if abs(change) <= noise or len(by_size) < 2
                 else "decreases" if change < 0 else "increases")
    headline["families"][family] = {
        "smallest": small["model"], "largest": large["model"],
        "memorized_smallest": small["memorized"], "memorized_largest": large["memorized"],
        "memorized_by_size": [r["memorized"] for r in by_size],
        "test_acc_by_size": [round(r["test_acc"], 4) for r in by_size],
        "direction": direction}
  headline["wall_s"] = time.perf_counter() - t0
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(f"Memorization vs model size on {dataset.name} (N={dataset.num_train}); "
                   f"{models} models per architecture, {settings.ratio_text()}, "
                   f"{epochs}. memorized = #examples with score >= {settings.threshold} (+- "
                   "bootstrap SE over models); null_memorized = the count a permutation of "
                   "IN/OUT gives (estimation noise alone); train_acc on each model's own "
                   "subset."),
      notes=notes, context={"data": dataset.name, "models": models, "epochs": epochs,
                            "ratios": settings.ratio_text()})


def summarize(trained, wall: float, arch: Arch, threshold: float) -> dict:
  """One row of the table: an architecture's ensemble (a :class:`memjax.Run`) summarised."""
  f = ensemble_figures(trained, threshold)
  return {"family": arch[0], "model": arch_label(arch),
          "params": int(trained.info["num_params"]), "models": trained.config.num_models,
          "epochs": trained.config.epochs, "train_acc": f["train_acc"], "test_acc": f["test_acc"],
          "gap": f["train_acc"] - f["test_acc"],
          **{k: f[k] for k in ("memorized", "memorized_se", "null_memorized", "mean_score",
                               "sd_score")},
          "wall_s": wall}


def plot(result: StudyResult, path: str) -> None:
  """Memorized count (left) and accuracies (right) vs parameters, one line per family."""
  fig, (ax1, ax2) = plotting.subplots(2)
  threshold = result.headline["threshold"]
  for i, family in enumerate(result.headline["families"]):
    rows = sorted([r for r in result.rows if r["family"] == family], key=lambda r: r["params"])
    params = [r["params"] for r in rows]
    color, marker = plotting.family_style(family, i)
    ax1.errorbar(params, [r["memorized"] for r in rows], yerr=[r["memorized_se"] for r in rows],
                 color=color, marker=marker, capsize=3, label=family)
    ax2.plot(params, [r["test_acc"] for r in rows], color=color, marker=marker,
             label=f"{family} test")
    ax2.plot(params, [r["train_acc"] for r in rows], color=color, marker="x", ls=":",
             label=f"{family} train")
  for ax in (ax1, ax2):
    ax.set_xscale("log")
    ax.set_xlabel("parameters per model")
    ax.legend(fontsize=7)
  ax1.set_ylabel(f"examples memorized (score >= {threshold})")
  ax2.set_ylabel("accuracy")
  c = result.context
  fig.suptitle(f"memorization vs model size ({c['data']}, {c['models']} models, "
               f"{c.get('ratios', 'keep ratio 0.5')}, {c['epochs']})")
  plotting.save(fig, path)


STUDY = Study(NAME, "memorization vs parameters within a family (Table 1, Fig. 1)",
              model_size, run, plot)
