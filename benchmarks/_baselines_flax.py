"""JAX/Flax baselines for ``benchmarks/throughput.py`` and ``benchmarks/lm_throughput.py``: what a
Flax user writes without memjax.

Two columns, both training one model at a time on its own subset (the same keep masks, batch
size, steps per epoch, wrap-around and optimizer as memjax):

* :func:`flax_loop`, column (2): the standard Flax NNX loop. The model is split into
  ``graphdef`` / params (/ other state), one ``jax.jit`` train step (buffers donated, compiled
  ahead of time once and reused by every model), Python loops over models, epochs and
  minibatches; each minibatch is gathered on the host with numpy and passed to the step.
* :func:`scanned_loop`, column (3): a Python loop over models of one jitted single-model epoch:
  ``lax.scan`` over the epoch's steps, minibatches gathered on device from the device-resident
  training set (one compiled call per model per epoch).

Models: (2) uses standard ``flax.nnx`` layers (``nnx.Linear``, ``nnx.Conv``: ``lax.conv``, which
is fast in a jitted step outside loops on XLA:CPU); its CNN pools with reshape + max, which is
about 2x faster on CPU than ``nnx.max_pool``'s reduce_window gradient, so the baseline gets the
faster of the two. The other families are memjax's own modules (``memjax.models``), their
convolutions traced as ``lax.conv`` (``memjax.models.conv_implementation("lax")``), what
``nnx.Conv`` runs: in this jitted step on 2 CPU cores it trained VGG 1.4x and ResNet 1.6-2x
faster than the im2col convolutions. (3) uses memjax's own model definitions (``memjax.models``: im2col convs on
CPU), because ``lax.conv``'s gradient inside ``lax.scan`` is ~700x slower on XLA:CPU (see
``memjax.models``); anything else would measure that pathology.

Language models (``lm_throughput.py``): the same two loops train memjax's ``gpt`` (a plain NNX
module) with ``loss=`` :func:`sequence_cross_entropy` and ``metric=`` :func:`token_accuracy`
instead of the classification loss and accuracy, and the Plan's ``optimizer="adam"``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from memjax import models as models_lib


# ---- shared by every column (the torch baselines import these too) ----------------------------
@dataclasses.dataclass(frozen=True)
class Plan:
  """The work of one cell, identical for every column.

  Attributes:
    keep: [M, N] bool, model m trains on the examples where keep[m] is True.
    epochs: passes over each model's own subset.
    steps: S, optimizer steps per epoch for every model (ceil(n_in / B), wrap-around).
    batch_size: B, examples per step per model.
    learning_rate, momentum, weight_decay: constant-LR SGD, Nesterov momentum, L2 decay.
    optimizer: "sgd" (the above) or "adam" (Adam with the constant ``learning_rate``, default
      betas (0.9, 0.999) and eps 1e-8, L2 decay ``weight_decay`` added to the gradient first;
      ``momentum`` unused).
  """

  keep: np.ndarray
  epochs: int
  steps: int
  batch_size: int
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 5e-4
  optimizer: str = "sgd"

  @property
  def num_models(self) -> int:
    return int(self.keep.shape[0])

  @property
  def model_epochs(self) -> int:
    return self.num_models * self.epochs


@dataclasses.dataclass
class CellResult:
  """What one column measured on one cell.

  Attributes:
    model_epochs: model-epochs actually trained (fewer than planned when the time cap hit).
    run_s: seconds of training they took (compile / warm-up excluded).
    compile_s: one-time compile (JAX) or warm-up (torch.func) seconds, None if not applicable.
    accuracy: mean test accuracy of the models that finished all epochs (None if none did).
    extrapolated: True if the cap stopped it early (throughput extrapolated per model-epoch).
    wall_s: wall time of the whole call (memjax only).
    note: free text (e.g. chunking).
    extra: other numbers for the JSON (memjax: its ``run.info["timings"]`` and chunk size).
  """

  model_epochs: float
  run_s: float
  compile_s: float | None
  accuracy: float | None
  extrapolated: bool
  wall_s: float | None = None
  note: str = ""
  extra: dict = dataclasses.field(default_factory=dict)

  @property
  def me_per_s(self) -> float:
    return self.model_epochs / max(self.run_s, 1e-12)

  @classmethod
  def make(cls, plan: Plan, done: float, seconds: float, compile_s, accs, note: str = ""):
    return cls(model_epochs=done, run_s=seconds, compile_s=compile_s,
               accuracy=float(np.mean(accs)) if len(accs) else None,
               extrapolated=done < plan.model_epochs, note=note)


def epoch_order(rng: np.random.Generator, in_idx: np.ndarray, steps: int,
                batch_size: int) -> np.ndarray:
  """[S, B] indices: the model's IN examples in a fresh random order, wrapped around to S*B."""
  perm = rng.permutation(in_idx)
  return perm[np.arange(steps * batch_size) % len(perm)].reshape(steps, batch_size)


# ---- models and steps --------------------------------------------------------------------------

