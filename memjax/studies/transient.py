"""Model-wise and temporal-wise transient memorization (Back to Fundamentals, Sec. 4.3).

The paper's claim: some examples are memorized only transiently, by a small model but not by a
large one (model-wise), or at the epoch with the most memorized examples but not at the end
(temporal-wise); their mean score (45% +- 15% model-wise, 36% +- 5% temporal) lies well above
that of all examples (11% +- 19%): they come from small sub-populations, neither typical nor
outliers. Nothing new is trained: the ensembles are those of ``model_size`` and ``epochs``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from memjax import estimators, plotting
from memjax.studies.epochs import train_every_epoch
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "transient"
KINDS = ("model-wise", "temporal-wise")
GROUPS = ("all", "memorized (first)", "memorized (second)", "transient")


def transient(data: Any = "digits", *, small: Arch | None = None, large: Arch | None = None,
              **settings) -> StudyResult:
  """Model-wise and temporal-wise transient memorization (Back to Fundamentals, Sec. 4.3).

  * Model-wise: examples memorized (score >= threshold) by the ``small`` model's ensemble but not
    by the ``large`` one's (default: the scale's ``transient_pair``; same design and epochs).
  * Temporal-wise: in the epochs study's ensemble, examples memorized at the epoch with the most
    memorized examples but not after the last epoch.

  Rows: for each kind, the groups "all", "memorized (first)", "memorized (second)" and
  "transient", with their size and mean +- sd score under the first condition (small model /
  peak epoch) and under the second (large model / last epoch), and their mean C-score.

  Args:
    data: dataset spec or Dataset.
    small, large: architectures ``(family, model, kwargs)``.
    **settings: fields of :class:`~memjax.studies.StudySettings` (``models`` / ``epochs``
      override the scale's for both: the model-wise pair, and the temporal-wise ensemble, which
      is that of the epochs study with the same settings).

  Returns:
    :class:`StudyResult`; headline: transient counts and mean +- sd scores vs all examples.
  """
  return run(StudySettings.of(data, **settings), small=small, large=large)


def run(settings: StudySettings, *, small: Arch | None = None,
        large: Arch | None = None) -> StudyResult:
  """:func:`transient` from settings."""
  dataset, sc, threshold = settings.dataset(), settings.scale_spec, settings.threshold
  t0 = time.perf_counter()
  models = settings.models or sc.models
  small = small or sc.families[sc.transient_pair[0]]
  large = large or sc.families[sc.transient_pair[1]]
  pair = [settings.train(arch_config(settings.base_config(), arch, models, settings.epochs,
                                     settings.seed, default_epochs=sc.epochs))[0]
          for arch in (small, large)]
  mem_small, mem_large = (estimators.memorization(r.correct, r.keep) for r in pair)
  cscore_large = estimators.cscore(pair[1].correct, pair[1].keep)
  run_e, _, arch_e = train_every_epoch(settings, settings.models, settings.epochs)
  history = estimators.memorization_history(run_e.records.train_correct, run_e.keep)
  peak = int(np.argmax(estimators.is_memorized(history, threshold).sum(-1)))
  epoch = np.asarray(run_e.records.eval_epochs)
  cscore_e = estimators.cscore(run_e.correct, run_e.keep)
  conditions = {  # kind: (first label, second label, first scores, second scores, C-scores)
      "model-wise": (arch_label(small), arch_label(large), mem_small, mem_large, cscore_large),
      "temporal-wise": (f"{arch_label(arch_e)} epoch {epoch[peak]}",
                        f"{arch_label(arch_e)} epoch {epoch[-1]}", history[peak], history[-1],
                        cscore_e)}
  rows, headline = [], {"threshold": threshold,
                        "subset_ratios": list(settings.base_config().ratios)}
  for kind, (first, second, a, b, cs) in conditions.items():
    mem_a = estimators.is_memorized(a, threshold)
    mem_b = estimators.is_memorized(b, threshold)
    groups = dict(zip(GROUPS, (np.ones_like(mem_a), mem_a, mem_b, mem_a & ~mem_b)))
    for group, mask in groups.items():
      mean_a, sd_a = estimators.mean_sd(a[mask])
      mean_b, sd_b = estimators.mean_sd(b[mask])
      rows.append({"kind": kind, "group": group, "first": first, "second": second,
                   "count": int(mask.sum()), "mean_score_first": mean_a, "sd_score_first": sd_a,
                   "mean_score_second": mean_b, "sd_score_second": sd_b,
                   "mean_cscore": estimators.mean_sd(cs[mask])[0]})
    tr = groups["transient"]
    headline[_key(kind)] = {
        "first": first, "second": second, "memorized_first": int(mem_a.sum()),
        "memorized_second": int(mem_b.sum()), "transient": int(tr.sum()),
        "transient_score_first": estimators.mean_sd(a[tr]),
        "all_score_first": estimators.mean_sd(a),
        "transient_score_second": estimators.mean_sd(b[tr]),
        "all_score_second": estimators.mean_sd(b)}
  headline["wall_s"] = time.perf_counter() - t0
  arrays = {f"{_key(kind)}_{which}": scores
            for kind, (_, _, a, b, _) in conditions.items()
            for which, scores in (("first", a), ("second", b))}
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(f"Transient memorization on {dataset.name}, {settings.ratio_text()}: "
                   "'first' is the small model (model-wise) or the peak "
                   "epoch (temporal-wise), 'second' the large model or the last epoch; "
                   "transient = memorized under first, not under second. Scores are means +- sd "
                   "of the memorization score under each condition; mean_cscore is the C-score "
                   "(held-out accuracy) under the second condition's ensemble."),
      context={"data": dataset.name,
               "labels": {"model_wise": [arch_label(small), arch_label(large)],
                          "temporal_wise": [f"epoch {epoch[peak]} (peak)",
                                            f"epoch {epoch[-1]} (last)"]}},
      arrays=arrays)


def _key(kind: str) -> str:
  return kind.replace("-", "_")


def plot(result: StudyResult, path: str) -> None:
  """Histograms of the scores under the first and the second condition, for each kind."""
  fig, axes = plotting.subplots(2)
  bins = np.linspace(-0.5, 1.0, 31)
  threshold = result.headline["threshold"]
  for ax, kind in zip(axes, KINDS):
    for which, label in zip(("first", "second"), result.context["labels"][_key(kind)]):
      scores = result.arrays[f"{_key(kind)}_{which}"]
      ax.hist(scores[np.isfinite(scores)], bins=bins, alpha=0.6, label=label, log=True)
    ax.axvline(threshold, color="k", ls=":", lw=1)
    ax.set_xlabel("memorization score")
    ax.set_ylabel("examples")
    ax.set_title(kind)
    ax.legend(fontsize=7)
  fig.suptitle(f"transient memorization on {result.context['data']}")
  plotting.save(fig, path)


STUDY = Study(NAME, "model-wise and temporal-wise transient memorization (Sec. 4.3)",
              transient, run, plot)
