"""Training configuration: one frozen dataclass, validated, with named presets.

>>> cfg = TrainConfig(model="mlp", num_models=64, epochs=10)
>>> cfg.replace(epochs=20).epochs
20
>>> PRESETS["back_to_fundamentals"].batch_size
512
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from memjax import imports
from memjax.errors import MemjaxError

SCHEDULES = ("triangular", "constant", "cosine")
AUGMENTATIONS = ("none", "flip", "translate", "flip_translate")
DESIGNS = ("balanced", "bernoulli")
SAMPLINGS = ("shuffle", "poisson")
CONVS = ("canonical", "im2col", "lax")
PRECISIONS = ("float32", "bf16")


def _field(default, help: str, flag: str | None = None, **kwargs):
  """A TrainConfig field with its command-line help (``flag``: the main ``--flag`` when it is
  not ``--field-name``); :mod:`memjax.cli` derives ``memjax run``'s options from these."""
  metadata = {"help": help, "flag": flag}
  if isinstance(default, (dict, list)):
    return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata,
                             **kwargs)
  return dataclasses.field(default=default, metadata=metadata, **kwargs)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything that determines a run (with the dataset and the seed it is reproducible).

  The training algorithm is yours to choose: ``model``, ``optimizer`` and ``loss`` take memjax's
  built-ins by name, import paths ``"package.module:Name"`` (stored in run.json, so resume and
  reports find them), or Python objects (stored by their import path when they have one).

  Attributes:
    model: a name in ``memjax.models.REGISTRY`` (logreg, mlp, cnn, vgg, resnet, vit, gpt), an import
      path, or a flax NNX Module class or factory ``X(input_shape, num_classes, *, rngs,
      **model_kwargs)`` whose instances map ``(x [B, ...], train: bool) -> logits [B, C]`` (see
      :mod:`memjax.models`).
    model_kwargs: knobs of that model, e.g. ``{"widths": [512, 512]}`` or ``{"width": 32}``.
    num_models: M, the number of models trained (each on its own subset).
    epochs: passes over each model's own subset.
    batch_size: examples per optimizer step, per model.
    optimizer: None for the default chain (SGD with (Nesterov) momentum, L2 weight decay and the
      learning-rate schedule below), or your own: an optax function name (``"adam"``,
      ``"adamw"``, ``"sgd"``, ...) called with ``optimizer_kwargs`` (``learning_rate`` defaults
      to ``learning_rate``, constant), an import path of a factory, an
      ``optax.GradientTransformation``, or a callable ``total_steps -> GradientTransformation``.
      It replaces the default chain entirely: no implicit weight decay or schedule.
    optimizer_kwargs: keyword arguments of a named optimizer or factory.
    learning_rate: peak learning rate of the default schedule.
    momentum: SGD momentum of the default chain (Nesterov when ``nesterov``).
    nesterov: Nesterov momentum in the default chain.
    weight_decay: L2 weight decay of the default chain (added to the gradient, as in the seed
      papers).
    schedule: "triangular" (linear warm-up to the peak at ``warmup_fraction`` of training, then
      linear decay to 0: the one-cycle schedule), "cosine" (warm-up then cosine decay) or
      "constant".
    warmup_fraction: fraction of all steps spent warming up.
    loss: per-example training loss ``(logits [B, C], labels [B]) -> [B]``: "cross_entropy" (the
      default), an import path, or a callable; training minimises its batch mean, and the
      records' ``loss`` arrays hold it per example.
    label_smoothing: label smoothing of the built-in cross-entropy (0: none).
    sampling: how a model draws its minibatches from its IN examples: "shuffle" (epochs over a
      fresh random order, every batch exactly ``batch_size``) or "poisson" (each IN example joins
      each step's batch independently with probability q = batch_size / n_in; the loss is the
      batch's sum divided by ``batch_size``). None: "poisson" under DP-SGD, else "shuffle".
    dp_noise_multiplier: DP-SGD's sigma: every per-example gradient is clipped to L2 norm
      ``dp_clip_norm`` (C), the clipped gradients are summed, Gaussian noise of standard deviation
      sigma*C is added and the sum divided by ``batch_size`` before the optimizer. None (and no
      ``dp_target_epsilon``): ordinary training. Models with BatchNorm are refused (BatchNorm
      mixes examples of a batch; use the mlp, cnn or vit, or vgg / resnet with
      ``model_kwargs={"norm": "group"}``). See :mod:`memjax.privacy`.
    dp_clip_norm: C, the per-example gradient clip norm (``inf``: no clipping).
    dp_delta: delta of the reported (epsilon, delta)-DP guarantee; None: 1 / (10 N) for N
      training examples (:func:`memjax.privacy.default_delta`).
    dp_target_epsilon: calibrate sigma so that every model is (this epsilon, delta)-DP with
      respect to its own subset (PLD accounting, :mod:`memjax.privacy`); instead of
      ``dp_noise_multiplier``.
    measures: extra per-example measures recorded at every evaluation, ``{name: fn}`` with
      ``fn(logits [B, C], labels [B]) -> [B]`` (a callable, an import path or a built-in name
      of :data:`memjax.measures.MEASURES`); a list of specs names each after its last part.
    augment: on-device training augmentation for images: "none", "flip" (random horizontal
      flip), "translate" (random shift by up to ``translate`` pixels, zero fill) or
      "flip_translate".
    translate: maximal shift in pixels.
    query_augmentations: A, the number of deterministic augmented queries on which the LiRA
      statistic is evaluated (1 = the plain example; more need flip and/or translate).
    keep_ratio: fraction r of the training set each model trains on.
    keep_ratios: several ratios for the multi-ratio (C-score) design; overrides keep_ratio.
    design: "balanced" (each example IN for exactly round(r*M) models) or "bernoulli".
    eval_every: also evaluate every k epochs (0: only after the last epoch).
    prefix_length: language models: the prompt length (in tokens) of the records' extraction
      test (``correct``: greedy decoding from the first ``prefix_length`` tokens of a sequence
      reproduces the rest exactly); None: half of each sequence.
    seed: integer seed; fixes the design, the initialisations, data order, augmentations and
      every model's random streams (dropout).
    chunk_size: models trained together in one compiled program; None: measured on this
      machine (the fastest of a few candidates that fit ``memory_budget``, cached on disk; runs
      of fewer than 64 models take the largest that fits), see :mod:`memjax.tuning`.
    conv: how :func:`memjax.models.conv2d` computes the training step's convolutions:
      "canonical" (lax forward, backward passes as forward convolutions), "im2col" or "lax";
      None: measured together with the chunk size. All compute the same function (to float
      rounding).
    precision: "float32", or "bf16": the forward and backward passes compute in bfloat16 while
      the parameters, their gradients, the optimizer state and BatchNorm statistics stay
      float32 (mixed precision); for GPUs and TPUs (XLA:CPU converts bfloat16 matmuls to
      float32: 0.5-0.6x the float32 speed measured on a CPU with AVX512-BF16).
    memory_budget: bytes of device memory a chunk may use; None: a default from the device.
    checkpoint_seconds: with a run directory, save the training state at the end of an epoch
      once this many seconds have passed since the last save (0: never; chunks are still saved
      to the records as they finish).
  """

  model: Any = _field("mlp", "model: logreg, mlp, cnn, vgg, resnet, vit, gpt (text), or an "
                      "import path package.module:Name of your flax NNX Module (see "
                      "memjax.models)")
  model_kwargs: dict[str, Any] = _field(
      {}, 'model knobs as JSON, e.g. \'{"widths": [512, 512]}\' or \'{"width": 32}\'')
  num_models: int = _field(256, "number of models M", flag="--models")
  epochs: int = _field(40, "training epochs over each model's own subset")
  batch_size: int = _field(128, "examples per step, per model")
  optimizer: Any = _field(None, "an optax function (adam, adamw, sgd, ...) or an import path "
                          "of a factory; replaces the default SGD chain entirely")
  optimizer_kwargs: dict[str, Any] = _field(
      {}, 'its keyword arguments as JSON, e.g. \'{"learning_rate": 1e-3}\' (learning_rate '
      "defaults to --lr)")
  learning_rate: float = _field(0.1, "peak learning rate", flag="--lr")
  momentum: float = _field(0.9, "SGD momentum of the default chain")
  nesterov: bool = _field(True, "Nesterov momentum in the default chain")
  weight_decay: float = _field(5e-4, "L2 weight decay of the default chain")
  schedule: str = _field("triangular", "learning-rate schedule of the default chain")
  warmup_fraction: float = _field(0.15, "fraction of the steps spent warming up")
  loss: Any = _field("cross_entropy", "per-example loss: cross_entropy or an import path "
                     "package.module:fn with fn(logits [B, C], labels [B]) -> [B]")
  label_smoothing: float = _field(0.0, "label smoothing of the built-in cross-entropy")
  sampling: str | None = _field(None, "minibatch sampling: shuffle or poisson (default: poisson "
                                "under DP-SGD, else shuffle)")
  dp_noise_multiplier: float | None = _field(None, "DP-SGD noise multiplier sigma (noise std "
                                             "sigma*C on the clipped gradient sum); unset: no "
                                             "DP-SGD")
  dp_clip_norm: float = _field(1.0, "DP-SGD per-example gradient clip norm C")
  dp_delta: float | None = _field(None, "delta of the DP guarantee (default 1/(10 N))")
  dp_target_epsilon: float | None = _field(None, "DP-SGD: calibrate sigma to this epsilon "
                                           "(instead of --dp-noise-multiplier)")
  measures: dict[str, Any] = _field(
      {}, "extra per-example measures to record, comma-separated: built-in names (log_prob, "
      "margin, entropy) or import paths package.module:fn")
  augment: str = _field("none", "on-device training augmentation for images")
  translate: int = _field(2, "max shift in pixels for translate")
  query_augmentations: int = _field(1, "number A of augmented queries for the LiRA statistic",
                                    flag="--queries")
  keep_ratio: float = _field(0.5, "fraction of the training set per model")
  keep_ratios: tuple[float, ...] = _field(
      (), "several ratios (C-score design), e.g. 0.1,0.3,0.5,0.7,0.9")
  design: str = _field("balanced", "keep-mask design")
  eval_every: int = _field(0, "also evaluate every k epochs (0: only at the end)")
  prefix_length: int | None = _field(None, "language models: prompt tokens of the extraction "
                                     "test (default: half of each sequence)")
  seed: int = _field(0, "seed of the design, initialisations, data order and random streams")
  chunk_size: int | None = _field(None, "models per compiled chunk (default: measured, see "
                                  "memjax.tuning)")
  conv: str | None = _field(None, "convolution of the training step: canonical, im2col or lax "
                            "(default: measured with the chunk size)")
  precision: str = _field("float32", "compute precision: float32, or bf16 (bfloat16 compute; "
                          "parameters and optimizer state stay float32)")
  memory_budget: int | None = _field(None, "device bytes per chunk, e.g. 4e9")
  checkpoint_seconds: float = _field(60.0, "checkpoint the training state at the end of an "
                                     "epoch once this many seconds passed since the last (0: "
                                     "never)")

  def __post_init__(self):
    checks = [
        (self.num_models >= 1, f"num_models={self.num_models}; train at least 1 model."),
        (self.epochs >= 1, f"epochs={self.epochs}; train for at least 1 epoch."),
        (self.batch_size >= 1, f"batch_size={self.batch_size}; use a positive batch size."),
        (self.learning_rate > 0, f"learning_rate={self.learning_rate}; must be positive."),
        (0 <= self.momentum < 1, f"momentum={self.momentum}; must lie in [0, 1)."),
        (self.weight_decay >= 0, f"weight_decay={self.weight_decay}; must be >= 0."),
        (self.schedule in SCHEDULES,
         f"schedule={self.schedule!r}; choose one of {', '.join(SCHEDULES)}."),
        (0 <= self.warmup_fraction < 1, f"warmup_fraction={self.warmup_fraction}; in [0, 1)."),
        (0 <= self.label_smoothing < 1,
         f"label_smoothing={self.label_smoothing}; must lie in [0, 1)."),
        (self.augment in AUGMENTATIONS,
         f"augment={self.augment!r}; choose one of {', '.join(AUGMENTATIONS)}."),
        (self.translate >= 0, f"translate={self.translate}; must be >= 0 pixels."),
        (self.query_augmentations >= 1,
         f"query_augmentations={self.query_augmentations}; at least 1 (the plain example)."),
        (self.eval_every >= 0, f"eval_every={self.eval_every}; use 0 (final only) or k >= 1."),
        (self.prefix_length is None or self.prefix_length >= 0,
         f"prefix_length={self.prefix_length}; use None (half of each sequence) or >= 0."),
        (self.chunk_size is None or self.chunk_size >= 1,
         f"chunk_size={self.chunk_size}; use None (automatic) or a positive number."),
        (self.conv is None or self.conv in CONVS,
         f"conv={self.conv!r}; choose one of {', '.join(CONVS)} (or None: measured)."),
        (self.precision in PRECISIONS,
         f"precision={self.precision!r}; choose one of {', '.join(PRECISIONS)}."),
        (self.checkpoint_seconds >= 0,
         f"checkpoint_seconds={self.checkpoint_seconds}; must be >= 0 (0 disables)."),
        (self.sampling is None or self.sampling in SAMPLINGS,
         f"sampling={self.sampling!r}; choose one of {', '.join(SAMPLINGS)} (or None)."),
        (self.dp_noise_multiplier is None or self.dp_target_epsilon is None,
         "Give dp_noise_multiplier or dp_target_epsilon, not both: the target calibrates the "
         "noise multiplier."),
        (self.dp_noise_multiplier is None or self.dp_noise_multiplier >= 0,
         f"dp_noise_multiplier={self.dp_noise_multiplier}; must be >= 0."),
        (self.dp_target_epsilon is None or self.dp_target_epsilon > 0,
         f"dp_target_epsilon={self.dp_target_epsilon}; must be > 0."),
        (self.dp_clip_norm > 0, f"dp_clip_norm={self.dp_clip_norm}; must be > 0 (inf: no "
         "clipping)."),
        (self.dp_delta is None or 0 < self.dp_delta < 1,
         f"dp_delta={self.dp_delta}; must lie in (0, 1)."),
        (isinstance(self.model_kwargs, dict) and isinstance(self.optimizer_kwargs, dict),
         "model_kwargs and optimizer_kwargs must be dicts of keyword arguments."),
    ]
    for ok, message in checks:
      if not ok:
        raise MemjaxError(message)
    max_queries = len(query_transforms(self))
    if self.query_augmentations > max_queries:
      raise MemjaxError(
          f"query_augmentations={self.query_augmentations} but augment={self.augment!r} allows "
          f"at most {max_queries} distinct queries (queries mirror the training augmentations). "
          "Use augment='flip_translate' for more, or fewer queries.")
    # Normalise containers so configs compare equal and serialise the same way.
    object.__setattr__(self, "keep_ratios", tuple(float(r) for r in self.keep_ratios))
    object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
    object.__setattr__(self, "optimizer_kwargs", dict(self.optimizer_kwargs))
    object.__setattr__(self, "measures", _measure_dict(self.measures))

  @property
  def ratios(self) -> tuple[float, ...]:
    """The design's subset ratios: ``keep_ratios`` if given, else ``(keep_ratio,)``."""
    return self.keep_ratios or (self.keep_ratio,)

  @property
  def private(self) -> bool:
    """True for DP-SGD training (a noise multiplier or a target epsilon is set)."""
    return self.dp_noise_multiplier is not None or self.dp_target_epsilon is not None

  @property
  def batch_sampling(self) -> str:
    """The sampling that runs: ``sampling``, or by default "poisson" under DP-SGD, else
    "shuffle"."""
    return self.sampling or ("poisson" if self.private else "shuffle")

  def replace(self, **changes) -> "TrainConfig":
    """A copy with some fields changed; a misspelt field raises MemjaxError naming the close
    matches."""
    check_fields(changes, "TrainConfig.replace")
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict[str, Any]:
    """A JSON-friendly dict; objects are stored by import path (see :mod:`memjax.imports`)."""
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    d["keep_ratios"] = list(self.keep_ratios)
    d["model_kwargs"] = dict(self.model_kwargs)
    d["optimizer_kwargs"] = dict(self.optimizer_kwargs)
    for name in ("model", "loss"):
      d[name] = imports.describe(d[name])
    d["optimizer"] = None if self.optimizer is None else imports.describe(self.optimizer)
    d["measures"] = {k: imports.describe(v) for k, v in self.measures.items()}
    return d

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
    check_fields(d, "run.json config")
    d = dict(d)
    if "keep_ratios" in d:
      d["keep_ratios"] = tuple(d["keep_ratios"])
    return cls(**d)


FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def check_fields(names, where: str) -> None:
  """Raises MemjaxError for names that are not TrainConfig fields, naming the close matches."""
  unknown = sorted(set(names) - set(FIELDS))
  if unknown:
    hints = []
    for name in unknown:
      close = difflib.get_close_matches(name, FIELDS, n=3, cutoff=0.6)
      hints.append(f"{name!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)"
                                  if close else ""))
    raise MemjaxError(f"{where}: unknown setting(s) {', '.join(hints)}. TrainConfig fields: "
                      f"{', '.join(FIELDS)}.")


