"""The model zoo, and the protocol your own models follow.

**The protocol.** A model is a flax NNX Module built by

    X(input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs, **model_kwargs)

and called as ``model(x [B, *input_shape] float32, train: bool) -> logits [B, num_classes]``
(language models: ``x [B, L]`` int32 token ids -> ``logits [B, L, V]``, see ``gpt``).
``train`` is True during the optimizer steps and False at evaluation (BatchNorm: batch statistics
vs running averages; Dropout: ``deterministic=not train``); with ``train=False`` every example's
logits must depend on that example alone (memjax evaluates several views of a block in one
pass). ``X`` is a Module class or any factory function with that signature. ``rngs`` has the
streams ``params`` (initialisation), ``dropout`` and ``default``; memjax reseeds every random stream a model keeps (``nnx.Dropout``'s,
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
* ``mlp``: ReLU MLP, ``widths=(256, 256)``, ``dropout=0.0`` on the hidden layers.
* ``cnn``: small CNN, two 3x3 conv + 2x2 max-pool stages ``channels=(32, 64)`` and a dense layer
  of ``hidden=128``.
* ``vgg``: VGG-style family: stages of ``depth`` conv-BN-ReLU layers with ``width * 2**s``
  channels, a 2x2 max-pool after each stage, global average pooling, a linear head.
* ``resnet``: CIFAR-style ResNet family (He et al. 2016): a stem conv, three stages of ``depth``
  basic blocks with ``width``, ``2 * width``, ``4 * width`` channels (stride 2 between stages),
  global average pooling; ``depth=3, width=16`` is ResNet-20.
* ``vgg`` and ``resnet`` take ``norm="group"`` for GroupNorm instead of BatchNorm (no batch
  statistics: the variant DP-SGD can train).
* ``vit``: Vision Transformer (Dosovitskiy et al. 2021): non-overlapping ``patch`` x ``patch``
  patches embedded linearly with learned position embeddings, ``depth`` pre-norm transformer
  blocks of ``width`` and ``heads``, mean pooling, a linear head; ``size="tiny"`` / ``"small"``
  are ViT-Ti / ViT-S (:data:`VIT_SIZES`). Its blocks (:class:`TransformerBlock`,
  :class:`SelfAttention`) take ``causal=True`` for language models.
* ``gpt``: causal decoder-only transformer language model (Radford et al. 2019) on token
  sequences: ``x [B, L]`` int token ids -> ``logits [B, L, V]`` (V = ``num_classes``, the
  vocabulary), token and learned position embeddings, ``depth`` pre-norm causal blocks of
  ``width`` and ``heads``, a final LayerNorm, an untied linear head; ``size="nano"`` (the
  default: width 64, depth 2, heads 4) / ``"micro"`` (:data:`GPT_SIZES`). It needs text data
  (``memjax.load("text:PATH")``); the logits of position t depend on tokens 0..t only.

Convolutions and pools are written for the engine's loops. On XLA:CPU, the gradient of
``lax.conv`` inside ``lax.scan`` falls off the fast path (measured 100-700x slower than the same
convolution outside the scan), so on CPU :func:`conv2d` is either "canonical" (the lax forward
with backward passes written as forward convolutions, which stay on the fast path) or "im2col"
(shifted slices + one matmul); the engine measures which trains faster (:mod:`memjax.tuning`).
Max-pool is a reshape + max. On GPU/TPU ``lax.conv_general_dilated`` is used. All compute the
same function.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from memjax import imports
from memjax.errors import MemjaxError


_CONV_IMPL = ["auto"]  # the trace-time default of conv2d(impl="auto"); see conv_implementation


@contextlib.contextmanager
def conv_implementation(impl: str):
  """Within the block, ``conv2d(impl="auto")`` traces as ``impl`` ("im2col", "lax" or "auto").

  The engine uses it to pick the convolution that is fastest for how it runs a training step
  (inside ``lax.scan``, or one jitted step at a time); it only matters while tracing.
  """
  if impl not in CONV_IMPLS:
    raise MemjaxError(f"conv implementation {impl!r}; choose one of {', '.join(CONV_IMPLS)}.")
  previous = _CONV_IMPL[0]
  _CONV_IMPL[0] = impl
  try:
    yield
  finally:
    _CONV_IMPL[0] = previous


CONV_IMPLS = ("auto", "canonical", "im2col", "lax")


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, impl: str = "auto") -> jax.Array:
  """'SAME'-padded 2-D convolution.

  Args:
    x: [B, H, W, C_in].
    kernel: [kh, kw, C_in, C_out] (HWIO), odd kh and kw.
    stride: spatial stride.
    impl: how it is computed (all give the same function and gradients, to float rounding):

      * "lax": ``lax.conv_general_dilated``; its gradient inside ``lax.scan`` runs on XLA:CPU's
        naive loop path (measured 100-700x slower than outside the scan).
      * "canonical": the lax forward convolution with a custom VJP whose two backward passes
        are themselves forward convolutions, the form XLA:CPU's fast path takes anywhere (input
        gradient: the 180-degree rotated kernel; weight gradient: a convolution with the batch
        as the contracted feature axis). Stride 1 only; strides > 1 fall back to "im2col".
      * "im2col": shifted slices concatenated into patches [B, H', W', kh*kw*C_in], then one
        matmul.
      * "auto": the :func:`conv_implementation` in force, else "canonical" on CPU and "lax"
        elsewhere.

  Returns:
    [B, ceil(H / stride), ceil(W / stride), C_out].
  """
  if impl == "auto":
    impl = _CONV_IMPL[0]
  if impl == "auto":
    impl = "canonical" if jax.default_backend() == "cpu" else "lax"
  if impl not in CONV_IMPLS:
    raise MemjaxError(f"conv implementation {impl!r}; choose one of {', '.join(CONV_IMPLS)}.")
  if impl == "canonical" and stride == 1:
    return _canonical_conv(x, kernel)
  if impl == "lax":
    return _lax_conv(x, kernel, stride)
  kh, kw, c_in, c_out = kernel.shape
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  patches = jnp.concatenate(
      [xp[:, i:i + h:stride, j:j + w:stride, :] for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.einsum("bhwk,ko->bhwo", patches, kernel.reshape(kh * kw * c_in, c_out))


_NHWC = ("NHWC", "HWIO", "NHWC")


def _lax_conv(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  kh, kw = kernel.shape[:2]
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(stride, stride),
      padding=((kh // 2, kh // 2), (kw // 2, kw // 2)), dimension_numbers=_NHWC)


@jax.custom_vjp
def _canonical_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 'SAME' conv, x [B, H, W, C], kernel [kh, kw, C, O] -> [B, H, W, O]."""
  return _lax_conv(x, kernel)


