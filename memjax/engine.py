"""The compiled leave-out training program: many models, one XLA program per chunk of models.

Structure of one training epoch for a chunk of ``m`` models (one ``jax.jit``, buffers donated)::

    for each model (jax.vmap):  order = its IN examples in a fresh random order, wrapped to S*B
    lax.scan over S steps:
        jax.vmap over models: gather the model's own minibatch [B] from the device-resident
        training set, augment it on device, then train_step: the model's loss, its gradient
        and the optax update of its own params / BatchNorm stats / optimizer state

:func:`train_step` is the whole training algorithm of one model for one minibatch, a pure
function of (model fns, optax transformation, per-example loss, state, batch, key); the model,
the optimizer and the loss are the user's (:mod:`memjax.models`, :class:`TrainConfig`). The
:class:`Chunk` class is the one place that trains a chunk epoch by epoch, for ``memjax.train``
and for the proxies' drivers (:mod:`memjax.dynamics`) alike.

Minibatches are **per-model samples**: model m draws batches only from its own IN examples, so
every model runs genuine epoch-wise SGD on its subset, exactly what one model trained alone would
do, with S = ceil(max_m n_in(m) / B) steps per epoch for every model (a model with fewer IN
examples wraps around its own permutation). The alternative, one shared minibatch drawn from all N
examples with the loss weighted by each model's keep mask, turns the first layer into one big
matmul but gives each model a random effective batch size (Binomial(B, r)) and wastes (1-r) of
the forward/backward work on masked examples; measured on the digits MLP it was no faster on
CPU (305 vs 307 model-epochs/s at M=64 on a 2-core CPU, measured before the engine existed),
so memjax samples per model.

The model axis is sharded over every device with a 1-D ``Mesh`` named ``"models"``: training
state and keep masks carry ``NamedSharding(mesh, P("models"))``, the data is replicated, and XLA
partitions the vmapped program so each device trains its own slice of models without
communication. On several hosts (after ``jax.distributed.initialize()``), ``jax.devices()`` spans
all of them, every process runs the same program on its own devices' models, and evaluation
outputs are all-gathered to every process (:func:`to_host`).

Evaluation runs in inference mode (BatchNorm running averages) on every training and test
example, with ``lax.map`` over blocks of examples and ``vmap`` over models, and reduces at once to
per-model per-example arrays (see :mod:`memjax.records`). For language models (text data) an
example is a sequence: the loss and every output reduce over its tokens
(:mod:`memjax.measures`), and text canaries' candidate secrets are scored as a further split.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from memjax import imports, measures as measures_lib, models as models_lib
from memjax import privacy as privacy_lib
from memjax import records as records_lib
from memjax.config import TrainConfig, query_transforms
from memjax.data import Dataset
from memjax.errors import MemjaxError

MODEL_AXIS = "models"
State = dict[str, Any]  # {"params", "model_state", "opt_state"}, every leaf [m, ...]


@dataclasses.dataclass(frozen=True)
class ModelFns:
  """A model split into pure functions (flax NNX graphdef + state pytrees).

  Attributes:
    init: key -> (params, model_state) of one model; ``model_state`` holds every non-parameter
      variable (BatchNorm statistics, ...) except random streams.
    apply: (params, model_state, x [B, ...], train, key=None) -> (logits [B, C], new
      model_state). With ``key``, every random stream of the model (dropout, ...) is reseeded
      from it first.
    num_params: trainable scalars per model.
    random_streams: names of the random streams the model keeps (e.g. ``("dropout",)``).
  """

  init: Callable
  apply: Callable
  num_params: int
  random_streams: tuple[str, ...] = ()


def model_fns(config: TrainConfig, data: Dataset) -> ModelFns:
  """Splits the configured NNX model (see :mod:`memjax.models`) into pure init/apply functions.

  The model is built with ``nnx.Rngs(default=..., params=key, dropout=...)``; its random-stream
  state is not carried between steps but rebuilt from the key given to ``apply``.
  """
  factory = models_lib.resolve(config.model)

  def make(key):
    rngs = nnx.Rngs(jax.random.fold_in(key, 2), params=key, dropout=jax.random.fold_in(key, 1))
    model = models_lib.build(factory, data.feature_shape, data.num_classes, rngs,
                             **config.model_kwargs)
    if not isinstance(model, nnx.Module):
      raise MemjaxError(f"The model factory {models_lib.model_name(config.model)!r} returned a "
                        f"{type(model).__name__}, not a flax NNX Module. For flax.linen "
                        "modules use nnx.bridge.ToNNX (see memjax.models).")
    return model

  abstract = nnx.eval_shape(lambda: make(jax.random.key(0)))
  graphdef, abstract_params, abstract_rngs, _ = nnx.split(abstract, nnx.Param, nnx.RngState, ...)
  streams = tuple(sorted({node.tag for _, node in nnx.iter_graph(abstract)
                          if isinstance(node, nnx.RngStream)}))
  # Concrete values of the random-stream variables (overwritten by reseeding while training).
  rng_template = (nnx.split(make(jax.random.key(0)), nnx.Param, nnx.RngState, ...)[2]
                  if jax.tree.leaves(abstract_rngs) else abstract_rngs)

  def init(key):
    _, params, _, model_state = nnx.split(make(key), nnx.Param, nnx.RngState, ...)
    return params, model_state

  def apply(params, model_state, x, train: bool, key=None):
    # Rebuild the Variable objects inside the current trace (grad/vmap/scan), so BatchNorm may
    # update its statistics here: NNX refuses to mutate Variables made at another trace level.
    params, rng_state, model_state = jax.tree.map(lambda a: a,
                                                  (params, rng_template, model_state))
    model = nnx.merge(graphdef, params, rng_state, model_state)
    if config.precision == "bf16":
      _batchnorm_in(model, jnp.bfloat16)
    if key is not None and streams:
      nnx.reseed(model, **{name: jax.random.fold_in(key, i) for i, name in enumerate(streams)})
    logits = model(x, train=train)
    return logits, nnx.split(model, nnx.Param, nnx.RngState, ...)[3]

  if data.task == "language_model":
    _check_language_model(config, data, abstract)
  if config.precision == "bf16":
    apply = mixed_precision(apply, jnp.bfloat16)
  return ModelFns(init=init, apply=apply, num_params=models_lib.count_params(abstract_params),
                  random_streams=streams)


def mixed_precision(apply: Callable, dtype=jnp.bfloat16) -> Callable:
  """``apply`` computing in ``dtype``: floating parameters and inputs are cast to it for the pass
  and the logits come back as float32; the model state (BatchNorm statistics) stays float32.
  Gradients flow through the casts, so they reach the float32 parameters (and the optimizer,
  whose state stays float32) as float32. (:func:`model_fns` also sets every ``nnx.BatchNorm``'s
  ``dtype``, so it normalises in ``dtype`` from float32 statistics, which it updates in
  float32, as flax's own mixed precision does.)"""

  def cast(tree):
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating)
                        else a, tree)

  def apply_in_dtype(params, model_state, x, train: bool, key=None):
    logits, new_state = apply(cast(params), model_state, cast(x), train, key)
    return logits.astype(jnp.float32), new_state

  return apply_in_dtype


