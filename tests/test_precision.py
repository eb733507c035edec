"""Mixed precision (``precision="bf16"``): bfloat16 compute, float32 parameters, gradients,
optimizer state and BatchNorm statistics; accuracy parity with float32 on the digits and on
CIFAR-shaped data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax
from memjax import engine
from memjax.config import TrainConfig
from memjax.errors import MemjaxError

from conftest import load_benchmark, tiny_images


def _dot_dtypes(fns, params, model_state, x):
  """The dtypes of every matmul and convolution of the training gradient's jaxpr, and the
  gradient's and the apply's output shapes and dtypes (traced, not run)."""
  loss = lambda p, s, x: fns.apply(p, s, x, True)[0].sum()
  jaxpr = jax.make_jaxpr(jax.grad(loss))(params, model_state, x)
  dtypes = set()

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
        dtypes.add(str(eqn.outvars[0].aval.dtype))
      for sub in engine._sub_jaxprs(eqn.params):
        walk(sub)

  walk(jaxpr.jaxpr)
  grads = jax.eval_shape(jax.grad(loss), params, model_state, x)
  applied = jax.eval_shape(lambda p, s, x: fns.apply(p, s, x, True), params, model_state, x)
  return dtypes, grads, applied


@pytest.mark.filterwarnings("error::FutureWarning")  # e.g. BatchNorm writing float32 into bf16
@pytest.mark.parametrize("model", ["mlp", "resnet"])
def test_bf16_computes_in_bfloat16_with_float32_parameters_and_gradients(model, small_digits):
  data = tiny_images() if model == "resnet" else small_digits
  kwargs = {"width": 4} if model == "resnet" else {}
  for precision, want in (("float32", {"float32"}), ("bf16", {"bfloat16"})):
    fns = engine.model_fns(TrainConfig(model=model, model_kwargs=kwargs, precision=precision),
                           data)
    params, model_state = jax.eval_shape(fns.init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((4, *data.feature_shape), jnp.float32)
    dtypes, grads, (logits, new_state) = _dot_dtypes(fns, params, model_state, x)
    assert dtypes == want, (precision, dtypes)  # every matmul and convolution
    assert {str(g.dtype) for g in jax.tree.leaves(grads)} == {"float32"}
    assert logits.dtype == jnp.float32
    jax.tree.map(lambda a, b: (a.dtype == b.dtype) or pytest.fail(f"{a.dtype} {b.dtype}"),
                 new_state, model_state)  # BatchNorm statistics stay float32


def test_unknown_precision_is_refused():
  with pytest.raises(MemjaxError, match="precision='fp8'; choose one of float32, bf16"):
    TrainConfig(precision="fp8")


def _parity(data, tolerance, **kwargs):
  runs = {p: memjax.train(data, precision=p, progress=False, **kwargs)
          for p in ("float32", "bf16")}
  accuracy = {p: float(np.mean(r.records.test_accuracy()[-1])) for p, r in runs.items()}
  assert abs(accuracy["bf16"] - accuracy["float32"]) <= tolerance, accuracy
  state = runs["bf16"].records
  # bfloat16 really ran: the probabilities differ from float32's beyond float16 storage.
  assert not np.array_equal(state.test_prob, runs["float32"].records.test_prob)
  return accuracy


@pytest.mark.slow
def test_bf16_accuracy_parity_on_digits(digits):
  accuracy = _parity(digits, 0.01, model="mlp", models=8, epochs=10)
  assert accuracy["float32"] > 0.94


@pytest.mark.slow
def test_bf16_accuracy_parity_on_cifar_shaped_data():
  data = load_benchmark("throughput").cifar_like(1024, 512)
  accuracy = _parity(data, 0.03, model="cnn", models=4, epochs=2, learning_rate=0.02,
                     batch_size=128)
  assert accuracy["float32"] > 0.2  # 10 classes: well above chance
