"""The HTML report of a finished run: ``memjax report DIR`` or :func:`write_report`.

The report is one self-contained HTML file: inline CSS, every figure a base64-embedded PNG, no
scripts and no external assets, so it opens offline in any browser and can be mailed around. It
shows, for the run in ``DIR``:

* the headline numbers (accuracies, memorized count) and the run's configuration, data, design,
  devices, timings and versions;
* a histogram of the memorization scores with the 0.25 threshold of Feldman & Zhang marked;
* the most and the least memorized training examples with their labels and scores (images for
  image data, a table otherwise);
* C-score against memorization;
* per-epoch curves (accuracies, memorized count, mean memorization) when the run evaluated after
  more than one epoch (``eval_every``);
* membership inference: the attack table and the log-log ROC when ``memjax attack DIR`` has
  written ``attacks.json`` and ``roc.png`` into the run directory;
* privacy, when the run has a DP guarantee (run.json ``privacy``) or an empirical audit of its
  canaries (attacks.json ``privacy_audit``): the theoretical epsilon beside the empirical lower
  bound.

Images need the training data: it is reloaded from the run's data spec (``run.json``). When that
fails (an in-memory dataset, a moved file, an unprepared TFDS dataset) the report says so and
leaves the images out; pass ``data=`` (``--data SPEC``) to point at the data.

The ``figure_*`` functions return matplotlib Figures (Agg canvas, pyplot untouched) and are shared
with the notebooks.

>>> path = write_report("runs/digits-mlp-20250101-120000")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import json
import math
import os
import time
from typing import Any, Sequence

import numpy as np

from memjax import auditing, canaries, correlation, estimators, plotting
from memjax import scores as scores_lib
from memjax import records as records_lib
from memjax.errors import MemjaxError
from memjax.formatting import markdown_table  # noqa: F401 (kept as report.markdown_table)
from memjax.plotting import figure_png  # noqa: F401 (kept as report.figure_png)

THRESHOLD = estimators.DEFAULT_THRESHOLD  # Feldman & Zhang's threshold for "memorized"
REPORT_NAME = "report.html"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReportInputs:
  """Everything the report shows, read from a run directory.

  Attributes:
    directory: the run directory.
    info: the parsed ``run.json``.
    records: the run's :class:`memjax.records.Records` (memory-mapped).
    scores: the score table (:func:`memjax.scores.table`), columns [N].
    extra_columns: further per-example columns of ``scores.csv`` (e.g. ``mia_auc_<attack>``).
    data: the training data for images, or None when it could not be reloaded.
    attacks: the parsed ``attacks.json``, or None.
    roc_png: the bytes of ``roc.png``, or None.
    notes: sentences about what the report had to leave out, and why.
  """

  directory: str
  info: dict[str, Any]
  records: Any
  scores: dict[str, np.ndarray]
  extra_columns: dict[str, np.ndarray]
  data: Any
  attacks: dict[str, Any] | None
  roc_png: bytes | None
  notes: list[str]


def load_inputs(run_dir: str, data: Any = None) -> ReportInputs:
  """Reads a finished run directory for the report.

  Args:
    run_dir: a directory written by ``memjax run`` / ``memjax.train(..., directory=...)``.
    data: optional dataset (a spec string or a :class:`memjax.Dataset`) to take the images
      from, instead of reloading the run's own data spec.

  Raises:
    MemjaxError: when ``run_dir`` is not a memjax run directory or the run has not finished.
  """
  from memjax import scores as scores_lib
  from memjax.records import Records

  from memjax import runner
  info = runner.read_run_info(run_dir)
  records = Records.load(os.path.join(run_dir, "records"))
  _check_finished(run_dir, info, records)
  notes: list[str] = []
  dataset = _load_data(info, records, data, notes)
  attacks, roc_png = _load_attacks(run_dir, notes)
  return ReportInputs(directory=run_dir, info=info, records=records,
                      scores=scores_lib.table(records, dataset),
                      extra_columns=_extra_columns(run_dir, records.num_examples),
                      data=dataset, attacks=attacks, roc_png=roc_png, notes=notes)


def _check_finished(run_dir: str, info: dict, records) -> None:
  done = records.num_models
  progress = os.path.join(run_dir, "progress.json")
  if os.path.exists(progress):
    with open(progress) as f:
      done = json.load(f).get("completed_models", done)
  if not info.get("finished") or done < records.num_models:
    raise MemjaxError(
        f"The run in {run_dir!r} has not finished ({done} of {records.num_models} models "
        "trained), so its scores are incomplete. Finish it with `memjax run --resume "
        f"{run_dir}`, then write the report.")


def _load_data(info: dict, records, data: Any, notes: list[str]):
  """The run's training data for images, or None with a note saying why not."""
  from memjax import data as data_lib

  spec = data if data is not None else info.get("data_spec")
  if spec is None:
    notes.append("The run was trained on in-memory arrays (no data spec in run.json), so the "
                 "report cannot show its training examples. Pass the data: `memjax report DIR "
                 "--data SPEC` or write_report(DIR, data=dataset).")
    return None
  try:
    dataset = data_lib.load(spec) if data is not None else data_lib.load(
        spec, standardize=info["data"].get("standardized", True))
    dataset = canaries.apply_record(dataset, info["data"].get("canaries"))
  except Exception as e:  # any loader failure degrades to a report without images
    notes.append(f"Could not reload the training data {_spec_name(spec)} ({e}); the report "
                 "shows no example images. Pass the data with `--data SPEC`.")
    return None
  if dataset.num_train != records.num_examples or not np.array_equal(
      records_lib.example_labels(dataset.y_train), np.asarray(records.train_labels)):
    notes.append(f"The data {_spec_name(spec)} does not match the run ({dataset.num_train} "
                 f"examples vs {records.num_examples} trained on, or different labels); the "
                 "report shows no example images.")
    return None
  return dataset


def _spec_name(spec: Any) -> str:
  return repr(spec) if isinstance(spec, str) else f"<{type(spec).__name__}>"


