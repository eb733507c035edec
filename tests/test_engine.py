import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import memjax
from memjax import design, engine, measures
from memjax.config import TrainConfig, query_transforms
from memjax.errors import MemjaxError

from conftest import tiny_images


@pytest.mark.slow
def test_epoch_order_draws_only_in_examples_and_covers_them(small_digits):
  config = TrainConfig(model="logreg", num_models=4, batch_size=32)
  keep = design.bernoulli(4, small_digits.num_train, 0.4, seed=0)
  steps = engine.steps_per_epoch(keep, 32)
  eng = engine.Engine(small_digits, config, steps, chunk_size=4)
  for m in range(4):
    order, _ = eng._epoch_order(jnp.int32(m), jnp.asarray(keep[m]), jnp.int32(0))
    order = np.asarray(order)
    assert order.shape == (steps, 32)
    assert keep[m][order].all()  # only the model's own examples
    assert set(order.ravel()) == set(np.flatnonzero(keep[m]))  # each at least once per epoch
  o1, _ = eng._epoch_order(jnp.int32(0), jnp.asarray(keep[0]), jnp.int32(1))
  assert not np.array_equal(np.asarray(o1), np.asarray(
      eng._epoch_order(jnp.int32(0), jnp.asarray(keep[0]), jnp.int32(0))[0]))


@pytest.mark.slow
def test_vmapped_scan_equals_training_each_model_alone(small_digits):
  """The compiled program trains every model exactly as a plain per-model loop would."""
  config = TrainConfig(model="mlp", model_kwargs={"widths": (16,)}, num_models=3, epochs=2,
                       batch_size=64, learning_rate=0.05)
  keep = design.bernoulli(3, small_digits.num_train, 0.5, seed=0)
  steps = engine.steps_per_epoch(keep, 64)
  eng = engine.Engine(small_digits, config, steps, chunk_size=3)
  ids = eng.shard(np.arange(3, dtype=np.int32))
  state = eng.init_chunk(ids)
  for epoch in range(config.epochs):
    state, _ = eng.train_epoch(state, ids, eng.shard(keep), np.int32(epoch), eng.x_train,
                               eng.y_train)
  x, y = jnp.asarray(small_digits.x_train), jnp.asarray(small_digits.y_train)
  optimizer = engine.make_optimizer(config, steps)

  @jax.jit
  def reference_step(params, opt_state, batch_index):
    def loss_fn(p):
      logits, _ = eng.fns.apply(p, {}, x[batch_index], True)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y[batch_index]).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  for m in range(3):
    params, _ = eng.fns.init(jax.random.fold_in(jax.random.fold_in(eng.base_key, m), 0))
    opt_state = optimizer.init(params)
    for epoch in range(config.epochs):
      order, _ = eng._epoch_order(jnp.int32(m), jnp.asarray(keep[m]), jnp.int32(epoch))
      for batch_index in order:
        params, opt_state = reference_step(params, opt_state, batch_index)
    got = jax.tree.map(lambda a: a[m], state["params"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), got,
                 params)


@pytest.mark.slow
def test_records_do_not_depend_on_chunking(small_digits):
  kwargs = dict(model="mlp", models=6, epochs=2, progress=False,
                model_kwargs={"widths": (16,)}, batch_size=64)
  a = memjax.train(small_digits, chunk_size=6, **kwargs).records
  b = memjax.train(small_digits, chunk_size=4, **kwargs).records  # 2 chunks, last padded
  for name in ("train_correct", "train_loss", "train_lira", "test_prob"):
    np.testing.assert_allclose(getattr(a, name).astype(np.float32),
                               getattr(b, name).astype(np.float32), rtol=1e-5, atol=1e-3)
  np.testing.assert_array_equal(a.keep, b.keep)


@pytest.mark.slow
def test_same_seed_same_records_other_seed_differs(small_digits):
  kwargs = dict(model="logreg", models=4, epochs=2, progress=False)
  a = memjax.train(small_digits, seed=1, **kwargs).records
  b = memjax.train(small_digits, seed=1, **kwargs).records
  c = memjax.train(small_digits, seed=2, **kwargs).records
  np.testing.assert_array_equal(a.train_lira, b.train_lira)
  assert not np.array_equal(a.train_lira, c.train_lira)


@pytest.mark.slow
def test_default_config_fits_each_models_own_subset(small_digits):
  run = memjax.train(small_digits, models=8, progress=False)  # the defaults: mlp, 40 epochs
  assert run.records.train_accuracy()[-1].min() >= 0.99
  assert run.records.test_accuracy()[-1].mean() > 0.8


