"""How many models per compiled chunk, and which convolution: measured, cached, reported.

A chunk of m models trains as one XLA program; the best m depends on the model, the batch, the
backend and the machine, and guessing it from a memory rule was wrong by up to 1.6x on CPU (a
chunk of 256 MLPs 64-256-256-10 overflows the caches; a conv net vmapped over models becomes a
grouped convolution, which XLA:CPU runs 2-4x slower than one model's). So :func:`choose` times a
few training steps of the real epoch program at each candidate and keeps the fastest:

* **candidates**: chunk sizes 1, 4, 16, 64, ... models per device up to the most that fit the
  memory budget (:func:`memjax.engine.bytes_per_model`) and the run's number of models; on CPU,
  for models with convolutions, each size with the "canonical" and the "im2col" convolution of
  :func:`memjax.models.conv2d` (on GPU/TPU convolutions are XLA's own, "lax").
* **measurement**: for each candidate, the engine's epoch program with :data:`PROBE_STEPS` steps
  is compiled and run until :data:`PROBE_SECONDS` have passed (at least twice, the first call a
  warm-up); the rate is model-steps per second of the fastest call. A size sweep stops early once
  a candidate runs at under :data:`SLOWER` of the best so far (larger chunks only get slower
  from there). The close contenders are then measured a second time and keep their better
  rate (a transient load had made the best candidate look 35% slower in one benchmark run).
* **cache**: the choice is stored on disk under a key of everything it depends on (model and its
  arguments, feature shape and dtype, classes, batch size and sampling, DP-SGD, precision,
  backend, device kind and count, jax and memjax versions), in
  ``$MEMJAX_CACHE_DIR/chunking.json`` (default ``~/.cache/memjax``), so a configuration is
  measured once per machine; a later run takes the fastest measured candidate its number of
  models allows.
* runs with fewer than :data:`MEASURE_MIN_MODELS` models skip the measurement (it would cost more
  than it saves), and so do runs over several processes (hosts), whose measurements could
  disagree; they take the largest chunk that fits (on CPU also :data:`CPU_CHUNK_BYTES`).

The choice does not change what is computed: every model's randomness depends on its index only,
so the records agree for any chunking to float rounding (XLA picks other kernels for other chunk
shapes; ~1e-6 for MLPs; conv nets' probabilities to 1e-4 after 2 epochs across chunk sizes and
the two convolutions, ``tests/test_tuning.py``).
``run.info["chunking"]`` (run.json) reports the choice, where it came from and every candidate's
measured rate.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time

import jax
import numpy as np

from memjax import engine as engine_lib, models as models_lib
from memjax.config import TrainConfig
from memjax.data import Dataset

MEASURE_MIN_MODELS = 64  # smaller runs take the memory rule (measuring costs 5-20 s)
PROBE_STEPS = 3  # optimizer steps per timed call
PROBE_SECONDS = 0.3  # time each candidate at least this long
SLOW_CANDIDATE_SECONDS = 10.0  # a sweep stops after a timed call this slow
SLOWER = 0.8  # a sweep stops at a candidate this much slower than the best so far
RETRY, RETRIES = 0.6, 3  # candidates within RETRY of the best (at most RETRIES) are timed twice
SIZES_PER_DEVICE = (1, 4, 16, 64, 256, 1024, 4096)
EVAL_BLOCKS = (32, 64, 128, 256, 1024)  # examples per evaluation block to try
EVAL_PROBE_EXAMPLES = 2048  # evaluation blocks are timed on up to this many test examples

# Runs too small to measure keep a chunk's training working set cache-sized on CPU (see
# memjax.engine.CPU_WORKING_SET_BYTES); tiny models still get chunks of 128 or more.
CPU_CHUNK_BYTES = engine_lib.CPU_WORKING_SET_BYTES


@dataclasses.dataclass(frozen=True)
class Chunking:
  """How a run's models are chunked.

  Attributes:
    chunk_size: models per compiled chunk, a multiple of the device count.
    conv: the convolution of :func:`memjax.models.conv2d` while training ("canonical", "im2col"
      or "lax"), or None for models without convolutions.
    source: "config" (chunk_size given), "memory" (the memory rule of small runs), "measured"
      or "cache" (measured on this machine before), "resumed" (the run's own choice).
    eval_block: examples per evaluation block (None: the engine's memory rule).
    candidates: every measured training candidate, {"chunk_size", "conv",
      "model_steps_per_s"}.
    eval_candidates: every measured evaluation block, {"eval_block", "model_examples_per_s"}.
    seconds: time spent measuring (0 unless measured now).
    max_chunk: the largest chunk the measurement could try, when its best was the largest it
      tried (a larger run measures again); None when every sweep found slower chunks above its
      best (the measurement holds for any run).
  """

  chunk_size: int
  conv: str | None
  source: str
  eval_block: int | None = None
  candidates: tuple[dict, ...] = ()
  eval_candidates: tuple[dict, ...] = ()
  seconds: float = 0.0
  max_chunk: int | None = None

  def describe(self) -> dict:
    return {"chunk_size": self.chunk_size, "conv": self.conv, "eval_block": self.eval_block,
            "source": self.source, "candidates": list(self.candidates),
            "eval_candidates": list(self.eval_candidates), "seconds": round(self.seconds, 3),
            "max_chunk": self.max_chunk}

  @classmethod
  def from_dict(cls, d: dict) -> "Chunking":
    return cls(chunk_size=int(d["chunk_size"]), conv=d.get("conv"), source=d["source"],
               eval_block=d.get("eval_block"), candidates=tuple(d.get("candidates", ())),
               eval_candidates=tuple(d.get("eval_candidates", ())),
               seconds=float(d.get("seconds", 0.0)), max_chunk=d.get("max_chunk"))


def has_convolutions(fns: engine_lib.ModelFns, data: Dataset) -> bool:
  """True when the model's forward pass contains a convolution (traced, not run)."""
  params, model_state = jax.eval_shape(fns.init, jax.random.key(0))
  x = jax.ShapeDtypeStruct((2, *data.feature_shape), data.x_train.dtype)
  with models_lib.conv_implementation("lax"):
    jaxpr = jax.make_jaxpr(lambda p, s, x: fns.apply(p, s, x, False)[0])(params, model_state, x)
  return _has_primitive(jaxpr.jaxpr, "conv_general_dilated")


def _has_primitive(jaxpr, name: str) -> bool:
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == name:
      return True
    if any(_has_primitive(sub, name) for sub in engine_lib._sub_jaxprs(eqn.params)):
      return True
  return False


def conv_candidates(platform: str, convolutions: bool) -> tuple[str | None, ...]:
  """The convolutions worth measuring: on CPU "canonical" and "im2col"; elsewhere XLA's own."""
  if not convolutions:
    return (None,)
  return ("canonical", "im2col") if platform == "cpu" else ("lax",)


def default_conv(platform: str, convolutions: bool, models_per_device: int) -> str | None:
  """The convolution of an unmeasured run: on CPU "canonical" for one model per device (its
  backward passes are convolutions XLA:CPU runs fast) and "im2col" for more (vmapped
  convolutions become grouped convolutions, slow on XLA:CPU); elsewhere "lax"."""
  if not convolutions:
    return None
  if platform != "cpu":
    return "lax"
  return "canonical" if models_per_device == 1 else "im2col"


def max_models_per_device(config: TrainConfig, fns, data: Dataset, num_models: int,
                          num_devices: int) -> int:
  """The most models per device that fit ``config.memory_budget`` (and the run)."""
  budget = config.memory_budget or engine_lib.default_memory_budget()
  per_model = engine_lib.bytes_per_model(fns, data, config)
  return int(max(1, min(budget // per_model, math.ceil(num_models / num_devices))))


def memory_rule(config: TrainConfig, fns, data: Dataset, num_models: int, num_devices: int,
                platform: str) -> int:
  """Models per device of a run too small to measure: the most that fit the memory budget and,
  on CPU, :data:`CPU_CHUNK_BYTES`."""
  per_device = max_models_per_device(config, fns, data, num_models, num_devices)
  if platform == "cpu":
    per_model = engine_lib.bytes_per_model(fns, data, config)
    per_device = min(per_device, max(1, CPU_CHUNK_BYTES // per_model))
  return per_device


def candidate_sizes(max_per_device: int) -> list[int]:
  """Models per device to try: 1, 4, 16, ... below ``max_per_device``, and it."""
  return sorted({s for s in SIZES_PER_DEVICE if s < max_per_device} | {max_per_device})


def choose(config: TrainConfig, data: Dataset, fns: engine_lib.ModelFns, num_models: int,
           mesh, steps_per_epoch: int, *, cache: bool = True) -> Chunking:
  """The chunking of a run: ``config.chunk_size`` if given, else measured (or cached).

  Args:
    config: the run's configuration (``chunk_size``, ``conv``, ``memory_budget``).
    data: the dataset.
    fns: the model's pure functions.
    num_models: M, the models of the run.
    mesh: the device mesh (chunk sizes are multiples of its size).
    steps_per_epoch: the run's S (the probe uses at most :data:`PROBE_STEPS` of them).
    cache: read and write the on-disk cache.

  Returns:
    :class:`Chunking`.
  """
  devices = mesh.size
  platform = mesh.devices.flat[0].platform
  convolutions = has_convolutions(fns, data)
  round_up = lambda n: max(devices, math.ceil(n / devices) * devices)
  if config.chunk_size is not None:
    size = round_up(config.chunk_size)
    conv = config.conv or default_conv(platform, convolutions, size // devices)
    return Chunking(size, conv if convolutions else None, "config")
  # Several processes must run the same programs in lockstep; their measurements (or caches)
  # could disagree, so they take the memory rule.
  if num_models < MEASURE_MIN_MODELS or jax.process_count() > 1:
    per_device = memory_rule(config, fns, data, num_models, devices, platform)
    conv = config.conv or default_conv(platform, convolutions, per_device)
    return Chunking(round_up(min(num_models, per_device * devices)),
                    conv if convolutions else None, "memory")
  top = max_models_per_device(config, fns, data, num_models, devices)
  convs = (config.conv,) if config.conv and convolutions else conv_candidates(platform,
                                                                              convolutions)
  key = cache_key(config, data, devices, convs)
  if cache:
    hit = _from_cache(_read_cache().get(key), top * devices)
    if hit is not None:
      return hit
  t0 = time.perf_counter()
  candidates, template = [], {}
  if config.private and config.dp_noise_multiplier is None:
    # The run calibrates sigma to its target epsilon after choosing its chunks; the noise's
    # value does not change the speed.
    config = config.replace(dp_noise_multiplier=1.0, dp_target_epsilon=None)
  peaked = True  # every sweep stopped at a slower candidate before the largest that fits
  for conv in convs:
    best = 0.0
    for per_device in candidate_sizes(top):
      rate, slowest_call = _probe(config, data, fns, mesh, per_device * devices, conv,
                                  min(steps_per_epoch, PROBE_STEPS), template)
      candidates.append({"chunk_size": per_device * devices, "conv": conv,
                         "model_steps_per_s": round(rate, 2)})
      best = max(best, rate)
      if rate < SLOWER * best or slowest_call > SLOW_CANDIDATE_SECONDS:
        break
    else:
      peaked = False
  # A second round for the close contenders: a transient load (another process, a library's
  # threads still spinning) can slow one candidate's first measurement by a third.
  best = max(c["model_steps_per_s"] for c in candidates)
  contenders = sorted((c for c in candidates if c["model_steps_per_s"] >= RETRY * best),
                      key=lambda c: -c["model_steps_per_s"])[:RETRIES]
  for candidate in contenders:
    rate, _ = _probe(config, data, fns, mesh, candidate["chunk_size"], candidate["conv"],
                     min(steps_per_epoch, PROBE_STEPS), template)
    candidate["model_steps_per_s"] = round(max(rate, candidate["model_steps_per_s"]), 2)
  winner = max(candidates, key=lambda c: c["model_steps_per_s"])
  eval_candidates = _measure_eval_blocks(config, data, fns, mesh, winner["chunk_size"],
                                         winner["conv"], template)
  eval_winner = max(eval_candidates, key=lambda c: c["model_examples_per_s"])
  chunking = Chunking(winner["chunk_size"], winner["conv"], "measured",
                      eval_winner["eval_block"], tuple(candidates), tuple(eval_candidates),
                      time.perf_counter() - t0, max_chunk=None if peaked else top * devices)
  if cache:
    _write_cache(key, chunking.describe())
  return chunking


def _probe(config: TrainConfig, data: Dataset, fns, mesh, chunk_size: int, conv: str | None,
           steps: int, template: dict) -> tuple[float, float]:
  """(model-steps per second, the slowest call's seconds) of ``chunk_size`` models training
  ``steps``-step epochs with the engine's own program.

  ``template`` caches one device's worth of initial states across calls (the probe's models are
  copies of them: their values do not change the speed, and initialising every candidate's
  chunk would cost a compilation each).
  """
  engine = engine_lib.Engine(data, config, steps, chunk_size, mesh, fns=fns, conv=conv,
                             eval_block=1)
  devices = mesh.size
  if "state" not in template:
    template["state"] = jax.device_get(engine.init_chunk(engine.shard(
        np.arange(devices, dtype=np.int32))))
  state = jax.tree.map(lambda a: engine.shard(np.repeat(a, chunk_size // devices, axis=0)),
                       template["state"])
  keep = np.random.default_rng(0).random((chunk_size, data.num_train)) < config.ratios[0]
  chunk = engine_lib.Chunk(engine, np.arange(chunk_size), keep, state=state)
  chunk.compile()
  times, epoch = [], 0
  start = time.perf_counter()
  while epoch < 2 or (time.perf_counter() - start < PROBE_SECONDS and epoch < 50):
    t0 = time.perf_counter()
    chunk.train_epoch(epoch)
    jax.block_until_ready(chunk.state)
    times.append(time.perf_counter() - t0)
    epoch += 1
    if times[-1] > SLOW_CANDIDATE_SECONDS:
      break
  timed = times[1:] or times
  return chunk_size * steps / min(timed), max(times)


def _measure_eval_blocks(config: TrainConfig, data: Dataset, fns, mesh, chunk_size: int,
                         conv: str | None, template: dict) -> list[dict]:
  """Evaluation rates (model-examples per second) of the chunk at :data:`EVAL_BLOCKS` examples
  per block (up to the engine's memory rule), on up to :data:`EVAL_PROBE_EXAMPLES` training
  examples; a sweep stops at a block under :data:`SLOWER` of the best."""
  limit = engine_lib.default_eval_block(fns, data, chunk_size // mesh.size,
                                        platform="memory budget only")
  n = min(data.num_train, EVAL_PROBE_EXAMPLES)  # training examples, as a "test" split
  probe = dataclasses.replace(data, x_test=data.x_train[:n], y_test=data.y_train[:n],
                              canaries=None)
  blocks = sorted({min(b, limit, probe.num_test) for b in EVAL_BLOCKS})
  results, best = [], 0.0
  for block in blocks:
    engine = engine_lib.Engine(probe, config, 1, chunk_size, mesh, fns=fns, conv=conv,
                               eval_block=block)
    state = jax.tree.map(lambda a: engine.shard(np.repeat(a, chunk_size // mesh.size, 0)),
                         template["state"])
    engine.evaluate(state, "test", with_queries=False)  # compile
    times = []
    start = time.perf_counter()
    while len(times) < 2 or (time.perf_counter() - start < PROBE_SECONDS and len(times) < 50):
      t0 = time.perf_counter()
      engine.evaluate(state, "test", with_queries=False)
      times.append(time.perf_counter() - t0)
    rate = chunk_size * probe.num_test / min(times)
    results.append({"eval_block": block, "model_examples_per_s": round(rate, 1)})
    best = max(best, rate)
    if rate < SLOWER * best:
      break
  return results


def _from_cache(entry: dict | None, max_chunk: int) -> Chunking | None:
  """A cached measurement for a run whose chunks hold at most ``max_chunk`` models: the fastest
  measured candidate that fits (None if none does)."""
  if entry is None:
    return None
  cached = Chunking.from_dict(entry)
  if cached.max_chunk is not None and cached.max_chunk < max_chunk:
    return None  # a larger chunk than measured might be faster still
  fitting = [c for c in cached.candidates if c["chunk_size"] <= max_chunk]
  if not fitting:
    return None
  best = max(fitting, key=lambda c: c["model_steps_per_s"])
  return dataclasses.replace(cached, chunk_size=best["chunk_size"], conv=best["conv"],
                             source="cache", seconds=0.0)


def cache_key(config: TrainConfig, data: Dataset, devices: int, convs) -> str:
  """Everything a measured chunking depends on, as one string."""
  device = jax.devices()[0]
  parts = {
      "model": models_lib.model_name(config.model), "model_kwargs": config.model_kwargs,
      "feature_shape": list(data.feature_shape), "dtype": str(data.x_train.dtype),
      "num_classes": data.num_classes, "batch_size": config.batch_size,
      "sampling": config.batch_sampling, "private": config.private,
      "optimizer": str(config.optimizer), "precision": config.precision,
      "convs": list(convs), "backend": device.platform,
      "device_kind": device.device_kind, "devices": devices, "jax": jax.__version__,
      "memjax": _memjax_version()}
  return json.dumps(parts, sort_keys=True, default=str)


def _memjax_version() -> str:
  import memjax
  return getattr(memjax, "__version__", "unknown")


def cache_path() -> str:
  """``$MEMJAX_CACHE_DIR/chunking.json`` (default ``~/.cache/memjax/chunking.json``)."""
  root = os.environ.get("MEMJAX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                            "memjax")
  return os.path.join(root, "chunking.json")


def _read_cache() -> dict:
  try:
    with open(cache_path()) as f:
      entries = json.load(f)
    return entries if isinstance(entries, dict) else {}
  except (OSError, ValueError):
    return {}


def _write_cache(key: str, value: dict) -> None:
  """Adds one entry, atomically (a failure to write only costs a later re-measurement)."""
  path = cache_path()
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    entries = _read_cache()
    entries[key] = value
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
      json.dump(entries, f, indent=1)
    os.replace(tmp, path)
  except OSError:
    pass