def _canonical_conv_fwd(x, kernel):
  return _lax_conv(x, kernel), (x, kernel)


def _canonical_conv_bwd(residuals, dy):
  """dx [B, H, W, C] = conv(dy, kernel rotated 180 degrees with C and O swapped);
  dkernel [kh, kw, C, O] = the 'VALID' conv of the padded input [C, H+kh-1, W+kw-1, B] (the
  batch as features) with dy [H, W, B, O] as the kernel, or, for few input channels, one
  matmul per kernel tap of the shifted input slice [B*H*W, C] with dy [B*H*W, O]."""
  x, kernel = residuals
  kh, kw = kernel.shape[:2]
  dx = _lax_conv(dy, kernel[::-1, ::-1].transpose(0, 1, 3, 2))
  xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  if x.shape[-1] <= _SLICED_WEIGHT_GRAD_CHANNELS:  # few input channels (RGB): kh*kw matmuls
    h, w = x.shape[1:3]
    dkernel = jnp.stack([jnp.stack([jnp.einsum("bhwc,bhwo->co", xp[:, i:i + h, j:j + w], dy)
                                    for j in range(kw)]) for i in range(kh)])
    return dx, dkernel
  dkernel = jax.lax.conv_general_dilated(
      xp.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1), "VALID",
      dimension_numbers=_NHWC).transpose(1, 2, 0, 3)
  return dx, dkernel


_canonical_conv.defvjp(_canonical_conv_fwd, _canonical_conv_bwd)