def _batchnorm_in(model: nnx.Module, dtype) -> None:
  """Sets the computation dtype of every ``nnx.BatchNorm`` in ``model`` (its statistics stay in
  their own dtype; without it BatchNorm would promote a bfloat16 pass to their float32)."""
  for _, node in nnx.iter_graph(model):
    if isinstance(node, nnx.BatchNorm):
      node.dtype = dtype


def _check_language_model(config: TrainConfig, data: Dataset, model) -> None:
  """Text data needs a model mapping tokens [B, L] to next-token logits [B, L, V]."""
  x = jax.ShapeDtypeStruct((2, *data.feature_shape), data.x_train.dtype)
  want = (2, *data.feature_shape, data.num_classes)
  try:
    shape = nnx.eval_shape(lambda m, x: m(x, train=False), model, x).shape
  except MemjaxError:
    raise
  except Exception as e:  # e.g. an image model's reshape of the tokens
    shape = f"an error ({type(e).__name__}: {e})"
  if shape != want:
    raise MemjaxError(
        f"{data.name} is text: every example is a token sequence [L={data.feature_shape[0]}], "
        f"and the model must map tokens [B, L] to next-token logits [B, L, V={data.num_classes}]"
        f"; {models_lib.model_name(config.model)!r} gave {shape} for inputs [2, "
        f"{data.feature_shape[0]}]. Use model='gpt' (memjax run --data ... --preset lm) or your "
        "own causal language model.")


def train_step(fns: ModelFns, optimizer: optax.GradientTransformation, loss_fn: Callable,
               state: State, x: jax.Array, y: jax.Array, key: jax.Array,
               weights: jax.Array | None = None) -> tuple[State, jax.Array]:
  """One optimizer step of one model on one minibatch: the whole training algorithm.

  The engine vmaps this over the models of a chunk and scans it over the steps of an epoch.

  Args:
    fns: the model as pure functions (:func:`model_fns`).
    optimizer: any optax gradient transformation (:func:`make_optimizer`).
    loss_fn: per-example loss ``(logits [B, C], labels [B]) -> [B]``; the step minimises its mean.
    state: ``{"params", "model_state", "opt_state"}`` of one model.
    x: [B, *feature_shape] the (augmented) minibatch. y: [B] int labels.
    key: this model's key for this step; reseeds the model's random streams (dropout).
    weights: [B] per-example weights of the objective ``sum(weights * loss)`` (Poisson batches:
      1 / batch_size for sampled examples, 0 for padding); None: the mean loss.

  Returns:
    (new state, mean loss of the (weighted) minibatch before the update).
  """

  def objective(params):
    logits, model_state = fns.apply(params, state["model_state"], x, True, key)
    losses = loss_fn(logits, y)
    if weights is None:
      return losses.mean(), (model_state, losses.mean())
    return (losses * weights).sum(), (model_state, _masked_mean(losses, weights > 0))

  (_, (model_state, loss)), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
  return _update(optimizer, state, grads, model_state), loss


def dp_train_step(fns: ModelFns, optimizer: optax.GradientTransformation, loss_fn: Callable,
                  state: State, x: jax.Array, y: jax.Array, key: jax.Array, mask: jax.Array, *,
                  clip_norm: float, noise_multiplier: float, expected_batch: int
                  ) -> tuple[State, jax.Array]:
  """One DP-SGD step (Abadi et al. 2016) of one model on one Poisson-sampled batch.

  Every example's loss gradient is computed on its own (``jax.vmap`` of ``jax.grad`` over the
  batch), clipped to L2 norm ``clip_norm`` (C) over all parameters, the clipped gradients of the
  sampled examples are summed, Gaussian noise N(0, (noise_multiplier * C)^2) is added to every
  coordinate, and the result, divided by the expected batch size, goes to the optimizer (weight
  decay and momentum are post-processing and cost no privacy). The per-example gradients give
  only their norms; the clipped sum comes from one backward pass of the norm-weighted loss
  through the same per-example forward (the sum that ``optax.per_example_global_norm_clip``
  computes from the materialised gradients, to float rounding, 3.5-8x faster).

  Args:
    fns, optimizer, loss_fn, state: as in :func:`train_step`.
    x: [K, *feature_shape] the batch at its static capacity K. y: [K] int labels.
    key: this model's key for this step: example k's random streams (dropout) draw from
      fold_in(key, k), the noise from fold_in(key, K).
    mask: [K] bool, True for the sampled examples (False slots are padding).
    clip_norm: C (inf: no clipping).
    noise_multiplier: sigma.
    expected_batch: the divisor, q * n_in = batch_size (fixed, as the accounting assumes).

  Returns:
    (new state, mean loss of the sampled examples before the update).
  """
  capacity = x.shape[0]

  def example_loss(params, x1, y1, k):
    logits, _ = fns.apply(params, state["model_state"], x1[None], True, k)
    return loss_fn(logits, y1[None])[0]

  example_keys = jax.vmap(functools.partial(jax.random.fold_in, key))(jnp.arange(capacity))
  losses, grads = jax.vmap(jax.value_and_grad(example_loss), in_axes=(None, 0, 0, 0))(
      state["params"], x, y, example_keys)
  # sum_k c_k g_k with c_k = min(1, C / |g_k|) held fixed is the gradient of sum_k c_k loss_k:
  # one backward pass through the same per-example forward (the same dropout masks), instead of
  # scaling and summing the K materialised gradients (2.5x faster for 8 MLPs 64-256-256-10 at
  # K = 190; 7.7x for whole DP-SGD epochs of MLPs with dropout on the digits).
  norms = jnp.sqrt(sum(jnp.sum(jnp.square(g.reshape(capacity, -1)), axis=1)
                       for g in jax.tree.leaves(grads)))
  scale = jax.lax.stop_gradient(jnp.where(mask, jnp.minimum(1.0, clip_norm / norms), 0.0))

  def clipped_total(params):
    losses = jax.vmap(example_loss, in_axes=(None, 0, 0, 0))(params, x, y, example_keys)
    return (scale * losses).sum()

  summed = jax.grad(clipped_total)(state["params"])
  noise_std = 0.0 if noise_multiplier == 0 else noise_multiplier * clip_norm
  if noise_std:
    noise = optax.tree_utils.tree_random_like(jax.random.fold_in(key, capacity), summed,
                                              jax.random.normal)
    summed = jax.tree.map(lambda s, z: s + noise_std * z, summed, noise)
  grads = jax.tree.map(lambda s: s / expected_batch, summed)
  return _update(optimizer, state, grads, state["model_state"]), _masked_mean(losses, mask)