@pytest.mark.slow
def test_images_train_with_augmentation_bn_and_queries():
  data = tiny_images()
  run = memjax.train(data, model="resnet", models=4, epochs=3, progress=False, batch_size=16,
                     model_kwargs={"width": 4}, augment="flip_translate", translate=1,
                     query_augmentations=3, eval_every=1)
  r = run.records
  assert r.train_lira.shape == (4, 64, 3) and r.test_lira.shape == (4, 32, 3)
  assert r.train_correct.shape == (3, 4, 64) and list(r.eval_epochs) == [1, 2, 3]
  assert np.isfinite(r.train_lira).all()
  # Queries are different views, so their statistics differ.
  assert not np.allclose(r.train_lira[..., 0], r.train_lira[..., 1])
  # prob and the LiRA statistic agree: p = sigmoid(lira) on the plain query.
  np.testing.assert_allclose(r.train_prob[-1].astype(np.float32),
                             1 / (1 + np.exp(-r.train_lira[..., 0])), atol=2e-3)


@pytest.mark.slow
def test_query_statistics_are_each_views_own_forward_pass():
  """The engine scores all A queries in one forward pass of the concatenated views; each
  column must equal the model's LiRA statistic on that view alone (a VGG with BatchNorm, in
  inference mode: no example affects another)."""
  data = tiny_images(n_train=24, n_test=8)
  config = TrainConfig(model="vgg", model_kwargs={"width": 4, "stages": 1}, batch_size=8,
                       augment="flip_translate", translate=1, query_augmentations=3)
  eng = engine.Engine(data, config, steps_per_epoch=3, chunk_size=2, eval_block=8)
  chunk = engine.Chunk(eng, np.arange(2), np.ones((2, 24), bool))
  chunk.train_epoch(0)
  lira = chunk.evaluate("train", with_queries=True)["lira"]  # [2, 24, 3]
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  for m in range(2):
    params, state = jax.tree.map(lambda a: a[m], (chunk.state["params"],
                                                  chunk.state["model_state"]))
    for a, transform in enumerate(eng.queries):
      logits, _ = jax.jit(eng.eval_fns.apply, static_argnums=3)(
          params, state, engine.query(x, transform), False)
      np.testing.assert_allclose(lira[m, :, a], measures.lira_statistic(logits, y),
                                 rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_augment_and_queries_shapes():
  config = TrainConfig(augment="flip_translate", translate=2)
  x = jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1)
  assert engine.augment(jax.random.key(0), x, config).shape == x.shape
  transforms = query_transforms(config)
  assert transforms[:2] == [(False, 0, 0), (True, 0, 0)] and len(transforms) == 18
  np.testing.assert_array_equal(engine.query(x, (True, 0, 0)), x[:, :, ::-1])
  shifted = engine.query(x, (False, 1, 0))
  np.testing.assert_array_equal(shifted[:, 1:], x[:, :-1])
  np.testing.assert_array_equal(shifted[:, 0], 0)
  with pytest.raises(MemjaxError, match="query_augmentations"):
    TrainConfig(augment="none", query_augmentations=2)


def test_schedule_is_triangular():
  config = TrainConfig(epochs=10, learning_rate=0.4, warmup_fraction=0.2)
  steps = 10
  total = config.epochs * steps
  optimizer = engine.make_optimizer(config, steps)
  # The schedule lives in the sgd transform; read it back through optax's state count.
  schedule = optax.join_schedules(
      [optax.linear_schedule(0.4 / 25, 0.4, 20), optax.linear_schedule(0.4, 0.0, 80)], [20])
  assert float(schedule(20)) == pytest.approx(0.4) and float(schedule(total)) == 0.0
  assert optimizer is not None


@pytest.mark.slow
def test_memory_estimate_and_chunking(small_digits):
  config = TrainConfig(model="mlp", num_models=10, epochs=1)
  fns = engine.model_fns(config, small_digits)
  per_model = engine.bytes_per_model(fns, small_digits, config)
  assert per_model > 4 * fns.num_params
  run = memjax.train(small_digits, config=config, memory_budget=int(per_model * 3.5),
                     progress=False)
  assert run.info["chunk_size"] == 3  # the largest number of models that fits the budget
  assert run.correct.shape == (10, small_digits.num_train)
