"""The experiments of "Back to Fundamentals: Re-examining Memorization in Deep Learning Models".

Each study trains ensembles with :func:`memjax.train`, estimates Feldman & Zhang memorization
(an example is *memorized* when its score is at least ``threshold``, 0.25 as in the paper) and
returns a :class:`StudyResult`: a table (``table.csv``, ``table.md``), a headline figure
(``headline.json``) and a plot (``plot.png``, matplotlib Agg), written by
:meth:`StudyResult.save`.

================================  ===============================================================
study                             question (paper section)
================================  ===============================================================
:func:`model_size`                memorization vs parameters within a family (Table 1, Fig. 1)
:func:`epochs`                    memorization per epoch; the stages none / rise / fall (Fig. 2)
:func:`transient`                 model-wise and temporal-wise transient memorization (Sec. 4.3)
:func:`gap`                       memorization count vs train-test gap, Pearson r (Fig. 3)
:func:`natural_vs_artificial`     injected noisy labels / noisy inputs vs natural points
================================  ===============================================================

Scales (:data:`SCALES`): ``"small"`` trains a handful of tiny models for seconds (tests, pass a
small dataset); ``"default"`` is the report's setting on the embedded digits, minutes on a 2-core
CPU; ``"large"`` is meant for accelerators and larger ``data`` (e.g. ``tfds:cifar10``) and has
not been run on the CPU. ``models=`` and ``epochs=`` override a scale; ``config=`` sets the other
training fields (e.g. ``memjax.PRESETS["back_to_fundamentals"]``), except where a family brings
its own recipe: the vit family of ``model_size`` / ``gap`` trains with
``memjax.config.VIT_DIGITS_RECIPE`` (an Arch's 4th element, see :func:`_arch_config`).

Runs with equal data and configuration are cached in-process (:func:`clear_cache`), so running
several studies in one process (``memjax study all``) trains each ensemble once.

Counts carry a bootstrap standard error over models
(:func:`memjax.estimators.memorized_count_se`).

Command line (wired as ``memjax study NAME``): :func:`add_study_parser`, :func:`cmd_study`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import time
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats

from memjax import estimators, formatting, imports, plotting
from memjax import models as models_lib
from memjax.config import VIT_DIGITS_RECIPE, TrainConfig
from memjax.data import Dataset, load, spec_slug
from memjax.errors import MemjaxError
# Estimators that once lived here; still importable from memjax.studies.
from memjax.estimators import (memorization_history, memorized_count_se,  # noqa: F401
                               null_memorized_count)

THRESHOLD = estimators.DEFAULT_THRESHOLD
IMAGE_MODELS = ("cnn", "vgg", "resnet", "vit")
# Colour and marker of each family in the plots (others: the next default colours, circles).
FAMILY_STYLES = {"mlp": ("C0", "o"), "vgg": ("C1", "s"), "resnet": ("C2", "^"), "vit": ("C3", "D")}
STUDIES = ("model_size", "epochs", "transient", "gap", "natural_vs_artificial")

# (family, model name, model kwargs[, TrainConfig overrides]): the optional 4th element is the
# architecture's own training recipe (e.g. the ViT's), applied over the study's base config.
Arch = tuple[str, str, dict] | tuple[str, str, dict, dict]


@dataclasses.dataclass(frozen=True)
class Scale:
  """How big a study is.

  Attributes:
    models: M, models per ensemble (model_size, transient, gap, natural_vs_artificial).
    epochs: training epochs of those ensembles.
    families: the architectures of model_size / gap, ordered by size within each family (a
      family may bring its own recipe as an Arch's 4th element, see :func:`_arch_config`).
    epochs_arch: the architecture of the epochs study (and the temporal transient study).
    epochs_models, epochs_epochs: its ensemble size and epochs (evaluated every epoch).
    transient_pair: indices into ``families`` of the small and the large model (model-wise).
    artificial_archs: the sizes of the natural_vs_artificial study (evaluated every epoch).
    label_fraction, input_fraction: fractions of the training set given a wrong label / replaced
      by Gaussian noise with a random label in natural_vs_artificial.
    overrides: other TrainConfig fields (e.g. a smaller batch for tiny data).
  """

  models: int
  epochs: int
  families: tuple[Arch, ...]
  epochs_arch: Arch
  epochs_models: int
  epochs_epochs: int
  transient_pair: tuple[int, int]
  artificial_archs: tuple[Arch, ...]
  label_fraction: float = 0.05
  input_fraction: float = 0.05
  overrides: tuple[tuple[str, Any], ...] = ()


def _mlp(*widths: int) -> Arch:
  return ("mlp", "mlp", {"widths": list(widths)})


def _vit(*, recipe: dict[str, Any] = VIT_DIGITS_RECIPE, drop: Sequence[str] = (),
         **kwargs) -> Arch:
  """A ViT with knobs ``kwargs`` trained with ``recipe``'s TrainConfig fields, less its model
  and model kwargs (the arch's) and the fields in ``drop`` (left to the study)."""
  leave = {"model", "model_kwargs", *drop}
  return ("vit", "vit", kwargs, {k: v for k, v in recipe.items() if k not in leave})


SCALES: dict[str, Scale] = {
    # Seconds on 300 digits: the tests.
    "small": Scale(
        models=8, epochs=10, families=(_mlp(8), _mlp(64)),
        epochs_arch=_mlp(64), epochs_models=8, epochs_epochs=10, transient_pair=(0, 1),
        artificial_archs=(_mlp(8), _mlp(64)), label_fraction=0.1, input_fraction=0.1,
        overrides=(("batch_size", 32),)),
    # Minutes on the embedded digits (1,437 training images) on a 2-core CPU: the report.
    "default": Scale(
        models=48, epochs=15,
        families=(_mlp(16, 16), _mlp(64, 64), _mlp(256, 256), _mlp(512, 512),
                  ("vgg", "vgg", {"width": 4, "depth": 1}),
                  ("vgg", "vgg", {"width": 8, "depth": 1}),
                  ("vgg", "vgg", {"width": 16, "depth": 1}),
                  ("vgg", "vgg", {"width": 16, "depth": 2}),
                  ("resnet", "resnet", {"width": 4, "depth": 1}),
                  ("resnet", "resnet", {"width": 4, "depth": 2}),
                  # ViTs train with their own recipe (config.VIT_DIGITS_RECIPE, its epochs too).
                  _vit(width=16, depth=1, heads=2), _vit(width=32, depth=2, heads=2),
                  _vit(width=64, depth=2, heads=4)),
        epochs_arch=_mlp(256, 256), epochs_models=64, epochs_epochs=30, transient_pair=(0, 2),
        artificial_archs=(_mlp(16, 16), _mlp(64, 64), _mlp(256, 256))),
    # For accelerators and CIFAR-sized data (not run on the CPU).
    "large": Scale(
        models=256, epochs=60,
        families=(_mlp(64, 64), _mlp(512, 512), _mlp(2048, 2048),
                  ("vgg", "vgg", {"width": 16, "depth": 1}),
                  ("vgg", "vgg", {"width": 32, "depth": 1}),
                  ("vgg", "vgg", {"width": 64, "depth": 2}),
                  ("resnet", "resnet", {"width": 16, "depth": 1}),
                  ("resnet", "resnet", {"width": 16, "depth": 2}),
                  ("resnet", "resnet", {"width": 16, "depth": 3}),
                  # The digits ViT recipe for the scale's epochs (untried on CIFAR-sized data),
                  # 8x8 patches of 4x4 pixels at 32x32, up to ViT-Ti.
                  _vit(width=64, depth=4, heads=4, drop=("epochs",)),
                  _vit(width=128, depth=6, heads=4, drop=("epochs",)),
                  _vit(size="tiny", drop=("epochs",))),
        epochs_arch=("vgg", "vgg", {"width": 32, "depth": 1}), epochs_models=256,
        epochs_epochs=100, transient_pair=(3, 8),
        artificial_archs=(_mlp(64, 64), _mlp(512, 512), _mlp(2048, 2048))),
}


def arch_label(arch: Arch) -> str:
  """A short name: ``mlp[64,64]``, ``vgg w8 d1``, ``resnet w4 d2``, ``vit w32 d2 h2``,
  ``vit small d6`` (a ViT size first, then its overridden knobs). The recipe is not named."""
  _, model, kw = arch[:3]
  if model == "mlp":
    return f"mlp[{','.join(str(w) for w in kw.get('widths', (256, 256)))}]"
  kw = dict(kw)
  size = [str(kw.pop("size"))] if kw.get("size") is not None else []
  parts = [f"{_KNOB_ABBREVIATIONS.get(k, k[0])}{v}" for k, v in sorted(kw.items())]
  return " ".join([model, *size, *sorted(parts, key=lambda p: p[0] != "w")])


_KNOB_ABBREVIATIONS = {"dropout": "drop", "mlp_ratio": "r"}  # else the knob's first letter


# ---- results ------------------------------------------------------------------------------------
@dataclasses.dataclass
class StudyResult:
  """A study's table, headline figure and plot.

  Attributes:
    name: the study.
    columns: the table's columns, in order.
    rows: one dict per row.
    headline: the headline figure (JSON-serialisable).
    description: what the table shows (the first lines of ``table.md``).
    plot: writes the figure to a PNG path.
    notes: caveats worth reading with the numbers.
  """

  name: str
  columns: tuple[str, ...]
  rows: list[dict]
  headline: dict
  description: str
  plot: Callable[[str], None]
  notes: list[str] = dataclasses.field(default_factory=list)

  def column(self, name: str) -> np.ndarray:
    """One column of the table as an array."""
    return np.asarray([r[name] for r in self.rows])

  def csv(self) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(self.columns), lineterminator="\n")
    writer.writeheader()
    for r in self.rows:
      writer.writerow({k: _plain(r[k]) for k in self.columns})
    return buf.getvalue()

  def markdown(self) -> str:
    lines = [f"# {self.name}", "", self.description, "",
             formatting.markdown_table(self.columns,
                                       [[_fmt(r[k]) for k in self.columns] for r in self.rows]),
             "", "Headline: `" + json.dumps(formatting.jsonable(self.headline)) + "`"]
    if self.notes:
      lines += [""] + [f"- {n}" for n in self.notes]
    return "\n".join(lines) + "\n"

  def save(self, out: str) -> dict[str, str]:
    """Writes table.csv, table.md, headline.json and plot.png into ``out``; returns the paths."""
    os.makedirs(out, exist_ok=True)
    paths = {k: os.path.join(out, f) for k, f in (("csv", "table.csv"), ("md", "table.md"),
                                                  ("json", "headline.json"),
                                                  ("png", "plot.png"))}
    with open(paths["csv"], "w") as f:
      f.write(self.csv())
    with open(paths["md"], "w") as f:
      f.write(self.markdown())
    with open(paths["json"], "w") as f:
      json.dump(formatting.jsonable(self.headline), f, indent=1)
    self.plot(paths["png"])
    return paths


def _plain(v):
  if isinstance(v, (np.integer,)):
    return int(v)
  if isinstance(v, (np.floating, float)):
    return float(v)
  if isinstance(v, (list, tuple, dict)):
    return json.dumps(formatting.jsonable(v))
  return v


def _fmt(v) -> str:
  if isinstance(v, (bool, np.bool_)):
    return str(bool(v))
  if isinstance(v, (int, np.integer)):
    return str(int(v))
  if isinstance(v, (float, np.floating)):
    v = float(v)
    if not math.isfinite(v):
      return "n/a"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
  if isinstance(v, (list, tuple, dict)):
    return json.dumps(formatting.jsonable(v))
  return str(v)


# ---- shared pieces ------------------------------------------------------------------------------
_RUN_CACHE: dict[tuple, tuple[Any, float]] = {}


def clear_cache() -> None:
  """Forgets the ensembles the studies trained in this process."""
  _RUN_CACHE.clear()


_RUNS_DIR: str | None = None  # set by saving_runs()


@contextlib.contextmanager
def saving_runs(directory: str):
  """Within the block, every ensemble a study trains is a memjax run saved under ``directory``.

  Each ensemble goes to ``directory/DATA-MODEL-HASH`` (HASH of its configuration). A run that is
  already there is resumed, or reused when finished, so an interrupted study loses at most the
  chunk in progress and a repeated one trains nothing. ``memjax study --out DIR`` uses
  ``DIR/runs``; ``memjax report DIR/runs/NAME`` renders any of them.

  >>> with saving_runs("studies/mine/runs"):  # doctest: +SKIP
  ...   result = model_size("digits")
  """
  global _RUNS_DIR
  previous, _RUNS_DIR = _RUNS_DIR, os.fspath(directory)
  try:
    yield
  finally:
    _RUNS_DIR = previous


def _run_directory(dataset: Dataset, config: TrainConfig, config_json: str) -> str | None:
  """``RUNS_DIR/DATA-MODEL-HASH`` inside :func:`saving_runs`, else None."""
  if _RUNS_DIR is None:
    return None
  digest = hashlib.sha1(config_json.encode()).hexdigest()[:10]
  name = spec_slug(models_lib.model_name(config.model))
  return os.path.join(_RUNS_DIR, f"{spec_slug(dataset.name)}-{name}-{digest}")


def _train(dataset: Dataset, config: TrainConfig, progress: bool, log: Callable | None):
  """memjax.train with an in-process cache; returns (run, wall seconds of the training)."""
  from memjax import runner
  config_json = json.dumps(config.to_dict(), sort_keys=True, default=str)
  # Objects without an import path are all "<unsaved ...>" in the JSON: tell them apart by
  # identity, which also keeps another process from reusing their saved runs.
  if imports.UNSAVED_PREFIX in config_json:
    parts = (config.model, config.optimizer, config.loss, *config.measures.values())
    config_json += repr([id(p) for p in parts if not isinstance(p, (str, type(None)))])
  key = (id(dataset), config_json)
  if key in _RUN_CACHE:
    return _RUN_CACHE[key][1:]
  directory = _run_directory(dataset, config, key[1])
  resume = directory is not None and os.path.exists(os.path.join(directory, "run.json"))
  t0 = time.perf_counter()
  run = runner.train(dataset, config=config, directory=directory, resume=resume,
                     progress=progress)
  wall = time.perf_counter() - t0
  _RUN_CACHE[key] = (dataset, run, wall)  # the dataset is kept so that its id stays unique
  if log is not None:
    log(f"  trained {config.model} {config.model_kwargs} x{config.num_models} models, "
        f"{config.epochs} epochs: {wall:.1f} s")
  return run, wall


_DATASETS: dict[str, Dataset] = {}


def _load(data) -> Dataset:
  """load(data), memoised for spec strings so every study of a process shares one Dataset."""
  if isinstance(data, (str, os.PathLike)):
    spec = os.fspath(data)
    if spec not in _DATASETS:
      _DATASETS[spec] = load(spec)
    return _DATASETS[spec]
  return load(data)


def _setup(data, scale: str, config: TrainConfig | None):
  if scale not in SCALES:
    raise MemjaxError(f"Unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
  dataset = _load(data)
  sc = SCALES[scale]
  base = (config or TrainConfig()).replace(**dict(sc.overrides))
  return dataset, sc, base


def _arch_config(base: TrainConfig, arch: Arch, models: int, epochs: int | None, seed: int,
                 eval_every: int = 0, default_epochs: int | None = None) -> TrainConfig:
  """The TrainConfig of one architecture's ensemble.

  Fields, later ones winning: ``base`` (the study's config with the scale's overrides), the
  arch's own recipe (its optional 4th element), then the arch's model and kwargs and the study's
  ``models``, ``seed`` and ``eval_every``. Epochs: ``epochs`` if given (the caller's explicit
  value), else the recipe's, else ``default_epochs`` (the scale's), else ``base.epochs``.
  """
  _, model, kw, *rest = arch
  recipe = dict(rest[0]) if rest else {}
  epochs = epochs or recipe.pop("epochs", None) or default_epochs or base.epochs
  return base.replace(**recipe).replace(model=model, model_kwargs=kw, num_models=models,
                                        epochs=epochs, seed=seed, eval_every=eval_every)


def _epochs_text(archs: Sequence[Arch], default: int, epochs: int | None) -> str:
  """"15 epochs", or "15 epochs (vit: 20, its recipe)" when a family's recipe sets its own."""
  if epochs:
    return f"{epochs} epochs"
  each = [a[3].get("epochs", default) if len(a) > 3 else default for a in archs]
  if len(set(each)) == 1:
    return f"{each[0]} epochs"
  own = {a[0]: e for a, e in zip(archs, each) if e != default}
  return f"{default} epochs ({', '.join(f'{f}: {e}' for f, e in own.items())}, its recipe)"


def _usable(archs: Sequence[Arch], dataset: Dataset) -> tuple[list[Arch], list[str]]:
  """Drops image-only families for vector data; returns (kept, notes). (A recipe with a
  misspelt TrainConfig field fails in TrainConfig.replace, naming the close matches.)"""
  kept, notes = [], []
  for a in archs:
    if a[1] in IMAGE_MODELS and not dataset.is_image:
      notes.append(f"{arch_label(a)} skipped: {dataset.name} has vector features, not images.")
    else:
      kept.append(a)
  return kept, notes


def _positive(name: str, value):
  if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
    raise MemjaxError(f"{name}={value!r}; use a positive integer.")
  return value


def _mean_sd(x) -> tuple[float, float]:
  x = np.asarray(x, np.float64)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return float("nan"), float("nan")
  return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def _pearson(x, y) -> dict:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  ok = np.isfinite(x) & np.isfinite(y)
  n = int(ok.sum())
  if n < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
    return {"r": float("nan"), "p": float("nan"), "low": float("nan"), "high": float("nan"),
            "n": n}
  res = scipy_stats.pearsonr(x[ok], y[ok])
  if n > 3:
    ci = res.confidence_interval(0.95)
    low, high = float(ci.low), float(ci.high)
  else:
    low = high = float("nan")
  return {"r": float(res.statistic), "p": float(res.pvalue), "low": low, "high": high, "n": n}


def _summary(run, wall: float, arch: Arch, threshold: float) -> dict:
  rec = run.records
  mem = estimators.memorization(run.correct, run.keep)
  train_acc = float(rec.train_accuracy()[-1].mean())
  test_acc = float(rec.test_accuracy()[-1].mean())
  mean, sd = _mean_sd(mem)
  return {"family": arch[0], "model": arch_label(arch), "params": int(run.info["num_params"]),
          "models": run.config.num_models, "epochs": run.config.epochs,
          "train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc,
          "memorized": estimators.count_memorized(mem, threshold),
          "memorized_se": memorized_count_se(run.correct, run.keep, threshold),
          "null_memorized": null_memorized_count(run.correct, run.keep, threshold),
          "mean_score": mean, "sd_score": sd, "wall_s": wall}


# ---- 1. model size ------------------------------------------------------------------------------
def model_size(data: Any = "digits", *, scale: str = "default", families=None,
               models: int | None = None, epochs: int | None = None, seed: int = 0,
               config: TrainConfig | None = None, threshold: float = THRESHOLD,
               progress: bool = False, log: Callable | None = None) -> StudyResult:
  """Memorization vs model size within families (Back to Fundamentals, Table 1 and Fig. 1).

  Trains one ensemble per architecture and reports parameters, mean train accuracy (on each
  model's own subset) and test accuracy, the train-test gap, the number of examples memorized at
  ``threshold`` (+- bootstrap SE) and the mean +- sd memorization score.

  Args:
    data: dataset spec or Dataset.
    scale: a key of :data:`SCALES`.
    families: architectures ``(family, model, kwargs)`` ordered by size (default: the scale's),
      or ``(family, model, kwargs, overrides)`` with the arch's own TrainConfig fields (a recipe,
      applied over ``config``; see :func:`_arch_config`).
    models, epochs: override the scale's ensemble size and epochs (``epochs`` also those of an
      arch's recipe).
    seed: seed of the designs and the training.
    config: base TrainConfig for the other fields.
    threshold: memorization threshold.
    progress: progress bars; log: a print-like callable for one line per trained ensemble.

  Returns:
    :class:`StudyResult`; headline: per family the count at the smallest and the largest size
    and whether memorization decreases, increases or stays flat (within 2 combined SE).
  """
  dataset, sc, base = _setup(data, scale, config)
  archs, notes = _usable(families or sc.families, dataset)
  if not archs:
    raise MemjaxError(f"No architecture left to train on {dataset.name}: " + " ".join(notes)
                      + " Pass families=[('mlp', 'mlp', {'widths': [64]}), ...].")
  models = _positive("models", models) or sc.models
  epochs_text = _epochs_text(archs, sc.epochs, _positive("epochs", epochs))
  t0 = time.perf_counter()
  rows = []
  for arch in archs:
    config_ = _arch_config(base, arch, models, epochs, seed, default_epochs=sc.epochs)
    run, wall = _train(dataset, config_, progress, log)
    rows.append(_summary(run, wall, arch, threshold))
  headline = {"threshold": threshold, "families": {}}
  for fam in dict.fromkeys(r["family"] for r in rows):
    fr = [r for r in rows if r["family"] == fam]
    small, large = min(fr, key=lambda r: r["params"]), max(fr, key=lambda r: r["params"])
    change = large["memorized"] - small["memorized"]
    noise = 2 * math.hypot(small["memorized_se"], large["memorized_se"])
    direction = ("flat" if abs(change) <= noise or len(fr) < 2
                 else "decreases" if change < 0 else "increases")
    headline["families"][fam] = {
        "smallest": small["model"], "largest": large["model"],
        "memorized_smallest": small["memorized"], "memorized_largest": large["memorized"],
        "memorized_by_size": [r["memorized"] for r in sorted(fr, key=lambda r: r["params"])],
        "test_acc_by_size": [round(r["test_acc"], 4)
                             for r in sorted(fr, key=lambda r: r["params"])],
        "direction": direction}
  headline["wall_s"] = time.perf_counter() - t0

  def plot(path):
    fig, (ax1, ax2) = plotting.subplots(2)
    for i, fam in enumerate(headline["families"]):
      fr = sorted([r for r in rows if r["family"] == fam], key=lambda r: r["params"])
      p = [r["params"] for r in fr]
      color, marker = FAMILY_STYLES.get(fam, (f"C{(i + len(FAMILY_STYLES)) % 10}", "o"))
      ax1.errorbar(p, [r["memorized"] for r in fr], yerr=[r["memorized_se"] for r in fr],
                   color=color, marker=marker, capsize=3, label=fam)
      ax2.plot(p, [r["test_acc"] for r in fr], color=color, marker=marker, label=f"{fam} test")
      ax2.plot(p, [r["train_acc"] for r in fr], color=color, marker="x", ls=":",
               label=f"{fam} train")
    for ax in (ax1, ax2):
      ax.set_xscale("log")
      ax.set_xlabel("parameters per model")
      ax.legend(fontsize=7)
    ax1.set_ylabel(f"examples memorized (score >= {threshold})")
    ax2.set_ylabel("accuracy")
    fig.suptitle(f"memorization vs model size ({dataset.name}, {models} models, {epochs_text})")
    fig.savefig(path, dpi=110)

  return StudyResult(
      name="model_size", columns=tuple(rows[0]) if rows else (), rows=rows, headline=headline,
      description=(f"Memorization vs model size on {dataset.name} (N={dataset.num_train}); "
                   f"{models} models per architecture, keep ratio {base.keep_ratio}, "
                   f"{epochs_text}. memorized = #examples with score >= {threshold} (+- bootstrap "
                   "SE over models); null_memorized = the count a permutation of IN/OUT "
                   "gives (estimation noise alone); train_acc on each model's own subset."),
      plot=plot, notes=notes)


# ---- 2. epochs ----------------------------------------------------------------------------------
def detect_stages(epochs, counts, counts_se=None, none_fraction: float = 0.1,
                  min_drop: float = 0.05, null_counts=None) -> dict:
  """Splits a memorized-count curve into the paper's three stages.

  * none: the leading evaluations with count <= ``none_fraction`` x peak, or (with
    ``null_counts`` and ``counts_se``) not above the noise floor: count - null <= 2 SE;
  * rise: from there up to the (first) peak;
  * fall: after the peak, when the last count is at least ``min_drop`` x peak below the peak and
    (with ``counts_se``) the drop exceeds 2 combined standard errors; otherwise "plateau".

  Args:
    epochs: [T] epochs of the evaluations.
    counts: [T] memorized counts.
    counts_se: optional [T] standard errors of the counts.
    null_counts: optional [T] counts that estimation noise alone gives
      (:func:`memjax.estimators.null_memorized_count`).

  Returns:
    {"stage": [T] labels, "none": [first, last] epochs or None, "rise": [...], "fall": [...] or
    None, "peak_epoch", "peak_count", "final_count", "drop", "drop_se", "fall_detected"}.

  >>> s = detect_stages([1, 2, 3, 4, 5, 6], [0, 1, 10, 20, 15, 12])
  >>> s["stage"], s["peak_epoch"], s["fall_detected"]
  (['none', 'none', 'rise', 'rise', 'fall', 'fall'], 4, True)
  """
  epochs = np.asarray(epochs)
  counts = np.asarray(counts, np.float64)
  if epochs.shape != counts.shape or counts.ndim != 1 or counts.size == 0:
    raise MemjaxError(f"epochs {epochs.shape} and counts {counts.shape} must be equal-length "
                      "non-empty 1-D arrays.")
  t = counts.size
  peak = int(np.argmax(counts))
  low = counts <= none_fraction * counts[peak]
  if null_counts is not None and counts_se is not None:
    low |= counts - np.asarray(null_counts, np.float64) <= 2 * np.asarray(counts_se)
  n_none = int(np.argmin(low)) if not low.all() else t
  n_none = min(n_none, peak) if counts[peak] > 0 else t
  drop = float(counts[peak] - counts[-1])
  drop_se = (float(math.hypot(counts_se[peak], counts_se[-1])) if counts_se is not None
             else float("nan"))
  fall = (peak < t - 1 and drop >= min_drop * counts[peak] and drop > 0
          and (counts_se is None or drop > 2 * drop_se))
  stage = ["none"] * n_none + ["rise"] * (peak + 1 - n_none) + \
      ["fall" if fall else "plateau"] * (t - peak - 1)
  stage = stage[:t]

  def span(name):
    idx = [i for i, s in enumerate(stage) if s == name]
    return [int(epochs[idx[0]]), int(epochs[idx[-1]])] if idx else None

  return {"stage": stage, "none": span("none"), "rise": span("rise"),
          "fall": span("fall"), "plateau": span("plateau"),
          "peak_epoch": int(epochs[peak]), "peak_count": float(counts[peak]),
          "final_count": float(counts[-1]), "drop": drop, "drop_se": drop_se,
          "fall_detected": bool(fall)}


def _epochs_run(dataset, sc, base, models, epochs, seed, arch, progress, log):
  arch = arch or sc.epochs_arch
  cfg = _arch_config(base, arch, models or sc.epochs_models, epochs, seed, eval_every=1,
                     default_epochs=sc.epochs_epochs)
  run, wall = _train(dataset, cfg, progress, log)
  return run, wall, arch


def epochs(data: Any = "digits", *, scale: str = "default", arch: Arch | None = None,
           models: int | None = None, epochs: int | None = None, seed: int = 0,
           config: TrainConfig | None = None, threshold: float = THRESHOLD,
           progress: bool = False, log: Callable | None = None) -> StudyResult:
  """Memorization after every epoch and its three stages (Back to Fundamentals, Fig. 2).

  One ensemble (``arch``, default the scale's) is evaluated after every epoch; each row is an
  epoch: memorized count (+- bootstrap SE), mean score, train / test accuracy, gap and the stage
  (:func:`detect_stages`).

  Args:
    data, scale, models, epochs, seed, config, threshold, progress, log: as in
      :func:`model_size` (models / epochs override ``epochs_models`` / ``epochs_epochs``).
    arch: ``(family, model, kwargs)`` of the ensemble.

  Returns:
    :class:`StudyResult`; headline: the stages' epoch spans, peak epoch and count, final count
    and the drop with its SE.
  """
  dataset, sc, base = _setup(data, scale, config)
  t0 = time.perf_counter()
  run, wall, arch = _epochs_run(dataset, sc, base, _positive("models", models),
                                _positive("epochs", epochs), seed, arch, progress, log)
  rec = run.records
  hist = memorization_history(rec.train_correct, run.keep)
  counts = estimators.is_memorized(hist, threshold).sum(-1)
  se = memorized_count_se(rec.train_correct, run.keep, threshold)
  null = null_memorized_count(rec.train_correct, run.keep, threshold)
  ep = np.asarray(rec.eval_epochs)
  stages = detect_stages(ep, counts, se, null_counts=null)
  train_acc = rec.train_accuracy().mean(-1)
  test_acc = rec.test_accuracy().mean(-1)
  rows = [{"epoch": int(ep[t]), "memorized": int(counts[t]), "memorized_se": float(se[t]),
           "null_memorized": float(null[t]), "mean_score": float(np.nanmean(hist[t])), "train_acc": float(train_acc[t]),
           "test_acc": float(test_acc[t]), "gap": float(train_acc[t] - test_acc[t]),
           "stage": stages["stage"][t]} for t in range(len(ep))]
  headline = {k: v for k, v in stages.items() if k != "stage"}
  headline.update(model=arch_label(arch), models=run.config.num_models,
                  threshold=threshold, wall_s=time.perf_counter() - t0, train_wall_s=wall)

  def plot(path):
    fig, (ax,) = plotting.subplots(1, 6.5, 4)
    colors = {"none": "#dddddd", "rise": "#fde0c5", "fall": "#c6e2f5", "plateau": "#eeeeee"}
    for t, s in enumerate(stages["stage"]):
      ax.axvspan(ep[t] - 0.5, ep[t] + 0.5, color=colors[s], lw=0)
    ax.errorbar(ep, counts, yerr=se, marker="o", ms=3, capsize=2, color="C3",
                label="memorized")
    ax.plot(ep, null, color="C3", ls=":", lw=1, label="noise floor (permutation)")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"examples memorized (score >= {threshold})")
    ax2 = ax.twinx()
    ax2.plot(ep, test_acc, color="C0", label="test acc")
    ax2.plot(ep, train_acc, color="C0", ls=":", label="train acc")
    ax2.set_ylabel("accuracy")
    ax2.legend(loc="lower right", fontsize=7)
    ax.set_title(f"{arch_label(arch)} on {dataset.name}: none / rise / "
                 f"{'fall' if stages['fall_detected'] else 'plateau'} "
                 f"(peak epoch {stages['peak_epoch']})", fontsize=9)
    fig.savefig(path, dpi=110)

  return StudyResult(
      name="epochs", columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(f"Memorization after every epoch, {arch_label(arch)} x "
                   f"{run.config.num_models} models on {dataset.name}; stage: none (count <= "
                   "10% of the peak or within 2 SE of the noise floor), rise (to the peak), fall (a drop > 5% of the peak and > 2 "
                   "SE by the last epoch) or plateau."),
      plot=plot)


# ---- 3. transient memorization ------------------------------------------------------------------
def transient(data: Any = "digits", *, scale: str = "default", small: Arch | None = None,
              large: Arch | None = None, models: int | None = None, epochs: int | None = None,
              seed: int = 0, config: TrainConfig | None = None, threshold: float = THRESHOLD,
              progress: bool = False, log: Callable | None = None) -> StudyResult:
  """Model-wise and temporal-wise transient memorization (Back to Fundamentals, Sec. 4.3).

  * Model-wise: examples memorized (score >= threshold) by the ``small`` model's ensemble but not
    by the ``large`` one's (default: the scale's ``transient_pair``; same design and epochs).
  * Temporal-wise: in the epochs study's ensemble, examples memorized at the epoch with the most
    memorized examples but not after the last epoch.

  Rows: for each kind, the groups "all", "memorized (first)", "memorized (second)" and
  "transient", with their size and mean +- sd score under the first condition (small model /
  peak epoch) and under the second (large model / last epoch), and their mean C-score.

  Args:
    small, large: architectures ``(family, model, kwargs)``.
    Others: as in :func:`model_size` (``models`` / ``epochs`` apply to the model-wise pair).

  Returns:
    :class:`StudyResult`; headline: transient counts and mean +- sd scores vs all examples.
  """
  dataset, sc, base = _setup(data, scale, config)
  t0 = time.perf_counter()
  models = _positive("models", models) or sc.models
  epochs = _positive("epochs", epochs)
  small = small or sc.families[sc.transient_pair[0]]
  large = large or sc.families[sc.transient_pair[1]]
  run_s, _ = _train(dataset, _arch_config(base, small, models, epochs, seed,
                                          default_epochs=sc.epochs), progress, log)
  run_l, _ = _train(dataset, _arch_config(base, large, models, epochs, seed,
                                          default_epochs=sc.epochs), progress, log)
  mem_s = estimators.memorization(run_s.correct, run_s.keep)
  mem_l = estimators.memorization(run_l.correct, run_l.keep)
  cs_l = estimators.cscore(run_l.correct, run_l.keep)
  run_e, _, arch_e = _epochs_run(dataset, sc, base, None, None, seed, None, progress, log)
  hist = memorization_history(run_e.records.train_correct, run_e.keep)
  counts = estimators.is_memorized(hist, threshold).sum(-1)
  peak = int(np.argmax(counts))
  ep = np.asarray(run_e.records.eval_epochs)
  cs_e = estimators.cscore(run_e.correct, run_e.keep)
  rows, headline = [], {"threshold": threshold}
  for kind, first, second, a, b, cs in (
      ("model-wise", arch_label(small), arch_label(large), mem_s, mem_l, cs_l),
      ("temporal-wise", f"{arch_label(arch_e)} epoch {ep[peak]}",
       f"{arch_label(arch_e)} epoch {ep[-1]}", hist[peak], hist[-1], cs_e)):
    mem_a = estimators.is_memorized(a, threshold)
    mem_b = estimators.is_memorized(b, threshold)
    groups = {"all": np.ones_like(mem_a), "memorized (first)": mem_a,
              "memorized (second)": mem_b, "transient": mem_a & ~mem_b}
    for group, mask in groups.items():
      ma, sa = _mean_sd(a[mask])
      mb, sb = _mean_sd(b[mask])
      rows.append({"kind": kind, "group": group, "first": first, "second": second,
                   "count": int(mask.sum()), "mean_score_first": ma, "sd_score_first": sa,
                   "mean_score_second": mb, "sd_score_second": sb,
                   "mean_cscore": _mean_sd(cs[mask])[0]})
    key = "model_wise" if kind == "model-wise" else "temporal_wise"
    tr = groups["transient"]
    headline[key] = {"first": first, "second": second,
                     "memorized_first": int(mem_a.sum()), "memorized_second": int(mem_b.sum()),
                     "transient": int(tr.sum()),
                     "transient_score_first": _mean_sd(a[tr]), "all_score_first": _mean_sd(a),
                     "transient_score_second": _mean_sd(b[tr]),
                     "all_score_second": _mean_sd(b)}
  headline["wall_s"] = time.perf_counter() - t0

  def plot(path):
    fig, axes = plotting.subplots(2)
    bins = np.linspace(-0.5, 1.0, 31)
    for ax, (kind, a, b, la, lb) in zip(axes, (
        ("model-wise", mem_s, mem_l, arch_label(small), arch_label(large)),
        ("temporal-wise", hist[peak], hist[-1], f"epoch {ep[peak]} (peak)",
         f"epoch {ep[-1]} (last)"))):
      ax.hist(a[np.isfinite(a)], bins=bins, alpha=0.6, label=la, log=True)
      ax.hist(b[np.isfinite(b)], bins=bins, alpha=0.6, label=lb, log=True)
      ax.axvline(threshold, color="k", ls=":", lw=1)
      ax.set_xlabel("memorization score")
      ax.set_ylabel("examples")
      ax.set_title(kind)
      ax.legend(fontsize=7)
    fig.suptitle(f"transient memorization on {dataset.name}")
    fig.savefig(path, dpi=110)

  return StudyResult(
      name="transient", columns=tuple(rows[0]), rows=rows, headline=headline,
      description=("Transient memorization: 'first' is the small model (model-wise) or the peak "
                   "epoch (temporal-wise), 'second' the large model or the last epoch; "
                   "transient = memorized under first, not under second. Scores are means +- sd "
                   "of the memorization score under each condition; mean_cscore is the C-score "
                   "(held-out accuracy) under the second condition's ensemble."),
      plot=plot)


# ---- 4. gap -------------------------------------------------------------------------------------
def gap(data: Any = "digits", *, scale: str = "default", families=None,
        models: int | None = None, epochs: int | None = None, seed: int = 0,
        config: TrainConfig | None = None, threshold: float = THRESHOLD, progress: bool = False,
        log: Callable | None = None) -> StudyResult:
  """Memorized count vs train-test gap across architectures (Back to Fundamentals, Fig. 3).

  One point per architecture of the scale's families (the ensembles of :func:`model_size`,
  shared through the cache): gap = mean train accuracy on the models' own subsets - mean test
  accuracy. Pearson r over all points (with p-value and 95% interval) and within each family.

  Args:
    Same as :func:`model_size`.

  Returns:
    :class:`StudyResult`; headline: Pearson r (all points and per family).
  """
  dataset = _setup(data, scale, config)[0]
  size = model_size(dataset, scale=scale, families=families, models=models, epochs=epochs,
                    seed=seed, config=config, threshold=threshold, progress=progress, log=log)
  cols = ("family", "model", "params", "train_acc", "test_acc", "gap", "memorized",
          "memorized_se", "mean_score")
  rows = [{k: r[k] for k in cols} for r in size.rows]
  overall = _pearson([r["gap"] for r in rows], [r["memorized"] for r in rows])
  mean_r = _pearson([r["gap"] for r in rows], [r["mean_score"] for r in rows])
  per_family = {}
  for fam in dict.fromkeys(r["family"] for r in rows):
    fr = [r for r in rows if r["family"] == fam]
    per_family[fam] = _pearson([r["gap"] for r in fr], [r["memorized"] for r in fr])
  headline = {"pearson_gap_vs_memorized": overall, "pearson_gap_vs_mean_score": mean_r,
              "per_family": per_family, "points": len(rows), "threshold": threshold}
  gaps = np.array([r["gap"] for r in rows])
  counts = np.array([r["memorized"] for r in rows])

  def plot(path):
    fig, (ax,) = plotting.subplots(1, 6, 4.2)
    for fam in per_family:
      fr = [r for r in rows if r["family"] == fam]
      ax.errorbar([r["gap"] for r in fr], [r["memorized"] for r in fr],
                  yerr=[r["memorized_se"] for r in fr], fmt="o", capsize=3, label=fam)
      for r in fr:
        ax.annotate(r["model"], (r["gap"], r["memorized"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    if np.isfinite(overall["r"]):
      slope, intercept = np.polyfit(gaps, counts, 1)
      xs = np.linspace(gaps.min(), gaps.max(), 10)
      ax.plot(xs, slope * xs + intercept, "k--", lw=1)
    ax.set_xlabel("train-test gap (train acc on own subset - test acc)")
    ax.set_ylabel(f"examples memorized (score >= {threshold})")
    ax.set_title(f"{dataset.name}: Pearson r = {overall['r']:.2f} (n={overall['n']})")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)

  return StudyResult(
      name="gap", columns=cols, rows=rows, headline=headline,
      description=("Memorized count vs train-test gap, one point per architecture. "
                   + size.description), plot=plot, notes=size.notes)


# ---- 5. natural vs artificial -------------------------------------------------------------------
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


_INJECTED: dict[tuple, tuple[Dataset, Dataset, np.ndarray]] = {}


def natural_vs_artificial(data: Any = "digits", *, scale: str = "default", archs=None,
                          models: int | None = None, epochs: int | None = None, seed: int = 0,
                          label_fraction: float | None = None,
                          input_fraction: float | None = None,
                          config: TrainConfig | None = None, threshold: float = THRESHOLD,
                          progress: bool = False, log: Callable | None = None) -> StudyResult:
  """How natural and artificial (noisy label / noisy input) memorization respond to size, epochs.

  Injects artificial points (:func:`inject_artificial`), trains one ensemble per size
  (``archs``, default the scale's ``artificial_archs``) evaluated after every epoch, and reports
  per size and epoch, for each group, the mean memorization score and the fraction memorized.

  Args:
    archs: architectures ordered by size.
    label_fraction, input_fraction: injected fractions (default: the scale's).
    Others: as in :func:`model_size`.

  Returns:
    :class:`StudyResult`; headline: per group, the mean score and fraction memorized by size at
    the last epoch and over epochs for the largest model, and the direction of each trend.
  """
  dataset, sc, base = _setup(data, scale, config)
  lf = sc.label_fraction if label_fraction is None else label_fraction
  inf = sc.input_fraction if input_fraction is None else input_fraction
  key = (id(dataset), lf, inf, seed)
  if key not in _INJECTED:
    _INJECTED[key] = (dataset, *inject_artificial(dataset, lf, inf, seed))
  _, injected, groups = _INJECTED[key]
  archs, notes = _usable(archs or sc.artificial_archs, dataset)
  if not archs:  # as in model_size; without it, rows[0] raised a bare IndexError
    raise MemjaxError(f"No architecture left to train on {dataset.name}: " + " ".join(notes)
                      + " Pass archs=[('mlp', 'mlp', {'widths': [64]}), ...].")
  models = _positive("models", models) or sc.models
  epochs = _positive("epochs", epochs)
  t0 = time.perf_counter()
  rows, curves = [], {}
  for arch in archs:
    run, _ = _train(injected, _arch_config(base, arch, models, epochs, seed, eval_every=1,
                                           default_epochs=sc.epochs), progress, log)
    hist = memorization_history(run.records.train_correct, run.keep)  # [T, N]
    ep = np.asarray(run.records.eval_epochs)
    test_acc = run.records.test_accuracy().mean(-1)
    curve = {}
    for g, gname in enumerate(GROUP_NAMES):
      sel = hist[:, groups == g]
      with np.errstate(invalid="ignore"):
        curve[gname] = (np.nanmean(sel, axis=1) if sel.shape[1] else np.full(len(ep), np.nan),
                        estimators.is_memorized(sel, threshold).mean(1)
                        if sel.shape[1] else np.full(len(ep), np.nan))
    curves[arch_label(arch)] = (int(run.info["num_params"]), ep, curve)
    for t in range(len(ep)):
      row = {"model": arch_label(arch), "params": int(run.info["num_params"]),
             "epoch": int(ep[t]), "test_acc": float(test_acc[t])}
      for gname in GROUP_NAMES:
        row[f"{gname}_mean"] = float(curve[gname][0][t])
        row[f"{gname}_frac"] = float(curve[gname][1][t])
      rows.append(row)
  labels = list(curves)
  headline = {"counts": {g: int((groups == i).sum()) for i, g in enumerate(GROUP_NAMES)},
              "threshold": threshold, "by_size_last_epoch": {}, "by_epoch_largest": {},
              "size_trend": {}, "epoch_trend_after_peak": {}}
  for gname in GROUP_NAMES:
    last = [float(curves[l][2][gname][0][-1]) for l in labels]
    headline["by_size_last_epoch"][gname] = dict(zip(labels, last))
    mean_curve = curves[labels[-1]][2][gname][0]
    headline["by_epoch_largest"][gname] = [float(v) for v in mean_curve]
    headline["size_trend"][gname] = float(last[-1] - last[0])
    peak = int(np.nanargmax(mean_curve)) if np.isfinite(mean_curve).any() else 0
    headline["epoch_trend_after_peak"][gname] = float(mean_curve[-1] - mean_curve[peak])
  headline["models"], headline["epochs"] = models, epochs or sc.epochs
  headline["wall_s"] = time.perf_counter() - t0

  def plot(path):
    fig, (ax1, ax2) = plotting.subplots(2)
    for i, gname in enumerate(GROUP_NAMES):
      params = [curves[l][0] for l in labels]
      ax1.plot(params, [curves[l][2][gname][0][-1] for l in labels], marker="o",
               color=f"C{i}", label=gname)
      for j, l in enumerate(labels):
        _, ep, curve = curves[l]
        ax2.plot(ep, curve[gname][0], color=f"C{i}", alpha=0.35 + 0.65 * j / max(1,
                                                                                 len(labels) - 1),
                 label=f"{gname} {l}" if j in (0, len(labels) - 1) else None)
    ax1.set_xscale("log")
    ax1.set_xlabel("parameters per model")
    ax1.set_ylabel("mean memorization score (last epoch)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("mean memorization score")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=6)
    fig.suptitle(f"natural vs artificial memorization ({dataset.name})")
    fig.savefig(path, dpi=110)

  return StudyResult(
      name="natural_vs_artificial", columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(f"{dataset.name} with {headline['counts']['noisy_label']} noisy labels and "
                   f"{headline['counts']['noisy_input']} Gaussian-noise inputs injected; "
                   f"{models} models per size, evaluated every epoch. *_mean = mean memorization "
                   f"score of the group, *_frac = fraction with score >= {threshold}."),
      plot=plot, notes=notes)


# ---- command line -------------------------------------------------------------------------------
FUNCTIONS: dict[str, Callable[..., StudyResult]] = {
    "model_size": model_size, "epochs": epochs, "transient": transient, "gap": gap,
    "natural_vs_artificial": natural_vs_artificial}


def run_study(name: str, data: Any = "digits", *, out: str | None = None,
              **kwargs) -> StudyResult:
  """Runs the study ``name`` (a key of :data:`FUNCTIONS`) and saves it to ``out`` if given."""
  if name not in FUNCTIONS:
    raise MemjaxError(f"Unknown study {name!r}; choose one of {', '.join(FUNCTIONS)} (or 'all' "
                      "on the command line).")
  result = FUNCTIONS[name](data, **kwargs)
  if out is not None:
    result.save(out)
  return result


def add_study_parser(subparsers) -> None:
  """Adds ``memjax study NAME`` to an argparse subparsers object."""
  p = subparsers.add_parser(
      "study", help="run an experiment of the Back to Fundamentals paper",
      description="Train the ensembles of a study, write table.csv, table.md, headline.json and "
      "plot.png to --out, print the table.")
  p.add_argument("name", choices=(*STUDIES, "all"), help="the study ('all': every study, "
                 "sharing ensembles)")
  p.add_argument("--data", default="digits", help="dataset spec: digits (default), npz:PATH, "
                 "tfds:NAME[:TRAIN_SPLIT[,TEST_SPLIT]]")
  p.add_argument("--scale", default="default", choices=tuple(SCALES),
                 help="small (seconds), default (minutes on digits, CPU), large (accelerators)")
  from memjax.config import PRESETS
  p.add_argument("--preset", default="default", help="TrainConfig preset for the other "
                 f"training fields: {', '.join(PRESETS)}")
  p.add_argument("--models", type=int, help="models per ensemble (overrides the scale)")
  p.add_argument("--epochs", type=int, help="epochs (overrides the scale and a family's own "
                 "recipe, e.g. the vit's)")
  p.add_argument("--keep-ratio", type=float, help="fraction of the training set each model "
                 "trains on (default: the preset's, 0.5; the paper uses 0.7)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", help="output directory (default studies/NAME-DATA-TIMESTAMP); the "
                 "ensembles are saved in OUT/runs, and running again with the same --out "
                 "resumes or reuses them")
  p.add_argument("--progress", action="store_true", help="progress bars while training")


def cmd_study(args) -> int:
  """``memjax study NAME``: runs the study (or all), saves and prints it."""
  from memjax.config import PRESETS
  if args.preset not in PRESETS:
    raise MemjaxError(f"Unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}.")
  names = list(STUDIES) if args.name == "all" else [args.name]
  root = args.out or os.path.join(
      "studies", f"{args.name}-{spec_slug(args.data)}-{time.strftime('%Y%m%d-%H%M%S')}")
  config = PRESETS[args.preset]
  if args.keep_ratio is not None:
    config = config.replace(keep_ratio=args.keep_ratio)
  dataset = _load(args.data)
  for name in names:
    out = os.path.join(root, name) if len(names) > 1 else root
    t0 = time.perf_counter()
    print(f"memjax study {name} ({args.scale}) on {dataset.name} ...", flush=True)
    with saving_runs(os.path.join(root, "runs")):
      result = run_study(name, dataset, out=out, scale=args.scale, models=args.models,
                         epochs=args.epochs, seed=args.seed, config=config,
                         progress=args.progress, log=lambda s: print(s, flush=True))
    print(result.markdown())
    print(f"  wrote {out}/table.csv, table.md, headline.json, plot.png "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)
  return 0
