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

**Language models** (text datasets): every row is a training sequence, and ``memorization`` is
Zhang et al.'s *counterfactual memorization* on token accuracy (IN mean - OUT mean of the
fraction of the sequence's tokens the model predicts), with its interval; ``in_accuracy`` and
``out_accuracy`` are those token accuracies. ``label`` is replaced by ``tokens`` (the sequence's
length) and the table gains

| column                    | meaning                                                        |
|---------------------------|----------------------------------------------------------------|
| memorization_loglik(_se)  | counterfactual memorization on the mean token log-likelihood   |
| extraction_in/out         | fraction of IN / OUT models whose greedy decoding from the     |
|                           | sequence's prefix reproduces the rest (``records.correct``)    |
| memorization_extraction   | extraction_in - extraction_out                                 |
| text                      | the sequence (when the dataset is at hand), last               |

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


def primary_values(records: Records) -> np.ndarray:
  """[M, N] the final values memorization is measured on: correctness (bool) for classifiers,
  token accuracy (float) for language models."""
  if getattr(records, "task", "classification") == "language_model":
    return np.asarray(records.train_token_accuracy[-1], np.float64)
  return records.correct


def table(records: Records, data=None) -> dict[str, np.ndarray]:
  """Columns of the score table, each [N], computed from the final-epoch records.

  With several subset ratios, memorization is estimated within each ratio and averaged
  (:func:`memjax.estimators.memorization` with ``groups``), and ``cscore`` is Jiang et al.'s
  C-score; with one ratio there is no C-score column (``out_accuracy`` is the held-out accuracy
  at that ratio). Language models: see the module docstring; ``data`` (the run's text Dataset)
  adds the ``text`` column.
  """
  if getattr(records, "task", "classification") == "language_model":
    return _sequence_table(records, data)
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
  columns = _memorization_columns(correct, keep, grouped, "label",
                                  np.asarray(records.train_labels))
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


def _memorization_columns(values: np.ndarray, keep: np.ndarray, grouped, label_name: str,
                          labels: np.ndarray) -> dict[str, np.ndarray]:
  """The table's first columns: index, the labels (or a sequence's tokens), memorization of
  ``values`` [M, N] with its SE and interval, and with several ratios the C-score."""
  low, high = estimators.memorization_ci(values, keep, LEVEL, groups=grouped)
  columns = {
      "index": np.arange(keep.shape[1]),
      label_name: labels,
      "memorization": estimators.memorization(values, keep, groups=grouped),
      "memorization_se": estimators.memorization_se(values, keep, groups=grouped),
      "memorization_lo": low,
      "memorization_hi": high,
  }
  if grouped is not None:
    columns["cscore"] = estimators.cscore(values, keep, grouped)
    columns["cscore_se"] = estimators.cscore_se(values, keep, grouped)
  return columns


def _sequence_table(records: Records, data=None) -> dict[str, np.ndarray]:
  """The score table of a language model's run (see the module docstring)."""
  keep = np.asarray(records.keep)
  grouped = ratio_groups(records)
  accuracy = primary_values(records)
  loglik = np.asarray(records.train_token_loglik[-1], np.float64)
  loss = np.asarray(records.train_loss[-1], np.float64)
  extracted = records.correct
  n_in = keep.sum(0)
  n_out = keep.shape[0] - n_in

  def side_means(values, mask):
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.where(mask, values, 0).sum(0) / mask.sum(0)

  columns = _memorization_columns(accuracy, keep, grouped, "tokens",
                                  np.asarray(records.train_labels))
  columns.update({
      "n_in": n_in,
      "n_out": n_out,
      "in_accuracy": side_means(accuracy, keep),
      "out_accuracy": side_means(accuracy, ~keep),
      "memorization_loglik": estimators.memorization(loglik, keep, groups=grouped),
      "memorization_loglik_se": estimators.memorization_se(loglik, keep, groups=grouped),
      "extraction_in": side_means(extracted, keep),
      "extraction_out": side_means(extracted, ~keep),
      "mean_loss_in": side_means(loss, keep),
      "mean_loss_out": side_means(loss, ~keep),
  })
  columns["memorization_extraction"] = columns["extraction_in"] - columns["extraction_out"]
  for name in records.measures:
    values = np.asarray(records.measure(name)[-1], np.float64)
    columns[f"memorization_{name}"] = estimators.memorization(values, keep, groups=grouped)
    columns[f"memorization_{name}_se"] = estimators.memorization_se(values, keep,
                                                                    groups=grouped)
  if data is not None and data.num_train == keep.shape[1]:
    columns["text"] = np.asarray(data.texts("train"), dtype=object)
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
  """Reads a CSV written by :func:`write_csv` back into numpy columns (numbers as int64 or
  float64 arrays, other columns, e.g. a language model's ``text``, as str arrays)."""
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
  if not rows:
    raise MemjaxError(f"{path} is empty; it holds no score table.")
  header, body = rows[0], rows[1:]
  columns = {}
  for j, name in enumerate(header):
    cells = [row[j] for row in body]
    for dtype in (np.int64, np.float64):
      try:
        columns[name] = np.asarray(cells, dtype=dtype) if cells else np.zeros(0, dtype)
        break
      except ValueError:
        continue
    else:
      columns[name] = np.asarray(cells, dtype=str)
  return columns


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


