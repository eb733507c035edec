"""Per-example functions of a model's logits: the one definition of the losses and measures.

Training minimises ``loss(logits [B, C], labels [B]) -> [B]`` (averaged over the batch); the
evaluation records the same per-example loss, the correctness and the true-class probability of
every model on every example, the LiRA statistic on augmented queries, and any user measure
``fn(logits [B, C], labels [B]) -> [B]`` (see :mod:`memjax.records`). The proxies use the same
loss. Everything here is a pure jax function, usable inside ``jax.jit``/``vmap``.

Built-in losses (``TrainConfig.loss`` / ``memjax run --loss``):

* ``"cross_entropy"``: softmax cross-entropy with integer labels; with
  ``label_smoothing=eps > 0`` the target is ``(1 - eps) * onehot(y) + eps / C``.

Built-in measures (``measures=["margin"]`` / ``memjax run --measures margin,entropy``):

* ``"log_prob"``: log-probability of the true class (float32: no float16 saturation);
* ``"margin"``: true-class logit minus the largest other logit (> 0 exactly when correct);
* ``"entropy"``: entropy of the predicted distribution, in nats.

>>> import numpy as np
>>> logits, labels = np.array([[2.0, 0.0, -1.0]]), np.array([0])
>>> np.round(np.asarray(cross_entropy(logits, labels), np.float64), 4).tolist()
[0.1698]
>>> np.asarray(margin(logits, labels)).tolist()
[2.0]
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from memjax import imports
from memjax.errors import MemjaxError

PerExample = Callable[[jax.Array, jax.Array], jax.Array]  # (logits [B, C], labels [B]) -> [B]


def cross_entropy(logits, labels) -> jax.Array:
  """Softmax cross-entropy with integer labels. logits [..., C], labels [...] -> [...] float32.

  Equal to ``-log_prob(logits, labels)`` up to float rounding (optax's formula).
  """
  return optax.softmax_cross_entropy_with_integer_labels(
      jnp.asarray(logits).astype(jnp.float32), jnp.asarray(labels))


def label_smoothed_cross_entropy(smoothing: float) -> PerExample:
  """Cross-entropy against ``(1 - smoothing) * onehot(y) + smoothing / C`` (Szegedy et al.)."""

  def loss(logits, labels):
    logits = jnp.asarray(logits).astype(jnp.float32)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), smoothing)
    return optax.softmax_cross_entropy(logits, targets)

  return loss


def correct(logits, labels) -> jax.Array:
  """[...] bool: argmax prediction == label."""
  return jnp.argmax(logits, -1) == labels


def true_class_prob(logits, labels) -> jax.Array:
  """[...] float32 softmax probability of the true class, ``exp(log_prob)``."""
  return jnp.exp(log_prob(logits, labels))


def log_prob(logits, labels) -> jax.Array:
  """[...] float32 log-probability of the true class, ``log_softmax(logits)[label]``."""
  log_probs = jax.nn.log_softmax(jnp.asarray(logits).astype(jnp.float32))
  return jnp.take_along_axis(log_probs, jnp.asarray(labels)[..., None], axis=-1)[..., 0]


def margin(logits, labels) -> jax.Array:
  """[...] float32 true-class logit minus the largest other logit."""
  logits = jnp.asarray(logits).astype(jnp.float32)
  labels = jnp.asarray(labels)
  true = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
  is_label = labels[..., None] == jnp.arange(logits.shape[-1])
  return true - jnp.max(jnp.where(is_label, -jnp.inf, logits), axis=-1)


def entropy(logits, labels) -> jax.Array:
  """[...] float32 entropy (nats) of softmax(logits); ``labels`` is unused."""
  del labels
  log_p = jax.nn.log_softmax(jnp.asarray(logits).astype(jnp.float32))
  return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def lira_statistic(logits, labels) -> jax.Array:
  """The LiRA statistic phi = log p_y - log(sum_{j != y} p_j), computed stably from logits.

  With p = softmax(l), phi = l_y - logsumexp_{j != y} l_j exactly; this form neither overflows
  nor saturates (a margin of 1000 gives ~1000, where log(p_y) - log(1 - p_y) in float64 stops at
  +-36 and the reference's +1e-45 guard at +-103.6). phi is the logit of the true-class
  probability: p_y = sigmoid(phi). Works on numpy and jax arrays and inside ``jax.jit``
  (validation of label values only runs on concrete arrays).

  Args:
    logits: [..., C] float, C >= 2 classes (float16/bfloat16 are promoted to float32).
    labels: [...] int, true classes in [0, C).

  Returns:
    [...] float32 jax array.

  Example:
    >>> import numpy as np
    >>> phi = lira_statistic(np.array([[1., 2., -3.], [-1., 1., 0.]]), np.array([1, 2]))
    >>> np.round(np.asarray(phi, np.float64), 5).tolist()
    [0.98185, -1.12693]
    >>> round(float(lira_statistic(np.array([1000., 0., 0.]), np.array(0))), 3)  # 1000 - log 2
    999.307
  """
  logits = jnp.asarray(logits)
  labels = jnp.asarray(labels)
  if logits.ndim < 1 or not jnp.issubdtype(logits.dtype, jnp.floating):
    raise MemjaxError(
        f"lira_statistic: logits must be a float array [..., C]; got dtype {logits.dtype}, "
        f"shape {logits.shape}.")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise MemjaxError(
        f"lira_statistic: labels must be integer class indices; got dtype {labels.dtype}. "
        "Convert one-hot labels with argmax(axis=-1).")
  num_classes = logits.shape[-1]
  if num_classes < 2:
    raise MemjaxError(f"lira_statistic needs at least 2 classes; logits have C = {num_classes}.")
  if labels.shape != logits.shape[:-1]:
    raise MemjaxError(
        f"lira_statistic: labels shape {labels.shape} must equal logits shape without the class "
        f"axis, {logits.shape[:-1]}.")
  if not isinstance(labels, jax.core.Tracer) and labels.size:
    lab = np.asarray(labels)
    if lab.min() < 0 or lab.max() >= num_classes:
      raise MemjaxError(
          f"lira_statistic: labels must lie in [0, {num_classes}); got values in "
          f"[{lab.min()}, {lab.max()}].")
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
  labels = labels.astype(jnp.int32)
  l_y = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
  is_label = labels[..., None] == jnp.arange(num_classes, dtype=jnp.int32)
  l_other = jax.nn.logsumexp(jnp.where(is_label, -jnp.inf, logits), axis=-1)
  return (l_y - l_other).astype(jnp.float32)


# ---- sequences: language models ------------------------------------------------------------
# A language model maps token inputs [B, L] to logits [B, L, V]; its targets [B, L] hold the next
# token at every position and -1 where nothing is scored (past the end of a sequence, or a given
# prefix). Each function below reduces its token-level quantity over the scored positions of
# each sequence: (logits [B, L, V], targets [B, L]) -> [B].


def _scored(targets) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(targets with -1 replaced by 0 [B, L], the scored mask [B, L], scored count >= 1 [B])."""
  targets = jnp.asarray(targets)
  mask = targets >= 0
  return jnp.where(mask, targets, 0), mask, jnp.maximum(mask.sum(-1), 1)


def _sequence_mean(token_values: Callable) -> PerExample:
  """The mean over each sequence's scored positions of ``token_values(logits, targets) -> [B,
  L]`` (0 for a sequence with no scored position)."""

  def per_sequence(logits, targets):
    safe, mask, count = _scored(targets)
    values = token_values(jnp.asarray(logits), safe).astype(jnp.float32)
    return jnp.where(mask, values, 0.0).sum(-1) / count

  per_sequence.__doc__ = (f"[B] mean over the scored tokens of "
                          f"{getattr(token_values, '__name__', 'the token values')}.")
  return per_sequence


token_cross_entropy = _sequence_mean(cross_entropy)
token_cross_entropy.__name__ = "token_cross_entropy"
token_cross_entropy.__doc__ = """[B] mean next-token cross-entropy (nats) over the scored
positions of each sequence: the language models' training loss. logits [B, L, V], targets
[B, L] (-1: not scored)."""

token_loglik = _sequence_mean(log_prob)
token_loglik.__name__ = "token_loglik"
token_loglik.__doc__ = """[B] mean log-likelihood (nats per token) of each sequence's scored
tokens, ``-token_cross_entropy``; ``exp`` of it is the geometric-mean token probability."""

token_accuracy = _sequence_mean(lambda logits, targets: correct(logits, targets))
token_accuracy.__name__ = "token_accuracy"
token_accuracy.__doc__ = """[B] fraction of each sequence's scored tokens that the model
predicts (argmax of the next-token distribution given the true previous tokens): the measure of
Zhang et al.'s counterfactual memorization."""

sequence_lira_statistic = _sequence_mean(lira_statistic)
sequence_lira_statistic.__name__ = "sequence_lira_statistic"
sequence_lira_statistic.__doc__ = """[B] the LiRA statistic of a sequence: the mean over its
scored tokens of the token's :func:`lira_statistic` (the logit of its probability), which is
close to Gaussian across models (a mean of many terms), as LiRA's fit assumes."""


def extracted(logits, targets, prefix: int | None = None) -> jax.Array:
  """[B] bool: greedy decoding from the sequence's first ``prefix`` tokens reproduces the rest.

  With teacher forcing the argmax at every suffix position equals the true next token exactly
  when greedy decoding from the prefix generates the true suffix, so one forward pass decides
  it (Carlini et al. 2021's extraction; "k-extractable" with k = prefix).

  Args:
    logits: [B, L, V]. targets: [B, L], -1 where not scored; a sequence's n tokens are its
      scored positions 0..n-1.
    prefix: tokens given as the prompt; None: half of each sequence (n // 2). At least one
      token is always left to generate.

  Returns:
    [B] bool; False for a sequence with no tokens.
  """
  safe, mask, _ = _scored(targets)
  length = mask.sum(-1)  # [B]
  given = length // 2 if prefix is None else jnp.minimum(prefix, length - 1)
  suffix = mask & (jnp.arange(mask.shape[-1]) >= given[..., None])
  right = correct(jnp.asarray(logits), safe) | ~suffix
  return right.all(-1) & (length > 0)


LOSSES: dict[str, PerExample] = {"cross_entropy": cross_entropy}
MEASURES: dict[str, PerExample] = {"log_prob": log_prob, "margin": margin, "entropy": entropy}
_PER_EXAMPLE = "a callable (logits [B, C], labels [B]) -> [B]"
# Names the records use for their own arrays; a user measure may not take them.
RESERVED = ("correct", "prob", "loss", "lira")


def resolve_loss(loss: Any, label_smoothing: float = 0.0,
                 task: str = "classification") -> PerExample:
  """The per-example training loss for ``TrainConfig.loss`` (a name, import path or callable).

  ``label_smoothing`` applies to the built-in ``"cross_entropy"`` only. For a language model
  (``task="language_model"``) the built-in ``"cross_entropy"`` is the mean next-token
  cross-entropy of each sequence (:func:`token_cross_entropy`), and your own loss maps
  ``(logits [B, L, V], targets [B, L]) -> [B]`` (targets -1 where not scored).
  """
  if isinstance(loss, str) and loss in LOSSES:
    if task == "language_model":
      return (_sequence_mean(label_smoothed_cross_entropy(label_smoothing)) if label_smoothing
              else token_cross_entropy)
    if label_smoothing:
      return label_smoothed_cross_entropy(label_smoothing)
    return LOSSES[loss]
  if label_smoothing:
    raise MemjaxError(f"label_smoothing={label_smoothing} applies to the built-in "
                      "'cross_entropy' loss; put the smoothing into your own loss instead.")
  return imports.resolve(loss, "loss", LOSSES, keyword="loss", expected=_PER_EXAMPLE)


def resolve_measures(measures: dict[str, Any]) -> dict[str, PerExample]:
  """``{name: fn}`` for ``TrainConfig.measures`` (values: built-in names, import paths or
  callables ``fn(logits [B, C], labels [B]) -> [B]``)."""
  return {name: imports.resolve(spec, f"measure {name!r}", MEASURES, keyword="measures",
                                expected=_PER_EXAMPLE)
          for name, spec in measures.items()}