def _measure_dict(measures) -> dict[str, Any]:
  """``{name: spec}`` from a dict, or from a list of specs (named after their last part)."""
  if isinstance(measures, dict):
    items = dict(measures)
  elif isinstance(measures, (list, tuple)):
    items = {}
    for spec in measures:
      if isinstance(spec, str):
        name = spec.rpartition(":")[2].rpartition(".")[2]
      else:
        name = getattr(spec, "__name__", None)
      if not name or name == "<lambda>":
        raise MemjaxError(f"Cannot name the measure {spec!r}; pass a dict {{name: fn}}.")
      items[name] = spec
  else:
    raise MemjaxError(f"measures must be a dict {{name: fn}} or a list of measure specs; got "
                      f"{type(measures).__name__}.")
  from memjax.measures import RESERVED
  for name in items:
    if not isinstance(name, str) or not name.isidentifier() or name in RESERVED:
      raise MemjaxError(f"Measure name {name!r} must be a Python identifier other than "
                        f"{', '.join(RESERVED)} (the records' own arrays).")
  return items


def query_transforms(config: TrainConfig) -> list[tuple[bool, int, int]]:
  """The deterministic query augmentations, in order: (flip, shift_y, shift_x) triples.

  The first is always the plain example. Queries mirror the training augmentations: flips only
  when training flips, shifts of one pixel (then two, ...) only when it translates.
  """
  flips = (False, True) if "flip" in config.augment else (False,)
  shifts = [(0, 0)]
  if "translate" in config.augment:
    for r in range(1, config.translate + 1):
      shifts += [(r, 0), (-r, 0), (0, r), (0, -r)]
  return [(f, dy, dx) for (dy, dx) in shifts for f in flips]