# Input channels up to which the weight gradient is kh*kw matmuls of shifted input slices with dy
# instead of a convolution: with 3 input channels that convolution has 3 "images" to spread over
# the cores and ran at ~30 GFLOP/s; the slices took the small CNN's training step on CIFAR-shaped
# data from 2.76 to 3.20 model-epochs/s (2-core CPU, 2026-12-03). For wide layers both ran alike.
_SLICED_WEIGHT_GRAD_CHANNELS = 8


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
  """ReLU MLP on flattened inputs: D -> widths... -> C.

  Args:
    input_shape: the feature shape (flattened to D).
    num_classes: C, the number of logits.
    widths: the hidden layers' widths.
    dropout: dropout rate on every hidden layer's ReLU output while training (0: no Dropout
      modules at all, so the model builds with ``nnx.Rngs(params=key)``; > 0 needs a ``dropout``
      or ``default`` stream in ``rngs``, which the engine gives and reseeds every step).
  """

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               widths: Sequence[int] = (256, 256), dropout: float = 0.0):
    _check_dropout("mlp", dropout, rngs)
    sizes = [math.prod(input_shape), *widths]
    self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
    self.head = nnx.Linear(sizes[-1], num_classes, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      x = _dropout(self.drop, jax.nn.relu(layer(x)), train)
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


NORMS = ("batch", "group")


class ConvBN(nnx.Module):
  """conv (no bias) + BatchNorm or GroupNorm (+ ReLU).

  ``norm="group"`` normalises each example on its own (GroupNorm, gcd(channels, 16) groups), so
  the model keeps no batch statistics: what DP-SGD's per-example gradients need.
  """

  def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs, stride: int = 1,
               kernel_size: int = 3, norm: str = "batch"):
    if norm not in NORMS:
      raise MemjaxError(f"norm={norm!r}; choose one of {', '.join(NORMS)}.")
    self.conv = Conv(in_features, out_features, rngs=rngs, stride=stride,
                     kernel_size=kernel_size, use_bias=False)
    if norm == "batch":
      self.bn = nnx.BatchNorm(out_features, momentum=0.9, rngs=rngs)
    else:
      self.bn = nnx.GroupNorm(out_features, num_groups=math.gcd(out_features, 16), rngs=rngs)

  def __call__(self, x: jax.Array, train: bool, relu: bool = True) -> jax.Array:
    y = self.conv(x)
    y = (self.bn(y, use_running_average=not train) if isinstance(self.bn, nnx.BatchNorm)
         else self.bn(y))
    return jax.nn.relu(y) if relu else y