class FlaxCNN(nnx.Module):
  """memjax's ``cnn`` written with standard flax layers: nnx.Conv(3x3, SAME) + ReLU + 2x2 pool."""

  def __init__(self, input_shape, num_classes: int, *, rngs: nnx.Rngs,
               channels=(32, 64), hidden: int = 128):
    h, w, c = input_shape
    sizes = [c, *channels]
    self.convs = nnx.List([nnx.Conv(a, b, (3, 3), padding="SAME", rngs=rngs)
                           for a, b in zip(sizes, sizes[1:])])
    h, w = h // 2 ** len(channels), w // 2 ** len(channels)
    self.dense = nnx.Linear(h * w * channels[-1], hidden, rngs=rngs)
    self.head = nnx.Linear(hidden, num_classes, rngs=rngs)

  def __call__(self, x, train: bool = False):
    del train
    for conv in self.convs:
      x = jax.nn.relu(conv(x))
      b, h, w, c = x.shape
      x = x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    x = jax.nn.relu(self.dense(x.reshape(x.shape[0], -1)))
    return self.head(x)


def build_model(workload, seed: int, standard_layers: bool) -> nnx.Module:
  """One NNX model of the workload (standard flax layers for the CNN when asked)."""
  rngs = nnx.Rngs(params=seed)
  if standard_layers and workload.model == "cnn":
    return FlaxCNN(workload.data.feature_shape, workload.data.num_classes, rngs=rngs,
                   **workload.model_kwargs)
  return models_lib.build(workload.model, workload.data.feature_shape,
                          workload.data.num_classes, rngs, **workload.model_kwargs)


def make_optimizer(plan: Plan) -> optax.GradientTransformation:
  """The optimizer every column uses: SGD, Nesterov momentum, L2 weight decay, constant LR (or
  Adam with L2 weight decay, constant LR, when ``plan.optimizer == "adam"``)."""
  if plan.optimizer == "adam":
    adam = optax.adam(plan.learning_rate)
    return (optax.chain(optax.add_decayed_weights(plan.weight_decay), adam)
            if plan.weight_decay else adam)
  if plan.optimizer != "sgd":
    raise ValueError(f"Plan.optimizer={plan.optimizer!r}; use 'sgd' or 'adam'.")
  return optax.chain(optax.add_decayed_weights(plan.weight_decay),
                     optax.sgd(plan.learning_rate, momentum=plan.momentum, nesterov=True))