PRESETS: dict[str, TrainConfig] = {
    # Fits every model to (near) 100% of its own subset on the embedded digits in seconds.
    "default": TrainConfig(),
    # The recipe of "Back to Fundamentals" (and Feldman & Zhang) for CIFAR-style data, with
    # their subset ratio r = 0.7.
    "back_to_fundamentals": TrainConfig(
        keep_ratio=0.7,
        model="resnet", model_kwargs={"width": 16, "depth": 3}, epochs=100, batch_size=512,
        learning_rate=0.4, momentum=0.9, weight_decay=5e-4, schedule="triangular",
        warmup_fraction=0.15, augment="flip_translate", translate=4, query_augmentations=2),
    # Jiang et al.'s C-score design: 50 models at each subset ratio 0.1, 0.2, ..., 0.9 (the
    # scores' cscore column is then their C-score, the mean held-out accuracy over the ratios).
    "cscore": TrainConfig(keep_ratios=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                          num_models=450),
    # Carlini et al.'s LiRA setup (balanced keep masks, flip+translate queries).
    "lira": TrainConfig(
        model="resnet", model_kwargs={"width": 16, "depth": 2}, epochs=100, batch_size=256,
        learning_rate=0.1, augment="flip_translate", translate=4, query_augmentations=2,
        design="balanced", keep_ratio=0.5),
}


