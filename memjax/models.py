"""The model zoo, and the protocol your own models follow.

**The protocol.** A model is a flax NNX Module built by

    X(input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs, **model_kwargs)

and called as ``model(x [B, *input_shape] float32, train: bool) -> logits [B, num_classes]``.
``train`` is True during the optimizer steps and False at evaluation (BatchNorm: batch statistics
vs running averages; Dropout: ``deterministic=not train``). ``X`` is a Module class or any
factory function with that signature. ``rngs`` has the streams ``params`` (initialisation),
``dropout`` and ``default``; memjax reseeds every random stream a model keeps (``nnx.Dropout``'s,
or any ``rngs.<name>`` stream) before each training step with a key derived from (seed, model
index, epoch, step), so results do not depend on chunking, devices or interruptions. Pass ``X``
as ``memjax.train(..., model=X, model_kwargs={...})`` or, from the command line and in
run.json, as an import path ``"package.module:X"`` (``memjax run --model mypkg.nets:WideNet``).

**flax.linen modules** go through flax's own NNX bridge, one line::

    model = lambda shape, classes, *, rngs: nnx.bridge.ToNNX(
        MyLinenNet(classes), rngs=rngs).lazy_init(jnp.zeros((1, *shape)), train=False)

(``MyLinenNet.__call__(self, x, train)``; its ``nn.Dropout`` draws from the ``dropout``
stream.)

**Built-in names** (``build(name, ...)``, ``memjax run --model NAME --model-kwargs JSON``):

* ``logreg``: multinomial logistic regression.
* ``mlp``: ReLU MLP, ``widths=(256, 256)``.
* ``cnn``: small CNN, two 3x3 conv + 2x2 max-pool stages ``channels=(32, 64)`` and a dense layer
  of ``hidden=128``.
* ``vgg``: VGG-style family: stages of ``depth`` conv-BN-ReLU layers with ``width * 2**s``
  channels, a 2x2 max-pool after each stage, global average pooling, a linear head.
* ``resnet``: CIFAR-style ResNet family (He et al. 2016): a stem conv, three stages of ``depth``
  basic blocks with ``width``, ``2 * width``, ``4 * width`` channels (stride 2 between stages),
  global average pooling; ``depth=3, width=16`` is ResNet-20.

Convolutions and pools are written for the engine's loops. On XLA:CPU, the gradient of
``lax.conv`` inside ``lax.scan`` falls off the fast path (measured ~700x slower than the same
convolution outside the scan), so on CPU a 3x3 conv is a shifted-slice im2col followed by one
matmul, and max-pool is a reshape + max; on GPU/TPU ``lax.conv_general_dilated`` is used. Both
compute the same function.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from memjax import imports
from memjax.errors import MemjaxError


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, impl: str = "auto") -> jax.Array:
  """'SAME'-padded 2-D convolution.

  Args:
    x: [B, H, W, C_in].
    kernel: [kh, kw, C_in, C_out] (HWIO), odd kh and kw.
    stride: spatial stride.
    impl: "im2col" (shifted slices + one matmul; fast inside lax.scan on XLA:CPU), "lax"
      (``lax.conv_general_dilated``) or "auto" (im2col on CPU, lax elsewhere).

  Returns:
    [B, ceil(H / stride), ceil(W / stride), C_out].
  """
  if impl == "auto":
    impl = "im2col" if jax.default_backend() == "cpu" else "lax"
  kh, kw, c_in, c_out = kernel.shape
  if impl == "lax":
    return jax.lax.conv_general_dilated(
        x, kernel, window_strides=(stride, stride),
        padding=((kh // 2, kh // 2), (kw // 2, kw // 2)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  patches = jnp.concatenate(
      [xp[:, i:i + h:stride, j:j + w:stride, :] for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.einsum("bhwk,ko->bhwo", patches, kernel.reshape(kh * kw * c_in, c_out))


def max_pool2(x: jax.Array) -> jax.Array:
  """2x2 max-pool with stride 2 via reshape + max. x: [B, H, W, C] -> [B, H//2, W//2, C]."""
  b, h, w, c = x.shape
  x = x[:, :h - h % 2, :w - w % 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Conv(nnx.Module):
  """3x3 (or k x k) 'SAME' convolution with an optional bias; see :func:`conv2d`."""

  def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs,
               kernel_size: int = 3, stride: int = 1, use_bias: bool = True):
    init = nnx.initializers.he_normal()
    self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, in_features,
                                                 out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
    self.stride = stride

  def __call__(self, x: jax.Array) -> jax.Array:
    y = conv2d(x, self.kernel[...], self.stride)
    return y + self.bias[...] if self.bias is not None else y


class LogReg(nnx.Module):
  """Multinomial logistic regression on flattened inputs."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs):
    self.head = nnx.Linear(math.prod(input_shape), num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    return self.head(x.reshape(x.shape[0], -1))


class MLP(nnx.Module):
  """ReLU MLP on flattened inputs: D -> widths... -> C."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               widths: Sequence[int] = (256, 256)):
    sizes = [math.prod(input_shape), *widths]
    self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
    self.head = nnx.Linear(sizes[-1], num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      x = jax.nn.relu(layer(x))
    return self.head(x)


class SmallCNN(nnx.Module):
  """conv-ReLU-pool stages, then a ReLU dense layer and a linear head (no BatchNorm)."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               channels: Sequence[int] = (32, 64), hidden: int = 128):
    h, w, c = _image_shape(input_shape, "cnn")
    sizes = [c, *channels]
    self.convs = nnx.List([Conv(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
    for _ in channels:
      h, w = h // 2, w // 2
    if h < 1 or w < 1:
      raise MemjaxError(f"cnn with {len(channels)} pooling stages needs images of at least "
                        f"{2 ** len(channels)} pixels a side; got {input_shape}.")
    self.dense = nnx.Linear(h * w * channels[-1], hidden, rngs=rngs)
    self.head = nnx.Linear(hidden, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    for conv in self.convs:
      x = max_pool2(jax.nn.relu(conv(x)))
    x = jax.nn.relu(self.dense(x.reshape(x.shape[0], -1)))
    return self.head(x)


class ConvBN(nnx.Module):
  """conv (no bias) + BatchNorm (+ ReLU)."""

  def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs, stride: int = 1,
               kernel_size: int = 3):
    self.conv = Conv(in_features, out_features, rngs=rngs, stride=stride,
                     kernel_size=kernel_size, use_bias=False)
    self.bn = nnx.BatchNorm(out_features, momentum=0.9, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool, relu: bool = True) -> jax.Array:
    y = self.bn(self.conv(x), use_running_average=not train)
    return jax.nn.relu(y) if relu else y


class VGG(nnx.Module):
  """VGG-style: stages of ``depth`` ConvBN layers (width * 2**s channels) + max-pool; GAP; head."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               width: int = 16, depth: int = 1, stages: int | None = None):
    h, w, c = _image_shape(input_shape, "vgg")
    max_stages = max(1, int(math.log2(min(h, w))) - 1)
    stages = min(4, max_stages) if stages is None else stages
    layers, c_in = [], c
    for s in range(stages):
      for _ in range(depth):
        layers.append(ConvBN(c_in, width * 2 ** s, rngs=rngs))
        c_in = width * 2 ** s
    self.layers = nnx.List(layers)
    self.depth = depth
    self.head = nnx.Linear(c_in, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for i, layer in enumerate(self.layers):
      x = layer(x, train)
      if (i + 1) % self.depth == 0:
        x = max_pool2(x) if min(x.shape[1:3]) >= 2 else x
    return self.head(x.mean(axis=(1, 2)))


class BasicBlock(nnx.Module):
  """ResNet basic block: two 3x3 ConvBN, identity or 1x1 projection shortcut."""

  def __init__(self, in_features: int, out_features: int, stride: int, *, rngs: nnx.Rngs):
    self.conv1 = ConvBN(in_features, out_features, rngs=rngs, stride=stride)
    self.conv2 = ConvBN(out_features, out_features, rngs=rngs)
    needs_projection = stride != 1 or in_features != out_features
    self.shortcut = (ConvBN(in_features, out_features, rngs=rngs, stride=stride, kernel_size=1)
                     if needs_projection else None)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = self.conv2(self.conv1(x, train), train, relu=False)
    skip = x if self.shortcut is None else self.shortcut(x, train, relu=False)
    return jax.nn.relu(y + skip)


class ResNet(nnx.Module):
  """CIFAR-style ResNet: stem, 3 stages x ``depth`` basic blocks (width, 2w, 4w), GAP, head."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               width: int = 16, depth: int = 1):
    _, _, c = _image_shape(input_shape, "resnet")
    self.stem = ConvBN(c, width, rngs=rngs)
    blocks, c_in = [], width
    for stage in range(3):
      for b in range(depth):
        stride = 2 if stage > 0 and b == 0 else 1
        blocks.append(BasicBlock(c_in, width * 2 ** stage, stride, rngs=rngs))
        c_in = width * 2 ** stage
    self.blocks = nnx.List(blocks)
    self.head = nnx.Linear(c_in, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = self.stem(x, train)
    for block in self.blocks:
      x = block(x, train)
    return self.head(x.mean(axis=(1, 2)))


REGISTRY: dict[str, Callable[..., nnx.Module]] = {
    "logreg": LogReg,
    "mlp": MLP,
    "cnn": SmallCNN,
    "vgg": VGG,
    "resnet": ResNet,
}


def build(model, input_shape: Sequence[int], num_classes: int, rngs: nnx.Rngs,
          **kwargs) -> nnx.Module:
  """Builds ``model`` (a name in :data:`REGISTRY`, an import path or a factory, see
  :func:`resolve`) for inputs [B, *input_shape].

  >>> model = build("mlp", (8, 8, 1), 10, nnx.Rngs(0), widths=(32,))
  >>> model(jnp.zeros((2, 8, 8, 1))).shape
  (2, 10)
  """
  factory = resolve(model)
  try:
    return factory(tuple(input_shape), num_classes, rngs=rngs, **kwargs)
  except TypeError as e:
    where = (f"memjax.models.{factory.__name__}" if isinstance(model, str) and model in REGISTRY
             else "its signature; the protocol is X(input_shape, num_classes, *, rngs, **kwargs)")
    raise MemjaxError(f"Bad model arguments {kwargs} for {model_name(model)!r} ({e}). See "
                      f"{where}.") from e


def resolve(model) -> Callable[..., nnx.Module]:
  """The model factory for ``TrainConfig.model``: a built-in name, an import path
  ``"package.module:Name"``, or a Module class / factory (returned as it is).

  >>> resolve("mlp") is MLP
  True
  """
  if isinstance(model, str):
    imports.require_saved(model, "model", "model")
    if model in REGISTRY:
      return REGISTRY[model]
    if not imports.is_import_path(model):
      raise MemjaxError(f"Unknown model {model!r}; choose one of {', '.join(REGISTRY)}, or give "
                        "your own flax NNX Module as an import path 'package.module:Name'.")
    model = imports.import_object(model, "model")
  if not callable(model):
    raise MemjaxError(f"model must be a built-in name, an import path, or a flax NNX Module "
                      f"class or factory X(input_shape, num_classes, *, rngs, **kwargs); got "
                      f"{type(model).__name__}.")
  return model


def model_name(model) -> str:
  """A short display name: the built-in name, or the class / function name."""
  if isinstance(model, str):
    return model.rpartition(":")[2] if imports.is_import_path(model) else model
  return getattr(model, "__name__", type(model).__name__)


def count_params(params) -> int:
  """Number of scalars in a params pytree (of one model)."""
  return int(sum(x.size for x in jax.tree.leaves(params)))


def _image_shape(input_shape: Sequence[int], name: str) -> tuple[int, int, int]:
  if len(input_shape) != 3:
    raise MemjaxError(f"Model {name!r} needs images [H, W, C]; the data has features of shape "
                      f"{tuple(input_shape)}. Use 'mlp' or 'logreg' for vector data.")
  return tuple(input_shape)