def _update(optimizer, state: State, grads, model_state) -> State:
  updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  return {"params": params, "model_state": model_state, "opt_state": opt_state}


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  return jnp.where(mask, values, 0).sum() / jnp.maximum(mask.sum(), 1)


def default_optimizer(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
  """SGD with (Nesterov) momentum, L2 weight decay and the configured learning-rate schedule."""
  warmup = int(round(config.warmup_fraction * total_steps))
  peak = config.learning_rate
  if config.schedule == "constant":
    schedule = optax.constant_schedule(peak)
  elif config.schedule == "cosine":
    schedule = optax.warmup_cosine_decay_schedule(0.0, peak, max(warmup, 1), max(total_steps, 2))
  else:  # triangular / one-cycle: linear up to the peak, linear down to 0.
    schedule = optax.join_schedules(
        [optax.linear_schedule(peak / 25 if warmup else peak, peak, max(warmup, 1)),
         optax.linear_schedule(peak, 0.0, max(total_steps - warmup, 1))], [warmup])
  return optax.chain(
      optax.add_decayed_weights(config.weight_decay),
      optax.sgd(schedule, momentum=config.momentum or None, nesterov=config.nesterov))


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
  """The run's optax transformation: ``config.optimizer`` if given, else the default chain.

  ``config.optimizer`` may be an ``optax.GradientTransformation`` (used as it is), a callable
  ``total_steps -> GradientTransformation``, an optax function name (``"adamw"``: called with
  ``optimizer_kwargs``, ``learning_rate`` defaulting to ``config.learning_rate``) or an import
  path ``"package.module:factory"`` (called with ``optimizer_kwargs``, plus ``total_steps`` when
  it takes that argument; it may return either of the first two).
  """
  total_steps = config.epochs * steps_per_epoch
  spec = config.optimizer
  if spec is None:
    if config.optimizer_kwargs:
      raise MemjaxError("optimizer_kwargs were given without an optimizer; name one, e.g. "
                        "optimizer='adamw'.")
    return default_optimizer(config, total_steps)
  kwargs = dict(config.optimizer_kwargs)
  if isinstance(spec, str):
    imports.require_saved(spec, "optimizer", "optimizer")
    if imports.is_import_path(spec):
      factory = imports.import_object(spec, "optimizer")
      if "total_steps" in _parameters(factory):
        kwargs["total_steps"] = total_steps
      spec = _call(factory, kwargs, spec)
    else:
      factory = getattr(optax, spec, None)
      if not callable(factory) or spec.startswith("_"):
        raise MemjaxError(f"optax has no optimizer {spec!r}; use an optax function such as "
                          "adam, adamw, sgd, lion, or an import path 'package.module:factory'.")
      if "learning_rate" in _parameters(factory):
        kwargs.setdefault("learning_rate", config.learning_rate)
      spec = _call(factory, kwargs, f"optax.{spec}")
  elif kwargs:
    raise MemjaxError("optimizer_kwargs apply to an optimizer given by name or import path; "
                      "build your optax transformation with its arguments instead.")
  if not isinstance(spec, optax.GradientTransformation) and callable(spec):
    spec = spec(total_steps)
  if not isinstance(spec, optax.GradientTransformation):
    raise MemjaxError(f"The optimizer must be an optax.GradientTransformation or a callable "
                      f"total_steps -> GradientTransformation; got {type(spec).__name__}.")
  return spec


def _parameters(fn) -> tuple[str, ...]:
  try:
    return tuple(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return ()


def _call(factory, kwargs: dict, name: str):
  try:
    return factory(**kwargs)
  except TypeError as e:
    raise MemjaxError(f"Bad optimizer arguments {kwargs} for {name} ({e}); pass its keyword "
                      "arguments with --optimizer-kwargs / optimizer_kwargs.") from e


def augment(key: jax.Array, x: jax.Array, config: TrainConfig) -> jax.Array:
  """Random horizontal flip and/or translation (zero fill) of images, on device.

  Args:
    key: PRNG key.
    x: [B, H, W, C] images (vectors pass through unchanged).

  Returns:
    [B, H, W, C] augmented images; each example gets its own flip and shift.
  """
  if config.augment == "none" or x.ndim != 4:
    return x
  flip_key, shift_key = jax.random.split(key)
  if "flip" in config.augment:
    flip = jax.random.bernoulli(flip_key, 0.5, (x.shape[0], 1, 1, 1))
    x = jnp.where(flip, x[:, :, ::-1], x)
  if "translate" in config.augment and config.translate > 0:
    t = config.translate
    b, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (t, t), (t, t), (0, 0)))
    offsets = jax.random.randint(shift_key, (b, 2), 0, 2 * t + 1)
    x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))(
        padded, offsets)
  return x


