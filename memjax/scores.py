"""The per-example score table (``scores.csv``) and the end-of-run summary.

``scores.csv`` has one row per training example, in dataset order, with the columns

| column            | meaning                                                              |
|-------------------|----------------------------------------------------------------------|
| index             | position of the example in the training split                        |
| label             | its label                                                            |
| memorization      | Feldman & Zhang memorization (IN accuracy - OUT accuracy)           |
| memorization_se   | its standard error                                                   |
| cscore            | C-score: accuracy when held out (mean over ratio groups if several)  |
| cscore_se         | its standard error                                                   |
| n_in, n_out       | number of models that trained / did not train on the example         |
| in_accuracy       | mean correctness over IN models                                      |
| out_accuracy      | mean correctness over OUT models                                     |
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

from memjax import estimators, imports, models
from memjax.records import Records


def table(records: Records) -> dict[str, np.ndarray]:
  """Columns of the score table, each [N], computed from the final-epoch records."""
  keep = np.asarray(records.keep)
  correct = records.correct
  groups = np.asarray(records.groups)
  grouped = groups if len(np.unique(groups)) > 1 else None
  loss = np.asarray(records.train_loss[-1], np.float64)
  n_in = keep.sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    in_accuracy = (correct & keep).sum(0) / n_in
    out_accuracy = (correct & ~keep).sum(0) / (keep.shape[0] - n_in)
    loss_in = np.where(keep, loss, 0).sum(0) / n_in
    loss_out = np.where(~keep, loss, 0).sum(0) / (keep.shape[0] - n_in)
  columns = {
      "index": np.arange(keep.shape[1]),
      "label": np.asarray(records.train_labels),
      "memorization": estimators.memorization(correct, keep),
      "memorization_se": estimators.memorization_se(correct, keep),
      "cscore": estimators.cscore(correct, keep, grouped),
      "cscore_se": estimators.cscore_se(correct, keep, grouped),
      "n_in": n_in,
      "n_out": keep.shape[0] - n_in,
      "in_accuracy": in_accuracy,
      "out_accuracy": out_accuracy,
      "mean_loss_in": loss_in,
      "mean_loss_out": loss_out,
  }
  for name in records.measures:
    values = np.asarray(records.measure(name)[-1], np.float64)
    columns[f"memorization_{name}"] = estimators.memorization(values, keep)
    columns[f"memorization_{name}_se"] = estimators.memorization_se(values, keep)
  return columns


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
  if config.measures:
    text += f"; measures {', '.join(config.measures)}"
  return text


def summary(run, top: int = 10) -> str:
  """A plain-text summary of a run: accuracies, fit warning, memorized count, top examples."""
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
  se = scores["memorization_se"]
  median_se = np.nanmedian(se) if np.isfinite(se).any() else float("nan")  # nan: 1 IN or OUT
  lines += [
      f"  memorization: mean {np.nanmean(mem):.4f}, "
      f"{estimators.count_memorized(mem)} of {finite.sum()} examples >= "
      f"{estimators.DEFAULT_THRESHOLD} (median s.e. {median_se:.3f})",
  ]
  if (~finite).any():
    lines.append(f"  {int((~finite).sum())} examples have no IN or no OUT model (NaN scores); "
                 "train more models.")
  if timings:
    lines.append(
        f"  time: {timings.get('total_s', 0):.1f} s total, compile {timings.get('compile_s', 0):.1f}"
        f" s, {timings.get('model_epochs_per_s', 0):,.0f} model-epochs/s training")
  order = np.argsort(np.nan_to_num(-mem, nan=np.inf))[:top]
  lines.append(f"  most memorized (index label memorization +- s.e. cscore):")
  for i in order:
    lines.append(f"    {i:6d} {scores['label'][i]:5d}  {mem[i]:+.3f} +- "
                 f"{scores['memorization_se'][i]:.3f}  {scores['cscore'][i]:.3f}")
  return "\n".join(lines)
