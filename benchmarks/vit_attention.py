"""Self-attention inside the engine: ``nnx.MultiHeadAttention`` vs einsum versions of our own.

memjax's :class:`memjax.models.SelfAttention` wraps ``nnx.MultiHeadAttention``; this script
measures the alternatives it was chosen over, in the place that matters: the engine's compiled
epoch (vmap over models inside a ``lax.scan`` over SGD steps inside one ``jax.jit``). Every
variant is the same ViT with the same parameter count, only the attention differs:

* ``flax``: ``nnx.MultiHeadAttention`` (query, key, value, output projections; memjax's choice).
* ``fused``: one fused qkv ``nnx.Linear``, split, einsums ``bqhd,bkhd->bhqk`` and back.
* ``heads``: einsums with per-head kernels [D, H, D/H] for q, k, v and [H, D/H, D] out.

The variants are compiled once, then their epochs are timed in turns (``--rounds``), so that
load from other processes hits every variant alike; the minimum epoch time is reported as
model-epochs/s, with the compile time and XLA's cost analysis of one step (FLOPs, bytes).

  python benchmarks/vit_attention.py                                # w32 d2 h2, 32 models
  python benchmarks/vit_attention.py --width 64 --heads 4 --batch-size 64 --rounds 8
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import memjax
from memjax import engine as engine_lib
from memjax import models
from memjax.config import TrainConfig


class FusedAttention(nnx.Module):
  """One qkv projection, split into heads, einsums."""

  def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs, **_):
    self.heads = heads
    self.qkv = nnx.Linear(width, 3 * width, rngs=rngs)
    self.out = nnx.Linear(width, width, rngs=rngs)

  def __call__(self, x, train: bool = False):
    b, t, d = x.shape
    q, k, v = jnp.split(self.qkv(x).reshape(b, t, 3 * self.heads, d // self.heads), 3, axis=2)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // self.heads)
    y = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
    return self.out(y.reshape(b, t, d))


class HeadAttention(nnx.Module):
  """Per-head kernels: q, k, v [D, H, D/H], out [H, D/H, D]; einsums throughout."""

  def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs, **_):
    init = nnx.initializers.lecun_normal()
    shape = (width, heads, width // heads)
    self.q, self.k, self.v = (nnx.Param(init(rngs.params(), shape)) for _ in range(3))
    self.qkv_bias = nnx.Param(jnp.zeros((3, heads, width // heads)))
    self.out = nnx.Param(init(rngs.params(), (width, width)).reshape(heads, -1, width))
    self.out_bias = nnx.Param(jnp.zeros((width,)))

  def __call__(self, x, train: bool = False):
    bias = self.qkv_bias[...]
    q, k, v = (jnp.einsum("btd,dhe->bthe", x, w[...]) + bias[i]
               for i, w in enumerate((self.q, self.k, self.v)))
    logits = jnp.einsum("bqhe,bkhe->bhqk", q / math.sqrt(q.shape[-1]), k)
    y = jnp.einsum("bhqk,bkhe->bqhe", jax.nn.softmax(logits, axis=-1), v)
    return jnp.einsum("bqhe,hed->bqd", y, self.out[...]) + self.out_bias[...]


VARIANTS = {"flax": models.SelfAttention, "fused": FusedAttention, "heads": HeadAttention}


def vit_with(attention):
  """memjax's ViT class with ``attention`` in every block."""

  class ViT(models.ViT):
    def __init__(self, *args, **kwargs):
      saved, models.SelfAttention = models.SelfAttention, attention
      try:
        super().__init__(*args, **kwargs)
      finally:
        models.SelfAttention = saved

  return ViT


def compiled_epoch(name, data, kwargs, num_models, batch_size):
  """(engine, compiled epoch, its arguments) for the registered model ``name``."""
  config = TrainConfig(model=name, model_kwargs=kwargs, num_models=num_models, epochs=100,
                       batch_size=batch_size)
  keep = np.random.default_rng(0).random((num_models, data.num_train)) < 0.5
  engine = engine_lib.Engine(data, config, engine_lib.steps_per_epoch(keep, batch_size),
                             num_models)
  ids, keep = engine.shard(np.arange(num_models, dtype=np.int32)), engine.shard(keep)
  state = engine.init_chunk(ids)
  return engine, engine.compiled_train_epoch(state, ids, keep), [state, ids, keep]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data", default="digits")
  parser.add_argument("--models", type=int, default=32)
  parser.add_argument("--batch-size", type=int, default=32)
  parser.add_argument("--width", type=int, default=32)
  parser.add_argument("--depth", type=int, default=2)
  parser.add_argument("--heads", type=int, default=2)
  parser.add_argument("--rounds", type=int, default=8)
  parser.add_argument("--variants", default=",".join(VARIANTS))
  args = parser.parse_args(argv)
  data = memjax.load(args.data)
  kwargs = {"width": args.width, "depth": args.depth, "heads": args.heads}
  runs = {}
  for name in args.variants.split(","):
    models.REGISTRY[f"vit_{name}"] = vit_with(VARIANTS[name])
    runs[name] = (*compiled_epoch(f"vit_{name}", data, kwargs, args.models, args.batch_size), [])
  for epoch in range(args.rounds):
    for name, (engine, epoch_fn, state_args, times) in runs.items():
      t0 = time.perf_counter()
      state_args[0], loss = epoch_fn(*state_args, np.int32(epoch), engine.x_train,
                                     engine.y_train)
      jax.block_until_ready(loss)
      times.append(time.perf_counter() - t0)
  print(f"{args.data}, ViT {kwargs}, {args.models} models, batch {args.batch_size}, "
        f"{jax.device_count()} {jax.default_backend()} device(s)")
  for name, (engine, epoch_fn, _, times) in runs.items():
    cost = epoch_fn.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    print(f"{name:6s} {args.models / min(times):6.1f} model-epochs/s (min of {len(times)} "
          f"epochs: {min(times):.3f} s; median {np.median(times):.3f} s), compile "
          f"{engine.compile_seconds:.1f} s, params {engine.fns.num_params}, per step "
          f"{cost.get('flops', float('nan')):.3g} FLOP {cost.get('bytes accessed', float('nan')):.3g} B")


if __name__ == "__main__":
  main()