def query(x: jax.Array, transform: tuple[bool, int, int]) -> jax.Array:
  """Applies one deterministic query augmentation (flip, shift_y, shift_x) to [B, H, W, C]."""
  flip, dy, dx = transform
  if x.ndim != 4:
    return x
  if flip:
    x = x[:, :, ::-1]
  if dy or dx:
    h, w = x.shape[1:3]
    t = max(abs(dy), abs(dx))
    padded = jnp.pad(x, ((0, 0), (t, t), (t, t), (0, 0)))
    x = padded[:, t - dy:t - dy + h, t - dx:t - dx + w]
  return x


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over all (or the given) devices with the axis ``"models"``."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (MODEL_AXIS,))


class Engine:
  """Compiled programs to train and evaluate chunks of ``chunk_size`` models.

  Args:
    data: the dataset (moved to device once, replicated).
    config: the training configuration.
    steps_per_epoch: S, optimizer steps per epoch for every model.
    chunk_size: models per chunk, a multiple of the mesh size.
    mesh: device mesh with axis ``"models"`` (default: all devices).
    eval_block: examples per evaluation block (default: from the memory budget).
    fns: the model's pure functions when the caller has built them (:func:`model_fns`).
    conv: the convolution of :func:`memjax.models.conv2d` in the training step ("canonical",
      "im2col", "lax"; None: its default). Evaluation always uses the lax forward convolution
      (fast everywhere) and, on CPU, evaluates a conv net's models one after another instead of
      vmapping them (a vmapped convolution is a grouped one, slow on XLA:CPU). See
      :mod:`memjax.tuning`, which measures the chunk size and ``conv`` together.
  """

  def __init__(self, data: Dataset, config: TrainConfig, steps_per_epoch: int,
               chunk_size: int, mesh: Mesh | None = None, eval_block: int | None = None,
               fns: ModelFns | None = None, conv: str | None = None):
    self.config = config
    self.mesh = make_mesh() if mesh is None else mesh
    if chunk_size % self.mesh.size:
      raise MemjaxError(f"chunk_size={chunk_size} is not a multiple of the {self.mesh.size} "
                        "devices the model axis is sharded over; use a multiple.")
    self.chunk_size = chunk_size
    self.steps_per_epoch = steps_per_epoch
    self.fns = model_fns(config, data) if fns is None else fns
    self.conv = conv
    platform = self.mesh.devices.flat[0].platform
    self.train_fns = _with_conv(self.fns, conv)
    self.eval_fns = _with_conv(self.fns, "lax" if conv == "lax" else (conv and "canonical"))
    self.sequential_eval = conv is not None and platform == "cpu" and chunk_size > self.mesh.size
    self.optimizer = make_optimizer(config, steps_per_epoch)
    self.task = data.task
    self.loss_fn = measures_lib.resolve_loss(config.loss, config.label_smoothing, data.task)
    self.measure_fns = measures_lib.resolve_measures(config.measures)
    self.output_dtypes = records_lib.eval_dtypes(tuple(config.measures), data.task)
    self.lira_fn = (measures_lib.sequence_lira_statistic if data.task == "language_model"
                    else measures_lib.lira_statistic)
    self.queries = tuple(query_transforms(config)[:config.query_augmentations])
    self.sampling = config.batch_sampling
    self.batch_capacity = (privacy_lib.batch_capacity(config.batch_size, data.num_train)
                           if self.sampling == "poisson" else config.batch_size)
    if config.private:
      _check_private(config, self.fns)
    self.base_key = jax.random.key(config.seed)
    self.model_sharding = NamedSharding(self.mesh, P(MODEL_AXIS))
    replicated = NamedSharding(self.mesh, P())
    self.x_train = jax.device_put(data.x_train, replicated)
    self.y_train = jax.device_put(data.y_train, replicated)
    self.eval_block = eval_block or default_eval_block(
        self.fns, data, 1 if self.sequential_eval else chunk_size // self.mesh.size,
        platform=platform)
    self.eval_sets = {
        split: tuple(jax.device_put(a, replicated) for a in _pad_blocks(x, y, self.eval_block))
        for split, x, y in (("train", data.x_train, data.y_train),
                            ("test", data.x_test, data.y_test))}
    self.num_examples = {"train": data.num_train, "test": data.num_test}
    # Text canaries: every candidate secret of every canary, scored at every evaluation.
    self.canary_shape = None
    if data.canaries is not None and data.canaries.get("kind") == "secret":
      from memjax import canaries as canaries_lib
      x, y = canaries_lib.candidate_sequences(data)  # [K, S + 1, L]
      self.canary_shape = tuple(x.shape[:2])
      self.eval_sets["canaries"] = tuple(
          jax.device_put(a, replicated)
          for a in _pad_blocks(x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1]),
                               self.eval_block))
      self.num_examples["canaries"] = x.shape[0] * x.shape[1]
    self.init_chunk = jax.jit(jax.vmap(self._init_one), out_shardings=self.model_sharding)
    self.init_optimizer = jax.jit(jax.vmap(self.optimizer.init),
                                  out_shardings=self.model_sharding)
    self.train_epoch = jax.jit(self._train_epoch, donate_argnums=(0,))
    self.evaluate_block = jax.jit(self._evaluate, static_argnames=("with_queries",))
    self.evaluate_candidates = jax.jit(self._evaluate_candidates)
    self._compiled_epoch = None
    self.compile_seconds = 0.0

  # ---- per model ----------------------------------------------------------------------------
  def _model_key(self, model_id):
    return jax.random.fold_in(self.base_key, model_id)

  def _init_one(self, model_id) -> State:
    params, model_state = self.fns.init(jax.random.fold_in(self._model_key(model_id), 0))
    return {"params": params, "model_state": model_state,
            "opt_state": self.optimizer.init(params)}

  def _epoch_keys(self, model_id, epoch):
    """(key of the epoch's data order, key of its steps) of one model."""
    key = jax.random.fold_in(jax.random.fold_in(self._model_key(model_id), 1), epoch)
    order_key, step_key = jax.random.split(key)
    return order_key, step_key

  def _epoch_order(self, model_id, keep_row, epoch):
    """[S, B] indices of the model's IN examples in a fresh random order (wrapping around),
    and the model's key for this epoch's augmentations and random streams."""
    order_key, step_key = self._epoch_keys(model_id, epoch)
    # A sort of 31 random bits (top bit set for OUT examples, so IN examples come first) with
    # the indices as payload: 2x cheaper on XLA:CPU than argsort of floats, which dominated
    # the epoch of tiny models (17 -> 8 ms for 256 models x 1,437 examples). The order equals
    # that of argsort(jax.random.uniform(order_key)) (uniform keeps the top bits), up to ties.
    bits = jax.random.bits(order_key, keep_row.shape, jnp.uint32) >> 1
    bits = jnp.where(keep_row, bits, bits | jnp.uint32(1 << 31))
    indices = jnp.arange(keep_row.shape[0], dtype=jnp.int32)
    permutation = jax.lax.sort((bits, indices), num_keys=1, is_stable=False)[1]
    num_in = jnp.maximum(keep_row.sum(), 1)
    positions = jnp.arange(self.steps_per_epoch * self.config.batch_size) % num_in
    return permutation[positions].reshape(self.steps_per_epoch, -1), step_key

  # ---- compiled programs ---------------------------------------------------------------------
  def _poisson_batch(self, keep_row, key):
    """One Poisson-sampled step of one model: each IN example (keep_row [N] bool) joins with
    probability q = batch_size / n_in. Returns [K] indices of the sampled examples (in index
    order, padded), [K] bool mask of the real ones, and how many were dropped for exceeding the
    capacity K (almost surely 0, see :func:`memjax.privacy.batch_capacity`)."""
    capacity = self.batch_capacity
    num_in = jnp.maximum(keep_row.sum(), 1)
    rate = jnp.minimum(1.0, self.config.batch_size / num_in)
    chosen = keep_row & (jax.random.uniform(key, keep_row.shape) < rate)
    slot = jnp.cumsum(chosen) - 1
    slot = jnp.where(chosen & (slot < capacity), slot, capacity)  # capacity: out of range
    indices = jnp.zeros(capacity, jnp.int32).at[slot].set(
        jnp.arange(keep_row.shape[0], dtype=jnp.int32), mode="drop")
    count = chosen.sum()
    return indices, jnp.arange(capacity) < count, jnp.maximum(count - capacity, 0)

  def _train_epoch(self, state: State, model_ids, keep, epoch, x_train, y_train):
    """One epoch for a chunk. model_ids [m] int, keep [m, N] bool -> (state, {"loss": last
    step's loss [m], "dropped": [m] Poisson-sampled examples dropped for exceeding the batch
    capacity (0 with shuffling)}).

    Model m's step s uses the key fold_in(epoch key of m, s): its augmentation draws from it,
    its random streams (dropout) from fold_in(that key, 1), its Poisson batch from
    fold_in(that key, 2); under DP-SGD example k's random streams draw from
    fold_in(fold_in(that key, 3), k) and the noise from fold_in(fold_in(that key, 3), K). Every
    random choice depends on (seed, model index, epoch, step) only.
    """
    config = self.config
    if self.sampling == "shuffle":
      order, epoch_keys = jax.vmap(self._epoch_order, in_axes=(0, 0, None))(model_ids, keep,
                                                                             epoch)
    else:  # Poisson batches are drawn step by step
      epoch_keys = jax.vmap(self._epoch_keys, in_axes=(0, None))(model_ids, epoch)[1]
      order = jnp.zeros((model_ids.shape[0], self.steps_per_epoch, 0), jnp.int32)
    if config.private:
      one_step = functools.partial(
          dp_train_step, self.train_fns, self.optimizer, self.loss_fn,
          clip_norm=config.dp_clip_norm, noise_multiplier=config.dp_noise_multiplier,
          expected_batch=config.batch_size)
    else:
      one_step = functools.partial(train_step, self.train_fns, self.optimizer, self.loss_fn)

    def model_step(state, keep_row, batch_index, key):
      x_key, stream_key = key, jax.random.fold_in(key, 1)
      if self.sampling == "shuffle":
        x = augment(x_key, x_train[batch_index], config)
        new_state, loss = one_step(state, x, y_train[batch_index], stream_key)
        return new_state, loss, jnp.int32(0)
      batch_index, mask, dropped = self._poisson_batch(keep_row, jax.random.fold_in(key, 2))
      x, y = augment(x_key, x_train[batch_index], config), y_train[batch_index]
      if config.private:
        new_state, loss = one_step(state, x, y, jax.random.fold_in(key, 3), mask)
      else:
        new_state, loss = one_step(state, x, y, stream_key, mask / config.batch_size)
      return new_state, loss, dropped.astype(jnp.int32)

    def step(state, inputs):
      step_index, batch_index = inputs  # batch_index [m, B]
      keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(epoch_keys, step_index)
      state, loss, dropped = jax.vmap(model_step)(state, keep, batch_index, keys)
      return state, (loss, dropped)

    steps = jnp.arange(self.steps_per_epoch)
    state, (losses, dropped) = jax.lax.scan(step, state, (steps, jnp.swapaxes(order, 0, 1)))
    return state, {"loss": losses[-1], "dropped": dropped.sum(axis=0)}

  def outputs(self, logits: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    """The per-example evaluation arrays of :mod:`memjax.records` for one model and block:
    logits [E, C], y [E] -> {name: [E]} in the records' dtypes (language models: logits
    [E, L, V], targets [E, L], one value per sequence)."""
    if self.task == "language_model":
      loglik = measures_lib.token_loglik(logits, y)
      prefix = self.config.prefix_length
      fns = {"correct": lambda lg, t: measures_lib.extracted(lg, t, prefix),
             "prob": lambda *_: jnp.exp(loglik), "loss": self.loss_fn,
             "token_accuracy": measures_lib.token_accuracy, "token_loglik": lambda *_: loglik,
             **self.measure_fns}
      if self.loss_fn is measures_lib.token_cross_entropy:
        fns["loss"] = lambda *_: -loglik
    else:
      log_prob = measures_lib.log_prob(logits, y)
      fns = {"correct": measures_lib.correct, "prob": lambda *_: jnp.exp(log_prob),
             "loss": self.loss_fn, **self.measure_fns}
      if self.loss_fn is measures_lib.cross_entropy:  # the same log-softmax serves both
        fns["loss"] = lambda *_: -log_prob
    out = {}
    for name, dtype in self.output_dtypes.items():
      value = fns[name](logits, y)
      if value.shape != y.shape[:1]:
        raise MemjaxError(f"The {'measure ' + repr(name) if name in self.measure_fns else name} "
                          f"function returned shape {value.shape} for a block of {y.shape[0]} "
                          "examples; a per-example function maps (logits [B, C], labels [B]) to "
                          "[B] (language models: (logits [B, L, V], targets [B, L]) to [B]).")
      out[name] = value.astype(dtype)
    return out

  def _evaluate(self, state: State, xs, ys, with_queries: bool):
    """Per-model outputs on blocks xs [nb, E, ...], ys [nb, E(, L)] -> arrays [m, nb*E(, A)]."""

    def one_model(params, model_state, x, y):
      if not with_queries:
        logits, _ = self.eval_fns.apply(params, model_state, x, False)
        return self.outputs(logits, y)
      # All A queries in one forward pass of A*E examples (inference mode: no example affects
      # another's logits): on XLA:CPU a conv net's A separate passes in one program ran 1.5x
      # slower than one pass of the concatenated block.
      num_queries = len(self.queries)
      batch = jnp.concatenate([x] + [query(x, t) for t in self.queries[1:]])
      logits, _ = self.eval_fns.apply(params, model_state, batch, False)
      logits = logits.reshape(num_queries, x.shape[0], *logits.shape[1:])
      out = self.outputs(logits[0], y)
      out["lira"] = jnp.stack([self.lira_fn(logits[a], y) for a in range(num_queries)], axis=-1)
      return out

    return _map_blocks(one_model, state, xs, ys, self.sequential_eval, self.mesh.size)

  def _evaluate_candidates(self, state: State, xs, ys):
    """Text canaries' candidates, blocks xs, ys [nb, E, L] -> {"loglik": [m, nb*E] mean
    log-likelihood of the scored (secret) tokens, "extracted": [m, nb*E] bool all of them
    predicted by greedy decoding}."""

    def one_model(params, model_state, x, y):
      logits, _ = self.eval_fns.apply(params, model_state, x, False)
      return {"loglik": measures_lib.token_loglik(logits, y),
              "extracted": measures_lib.extracted(logits, y, prefix=0)}

    return _map_blocks(one_model, state, xs, ys, self.sequential_eval, self.mesh.size)

  # ---- host-side helpers ---------------------------------------------------------------------
  def compiled_train_epoch(self, state: State, model_ids, keep):
    """The epoch program compiled ahead of time (once per engine; compile time is recorded).

    Call it as ``f(state, model_ids, keep, np.int32(epoch), engine.x_train, engine.y_train)``.
    """
    if self._compiled_epoch is None:
      t0 = time.perf_counter()
      self._compiled_epoch = self.train_epoch.lower(
          state, model_ids, keep, np.int32(0), self.x_train, self.y_train).compile()
      self.compile_seconds += time.perf_counter() - t0
    return self._compiled_epoch

  def shard(self, array) -> jax.Array:
    """Places a [m, ...] host array with the model axis sharded over the mesh."""
    return jax.device_put(array, self.model_sharding)

  def evaluate(self, state: State, split: str, with_queries: bool) -> dict[str, np.ndarray]:
    """Evaluates a chunk on a split; returns host arrays [m, N_split(, A)]."""
    xs, ys = self.eval_sets[split]
    out = self.evaluate_block(state, xs, ys, with_queries=with_queries)
    n = self.num_examples[split]
    return {k: to_host(v)[:, :n] for k, v in out.items()}

  def evaluate_canaries(self, state: State) -> dict[str, np.ndarray]:
    """The text canaries' records of a chunk: {"canary_loglik": [m, K, S + 1] mean
    log-likelihood per secret token of every candidate (column 0: the canary's own secret),
    "canary_extracted": [m, K] bool}; see :mod:`memjax.records`."""
    if self.canary_shape is None:
      raise MemjaxError("This run has no text canaries to evaluate.")
    xs, ys = self.eval_sets["canaries"]
    out = self.evaluate_candidates(state, xs, ys)
    n, (k, s) = self.num_examples["canaries"], self.canary_shape
    loglik = to_host(out["loglik"])[:, :n].reshape(-1, k, s)
    extracted = to_host(out["extracted"])[:, :n].reshape(-1, k, s)[:, :, 0]
    return {"canary_loglik": loglik, "canary_extracted": extracted}


class Chunk:
  """Models ``model_ids`` of a run on an :class:`Engine`: the one place that pads them to the
  chunk size, shards their keep masks, and trains and evaluates them epoch by epoch.

  Used by :func:`memjax.train` (with checkpoints and records around it) and by the proxies'
  drivers in :mod:`memjax.dynamics` (with measurements between epochs). The last chunk of a run
  is padded with copies of its first model; their results are dropped.

  Args:
    engine: the compiled programs.
    model_ids: [m] global indices of the models (their randomness depends on these only).
    keep: [m, N] bool training subsets.
    state: a training state to continue from (e.g. restored from a checkpoint); default: fresh.
  """

  def __init__(self, engine: Engine, model_ids, keep: np.ndarray, state: State | None = None):
    self.engine = engine
    model_ids = np.asarray(model_ids, np.int32)
    self.real = len(model_ids)
    if not 1 <= self.real <= engine.chunk_size:
      raise MemjaxError(f"A chunk holds 1 to {engine.chunk_size} models; got {self.real}.")
    pad = engine.chunk_size - self.real
    self.ids = engine.shard(np.concatenate([model_ids, np.full(pad, model_ids[0], np.int32)]))
    self.keep = self._shard_keep(keep)
    self.state = engine.init_chunk(self.ids) if state is None else state
    self.dropped = np.zeros(self.real, np.int64)  # Poisson-sampled examples dropped (capacity)
    self._train = None

  def _shard_keep(self, keep: np.ndarray) -> jax.Array:
    keep = np.asarray(keep, bool)
    padded = np.concatenate([keep, np.repeat(keep[:1], self.engine.chunk_size - self.real, 0)])
    return self.engine.shard(padded)

  def set_keep(self, keep: np.ndarray) -> None:
    """Trains on other subsets from now on (same models, same state); keep [m, N]."""
    self.keep = self._shard_keep(keep)

  def reset_optimizer(self) -> None:
    """A fresh optimizer state (the schedule restarts) for the current parameters."""
    self.state = dict(self.state, opt_state=self.engine.init_optimizer(self.state["params"]))

  def compile(self) -> None:
    """Compiles the epoch program now (once per engine; the time is in
    ``engine.compile_seconds``) instead of in the first :meth:`train_epoch`."""
    if self._train is None:
      self._train = self.engine.compiled_train_epoch(self.state, self.ids, self.keep)

  def train_epoch(self, epoch: int) -> np.ndarray:
    """Trains one epoch (``epoch`` seeds the data order and random streams); returns the last
    step's loss of each real model, [m]."""
    self.compile()
    self.state, out = self._train(self.state, self.ids, self.keep, np.int32(epoch),
                                  self.engine.x_train, self.engine.y_train)
    self.dropped += to_host(out["dropped"])[:self.real]
    return to_host(out["loss"])[:self.real]

  def evaluate(self, split: str = "train", with_queries: bool = False) -> dict[str, np.ndarray]:
    """The records' outputs of the real models on a split: {name: [m, N_split(, A)]}."""
    return {k: v[:self.real] for k, v in self.engine.evaluate(self.state, split,
                                                              with_queries).items()}

  def evaluate_canaries(self) -> dict[str, np.ndarray]:
    """The text canaries' records of the real models (:meth:`Engine.evaluate_canaries`)."""
    return {k: v[:self.real] for k, v in self.engine.evaluate_canaries(self.state).items()}


def _check_private(config: TrainConfig, fns: ModelFns) -> None:
  """Refuses DP-SGD settings the engine cannot run with a guarantee."""
  if config.dp_noise_multiplier is None:
    raise MemjaxError("dp_target_epsilon is calibrated by memjax.train (it needs the run's keep "
                      "mask and number of steps); to build an Engine yourself pass "
                      "dp_noise_multiplier (memjax.privacy.noise_for_epsilon computes it).")
  if math.isinf(config.dp_clip_norm) and config.dp_noise_multiplier > 0:
    raise MemjaxError("dp_clip_norm=inf with dp_noise_multiplier > 0 adds infinite noise; clip "
                      "the per-example gradients (e.g. dp_clip_norm=1.0).")
  _, model_state = jax.eval_shape(fns.init, jax.random.key(0))
  if jax.tree.leaves(model_state):
    raise MemjaxError("DP-SGD needs per-example gradients, but this model keeps state across "
                      "examples (BatchNorm statistics or other non-parameter variables), which "
                      "mixes the examples of a batch and voids the guarantee. Use a model "
                      "without BatchNorm: mlp, cnn or vit, vgg or resnet with "
                      "model_kwargs={'norm': 'group'} (GroupNorm), or GroupNorm/LayerNorm in "
                      "your own.")


def _map_blocks(one_model: Callable, state: State, xs, ys, sequential: bool = False,
                devices: int = 1) -> dict[str, jax.Array]:
  """``one_model(params, model_state, x [E, ...], y [E, ...]) -> {name: [E, ...]}`` over a
  chunk's models and ``lax.map``-ped over blocks xs [nb, E, ...] -> {name: [m, nb*E, ...]}.

  The models are vmapped, or with ``sequential`` vmapped over the ``devices`` (the sharded axis)
  and ``lax.map``-ped over each device's models.
  """
  models = {"params": state["params"], "model_state": state["model_state"]}
  if not sequential:
    def vmapped_block(inputs):
      x, y = inputs
      return jax.vmap(lambda p, s: one_model(p, s, x, y))(models["params"],
                                                          models["model_state"])
    out = jax.lax.map(vmapped_block, (xs, ys))  # each [nb, m, E, ...]
    return {k: jnp.moveaxis(v, 0, 1).reshape(v.shape[1], -1, *v.shape[3:])
            for k, v in out.items()}

  def blocks(model):  # one model over all blocks -> {name: [nb*E, ...]}
    out = jax.lax.map(lambda inputs: one_model(model["params"], model["model_state"], *inputs),
                      (xs, ys))  # each [nb, E, ...]
    return {k: v.reshape(-1, *v.shape[2:]) for k, v in out.items()}

  grouped = jax.tree.map(lambda a: a.reshape(devices, -1, *a.shape[1:]), models)
  out = jax.vmap(lambda group: jax.lax.map(blocks, group))(grouped)  # [devices, m/devices, ..]
  return {k: v.reshape(-1, *v.shape[2:]) for k, v in out.items()}


def _with_conv(fns: ModelFns, conv: str | None) -> ModelFns:
  """``fns`` whose ``apply`` traces :func:`memjax.models.conv2d` as ``conv`` (None: as is)."""
  if conv is None:
    return fns

  def apply(*args, **kwargs):
    with models_lib.conv_implementation(conv):
      return fns.apply(*args, **kwargs)

  return dataclasses.replace(fns, apply=apply)


def to_host(array: jax.Array) -> np.ndarray:
  """The whole (possibly multi-host sharded) array as numpy on every process."""
  if jax.process_count() > 1 and not array.is_fully_addressable:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))
  return np.asarray(array)


