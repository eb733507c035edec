import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from memjax import models
from memjax.errors import MemjaxError


@pytest.mark.parametrize("name", list(models.REGISTRY))
@pytest.mark.parametrize("shape", [(8, 8, 1), (12, 12, 3)])
def test_every_model_maps_images_to_logits(name, shape):
  model = models.build(name, shape, 7, nnx.Rngs(0))
  for train in (True, False):
    assert model(jnp.ones((3, *shape)), train=train).shape == (3, 7)
  assert models.count_params(nnx.state(model, nnx.Param)) > 0


def test_vector_models_and_image_only_errors():
  assert models.build("mlp", (5,), 3, nnx.Rngs(0), widths=(4,))(jnp.ones((2, 5))).shape == (2, 3)
  with pytest.raises(MemjaxError, match="needs images"):
    models.build("cnn", (5,), 3, nnx.Rngs(0))
  with pytest.raises(MemjaxError, match="Unknown model"):
    models.build("transformer", (5,), 3, nnx.Rngs(0))
  with pytest.raises(MemjaxError, match="Bad model arguments"):
    models.build("mlp", (5,), 3, nnx.Rngs(0), depth=3)


def test_resnet20_size():
  # He et al.'s ResNet-20 for CIFAR-10 has 0.27M parameters.
  model = models.build("resnet", (32, 32, 3), 10, nnx.Rngs(0), width=16, depth=3)
  assert 260_000 < models.count_params(nnx.state(model, nnx.Param)) < 280_000


@pytest.mark.parametrize("stride", [1, 2])
def test_im2col_conv_equals_lax_conv_values_and_grads(stride):
  x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
  k = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))
  a = models.conv2d(x, k, stride, impl="im2col")
  b = models.conv2d(x, k, stride, impl="lax")
  np.testing.assert_allclose(a, b, atol=1e-4)
  ga = jax.grad(lambda k: (models.conv2d(x, k, stride, "im2col") ** 2).sum())(k)
  gb = jax.grad(lambda k: (models.conv2d(x, k, stride, "lax") ** 2).sum())(k)
  np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-3)


def test_max_pool_matches_reduce_window():
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 4))
  ref = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
  np.testing.assert_array_equal(models.max_pool2(x), ref)


def test_batchnorm_uses_running_averages_at_evaluation():
  model = models.build("resnet", (8, 8, 3), 4, nnx.Rngs(0), width=4)
  x = jax.random.normal(jax.random.key(0), (16, 8, 8, 3)) * 3 + 1
  stats = lambda: jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))
  before = stats()
  y_eval = model(x, train=False)
  after_eval = stats()
  jax.tree.map(np.testing.assert_array_equal, before, after_eval)  # eval leaves stats alone
  y_train = model(x, train=True)
  assert not np.allclose(y_eval, y_train)
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), before, stats())
  assert any(jax.tree.leaves(changed))
