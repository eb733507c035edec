"""Finding mislabelled examples: which per-example score ranks flipped labels first.

A mislabelled training example can only be predicted by a model that trained on it: it is
memorized by definition, hard (a low C-score), learned late and forgotten often, and exposed to
membership inference. The survey of memorization lists noisy-label detection among the uses of
these scores. This study flips a fraction of the training labels to a random wrong class
(:func:`flip_labels`), trains an ensemble evaluated after every epoch, ranks the examples by
every score the ensemble gives without extra training, and measures how well each ranking finds
the flipped ones: the precision among the top k, k the number flipped (where precision and
recall are equal), and the AUROC of the whole ranking.

The scores, each oriented so that larger = more suspect:

* ``memorization``: Feldman & Zhang's score (IN accuracy - OUT accuracy);
* ``1 - held-out accuracy``: one minus the accuracy of the models that did not train on the
  example (the C-score at the run's subset ratio, :func:`memjax.estimators.cscore`);
* ``1 - IN accuracy``, ``final loss (IN)``: the final correctness and loss of the models that
  trained on it;
* the proxies of :mod:`memjax.proxies` the per-epoch records give: ``cumulative loss`` (CSL),
  ``1 - learning speed`` (mean true-class probability over epochs) and ``forgetting events``
  (Toneva et al.), each averaged over the IN models (a proxy from a single model is noisier);
* ``mia_auc_<attack>``: each attack's per-example AUC (:func:`memjax.attacks.evaluate_attacks`,
  the test split as RMIA's population).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import numpy as np
import scipy.stats

from memjax import attacks as attacks_lib
from memjax import estimators, plotting, proxies
from memjax.data import Dataset, load
from memjax.errors import MemjaxError
from memjax.studies.natural_vs_artificial import NOISY_LABEL, inject_artificial
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "noisy_labels"
RATES = (0.05, 0.1, 0.2)  # fractions of the training labels flipped
CHANCE = "chance (random ranking)"
KIND_STYLES = {"memorization": ("k", "-"), "C-score": ("C1", "-"), "final": ("C2", "--"),
               "proxy": ("C0", "-."), "attack": ("C3", ":")}


def flip_labels(data: Any, fraction: float, seed: int = 0) -> tuple[Dataset, np.ndarray]:
  """Flips round(fraction N) training labels, chosen at random, each to a random other class.

  Deterministic given ``seed``: the examples of :func:`memjax.studies.inject_artificial` with
  ``label_fraction=fraction`` and no noise inputs. The test split is unchanged.

  Args:
    data: dataset spec or Dataset.
    fraction: in (0, 1).
    seed: selection and label seed.

  Returns:
    (the Dataset, named ``NAME+flipFRACTION-sSEED`` and without a ``spec``; [N] bool, the
    flipped examples).
  """
  dataset = load(data)
  if not 0 < fraction < 1:
    raise MemjaxError(f"fraction={fraction}; flip a fraction of the labels in (0, 1), e.g. 0.1.")
  if dataset.num_classes < 2:
    raise MemjaxError(f"{dataset.name} has {dataset.num_classes} class; a label can only be "
                      "flipped to another class: use data with at least 2 classes.")
  flipped, groups = inject_artificial(dataset, label_fraction=fraction, input_fraction=0.0,
                                      seed=seed)
  return (dataclasses.replace(flipped, name=f"{dataset.name}+flip{fraction:g}-s{seed}",
                              spec=None), groups == NOISY_LABEL)


def precision_at_k(scores, positives, k: int | None = None) -> float:
  """The expected fraction of positives among the k highest scores, ties broken at random.

  Examples strictly above the k-th highest score count fully; those tied with it share the
  remaining places in proportion (the expectation over random tie-breaking), so a constant
  score gives the base rate. NaN scores rank last.

  Args:
    scores: [N] float, larger = more suspect.
    positives: [N] bool, e.g. the flipped labels.
    k: how many (default: the number of positives, where precision = recall).

  Returns:
    The precision in [0, 1].

  >>> precision_at_k([0.9, 0.8, 0.1, 0.0], [True, False, True, False])
  0.5
  >>> precision_at_k([1.0, 1.0, 1.0, 0.0], [True, False, False, False], k=1)  # a 3-way tie
  0.3333333333333333
  """
  s, pos = _check(scores, positives)
  k = int(pos.sum()) if k is None else int(k)
  if not 1 <= k <= len(s):
    raise MemjaxError(f"k={k}; rank at least 1 and at most the {len(s)} examples (with no "
                      "positives, pass k).")
  threshold = np.sort(s)[::-1][k - 1]
  above, tied = s > threshold, s == threshold
  places = k - int(above.sum())
  return float((pos[above].sum() + places * pos[tied].mean()) / k)


def detection_auroc(scores, positives) -> float:
  """P(score of a positive > score of a negative) + P(tie) / 2: the AUROC of the ranking.

  Args:
    scores: [N] float, larger = more suspect (NaN ranks last).
    positives: [N] bool, with both positives and negatives.

  >>> detection_auroc([0.9, 0.8, 0.1, 0.0], [True, False, True, False])
  0.75
  """
  s, pos = _check(scores, positives)
  n_pos, n_neg = int(pos.sum()), int((~pos).sum())
  if not n_pos or not n_neg:
    raise MemjaxError(f"detection_auroc needs positives and negatives; got {n_pos} and {n_neg}.")
  ranks = scipy.stats.rankdata(s)  # average ranks: ties count one half
  return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _check(scores, positives) -> tuple[np.ndarray, np.ndarray]:
  s = np.asarray(scores, np.float64)
  pos = np.asarray(positives, bool)
  if s.ndim != 1 or s.shape != pos.shape:
    raise MemjaxError(f"scores {s.shape} and positives {pos.shape} must be [N] arrays of the "
                      "same length.")
  return np.nan_to_num(s, nan=-np.inf), pos


def detection_scores(trained, attacks: Sequence[str] = attacks_lib.DEFAULT_ATTACKS
                     ) -> dict[str, tuple[str, np.ndarray]]:
  """Every score of one ensemble, oriented so that larger = more suspect.

  Args:
    trained: a :class:`memjax.Run` evaluated after every epoch (``eval_every=1``; with fewer
      evaluations the proxies see fewer epochs).
    attacks: the attacks whose per-example AUC is a score (RMIA uses the test split as its
      population).

  Returns:
    {name: (kind, [N] scores)}, kind one of "memorization", "C-score", "final", "proxy",
    "attack".
  """
  records, keep = trained.records, trained.keep
  correct = trained.correct
  loss = np.asarray(records.train_loss, np.float64)  # [T, M, N]
  with np.errstate(invalid="ignore", divide="ignore"):
    in_accuracy = (correct & keep).sum(0) / keep.sum(0)
  result = attacks_lib.evaluate_attacks(records.train_lira, keep, test_stats=records.test_lira,
                                        attacks=attacks)
  groups = trained.groups if len(np.unique(trained.groups)) > 1 else None
  scores = {
      "memorization": ("memorization", estimators.memorization(correct, keep, groups)),
      "1 - held-out accuracy": ("C-score", 1 - estimators.cscore(correct, keep, groups)),
      "1 - IN accuracy": ("final", 1 - in_accuracy),
      "final loss (IN)": ("final", proxies.cumulative(loss[-1:], keep)),
      "cumulative loss (CSL)": ("proxy", proxies.cumulative_loss(loss, keep)),
      "1 - learning speed": ("proxy", 1 - proxies.learning_speed(records.train_prob, keep)),
      "forgetting events": ("proxy", proxies.forgetting_events(
          records.train_correct, keep, records.eval_epochs).score)}
  for name, values in result.per_example_columns().items():
    scores[name] = ("attack", np.asarray(values, np.float64))
  return scores


def noisy_labels(data: Any = "digits", *, rates: Sequence[float] = RATES,
                 arch: Arch | None = None,
                 attacks: Sequence[str] = attacks_lib.DEFAULT_ATTACKS,
                 **settings) -> StudyResult:
  """Precision@k and AUROC of finding flipped labels by each per-example score.

  For each rate, flips that fraction of the training labels (:func:`flip_labels`, seeded by
  ``seed``), trains one ensemble of ``arch`` evaluated after every epoch, and ranks the
  examples by each score of :func:`detection_scores`. Rows: the scores and the chance level;
  columns per rate: ``precision@k RATE`` (k = the number flipped; equal to the recall at k) and
  ``auroc RATE``.

  Args:
    data: dataset spec or Dataset.
    rates: fractions of the labels flipped, each in (0, 1).
    arch: the architecture (default: the scale's ``epochs_arch``).
    attacks: the attacks whose per-example AUC is scored.
    **settings: fields of :class:`~memjax.studies.StudySettings`.

  Returns:
    :class:`StudyResult`; headline: per rate the number flipped, the test accuracy, the mean
    accuracy on the flipped examples of the models that trained on them (a flipped label that
    no model fits is not memorized), and the best score by precision@k and by AUROC; the
    best score over all rates (the highest mean precision@k); memorization's figures and the
    chance level.
  """
  return run(StudySettings.of(data, **settings), rates=rates, arch=arch, attacks=attacks)


def run(settings: StudySettings, *, rates: Sequence[float] = RATES, arch: Arch | None = None,
        attacks: Sequence[str] = attacks_lib.DEFAULT_ATTACKS) -> StudyResult:
  """:func:`noisy_labels` from settings."""
  rates = [float(r) for r in rates]
  if not rates or not all(0 < r < 1 for r in rates):
    raise MemjaxError(f"rates={rates}; flip fractions of the labels in (0, 1), e.g. "
                      "(0.05, 0.1, 0.2).")
  unknown = [a for a in attacks if a not in attacks_lib.ATTACKS]
  if unknown:
    raise MemjaxError(f"Unknown attack(s) {unknown}; choose from {', '.join(attacks_lib.ATTACKS)}.")
  dataset, sc = settings.dataset(), settings.scale_spec
  (arch,), notes = settings.usable([arch or sc.epochs_arch], "arch")
  models = settings.models or sc.models
  config = arch_config(settings.base_config(), arch, models, settings.epochs, settings.seed,
                       eval_every=1, default_epochs=sc.epochs)
  t0 = time.perf_counter()
  table: dict[str, dict] = {}
  headline = {"rates": rates, "model": arch_label(arch), "models": models,
              "epochs": config.epochs, "subset_ratios": list(config.ratios), "flipped": {},
              "test_acc": {}, "flipped_in_accuracy": {}, "best_precision": {},
              "best_auroc": {}, "memorization": {}, "chance": {}}
  for rate in rates:
    flipped_data, flipped = settings.runs.derived(
        dataset, ("flipped labels", rate, settings.seed),
        lambda: flip_labels(dataset, rate, settings.seed))
    trained, _ = settings.train(config, dataset=flipped_data)
    key = f"{rate:g}"
    scores = detection_scores(trained, attacks)
    # How many flipped labels the models that trained on them fit: the only ones memorized.
    headline["flipped_in_accuracy"][key] = float(1 - scores["1 - IN accuracy"][1][flipped].mean())
    for name, (kind, values) in scores.items():
      row = table.setdefault(name, {"score": name, "kind": kind})
      row[f"precision@k {key}"] = precision_at_k(values, flipped)
      row[f"auroc {key}"] = detection_auroc(values, flipped)
    chance = table.setdefault(CHANCE, {"score": CHANCE, "kind": "chance"})
    chance[f"precision@k {key}"] = float(flipped.mean())
    chance[f"auroc {key}"] = 0.5
    scored = [r for r in table.values() if r["kind"] != "chance"]
    headline["flipped"][key] = int(flipped.sum())
    headline["test_acc"][key] = float(trained.records.test_accuracy()[-1].mean())
    headline["best_precision"][key] = max(scored, key=lambda r: r[f"precision@k {key}"])["score"]
    headline["best_auroc"][key] = max(scored, key=lambda r: r[f"auroc {key}"])["score"]
    headline["memorization"][key] = {"precision": table["memorization"][f"precision@k {key}"],
                                     "auroc": table["memorization"][f"auroc {key}"]}
    headline["chance"][key] = chance[f"precision@k {key}"]
  rows = [r for name, r in table.items() if name != CHANCE] + [table[CHANCE]]
  for r in rows:
    r["mean_precision"] = float(np.mean([r[f"precision@k {r_:g}"] for r_ in rates]))
  best = max(rows[:-1], key=lambda r: r["mean_precision"])
  headline["best_overall"] = {"score": best["score"], "mean_precision": best["mean_precision"]}
  headline["wall_s"] = time.perf_counter() - t0
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(
          f"Finding flipped labels on {dataset.name} (N={dataset.num_train}): for each rate, "
          "that fraction of the training labels flipped to a random other class (seed "
          f"{settings.seed}), {models} {arch_label(arch)} models, {settings.ratio_text()}, "
          f"{config.epochs} epochs, evaluated every epoch. precision@k RATE: the fraction "
          "flipped among the k top-ranked examples, k = the number flipped (= recall at k; "
          "ties shared in expectation); auroc RATE: the AUROC of the ranking; mean_precision: "
          "the mean over the rates. Proxies and IN figures average the models that trained on "
          "the example; mia_auc_*: each attack's per-example AUC."),
      notes=notes, context={"data": dataset.name, "models": models, "model": arch_label(arch),
                            "epochs": config.epochs, "ratios": settings.ratio_text()})


def plot(result: StudyResult, path: str) -> None:
  """Precision@k (left) and AUROC (right) of each score vs the fraction of labels flipped."""
  rates = result.headline["rates"]
  fig, axes = plotting.subplots(2, 4.6, 4.2)
  counts: dict[str, int] = {}
  for r in result.rows:
    color, ls = KIND_STYLES.get(r["kind"], ("0.5", "--"))
    if r["kind"] == "chance":
      color, ls = "0.6", "-"
    n = counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    marker = "osD^v<>"[(n - 1) % 7]
    for ax, key in zip(axes, ("precision@k", "auroc")):
      ax.plot([100 * x for x in rates], [r[f"{key} {x:g}"] for x in rates], color=color, ls=ls,
              marker=marker, ms=4, lw=1.5 if r["kind"] == "memorization" else 1,
              label=r["score"])
  axes[0].set_ylabel("precision at k = number flipped (= recall)")
  axes[1].set_ylabel("AUROC of the ranking")
  for ax in axes:
    ax.set_xlabel("labels flipped (% of the training set)")
    ax.set_xticks([100 * x for x in rates])
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, fontsize=6, loc="outside right center")
  c = result.context
  fig.suptitle(f"finding flipped labels ({c['data']}, {c['models']} {c['model']} models, "
               f"{c['ratios']}, {c['epochs']} epochs)")
  plotting.save(fig, path)


STUDY = Study(NAME, "finding flipped labels: precision@k of each score", noisy_labels, run,
              plot)
