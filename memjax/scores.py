"""The per-example score table (``scores.csv``) and the end-of-run summary.

``scores.csv`` has one row per training example, in dataset order, with the columns

| column            | meaning                                                              |
|-------------------|----------------------------------------------------------------------|
| index             | position of the example in the training split                        |
| label             | its label                                                            |
| memorization      | Feldman & Zhang memorization (IN accuracy - OUT accuracy); with      |
|                   | several subset ratios, the mean over ratios of the within-ratio one  |
| memorization_se   | its standard error (Agresti-Caffo: never 0 with finitely many models)|
| memorization_lo,  | its 95% confidence interval (Newcombe's square-and-add rule on exact |
| memorization_hi   | per-side limits: at least 93% coverage up to p = 0 and 1)            |
| cscore, cscore_se | C-score (Jiang et al.: held-out accuracy averaged over the subset    |
|                   | ratios) and its standard error; only for runs with several ratios    |
| n_in, n_out       | number of models that trained / did not train on the example         |
| in_accuracy       | mean correctness over IN models                                      |
| out_accuracy      | mean correctness over OUT models: the held-out accuracy at the run's |
|                   | one ratio (a single-ratio run has no C-score; this is the nearest)   |
| out_accuracy_lo,  | its 95% Wilson interval                                              |
| out_accuracy_hi   |                                                                      |
| mean_loss_in/out  | mean final loss over IN / OUT models                                 |
| memorization_NAME | counterfactual memorization of each user measure NAME (IN mean - OUT |
|                   | mean of the real-valued measure), and ``memorization_NAME_se``       |

Other modules (attacks, proxies) may add columns; :func:`write_csv` writes any such dict.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from memjax import estimators, imports, models, privacy
from memjax.errors import MemjaxError
from memjax.records import Records


RANKINGS = ("score", "lower")  # most memorized by the score, or by its interval's lower bound
LEVEL = 0.95  # the confidence level of the table's intervals


def ratio_groups(records: Records) -> np.ndarray | None:
  """[M] subset-ratio group of each model when the run has several ratios, else None."""
  groups = np.asarray(records.groups)
  return groups if len(np.unique(groups)) > 1 else None


def table(records: Records) -> dict[str, np.ndarray]:
  """Columns of the score table, each [N], computed from the final-epoch records.

  With several subset ratios, memorization is estimated within each ratio and averaged
  (:func:`memjax.estimators.memorization` with ``groups``), and ``cscore`` is Jiang et al.'s
  C-score; with one ratio there is no C-score column (``out_accuracy`` is the held-out accuracy
  at that ratio).
  """
  keep = np.asarray(records.keep)
  correct = records.correct
  grouped = ratio_groups(records)
  loss = np.asarray(records.train_loss[-1], np.float64)
  n_in = keep.sum(0)
  n_out = keep.shape[0] - n_in
  hits_out = (correct & ~keep).sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    in_accuracy = (correct & keep).sum(0) / n_in
    out_accuracy = hits_out / n_out
    loss_in = np.where(keep, loss, 0).sum(0) / n_in
    loss_out = np.where(~keep, loss, 0).sum(0) / n_out
  low, high = estimators.memorization_ci(correct, keep, LEVEL, groups=grouped)
  columns = {
      "index": np.arange(keep.shape[1]),
      "label": np.asarray(records.train_labels),
      "memorization": estimators.memorization(correct, keep, groups=grouped),
      "memorization_se": estimators.memorization_se(correct, keep, groups=grouped),
      "memorization_lo": low,
      "memorization_hi": high,
  }
  if grouped is not None:
    columns["cscore"] = estimators.cscore(correct, keep, grouped)
    columns["cscore_se"] = estimators.cscore_se(correct, keep, grouped)
  out_low, out_high = estimators.proportion_ci(hits_out, n_out, LEVEL)
  columns.update({
      "n_in": n_in,
      "n_out": n_out,
      "in_accuracy": in_accuracy,
      "out_accuracy": out_accuracy,
      "out_accuracy_lo": out_low,
      "out_accuracy_hi": out_high,
      "mean_loss_in": loss_in,
      "mean_loss_out": loss_out,
  })
  for name in records.measures:
    values = np.asarray(records.measure(name)[-1], np.float64)
    columns[f"memorization_{name}"] = estimators.memorization(values, keep, groups=grouped)
    columns[f"memorization_{name}_se"] = estimators.memorization_se(values, keep,
                                                                    groups=grouped)
  return columns


def most_memorized(scores: dict[str, np.ndarray], k: int, rank: str = "score") -> np.ndarray:
  """Indices of the ``k`` most memorized examples, highest first (NaN scores last).

  Args:
    scores: the columns of :func:`table`.
    k: how many.
    rank: ``"score"`` ranks by memorization, the smaller standard error breaking ties;
      ``"lower"`` by the lower bound of the interval (``memorization_lo``): the examples most
      surely memorized, which favours those with more models and less noise.
  """
  if rank not in RANKINGS:
    raise MemjaxError(f"rank={rank!r}; rank the most memorized by one of {', '.join(RANKINGS)}.")
  key = scores["memorization" if rank == "score" else "memorization_lo"]
  key = np.nan_to_num(np.asarray(key, np.float64), nan=-np.inf)
  se = np.nan_to_num(np.asarray(scores["memorization_se"], np.float64), nan=np.inf)
  return np.lexsort((se, -key))[:k]


def write_csv(path: str, columns: dict[str, np.ndarray]) -> None:
  """Writes equal-length columns as a CSV with a header (floats with 6 significant digits)."""
  names = list(columns)
  arrays = [np.asarray(columns[n]) for n in names]
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(names)
    for row in zip(*arrays):
      writer.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row])
  os.replace(tmp, path)


def read_csv(path: str) -> dict[str, np.ndarray]:
  """Reads a CSV written by :func:`write_csv` back into numpy columns."""
  data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
  return {name: np.asarray(data[name]) for name in data.dtype.names}


def describe_algorithm(config) -> str:
  """One line naming the optimizer, the loss and the recorded measures of a run."""
  if config.optimizer is None:
    optimizer = (f"SGD (momentum {config.momentum}{', Nesterov' if config.nesterov else ''}, "
                 f"weight decay {config.weight_decay}, {config.schedule} schedule, peak lr "
                 f"{config.learning_rate})")
  else:
    optimizer = imports.describe(config.optimizer)
    if config.optimizer_kwargs:
      optimizer += " " + json.dumps(config.optimizer_kwargs)
  loss = imports.describe(config.loss)
  if config.label_smoothing:
    loss += f" (label smoothing {config.label_smoothing})"
  text = f"optimizer {optimizer}; loss {loss}; batch {config.batch_size}"
  if config.batch_sampling == "poisson":
    text += " (expected; Poisson sampling)"
  if config.measures:
    text += f"; measures {', '.join(config.measures)}"
  return text


def _canary_lines(record) -> list[str]:
  """The summary's line on the run's canaries (none without)."""
  if not record:
    return []
  first, last = record["indices"][0], record["indices"][-1]
  return [f"  canaries: {record['count']} {record['kind']} (seed {record['seed']}, training "
          f"indices {first}..{last}); `memjax attack DIR` audits epsilon with them"]


def summary(run, top: int = 10, rank: str = "score") -> str:
  """A plain-text summary of a run: accuracies, fit warning, memorized count, top examples
  (ranked by :func:`most_memorized` with ``rank``)."""
  records = run.records
  scores = table(records)
  train_acc = records.train_accuracy()[-1]
  heldout_acc = records.heldout_accuracy()[-1]
  test_acc = records.test_accuracy()[-1]
  mem = scores["memorization"]
  info = run.info
  timings = info.get("timings", {})
  config = run.config
  lines = [
      f"memjax run: {records.num_models} models x {info['data']['name']} "
      f"({records.num_examples} train / {len(records.test_labels)} test examples), "
      f"model {models.model_name(config.model)} ({info.get('num_params', '?'):,} params), "
      f"{config.epochs} epochs",
      f"  training: {describe_algorithm(config)}",
      f"  features: {run.data.preprocessing}",
      *([f"  privacy: {privacy.describe(info['privacy'])}"] if info.get("privacy") else []),
      *_canary_lines(info["data"].get("canaries")),
      f"  train accuracy (own subset): {train_acc.mean():.4f} (min {train_acc.min():.4f})",
      f"  held-out train accuracy:     {heldout_acc.mean():.4f}",
      f"  test accuracy:               {test_acc.mean():.4f} +- {test_acc.std():.4f}",
  ]
  diverged = info.get("diverged_models", [])
  if diverged:
    lines.append(
        f"  WARNING: {len(diverged)} model(s) diverged (non-finite loss; listed in run.json): "
        "their predictions count as wrong. Lower the learning rate.")
  if train_acc.mean() < 0.95:
    lines.append(
        f"  WARNING: models under-fit their subsets (mean train accuracy {train_acc.mean():.3f}"
        " < 0.95). Memorization estimates assume models fit their training data: train longer "
        "(--epochs), raise the learning rate, or use a larger model.")
  finite = np.isfinite(mem)
  half = (scores["memorization_hi"] - scores["memorization_lo"]) / 2
  median_half = np.nanmedian(half) if np.isfinite(half).any() else float("nan")
  surely = estimators.count_memorized(scores["memorization_lo"])
  ratios = ", ".join(f"{r:g}" for r in config.ratios)
  lines += [
      f"  memorization: mean {np.nanmean(mem):.4f}, "
      f"{estimators.count_memorized(mem)} of {finite.sum()} examples >= "
      f"{estimators.DEFAULT_THRESHOLD} ({surely} with the whole {LEVEL:.0%} interval above; "
      f"median interval half-width {median_half:.3f})",
      f"  subset ratio{'s' if len(config.ratios) > 1 else ''}: {ratios}"
      + (" (memorization averaged over the ratios; cscore = Jiang et al.'s C-score)"
         if "cscore" in scores else " (one ratio: out_accuracy is the held-out accuracy at it;"
         " C-scores need several ratios, --preset cscore)"),
  ]
  if (~finite).any():
    lines.append(f"  {int((~finite).sum())} examples have no IN or no OUT model (NaN scores); "
                 "train more models.")
  if timings:
    lines.append(
        f"  time: {timings.get('total_s', 0):.1f} s total, compile {timings.get('compile_s', 0):.1f}"
        f" s, {timings.get('model_epochs_per_s', 0):,.0f} model-epochs/s training")
  held_out = "cscore" if "cscore" in scores else "out_accuracy"
  by = "score" if rank == "score" else "lower bound of the interval"
  lines.append(f"  most memorized, by {by} (index label memorization [{LEVEL:.0%} interval] "
               f"{'C-score' if held_out == 'cscore' else 'held-out accuracy'}):")
  for i in most_memorized(scores, top, rank):
    lines.append(f"    {i:6d} {scores['label'][i]:5d}  {mem[i]:+.3f} "
                 f"[{scores['memorization_lo'][i]:+.3f}, {scores['memorization_hi'][i]:+.3f}]  "
                 f"{scores[held_out][i]:.3f}")
  return "\n".join(lines)