# The ViT on the embedded digits: TrainConfig field overrides, e.g.
# ``memjax.train("digits", models=32, **VIT_DIGITS_RECIPE)`` or ``TrainConfig(**VIT_DIGITS_RECIPE)``.
# The default SGD chain (Nesterov momentum 0.9, weight decay 5e-4, one-cycle schedule) with a
# longer warm-up (30% of the steps; with 15%, 1 of 64 models stalled at 88% train accuracy).
# Measured on the 2-core CPU (shared, so times are +-30%): 26,474 parameters (16 tokens of 2x2
# patches); 32 models: train accuracy on own subsets 0.9999 (min 0.9986), test 0.924, 167
# examples memorized (score >= 0.25), 31 s for the whole memjax.train call (21 s training);
# 64 models: 1.000 (min 0.9985), test 0.924, 155 memorized, 60 s (seed 1: 0.9999, 0.919, 159,
# 49 s). AdamW (lr 5e-3 warm-up + cosine, weight decay 0.05, clip 1) fit no better: 64 models
# 1.000 (min 0.9986), test 0.917, 181 memorized, 62 s; so this recipe needs no optimizer fields.
VIT_DIGITS_RECIPE: dict[str, Any] = {
    "model": "vit", "model_kwargs": {"width": 32, "depth": 2, "heads": 2},
    "epochs": 20, "batch_size": 32, "learning_rate": 0.1, "warmup_fraction": 0.3,
}
# memjax run --preset vit_digits (256 ViTs by default; --models to change it).
PRESETS["vit_digits"] = TrainConfig(**VIT_DIGITS_RECIPE)


# Small causal transformers (``gpt``, size "pico": width 32, depth 2, heads 2, 32k parameters)
# on the embedded ``pydoc`` sentences (1,800 training sentences of <= 64 characters): TrainConfig
# field overrides, e.g. ``memjax.train("pydoc", models=64, **LM_RECIPE)``. Measured on the 2-core
# CPU (shared, +-30%), 8 models: after 30 epochs of Adam at a constant 1e-2 the models predict
# 54% of the tokens of their own sentences, 44% of the others' and of the test sentences (mean
# counterfactual memorization 0.097, 40 sentences >= 0.25), at ~3.8 model-epochs/s; Adam at 3e-3
# for 10 epochs reached only 47% / 38%. The nano size (width 64, 114k parameters) trains ~2.5x
# slower. ``memjax run --data pydoc --preset lm`` trains 64 of them (minutes).
LM_RECIPE: dict[str, Any] = {
    "model": "gpt", "model_kwargs": {"size": "pico"},
    "epochs": 30, "batch_size": 32, "optimizer": "adam",
    "optimizer_kwargs": {"learning_rate": 1e-2},
}
PRESETS["lm"] = TrainConfig(num_models=64, **LM_RECIPE)