def _coverage_and_time_lines(finite: np.ndarray, timings: dict, noun: str,
                             rate_digits: int) -> list[str]:
  """The summary's lines on scores without IN or OUT models (``finite`` [N] False) and on the
  run's time (``timings`` of run.json; none when empty)."""
  lines = []
  if (~finite).any():
    lines.append(f"  {int((~finite).sum())} {noun} have no IN or no OUT model (NaN scores); "
                 "train more models.")
  if timings:
    lines.append(
        f"  time: {timings.get('total_s', 0):.1f} s total, compile {timings.get('compile_s', 0):.1f}"
        f" s, {timings.get('model_epochs_per_s', 0):,.{rate_digits}f} model-epochs/s training")
  return lines


def summary(run, top: int = 10, rank: str = "score") -> str:
  """A plain-text summary of a run: accuracies, fit warning, memorized count, top examples
  (ranked by :func:`most_memorized` with ``rank``)."""
  records = run.records
  if getattr(records, "task", "classification") == "language_model":
    return _sequence_summary(run, top=top, rank=rank)
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
  lines += _coverage_and_time_lines(finite, timings, "examples", rate_digits=0)
  held_out = "cscore" if "cscore" in scores else "out_accuracy"
  by = "score" if rank == "score" else "lower bound of the interval"
  lines.append(f"  most memorized, by {by} (index label memorization [{LEVEL:.0%} interval] "
               f"{'C-score' if held_out == 'cscore' else 'held-out accuracy'}):")
  for i in most_memorized(scores, top, rank):
    lines.append(f"    {i:6d} {scores['label'][i]:5d}  {mem[i]:+.3f} "
                 f"[{scores['memorization_lo'][i]:+.3f}, {scores['memorization_hi'][i]:+.3f}]  "
                 f"{scores[held_out][i]:.3f}")
  return "\n".join(lines)


def _side_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """[M] mean of values [M, N] over each model's masked examples (NaN where none)."""
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(mask, values, 0).sum(-1) / mask.sum(-1)


def _shown(text: str, width: int = 70) -> str:
  """A sequence on one summary line: repr-quoted, newlines escaped, cut at ``width``."""
  text = repr(str(text))
  return text if len(text) <= width else text[:width - 3] + "..."