class VGG(nnx.Module):
  """VGG-style: stages of ``depth`` ConvBN layers (width * 2**s channels) + max-pool; GAP; head.
  ``norm``: "batch" (BatchNorm) or "group" (GroupNorm, for DP-SGD)."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               width: int = 16, depth: int = 1, stages: int | None = None, norm: str = "batch"):
    h, w, c = _image_shape(input_shape, "vgg")
    max_stages = max(1, int(math.log2(min(h, w))) - 1)
    stages = min(4, max_stages) if stages is None else stages
    layers, c_in = [], c
    for s in range(stages):
      for _ in range(depth):
        layers.append(ConvBN(c_in, width * 2 ** s, rngs=rngs, norm=norm))
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

  def __init__(self, in_features: int, out_features: int, stride: int, *, rngs: nnx.Rngs,
               norm: str = "batch"):
    self.conv1 = ConvBN(in_features, out_features, rngs=rngs, stride=stride, norm=norm)
    self.conv2 = ConvBN(out_features, out_features, rngs=rngs, norm=norm)
    needs_projection = stride != 1 or in_features != out_features
    self.shortcut = (ConvBN(in_features, out_features, rngs=rngs, stride=stride, kernel_size=1,
                            norm=norm)
                     if needs_projection else None)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = self.conv2(self.conv1(x, train), train, relu=False)
    skip = x if self.shortcut is None else self.shortcut(x, train, relu=False)
    return jax.nn.relu(y + skip)


class ResNet(nnx.Module):
  """CIFAR-style ResNet: stem, 3 stages x ``depth`` basic blocks (width, 2w, 4w), GAP, head.
  ``norm``: "batch" (BatchNorm) or "group" (GroupNorm, for DP-SGD)."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               width: int = 16, depth: int = 1, norm: str = "batch"):
    _, _, c = _image_shape(input_shape, "resnet")
    self.stem = ConvBN(c, width, rngs=rngs, norm=norm)
    blocks, c_in = [], width
    for stage in range(3):
      for b in range(depth):
        stride = 2 if stage > 0 and b == 0 else 1
        blocks.append(BasicBlock(c_in, width * 2 ** stage, stride, rngs=rngs, norm=norm))
        c_in = width * 2 ** stage
    self.blocks = nnx.List(blocks)
    self.head = nnx.Linear(c_in, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = self.stem(x, train)
    for block in self.blocks:
      x = block(x, train)
    return self.head(x.mean(axis=(1, 2)))


# ---- transformers -------------------------------------------------------------------------------
class SelfAttention(nnx.Module):
  """Multi-head self-attention over tokens [B, T, D] -> [B, T, D], optionally causal.

  ``nnx.MultiHeadAttention`` (query, key, value and output projections with biases, 4 D^2 + 4 D
  parameters) behind a small interface shared by the ViT and, later, a causal language model:
  ``causal=True`` masks the future, so the output at position t depends only on tokens 0..t.
  ``dropout`` (when > 0) acts on the output; attention weights are not dropped.

  Why not einsums of our own: in the engine's vmapped, scanned training epoch on the 2-core CPU
  (jax 0.12.0.1, flax 0.12.12; 32 digits ViTs, 16 tokens, equal parameter counts; the fastest of
  8 epochs timed in turns, ``benchmarks/vit_attention.py``), ``nnx.MultiHeadAttention`` trained
  at 28.2 model-epochs/s, a fused-qkv einsum version at 23.4 and an einsum version with per-head
  [D, H, D/H] kernels at 26.5 (``width=32, depth=2, heads=2``, batch 32); at ``width=64,
  heads=4``, batch 64: 11.7, 10.4 and 11.5. XLA's cost analysis gives all three the same FLOPs
  and bytes per step; the fastest is kept.
  """

  def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs, causal: bool = False,
               dropout: float = 0.0):
    if heads < 1 or width % heads:
      raise MemjaxError(f"width={width} is not divisible by heads={heads}; use a width that is a "
                        "multiple of the number of heads.")
    self.causal = causal
    # keep_rngs=False: no random state in the module (the attention weights are not dropped).
    self.attention = nnx.MultiHeadAttention(heads, width, decode=False, keep_rngs=False,
                                            rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    y = self.attention(x, is_causal=self.causal, deterministic=True)
    return _dropout(self.drop, y, train)


class TransformerBlock(nnx.Module):
  """Pre-norm transformer block on tokens [B, T, D] -> [B, T, D].

  ``x + attention(LayerNorm(x))``, then ``x + MLP(LayerNorm(x))`` with a GELU MLP of
  ``mlp_ratio * width`` hidden units. Dropout (when ``dropout > 0``) acts on the output of each
  residual branch and on the MLP's hidden units.
  """

  def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs, mlp_ratio: float = 4.0,
               causal: bool = False, dropout: float = 0.0):
    hidden = int(round(mlp_ratio * width))
    self.norm1 = nnx.LayerNorm(width, rngs=rngs)
    self.attention = SelfAttention(width, heads, rngs=rngs, causal=causal, dropout=dropout)
    self.norm2 = nnx.LayerNorm(width, rngs=rngs)
    self.fc1 = nnx.Linear(width, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, width, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x + self.attention(self.norm1(x), train)
    h = _dropout(self.drop, jax.nn.gelu(self.fc1(self.norm2(x))), train)
    return x + _dropout(self.drop, self.fc2(h), train)


VIT_SIZES: dict[str, dict[str, int]] = {
    # The ViT / DeiT configurations (Dosovitskiy et al. 2021; Touvron et al. 2021).
    "tiny": {"width": 192, "depth": 12, "heads": 3},
    "small": {"width": 384, "depth": 12, "heads": 6},
}


class ViT(nnx.Module):
  """Vision Transformer: patch embedding, pre-norm transformer blocks, mean pooling, linear head.

  Maps images [B, H, W, C] to logits [B, num_classes]. The images are cut into non-overlapping
  ``patch`` x ``patch`` patches, T = (H / patch) (W / patch) tokens, each flattened and projected
  linearly to ``width``, plus a learned position embedding per patch: [B, T, width]; ``depth``
  :class:`TransformerBlock` s follow, then a final LayerNorm, the mean over the T tokens (global
  average pooling instead of a CLS token, as in Beyer et al. 2022, "Better plain ViT baselines
  for ImageNet-1k": one token fewer and as accurate) and a linear head. Dropout layers follow
  ``train`` (``deterministic=not train``) and draw from the ``dropout`` stream of the Rngs the
  model was built with.

  Args:
    input_shape: (H, W, C).
    num_classes: C, the number of logits.
    size: a key of :data:`VIT_SIZES` ("tiny": width 192, depth 12, heads 3; "small": width 384,
      depth 12, heads 6); explicit ``width``, ``depth`` and ``heads`` override the size's.
    width: token dimension D (default 32 without a size).
    depth: number of transformer blocks (default 2 without a size).
    heads: attention heads; ``width`` must be a multiple (default 2 without a size).
    patch: patch side in pixels; it must divide H and W. Default: the divisor of H and W whose
      grid of patches is nearest (in ratio) to 4 a side for images under 32 pixels a side and to
      8 a side otherwise, the smaller patch on ties: 2 for 8x8 digits (4x4 patches), 7 for 28x28
      (4x4), 4 for 32x32 (8x8), 1 for 7x7 (7 is prime).
    mlp_ratio: hidden units of each block's MLP per unit of ``width``.
    dropout: dropout rate on the embeddings and in every block (0: no Dropout modules at all, so
      the model builds with ``nnx.Rngs(params=key)``; > 0 needs a ``dropout`` or ``default``
      stream in ``rngs``).
  """

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               size: str | None = None, width: int | None = None, depth: int | None = None,
               heads: int | None = None, patch: int | None = None, mlp_ratio: float = 4.0,
               dropout: float = 0.0):
    h, w, c = _image_shape(input_shape, "vit")
    width, depth, heads = _vit_dims(size, width, depth, heads)
    _check_dropout("vit", dropout, rngs)
    if mlp_ratio <= 0:
      raise MemjaxError(f"vit mlp_ratio={mlp_ratio}; must be positive.")
    self.patch = _vit_patch(h, w, patch)
    tokens = (h // self.patch) * (w // self.patch)
    self.embed = nnx.Linear(self.patch * self.patch * c, width, rngs=rngs)
    self.position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (tokens, width)))
    self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None
    self.blocks = nnx.List([TransformerBlock(width, heads, rngs=rngs, mlp_ratio=mlp_ratio,
                                             dropout=dropout) for _ in range(depth)])
    self.norm = nnx.LayerNorm(width, rngs=rngs)
    self.head = nnx.Linear(width, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = _dropout(self.drop, self.embed(patchify(x, self.patch)) + self.position[...], train)
    for block in self.blocks:
      x = block(x, train)
    return self.head(self.norm(x).mean(axis=1))


GPT_SIZES: dict[str, dict[str, int]] = {
    # Character-level models of a few thousand short sentences, hundreds at once (see GPT).
    "pico": {"width": 32, "depth": 2, "heads": 2},    # ~32k parameters at V = 73, L = 64
    "nano": {"width": 64, "depth": 2, "heads": 4},    # ~114k, the default
    "micro": {"width": 128, "depth": 4, "heads": 4},  # ~820k, for accelerators
}


class GPT(nnx.Module):
  """Causal decoder-only transformer language model (GPT; Radford et al. 2018, 2019).

  Maps token ids x [B, L] to next-token logits [B, L, V]: a token embedding [V, width] plus a
  learned position embedding [L, width] (both initialised N(0, 0.02^2), as in GPT-2), ``depth``
  pre-norm :class:`TransformerBlock` s with ``causal=True`` (the logits at position t depend on
  tokens 0..t only), a final LayerNorm and a linear head to V logits (not tied to the
  embedding). Dropout (when ``dropout > 0``) acts on the embeddings and in every block, only
  while ``train``, drawing from the ``dropout`` stream the engine reseeds every step.

  memjax's token layout (``memjax.text``): x[i] = [BOS, c_1, ..., c_{n-1}, 0...] and targets
  y[i] = [c_1, ..., c_n, -1...] (BOS and padding are id 0, -1 is not scored), so position t
  predicts token t+1 and the padding after a sequence never reaches its logits.

  Default size ("nano": width 64, depth 2, heads 4, mlp_ratio 4; 113,609 parameters at L = 64,
  V = 73, the ``pydoc`` corpus). Measured on a 2-core CPU (2026-12; engine, Adam 3e-3, batch 32,
  each model on a random half of pydoc's 1,800 training sentences): nano reaches its best test
  loss (2.10 nats per character) after ~15 epochs, when its own sentences already score 0.57
  nats lower than held-out ones (1.5 at 30 epochs): it memorizes, which is what memjax
  measures. The engine's training epochs run at 1.5-1.9e5 tokens/s on the 2 cores, one model
  per chunk (~3 model-epochs/s of pydoc, evaluation excluded; ``benchmarks/lm_throughput.py``),
  so 128 models x 15 epochs train in about 11 minutes.
  "pico" (width 32, 32k parameters) trains ~2.5x faster and memorizes less (gap 0.27 nats at 20
  epochs, 0.54 at 40); "micro" (820k) is for accelerators.

  Args:
    input_shape: (L,), the sequence length.
    num_classes: V, the vocabulary size (token ids in [0, V)).
    size: a key of :data:`GPT_SIZES` ("pico": width 32, depth 2, heads 2; "nano", the default:
      width 64, depth 2, heads 4; "micro": width 128, depth 4, heads 4); explicit ``width``,
      ``depth`` and ``heads`` override the size's.
    width: token dimension D (default 64).
    depth: number of transformer blocks (default 2).
    heads: attention heads; ``width`` must be a multiple (default 4).
    mlp_ratio: hidden units of each block's MLP per unit of ``width``.
    dropout: dropout rate on the embeddings and in every block (0: no Dropout modules at all, so
      the model builds with ``nnx.Rngs(params=key)``; > 0 needs a ``dropout`` or ``default``
      stream in ``rngs``).

  Parameters: V w + L w (embeddings) + depth (12 w^2 + 13 w) (blocks at mlp_ratio 4: LayerNorms
  4w, attention 4 w^2 + 4 w, MLP 8 w^2 + 5 w) + 2 w (final LayerNorm) + w V + V (head).
  """

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, rngs: nnx.Rngs,
               size: str | None = None, width: int | None = None, depth: int | None = None,
               heads: int | None = None, mlp_ratio: float = 4.0, dropout: float = 0.0):
    length = _sequence_length(input_shape, "gpt")
    width, depth, heads = _transformer_dims("gpt", GPT_SIZES, GPT_SIZES["nano"], size, width,
                                            depth, heads)
    _check_dropout("gpt", dropout, rngs)
    if mlp_ratio <= 0:
      raise MemjaxError(f"gpt mlp_ratio={mlp_ratio}; must be positive.")
    if num_classes < 2:
      raise MemjaxError(f"gpt needs a vocabulary of at least 2 tokens (num_classes={num_classes}"
                        "); num_classes is the vocabulary size V of the text data.")
    init = nnx.initializers.normal(0.02)
    self.embed = nnx.Embed(num_classes, width, embedding_init=init, rngs=rngs)
    self.position = nnx.Param(init(rngs.params(), (length, width)))
    self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None
    self.blocks = nnx.List([TransformerBlock(width, heads, rngs=rngs, mlp_ratio=mlp_ratio,
                                             causal=True, dropout=dropout)
                            for _ in range(depth)])
    self.norm = nnx.LayerNorm(width, rngs=rngs)
    self.head = nnx.Linear(width, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x [B, L] token ids (int; floats holding ids are cast) -> logits [B, L, V] float32."""
    length = self.position.shape[0]
    if x.ndim != 2 or x.shape[1] != length:
      raise MemjaxError(f"gpt was built for token sequences [B, {length}]; got inputs of shape "
                        f"{tuple(x.shape)}.")
    h = self.embed(x.astype(jnp.int32)) + self.position[...]  # [B, L, width]
    h = _dropout(self.drop, h, train)
    for block in self.blocks:
      h = block(h, train)
    return self.head(self.norm(h)).astype(jnp.float32)


def _sequence_length(input_shape: Sequence[int], name: str) -> int:
  """L of token sequences [L]; a clear error for images or vectors of other shapes."""
  shape = tuple(input_shape)
  if len(shape) != 1 or shape[0] < 1:
    raise MemjaxError(f"{name} needs token sequences [L]; the data has features of shape {shape}. "
                      "Load text with memjax.load('text:PATH') or memjax.load('pydoc') (memjax "
                      "run --data text:PATH), or use an image model (mlp, cnn, vit, ...) for "
                      "this data.")
  return int(shape[0])


def patchify(x: jax.Array, patch: int) -> jax.Array:
  """Non-overlapping patches, row-major: [B, H, W, C] -> [B, (H/p)(W/p), p*p*C]."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


def _dropout(drop: nnx.Dropout | None, x: jax.Array, train: bool) -> jax.Array:
  return x if drop is None else drop(x, deterministic=not train)


def _check_dropout(name: str, dropout: float, rngs: nnx.Rngs) -> None:
  """A dropout rate in [0, 1), and a random stream to draw from when it is positive."""
  if not 0 <= dropout < 1:
    raise MemjaxError(f"{name} dropout={dropout}; use a rate in [0, 1).")
  if dropout > 0 and not _has_dropout_stream(rngs):
    raise MemjaxError(f"{name} with dropout={dropout} needs random numbers while training: build "
                      "it with nnx.Rngs(params=..., dropout=...) (or a 'default' stream).")


def _has_dropout_stream(rngs: nnx.Rngs) -> bool:
  try:
    rngs["dropout"]
  except KeyError:
    return False
  return True


def _vit_dims(size: str | None, width, depth, heads) -> tuple[int, int, int]:
  """(width, depth, heads): the size's, overridden by the explicit ones, else the defaults."""
  return _transformer_dims("vit", VIT_SIZES, {"width": 32, "depth": 2, "heads": 2}, size,
                           width, depth, heads)


def _transformer_dims(name: str, sizes: dict, defaults: dict, size: str | None, width, depth,
                      heads) -> tuple[int, int, int]:
  """(width, depth, heads) of model ``name``: ``sizes[size]``, overridden by the explicit ones,
  else ``defaults``; each checked to be a positive integer."""
  if size is not None and size not in sizes:
    raise MemjaxError(f"Unknown {name} size={size!r}; choose one of {', '.join(sizes)} or set "
                      "width, depth and heads.")
  dims = dict(defaults) | sizes.get(size, {})
  given = {"width": width, "depth": depth, "heads": heads}
  dims |= {k: v for k, v in given.items() if v is not None}
  for k, v in dims.items():
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
      raise MemjaxError(f"{name} {k}={v!r}; use a positive integer.")
  return dims["width"], dims["depth"], dims["heads"]


def _vit_patch(h: int, w: int, patch: int | None) -> int:
  """The patch side: checked if given, else the divisor whose grid is nearest 4 (8) a side."""
  divisors = [p for p in range(1, min(h, w) + 1) if h % p == 0 and w % p == 0]
  if patch is None:
    target = 4 if min(h, w) < 32 else 8
    return min(divisors, key=lambda p: abs(math.log(min(h, w) / p / target)))
  if not isinstance(patch, int) or patch not in divisors:
    raise MemjaxError(f"vit patch={patch!r} does not divide the {h}x{w} images into whole "
                      f"patches; use one of {', '.join(map(str, divisors))} (or leave patch "
                      "unset for the default).")
  return patch


REGISTRY: dict[str, Callable[..., nnx.Module]] = {
    "logreg": LogReg,
    "mlp": MLP,
    "cnn": SmallCNN,
    "vgg": VGG,
    "resnet": ResNet,
    "vit": ViT,
    "gpt": GPT,
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
  return imports.resolve(model, "model", REGISTRY, keyword="model",
                         expected="your flax NNX Module class or factory X(input_shape, "
                         "num_classes, *, rngs, **kwargs)")


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