def steps_per_epoch(keep: np.ndarray, batch_size: int) -> int:
  """S = ceil(max_m n_in(m) / B): every model sees each of its examples at least once."""
  return max(1, math.ceil(int(keep.sum(axis=1).max()) / batch_size))


def _pad_blocks(x: np.ndarray, y: np.ndarray, block: int):
  """[n, ...], [n, ...] -> [nb, b, ...], [nb, b, ...]: the fewest blocks of at most ``block``
  examples, of equal size b (zero padding at the end, less than nb examples of it)."""
  n = x.shape[0]
  blocks = math.ceil(n / block)
  block = math.ceil(n / blocks)
  pad = blocks * block - n
  x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
  y = np.concatenate([y, np.zeros((pad, *y.shape[1:]), y.dtype)]) if pad else y
  return x.reshape(blocks, block, *x.shape[1:]), y.reshape(blocks, block, *y.shape[1:])


def activation_bytes(fns: ModelFns, data: Dataset, batch: int, train: bool) -> int:
  """Bytes of all intermediate values of one model's forward (+backward) pass on a batch.

  An upper bound on what XLA keeps live (it reuses buffers), read off the jaxpr without running
  or compiling anything.
  """
  params, batch_stats = jax.eval_shape(fns.init, jax.random.key(0))
  x = jax.ShapeDtypeStruct((batch, *data.feature_shape), data.x_train.dtype)
  y = jax.ShapeDtypeStruct((batch, *data.y_train.shape[1:]), jnp.int32)
  loss_fn = measures_lib.resolve_loss("cross_entropy", task=data.task)

  def loss(p, bs, x, y):
    logits, _ = fns.apply(p, bs, x, train)
    return loss_fn(logits, y).mean()

  f = jax.grad(loss) if train else loss
  jaxpr = jax.make_jaxpr(f)(params, batch_stats, x, y)
  return _jaxpr_bytes(jaxpr.jaxpr)