def _sequence_summary(run, top: int = 10, rank: str = "score") -> str:
  """:func:`summary` of a language model's run: token accuracy and log-likelihood, extraction,
  counterfactual memorization, the most and least memorized sequences as text, canaries."""
  records, config, info = run.records, run.config, run.info
  keep = np.asarray(records.keep)
  scores = table(records, run.data)
  accuracy = primary_values(records)
  loglik = np.asarray(records.train_token_loglik[-1], np.float64)
  extracted = records.correct
  test_accuracy = np.asarray(records.test_token_accuracy[-1], np.float64).mean(-1)
  test_loglik = np.asarray(records.test_token_loglik[-1], np.float64).mean(-1)
  test_extracted = records.test_correct_final.mean(-1)
  own, held = _side_mean(accuracy, keep), _side_mean(accuracy, ~keep)
  mem = scores["memorization"]
  timings = info.get("timings", {})
  prefix = ("half of each sequence" if config.prefix_length is None
            else f"the first {config.prefix_length} tokens")
  lines = [
      f"memjax run: {records.num_models} language models x {info['data']['name']} "
      f"({records.num_examples} train / {len(records.test_labels)} test sequences), "
      f"model {models.model_name(config.model)} ({info.get('num_params', '?'):,} params), "
      f"{config.epochs} epochs",
      f"  training: {describe_algorithm(config)}",
      f"  data: {run.data.preprocessing}",
      *([f"  privacy: {privacy.describe(info['privacy'])}"] if info.get("privacy") else []),
      f"  token accuracy: own subset {np.nanmean(own):.4f} (min {np.nanmin(own):.4f}), held-out "
      f"train {np.nanmean(held):.4f}, test {test_accuracy.mean():.4f} +- {test_accuracy.std():.4f}",
      f"  token log-likelihood (nats): own subset {np.nanmean(_side_mean(loglik, keep)):.3f}, "
      f"held-out train {np.nanmean(_side_mean(loglik, ~keep)):.3f}, test {test_loglik.mean():.3f}",
      f"  extraction (greedy decoding from {prefix} gives the rest): own subset "
      f"{np.nanmean(_side_mean(extracted, keep)):.2%}, held-out train "
      f"{np.nanmean(_side_mean(extracted, ~keep)):.2%}, test {test_extracted.mean():.2%}",
  ]
  diverged = info.get("diverged_models", [])
  if diverged:
    lines.append(f"  WARNING: {len(diverged)} model(s) diverged (non-finite loss; listed in "
                 "run.json). Lower the learning rate.")
  finite = np.isfinite(mem)
  surely = estimators.count_memorized(scores["memorization_lo"])
  lines.append(
      f"  counterfactual memorization (token accuracy IN - OUT, Zhang et al.): mean "
      f"{np.nanmean(mem):.4f}, {estimators.count_memorized(mem)} of {finite.sum()} sequences >= "
      f"{estimators.DEFAULT_THRESHOLD} ({surely} with the whole {LEVEL:.0%} interval above)")
  lines += _coverage_and_time_lines(finite, timings, "sequences", rate_digits=1)
  texts = scores.get("text")
  by = "score" if rank == "score" else "lower bound of the interval"
  order = distinct_sequences(most_memorized(scores, len(mem), rank), run.data.canaries)
  order = order[np.isfinite(mem[order])]
  copies = canary_copies(run.data.canaries)
  for title, rows in ((f"most memorized, by {by}", order[:top]),
                      ("least memorized", order[::-1][:min(top, 5)])):
    lines.append(f"  {title} (index memorization [{LEVEL:.0%} interval] held-out token "
                 "accuracy text):")
    for i in rows:
      text = _shown(texts[i]) if texts is not None else ""
      if copies.get(int(i), 1) > 1:
        text += f" (canary, {copies[int(i)]} copies)"
      lines.append(f"    {i:6d}  {mem[i]:+.3f} [{scores['memorization_lo'][i]:+.3f}, "
                   f"{scores['memorization_hi'][i]:+.3f}]  {scores['out_accuracy'][i]:.3f}  "
                   f"{text}")
  if records.has_canaries and run.data.canaries is not None:
    lines += _canary_summary(records, run.data.canaries)
  return "\n".join(lines)


def canary_copies(record) -> dict[int, int]:
  """{first row of a text canary: its number of copies} (empty without text canaries)."""
  if not record or "copies" not in record:
    return {}
  return {int(rows[0]): len(rows) for rows in record["copies"]}


def distinct_sequences(order: np.ndarray, record) -> np.ndarray:
  """``order`` without the second and later copies of each repeated text canary (their scores
  equal the first copy's: all copies are IN or OUT together), for listings of sequences."""
  if not record or "copies" not in record:
    return np.asarray(order)
  later = {int(r) for rows in record["copies"] for r in rows[1:]}
  return np.asarray([i for i in order if int(i) not in later], dtype=np.asarray(order).dtype)


def _canary_summary(records: Records, record) -> list[str]:
  """Exposure and extraction of a language model's canaries, by number of repetitions."""
  from memjax import exposure
  columns = exposure.canary_table(records.canary_loglik[-1], records.canary_extracted[-1],
                                  records.keep, record)
  repeats = np.asarray(columns["repeats"])
  method = str(np.asarray(columns["method"])[0])
  space = record["space_size"]
  lines = [f"  canaries: {len(repeats)} secrets of {record['digits']} digits, exposure by "
           f"{method} over {space:,} candidates (max {np.log2(space):.1f} bits); "
           "DIR/canaries.csv has every canary",
           "    repeats  exposure IN  exposure OUT  extraction IN  extraction OUT"]
  for r in np.unique(repeats):
    pick = repeats == r
    lines.append(
        f"    {r:7d}  {np.nanmean(columns['exposure_in'][pick]):11.2f}  "
        f"{np.nanmean(columns['exposure_out'][pick]):12.2f}  "
        f"{np.nanmean(columns['extraction_in'][pick]):13.1%}  "
        f"{np.nanmean(columns['extraction_out'][pick]):14.1%}")
  return lines
