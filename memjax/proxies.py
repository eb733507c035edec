"""Training-dynamics proxies for memorization: per-example signals from one or a few models.

The Feldman & Zhang estimator needs hundreds of models. A *proxy* scores every training example
from the training dynamics of one or a few models instead; its use is being cheaper while ranking
examples like the memorization score. This module has

* pure functions of per-epoch histories (numpy in, numpy out, vectorised over models/examples):

  ======================================  =====================================  =============
  proxy                                   reference                              sign vs mem
  ======================================  =====================================  =============
  :func:`forgetting_events`               Toneva et al. 2019                     +
  :func:`cumulative_loss` (CSL)           Ravikumar et al. 2024/25               +
  :func:`cumulative_gradient_norm` (CSG)  Ravikumar et al. 2024/25               +
  :func:`mean_curvature`                  Garg et al. 2023                       +
  :func:`learning_speed`                  Jiang et al. 2021 (learning events)    -
  :func:`first_split_learning_time`       Maini et al. 2022 (FSLT)               +
  :func:`second_split_forgetting_time`    Maini et al. 2022 (SSFT)               -
  :func:`symmetric_kl` (holdout)          Carlini et al. 2019 (survey Eq. 7)     +
  ======================================  =====================================  =============

  "sign" is the direction a good proxy correlates with memorization (+: a high proxy value means
  a memorized example);

* jax functions evaluated inside compiled programs (:func:`example_losses`,
  :func:`weight_gradient_norms`, :func:`input_gradients`, :func:`input_curvature`);
* drivers that train a few models with :class:`memjax.engine.Engine` and record what the proxies
  need every epoch: :func:`track` (correctness, loss, per-example gradient norms, input
  curvature), :func:`second_split_forgetting` (FSLT / SSFT: train on split A, then on split B),
  :func:`holdout_retraining` (train, fine-tune on the test split, compare outputs);
* ``benchmarks/proxies_vs_memorization.py`` (not part of the library): each proxy's Spearman
  correlation with the memorization score of an ensemble and its wall-time cost relative to that
  estimator.

Aggregation convention: histories are ``[T, M, N]`` (T evaluations, M models, N examples) with a
``keep`` mask ``[M, N]``; a per-example proxy is the mean over the models that trained on the
example (IN models), NaN where there is none. ``keep=None`` means every model trained on every
example (the usual proxy setting: a few models on the whole training set).

Readings of the definitions (where a paper leaves a choice open):

* Forgetting and learning events are counted between consecutive *evaluations* (every epoch with
  ``eval_every=1``), not between minibatch presentations as in Toneva et al.; the untrained model
  before the first evaluation counts as "not learned", so being correct at the first evaluation is
  a learning event. Toneva et al. rank never-learned examples as the most forgettable ("infinite"
  forgetting events); :attr:`ForgettingEvents.score` gives a never-learned (model, example) pair
  ``floor(T / 2) + 1`` events, one more than any learned pair can have, so means stay finite.
* CSG: Ravikumar et al. (ICML 2025) sum the per-example gradient norm with respect to the
  *weights*, ``sum_t ||grad_w l(w_t; x_i, y_i)||_2`` (``grad_norm``); the survey's Eq. 12 writes the
  squared norm of the gradient with respect to the *input*, ``sum_t ||grad_x l||_2^2``
  (``input_grad_sq``). :func:`track` records both; the benchmark's table reports both.
* Input curvature (Garg et al. 2023; survey Eq. 11): ``curv_t(x) = mean_v ||grad_x l(x + h v) -
  grad_x l(x)||^2 / h^2`` over ``num_vectors`` Rademacher vectors ``v`` (entries +-1), averaged
  over epochs. For small ``h`` it is an unbiased Hutchinson estimate of ``tr(H^2) = ||H||_F^2``,
  the squared Frobenius norm (sum of squared eigenvalues) of the input Hessian ``H`` of the loss;
  Garg et al. use ``h = 1e-3`` and 10 vectors (our defaults), on standardised inputs.
* Holdout retraining (survey Sec. 3.1, Eq. 7): ``f`` is trained on the whole training split ``D``,
  ``f'`` is ``f`` fine-tuned on the *test* split ``D_t`` (fresh optimizer state, the configured
  optimizer and schedule, ``finetune_epochs`` epochs), and the proxy of a training example is the
  symmetric KL divergence ``KL(f(x)||f'(x)) + KL(f'(x)||f(x))`` between the two softmax outputs
  (the sum of both directions, Jeffreys' divergence), averaged over the proxy models.
* FSLT / SSFT (Maini et al. 2022; survey Definitions 9, 10): models come in pairs with
  complementary random halves A and B of the training set, so every example is in A for exactly
  half the models. FSLT is the first evaluation epoch of phase 1 (training on A) from which the
  example stays correct; SSFT is the first epoch of phase 2 (continuing on B only, fresh
  optimizer state, from the phase-1 weights) from which it stays incorrect, epoch 0 being the end
  of phase 1. Never learned (FSLT) / never forgotten (SSFT) pairs are ``inf`` per model and count
  as ``epochs + 1`` in the per-example mean.
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
from scipy import special as scipy_special

from memjax import engine as engine_lib
from memjax import estimators
from memjax.correlation import spearman  # noqa: F401  (the proxies' measure, also here)
from memjax import measures as measures_lib
from memjax.config import TrainConfig
from memjax.data import Dataset, load
from memjax.errors import MemjaxError

MEASURES = ("grad_norm", "input_grad_sq", "curvature")
DEFAULT_H = 1e-3
DEFAULT_NUM_VECTORS = 10


# ---- validation and aggregation helpers ---------------------------------------------------------
def _history(name: str, values, dtype=None) -> np.ndarray:
  """Checks a [T, M, N] per-epoch history and returns it as a numpy array."""
  values = np.asarray(values)
  if values.ndim != 3:
    raise MemjaxError(f"{name} must be a per-epoch history of shape [T, M, N] (evaluations, "
                      f"models, examples); got shape {values.shape}. Pass e.g. "
                      f"run.records.train_{name} (record every epoch with eval_every=1), or add "
                      "a leading axis with x[None] for a single evaluation.")
  if values.shape[0] == 0:
    raise MemjaxError(f"{name} has no evaluations (T=0); train with eval_every=1.")
  if dtype is bool:
    if values.dtype != bool:
      if not (np.issubdtype(values.dtype, np.number) and np.isin(values, (0, 1)).all()):
        raise MemjaxError(f"{name} must be boolean correctness (or 0/1); got dtype "
                          f"{values.dtype} with other values.")
      values = values.astype(bool)
    return values
  values = values.astype(np.float64)
  if np.isnan(values).any():
    raise MemjaxError(f"{name} contains NaN; the training diverged or the history is "
                      "incomplete. Lower the learning rate or pass only finished evaluations.")
  return values


def _keep_mask(keep, shape: tuple[int, int]) -> np.ndarray:
  """[M, N] bool keep mask (all True when None), checked against the history's [M, N]."""
  if keep is None:
    return np.ones(shape, bool)
  return estimators.as_keep_mask(keep, shape, against="the history")