def _jaxpr_bytes(jaxpr) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    for var in eqn.outvars:
      aval = getattr(var, "aval", None)
      if hasattr(aval, "shape") and hasattr(aval, "dtype"):
        if jax.dtypes.issubdtype(aval.dtype, jax.dtypes.extended):  # PRNG keys: negligible
          continue
        total += math.prod(aval.shape) * np.dtype(aval.dtype).itemsize
    for sub in _sub_jaxprs(eqn.params):
      total += _jaxpr_bytes(sub)
  return total


def _sub_jaxprs(params: dict):
  """Jaxprs nested in an equation's params (pjit, custom_jvp, scan, cond branches)."""
  for value in params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      if hasattr(item, "eqns"):
        yield item
      elif hasattr(getattr(item, "jaxpr", None), "eqns"):
        yield item.jaxpr


def bytes_per_model(fns: ModelFns, data: Dataset, config: TrainConfig,
                    optimizer: optax.GradientTransformation | None = None) -> int:
  """Estimated device bytes one model needs while training: params, gradients and the update's
  temporaries (4 copies of the parameters), the optimizer state (1 copy for SGD with momentum,
  2 for Adam), the step's activations and, under DP-SGD, the per-example gradients."""
  if optimizer is None:
    optimizer = make_optimizer(config, 1)
  params, _ = jax.eval_shape(fns.init, jax.random.key(0))
  opt_state = jax.eval_shape(optimizer.init, params)
  opt_bytes = sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize
                  for x in jax.tree.leaves(opt_state))
  batch = (config.batch_size if config.batch_sampling == "shuffle"
           else privacy_lib.batch_capacity(config.batch_size, data.num_train))
  # DP-SGD holds every example's gradient (and its clipped copy) at once.
  per_example_grads = 2 * 4 * batch * fns.num_params if config.private else 0
  return (4 * 4 * fns.num_params + opt_bytes + per_example_grads
          + activation_bytes(fns, data, batch, train=True))