def _load_attacks(run_dir: str, notes: list[str]) -> tuple[dict | None, bytes | None]:
  attacks = roc_png = None
  path = os.path.join(run_dir, "attacks.json")
  if os.path.exists(path):
    try:
      with open(path) as f:
        attacks = json.load(f)
      if not isinstance(attacks.get("attacks"), dict):
        raise ValueError("no 'attacks' mapping")
    except (OSError, ValueError) as e:
      notes.append(f"attacks.json could not be read ({e}); run `memjax attack DIR` again.")
      attacks = None
  roc_path = os.path.join(run_dir, "roc.png")
  if os.path.exists(roc_path):
    with open(roc_path, "rb") as f:
      roc_png = f.read()
    if not roc_png.startswith(PNG_MAGIC):
      notes.append("roc.png is not a PNG file; the ROC is drawn from attacks.json instead.")
      roc_png = None
  return attacks, roc_png


def _extra_columns(run_dir: str, num_examples: int) -> dict[str, np.ndarray]:
  """Numeric columns of scores.csv beyond the standard table (e.g. mia_auc_<attack>)."""
  path = os.path.join(run_dir, "scores.csv")
  if not os.path.exists(path):
    return {}
  with open(path, newline="") as f:
    reader = csv.reader(f)
    header = next(reader, [])
    wanted = [i for i, name in enumerate(header) if name.startswith("mia_auc_")]
    if not wanted:
      return {}
    rows = [[row[i] for i in wanted] for row in reader]
  if len(rows) != num_examples:
    return {}
  values = np.array([[_float(v) for v in row] for row in rows], np.float64).reshape(-1, len(wanted))
  return {header[i]: values[:, k] for k, i in enumerate(wanted)}


def _float(text: str) -> float:
  try:
    return float(text)
  except ValueError:
    return math.nan


# ----------------------------------------------------------------------------------------------
# Derived tables
# ----------------------------------------------------------------------------------------------


def epoch_table(records, threshold: float = THRESHOLD) -> dict[str, np.ndarray]:
  """Per-evaluation-epoch summary of a run, each column [T].

  Columns: ``epoch``; ``train_accuracy`` (mean over models of the accuracy on their own subset),
  ``heldout_accuracy`` (on the training examples they did not see), ``test_accuracy``, ``gap``
  (train - test accuracy); ``mean_memorization`` and ``memorized`` (examples with memorization
  >= threshold) from the correctness after that epoch.
  """
  if getattr(records, "task", "") == "language_model":  # token accuracy
    values = np.asarray(records.train_token_accuracy, np.float64)
    keep = np.asarray(records.keep)
    with np.errstate(invalid="ignore", divide="ignore"):
      train = ((values * keep).sum(-1) / keep.sum(-1)).mean(-1)
      heldout = ((values * ~keep).sum(-1) / (~keep).sum(-1)).mean(-1)
    test = np.asarray(records.test_token_accuracy, np.float64).mean((-2, -1))
  else:
    values = records.train_correct
    train = records.train_accuracy().mean(-1)
    heldout = records.heldout_accuracy().mean(-1)
    test = records.test_accuracy().mean(-1)
  hist = estimators.memorization_history(values, records.keep)  # [T, N]
  finite = np.isfinite(hist).any(-1)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_mem = np.where(finite, np.nansum(hist, -1) / np.isfinite(hist).sum(-1), math.nan)
  return {
      "epoch": np.asarray(records.eval_epochs, np.int64),
      "train_accuracy": train,
      "heldout_accuracy": heldout,
      "test_accuracy": test,
      "gap": train - test,
      "mean_memorization": mean_mem,
      "memorized": estimators.is_memorized(hist, threshold).sum(-1).astype(np.int64),
  }


def held_out_column(scores: dict[str, np.ndarray]) -> tuple[str, str]:
  """(column, name): the C-score when the run has several subset ratios, else the held-out
  accuracy at its one ratio (``out_accuracy``), which is not a C-score."""
  if "cscore" in scores:
    return "cscore", "C-score"
  return "out_accuracy", "held-out accuracy"


def ranked_examples(scores: dict[str, np.ndarray], k: int,
                    rank: str = "score") -> tuple[np.ndarray, np.ndarray]:
  """(most, least): indices of the k most memorized and the k least memorized examples.

  Most memorized: :func:`memjax.scores.most_memorized` with ``rank`` (by score, the smaller
  standard error breaking ties; or by the lower bound of the interval). Least memorized: lowest
  memorization first, the higher C-score (or held-out accuracy) breaking ties (the most
  typical). Examples with a NaN score (no IN or no OUT model) are left out.
  """
  mem = np.asarray(scores["memorization"], np.float64)
  held = np.nan_to_num(np.asarray(scores[held_out_column(scores)[0]], np.float64), nan=-np.inf)
  finite = np.flatnonzero(np.isfinite(mem))
  most = scores_lib.most_memorized(scores, min(k, finite.size), rank)  # NaN scores rank last
  least = finite[np.lexsort((-held[finite], mem[finite]))][:k]
  return most, least


def display_images(raw: np.ndarray) -> np.ndarray:
  """Images [K, H, W, C] as float values in [0, 1] for display.

  uint8 images are divided by 255, floats already in [0, 1] are kept, floats in [0, 255] are
  divided by 255, anything else (e.g. standardised features) is min-max scaled per image.
  """
  raw = np.asarray(raw)
  if raw.dtype == np.uint8:
    return raw.astype(np.float32) / 255.0
  x = raw.astype(np.float32)
  lo, hi = float(np.min(x)), float(np.max(x))
  if lo >= 0 and hi <= 1:
    return x
  if lo >= 0 and hi <= 255 and hi > 1:
    return x / 255.0
  flat = x.reshape(len(x), -1)
  low = flat.min(1).reshape(-1, *[1] * (x.ndim - 1))
  span = np.maximum(flat.max(1) - flat.min(1), 1e-12).reshape(low.shape)
  return (x - low) / span


