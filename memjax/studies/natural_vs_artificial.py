"""Natural vs artificial memorization: injected noisy labels and noise inputs vs natural points.

The literature on *artificial* memorization (mislabelled or noise examples) reports that models
memorize more of them as they grow and train longer; the paper's point is that *natural*
memorization does not behave like that. This study injects both kinds of artificial points
(:func:`inject_artificial`) into a copy of the training set, trains one ensemble per size
evaluated after every epoch, and follows each group's memorization.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import numpy as np

from memjax import estimators, plotting
from memjax.data import Dataset, load
from memjax.errors import MemjaxError
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "natural_vs_artificial"
NATURAL, NOISY_LABEL, NOISY_INPUT = 0, 1, 2
GROUP_NAMES = ("natural", "noisy_label", "noisy_input")


def inject_artificial(data: Any, label_fraction: float = 0.05, input_fraction: float = 0.05,
                      seed: int = 0) -> tuple[Dataset, np.ndarray]:
  """Artificial memorization: mislabel some training examples, replace others by noise.

  Disjoint random subsets: ``label_fraction`` of the examples get a label drawn uniformly from
  the *other* classes (noisy label); ``input_fraction`` have their features replaced by Gaussian
  noise with the training set's per-feature mean and standard deviation and a uniformly random
  label (noisy input). The test split is unchanged.

  Args:
    data: dataset spec or Dataset.
    label_fraction, input_fraction: fractions in [0, 1) with a sum below 1.
    seed: selection and noise seed.

  Returns:
    (the modified Dataset, groups [N] int: 0 natural, 1 noisy label, 2 noisy input).
  """
  dataset = load(data)
  if not (0 <= label_fraction < 1 and 0 <= input_fraction < 1
          and label_fraction + input_fraction < 1):
    raise MemjaxError(f"label_fraction={label_fraction}, input_fraction={input_fraction}: each "
                      "must lie in [0, 1) and their sum below 1 (e.g. 0.05 and 0.05).")
  n = dataset.num_train
  rng = np.random.default_rng(seed)
  order = rng.permutation(n)
  n_label, n_input = int(round(label_fraction * n)), int(round(input_fraction * n))
  groups = np.zeros(n, np.int32)
  groups[order[:n_label]] = NOISY_LABEL
  groups[order[n_label:n_label + n_input]] = NOISY_INPUT
  x = dataset.x_train.copy()
  y = dataset.y_train.copy()
  c = dataset.num_classes
  lab = groups == NOISY_LABEL
  y[lab] = (y[lab] + rng.integers(1, c, lab.sum())) % c
  inp = groups == NOISY_INPUT
  mean, std = dataset.x_train.mean(0), dataset.x_train.std(0)
  x[inp] = mean + std * rng.standard_normal((inp.sum(), *x.shape[1:])).astype(np.float32)
  y[inp] = rng.integers(0, c, inp.sum())
  injected = dataclasses.replace(dataset, x_train=x, y_train=y.astype(np.int32),
                                 name=f"{dataset.name}+artificial", raw_train=None)
  return injected, groups


def natural_vs_artificial(data: Any = "digits", *, archs: Sequence[Arch] | None = None,
                          label_fraction: float | None = None,
                          input_fraction: float | None = None, **settings) -> StudyResult:
  """How natural and artificial (noisy label / noisy input) memorization respond to size, epochs.

  Injects artificial points (:func:`inject_artificial`), trains one ensemble per size
  (``archs``, default the scale's ``artificial_archs``) evaluated after every epoch, and reports
  per size and epoch, for each group, the mean memorization score and the fraction memorized.

  Args:
    data: dataset spec or Dataset.
    archs: architectures ordered by size.
    label_fraction, input_fraction: injected fractions (default: the scale's).
    **settings: fields of :class:`~memjax.studies.StudySettings`.

  Returns:
    :class:`StudyResult`; headline: per group, the mean score and fraction memorized by size at
    the last epoch and over epochs for the largest model, and the direction of each trend.
  """
  return run(StudySettings.of(data, **settings), archs=archs, label_fraction=label_fraction,
             input_fraction=input_fraction)


def run(settings: StudySettings, *, archs: Sequence[Arch] | None = None,
        label_fraction: float | None = None,
        input_fraction: float | None = None) -> StudyResult:
  """:func:`natural_vs_artificial` from settings."""
  dataset, sc, threshold = settings.dataset(), settings.scale_spec, settings.threshold
  label_fraction = sc.label_fraction if label_fraction is None else label_fraction
  input_fraction = sc.input_fraction if input_fraction is None else input_fraction
  injected, groups = settings.runs.injected(dataset, label_fraction, input_fraction,
                                            settings.seed, inject_artificial)
  archs, notes = settings.usable(archs or sc.artificial_archs, "archs")
  models = settings.models or sc.models
  base = settings.base_config()
  t0 = time.perf_counter()
  rows, curves = [], {}
  for arch in archs:
    config = arch_config(base, arch, models, settings.epochs, settings.seed, eval_every=1,
                         default_epochs=sc.epochs)
    trained, _ = settings.train(config, dataset=injected)
    history = estimators.memorization_history(trained.records.train_correct,
                                              trained.keep)  # [T, N]
    epoch = np.asarray(trained.records.eval_epochs)
    test_acc = trained.records.test_accuracy().mean(-1)
    curve = {}  # group: ([T] mean score, [T] fraction memorized)
    for g, group in enumerate(GROUP_NAMES):
      scores = history[:, groups == g]
      if not scores.shape[1]:  # an empty group (a fraction of 0)
        curve[group] = (np.full(len(epoch), np.nan),) * 2
        continue
      with np.errstate(invalid="ignore"):
        curve[group] = (np.nanmean(scores, axis=1),
                        estimators.is_memorized(scores, threshold).mean(1))
    curves[arch_label(arch)] = curve
    for t in range(len(epoch)):
      row = {"model": arch_label(arch), "params": int(trained.info["num_params"]),
             "epoch": int(epoch[t]), "test_acc": float(test_acc[t])}
      for group in GROUP_NAMES:
        row[f"{group}_mean"] = float(curve[group][0][t])
        row[f"{group}_frac"] = float(curve[group][1][t])
      rows.append(row)
  labels = list(curves)
  headline = {"counts": {g: int((groups == i).sum()) for i, g in enumerate(GROUP_NAMES)},
              "threshold": threshold, "subset_ratios": list(base.ratios),
              "by_size_last_epoch": {}, "by_epoch_largest": {},
              "size_trend": {}, "epoch_trend_after_peak": {}}
  for group in GROUP_NAMES:
    last = [float(curves[label][group][0][-1]) for label in labels]
    headline["by_size_last_epoch"][group] = dict(zip(labels, last))
    mean_curve = curves[labels[-1]][group][0]
    headline["by_epoch_largest"][group] = [float(v) for v in mean_curve]
    headline["size_trend"][group] = float(last[-1] - last[0])
    peak = int(np.nanargmax(mean_curve)) if np.isfinite(mean_curve).any() else 0
    headline["epoch_trend_after_peak"][group] = float(mean_curve[-1] - mean_curve[peak])
  headline["models"], headline["epochs"] = models, settings.epochs or sc.epochs
  headline["wall_s"] = time.perf_counter() - t0
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(f"{dataset.name} with {headline['counts']['noisy_label']} noisy labels and "
                   f"{headline['counts']['noisy_input']} Gaussian-noise inputs injected; "
                   f"{models} models per size, {settings.ratio_text()}, evaluated every epoch. "
                   "*_mean = mean memorization "
                   f"score of the group, *_frac = fraction with score >= {threshold}."),
      notes=notes, context={"data": dataset.name})


def plot(result: StudyResult, path: str) -> None:
  """Each group's mean score vs parameters at the last epoch (left) and over epochs (right)."""
  labels = list(dict.fromkeys(result.column("model")))
  by_label = {label: [r for r in result.rows if r["model"] == label] for label in labels}
  fig, (ax1, ax2) = plotting.subplots(2)
  for i, group in enumerate(GROUP_NAMES):
    ax1.plot([by_label[label][-1]["params"] for label in labels],
             [by_label[label][-1][f"{group}_mean"] for label in labels], marker="o",
             color=f"C{i}", label=group)
    for j, label in enumerate(labels):
      rows = by_label[label]
      ax2.plot([r["epoch"] for r in rows], [r[f"{group}_mean"] for r in rows], color=f"C{i}",
               alpha=0.35 + 0.65 * j / max(1, len(labels) - 1),
               label=f"{group} {label}" if j in (0, len(labels) - 1) else None)
  ax1.set_xscale("log")
  ax1.set_xlabel("parameters per model")
  ax1.set_ylabel("mean memorization score (last epoch)")
  ax2.set_xlabel("epoch")
  ax2.set_ylabel("mean memorization score")
  ax1.legend(fontsize=7)
  ax2.legend(fontsize=6)
  fig.suptitle(f"natural vs artificial memorization ({result.context['data']})")
  plotting.save(fig, path)


STUDY = Study(NAME, "injected noisy labels / noisy inputs vs natural points",
              natural_vs_artificial, run, plot)
