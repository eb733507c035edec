"""Per-example training dynamics: train a few models with engine.Chunk, measure every example.

The memorization proxies of :mod:`memjax.proxies` are functions of *training dynamics*: how
every training example's correctness, loss, gradient norm or curvature evolves from epoch to
epoch in one or a few models. A run of :func:`memjax.train` with ``eval_every=1`` records
correctness, true-class probability and loss; this module records the rest, and runs the
training protocols some proxies define. Every driver trains through the engine's one training
path, :class:`memjax.engine.Chunk` (the compiled epoch program that :func:`memjax.train` uses),
and evaluates between epochs:

* :func:`track`: trains ``models`` models and records, after every epoch, the engine's evaluation
  (correctness, probability, loss) and any of :data:`MEASURES`: the per-example weight-gradient
  norm ``||grad_w l||_2``, the squared input-gradient norm ``||grad_x l||_2^2`` and the input
  curvature (:mod:`memjax.example_gradients`), each in a compiled measurement program
  (``lax.map`` over blocks of examples, ``vmap`` over models) -> :class:`Dynamics` with
  ``[T, m, N]`` arrays for :func:`memjax.proxies.cumulative_gradient_norm`,
  :func:`memjax.proxies.mean_curvature`, ...;
* :func:`second_split_forgetting` (Maini et al. 2022): trains pairs of models on complementary
  halves A, then continues on B only, recording every epoch -> FSLT and SSFT
  (:class:`SplitForgetting`);
* :func:`holdout_retraining` (Carlini et al. 2019; survey Eq. 7): trains on the training split,
  fine-tunes on the test split, and compares the two models' outputs on every training example
  (:class:`HoldoutRetraining`).

The recorded histories go into the proxies' formulas, for instance::

    dyn = memjax.dynamics.track("digits", models=4, epochs=20)      # [T, 4, N] histories
    csg = memjax.proxies.cumulative_gradient_norm(dyn.grad_norm)    # [N], high = memorized
    split = memjax.dynamics.second_split_forgetting("digits", models=4, epochs=20)
    split.ssft                                                      # [N], low = memorized

How each quantity is defined (forgetting counted between evaluations, the curvature estimator,
the two phases of FSLT / SSFT, the holdout fine-tuning) is in :mod:`memjax.proxies`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from memjax import engine as engine_lib
from memjax import proxies
from memjax.config import TrainConfig
from memjax.data import Dataset, load
from memjax.errors import MemjaxError
from memjax.example_gradients import (DEFAULT_H, DEFAULT_NUM_VECTORS, example_losses,
                                      input_curvature, input_gradients, weight_gradient_norms)

MEASURES = ("grad_norm", "input_grad_sq", "curvature")


@dataclasses.dataclass
class Dynamics:
  """Per-epoch, per-model, per-example training dynamics recorded by :func:`track`.

  Attributes:
    keep: [m, N] bool, which examples each model trained on.
    eval_epochs: [T] epoch after which each evaluation ran (1..epochs).
    correct: [T, m, N] bool correctness (inference mode).
    prob: [T, m, N] float32 true-class probability.
    loss: [T, m, N] float32 cross-entropy.
    grad_norm: [T, m, N] float32 ``||grad_w l||_2`` (None unless measured).
    input_grad_sq: [T, m, N] float32 ``||grad_x l||_2^2`` (None unless measured).
    curvature: [T, m, N] float32 :func:`input_curvature` (None unless measured).
    seconds: wall seconds: "train" (compile + epochs), "stats" (correct/prob/loss), and one
      entry per measured quantity (compile included).
    num_params: trainable scalars per model.
  """

  keep: np.ndarray
  eval_epochs: np.ndarray
  correct: np.ndarray
  prob: np.ndarray
  loss: np.ndarray
  grad_norm: np.ndarray | None
  input_grad_sq: np.ndarray | None
  curvature: np.ndarray | None
  seconds: dict[str, float]
  num_params: int


# ---- training through engine.Chunk --------------------------------------------------------------
def _resolve(data, config: TrainConfig | None, overrides: dict) -> tuple[Dataset, TrainConfig]:
  dataset = load(data)
  config = (config or TrainConfig()).replace(**overrides) if overrides else (config or
                                                                             TrainConfig())
  return dataset, config


def _check_models(models: int, what: str) -> int:
  if not isinstance(models, (int, np.integer)) or models < 1:
    raise MemjaxError(f"{what}={models!r}; train at least 1 model (a positive integer).")
  return int(models)


def _chunk(dataset: Dataset, config: TrainConfig, keep: np.ndarray, mesh=None,
           first_model: int = 0, steps: int | None = None) -> engine_lib.Chunk:
  """Models first_model.. of ``keep`` [m, N] on one engine chunk (the runner's training path)."""
  mesh = engine_lib.make_mesh() if mesh is None else mesh
  size = math.ceil(keep.shape[0] / mesh.size) * mesh.size
  steps = engine_lib.steps_per_epoch(keep, config.batch_size) if steps is None else steps
  engine = engine_lib.Engine(dataset, config, steps, size, mesh)
  return engine_lib.Chunk(engine, first_model + np.arange(keep.shape[0]), keep)


# ---- measurements inside compiled programs ------------------------------------------------------
def _blocks(x: np.ndarray, y: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
  """Pads x [N, ...], y [N] to a multiple of block -> [nb, block, ...], [nb, block].

  Unlike the engine's evaluation blocks (:func:`memjax.engine._pad_blocks`, the fewest blocks of
  equal size), every block has exactly ``block`` examples: the curvature's Rademacher vectors
  are drawn per block, so the blocks a user asks for (``track(block=...)``) are kept as they are.
  """
  n = x.shape[0]
  nb = math.ceil(n / block)
  pad = nb * block - n
  if pad:
    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    y = np.concatenate([y, np.zeros((pad,), y.dtype)])
  return x.reshape(nb, block, *x.shape[1:]), y.reshape(nb, block)


def _model_map(fn: Callable, state, xs: jax.Array, ys: jax.Array, key: jax.Array) -> jax.Array:
  """Maps ``fn(params, model_state, x [E, ...], y [E], key) -> [E, ...]`` over the blocks xs
  [nb, E, ...], ys [nb, E] (``lax.map``; block b gets ``fold_in(key, b)``) and the models of
  ``state`` (``vmap``) -> [m, nb*E, ...]."""

  def block(inputs):
    x, y, index = inputs
    k = jax.random.fold_in(key, index)
    return jax.vmap(lambda p, ms: fn(p, ms, x, y, k))(state["params"], state["model_state"])

  out = jax.lax.map(block, (xs, ys, jnp.arange(xs.shape[0])))  # [nb, m, E, ...]
  return jnp.moveaxis(out, 0, 1).reshape(out.shape[1], -1, *out.shape[3:])


def _measure_programs(engine: engine_lib.Engine, h: float,
                      num_vectors: int) -> dict[str, Callable]:
  apply, loss = engine.fns.apply, engine.loss_fn

  def losses_of(p, ms, y):
    return lambda z: example_losses(apply, p, ms, z, y, loss)

  per_block = {
      "grad_norm": lambda p, ms, x, y, k: weight_gradient_norms(apply, p, ms, x, y, loss),
      "input_grad_sq": lambda p, ms, x, y, k: jnp.sum(
          jnp.square(input_gradients(losses_of(p, ms, y), x)).reshape(x.shape[0], -1), -1),
      "curvature": lambda p, ms, x, y, k: input_curvature(losses_of(p, ms, y), x, k, h,
                                                          num_vectors),
  }
  return {name: jax.jit(functools.partial(_model_map, fn)) for name, fn in per_block.items()}


def _measure_block(engine: engine_lib.Engine, dataset: Dataset, models: int, num_vectors: int,
                   measures: Sequence[str]) -> int:
  """Examples per measurement block, so that the per-example gradients (m x E x P floats) and
  the curvature's (K + 1) backward passes fit an eighth of the memory budget."""
  budget = engine_lib.default_memory_budget() // 8
  per_example = 1
  if "grad_norm" in measures:
    per_example = max(per_example, 3 * 4 * engine.fns.num_params)
  if "curvature" in measures or "input_grad_sq" in measures:
    act = engine_lib.activation_bytes(engine.fns, dataset, 1, train=True)
    per_example = max(per_example, 2 * (num_vectors + 1) * act)
  block = budget // (per_example * max(models, 1))
  return int(min(512, max(8, block)))


def _logits_program(apply: Callable) -> Callable:
  """Compiled ``(state, xs [nb, E, ...], ys [nb, E]) -> [m, nb*E, C]``: the float32 logits of
  every model of a chunk in inference mode (:func:`holdout_retraining` compares two models'
  outputs, which the engine's evaluation reduces to per-example arrays)."""

  def logits(params, model_state, x, y, key):
    return apply(params, model_state, x, False)[0].astype(jnp.float32)

  program = jax.jit(functools.partial(_model_map, logits))
  return lambda state, xs, ys: program(state, xs, ys, jax.random.key(0))


# ---- the drivers --------------------------------------------------------------------------------
def track(data: Any = "digits", config: TrainConfig | None = None, *, models: int = 1,
          keep=None, measures: Sequence[str] = MEASURES, h: float = DEFAULT_H,
          num_vectors: int = DEFAULT_NUM_VECTORS, mesh=None, block: int | None = None,
          **overrides) -> Dynamics:
  """Trains ``models`` models and records per-example training dynamics after every epoch.

  One chunk of models trains in the engine's compiled epoch program; after each epoch, compiled
  measurement programs (``lax.map`` over blocks of examples, ``vmap`` over models, and for
  gradient norms ``vmap(grad)`` over the examples of a block) evaluate every training example.

  Args:
    data: dataset spec or :class:`memjax.Dataset`.
    config: training configuration (default :class:`TrainConfig`); ``**overrides`` replace
      fields (e.g. ``epochs=20, model="mlp"``).
    models: m, models trained (each on the whole training set unless ``keep`` is given).
    keep: optional [m, N] bool mask of the examples each model trains on.
    measures: subset of ``("grad_norm", "input_grad_sq", "curvature")`` to record besides
      correctness, probability and loss.
    h, num_vectors: finite-difference step and Rademacher vectors of :func:`input_curvature`.
    mesh: device mesh with axis "models" (default: all devices).
    block: examples per measurement block (default: from the memory budget).

  Returns:
    :class:`Dynamics` with [T, m, N] arrays, T = epochs.
  """
  dataset, config = _resolve(data, config, overrides)
  unknown = sorted(set(measures) - set(MEASURES))
  if unknown:
    raise MemjaxError(f"Unknown measure(s) {unknown}; choose from {', '.join(MEASURES)}.")
  if h <= 0 or num_vectors < 1:
    raise MemjaxError(f"h={h} and num_vectors={num_vectors}: use a positive step h (e.g. "
                      "1e-3) and at least one Rademacher vector.")
  if keep is None:
    keep = np.ones((_check_models(models, "models"), dataset.num_train), bool)
  elif np.ndim(keep) != 2 or np.shape(keep)[0] < 1:
    raise MemjaxError(f"keep must be an [m, N] mask with m >= 1 models and N="
                      f"{dataset.num_train} columns; got shape {np.shape(keep)}.")
  keep = proxies._keep_mask(keep, (np.shape(keep)[0], dataset.num_train))
  m, n = keep.shape
  t0 = time.perf_counter()
  chunk = _chunk(dataset, config, keep, mesh)
  seconds = {"train": 0.0, "stats": 0.0, **{name: 0.0 for name in measures}}
  seconds["train"] += time.perf_counter() - t0
  programs = _measure_programs(chunk.engine, h, num_vectors)
  block = block or _measure_block(chunk.engine, dataset, chunk.ids.shape[0], num_vectors,
                                 measures)
  replicated = jax.sharding.NamedSharding(chunk.engine.mesh, jax.sharding.PartitionSpec())
  xs, ys = (jax.device_put(a, replicated) for a in _blocks(dataset.x_train, dataset.y_train,
                                                           block))
  key = jax.random.key(config.seed + 7919)
  epochs = config.epochs
  arrays = {"correct": np.zeros((epochs, m, n), bool)}
  for name in ("prob", "loss", *measures):
    arrays[name] = np.zeros((epochs, m, n), np.float32)
  for epoch in range(epochs):
    t0 = time.perf_counter()
    chunk.train_epoch(epoch)
    seconds["train"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    out = chunk.evaluate()
    for name in ("correct", "prob", "loss"):
      arrays[name][epoch] = out[name]
    seconds["stats"] += time.perf_counter() - t0
    for name in measures:
      t0 = time.perf_counter()
      values = programs[name](chunk.state, xs, ys, jax.random.fold_in(key, epoch))
      arrays[name][epoch] = np.asarray(values)[:m, :n]
      seconds[name] += time.perf_counter() - t0
  return Dynamics(keep=keep, eval_epochs=np.arange(1, epochs + 1), correct=arrays["correct"],
                  prob=arrays["prob"], loss=arrays["loss"], grad_norm=arrays.get("grad_norm"),
                  input_grad_sq=arrays.get("input_grad_sq"),
                  curvature=arrays.get("curvature"), seconds=seconds,
                  num_params=chunk.engine.fns.num_params)


@dataclasses.dataclass
class SplitForgetting:
  """First-split learning and second-split forgetting times (Maini et al. 2022).

  Attributes:
    keep_a: [m, N] bool, split A of each model (phase 1); split B is ``~keep_a``.
    correct_a: [E_A, m, N] bool correctness after each phase-1 epoch.
    correct_b: [E_B + 1, m, N] bool correctness during phase 2 (index 0: end of phase 1).
    fslt_per_model: [m, N] FSLT (inf: not learned; NaN where the example is in B).
    ssft_per_model: [m, N] SSFT (inf: never forgotten; NaN where the example is in B).
    fslt: [N] mean FSLT over models with the example in A (not learned = E_A + 1).
    ssft: [N] mean SSFT over models with the example in A (never forgotten = E_B + 1).
    seconds: {"phase_a", "phase_b"} wall seconds (compile and evaluations included).
  """

  keep_a: np.ndarray
  correct_a: np.ndarray
  correct_b: np.ndarray
  fslt_per_model: np.ndarray
  ssft_per_model: np.ndarray
  fslt: np.ndarray
  ssft: np.ndarray
  seconds: dict[str, float]


def second_split_forgetting(data: Any = "digits", config: TrainConfig | None = None, *,
                            models: int = 2, epochs_a: int | None = None,
                            epochs_b: int | None = None, mesh=None,
                            **overrides) -> SplitForgetting:
  """FSLT and SSFT: train on split A, then continue on split B only, recording every epoch.

  Phase 1 trains each model on its split A (``epochs_a`` epochs, default ``config.epochs``) and
  evaluates every training example after each epoch (FSLT). Phase 2 continues from the phase-1
  weights with a fresh optimizer state on split B = not A only (``epochs_b`` epochs, default
  ``epochs_a``) and records when A's examples are forgotten for good (SSFT).

  Args:
    data, config, **overrides: as in :func:`track`.
    models: even number of models (pairs with complementary halves, see
      :func:`memjax.proxies.complementary_halves`; ``config.seed`` seeds the split).
    epochs_a, epochs_b: epochs of phase 1 and phase 2.
    mesh: device mesh (default: all devices).

  Returns:
    :class:`SplitForgetting`.
  """
  dataset, config = _resolve(data, config, overrides)
  models = _check_models(models, "models")
  epochs_a = config.epochs if epochs_a is None else _check_models(epochs_a, "epochs_a")
  epochs_b = epochs_a if epochs_b is None else _check_models(epochs_b, "epochs_b")
  keep_a = proxies.complementary_halves(models, dataset.num_train, config.seed)
  keep_b = ~keep_a
  n = dataset.num_train
  steps = engine_lib.steps_per_epoch(np.concatenate([keep_a, keep_b]), config.batch_size)
  t0 = time.perf_counter()
  chunk = _chunk(dataset, config.replace(epochs=epochs_a), keep_a, mesh, steps=steps)
  correct_a = np.zeros((epochs_a, models, n), bool)
  for epoch in range(epochs_a):
    chunk.train_epoch(epoch)
    correct_a[epoch] = chunk.evaluate()["correct"]
  seconds = {"phase_a": time.perf_counter() - t0}
  t0 = time.perf_counter()
  if epochs_b != epochs_a:  # another schedule length: another optimizer and epoch program
    phase_b = _chunk(dataset, config.replace(epochs=epochs_b), keep_b, chunk.engine.mesh,
                     steps=steps)
    phase_b.state = dict(chunk.state)
    chunk = phase_b
  chunk.reset_optimizer()
  correct_b = np.zeros((epochs_b + 1, models, n), bool)
  correct_b[0] = correct_a[-1]
  chunk.set_keep(keep_b)
  for epoch in range(epochs_b):
    chunk.train_epoch(epochs_a + epoch)
    correct_b[epoch + 1] = chunk.evaluate()["correct"]
  seconds["phase_b"] = time.perf_counter() - t0
  fslt = proxies.first_split_learning_time(correct_a)
  ssft = proxies.second_split_forgetting_time(correct_b)
  return SplitForgetting(keep_a=keep_a, correct_a=correct_a, correct_b=correct_b,
                         fslt_per_model=np.where(keep_a, fslt, np.nan),
                         ssft_per_model=np.where(keep_a, ssft, np.nan),
                         fslt=proxies.capped_mean(fslt, keep_a, epochs_a + 1),
                         ssft=proxies.capped_mean(ssft, keep_a, epochs_b + 1), seconds=seconds)


@dataclasses.dataclass
class HoldoutRetraining:
  """The holdout-retraining proxy (Carlini et al. 2019, survey Eq. 7).

  Attributes:
    per_model: [m, N] symmetric KL between each model's outputs on every training example before
      and after fine-tuning on the test split.
    score: [N] mean over the m models.
    seconds: {"train", "finetune", "score"} wall seconds (compile included).
  """

  per_model: np.ndarray
  score: np.ndarray
  seconds: dict[str, float]


def holdout_retraining(data: Any = "digits", config: TrainConfig | None = None, *,
                       models: int = 1, finetune_epochs: int | None = None, mesh=None,
                       **overrides) -> HoldoutRetraining:
  """Holdout retraining: train on the training split, fine-tune on the test split, compare.

  Each model is trained on the whole training split D for ``config.epochs`` epochs (f), then
  fine-tuned on the test split D_t for ``finetune_epochs`` epochs (default ``max(1, epochs //
  4)``) with a fresh optimizer state and the configured optimizer and schedule (f'). The proxy of
  training example i is ``KL(f(x_i)||f'(x_i)) + KL(f'(x_i)||f(x_i))``
  (:func:`memjax.proxies.symmetric_kl`).

  Args:
    data, config, **overrides: as in :func:`track`.
    models: m models, averaged.
    finetune_epochs: epochs of fine-tuning on the test split.
    mesh: device mesh (default: all devices).

  Returns:
    :class:`HoldoutRetraining`.
  """
  dataset, config = _resolve(data, config, overrides)
  models = _check_models(models, "models")
  finetune_epochs = (max(1, config.epochs // 4) if finetune_epochs is None
                     else _check_models(finetune_epochs, "finetune_epochs"))
  n = dataset.num_train
  t0 = time.perf_counter()
  keep = np.ones((models, n), bool)
  chunk = _chunk(dataset, config, keep, mesh)
  for epoch in range(config.epochs):
    chunk.train_epoch(epoch)
  logits = _logits_program(chunk.engine.fns.apply)
  xs, ys = chunk.engine.eval_sets["train"]  # the training split in blocks, on device
  before = np.asarray(logits(chunk.state, xs, ys))[:models, :n]
  seconds = {"train": time.perf_counter() - t0}
  t0 = time.perf_counter()
  holdout = dataclasses.replace(dataset, x_train=dataset.x_test, y_train=dataset.y_test,
                                raw_train=None)
  finetune_keep = np.ones((models, holdout.num_train), bool)
  tuner = _chunk(holdout, config.replace(epochs=finetune_epochs), finetune_keep,
                 chunk.engine.mesh, first_model=models)
  tuner.state = dict(chunk.state)
  tuner.reset_optimizer()
  for epoch in range(finetune_epochs):
    tuner.train_epoch(epoch)
  seconds["finetune"] = time.perf_counter() - t0
  t0 = time.perf_counter()
  after = np.asarray(logits(tuner.state, xs, ys))[:models, :n]
  per_model = proxies.symmetric_kl(before, after)
  seconds["score"] = time.perf_counter() - t0
  return HoldoutRetraining(per_model=per_model, score=per_model.mean(0), seconds=seconds)