def _label_name(label: int, class_names, prefix: bool = False) -> str:
  if class_names and 0 <= label < len(class_names):
    name = str(class_names[label])
    return name if name != str(label) or not prefix else f"label {name}"
  return f"label {label}" if prefix else str(label)


def score_rows(scores: dict[str, np.ndarray], index: Sequence[int],
               columns: Sequence[str] = ("index", "label", "memorization", "memorization_lo",
                                         "memorization_hi", "in_accuracy",
                                         "out_accuracy")) -> list:
  """Rows of the score table for the examples ``index`` (for :func:`markdown_table`)."""
  return [[scores[c][i].item() if hasattr(scores[c][i], "item") else scores[c][i]
           for c in columns] for i in index]


# ----------------------------------------------------------------------------------------------
# Figures (Agg canvas, no pyplot)
# ----------------------------------------------------------------------------------------------


def figure_histogram(memorization: np.ndarray, threshold: float = THRESHOLD, title: str = "",
                     xlabel: str = "memorization score  P(correct | IN) - P(correct | OUT)"):
  """Histogram of memorization scores, bars at or above ``threshold`` highlighted.

  Args:
    memorization: [N] scores (NaN ignored).
    threshold: the "memorized" threshold, drawn as a dashed line.
    title: optional title.
    xlabel: the x axis' label (what the score measures).
  """
  mem = np.asarray(memorization, np.float64)
  mem = mem[np.isfinite(mem)]
  fig = plotting.figure(7.5, 3.6)
  ax = fig.add_subplot()
  lo = min(-0.1, math.floor(mem.min() * 20) / 20) if mem.size else -0.1
  bins = np.arange(lo, 1.0 + 1e-9 + 0.05, 0.05) - 0.025
  counts, edges, patches = ax.hist(mem, bins=bins, color="#4c72b0", edgecolor="white", lw=0.5)
  for left, patch in zip(edges[:-1], patches):
    if left + 0.025 >= threshold - 1e-9:
      patch.set_facecolor("#dd8452")
  n_mem = int(np.sum(mem >= threshold))
  ax.axvline(threshold, color="#c44e52", ls="--", lw=1.5,
             label=f"threshold {threshold:g}: {n_mem} of {mem.size} memorized "
             f"({100 * n_mem / max(mem.size, 1):.1f}%)")
  if counts.size and counts.max() > 0:
    ax.set_yscale("symlog", linthresh=10)
  ax.set_xlabel(xlabel)
  ax.set_ylabel("training examples")
  ax.set_title(title or "Memorization scores")
  ax.legend(loc="upper right", fontsize=8)
  ax.grid(True, axis="y", alpha=0.3)
  fig.tight_layout()
  return fig