def _eval_epochs(eval_epochs, num_evals: int) -> np.ndarray:
  if eval_epochs is None:
    return np.arange(1, num_evals + 1)
  eval_epochs = np.asarray(eval_epochs)
  if eval_epochs.shape != (num_evals,):
    raise MemjaxError(f"eval_epochs has shape {eval_epochs.shape} but the history has "
                      f"{num_evals} evaluations; pass records.eval_epochs of the same run.")
  return eval_epochs


def _in_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Mean of values [M, N] over the models where mask [M, N] holds -> [N]; NaN where none."""
  count = mask.sum(0)
  total = np.where(mask, values, 0.0).sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ---- forgetting and learning events (Toneva et al. 2019) ----------------------------------------
@dataclasses.dataclass
class ForgettingEvents:
  """Forgetting / learning events of every (model, example) pair, and per-example aggregates.

  Attributes:
    counts: [M, N] int, forgetting events (correct at one evaluation, incorrect at the next).
    learning: [M, N] int, learning events (incorrect, or untrained, then correct).
    never_learned: [M, N] bool, never correct at any evaluation.
    first_learned: [M, N] float, epoch of the first correct evaluation (NaN if never).
    forgetting: [N] mean forgetting events over IN models that learned the example.
    never_learned_fraction: [N] fraction of IN models that never learned it.
    first_learned_epoch: [N] mean first-learned epoch over IN models that learned it.
    learning_events: [N] mean learning events over IN models.
    score: [N] Toneva's ranking: mean over IN models of the forgetting events, a never-learned
      pair counting ``floor(T/2) + 1`` (more than any learned pair can have).
  """

  counts: np.ndarray
  learning: np.ndarray
  never_learned: np.ndarray
  first_learned: np.ndarray
  forgetting: np.ndarray
  never_learned_fraction: np.ndarray
  first_learned_epoch: np.ndarray
  learning_events: np.ndarray
  score: np.ndarray


def forgetting_events(correct, keep=None, eval_epochs=None) -> ForgettingEvents:
  """Counts forgetting and learning events from a correctness history (Toneva et al. 2019).

  Args:
    correct: [T, M, N] bool, correctness of model m on example i after evaluation t (e.g.
      ``run.records.train_correct`` of a run with ``eval_every=1``).
    keep: [M, N] bool, model m trained on example i; aggregates use only those (IN) models.
      None: every model trained on every example.
    eval_epochs: [T] epoch of each evaluation (default 1..T), for ``first_learned``.

  Returns:
    :class:`ForgettingEvents`.

  >>> c = np.array([1, 0, 1, 1, 0], bool)[:, None, None]  # one model, one example
  >>> ev = forgetting_events(c)
  >>> int(ev.counts[0, 0]), int(ev.learning[0, 0]), float(ev.first_learned[0, 0])
  (2, 2, 1.0)
  """
  c = _history("correct", correct, dtype=bool)
  t, m, n = c.shape
  keep = _keep_mask(keep, (m, n))
  epochs = _eval_epochs(eval_epochs, t).astype(np.float64)
  counts = (c[:-1] & ~c[1:]).sum(0)
  learning = (~c[:-1] & c[1:]).sum(0) + c[0]
  never = ~c.any(0)
  first = np.where(never, np.nan, epochs[np.argmax(c, axis=0)])
  learned_in = keep & ~never
  return ForgettingEvents(
      counts=counts, learning=learning, never_learned=never, first_learned=first,
      forgetting=_in_mean(counts.astype(np.float64), learned_in),
      never_learned_fraction=_in_mean(never.astype(np.float64), keep),
      first_learned_epoch=_in_mean(np.nan_to_num(first), learned_in),
      learning_events=_in_mean(learning.astype(np.float64), keep),
      score=_in_mean(np.where(never, t // 2 + 1, counts).astype(np.float64), keep))


# ---- cumulative sample loss / gradient (Ravikumar et al.), learning speed, curvature ------------
def cumulative(values, keep=None) -> np.ndarray:
  """Sum over evaluations, mean over IN models: ``mean_{m in IN_i} sum_t values[t, m, i]``.

  Args:
    values: [T, M, N] per-epoch per-example values (loss, gradient norm, ...).
    keep: [M, N] bool or None (all models).

  Returns:
    [N] float64, NaN where an example has no IN model.
  """
  v = _history("values", values)
  return _in_mean(v.sum(0), _keep_mask(keep, v.shape[1:]))


def cumulative_loss(loss, keep=None) -> np.ndarray:
  """Cumulative sample loss (CSL, Ravikumar et al.): ``sum_t loss_t(x_i)``, mean over IN models.

  Args:
    loss: [T, M, N] cross-entropy loss after each evaluation (``records.train_loss``).
    keep: [M, N] bool or None.

  Returns:
    [N] float64. High CSL: learned late or never, likely memorized.

  >>> cumulative_loss(np.ones((3, 2, 1)), np.array([[True], [False]])).tolist()
  [3.0]
  """
  return cumulative(loss, keep)


def cumulative_gradient_norm(grad_norm, keep=None) -> np.ndarray:
  """Cumulative sample gradient (CSG, Ravikumar et al.): ``sum_t g_t(x_i)``, mean over IN models.

  Args:
    grad_norm: [T, M, N] per-example gradient norms per evaluation, e.g. ``Dynamics.grad_norm``
      (``||grad_w l||_2``) or ``Dynamics.input_grad_sq`` (``||grad_x l||_2^2``, survey Eq. 12).
    keep: [M, N] bool or None.

  Returns:
    [N] float64.
  """
  return cumulative(grad_norm, keep)


def learning_speed(prob, keep=None) -> np.ndarray:
  """Learning-events proxy (Jiang et al. 2021; survey Eq. 10): mean true-class probability.

  Args:
    prob: [T, M, N] softmax probability of the true class after each evaluation.
    keep: [M, N] bool or None.

  Returns:
    [N] float64, ``mean_{m in IN_i} mean_t prob[t, m, i]``; high = learned fast = typical.
  """
  p = _history("prob", prob)
  return _in_mean(p.mean(0), _keep_mask(keep, p.shape[1:]))


def mean_curvature(curvature, keep=None) -> np.ndarray:
  """Input-loss curvature averaged over epochs and IN models (Garg et al. 2023; survey Eq. 11).

  Args:
    curvature: [T, M, N] per-epoch curvature estimates (``Dynamics.curvature``, see
      :func:`input_curvature`).
    keep: [M, N] bool or None.

  Returns:
    [N] float64.
  """
  c = _history("curvature", curvature)
  return _in_mean(c.mean(0), _keep_mask(keep, c.shape[1:]))


# ---- first-split learning time / second-split forgetting time (Maini et al. 2022) --------------
def first_split_learning_time(correct, eval_epochs=None) -> np.ndarray:
  """FSLT per (model, example): the first evaluation epoch from which it is always correct.

  Args:
    correct: [T, M, N] bool correctness while training on split A (phase 1).
    eval_epochs: [T] epochs of the evaluations (default 1..T).

  Returns:
    [M, N] float64 epochs; ``inf`` when incorrect at the last evaluation (not learned).

  >>> c = np.array([0, 1, 0, 1, 1], bool)[:, None, None]
  >>> first_split_learning_time(c).tolist()
  [[4.0]]
  """
  c = _history("correct", correct, dtype=bool)
  epochs = _eval_epochs(eval_epochs, c.shape[0]).astype(np.float64)
  trailing = np.cumprod(c[::-1], axis=0).sum(0)  # evaluations correct at the end, in a row
  index = np.clip(c.shape[0] - trailing, 0, c.shape[0] - 1)
  return np.where(trailing > 0, epochs[index], np.inf)


def second_split_forgetting_time(correct, epochs=None) -> np.ndarray:
  """SSFT per (model, example): the first phase-2 epoch from which it is never correct again.

  Args:
    correct: [T, M, N] bool correctness of split-A examples while training on split B (phase 2);
      evaluation 0 should be the end of phase 1 (before any phase-2 step).
    epochs: [T] phase-2 epochs of the evaluations (default 0..T-1).

  Returns:
    [M, N] float64; ``inf`` when correct at the last evaluation (never forgotten), 0 when never
    correct in phase 2.

  >>> c = np.array([1, 1, 0, 1, 0, 0], bool)[:, None, None]
  >>> second_split_forgetting_time(c).tolist()
  [[4.0]]
  """
  c = _history("correct", correct, dtype=bool)
  epochs = (np.arange(c.shape[0]) if epochs is None
            else _eval_epochs(epochs, c.shape[0])).astype(np.float64)
  trailing = np.cumprod(~c[::-1], axis=0).sum(0)  # evaluations incorrect at the end, in a row
  index = np.clip(c.shape[0] - trailing, 0, c.shape[0] - 1)
  return np.where(trailing > 0, epochs[index], np.inf)


def capped_mean(times, keep, cap: float) -> np.ndarray:
  """[N] mean over IN models of per-model times [M, N], ``inf`` replaced by ``cap``."""
  times = np.asarray(times, np.float64)
  return _in_mean(np.where(np.isinf(times), cap, times), _keep_mask(keep, times.shape))


# ---- holdout retraining (survey Eq. 7) ----------------------------------------------------------
def symmetric_kl(logits_p, logits_q) -> np.ndarray:
  """Symmetric KL divergence ``KL(p||q) + KL(q||p)`` between softmax(logits) over the last axis.

  Args:
    logits_p, logits_q: [..., C] logits (or log-probabilities) of the two models.

  Returns:
    [...] float64, ``sum_c (p_c - q_c) (log p_c - log q_c)`` >= 0.

  >>> round(float(symmetric_kl(np.log([0.5, 0.5]), np.log([0.25, 0.75]))), 6)
  0.274653
  """
  lp = np.asarray(logits_p, np.float64)
  lq = np.asarray(logits_q, np.float64)
  if lp.shape != lq.shape or lp.ndim < 1:
    raise MemjaxError(f"logits_p {lp.shape} and logits_q {lq.shape} must have the same shape "
                      "[..., C]: outputs of the two models on the same examples.")
  lp = lp - scipy_special.logsumexp(lp, axis=-1, keepdims=True)
  lq = lq - scipy_special.logsumexp(lq, axis=-1, keepdims=True)
  return np.sum((np.exp(lp) - np.exp(lq)) * (lp - lq), axis=-1)


# ---- jax functions (used inside compiled programs) ----------------------------------------------
def example_losses(apply: Callable, params, model_state, x: jax.Array, y: jax.Array,
                   loss_fn: Callable = measures_lib.cross_entropy) -> jax.Array:
  """Per-example training loss (the run's ``loss``, cross-entropy by default) in inference mode.

  Args:
    apply: ``(params, model_state, x, train) -> (logits [B, C], model_state)``
      (``engine.fns.apply``).
    params, model_state: one model's pytrees (no model axis).
    x: [B, *feature_shape] inputs. y: [B] int labels.
    loss_fn: per-example loss ``(logits [B, C], labels [B]) -> [B]`` (``engine.loss_fn``).

  Returns:
    [B] float32 losses; in inference mode examples do not interact (BatchNorm uses its running
    averages), so ``grad_x sum(losses)`` holds every example's own input gradient.
  """
  logits, _ = apply(params, model_state, x, False)
  return loss_fn(logits, y)


def weight_gradient_norms(apply: Callable, params, model_state, x: jax.Array, y: jax.Array,
                          loss_fn: Callable = measures_lib.cross_entropy) -> jax.Array:
  """Per-example ``||grad_w l(w; x_i, y_i)||_2`` via ``jax.vmap(jax.grad)`` over examples.

  Args:
    apply, params, model_state, loss_fn: as in :func:`example_losses`.
    x: [B, *feature_shape]. y: [B].

  Returns:
    [B] float32 L2 norms of the full parameter gradient of each example's loss.
  """

  def one(xi, yi):
    grads = jax.grad(lambda p: example_losses(apply, p, model_state, xi[None], yi[None],
                                              loss_fn)[0])(params)
    return jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32)))
                        for g in jax.tree.leaves(grads)))

  return jax.vmap(one)(x, y)


def input_gradients(loss_fn: Callable, x: jax.Array) -> jax.Array:
  """Input gradients of per-example losses: ``grad_x sum_i loss_fn(x)_i``.

  Args:
    loss_fn: ``x [B, ...] -> [B]`` per-example losses of independent examples.
    x: [B, ...].

  Returns:
    [B, ...] gradient of each example's loss with respect to its own input.
  """
  return jax.grad(lambda z: jnp.sum(loss_fn(z)))(x)


def input_curvature(loss_fn: Callable, x: jax.Array, key: jax.Array, h: float = DEFAULT_H,
                    num_vectors: int = DEFAULT_NUM_VECTORS) -> jax.Array:
  """Finite-difference Hutchinson estimate of the input-loss curvature (Garg et al. 2023).

  ``curv(x) = (1/K) sum_k ||grad_x l(x + h v_k) - grad_x l(x)||^2 / h^2`` with K =
  ``num_vectors`` Rademacher vectors ``v_k`` (entries +-1, one set per example). As ``h -> 0``,
  ``(grad(x + h v) - grad(x)) / h -> H v`` and ``E_v ||H v||^2 = tr(H^2)``: the estimate is
  unbiased for the squared Frobenius norm of the input Hessian ``H`` (exact for any K when H is
  diagonal, since then ``||H v||^2 = sum_j H_jj^2``).

  Args:
    loss_fn: ``x [B, ...] -> [B]`` per-example losses (independent examples).
    x: [B, ...] inputs.
    key: PRNG key for the Rademacher vectors.
    h: finite-difference step, in input units (standardised features: 1e-3 as Garg et al.).
    num_vectors: K, Rademacher vectors per example (Garg et al.: 10).

  Returns:
    [B] float32 curvature estimates.
  """
  g0 = input_gradients(loss_fn, x)
  v = jax.random.rademacher(key, (num_vectors, *x.shape), dtype=x.dtype)

  def one(vk):
    diff = (input_gradients(loss_fn, x + h * vk) - g0) / h
    return jnp.sum(jnp.square(diff).reshape(x.shape[0], -1), axis=-1)

  return jnp.mean(jax.vmap(one)(v), axis=0)


# ---- engine-based drivers -----------------------------------------------------------------------
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


def _resolve(data, config: TrainConfig | None, overrides: dict) -> tuple[Dataset, TrainConfig]:
  dataset = load(data)
  config = (config or TrainConfig()).replace(**overrides) if overrides else (config or
                                                                             TrainConfig())
  return dataset, config


def _check_models(models: int, what: str) -> int:
  if not isinstance(models, (int, np.integer)) or models < 1:
    raise MemjaxError(f"{what}={models!r}; train at least 1 model (a positive integer).")
  return int(models)


def _blocks(x: np.ndarray, y: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
  """Pads x [N, ...], y [N] to a multiple of block -> [nb, block, ...], [nb, block]."""
  n = x.shape[0]
  nb = math.ceil(n / block)
  pad = nb * block - n
  if pad:
    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    y = np.concatenate([y, np.zeros((pad,), y.dtype)])
  return x.reshape(nb, block, *x.shape[1:]), y.reshape(nb, block)


def _chunk(dataset: Dataset, config: TrainConfig, keep: np.ndarray, mesh=None,
           first_model: int = 0, steps: int | None = None) -> engine_lib.Chunk:
  """Models first_model.. of ``keep`` [m, N] on one engine chunk (the runner's training path)."""
  mesh = engine_lib.make_mesh() if mesh is None else mesh
  size = math.ceil(keep.shape[0] / mesh.size) * mesh.size
  steps = engine_lib.steps_per_epoch(keep, config.batch_size) if steps is None else steps
  engine = engine_lib.Engine(dataset, config, steps, size, mesh)
  return engine_lib.Chunk(engine, first_model + np.arange(keep.shape[0]), keep)


def _model_map(fn: Callable, state, xs: jax.Array, ys: jax.Array, key: jax.Array) -> jax.Array:
  """fn(params, batch_stats, x [E, ...], y [E], key) -> [E], over blocks and models -> [m, nb*E]."""

  def block(inputs):
    x, y, index = inputs
    k = jax.random.fold_in(key, index)
    return jax.vmap(lambda p, ms: fn(p, ms, x, y, k))(state["params"], state["model_state"])

  out = jax.lax.map(block, (xs, ys, jnp.arange(xs.shape[0])))  # [nb, m, E]
  return jnp.moveaxis(out, 0, 1).reshape(out.shape[1], -1)


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
  keep = _keep_mask(keep, (np.shape(keep)[0], dataset.num_train))
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


def complementary_halves(models: int, num_examples: int, seed: int = 0) -> np.ndarray:
  """[models, N] bool split-A masks: pairs of complementary random halves (models must be even).

  Model 2j gets a random half S_j (size floor(N/2)), model 2j+1 its complement, so every example
  is in split A for exactly models/2 models.
  """
  if models < 2 or models % 2:
    raise MemjaxError(f"models={models}; FSLT/SSFT pairs each model with one trained on the "
                      "complementary half, so use an even number >= 2.")
  rng = np.random.default_rng(seed)
  noise = rng.random((models // 2, num_examples))
  ranks = np.argsort(np.argsort(noise, axis=1), axis=1)
  half = ranks < num_examples // 2
  return np.stack([half, ~half], axis=1).reshape(models, num_examples)


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
      :func:`complementary_halves`; ``config.seed`` seeds the split).
    epochs_a, epochs_b: epochs of phase 1 and phase 2.
    mesh: device mesh (default: all devices).

  Returns:
    :class:`SplitForgetting`.
  """
  dataset, config = _resolve(data, config, overrides)
  models = _check_models(models, "models")
  epochs_a = config.epochs if epochs_a is None else _check_models(epochs_a, "epochs_a")
  epochs_b = epochs_a if epochs_b is None else _check_models(epochs_b, "epochs_b")
  keep_a = complementary_halves(models, dataset.num_train, config.seed)
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
  fslt = first_split_learning_time(correct_a)
  ssft = second_split_forgetting_time(correct_b)
  return SplitForgetting(keep_a=keep_a, correct_a=correct_a, correct_b=correct_b,
                         fslt_per_model=np.where(keep_a, fslt, np.nan),
                         ssft_per_model=np.where(keep_a, ssft, np.nan),
                         fslt=capped_mean(fslt, keep_a, epochs_a + 1),
                         ssft=capped_mean(ssft, keep_a, epochs_b + 1), seconds=seconds)


def _logits_program(apply: Callable) -> Callable:
  def run(state, xs):
    def block(x):
      return jax.vmap(lambda p, bs: apply(p, bs, x, False)[0].astype(jnp.float32))(
          state["params"], state["model_state"])
    out = jax.lax.map(block, xs)  # [nb, m, E, C]
    return jnp.moveaxis(out, 0, 1).reshape(out.shape[1], -1, out.shape[-1])
  return jax.jit(run)


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
  training example i is ``KL(f(x_i)||f'(x_i)) + KL(f'(x_i)||f(x_i))`` (:func:`symmetric_kl`).

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
  replicated = jax.sharding.NamedSharding(chunk.engine.mesh, jax.sharding.PartitionSpec())
  xs = jax.device_put(_blocks(dataset.x_train, dataset.y_train, chunk.engine.eval_block)[0],
                      replicated)
  before = np.asarray(logits(chunk.state, xs))[:models, :n]
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
  after = np.asarray(logits(tuner.state, xs))[:models, :n]
  per_model = symmetric_kl(before, after)
  seconds["score"] = time.perf_counter() - t0
  return HoldoutRetraining(per_model=per_model, score=per_model.mean(0), seconds=seconds)


# ---- names that moved ---------------------------------------------------------------------------
_MOVED_TO_BENCHMARK = frozenset({"compare_proxies", "ProxyComparison", "COLUMNS"})


def __getattr__(name: str):
  """The comparison table moved out of the library: say where to."""
  if name in _MOVED_TO_BENCHMARK:
    raise AttributeError(
        f"memjax.proxies.{name} moved to benchmarks/proxies_vs_memorization.py (the comparison "
        "table is a benchmark, not library code): run `python benchmarks/proxies_vs_memorization"
        ".py --help` from the repository root, or import the module from that file.")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