def default_memory_budget() -> int:
  """Half the device memory on accelerators; a quarter of physical RAM on CPU."""
  device = jax.devices()[0]
  try:
    stats = device.memory_stats() or {}
  except Exception:  # CPU devices may not implement it
    stats = {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"] * 0.5)
  try:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.25)
  except (ValueError, OSError, AttributeError):
    return 4 << 30


# On CPU a chunk's working set is best kept cache-sized: 48 MB per device, measured on 2 EPYC cores
# (2026-11-30 and 2026-12-03). Training: 256 MLPs 64-256-256-10 (4.9 MB each by bytes_per_model)
# ran at 550 model-epochs/s in chunks of 8 and 383 in one chunk of 256. Evaluation: the fastest
# blocks put 26-52 MB of activations (activation_bytes) per device: 32 examples for a CIFAR-shaped
# CNN (1.4 MB each; 2x faster than 1,024), 256 for 16 digit MLPs, 1,024 for 4.
CPU_WORKING_SET_BYTES = 48 << 20


def default_eval_block(fns: ModelFns, data: Dataset, models_per_device: int,
                       budget: int | None = None, platform: str | None = None) -> int:
  """Examples per evaluation block: models_per_device forward passes fit 1/4 of the memory
  budget and, on CPU (``platform``, default: the first device's), :data:`CPU_WORKING_SET_BYTES`;
  between 32 (16 for tiny budgets) and 1,024, and no more than the larger split. (Runs of 64 or
  more models measure their block instead, :mod:`memjax.tuning`.)"""
  budget = default_memory_budget() if budget is None else budget
  platform = jax.devices()[0].platform if platform is None else platform
  per_example = max(1, activation_bytes(fns, data, 1, train=False)) * max(models_per_device, 1)
  block = budget // 4 // per_example
  if platform == "cpu":
    block = min(block, max(32, CPU_WORKING_SET_BYTES // per_example))
  block = int(min(1024, max(16, block)))
  return min(block, max(data.num_train, data.num_test))