def classification_loss(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy of a batch: logits [B, C], labels [B] -> scalar."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def accuracy_metric(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Accuracy: logits [B, C], labels [B] -> scalar."""
  return (logits.argmax(-1) == y).mean()


def sequence_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-sequence loss of a language model: each sequence's mean next-token cross-entropy over
  its scored positions (targets >= 0; -1 is not scored).

  Args:
    logits: [B, L, V] float.
    targets: [B, L] int, -1 where not scored.

  Returns:
    [B] float32 (0 for a sequence without scored tokens).
  """
  mask = targets >= 0
  ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32),
                                                       jnp.maximum(targets, 0))
  return (ce * mask).sum(-1) / jnp.maximum(mask.sum(-1), 1)


def lm_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """The training objective of every LM column: the batch mean of
  :func:`sequence_cross_entropy` (what memjax's step minimises for that per-sequence loss)."""
  return sequence_cross_entropy(logits, targets).mean()


def token_accuracy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Fraction of the scored tokens (targets >= 0) whose argmax is the target, pooled over the
  batch: logits [B, L, V], targets [B, L] -> scalar."""
  mask = targets >= 0
  return ((logits.argmax(-1) == targets) & mask).sum() / jnp.maximum(mask.sum(), 1)


def pure_fns(model: nnx.Module):
  """Splits a model into (graphdef, params, rest) and a pure apply(params, rest, x, train)."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def apply(params, rest, x, train):
    # Fresh Variables inside the current trace so BatchNorm may update its statistics.
    params, rest = jax.tree.map(lambda a: a, (params, rest))
    m = nnx.merge(graphdef, params, rest)
    return m(x, train=train), nnx.state(m, nnx.Not(nnx.Param))

  return graphdef, params, rest, apply


def make_step(apply: Callable, tx: optax.GradientTransformation,
              objective: Callable = classification_loss) -> Callable:
  """(params, rest, opt_state, x, y) -> (params, rest, opt_state, loss): one optimizer step
  minimising ``objective(logits, y) -> scalar``."""

  def step(params, rest, opt_state, x, y):
    def loss_fn(p):
      logits, new_rest = apply(p, rest, x, True)
      return objective(logits, y), new_rest

    (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), rest, opt_state, loss

  return step


def make_eval(apply: Callable, x_test: np.ndarray, y_test: np.ndarray,
              metric: Callable = accuracy_metric) -> Callable:
  """A jitted (params, rest) -> ``metric(logits, y)`` on the test set (default: accuracy)."""
  x_test, y_test = jnp.asarray(x_test), jnp.asarray(y_test)

  @jax.jit
  def accuracy(params, rest):
    logits, _ = apply(params, rest, x_test, False)
    return metric(logits, y_test)

  return accuracy


def _loop_over_models(plan: Plan, train_one: Callable, cap_s: float) -> tuple[int, float, list]:
  """Trains models one after another until all are done or ``cap_s`` seconds of training.

  ``train_one(m, deadline)`` returns (epochs done, training seconds, accuracy or None).
  Returns (model-epochs done, training seconds, accuracies of fully trained models).
  """
  done, seconds, accs = 0, 0.0, []
  for m in range(plan.num_models):
    epochs, secs, acc = train_one(m, time.perf_counter() + max(cap_s - seconds, 0.0))
    done += epochs
    seconds += secs
    if acc is not None:
      accs.append(acc)
    if seconds >= cap_s:
      break
  return done, seconds, accs


def flax_loop(workload, plan: Plan, cap_s: float, loss: Callable = classification_loss,
              metric: Callable = accuracy_metric) -> CellResult:
  """Column (2): Python loops over models and minibatches calling one jitted train step.

  ``loss(logits, y) -> scalar`` is the objective and ``metric(logits, y) -> scalar`` the test
  figure reported as the accuracy (defaults: classification; language models pass
  :func:`lm_loss` and :func:`token_accuracy`).
  """
  data, tx = workload.data, make_optimizer(plan)
  graphdef, params, rest, apply = pure_fns(build_model(workload, 0, standard_layers=True))
  opt_state = tx.init(params)
  x_train, y_train = data.x_train, data.y_train
  xb, yb = x_train[:plan.batch_size], y_train[:plan.batch_size]
  t0 = time.perf_counter()
  with models_lib.conv_implementation("lax"):  # what nnx.Conv runs (memjax's VGG and ResNet)
    step = jax.jit(make_step(apply, tx, loss), donate_argnums=(0, 1, 2)).lower(
        params, rest, opt_state, xb, yb).compile()
  compile_s = time.perf_counter() - t0
  accuracy = make_eval(apply, data.x_test, data.y_test, metric)

  def train_one(m, deadline):
    _, params, rest, _ = pure_fns(build_model(workload, m, standard_layers=True))
    opt_state = tx.init(params)
    rng = np.random.default_rng((1, m))
    in_idx = np.flatnonzero(plan.keep[m])
    t0 = time.perf_counter()
    for epoch in range(plan.epochs):
      for idx in epoch_order(rng, in_idx, plan.steps, plan.batch_size):
        params, rest, opt_state, loss = step(params, rest, opt_state, x_train[idx], y_train[idx])
      if time.perf_counter() > deadline:  # async dispatch: a coarse check, the sync is below
        break
    jax.block_until_ready(loss)
    secs = time.perf_counter() - t0
    full = epoch + 1 == plan.epochs
    return epoch + 1, secs, float(accuracy(params, rest)) if full else None

  done, seconds, accs = _loop_over_models(plan, train_one, cap_s)
  return CellResult.make(plan, done, seconds, compile_s, accs)


def scanned_loop(workload, plan: Plan, cap_s: float, loss: Callable = classification_loss,
                 metric: Callable = accuracy_metric) -> CellResult:
  """Column (3): a Python loop over models of one jitted lax.scan-ned single-model epoch
  (``loss`` and ``metric`` as in :func:`flax_loop`)."""
  data, tx = workload.data, make_optimizer(plan)
  _, params, rest, apply = pure_fns(build_model(workload, 0, standard_layers=False))
  opt_state = tx.init(params)
  step = make_step(apply, tx, loss)
  x_train, y_train = jax.device_put(data.x_train), jax.device_put(data.y_train)

  def epoch_fn(params, rest, opt_state, order, x_train, y_train):
    def body(carry, idx):
      params, rest, opt_state, loss = step(*carry, x_train[idx], y_train[idx])
      return (params, rest, opt_state), loss

    (params, rest, opt_state), losses = jax.lax.scan(body, (params, rest, opt_state), order)
    return params, rest, opt_state, losses[-1]

  order = np.zeros((plan.steps, plan.batch_size), np.int32)
  t0 = time.perf_counter()
  run_epoch = jax.jit(epoch_fn, donate_argnums=(0, 1, 2)).lower(
      params, rest, opt_state, order, x_train, y_train).compile()
  compile_s = time.perf_counter() - t0
  accuracy = make_eval(apply, data.x_test, data.y_test, metric)

  def train_one(m, deadline):
    _, params, rest, _ = pure_fns(build_model(workload, m, standard_layers=False))
    opt_state = tx.init(params)
    rng = np.random.default_rng((1, m))
    in_idx = np.flatnonzero(plan.keep[m])
    t0 = time.perf_counter()
    for epoch in range(plan.epochs):
      order = epoch_order(rng, in_idx, plan.steps, plan.batch_size).astype(np.int32)
      params, rest, opt_state, loss = run_epoch(params, rest, opt_state, order, x_train,
                                                y_train)
      if time.perf_counter() > deadline:
        break
    jax.block_until_ready(loss)
    secs = time.perf_counter() - t0
    full = epoch + 1 == plan.epochs
    return epoch + 1, secs, float(accuracy(params, rest)) if full else None

  done, seconds, accs = _loop_over_models(plan, train_one, cap_s)
  return CellResult.make(plan, done, seconds, compile_s, accs)
