"""Training-dynamics proxies for memorization: per-example signals from one or a few models.

The Feldman & Zhang estimator needs hundreds of models. A *proxy* scores every training example
from the training dynamics of one or a few models instead; its use is being cheaper while ranking
examples like the memorization score. This module has the proxies' formulas, pure functions of
per-epoch histories (numpy in, numpy out, vectorised over models/examples):

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

"sign" is the direction a good proxy correlates with memorization (+: a high proxy value means a
memorized example). Proxies are judged by their Spearman correlation with the memorization score
(:func:`memjax.correlation.spearman`, also importable from here).

Where the histories come from: correctness, true-class probability and loss from any run
recorded every epoch (``memjax.train(..., eval_every=1)``, ``run.records.train_correct`` ...);
per-example gradient norms and input curvature, and the training protocols of FSLT / SSFT and
holdout retraining, from :mod:`memjax.dynamics`, which trains a few models through the engine
and measures every example after every epoch (the per-example gradients themselves are in
:mod:`memjax.example_gradients`). ``benchmarks/proxies_vs_memorization.py`` compares every
proxy with the memorization score of an ensemble and times both.

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
  (``input_grad_sq``). :func:`memjax.dynamics.track` records both; the benchmark's table reports
  both.
* Input curvature (Garg et al. 2023; survey Eq. 11): ``curv_t(x) = mean_v ||grad_x l(x + h v) -
  grad_x l(x)||^2 / h^2`` over ``num_vectors`` Rademacher vectors ``v`` (entries +-1), averaged
  over epochs. For small ``h`` it is an unbiased Hutchinson estimate of ``tr(H^2) = ||H||_F^2``,
  the squared Frobenius norm (sum of squared eigenvalues) of the input Hessian ``H`` of the loss;
  Garg et al. use ``h = 1e-3`` and 10 vectors (our defaults), on standardised inputs
  (:func:`memjax.example_gradients.input_curvature`).
* Holdout retraining (survey Sec. 3.1, Eq. 7): ``f`` is trained on the whole training split ``D``,
  ``f'`` is ``f`` fine-tuned on the *test* split ``D_t`` (fresh optimizer state, the configured
  optimizer and schedule, ``finetune_epochs`` epochs), and the proxy of a training example is the
  symmetric KL divergence ``KL(f(x)||f'(x)) + KL(f'(x)||f(x))`` between the two softmax outputs
  (the sum of both directions, Jeffreys' divergence), averaged over the proxy models
  (:func:`memjax.dynamics.holdout_retraining`).
* FSLT / SSFT (Maini et al. 2022; survey Definitions 9, 10): models come in pairs with
  complementary random halves A and B of the training set (:func:`complementary_halves`), so
  every example is in A for exactly half the models. FSLT is the first evaluation epoch of phase 1
  (training on A) from which the example stays correct; SSFT is the first epoch of phase 2
  (continuing on B only, fresh optimizer state, from the phase-1 weights) from which it stays
  incorrect, epoch 0 being the end of phase 1. Never learned (FSLT) / never forgotten (SSFT) pairs
  are ``inf`` per model and count as ``epochs + 1`` in the per-example mean
  (:func:`memjax.dynamics.second_split_forgetting` trains the two phases).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special as scipy_special

from memjax import estimators
from memjax.correlation import spearman  # noqa: F401  (the proxies' measure, also here)
from memjax.errors import MemjaxError


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
      (``||grad_w l||_2``) or ``Dynamics.input_grad_sq`` (``||grad_x l||_2^2``, survey Eq. 12)
      of :func:`memjax.dynamics.track`.
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
    curvature: [T, M, N] per-epoch curvature estimates (``Dynamics.curvature`` of
      :func:`memjax.dynamics.track`, see :func:`memjax.example_gradients.input_curvature`).
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


# ---- names that moved ---------------------------------------------------------------------------
# The drivers and the in-program measurements live in memjax.dynamics (and memjax.example_gradients)
# now; these names still resolve here, lazily, since memjax.dynamics imports this module.
_MOVED_TO_DYNAMICS = frozenset({
    "track", "Dynamics", "second_split_forgetting", "SplitForgetting", "holdout_retraining",
    "HoldoutRetraining", "example_losses", "weight_gradient_norms", "input_gradients",
    "input_curvature", "MEASURES", "DEFAULT_H", "DEFAULT_NUM_VECTORS"})
_MOVED_TO_BENCHMARK = frozenset({"compare_proxies", "ProxyComparison", "COLUMNS"})


def __getattr__(name: str):
  """The moved names: ``memjax.proxies.track`` is :func:`memjax.dynamics.track`, and so on."""
  if name in _MOVED_TO_DYNAMICS:
    from memjax import dynamics
    return getattr(dynamics, name)
  if name in _MOVED_TO_BENCHMARK:
    raise AttributeError(
        f"memjax.proxies.{name} moved to benchmarks/proxies_vs_memorization.py (the comparison "
        "table is a benchmark, not library code): run `python benchmarks/proxies_vs_memorization"
        ".py --help` from the repository root, or import the module from that file.")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
