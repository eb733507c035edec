"""Per-example gradients and input curvature of one model, as pure jax functions.

Several memorization proxies need, for every training example separately, a quantity that
ordinary training only ever computes for a whole minibatch: the norm of the gradient of the
example's own loss with respect to the weights (Ravikumar et al.'s cumulative sample gradient),
the gradient with respect to the example's input (the survey's Eq. 12), and the curvature of the
loss around the input (Garg et al. 2023). This module computes them for one model on a block of
examples, as traceable jax functions with no host-side work, so that :mod:`memjax.dynamics` can
``vmap`` them over models and ``lax.map`` them over blocks inside one compiled program:

* :func:`example_losses`: the per-example training loss in inference mode;
* :func:`weight_gradient_norms`: ``||grad_w l(w; x_i, y_i)||_2`` for every example, with
  ``jax.vmap(jax.grad)`` over the examples of a block (one backward pass per example);
* :func:`input_gradients`: ``grad_x l(x_i)`` for every example in one backward pass, since in
  inference mode examples do not interact and ``grad_x sum_i l(x_i)`` holds each example's own
  gradient;
* :func:`input_curvature`: a finite-difference Hutchinson estimate of ``tr(H^2)``, the squared
  Frobenius norm of each example's input Hessian ``H``.

The model enters as ``apply(params, model_state, x, train) -> (logits, model_state)``
(:attr:`memjax.engine.ModelFns.apply`) and the loss as a per-example function ``(logits [B, C],
labels [B]) -> [B]`` (:mod:`memjax.measures`), the same ones the run trains with.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from memjax import measures as measures_lib

DEFAULT_H = 1e-3
DEFAULT_NUM_VECTORS = 10


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
