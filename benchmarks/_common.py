"""What the throughput benchmarks share (``throughput.py``, ``lm_throughput.py``): the workload,
keep masks, memjax's chunk size, the matmul peak, machine state, logging and markdown tables.

Kept apart so that ``throughput.py`` can run ``lm_throughput.py``'s language-model columns
without a circular import.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import platform
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import memjax
from memjax import engine as engine_lib
from memjax.config import TrainConfig

from _baselines_flax import CellResult

KEEP_RATIO = 0.5


@dataclasses.dataclass
class Workload:
  """One architecture on one dataset (the attributes every column reads).

  Attributes:
    key: short name (w0a, w0b, w1, ..., w6).
    title: description printed above its tables.
    model, model_kwargs: the memjax model.
    data: the memjax Dataset (images [N, H, W, C], vectors, or token sequences [N, L]).
    epochs: epochs per model.
    learning_rate: constant learning rate of every column (SGD: 0.1 diverges for the CNNs;
      language models: Adam's).
    batch_size: examples (sequences) per step; None: the run's ``--batch-size``.
  """

  key: str
  title: str
  model: str
  model_kwargs: dict
  data: Any
  epochs: int
  learning_rate: float = 0.1
  batch_size: int | None = None

  @property
  def config(self) -> TrainConfig:
    return TrainConfig(model=self.model, model_kwargs=self.model_kwargs)

  @functools.cached_property
  def num_params(self) -> int:
    return engine_lib.model_fns(self.config, self.data).num_params

  @property
  def task(self) -> str:
    """"classification" or "language_model" (the Dataset's task)."""
    return getattr(self.data, "task", "classification")

  @property
  def sequence_length(self) -> int:
    """L of a language model's token sequences x [N, L]."""
    return int(self.data.x_train.shape[1])


def make_keep(num_models: int, num_examples: int, seed: int = 0) -> np.ndarray:
  """[M, N] bool: every model gets exactly round(0.5 * N) examples, drawn at random."""
  rng = np.random.default_rng(seed)
  n_in = int(round(KEEP_RATIO * num_examples))
  keep = np.zeros((num_models, num_examples), bool)
  for m in range(num_models):
    keep[m, rng.choice(num_examples, n_in, replace=False)] = True
  return keep


def memjax_chunking(config: TrainConfig, data, num_models: int):
  """What ``memjax.train`` picks for ``config`` on ``data`` and ``num_models`` models over all
  local devices: :func:`memjax.tuning.choose` (measured on this machine, or read from its cache;
  ``run.info["chunking"]`` reports the same), a :class:`memjax.tuning.Chunking`."""
  from memjax import tuning
  fns = engine_lib.model_fns(config, data)
  return tuning.choose(config.replace(num_models=num_models), data, fns, num_models,
                       engine_lib.make_mesh(), tuning.PROBE_STEPS)


def memjax_chunk_size(config: TrainConfig, data, num_models: int) -> int:
  """Models per chunk that ``memjax.train`` picks (:func:`memjax_chunking`)."""
  return memjax_chunking(config, data, num_models).chunk_size


# ---- peaks and machine state -------------------------------------------------------------------
def matmul_peak_jax(n: int = 4096, reps: int = 4) -> float:
  """GFLOP/s of a float32 n x n jnp.dot, best of ``reps`` (after one warm-up)."""
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.random.normal(key_a, (n, n), jnp.float32)
  b = jax.random.normal(key_b, (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, b).block_until_ready()
  best = math.inf
  for _ in range(reps):
    t0 = time.perf_counter()
    dot(a, b).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2.0 * n ** 3 / best / 1e9


def uptime() -> str:
  """The output of ``uptime`` (load averages), or os.getloadavg() if it is missing."""
  try:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "load average: %.2f, %.2f, %.2f" % os.getloadavg()


def machine() -> dict:
  import flax
  import optax
  info = {"python": platform.python_version(), "platform": platform.platform(),
          "cpus": os.cpu_count(), "jax": jax.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "memjax": memjax.__version__,
          "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()]}
  try:
    import torch
    info["torch"] = torch.__version__
  except ImportError:
    info["torch"] = None
  return info


def torch_device_or_none(skipped: str) -> str | None:
  """torch's device for the PyTorch columns (2 threads), or None (logging that ``skipped`` is
  skipped) when torch is not installed."""
  try:
    import _baselines_torch
    return _baselines_torch.setup(threads=2)
  except ImportError:
    log(f"torch is not installed: {skipped} skipped")
    return None


# ---- output ------------------------------------------------------------------------------------
def log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def table(header: list[str], rows: list[list[str]]) -> str:
  """A markdown table; every row has the header's number of cells."""
  widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
  line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
  sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
  return "\n".join([line(header), sep, *map(line, rows)])


def to_json(result) -> Any:
  """A cell for the JSON output: a dataclass as a dict (CellResult with its rate), else as is."""
  if isinstance(result, CellResult):
    return dataclasses.asdict(result) | {"model_epochs_per_s": result.me_per_s}
  if dataclasses.is_dataclass(result) and not isinstance(result, type):
    return dataclasses.asdict(result)
  return result
