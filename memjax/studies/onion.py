"""The privacy onion effect (Carlini et al. 2022): remove the most exposed examples, and others
become exposed.

Carlini et al. ("The Privacy Onion Effect: Memorization is Relative", NeurIPS 2022) remove the
training examples most vulnerable to membership inference, retrain, and find that examples that
were safe before become vulnerable: privacy comes in layers, like an onion. This study trains an
ensemble on the data, measures each example's vulnerability (its per-example attack AUC: how
well its own score tells the models that trained on it from those that did not, every model the
target of the others; :func:`memjax.attacks.evaluate_attacks`), removes the k most vulnerable
examples and retrains a fresh ensemble on the rest with the same recipe and seed.

Vulnerability measured twice is noisy, and examples selected as vulnerable by one measurement
regress to the mean in the next; the retrained data set is also smaller. So every removal has a
control: k random examples removed instead, retrained the same way. The "next layer" (the
examples ranked k+1 ... 2k before) is compared between the two retrained ensembles on the
examples both kept: the onion effect is how much more vulnerable the next layer is after the
most vulnerable examples left than after random ones did (paired over examples, with its
standard error).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from typing import Any, Sequence

import numpy as np

from memjax import attacks as attacks_lib
from memjax import plotting
from memjax.data import Dataset
from memjax.errors import MemjaxError
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "onion"
FRACTIONS = (0.05, 0.1)  # the fractions of the training set removed
REMOVALS = ("most vulnerable", "random")
# Offline LiRA (the paper's one-sided test): per example, its AUC over target models is that of
# the LiRA statistic itself between the models that trained on the example and the others,
# save for the leave-one-model-out refits (Spearman 0.996 with the loss attack's, which is
# exactly that). The online variants' per-example AUC is biased low where there is nothing to
# detect: the target's own statistic leaves its side's fit, and with 48 digits MLPs 51 of the
# 1,437 examples get AUC 0 (online LiRA, pooled variance), none offline.
DEFAULT_ATTACK = "lira_offline"


def remove_examples(dataset: Dataset, removed, tag: str) -> Dataset:
  """The dataset without some training examples (the test split unchanged).

  Args:
    dataset: the data.
    removed: [N] bool, the training examples to drop.
    tag: a word for the name, e.g. ``"top"``; the name also carries the count and a hash of
      the removed indices, so that saved runs of different subsets never share a directory.

  Returns:
    A Dataset with the N - removed.sum() other examples, in their order; no ``spec`` (it is not
    a dataset a spec reloads).
  """
  removed = np.asarray(removed, bool)
  if removed.shape != (dataset.num_train,):
    raise MemjaxError(f"removed has shape {removed.shape}; it needs one entry per training "
                      f"example, [{dataset.num_train}].")
  if removed.all():
    raise MemjaxError("Every training example would be removed; remove fewer (a smaller "
                      "fraction).")
  kept = ~removed
  digest = hashlib.sha1(np.flatnonzero(removed).astype(np.int64).tobytes()).hexdigest()[:8]
  return dataclasses.replace(
      dataset, x_train=dataset.x_train[kept], y_train=dataset.y_train[kept],
      raw_train=None if dataset.raw_train is None else dataset.raw_train[kept], spec=None,
      name=f"{dataset.name}-minus{int(removed.sum())}{tag}-{digest}")


def ranking(vulnerability) -> np.ndarray:
  """[N] indices, the most vulnerable first (NaN last, ties by index).

  >>> ranking([0.5, 0.9, float("nan"), 0.9]).tolist()
  [1, 3, 0, 2]
  """
  v = np.nan_to_num(np.asarray(vulnerability, np.float64), nan=-np.inf)
  return np.lexsort((np.arange(len(v)), -v))


def onion(data: Any = "digits", *, fractions: Sequence[float] = FRACTIONS,
          arch: Arch | None = None, attack: str = DEFAULT_ATTACK, fpr: float = 1e-3,
          **settings) -> StudyResult:
  """The privacy onion effect: vulnerability of the remaining examples after removing the most
  vulnerable ones (Carlini et al. 2022), against removing random ones.

  Trains one ensemble of ``arch`` on the data; each example's vulnerability is its per-example
  AUC under ``attack``. For each fraction f, k = round(f N) examples are removed, either the k
  most vulnerable or k random ones (seeded), and a fresh ensemble (the same recipe and seed)
  trains on the rest. One row per fraction and removal: k, the examples left, the retrained
  ensemble's test accuracy and its attack's pooled AUC and TPR at ``fpr``; then, on the
  examples both removals of the fraction kept: their mean vulnerability before and after; the
  next layer (the examples ranked k+1 ... 2k before) among them, its mean vulnerability before
  and after, and how many of it are among their k most vulnerable after; the mean vulnerability
  of their k most vulnerable, ranked before (by the first ensemble) and after (by the retrained
  one).

  Args:
    data: dataset spec or Dataset.
    fractions: fractions of the training set removed, each in (0, 0.5].
    arch: the architecture (default: the scale's ``epochs_arch``).
    attack: the attack measuring vulnerability (not an RMIA one: they need population points).
    fpr: the false-positive rate of the TPR column.
    **settings: fields of :class:`~memjax.studies.StudySettings`.

  Returns:
    :class:`StudyResult`; headline per fraction: the next layer's mean vulnerability before,
    after removing the most vulnerable and after removing random examples, the onion effect
    (the paired difference of the two afters over the next layer) with its SE and whether it
    exceeds 2 SE (``exposed``), the same difference over every example compared
    (``effect_all``), and the retrained ensembles' TPRs; ``onion_effect``: exposed at every
    fraction.
  """
  return run(StudySettings.of(data, **settings), fractions=fractions, arch=arch, attack=attack,
             fpr=fpr)


def run(settings: StudySettings, *, fractions: Sequence[float] = FRACTIONS,
        arch: Arch | None = None, attack: str = DEFAULT_ATTACK, fpr: float = 1e-3) -> StudyResult:
  """:func:`onion` from settings."""
  if attack not in attacks_lib.ATTACKS or attack.startswith("rmia"):
    raise MemjaxError(f"attack={attack!r}; choose one of "
                      f"{', '.join(a for a in attacks_lib.ATTACKS if not a.startswith('rmia'))} "
                      "(RMIA needs population points).")
  fractions = [float(f) for f in fractions]
  if not fractions or not all(0 < f <= 0.5 for f in fractions):
    raise MemjaxError(f"fractions={fractions}; use fractions of the training set in (0, 0.5], "
                      "e.g. (0.05, 0.1).")
  dataset, sc = settings.dataset(), settings.scale_spec
  (arch,), notes = settings.usable([arch or sc.epochs_arch], "arch")
  models = settings.models or sc.models
  config = arch_config(settings.base_config(), arch, models, settings.epochs, settings.seed,
                       default_epochs=sc.epochs)
  n = dataset.num_train
  t0 = time.perf_counter()
  first, _ = settings.train(config)
  before, first_metrics = _vulnerability(first, attack, fpr)
  order = ranking(before)
  shuffled = np.random.default_rng(settings.seed).permutation(n)
  rows, arrays, per_fraction = [], {"before": before}, {}
  for i, f in enumerate(fractions):
    k = max(1, int(round(f * n)))
    layer = np.zeros(n, bool)
    layer[order[k:2 * k]] = True
    removed = {"most vulnerable": np.isin(np.arange(n), order[:k]),
               "random": np.isin(np.arange(n), shuffled[:k])}
    after = {}
    for removal, tag in zip(REMOVALS, ("top", "random")):
      mask = removed[removal]
      subset = settings.runs.derived(dataset, ("removed", tag, mask.tobytes()),
                                     lambda: remove_examples(dataset, mask, tag))
      trained, _ = settings.train(config, dataset=subset)
      values, metrics = _vulnerability(trained, attack, fpr)
      after[removal] = np.full(n, np.nan)
      after[removal][~mask] = values
      arrays[f"after_{tag}_{i}"] = after[removal]
      after[removal + " metrics"] = metrics
    common = ~removed["most vulnerable"] & ~removed["random"]
    for removal in REMOVALS:
      rows.append(_row(f, k, removal, before, after[removal], layer, common,
                       after[removal + " metrics"]))
    top_row, random_row = rows[-2], rows[-1]
    layer_effect, layer_se = _paired(after["most vulnerable"], after["random"], layer & common)
    all_effect, all_se = _paired(after["most vulnerable"], after["random"], common)
    per_fraction[f"{f:g}"] = {
        "k": k, "compared": int(common.sum()), "layer": int((layer & common).sum()),
        "layer_before": top_row["layer_before"],
        "layer_after_top_removal": top_row["layer_after"],
        "layer_after_random_removal": random_row["layer_after"],
        "effect": layer_effect, "effect_se": layer_se,
        "exposed": bool(math.isfinite(layer_se) and layer_effect > 2 * layer_se),
        "effect_all": all_effect, "effect_all_se": all_se,
        "layer_in_top_top_removal": top_row["layer_in_top"],
        "layer_in_top_random_removal": random_row["layer_in_top"],
        "tpr_top_removal": top_row[f"tpr@{fpr:g}"],
        "tpr_random_removal": random_row[f"tpr@{fpr:g}"]}
  headline = {
      "attack": attack, "fpr": fpr, "model": arch_label(arch), "models": models,
      "epochs": config.epochs, "subset_ratios": list(config.ratios), "fractions": fractions,
      "before": {**first_metrics, "mean": float(np.nanmean(before))},
      "by_fraction": per_fraction,
      "onion_effect": all(p["exposed"] for p in per_fraction.values()),
      "wall_s": time.perf_counter() - t0}
  tpr = f"tpr@{fpr:g}"
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(
          f"The privacy onion effect on {dataset.name} (N={n}): {models} {arch_label(arch)} "
          f"models per ensemble, {settings.ratio_text()}, {config.epochs} epochs. "
          f"Vulnerability = per-example AUC of {attack} (0.5: unexposed, 1: every target's "
          "membership of the example told apart), every model the target of the others. "
          "Per fraction, k examples removed (the k most vulnerable, or k random: the control) "
          "and a fresh ensemble trained on the rest (same recipe and seed); remaining: its "
          f"training set; test_acc, attack_auc and {tpr}: its attack, pooled. The other "
          "columns compare the examples both removals kept (compared): mean_before / "
          "mean_after their mean vulnerability; layer: the next layer (ranks k+1 ... 2k "
          "before) among them, layer_before / layer_after its mean vulnerability, "
          "layer_in_top how many of it are among their k most vulnerable after; top_before / "
          "top_after: the mean vulnerability of their k most vulnerable, ranked by each "
          "ensemble."),
      notes=notes, context={"data": dataset.name, "models": models, "model": arch_label(arch),
                            "epochs": config.epochs, "ratios": settings.ratio_text()},
      arrays=arrays)


def _vulnerability(trained, attack: str, fpr: float) -> tuple[np.ndarray, dict]:
  """([N] per-example AUC, {"test_acc", "attack_auc", "tpr@fpr"}) of an ensemble."""
  result = attacks_lib.evaluate_attacks(trained.records.train_lira, trained.keep,
                                        attacks=(attack,), fprs=(fpr,))[attack]
  return np.asarray(result.per_example_auc, np.float64), {
      "test_acc": float(trained.records.test_accuracy()[-1].mean()),
      "attack_auc": float(result.auc), f"tpr@{fpr:g}": float(result.tpr_at_fpr[fpr])}


def _paired(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> tuple[float, float]:
  """(mean of a - b over ``where``, its standard error)."""
  diff = (a - b)[where]
  if diff.size < 2:
    return (float(diff.mean()) if diff.size else math.nan), math.nan
  return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size))


def _top(values: np.ndarray, where: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k largest ``values`` among the examples ``where``."""
  return ranking(np.where(where, values, np.nan))[:min(k, int(where.sum()))]


def _row(fraction: float, k: int, removal: str, before: np.ndarray, after: np.ndarray,
         layer: np.ndarray, common: np.ndarray, metrics: dict) -> dict:
  """One removal's row; the vulnerabilities are compared on the ``common`` examples, those
  both removals of the fraction kept."""
  layer = layer & common
  nan = math.nan
  return {"fraction": fraction, "k": k, "removed": removal,
          "remaining": int(np.isfinite(after).sum()), **metrics,
          "compared": int(common.sum()),
          "mean_before": float(before[common].mean()), "mean_after": float(after[common].mean()),
          "layer": int(layer.sum()),
          "layer_before": float(before[layer].mean()) if layer.any() else nan,
          "layer_after": float(after[layer].mean()) if layer.any() else nan,
          "layer_in_top": int(layer[_top(after, common, k)].sum()),
          "top_before": float(before[_top(before, common, k)].mean()),
          "top_after": float(after[_top(after, common, k)].mean())}


def plot(result: StudyResult, path: str) -> None:
  """Left: each example's vulnerability before vs after removing the most vulnerable (the
  largest fraction; the next layer marked). Right: the next layer's mean vulnerability before,
  after random removal and after removing the most vulnerable, per fraction (+- SE)."""
  h, arrays = result.headline, result.arrays
  fractions = h["fractions"]
  last = len(fractions) - 1
  before = arrays["before"]
  after = arrays[f"after_top_{last}"]
  k = h["by_fraction"][f"{fractions[last]:g}"]["k"]
  layer = np.zeros(len(before), bool)
  layer[ranking(before)[k:2 * k]] = True
  kept = np.isfinite(after)
  fig, (ax1, ax2) = plotting.subplots(2)
  control = arrays[f"after_random_{last}"]
  both = kept & np.isfinite(control)
  ax1.scatter(before[both], control[both], s=4, color="0.7", alpha=0.5,
              label=f"k={k} random removed (control)")
  ax1.scatter(before[kept & ~layer], after[kept & ~layer], s=4, color="C0", alpha=0.5,
              label=f"k={k} most vulnerable removed")
  ax1.scatter(before[kept & layer], after[kept & layer], s=10, color="C3",
              label=f"the next layer (ranks {k + 1}-{2 * k} before)")
  ax1.plot([0, 1], [0, 1], "k--", lw=0.8)
  ax1.set_xlabel(f"vulnerability before ({h['attack']} per-example AUC)")
  ax1.set_ylabel("vulnerability after retraining")
  ax1.legend(fontsize=6, loc="lower right")
  width = 0.27
  x = np.arange(len(fractions))
  for j, (key, label, color) in enumerate((
      ("layer_before", "before", "0.5"),
      ("layer_after_random_removal", "after random removal", "0.8"),
      ("layer_after_top_removal", "after removing the most vulnerable", "C3"))):
    values = [h["by_fraction"][f"{f:g}"][key] for f in fractions]
    ax2.bar(x + (j - 1) * width, values, width, color=color, label=label)
  for i, f in enumerate(fractions):
    p = h["by_fraction"][f"{f:g}"]
    if p["effect_se"] is not None:
      ax2.errorbar(x[i] + width, p["layer_after_top_removal"], yerr=p["effect_se"], color="k",
                   capsize=3)
  ax2.axhline(0.5, color="k", lw=0.6, ls=":")
  ax2.set_xticks(x)
  ax2.set_xticklabels([f"{100 * f:g}% removed (k={h['by_fraction'][f'{f:g}']['k']})"
                       for f in fractions], fontsize=7)
  ax2.set_ylabel("mean vulnerability of the next layer")
  ax2.set_ylim(0.4, 1.0)
  ax2.legend(fontsize=6)
  c = result.context
  fig.suptitle(f"privacy onion effect ({c['data']}, {c['models']} {c['model']} models, "
               f"{c['ratios']}, {c['epochs']} epochs)")
  plotting.save(fig, path)


STUDY = Study(NAME, "the privacy onion effect: removing the most vulnerable exposes others",
              onion, run, plot)
