"""Per-example gradients and input curvature against exact Hessians and plain autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax
from memjax import engine as engine_lib
from memjax import example_gradients


# ---- per-example gradients and curvature --------------------------------------------------------
@pytest.mark.slow
def test_input_curvature_exact_on_quadratics():
  rng = np.random.default_rng(0)
  d = rng.uniform(-2, 2, size=(3, 5))  # per-example diagonal Hessians
  x = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
  loss = lambda z: 0.5 * jnp.sum(jnp.asarray(d, jnp.float32) * z ** 2, axis=-1)
  curv = example_gradients.input_curvature(loss, x, jax.random.key(0), h=0.5, num_vectors=3)
  # Diagonal H: ||H v||^2 = sum_j H_jj^2 for every Rademacher v, at any step h.
  np.testing.assert_allclose(curv, (d ** 2).sum(-1), rtol=1e-5)
  a = rng.normal(size=(5, 5))
  a = jnp.asarray(a + a.T, jnp.float32)
  loss = lambda z: 0.5 * jnp.einsum("bi,ij,bj->b", z, a, z)
  curv = example_gradients.input_curvature(loss, x, jax.random.key(1), h=1e-2, num_vectors=4000)
  np.testing.assert_allclose(curv, float(jnp.sum(a * a)), rtol=0.05)  # tr(A^2) = ||A||_F^2


@pytest.mark.slow
def test_curvature_and_gradients_match_autodiff_on_a_model(small_digits):
  config = memjax.TrainConfig(model="mlp", model_kwargs={"widths": [32]})
  fns = engine_lib.model_fns(config, small_digits)
  params, batch_stats = fns.init(jax.random.key(0))
  x = jnp.asarray(small_digits.x_train[:4])
  y = jnp.asarray(small_digits.y_train[:4])
  loss = lambda z: example_gradients.example_losses(fns.apply, params, batch_stats, z, y)
  # tr(H^2) of every example's input Hessian, exactly, against the estimate with many vectors.
  hess = jax.vmap(jax.hessian(lambda xi, yi: example_gradients.example_losses(
      fns.apply, params, batch_stats, xi[None], yi[None])[0]))(x, y)
  h2 = hess.reshape(4, 64, 64)
  exact = jnp.einsum("bij,bji->b", h2, h2)
  est = example_gradients.input_curvature(loss, x, jax.random.key(0), h=1e-3, num_vectors=2000)
  np.testing.assert_allclose(est, exact, rtol=0.1)
  # Weight-gradient norms against one jax.grad per example.
  norms = example_gradients.weight_gradient_norms(fns.apply, params, batch_stats, x, y)
  for i in range(4):
    g = jax.grad(lambda p: example_gradients.example_losses(fns.apply, p, batch_stats, x[i:i + 1],
                                                  y[i:i + 1])[0])(params)
    ref = np.sqrt(sum(float(jnp.sum(l ** 2)) for l in jax.tree.leaves(g)))
    assert float(norms[i]) == pytest.approx(ref, rel=1e-4)
  gx = example_gradients.input_gradients(loss, x)
  gx0 = jax.grad(lambda z: loss(jnp.concatenate([z, x[1:]]))[0])(x[:1])
  np.testing.assert_allclose(gx[:1], gx0, rtol=1e-5, atol=1e-8)