def figure_examples(images: np.ndarray, captions: Sequence[str], title: str, ncols: int = 8):
  """A grid of images with a caption above each, drawn as one mosaic (fast for many images).

  Args:
    images: [K, H, W, C] values in [0, 1] (see :func:`display_images`); C = 1 is drawn grey.
    captions: K strings (may contain one newline).
    title: the figure title.
    ncols: images per row.
  """
  images = np.asarray(images, np.float32)
  k, h, w = images.shape[:3]
  ncols = max(1, min(ncols, k))
  nrows = max(1, math.ceil(k / ncols))
  rgb = images[..., :3] if images.shape[-1] >= 3 else np.repeat(images[..., :1], 3, axis=-1)
  pad_x, pad_top, pad_bottom = max(1, round(0.3 * w)), max(2, round(0.55 * h)), max(1, h // 20)
  cell_w, cell_h = w + pad_x, h + pad_top + pad_bottom
  mosaic = np.ones((nrows * cell_h, ncols * cell_w, 3), np.float32)
  height = 1.55 * nrows + 0.45
  fig = plotting.figure(1.3 * ncols, height)
  ax = fig.add_axes((0.005, 0.005, 0.99, 1 - 0.5 / height))
  for j in range(k):
    row, col = divmod(j, ncols)
    y0, x0 = row * cell_h + pad_top, col * cell_w + pad_x // 2
    mosaic[y0:y0 + h, x0:x0 + w] = np.clip(rgb[j], 0, 1)
    ax.text(x0 + (w - 1) / 2, y0 - 0.5 - 0.04 * h, captions[j], ha="center", va="bottom",
            fontsize=7.5, linespacing=1.1)
  ax.imshow(mosaic, interpolation="nearest" if h <= 64 else "antialiased")
  ax.set_axis_off()
  fig.suptitle(title, fontsize=11, y=1 - 0.12 / height)
  return fig


def figure_scatter(cscore: np.ndarray, memorization: np.ndarray, labels: np.ndarray | None = None,
                   threshold: float = THRESHOLD, xlabel: str = "C-score"):
  """C-score (or held-out accuracy) against memorization, one point per example (coloured by
  label up to 10 classes).

  Memorization is IN accuracy minus OUT accuracy; with one subset ratio the held-out accuracy
  is the OUT accuracy, so every point lies on or below the line memorization = 1 - it (drawn).
  """
  cs, mem = np.asarray(cscore, np.float64), np.asarray(memorization, np.float64)
  ok = np.isfinite(cs) & np.isfinite(mem)
  fig = plotting.figure(6.0, 4.4)
  ax = fig.add_subplot()
  rng = np.random.default_rng(0)  # jitter: many points share the same few values
  jitter = lambda n: rng.uniform(-0.008, 0.008, n)
  if labels is not None and len(np.unique(labels[ok])) <= 10:
    for c in np.unique(labels[ok]):
      sel = ok & (labels == c)
      ax.scatter(cs[sel] + jitter(sel.sum()), mem[sel] + jitter(sel.sum()), s=7, alpha=0.55,
                 label=str(c), lw=0)
    ax.legend(title="label", fontsize=7, title_fontsize=7, loc="upper right", markerscale=2,
              ncols=2)
  else:
    ax.scatter(cs[ok] + jitter(ok.sum()), mem[ok] + jitter(ok.sum()), s=7, alpha=0.5, lw=0)
  ax.plot([0, 1], [1, 0], "k:", lw=1, label="_bound")
  ax.axhline(threshold, color="#c44e52", ls="--", lw=1)
  ax.set_xlim(-0.03, 1.03)
  ax.set_xlabel(f"{xlabel}  (accuracy when held out)")
  ax.set_ylabel("memorization")
  r = correlation.pearson(cs[ok], mem[ok])["r"]
  ax.set_title(f"{xlabel} vs memorization"
               + ("" if math.isnan(r) else f"  (Pearson r = {r:.2f})"))
  ax.grid(True, alpha=0.3)
  fig.tight_layout()
  return fig


def figure_epochs(table: dict[str, np.ndarray], threshold: float = THRESHOLD):
  """Per-epoch curves from :func:`epoch_table`: accuracies (left), memorization (right)."""
  epochs = table["epoch"]
  fig = plotting.figure(10.0, 3.7)
  ax = fig.add_subplot(1, 2, 1)
  ax.plot(epochs, table["train_accuracy"], "o-", ms=3, label="train (own subset)")
  ax.plot(epochs, table["heldout_accuracy"], "s-", ms=3, label="held-out train examples")
  ax.plot(epochs, table["test_accuracy"], "^-", ms=3, label="test")
  ax.set_xlabel("epoch")
  ax.set_ylabel("mean accuracy over models")
  ax.set_title("Accuracy per epoch")
  ax.legend(fontsize=8)
  ax.grid(True, alpha=0.3)
  ax = fig.add_subplot(1, 2, 2)
  ax.plot(epochs, table["memorized"], "o-", ms=3, color="#dd8452",
          label=f"memorized (>= {threshold:g})")
  ax.set_xlabel("epoch")
  ax.set_ylabel(f"examples with memorization >= {threshold:g}", color="#dd8452")
  twin = ax.twinx()
  twin.plot(epochs, table["mean_memorization"], "s--", ms=3, color="#4c72b0",
            label="mean memorization")
  twin.set_ylabel("mean memorization", color="#4c72b0")
  ax.set_title("Memorization per epoch")
  ax.grid(True, alpha=0.3)
  fig.tight_layout()
  return fig


def figure_roc(attacks: dict[str, Any], title: str = ""):
  """Log-log ROC curves from a parsed ``attacks.json`` (its per-attack ``roc`` curves)."""
  curves, lo = [], 1.0
  for name, a in attacks.get("attacks", {}).items():
    roc = a.get("roc") or {}
    fpr = np.asarray([np.nan if v is None else v for v in roc.get("fpr", [])], np.float64)
    tpr = np.asarray([np.nan if v is None else v for v in roc.get("tpr", [])], np.float64)
    if not ((fpr > 0) & (tpr > 0)).any():
      continue
    lo = min(lo, 1.0 / max(a.get("num_nonmembers") or 1, 1))
    auc = a.get("auc")
    curves.append((name + ("" if auc is None else f" (AUC {auc:.3f})"), fpr, tpr))
  return plotting.roc_figure(curves, lo, title or "Membership inference ROC")


def figure_vulnerability(memorization: np.ndarray, columns: dict[str, np.ndarray]):
  """Memorization against each attack's per-example AUC (``mia_auc_<attack>`` columns)."""
  mem = np.asarray(memorization, np.float64)
  fig = plotting.figure(6.0, 4.2)
  ax = fig.add_subplot()
  for name, auc in columns.items():
    ok = np.isfinite(mem) & np.isfinite(auc)
    ax.scatter(mem[ok], auc[ok], s=6, alpha=0.45, lw=0, label=name.removeprefix("mia_auc_"))
  ax.axhline(0.5, color="k", ls=":", lw=1)
  ax.set_xlabel("memorization")
  ax.set_ylabel("per-example attack AUC")
  ax.set_title("Memorization vs membership leakage")
  ax.legend(fontsize=7, markerscale=2)
  ax.grid(True, alpha=0.3)
  fig.tight_layout()
  return fig


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1d2330;line-height:1.45}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:0 0 10px;border-bottom:1px solid #dfe3ea;
padding-bottom:4px}
.sub{color:#5b6476;margin:0 0 14px}
nav a{margin-right:14px;color:#2f5fb3;text-decoration:none;font-size:.92em}
section{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:16px 20px;margin:16px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:1.35em}.card span{color:#5b6476;font-size:.85em}
.grid3{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
table{border-collapse:collapse;font-size:.88em;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #edf0f4;vertical-align:top}
th{background:#f1f3f7;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
img.fig{max-width:100%;height:auto;display:block;margin:6px auto}img.roc{max-width:620px}
.note{background:#fff8e6;border-left:4px solid #e0a800;padding:8px 12px;margin:8px 0;font-size:.92em}
.warn{background:#fdecea;border-left:4px solid #c44e52;padding:8px 12px;margin:8px 0}
.muted{color:#5b6476;font-size:.88em}code{background:#f1f3f7;padding:1px 4px;border-radius:3px}
"""


def _esc(x: Any) -> str:
  return html.escape(str(x), quote=True)


def _img(png: bytes, alt: str, cls: str = "fig") -> str:
  data = base64.b64encode(png).decode("ascii")
  return f'<img class="{cls}" alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _fig_img(fig, alt: str) -> str:
  return _img(figure_png(fig), alt)


def _section(sid: str, title: str, body: str) -> str:
  return f'<section id="{sid}"><h2>{_esc(title)}</h2>\n{body}\n</section>'


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]],
           numeric: Sequence[bool] = ()) -> str:
  """An HTML table; ``numeric[j]`` right-aligns column j; no header row when header is None."""
  width = len(header) if header else max((len(r) for r in rows), default=0)
  numeric = list(numeric) + [False] * (width - len(numeric))
  head = ("<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead>"
          if header else "")
  body = "".join(
      "<tr>" + "".join(f'<td class="num">{_esc(c)}</td>' if numeric[j] else f"<td>{_esc(c)}</td>"
                       for j, c in enumerate(row)) + "</tr>" for row in rows)
  return f"<table>{head}<tbody>{body}</tbody></table>"


def _kv_table(title: str, items: Sequence[tuple[str, Any]]) -> str:
  return f'<div><h3 class="muted">{_esc(title)}</h3>' + _table(None, items) + "</div>"


def _fmt(v: Any, digits: int = 4) -> str:
  if v is None:
    return "n/a"
  if isinstance(v, (float, np.floating)):
    return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
  if isinstance(v, (list, tuple)):
    return ", ".join(_fmt(x, digits) for x in v) if v else "(none)"
  if isinstance(v, dict):
    return json.dumps(v) if v else "(none)"
  return str(v)


def _seconds(s: Any) -> str:
  if not isinstance(s, (int, float)):
    return "n/a"
  return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _header(inp: ReportInputs) -> str:
  info, records, scores = inp.info, inp.records, inp.scores
  cfg = info["config"]
  mem = scores["memorization"]
  finite = np.isfinite(mem)
  n_mem = estimators.count_memorized(mem, THRESHOLD)
  lm = getattr(records, "task", "") == "language_model"
  if lm:  # token accuracies of each model
    accuracy = np.asarray(records.train_token_accuracy[-1], np.float64)
    keep = np.asarray(records.keep)
    train = (accuracy * keep).sum(-1) / keep.sum(-1)
    heldout = (accuracy * ~keep).sum(-1) / np.maximum((~keep).sum(-1), 1)
    test = np.asarray(records.test_token_accuracy[-1], np.float64).mean(-1)
  else:
    train = records.train_accuracy()[-1]
    heldout = records.heldout_accuracy()[-1]
    test = records.test_accuracy()[-1]
  what = "token accuracy" if lm else "accuracy"
  params = info.get("num_params")
  cards = [
      (f"{records.num_models:,}", "models trained"),
      (f"{records.num_examples:,} / {len(records.test_labels):,}",
       "train / test sequences" if lm else "train / test examples"),
      (f"{cfg['model']}", f"{params:,} parameters" if isinstance(params, int) else "model"),
      (f"{train.mean():.3f}", f"train {what} (own subset)"),
      (f"{heldout.mean():.3f}", f"held-out train {what}"),
      (f"{test.mean():.3f} ± {test.std():.3f}", f"test {what}"),
      (f"{n_mem:,} ({100 * n_mem / max(finite.sum(), 1):.1f}%)",
       f"memorized (score ≥ {THRESHOLD:g})"),
      (f"{np.nanmean(scores['memorization_se']):.3f}", "mean s.e. of memorization"),
      (_seconds(info.get("timings", {}).get("total_s")), "training time"),
  ]
  body = '<div class="cards">' + "".join(
      f'<div class="card"><b>{_esc(v)}</b><span>{_esc(k)}</span></div>' for v, k in cards) + "</div>"
  if train.mean() < 0.95 and not lm:
    body += (f'<div class="warn">The models under-fit their subsets (mean train accuracy '
             f'{train.mean():.3f} &lt; 0.95). Memorization estimates assume models fit their '
             "training data: train longer, raise the learning rate, or use a larger model.</div>")
  if (~finite).any():
    body += (f'<div class="note">{int((~finite).sum())} examples have no IN or no OUT model '
             "(NaN scores) and are left out of the plots; train more models.</div>")
  body += "".join(f'<div class="note">{_esc(n)}</div>' for n in inp.notes)
  return body


def _config_section(inp: ReportInputs) -> str:
  info = inp.info
  cfg = info["config"]
  data = info.get("data", {})
  design = info.get("design", {})
  timings = info.get("timings", {})
  run_items = [(k, f"{v:.6g}" if isinstance(v, float) else "None" if v is None else _fmt(v))
               for k, v in cfg.items()]
  data_items = [
      ("data spec", _fmt(info.get("data_spec"))), ("name", _fmt(data.get("name"))),
      ("train / test examples", f"{data.get('num_train')} / {data.get('num_test')}"),
      ("feature shape", _fmt(data.get("feature_shape"))),
      ("classes", _fmt(data.get("num_classes"))),
      ("design", f"{design.get('kind')} (ratios {_fmt(design.get('ratios'), 2)}, seed "
                 f"{design.get('seed')})"),
      ("grown from", _fmt(info.get("grown_from"))) if info.get("grown_from") else None,
      ("canaries", f"{data['canaries']['count']} {data['canaries']['kind']} (seed "
                   f"{data['canaries']['seed']}, training indices "
                   f"{data['canaries']['indices'][0]}..{data['canaries']['indices'][-1]})")
      if data.get("canaries") else None,
  ]
  data_items = [x for x in data_items if x is not None]
  run_env = [
      ("created", _fmt(info.get("created"))), ("backend", _fmt(info.get("backend"))),
      ("devices", f"{len(info.get('devices', []))}: {_fmt(info.get('devices'))}"),
      ("models per chunk", _fmt(info.get("chunk_size"))),
      ("steps per epoch", _fmt(info.get("steps_per_epoch"))),
      ("eval epochs", _fmt(info.get("eval_epochs"))),
      ("compile", _seconds(timings.get("compile_s"))),
      ("training", _seconds(timings.get("train_s"))),
      ("evaluation", _seconds(timings.get("eval_s"))),
      ("total", _seconds(timings.get("total_s"))),
      ("throughput", f"{timings['model_epochs_per_s']:,.0f} model-epochs/s"
       if isinstance(timings.get("model_epochs_per_s"), (int, float)) else "n/a"),
  ] + [(f"{k} version", v) for k, v in info.get("versions", {}).items()]
  body = ('<div class="grid3">' + _kv_table("training configuration", run_items)
          + _kv_table("data and design", data_items)
          + _kv_table("devices, timings, versions", run_env) + "</div>")
  return _section("configuration", "Configuration", body)


def _histogram_section(inp: ReportInputs) -> str:
  mem = inp.scores["memorization"]
  if getattr(inp.records, "task", "") == "language_model":
    fig = figure_histogram(mem, xlabel="counterfactual memorization  token accuracy IN - OUT",
                           title="Counterfactual memorization of the training sequences")
    body = _fig_img(fig, "histogram of counterfactual memorization")
    body += ('<p class="muted">Counterfactual memorization of sequence i (Zhang et al. 2021) is '
             "the mean token accuracy on i of the models that trained on it minus that of the "
             "models that did not; token accuracy is the fraction of the sequence's tokens "
             f"predicted from the tokens before them. Sequences at or above {THRESHOLD:g} "
             "(orange) are highlighted.</p>")
    return _section("histogram", "Counterfactual memorization", body)
  body = _fig_img(figure_histogram(mem), "histogram of memorization scores")
  body += ('<p class="muted">Memorization of example i is the accuracy on i of the models that '
           "trained on it minus that of the models that did not (Feldman &amp; Zhang 2020); "
           f"examples at or above {THRESHOLD:g} (orange) count as memorized. The y axis is linear "
           "up to 10 examples and logarithmic above.</p>")
  return _section("histogram", "Memorization scores", body)


def _interval(scores, i: int, digits: int = 2) -> str:
  return (f"{scores['memorization'][i]:.{digits}f} [{scores['memorization_lo'][i]:.{digits}f}, "
          f"{scores['memorization_hi'][i]:.{digits}f}]")


def _examples_section(inp: ReportInputs, top: int, rank: str = "score") -> str:
  scores = inp.scores
  most, least = ranked_examples(scores, top, rank)
  held, held_name = held_out_column(scores)
  by = ("the smaller standard error breaking ties" if rank == "score" else
        "ranked by the lower bound of the interval (the most surely memorized)")
  data = inp.data
  class_names = None if data is None else data.class_names
  if getattr(inp.records, "task", "") == "language_model":
    return _sequences_section(inp, most, least, held_name, by)
  if data is not None and data.is_image:
    raw = data.raw_train if data.raw_train is not None else data.x_train
    body = ""
    for idx, title, alt in ((most, f"The {len(most)} most memorized training examples",
                             "most memorized training images"),
                            (least, f"The {len(least)} least memorized training examples",
                             "least memorized training images")):
      images = display_images(np.asarray(raw)[idx])
      captions = [f"#{i} {_label_name(int(scores['label'][i]), class_names, prefix=True)}\n"
                  f"{_interval(scores, i)}" for i in idx]
      body += _fig_img(figure_examples(images, captions, title), alt)
    body += ('<p class="muted">Caption: training index, label, memorization [95% interval]. '
             f"Most memorized: {_esc(by)}; least memorized: ties broken by the higher "
             f"{_esc(held_name)}.</p>")
  else:
    why = ("The data is not images, so the examples are listed."
           if data is not None else "The training data could not be reloaded (see the notes "
           "above), so the examples are listed without images.")
    body = f'<p class="muted">{_esc(why)}</p>'
    for idx, title in ((most, "Most memorized"), (least, "Least memorized")):
      rows = [(int(i), _label_name(int(scores["label"][i]), class_names),
               _interval(scores, i, 3), _fmt(float(scores[held][i]), 3),
               _fmt(float(scores["in_accuracy"][i]), 3),
               _fmt(float(scores["out_accuracy"][i]), 3)) for i in idx]
      body += f"<h3>{_esc(title)}</h3>" + _table(
          ("index", "label", "memorization [95% interval]", held_name, "IN accuracy",
           "OUT accuracy"), rows, (True, False, True, True, True, True))
  return _section("examples", "Most and least memorized examples", body)


def _sequences_section(inp: ReportInputs, most, least, held_name: str, by: str) -> str:
  """The most and least memorized training sequences of a language model's run, as text."""
  scores = inp.scores
  texts = scores.get("text")
  body = ("" if texts is not None else '<p class="muted">The training data could not be '
          "reloaded (see the notes above), so the sequences are listed without their text.</p>")
  for idx, title in ((most, "Most memorized"), (least, "Least memorized")):
    rows = [(int(i), _interval(scores, i, 3), _fmt(float(scores["in_accuracy"][i]), 3),
             _fmt(float(scores["out_accuracy"][i]), 3),
             f"{scores['extraction_in'][i]:.0%} / {scores['extraction_out'][i]:.0%}",
             "" if texts is None else str(texts[i])) for i in idx]
    body += f"<h3>{_esc(title)}</h3>" + _table(
        ("index", "memorization [95% interval]", "IN token acc.", f"OUT token acc. "
         f"({held_name})", "extracted IN / OUT", "text"), rows,
        (True, True, True, True, True, False))
  body += ('<p class="muted">Memorization: counterfactual memorization on token accuracy. '
           "Extracted: the fraction of IN / OUT models whose greedy decoding from the sequence's "
           f"prefix reproduces the rest. Most memorized: {_esc(by)}.</p>")
  return _section("examples", "Most and least memorized sequences", body) + _canaries_section(inp)


def _canaries_section(inp: ReportInputs) -> str:
  """Exposure and extraction of a language model's text canaries, by repetitions."""
  records, data = inp.records, inp.data
  if not records.has_canaries or data is None or data.canaries is None:
    return ""
  from memjax import exposure
  columns = exposure.canary_table(records.canary_loglik[-1], records.canary_extracted[-1],
                                  records.keep, data.canaries)
  rows = [(int(columns["canary"][k]), str(columns["prefix"][k]) + str(columns["secret"][k]),
           int(columns["repeats"][k]), f"{columns['exposure_in'][k]:.2f}",
           f"{columns['exposure_out'][k]:.2f}", f"{columns['extraction_in'][k]:.0%}",
           f"{columns['extraction_out'][k]:.0%}") for k in range(len(columns["canary"]))]
  record = data.canaries
  body = (f'<p class="muted">{len(rows)} secrets of {record["digits"]} digits inserted with the '
          "given repetitions, each IN for the models that trained on it (all its copies "
          f"together). Exposure (Carlini et al. 2019) by {_esc(str(columns['method'][0]))} over "
          f"{record['space_size']:,} candidate secrets (at most "
          f"{np.log2(record['space_size']):.1f} bits by exact ranking), mean over IN and over "
          "OUT models; extraction: greedy decoding from the prefix gives the secret.</p>")
  body += _table(("canary", "text", "repeats", "exposure IN", "exposure OUT", "extracted IN",
                  "extracted OUT"), rows, (True, False, True, True, True, True, True))
  return _section("canaries", "Canaries: exposure and extraction", body)


def _scatter_section(inp: ReportInputs) -> str:
  s = inp.scores
  held, name = held_out_column(s)
  labels = np.asarray(s["label"]) if "label" in s else None
  fig = figure_scatter(s[held], s["memorization"], labels, xlabel=name)
  body = _fig_img(fig, f"{name} against memorization")
  if held == "cscore":
    body += ('<p class="muted">C-score: the accuracy on an example of the models that did not '
             "train on it, averaged over the run's subset ratios (Jiang et al. 2021); points "
             "are jittered slightly.</p>")
  else:
    body += ('<p class="muted">Held-out accuracy: the accuracy on an example of the models '
             "that did not train on it, at the run's one subset ratio. It is not Jiang et al.'s "
             "C-score, which averages over subset ratios 0.1 ... 0.9 (<code>--preset "
             "cscore</code>). Memorization = IN accuracy − held-out accuracy, so points lie "
             "below the dotted line 1 − held-out accuracy; points are jittered slightly.</p>")
  return _section("cscore", f"{name} and memorization", body)


def _epochs_section(inp: ReportInputs) -> str:
  table = epoch_table(inp.records)
  if len(table["epoch"]) < 2:
    return _section("epochs", "Per-epoch curves",
                    '<p class="muted">The run evaluated only after its last epoch. Train with '
                    "<code>--eval-every K</code> (<code>eval_every=K</code>) to see how "
                    "accuracy and memorization evolve during training.</p>")
  body = _fig_img(figure_epochs(table), "accuracy and memorization per epoch")
  rows = [(int(table["epoch"][t]), f"{table['train_accuracy'][t]:.4f}",
           f"{table['heldout_accuracy'][t]:.4f}", f"{table['test_accuracy'][t]:.4f}",
           f"{table['gap'][t]:.4f}", f"{table['mean_memorization'][t]:.4f}",
           int(table["memorized"][t])) for t in range(len(table["epoch"]))]
  body += _table(("epoch", "train acc.", "held-out acc.", "test acc.", "train − test gap",
                  "mean memorization", f"memorized (≥ {THRESHOLD:g})"), rows, [True] * 7)
  return _section("epochs", "Per-epoch curves", body)


def _attacks_section(inp: ReportInputs) -> str:
  attacks, roc_png = inp.attacks, inp.roc_png
  if attacks is None and roc_png is None:
    return _section("attacks", "Membership inference",
                    '<p class="muted">No attack results in this run directory. Run '
                    "<code>memjax attack DIR</code> (LiRA, RMIA and the loss attack, every model "
                    "in turn the target) and write the report again.</p>")
  body = ""
  if roc_png is not None:
    body += _img(roc_png, "membership inference ROC (log-log)", cls="fig roc")
  elif attacks is not None:
    body += _fig_img(figure_roc(attacks), "membership inference ROC (log-log)")
  if attacks is not None:
    body += _attack_table(attacks)
  if inp.extra_columns:
    body += _fig_img(figure_vulnerability(inp.scores["memorization"], inp.extra_columns),
                     "memorization against per-example attack AUC")
  return _section("attacks", "Membership inference", body)


def _attack_table(attacks: dict[str, Any]) -> str:
  fprs = attacks.get("fprs") or []
  header = (["attack", "AUC", "balanced acc."] + [f"TPR @ {100 * f:g}% FPR" for f in fprs]
            + ["per-target AUC", "members / non-members"])
  rows = []
  for name, a in attacks["attacks"].items():
    tprs = a.get("tpr_at_fpr") or {}
    cells = [name, _fmt(a.get("auc")), _fmt(a.get("balanced_accuracy"))]
    for f in fprs:
      v = tprs.get(f"{f:g}")
      cells.append("n/a" if v is None else f"{100 * v:.2f}%")
    t_auc = np.asarray([np.nan if v is None else v
                        for v in (a.get("per_target") or {}).get("auc", [])], np.float64)
    cells.append(f"{np.nanmean(t_auc):.4f} ± {np.nanstd(t_auc):.4f}"
                 if np.isfinite(t_auc).any() else "n/a")
    cells.append(f"{a.get('num_members', 'n/a')} / {a.get('num_nonmembers', 'n/a')}")
    rows.append(cells)
  targets = attacks.get("targets") or []
  caption = (f'<p class="muted">{len(targets)} target models, each attacked with the other '
             f"{(attacks.get('num_models') or 0) - 1} models as shadows; pooled over all targets. "
             "n/a: too few non-members to resolve that FPR.</p>")
  return _table(header, rows, [False] + [True] * (len(header) - 1)) + caption


def _privacy_section(inp: ReportInputs) -> str:
  """Theoretical epsilon (run.json) beside the empirical lower bound (attacks.json); "" when the
  run has neither."""
  privacy = inp.info.get("privacy")
  audit = (inp.attacks or {}).get("privacy_audit")
  canary_record = inp.info.get("data", {}).get("canaries")
  if not privacy and not audit:
    return ""
  rows = [("theoretical (DP accounting)", auditing.theoretical_text(privacy))]
  if audit:
    best = audit["best"]
    rows.append(("empirical lower bound", f"epsilon ≥ {best['epsilon']:.3f} ({best['attack']}, "
                 f"{audit['confidence']:.0%} confidence, delta {audit['delta']:.2g}; "
                 f"{audit['canaries']['count']} {audit['canaries']['kind']} canaries)"))
    others = [f"{name} {a['epsilon']:.3f}" for name, a in audit["attacks"].items()
              if name != best["attack"]]
    if others:
      rows.append(("the other attacks' bounds", ", ".join(others)))
  elif canary_record:
    rows.append(("empirical lower bound", "not yet computed: run memjax attack DIR"))
  else:
    rows.append(("empirical lower bound", "none: the run has no canaries (memjax run "
                 "--canaries K)"))
  body = _table(None, rows, (False, False))
  theory = (privacy or {}).get("epsilon")
  if audit and theory is not None and audit["best"]["epsilon"] > theory:
    body += ('<div class="warn">The empirical lower bound exceeds the theoretical epsilon: '
             "check the DP implementation and its accounting.</div>")
  body += ('<p class="muted">The lower bound holds with the stated confidence if the attack\'s '
           "observations (target model, canary) were independent; they share models, so the "
           "confidence is nominal. A weak attack gives a loose bound: it is no estimate of "
           "epsilon.</p>")
  return _section("privacy", "Privacy", body)


_NAV = (("summary", "Summary"), ("histogram", "Memorization"), ("examples", "Examples"),
        ("cscore", "C-scores"), ("epochs", "Epochs"), ("attacks", "Membership inference"),
        ("configuration", "Configuration"))


def render_html(inp: ReportInputs, top: int = 24, rank: str = "score") -> str:
  """The report page for :class:`ReportInputs` as an HTML string."""
  info = inp.info
  title = f"memjax report: {info['data'].get('name', '?')} / {info['config']['model']}"
  privacy = _privacy_section(inp)
  nav_items = _NAV[:-1] + ((("privacy", "Privacy"),) if privacy else ()) + _NAV[-1:]
  nav = "".join(f'<a href="#{sid}">{_esc(name)}</a>' for sid, name in nav_items)
  parts = [
      _section("summary", "Summary", _header(inp)), _histogram_section(inp),
      _examples_section(inp, top, rank), _scatter_section(inp), _epochs_section(inp),
      _attacks_section(inp), privacy, _config_section(inp),
  ]
  parts = [p for p in parts if p]
  generated = time.strftime("%Y-%m-%d %H:%M:%S")
  return (
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>"
      f"<h1>{_esc(title)}</h1><p class=\"sub\">{_esc(os.path.abspath(inp.directory))} · "
      f"created {_esc(info.get('created', '?'))}</p><nav>{nav}</nav>\n"
      + "\n".join(parts)
      + f"<p class=\"muted\">Written by memjax {_esc(info.get('versions', {}).get('memjax', ''))}"
      f" <code>memjax report</code> on {generated}.</p></main></body></html>\n")


def write_report(run_dir: Any, out_path: str | None = None, *, data: Any = None,
                 top: int = 24, rank: str = "score") -> str:
  """Writes the self-contained HTML report of a finished run.

  Args:
    run_dir: the run directory (or a :class:`memjax.Run` saved with ``directory=``).
    out_path: where to write; default ``RUN_DIR/report.html``.
    data: optional dataset (spec string or :class:`memjax.Dataset`) for the example images,
      instead of the run's own data spec (needed for runs trained on in-memory arrays).
    top: how many of the most and of the least memorized examples to show.
    rank: the most memorized by ``"score"`` or by the ``"lower"`` bound of their interval.

  Returns:
    The path of the written HTML file.

  Raises:
    MemjaxError: ``run_dir`` is not a finished memjax run.
  """
  if not isinstance(run_dir, (str, os.PathLike)):
    directory = getattr(run_dir, "directory", None)
    if directory is None:
      raise MemjaxError("write_report needs a run directory; this run was not saved. Train "
                        "with memjax.train(..., directory=DIR) and pass DIR.")
    if data is None:
      data = getattr(run_dir, "data", None)
    run_dir = directory
  run_dir = os.fspath(run_dir)
  if top < 1:
    raise MemjaxError(f"top={top}; show at least 1 example.")
  inp = load_inputs(run_dir, data=data)
  page = render_html(inp, top=top, rank=rank)
  out_path = out_path or os.path.join(run_dir, REPORT_NAME)
  parent = os.path.dirname(os.path.abspath(out_path))
  if not os.path.isdir(parent):
    raise MemjaxError(f"Cannot write {out_path!r}: the folder {parent!r} does not exist.")
  tmp = out_path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(page)
  os.replace(tmp, out_path)
  return out_path


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def add_report_parser(subparsers) -> None:
  """Adds ``memjax report DIR [--out PATH] [--data SPEC] [--top K]`` to an argparse subparsers."""
  p = subparsers.add_parser(
      "report", help="write a self-contained HTML report of a finished run",
      description="Write DIR/report.html: configuration, memorization histogram, most and least "
      "memorized examples, C-scores, per-epoch curves and (after `memjax attack DIR`) the "
      "membership-inference ROC. One file, images embedded; open it in any browser.")
  p.add_argument("dir", help="run directory written by `memjax run`")
  p.add_argument("--out", help="output HTML file (default DIR/report.html)")
  p.add_argument("--data", help="dataset spec for the example images when the run's own spec "
                 "cannot be reloaded (e.g. a moved .npz)")
  p.add_argument("--top", type=int, default=24, help="most / least memorized examples to show")
  p.add_argument("--rank", choices=scores_lib.RANKINGS, default="score",
                 help="rank the most memorized by their score (default) or by the lower bound "
                 "of their 95%% interval")
  p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
  """``memjax report``: writes the report and prints where."""
  path = write_report(args.dir, args.out, data=args.data, top=args.top, rank=args.rank)
  size = os.path.getsize(path)
  print(f"wrote {path} ({size / 1e6:.1f} MB, self-contained: open it in a browser)")
  return 0
