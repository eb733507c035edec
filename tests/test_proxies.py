"""Proxies against hand-computed histories, exact Hessians and data with a known answer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import memjax
from memjax import engine as engine_lib
from memjax import proxies, studies
from memjax.errors import MemjaxError

FAST = dict(model="mlp", model_kwargs={"widths": [32]}, batch_size=32, learning_rate=0.1)


# ---- pure functions of histories ----------------------------------------------------------------
def test_forgetting_events_known_history():
  # T=5 evaluations, M=2 models, N=3 examples.
  c = np.zeros((5, 2, 3), bool)
  c[:, 0, 0] = [1, 0, 1, 1, 0]  # 2 forgetting, 2 learning, first learned at epoch 1
  c[:, 1, 0] = [0, 0, 1, 1, 1]  # 0 forgetting, 1 learning, first at epoch 3
  c[:, 0, 1] = [0, 0, 0, 0, 0]  # never learned
  c[:, 1, 1] = [1, 1, 1, 1, 1]  # learned at once, never forgotten
  c[:, :, 2] = [[0, 1]] * 5     # model 1 always right, model 0 never
  keep = np.array([[True, True, False], [True, False, True]])
  ev = proxies.forgetting_events(c, keep, eval_epochs=[2, 4, 6, 8, 10])
  assert ev.counts.tolist() == [[2, 0, 0], [0, 0, 0]]
  assert ev.learning.tolist() == [[2, 0, 0], [1, 1, 1]]
  assert ev.never_learned.tolist() == [[False, True, True], [False, False, False]]
  np.testing.assert_equal(ev.first_learned, [[2, np.nan, np.nan], [6, 2, 2]])
  # Aggregates use IN models only: example 1 is IN for model 0 only (never learned there).
  np.testing.assert_allclose(ev.forgetting, [1.0, np.nan, 0.0])
  np.testing.assert_allclose(ev.never_learned_fraction, [0.0, 1.0, 0.0])
  np.testing.assert_allclose(ev.first_learned_epoch, [4.0, np.nan, 2.0])
  # Toneva's score: a never-learned pair counts floor(5/2) + 1 = 3 events.
  np.testing.assert_allclose(ev.score, [1.0, 3.0, 0.0])


def test_forgetting_events_defaults_and_errors():
  c = np.random.default_rng(0).random((6, 3, 4)) < 0.5
  ev = proxies.forgetting_events(c)  # keep=None: every model
  np.testing.assert_allclose(ev.learning_events, ev.learning.mean(0))
  with pytest.raises(MemjaxError, match=r"\[T, M, N\]"):
    proxies.forgetting_events(c[0])
  with pytest.raises(MemjaxError, match="keep has shape"):
    proxies.forgetting_events(c, np.ones((3, 5), bool))
  with pytest.raises(MemjaxError, match="boolean"):
    proxies.forgetting_events(c.astype(float) * 0.5)
  with pytest.raises(MemjaxError, match="eval_epochs"):
    proxies.forgetting_events(c, eval_epochs=[1, 2])


def test_cumulative_proxies_known_values():
  loss = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)  # [T=2, M=3, N=2]
  keep = np.array([[1, 0], [1, 0], [0, 0]], bool)
  sums = loss.sum(0)  # [M, N]
  np.testing.assert_allclose(proxies.cumulative_loss(loss, keep),
                             [sums[:2, 0].mean(), np.nan])
  np.testing.assert_allclose(proxies.cumulative_gradient_norm(loss), sums.mean(0))
  prob = loss / loss.max()
  np.testing.assert_allclose(proxies.learning_speed(prob, keep),
                             [prob[:, :2, 0].mean(), np.nan])
  np.testing.assert_allclose(proxies.mean_curvature(loss), loss.mean((0, 1)))
  with pytest.raises(MemjaxError, match="NaN"):
    proxies.cumulative_loss(np.full((1, 1, 1), np.nan))


def test_fslt_and_ssft_known_patterns():
  phase1 = np.array([[0, 1, 0, 1, 1],    # learned for good from the 4th evaluation
                     [1, 1, 1, 1, 1],    # from the first
                     [1, 1, 1, 1, 0]]).T  # not learned at the end -> inf
  fslt = proxies.first_split_learning_time(phase1[:, None, :].astype(bool),
                                           eval_epochs=[1, 2, 3, 4, 5])
  np.testing.assert_equal(fslt, [[4, 1, np.inf]])
  phase2 = np.array([[1, 1, 0, 1, 0, 0],   # forgotten for good from phase-2 epoch 4
                     [1, 1, 1, 1, 1, 1],   # never forgotten -> inf
                     [0, 0, 0, 0, 0, 0],   # already wrong at the end of phase 1 -> 0
                     [1, 0, 0, 0, 0, 0]]).T
  ssft = proxies.second_split_forgetting_time(phase2[:, None, :].astype(bool))
  np.testing.assert_equal(ssft, [[4, np.inf, 0, 1]])
  keep = np.array([[True, True, False, True]])
  np.testing.assert_allclose(proxies.capped_mean(ssft, keep, cap=6), [4, 6, np.nan, 1])


def test_symmetric_kl_known_value():
  p, q = np.log([0.5, 0.5]), np.log([0.25, 0.75])
  expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75) \
      + 0.25 * np.log(0.25 / 0.5) + 0.75 * np.log(0.75 / 0.5)
  np.testing.assert_allclose(proxies.symmetric_kl(p, q), expected)
  logits = np.random.default_rng(0).normal(size=(4, 7, 10))
  other = logits + np.random.default_rng(1).normal(size=(4, 7, 10))
  np.testing.assert_allclose(proxies.symmetric_kl(logits, other),
                             proxies.symmetric_kl(other, logits))
  np.testing.assert_allclose(proxies.symmetric_kl(logits, logits + 3.0), 0, atol=1e-12)
  with pytest.raises(MemjaxError, match="same shape"):
    proxies.symmetric_kl(logits, logits[..., :5])


def test_complementary_halves():
  keep = proxies.complementary_halves(6, 11, seed=3)
  assert keep.shape == (6, 11)
  np.testing.assert_array_equal(keep.sum(0), 3)
  np.testing.assert_array_equal(keep[0::2], ~keep[1::2])
  with pytest.raises(MemjaxError, match="even"):
    proxies.complementary_halves(3, 11)


# ---- jax functions ------------------------------------------------------------------------------
def test_input_curvature_exact_on_quadratics():
  rng = np.random.default_rng(0)
  d = rng.uniform(-2, 2, size=(3, 5))  # per-example diagonal Hessians
  x = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
  loss = lambda z: 0.5 * jnp.sum(jnp.asarray(d, jnp.float32) * z ** 2, axis=-1)
  curv = proxies.input_curvature(loss, x, jax.random.key(0), h=0.5, num_vectors=3)
  # Diagonal H: ||H v||^2 = sum_j H_jj^2 for every Rademacher v, at any step h.
  np.testing.assert_allclose(curv, (d ** 2).sum(-1), rtol=1e-5)
  a = rng.normal(size=(5, 5))
  a = jnp.asarray(a + a.T, jnp.float32)
  loss = lambda z: 0.5 * jnp.einsum("bi,ij,bj->b", z, a, z)
  curv = proxies.input_curvature(loss, x, jax.random.key(1), h=1e-2, num_vectors=4000)
  np.testing.assert_allclose(curv, float(jnp.sum(a * a)), rtol=0.05)  # tr(A^2) = ||A||_F^2


def test_curvature_and_gradients_match_autodiff_on_a_model(small_digits):
  config = memjax.TrainConfig(**FAST)
  fns = engine_lib.model_fns(config, small_digits)
  params, batch_stats = fns.init(jax.random.key(0))
  x = jnp.asarray(small_digits.x_train[:4])
  y = jnp.asarray(small_digits.y_train[:4])
  loss = lambda z: proxies.example_losses(fns.apply, params, batch_stats, z, y)
  # tr(H^2) of every example's input Hessian, exactly, against the estimate with many vectors.
  hess = jax.vmap(jax.hessian(lambda xi, yi: proxies.example_losses(
      fns.apply, params, batch_stats, xi[None], yi[None])[0]))(x, y)
  h2 = hess.reshape(4, 64, 64)
  exact = jnp.einsum("bij,bji->b", h2, h2)
  est = proxies.input_curvature(loss, x, jax.random.key(0), h=1e-3, num_vectors=2000)
  np.testing.assert_allclose(est, exact, rtol=0.1)
  # Weight-gradient norms against one jax.grad per example.
  norms = proxies.weight_gradient_norms(fns.apply, params, batch_stats, x, y)
  for i in range(4):
    g = jax.grad(lambda p: proxies.example_losses(fns.apply, p, batch_stats, x[i:i + 1],
                                                  y[i:i + 1])[0])(params)
    ref = np.sqrt(sum(float(jnp.sum(l ** 2)) for l in jax.tree.leaves(g)))
    assert float(norms[i]) == pytest.approx(ref, rel=1e-4)
  gx = proxies.input_gradients(loss, x)
  gx0 = jax.grad(lambda z: loss(jnp.concatenate([z, x[1:]]))[0])(x[:1])
  np.testing.assert_allclose(gx[:1], gx0, rtol=1e-5, atol=1e-8)


# ---- engine-based drivers -----------------------------------------------------------------------
def test_track_trains_the_same_models_as_the_runner(small_digits):
  keep = np.random.default_rng(0).random((2, small_digits.num_train)) < 0.5
  dyn = proxies.track(small_digits, keep=keep, epochs=3, measures=("input_grad_sq",), **FAST)
  run = memjax.train(small_digits, keep=keep, epochs=3, eval_every=1, progress=False, **FAST)
  assert dyn.correct.shape == (3, 2, small_digits.num_train) and dyn.grad_norm is None
  np.testing.assert_array_equal(dyn.correct, run.records.train_correct)
  np.testing.assert_allclose(dyn.loss, run.records.train_loss, rtol=2e-3, atol=2e-3)
  assert (dyn.input_grad_sq >= 0).all() and np.isfinite(dyn.input_grad_sq).all()
  assert dyn.seconds["train"] > 0 and "input_grad_sq" in dyn.seconds
  with pytest.raises(MemjaxError, match="Unknown measure"):
    proxies.track(small_digits, measures=("hessian",), **FAST)
  with pytest.raises(MemjaxError, match="positive step"):
    proxies.track(small_digits, h=0.0, **FAST)


@pytest.fixture(scope="module")
def noisy_digits(small_digits):
  """The 300 digits with 30 wrong labels: noisy labels are the known memorized examples."""
  return studies.inject_artificial(small_digits, label_fraction=0.1, input_fraction=0.0,
                                   seed=1)


def test_proxies_single_out_noisy_labels(noisy_digits):
  data, groups = noisy_digits
  noisy = groups == studies.NOISY_LABEL
  dyn = proxies.track(data, models=2, epochs=8, num_vectors=4, **FAST)
  for name, value in {"forgetting": proxies.forgetting_events(dyn.correct).score,
                      "csl": proxies.cumulative_loss(dyn.loss),
                      "csg": proxies.cumulative_gradient_norm(dyn.grad_norm),
                      "csg_input": proxies.cumulative_gradient_norm(dyn.input_grad_sq),
                      "curvature": proxies.mean_curvature(dyn.curvature)}.items():
    assert value[noisy].mean() > 2 * value[~noisy].mean(), name
  speed = proxies.learning_speed(dyn.prob)
  assert speed[noisy].mean() < speed[~noisy].mean() - 0.3


def test_second_split_forgetting_noisy_labels_forgotten_first(noisy_digits):
  data, groups = noisy_digits
  noisy = groups == studies.NOISY_LABEL
  res = proxies.second_split_forgetting(data, models=2, epochs_a=6, epochs_b=6, **FAST)
  assert res.correct_a.shape == (6, 2, 300) and res.correct_b.shape == (7, 2, 300)
  np.testing.assert_array_equal(res.correct_b[0], res.correct_a[-1])
  np.testing.assert_array_equal(res.keep_a[0], ~res.keep_a[1])
  assert np.isnan(res.ssft_per_model[~res.keep_a]).all()
  assert not np.isnan(res.ssft).any() and (res.ssft <= 7).all()
  # Maini et al.: mislabeled examples are learned late and forgotten early.
  assert res.fslt[noisy].mean() > res.fslt[~noisy].mean() + 1
  assert res.ssft[noisy].mean() < res.ssft[~noisy].mean() - 2
  with pytest.raises(MemjaxError, match="even"):
    proxies.second_split_forgetting(data, models=3, **FAST)


def test_holdout_retraining_moves_noisy_labels_most(noisy_digits):
  data, groups = noisy_digits
  noisy = groups == studies.NOISY_LABEL
  # 10 epochs: long enough for the MLP to fit the wrong labels (after 6 it has not yet).
  res = proxies.holdout_retraining(data, models=2, epochs=10, finetune_epochs=5, **FAST)
  assert res.per_model.shape == (2, 300) and (res.per_model >= 0).all()
  assert res.score[noisy].mean() > 2 * res.score[~noisy].mean()
  assert roc_auc_score(noisy, res.score) > 0.75  # measured 0.88
