"""DP-SGD and Poisson sampling in the engine (memjax.engine.dp_train_step, Engine._poisson_batch)
checked against plain per-example loops, plain SGD and the noise's known distribution."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import memjax
from memjax import design, engine
from memjax.config import TrainConfig
from memjax.errors import MemjaxError

from conftest import tiny_images

MLP = dict(model="mlp", model_kwargs={"widths": (8,)})
SGD = dict(optimizer="sgd", optimizer_kwargs={"learning_rate": 1.0})


def make_engine(data, batch_size=32, **config):
  config = TrainConfig(**MLP, batch_size=batch_size, **config)
  keep = design.balanced(4, data.num_train, 0.5, seed=0)
  return engine.Engine(data, config, engine.steps_per_epoch(keep, batch_size), chunk_size=4), keep


def one_model(eng):
  return eng._init_one(jnp.int32(0))


def test_poisson_batches_sample_in_examples_at_rate_q(small_digits):
  eng, keep = make_engine(small_digits, batch_size=30, sampling="poisson")
  keep_row = jnp.asarray(keep[0])
  keys = jax.random.split(jax.random.key(1), 4000)
  indices, mask, dropped = jax.vmap(eng._poisson_batch, in_axes=(None, 0))(keep_row, keys)
  indices, mask, dropped = map(np.asarray, (indices, mask, dropped))
  assert indices.shape == (4000, eng.batch_capacity) and not dropped.any()
  assert keep[0][indices[mask]].all()  # only the model's own examples
  sizes = mask.sum(axis=1)
  num_in = keep[0].sum()
  q = 30 / num_in
  assert sizes.mean() == pytest.approx(30, abs=0.3)  # 4000 steps: sd of the mean ~0.08
  assert sizes.var() == pytest.approx(num_in * q * (1 - q), rel=0.1)
  counts = np.bincount(indices[mask], minlength=keep.shape[1])[keep[0]]
  assert counts.mean() == pytest.approx(4000 * q, rel=0.01)
  assert (np.abs(counts - 4000 * q) < 6 * math.sqrt(4000 * q)).all()  # every example at rate q
  for row, used in zip(indices[:50], mask[:50]):
    assert (np.diff(row[used]) > 0).all()  # distinct, in index order


def test_a_batch_over_capacity_keeps_its_first_examples_and_counts_the_rest(small_digits):
  eng, keep = make_engine(small_digits, batch_size=30, sampling="poisson")
  eng.batch_capacity = 5
  indices, mask, dropped = eng._poisson_batch(jnp.asarray(keep[0]), jax.random.key(0))
  assert np.asarray(mask).all() and int(dropped) > 5  # ~30 sampled
  assert keep[0][np.asarray(indices)].all()


@pytest.mark.slow
def test_dp_step_clips_each_example_like_a_plain_loop(small_digits):
  clip = 0.05  # small enough that every example is clipped
  eng, _ = make_engine(small_digits, dp_noise_multiplier=0.0, dp_clip_norm=clip, **SGD)
  state = one_model(eng)
  x, y = jnp.asarray(small_digits.x_train[:12]), jnp.asarray(small_digits.y_train[:12])
  mask = jnp.arange(12) < 9  # three padding slots
  new_state, loss = engine.dp_train_step(
      eng.fns, eng.optimizer, eng.loss_fn, state, x, y, jax.random.key(0), mask,
      clip_norm=clip, noise_multiplier=0.0, expected_batch=32)

  def example_loss(params, i):
    logits, _ = eng.fns.apply(params, state["model_state"], x[i:i + 1], True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y[i:i + 1])[0]

  total = jax.tree.map(jnp.zeros_like, state["params"])
  norms = []
  for i in range(9):
    grad = jax.grad(example_loss)(state["params"], i)
    norm = float(optax.tree.norm(grad))
    norms.append(norm)
    total = jax.tree.map(lambda t, g: t + g * min(1.0, clip / norm), total, grad)
  assert min(norms) > clip
  expected = jax.tree.map(lambda p, g: p - 1.0 * g / 32, state["params"], total)
  for got, want in zip(jax.tree.leaves(new_state["params"]), jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert float(loss) == pytest.approx(np.mean([float(example_loss(state["params"], i))
                                               for i in range(9)]), rel=1e-5)


@pytest.mark.slow
def test_dropout_models_clip_the_gradients_of_their_own_dropout_masks(small_digits):
  """The clipped sum comes from a weighted backward pass through the per-example forward; with
  dropout it must equal optax's clip-and-sum of the per-example gradients under the same
  per-example masks (example k draws from fold_in(key, k))."""
  eng, _ = make_engine(small_digits, dp_noise_multiplier=0.0, dp_clip_norm=0.5, **SGD)
  config = eng.config.replace(model_kwargs={"widths": (8,), "dropout": 0.5})
  eng = engine.Engine(small_digits, config, 4, chunk_size=4)
  assert eng.fns.random_streams
  state = one_model(eng)
  x, y = jnp.asarray(small_digits.x_train[:12]), jnp.asarray(small_digits.y_train[:12])
  mask = jnp.arange(12) < 10
  key = jax.random.key(3)
  new, _ = engine.dp_train_step(eng.fns, eng.optimizer, eng.loss_fn, state, x, y, key, mask,
                                clip_norm=0.5, noise_multiplier=0.0, expected_batch=32)

  def example_loss(params, i):
    logits, _ = eng.fns.apply(params, state["model_state"], x[i:i + 1], True,
                              jax.random.fold_in(key, i))
    return optax.softmax_cross_entropy_with_integer_labels(logits, y[i:i + 1])[0]

  grads = [jax.grad(example_loss)(state["params"], i) for i in range(10)]
  stacked = jax.tree.map(lambda *g: jnp.stack(g), *grads)
  leaves, treedef = jax.tree.flatten(stacked)
  clipped, _ = optax.per_example_global_norm_clip(leaves, 0.5)
  expected = jax.tree.map(lambda p, g: p - g / 32, state["params"],
                          jax.tree.unflatten(treedef, clipped))
  for got, want in zip(jax.tree.leaves(new["params"]), jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # Dropout acts, so the per-example keys matter: another key, another loss.
  logits_other, _ = eng.fns.apply(state["params"], state["model_state"], x[:1], True,
                                  jax.random.fold_in(key, 99))
  other = optax.softmax_cross_entropy_with_integer_labels(logits_other, y[:1])[0]
  assert float(other) != pytest.approx(float(example_loss(state["params"], 0)), rel=1e-4)


@pytest.mark.slow
def test_dp_noise_has_standard_deviation_sigma_c_over_the_batch(small_digits):
  """With no example sampled the update is the noise alone: N(0, (sigma C / B)^2) per
  coordinate, fresh for every key."""
  sigma, clip, batch = 1.5, 2.0, 32
  eng, _ = make_engine(small_digits, batch_size=batch, dp_noise_multiplier=sigma,
                       dp_clip_norm=clip, **SGD)
  state = one_model(eng)
  x, y = jnp.asarray(small_digits.x_train[:4]), jnp.asarray(small_digits.y_train[:4])

  def update(key):
    new, _ = engine.dp_train_step(eng.fns, eng.optimizer, eng.loss_fn, state, x, y, key,
                                  jnp.zeros(4, bool), clip_norm=clip, noise_multiplier=sigma,
                                  expected_batch=batch)
    return np.concatenate([np.ravel(a - b) for a, b in zip(jax.tree.leaves(new["params"]),
                                                            jax.tree.leaves(state["params"]))])

  first, second = update(jax.random.key(0)), update(jax.random.key(1))
  assert first.size > 500
  assert first.std() == pytest.approx(sigma * clip / batch, rel=0.1)
  assert abs(first.mean()) < 4 * sigma * clip / batch / math.sqrt(first.size)
  assert abs(np.corrcoef(first, second)[0, 1]) < 0.15


@pytest.mark.slow
def test_optimizer_state_and_weight_decay_act_after_the_noise(small_digits):
  eng, _ = make_engine(small_digits, dp_noise_multiplier=1.0)  # the default SGD chain
  state = one_model(eng)
  x, y = jnp.asarray(small_digits.x_train[:4]), jnp.asarray(small_digits.y_train[:4])
  new, _ = engine.dp_train_step(eng.fns, eng.optimizer, eng.loss_fn, state, x, y,
                                jax.random.key(0), jnp.ones(4, bool), clip_norm=1.0,
                                noise_multiplier=1.0, expected_batch=32)
  assert jax.tree.structure(new["opt_state"]) == jax.tree.structure(state["opt_state"])
  assert all(np.isfinite(a).all() for a in jax.tree.leaves(new))


@pytest.mark.slow
def test_dp_sgd_without_noise_or_clipping_equals_sgd_on_the_same_poisson_batches(small_digits):
  kwargs = dict(**MLP, models=4, epochs=2, batch_size=32, progress=False, chunk_size=4)
  plain = memjax.train(small_digits, sampling="poisson", **kwargs)
  dp = memjax.train(small_digits, dp_noise_multiplier=0.0, dp_clip_norm=math.inf, **kwargs)
  assert math.isinf(dp.info["privacy"]["epsilon"]) and dp.info["dropped_examples"] == 0
  np.testing.assert_allclose(np.asarray(dp.records.train_lira),
                             np.asarray(plain.records.train_lira), rtol=1e-3, atol=1e-3)
  np.testing.assert_array_equal(dp.correct, plain.correct)


@pytest.mark.slow
def test_dp_runs_do_not_depend_on_the_chunking(small_digits):
  """Sampling and noise keys depend on (seed, model, step) only: the records agree to float
  rounding (XLA:CPU sums a vmapped batch of 2 and of 4 models in different orders; measured
  differences ~1e-6), not bit for bit."""
  kwargs = dict(**MLP, models=4, epochs=2, batch_size=32, progress=False, dp_noise_multiplier=1.0)
  whole = memjax.train(small_digits, chunk_size=4, **kwargs)
  halves = memjax.train(small_digits, chunk_size=2, **kwargs)
  np.testing.assert_array_equal(whole.correct, halves.correct)
  np.testing.assert_allclose(np.asarray(whole.records.train_lira, np.float32),
                             np.asarray(halves.records.train_lira, np.float32), atol=1e-4)
  assert whole.info["privacy"] == halves.info["privacy"]


@pytest.mark.slow
def test_a_target_epsilon_calibrates_the_noise_and_shows_in_the_summary(small_digits):
  run = memjax.train(small_digits, **MLP, models=4, epochs=3, batch_size=32, progress=False,
                     dp_target_epsilon=2.0)
  record = run.info["privacy"]
  assert record["epsilon"] == pytest.approx(2.0, abs=0.01) and record["target_epsilon"] == 2.0
  assert record["steps"] == 3 * run.info["steps_per_epoch"] and record["sampling"] == "poisson"
  assert record["delta"] == pytest.approx(1 / (10 * small_digits.num_train))
  assert "privacy: DP-SGD: (2, " in run.summary()
  assert run.config.dp_target_epsilon == 2.0 and run.config.dp_noise_multiplier is None


def test_models_with_batchnorm_are_refused():
  data = tiny_images()
  config = TrainConfig(model="resnet", model_kwargs={"width": 4, "depth": 1},
                       dp_noise_multiplier=1.0)
  with pytest.raises(MemjaxError, match="BatchNorm"):
    engine.Engine(data, config, 1, chunk_size=1)


def test_engines_refuse_dp_settings_without_a_guarantee(small_digits):
  with pytest.raises(MemjaxError, match="calibrated by memjax.train"):
    make_engine(small_digits, dp_target_epsilon=1.0)
  with pytest.raises(MemjaxError, match="infinite noise"):
    make_engine(small_digits, dp_noise_multiplier=1.0, dp_clip_norm=math.inf)
