"""PyTorch baselines for ``benchmarks/throughput.py`` and ``benchmarks/lm_throughput.py``: what a
PyTorch user writes.

* :func:`torch_loop`, column (4): plain ``nn.Module``, ``torch.optim.SGD`` (Nesterov momentum,
  weight decay), Python loops over models, epochs and minibatches (eager mode).
* :func:`torch_func`, column (5): the PyTorch way to train an ensemble at once:
  ``torch.func.stack_module_state`` + ``vmap`` over ``functional_call`` for the loss, per-model
  gradients with ``torch.func.grad``, and a hand-written SGD-momentum update (the same maths as
  ``torch.optim.SGD(nesterov=True, weight_decay=...)``) on the stacked parameters with
  ``torch._foreach_*`` ops. Models are trained in chunks of at most ``chunk`` models (the same
  memory policy memjax uses), each chunk one after another.

Same architectures as memjax (``memjax.models``: logreg, mlp, cnn, vgg, resnet, vit, gpt) with
the same parameter counts (:func:`build_model` checks), same per-model subsets, batch size, steps
per epoch with wrap-around and optimizer; images are fed NCHW (PyTorch's native layout). Threads:
``torch.set_num_threads(2)`` (all cores of the 2-core benchmark machine). Runs on CUDA when
this torch build has it, else on the CPU.

Language models: :class:`GPT` is memjax's ``gpt`` in PyTorch (``nn.TransformerEncoderLayer``
blocks with a causal mask, pre-norm, tanh-GELU, LayerNorm eps 1e-6 as flax's), trained by the
same :func:`torch_loop` with ``loss=`` :func:`lm_loss`, ``metric=`` :func:`token_accuracy` and
``torch.optim.Adam`` (the Plan's ``optimizer="adam"``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _baselines_flax import CellResult, Plan, epoch_order


def setup(threads: int = 2) -> str:
  """Sets the thread count; returns the device torch will use."""
  torch.set_num_threads(threads)
  return "cuda" if torch.cuda.is_available() else "cpu"


def _sync(device: str) -> None:
  if device == "cuda":
    torch.cuda.synchronize()


# ---- models (mirror memjax.models) -------------------------------------------------------------
class ConvBN(nn.Module):
  """conv (no bias) + BatchNorm (+ ReLU), as memjax.models.ConvBN."""

  def __init__(self, c_in: int, c_out: int, stride: int = 1, kernel_size: int = 3):
    super().__init__()
    self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False)
    self.bn = nn.BatchNorm2d(c_out, momentum=0.1)

  def forward(self, x, relu: bool = True):
    y = self.bn(self.conv(x))
    return F.relu(y) if relu else y


class BasicBlock(nn.Module):
  """ResNet basic block, as memjax.models.BasicBlock."""

  def __init__(self, c_in: int, c_out: int, stride: int):
    super().__init__()
    self.conv1 = ConvBN(c_in, c_out, stride)
    self.conv2 = ConvBN(c_out, c_out)
    needs_projection = stride != 1 or c_in != c_out
    self.shortcut = ConvBN(c_in, c_out, stride, 1) if needs_projection else None

  def forward(self, x):
    y = self.conv2(self.conv1(x), relu=False)
    skip = x if self.shortcut is None else self.shortcut(x, relu=False)
    return F.relu(y + skip)


class ResNet(nn.Module):
  """CIFAR-style ResNet, as memjax.models.ResNet."""

  def __init__(self, c_in: int, num_classes: int, width: int = 16, depth: int = 1):
    super().__init__()
    self.stem = ConvBN(c_in, width)
    blocks, c = [], width
    for stage in range(3):
      for b in range(depth):
        blocks.append(BasicBlock(c, width * 2 ** stage, 2 if stage > 0 and b == 0 else 1))
        c = width * 2 ** stage
    self.blocks = nn.Sequential(*blocks)
    self.head = nn.Linear(c, num_classes)

  def forward(self, x):
    return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class VGG(nn.Module):
  """VGG-style network, as memjax.models.VGG: ``stages`` stages of ``depth`` ConvBN layers
  (``width * 2**s`` channels), a 2x2 max-pool after each stage, global average pooling, a head."""

  def __init__(self, input_shape, num_classes: int, width: int = 16, depth: int = 1,
               stages: int | None = None, norm: str = "batch"):
    super().__init__()
    if norm != "batch":
      raise ValueError(f"the torch VGG baseline has BatchNorm only (norm={norm!r})")
    h, w, c = input_shape
    max_stages = max(1, int(math.log2(min(h, w))) - 1)
    stages = min(4, max_stages) if stages is None else stages
    layers, c_in = [], c
    for s in range(stages):
      for _ in range(depth):
        layers.append(ConvBN(c_in, width * 2 ** s))
        c_in = width * 2 ** s
    self.layers = nn.ModuleList(layers)
    self.depth = depth
    self.head = nn.Linear(c_in, num_classes)

  def forward(self, x):
    for i, layer in enumerate(self.layers):
      x = layer(x)
      if (i + 1) % self.depth == 0 and min(x.shape[2:]) >= 2:
        x = F.max_pool2d(x, 2)
    return self.head(x.mean(dim=(2, 3)))


def _gelu_tanh(x):
  return F.gelu(x, approximate="tanh")  # jax.nn.gelu's default


class GPT(nn.Module):
  """memjax.models.GPT in PyTorch: token [B, L] -> logits [B, L, V].

  Token embedding + learned position embedding (N(0, 0.02^2)), ``depth`` pre-norm
  ``nn.TransformerEncoderLayer`` s (self-attention with a causal mask, a GELU MLP of
  ``mlp_ratio * width``, no dropout), a final LayerNorm and an untied linear head: the same
  parameter count as memjax's (torch's in_proj holds the q, k, v projections in one matrix).
  """

  def __init__(self, length: int, vocab: int, width: int = 64, depth: int = 2, heads: int = 4,
               mlp_ratio: float = 4.0):
    super().__init__()
    self.embed = nn.Embedding(vocab, width)
    nn.init.normal_(self.embed.weight, std=0.02)
    self.position = nn.Parameter(0.02 * torch.randn(length, width))
    self.blocks, self.norm = _pre_norm_blocks(width, depth, heads, mlp_ratio)
    self.head = nn.Linear(width, vocab)
    self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(length),
                         persistent=False)

  def forward(self, x):
    h = self.embed(x) + self.position
    for block in self.blocks:
      h = block(h, src_mask=self.mask, is_causal=True)
    return self.head(self.norm(h))


def _pre_norm_blocks(width: int, depth: int, heads: int, mlp_ratio: float):
  """``depth`` pre-norm ``nn.TransformerEncoderLayer`` s (tanh-GELU MLP of ``mlp_ratio * width``,
  LayerNorm eps 1e-6 as flax's, no dropout) and the final LayerNorm, as memjax's blocks."""
  blocks = nn.ModuleList([
      nn.TransformerEncoderLayer(width, heads, dim_feedforward=int(round(mlp_ratio * width)),
                                 dropout=0.0, activation=_gelu_tanh, layer_norm_eps=1e-6,
                                 batch_first=True, norm_first=True)
      for _ in range(depth)])
  return blocks, nn.LayerNorm(width, eps=1e-6)


class ViT(nn.Module):
  """memjax.models.ViT in PyTorch: images NCHW -> logits [B, num_classes].

  Non-overlapping ``patch`` x ``patch`` patches (flattened row-major as memjax's ``patchify``:
  patch row, patch column, channel) embedded by one linear layer, a learned position embedding
  (N(0, 0.02^2)), ``depth`` pre-norm ``nn.TransformerEncoderLayer`` s (no mask, tanh-GELU MLP of
  ``mlp_ratio * width``, LayerNorm eps 1e-6 as flax's, no dropout), a final LayerNorm, the mean
  over tokens and a linear head: memjax's parameter count. Sizes and the default patch are
  memjax's own (``size``, ``width``, ``depth``, ``heads``, ``patch``).
  """

  def __init__(self, input_shape, num_classes: int, size: str | None = None,
               width: int | None = None, depth: int | None = None, heads: int | None = None,
               patch: int | None = None, mlp_ratio: float = 4.0, dropout: float = 0.0):
    super().__init__()
    from memjax import models as models_lib
    if dropout:
      raise ValueError("the torch ViT baseline has no dropout")
    h, w, c = input_shape
    width, depth, heads = models_lib._vit_dims(size, width, depth, heads)
    self.patch = models_lib._vit_patch(h, w, patch)
    tokens = (h // self.patch) * (w // self.patch)
    self.embed = nn.Linear(self.patch * self.patch * c, width)
    self.position = nn.Parameter(0.02 * torch.randn(tokens, width))
    self.blocks, self.norm = _pre_norm_blocks(width, depth, heads, mlp_ratio)
    self.head = nn.Linear(width, num_classes)

  def forward(self, x):
    b, c, h, w = x.shape
    p = self.patch
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)  # [B, h, w, p, p, C]
    x = self.embed(x.reshape(b, (h // p) * (w // p), p * p * c)) + self.position
    for block in self.blocks:
      x = block(x)
    return self.head(self.norm(x).mean(dim=1))


def lm_loss(logits, targets):
  """The batch mean of each sequence's mean next-token cross-entropy over its scored positions
  (targets >= 0), as ``_baselines_flax.lm_loss``. logits [B, L, V], targets [B, L] -> scalar."""
  mask = targets >= 0
  ce = F.cross_entropy(logits.flatten(0, 1), targets.clamp(min=0).flatten(),
                       reduction="none").view(targets.shape)
  return ((ce * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def token_accuracy(logits, targets):
  """Fraction of scored tokens whose argmax is the target (as ``_baselines_flax``)."""
  mask = targets >= 0
  return ((logits.argmax(-1) == targets) & mask).sum() / mask.sum().clamp(min=1)


def build_model(workload) -> nn.Module:
  """The workload's architecture as a torch module (inputs NCHW for images), with memjax's
  parameter count (checked: a ValueError if they differ)."""
  model = _build(workload)
  count = sum(p.numel() for p in model.parameters())
  if count != workload.num_params:
    raise ValueError(f"the torch {workload.model} has {count:,} parameters, memjax's "
                     f"{workload.num_params:,} (model_kwargs {workload.model_kwargs})")
  return model


def _build(workload) -> nn.Module:
  shape, classes, kw = workload.data.feature_shape, workload.data.num_classes, workload.model_kwargs
  if workload.model == "gpt":
    from memjax import models as models_lib
    size = models_lib.GPT_SIZES["nano"] | models_lib.GPT_SIZES.get(kw.get("size"), {})
    dims = size | {k: v for k, v in kw.items() if k in ("width", "depth", "heads", "mlp_ratio")}
    if kw.get("dropout", 0.0):
      raise ValueError("the torch GPT baseline has no dropout")
    return GPT(shape[0], classes, **dims)
  if workload.model == "logreg":
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), classes))
  if workload.model == "mlp":
    sizes = [math.prod(shape), *kw.get("widths", (256, 256))]
    layers = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
      layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], classes))
  if workload.model == "cnn":
    h, w, c = shape
    channels, hidden = tuple(kw.get("channels", (32, 64))), kw.get("hidden", 128)
    layers, sizes = [], [c, *channels]
    for a, b in zip(sizes, sizes[1:]):
      layers += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    flat = (h // 2 ** len(channels)) * (w // 2 ** len(channels)) * channels[-1]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))
  if workload.model == "vgg":
    return VGG(shape, classes, **kw)
  if workload.model == "resnet":
    if kw.get("norm", "batch") != "batch":
      raise ValueError(f"the torch ResNet baseline has BatchNorm only (norm={kw['norm']!r})")
    return ResNet(shape[-1], classes, **{k: v for k, v in kw.items() if k != "norm"})
  if workload.model == "vit":
    return ViT(shape, classes, **kw)
  raise ValueError(f"no torch baseline for model {workload.model!r}")


def tensors(workload, device: str):
  """(x_train, y_train, x_test, y_test) torch tensors; images NHWC -> NCHW, tokens int64."""
  d = workload.data

  def x(a):
    a = np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if a.ndim == 4 else a
    a = a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a
    return torch.from_numpy(a).to(device)

  def y(a):
    return torch.from_numpy(a.astype(np.int64)).to(device)

  return x(d.x_train), y(d.y_train), x(d.x_test), y(d.y_test)


# ---- column (4): the plain loop ----------------------------------------------------------------
def torch_loop(workload, plan: Plan, cap_s: float, device: str, loss=F.cross_entropy,
               metric=None) -> CellResult:
  """Column (4): Python loops over models and minibatches, torch.optim.SGD (or Adam), eager.

  ``loss(logits, y) -> scalar`` is minimised; ``metric(logits, y) -> scalar`` is the reported
  test figure (default: accuracy; language models pass :func:`lm_loss`, :func:`token_accuracy`).
  """
  x_train, y_train, x_test, y_test = tensors(workload, device)
  _warm_up(workload, plan, x_train, y_train, device, loss=loss)
  done, seconds, accs = 0, 0.0, []
  for m in range(plan.num_models):
    torch.manual_seed(m)
    model = build_model(workload).to(device)
    opt = _optimizer(model, plan)
    rng = np.random.default_rng((1, m))
    in_idx = np.flatnonzero(plan.keep[m])
    model.train()
    t0 = time.perf_counter()
    for epoch in range(plan.epochs):
      order = torch.from_numpy(epoch_order(rng, in_idx, plan.steps, plan.batch_size)).to(device)
      for idx in order:
        opt.zero_grad(set_to_none=True)
        loss(model(x_train[idx]), y_train[idx]).backward()
        opt.step()
      _sync(device)
      if seconds + time.perf_counter() - t0 >= cap_s:
        break
    seconds += time.perf_counter() - t0
    done += epoch + 1
    if epoch + 1 == plan.epochs:
      accs.append(_accuracy(model, x_test, y_test, metric))
    if seconds >= cap_s:
      break
  return CellResult.make(plan, done, seconds, None, accs)


def _optimizer(model: nn.Module, plan: Plan) -> torch.optim.Optimizer:
  if plan.optimizer == "adam":  # weight_decay: L2 added to the gradient, as optax's chain
    return torch.optim.Adam(model.parameters(), lr=plan.learning_rate,
                            weight_decay=plan.weight_decay)
  return torch.optim.SGD(model.parameters(), lr=plan.learning_rate, momentum=plan.momentum,
                         nesterov=True, weight_decay=plan.weight_decay)


def _warm_up(workload, plan: Plan, x_train, y_train, device: str, steps: int = 3,
             loss=F.cross_entropy) -> None:
  """A few steps of a throwaway model (allocator, kernels, threads), not timed."""
  model = build_model(workload).to(device)
  opt = _optimizer(model, plan)
  for _ in range(steps):
    opt.zero_grad(set_to_none=True)
    loss(model(x_train[:plan.batch_size]), y_train[:plan.batch_size]).backward()
    opt.step()
  _sync(device)


@torch.no_grad()
def _accuracy(model: nn.Module, x_test, y_test, metric=None) -> float:
  model.eval()
  logits = model(x_test)
  if metric is not None:
    return float(metric(logits, y_test))
  return float((logits.argmax(-1) == y_test).float().mean())


# ---- column (5): torch.func ensemble -----------------------------------------------------------
def torch_func(workload, plan: Plan, cap_s: float, device: str, chunk: int) -> CellResult:
  """Column (5): vmap(grad(functional_call)) over stacked params, manual SGD momentum."""
  from torch.func import functional_call, grad, stack_module_state, vmap

  x_train, y_train, x_test, y_test = tensors(workload, device)
  base = _functional_model(workload).to("meta")

  def loss_fn(params, buffers, x, y):
    return F.cross_entropy(functional_call(base, (params, buffers), (x,)), y)

  vgrad = vmap(grad(loss_fn))
  vlogits = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))
  chunk = max(1, min(chunk, plan.num_models))
  done, seconds, warm_s, accs = 0.0, 0.0, 0.0, []
  for lo in range(0, plan.num_models, chunk):
    ids = range(lo, min(lo + chunk, plan.num_models))
    params, buffers = _stacked(workload, ids, device, stack_module_state)
    momentum = {k: torch.zeros_like(v) for k, v in params.items()}
    rngs = [np.random.default_rng((1, m)) for m in ids]
    in_idx = [np.flatnonzero(plan.keep[m]) for m in ids]
    if lo == 0:  # warm-up on copies: vmap/grad tracing, allocator; not timed
      t0 = time.perf_counter()
      warm = ({k: v.clone() for k, v in params.items()},
              {k: v.clone() for k, v in momentum.items()})
      idx = torch.zeros((len(ids), plan.batch_size), dtype=torch.long, device=device)
      for _ in range(2):
        _sgd(warm[0], warm[1], vgrad(warm[0], buffers, x_train[idx], y_train[idx]), plan)
      _sync(device)
      warm_s = time.perf_counter() - t0
      del warm
    t0 = time.perf_counter()
    steps_done, stopped = 0, False
    for _ in range(plan.epochs):
      orders = np.stack([epoch_order(r, i, plan.steps, plan.batch_size)
                         for r, i in zip(rngs, in_idx)], axis=1)  # [S, m, B]
      for idx in torch.from_numpy(orders).to(device):
        _sgd(params, momentum, vgrad(params, buffers, x_train[idx], y_train[idx]), plan)
        steps_done += 1
        if seconds + time.perf_counter() - t0 >= cap_s:
          stopped = True
          break
      if stopped:
        break
    _sync(device)
    seconds += time.perf_counter() - t0
    done += len(ids) * steps_done / plan.steps
    if not stopped:
      with torch.no_grad():
        pred = vlogits(params, buffers, x_test).argmax(-1)
      accs += (pred == y_test).float().mean(dim=1).tolist()
    if stopped or seconds >= cap_s:
      break
  note = f"chunks of {chunk}" if chunk < plan.num_models else ""
  result = CellResult.make(plan, done, seconds, warm_s, accs, note=note)
  result.extrapolated = done < plan.model_epochs - 1e-9
  return result


def _functional_model(workload) -> nn.Module:
  """A model whose BatchNorms use batch statistics only (vmap cannot update running stats)."""
  from torch.func import replace_all_batch_norm_modules_
  model = build_model(workload)
  replace_all_batch_norm_modules_(model)
  return model


def _stacked(workload, ids, device: str, stack_module_state):
  """Stacked (params, buffers) of freshly initialised models ``ids`` (seeded by model id)."""
  models = []
  for m in ids:
    torch.manual_seed(m)
    models.append(_functional_model(workload).to(device))
  params, buffers = stack_module_state(models)
  return {k: v.detach() for k, v in params.items()}, buffers


@torch.no_grad()
def _sgd(params: dict, momentum: dict, grads: dict, plan: Plan) -> None:
  """In-place SGD step, the maths of torch.optim.SGD(nesterov=True, weight_decay=wd)."""
  keys = list(params)
  p = [params[k] for k in keys]
  g = [grads[k] for k in keys]
  buf = [momentum[k] for k in keys]
  torch._foreach_add_(g, p, alpha=plan.weight_decay)
  torch._foreach_mul_(buf, plan.momentum)
  torch._foreach_add_(buf, g)
  torch._foreach_add_(g, buf, alpha=plan.momentum)
  torch._foreach_add_(p, g, alpha=-plan.learning_rate)
