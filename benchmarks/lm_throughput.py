"""Language-model training throughput (tokens/s) of memjax against the loops people write.

Every column does the same work in the same run: M GPTs (``memjax.models`` ``gpt``, default
size "nano": width 64, depth 2, heads 4), each on its own random half of the training sequences
(the same keep masks for every column), B sequences of L tokens per step, S = ceil(n_in / B)
steps per epoch (the last batch wraps around the model's own shuffled subset), a fresh shuffle
per model per epoch, Adam with a constant learning rate, and the same objective: the batch mean
of each sequence's mean next-token cross-entropy over its scored positions (targets -1 are not
scored; the token layout of ``memjax.text``: x = [BOS, c_1, ..., c_{n-1}, 0...], y = [c_1, ...,
c_n, -1...]).

Columns:
  (1) memjax: ``memjax.engine.Engine`` + ``Chunk``, the compiled epoch program timed epoch by
      epoch (compile excluded, reported apart): the models of a chunk vmapped inside one
      ``lax.scan`` per epoch, chunks one after another, the engine the ``memjax.train`` runner
      drives, with the runner's chunk size (below).
  (2) Flax loop: Python loops over models and minibatches calling one jitted NNX train step
      (``_baselines_flax.flax_loop``; the same GPT module, compiled once for all models).
  (3) scanned loop: a Python loop over models of one jitted ``lax.scan``-ned single-model epoch
      (``_baselines_flax.scanned_loop``): the strongest hand-written loop.
  (4) PyTorch loop: ``nn.TransformerEncoderLayer`` decoder with a causal mask, pre-norm,
      tanh-GELU, ``torch.optim.Adam``, eager, 2 threads (``_baselines_torch``).

Chunk size (``--chunk``, default "auto"): the runner's policy (``memjax.runner._chunk_size``: the
memory budget over the estimated bytes per model, and on CPU at most ``CPU_CHUNK_BYTES`` per
device), with the activations of the language-model step (targets [B, L]). On CPU the nano GPT's
step is ~290 MB by that estimate, so the policy trains one model per chunk; measured on 2 cores
(M = 16, synthetic data, best of 2), chunks of 1, 4 and 16 models trained 174k, 134k and 116k
tokens/s: vmapping GPTs does not pay on a CPU, where one model's [B L, width] matmuls already
fill the cores.

The loop columns (2-4) train one model after another, so their tokens/s does not grow with M:
M models take M times as long, which is what a researcher gets by looping. Tokens/s counts
B x L positions per step per model (padding included: every column computes them); the data
line gives the fraction of them that are scored. Baseline cells get a time cap
(``--max-seconds``); memjax trains whole chunks until ``--memjax-max-seconds``; a capped cell
extrapolates per model-epoch and is marked ``*``. Each column also reports the mean test token
accuracy of its fully trained models, proof that it really trained.

Data (``--data``): "auto" (default) is the embedded ``pydoc`` corpus when this memjax has
``memjax.load("pydoc")``, else "synthetic": N = 2,000 training and 256 test sequences of
L = 64 tokens from V = 64 (BOS 0 and 63 symbols), lengths uniform in [L/2, L], drawn from a
random sparse Markov chain (learnable, so accuracies show training). Any ``memjax.load`` spec
of a language-model dataset (``text:PATH``) works too.

The memjax column passes its own per-sequence loss (``TrainConfig.loss``, the same maths as
the baselines': ``_baselines_flax.sequence_cross_entropy``), so it runs on engines without
built-in language-model support; on such an engine (its evaluation blocks expect labels [N])
the Engine is built with a shape-agnostic ``_pad_blocks`` and the output says so. Training
never touches those blocks.

  python benchmarks/lm_throughput.py --quick          # smoke run, seconds
  python benchmarks/lm_throughput.py                  # M = 1, 16, 64, 256 (~10 min on 2 cores)
  python benchmarks/lm_throughput.py --models 1,64 --data synthetic --json /tmp/lm.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
import traceback
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import memjax
from memjax import engine as engine_lib
from memjax.config import TrainConfig
from memjax.errors import MemjaxError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules below

from _baselines_flax import (CellResult, Plan, flax_loop, lm_loss,  # noqa: E402
                             make_optimizer, sequence_cross_entropy, token_accuracy)
from _baselines_flax import scanned_loop  # noqa: E402
from throughput import log, machine, make_keep, matmul_peak_jax, table, uptime  # noqa: E402

COLUMNS = {
    "memjax": "(1) memjax engine",
    "flax_loop": "(2) Flax loop, jit step",
    "scanned": "(3) loop of scanned model",
    "torch_loop": "(4) PyTorch loop",
}
BASELINES = ("flax_loop", "scanned", "torch_loop")


@dataclasses.dataclass
class Workload:
  """GPTs on one language-model dataset (the attributes the baselines read).

  Attributes:
    key, title: short name and description.
    model, model_kwargs: the memjax model ("gpt") and its keyword arguments.
    data: the memjax Dataset: x [N, L] int32 tokens, y [N, L] int32 targets (-1 not scored).
    epochs: epochs per model.
    learning_rate: Adam's constant learning rate.
  """

  key: str
  title: str
  model: str
  model_kwargs: dict
  data: Any
  epochs: int
  learning_rate: float = 3e-3

  @property
  def config(self) -> TrainConfig:
    return TrainConfig(model=self.model, model_kwargs=self.model_kwargs)

  @property
  def num_params(self) -> int:
    return engine_lib.model_fns(self.config, self.data).num_params

  @property
  def sequence_length(self) -> int:
    return int(self.data.x_train.shape[1])


# ---- data --------------------------------------------------------------------------------------
def lm_dataset(x_train, y_train, x_test, y_test, vocab: int, name: str):
  """A memjax Dataset holding token sequences (int32 x and y [N, L]).

  Built with ``dataclasses.replace`` on a placeholder from ``memjax.from_arrays`` (which
  validates classification data), marked ``task="language_model"`` where the Dataset has that
  field.
  """
  length = x_train.shape[1]
  placeholder = memjax.from_arrays(np.zeros((2, length), np.float32), np.zeros(2, np.int32),
                                   np.zeros((2, length), np.float32), np.zeros(2, np.int32),
                                   name=name, num_classes=vocab, standardize=False)
  fields = {f.name for f in dataclasses.fields(placeholder)}
  extra = {"task": "language_model"} if "task" in fields else {}
  return dataclasses.replace(placeholder, x_train=x_train, y_train=y_train, x_test=x_test,
                             y_test=y_test, class_names=None, **extra)


def synthetic_lm(num_train: int = 2000, num_test: int = 256, length: int = 64, vocab: int = 64,
                 seed: int = 0):
  """Random token sequences in memjax's layout from a random sparse Markov chain.

  Token 0 is BOS (and padding); symbols 1..V-1 follow a chain whose every row puts its mass on
  a few successors (Dirichlet(0.1) weights), the first symbol uniform. Lengths n are uniform in
  [L/2, L]; x = [0, c_1, ..., c_{n-1}, 0...], y = [c_1, ..., c_n, -1...].
  """
  rng = np.random.default_rng(seed)
  symbols = vocab - 1
  transitions = rng.dirichlet(np.full(symbols, 0.1), size=symbols)
  cumulative = np.cumsum(transitions, axis=1)

  def split(n):
    x = np.zeros((n, length), np.int32)
    y = np.full((n, length), -1, np.int32)
    for i in range(n):
      size = rng.integers(length // 2, length + 1)
      seq = np.empty(size, np.int64)
      seq[0] = rng.integers(symbols)
      u = rng.random(size)
      for t in range(1, size):
        seq[t] = min(np.searchsorted(cumulative[seq[t - 1]], u[t]), symbols - 1)
      seq += 1  # ids 1..V-1
      x[i, 1:size] = seq[:-1]
      y[i, :size] = seq
    return x, y

  (x_train, y_train), (x_test, y_test) = split(num_train), split(num_test)
  return lm_dataset(x_train, y_train, x_test, y_test, vocab, "synthetic_lm")


def load_data(spec: str, quick: bool):
  """(Dataset, note): ``spec`` "auto", "synthetic" or a memjax.load spec of LM data."""
  if quick and spec == "auto":
    spec = "synthetic"
  if spec == "synthetic":
    sizes = dict(num_train=64, num_test=32, length=16, vocab=16) if quick else {}
    return synthetic_lm(**sizes), "synthetic Markov-chain tokens"
  if spec == "auto":
    try:
      data = memjax.load("pydoc")
    except MemjaxError as e:
      log(f"memjax.load('pydoc') is not available ({e}); using synthetic data")
      return synthetic_lm(), "synthetic Markov-chain tokens (this memjax has no 'pydoc')"
    return check_lm(data), "memjax.load('pydoc')"
  return check_lm(memjax.load(spec)), f"memjax.load({spec!r})"


def check_lm(data):
  if data.x_train.ndim != 2 or data.y_train.shape != data.x_train.shape:
    raise MemjaxError(f"The benchmark trains language models: it needs token sequences x and "
                      f"targets y [N, L]; the data has x {data.x_train.shape} and y "
                      f"{data.y_train.shape}. Use --data auto, synthetic, pydoc or text:PATH.")
  return data


def make_plan(workload: Workload, num_models: int, batch_size: int) -> Plan:
  keep = make_keep(num_models, workload.data.num_train)
  return Plan(keep=keep, epochs=workload.epochs, batch_size=batch_size,
              steps=engine_lib.steps_per_epoch(keep, batch_size),
              learning_rate=workload.learning_rate, momentum=0.0, weight_decay=0.0,
              optimizer="adam")


def tokens_per_model_epoch(workload: Workload, plan: Plan) -> int:
  return plan.steps * plan.batch_size * workload.sequence_length


# ---- column (1): the memjax engine --------------------------------------------------------------
def _pad_blocks_any(x: np.ndarray, y: np.ndarray, block: int):
  """``engine._pad_blocks`` for labels of any shape [n, ...] (targets [n, L])."""
  n = x.shape[0]
  blocks = math.ceil(n / block)
  block = math.ceil(n / blocks)
  pad = blocks * block - n

  def padded(a):
    a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a
    return a.reshape(blocks, block, *a.shape[1:])

  return padded(x), padded(y)


@contextlib.contextmanager
def _patched(module, name: str, value):
  old = getattr(module, name)
  setattr(module, name, value)
  try:
    yield
  finally:
    setattr(module, name, old)


def build_engine(workload: Workload, plan: Plan, chunk: int):
  """(Engine, note) for the workload's GPT with the per-sequence loss and the Plan's optimizer.

  An engine that predates language models cannot lay out targets [N, L] in its evaluation
  blocks (a ValueError); it is then built with :func:`_pad_blocks_any`, which training never
  uses, and the note says so.
  """
  key = (id(workload), chunk, plan.steps, plan.batch_size, plan.learning_rate)
  if key in _ENGINES:  # e.g. M = 64 and 256 in chunks of 64: the same compiled programs
    return _ENGINES[key]
  data = workload.data
  config = TrainConfig(model=workload.model, model_kwargs=workload.model_kwargs,
                       batch_size=plan.batch_size, loss=sequence_cross_entropy,
                       optimizer=make_optimizer(plan), augment="none", seed=0)
  fns = engine_lib.model_fns(config, data)
  # One evaluation block per split: the engine's default estimates memory with labels [B].
  eval_block = max(data.num_train, data.num_test)
  try:
    built = engine_lib.Engine(data, config, plan.steps, chunk, eval_block=eval_block,
                              fns=fns), ""
  except ValueError:
    with _patched(engine_lib, "_pad_blocks", _pad_blocks_any):
      engine = engine_lib.Engine(data, config, plan.steps, chunk, eval_block=eval_block,
                                 fns=fns)
    built = engine, "engine without LM evaluation: built with a shape-agnostic _pad_blocks"
  _ENGINES[key] = built
  return built


_ENGINES: dict = {}


def memjax_chunk(workload: Workload, plan: Plan, chunk: str | int = "auto") -> int:
  """Models per chunk: ``chunk`` if a number, else the runner's policy for this model.

  ``memjax.runner._chunk_size``'s rule (budget / bytes per model, on CPU also at most
  ``CPU_CHUNK_BYTES`` per device), with ``engine.bytes_per_model``'s terms: 4 copies of the
  parameters, the optimizer state, and the activations of one training step, here of the
  language-model loss on targets [B, L] (the engine's own estimate assumes labels [B]).
  """
  if chunk != "auto":
    return max(1, min(plan.num_models, int(chunk)))
  from memjax import runner
  config = TrainConfig(model=workload.model, model_kwargs=workload.model_kwargs,
                       batch_size=plan.batch_size)
  fns = engine_lib.model_fns(config, workload.data)
  params, model_state = jax.eval_shape(fns.init, jax.random.key(0))
  opt_state = jax.eval_shape(make_optimizer(plan).init, params)
  shape = (plan.batch_size, workload.sequence_length)
  x = jax.ShapeDtypeStruct(shape, jnp.int32)

  def loss(p, s, x, y):
    return lm_loss(fns.apply(p, s, x, True)[0], y)

  jaxpr = jax.make_jaxpr(jax.grad(loss))(params, model_state, x, x)
  per_model = (16 * fns.num_params + sum(a.size * a.dtype.itemsize
                                         for a in jax.tree.leaves(opt_state))
               + engine_lib._jaxpr_bytes(jaxpr.jaxpr))
  devices = len(jax.devices())
  per_device = max(1, engine_lib.default_memory_budget() // per_model)
  if jax.default_backend() == "cpu":
    per_device = min(per_device, max(1, runner.CPU_CHUNK_BYTES // per_model))
  size = min(plan.num_models, per_device * devices)
  return max(devices, math.ceil(size / devices) * devices)


def run_memjax(workload: Workload, plan: Plan, chunk: int, cap_s: float) -> CellResult:
  """Column (1): chunks of ``chunk`` models, each trained epoch by epoch with the compiled
  program; stops after the chunk during which ``cap_s`` seconds of training were exceeded."""
  engine, note = build_engine(workload, plan, chunk)
  assert engine.steps_per_epoch == plan.steps, (engine.steps_per_epoch, plan.steps)
  data = workload.data
  x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)

  @jax.jit
  def test_accuracy(params, model_state):  # [m]
    def one(p, s):
      return token_accuracy(engine.fns.apply(p, s, x_test, False)[0], y_test)
    return jax.vmap(one)(params, model_state)

  done, seconds, accs = 0, 0.0, []
  for lo in range(0, plan.num_models, chunk):
    hi = min(lo + chunk, plan.num_models)
    run = engine_lib.Chunk(engine, np.arange(lo, hi), plan.keep[lo:hi])
    run.compile()  # once per engine; excluded
    for epoch in range(plan.epochs):
      t0 = time.perf_counter()
      run.train_epoch(epoch)  # returns host losses: synchronised
      seconds += time.perf_counter() - t0
    done += (hi - lo) * plan.epochs
    accs += np.asarray(test_accuracy(run.state["params"],
                                     run.state["model_state"]))[:hi - lo].tolist()
    if seconds >= cap_s and hi < plan.num_models:
      break
  if chunk < plan.num_models:
    note = f"chunks of {chunk}" + (f"; {note}" if note else "")
  result = CellResult.make(plan, done, seconds, engine.compile_seconds, accs, note=note)
  result.extra = {"chunk_size": chunk, "models_run": done // plan.epochs}
  return result


# ---- the other columns ---------------------------------------------------------------------------
def column_runners(args, torch_device: str | None) -> dict[str, Callable]:
  """name -> f(workload, plan) -> CellResult for the selected columns."""
  cap = args.max_seconds
  runners = {
      "memjax": lambda w, p: run_memjax(w, p, memjax_chunk(w, p, args.chunk),
                                        args.memjax_max_seconds),
      "flax_loop": lambda w, p: flax_loop(w, p, cap, loss=lm_loss, metric=token_accuracy),
      "scanned": lambda w, p: scanned_loop(w, p, cap, loss=lm_loss, metric=token_accuracy)}
  if torch_device is not None:
    import _baselines_torch as tb
    runners["torch_loop"] = lambda w, p: tb.torch_loop(w, p, cap, torch_device, loss=tb.lm_loss,
                                                       metric=tb.token_accuracy)
  return {k: v for k, v in runners.items() if k in args.columns}


def reuse_capped(name: str, cells: dict, num_models: int) -> CellResult | None:
  """A loop column trains one model after another, so its rate does not depend on M: once a
  smaller M hit the cap, a larger M would only repeat that measurement on its first models."""
  done = [m for m, r in cells.items() if isinstance(r, CellResult) and m < num_models]
  if name not in BASELINES or not done or not cells[max(done)].extrapolated:
    return None
  previous = cells[max(done)]
  if previous.note.startswith("rate of M="):  # itself reused: name the measured M
    return previous
  return dataclasses.replace(previous, note=f"rate of M={max(done)} (a loop, capped there)")


def run_all(workload: Workload, args, runners: dict) -> dict:
  """{column: {M: CellResult | str (error)}}."""
  results: dict[str, dict[int, Any]] = {c: {} for c in runners}
  for m in args.models:
    plan = make_plan(workload, m, args.batch_size)
    for name, runner in runners.items():
      log(f"[M={m}] {name} ... (load {os.getloadavg()[0]:.2f})")
      t0 = time.perf_counter()
      reused = reuse_capped(name, results[name], m)
      if reused is not None:
        results[name][m] = reused
        log("    reused the capped rate of the smaller M")
        continue
      try:
        results[name][m] = runner(workload, plan)
      except Exception as e:  # report, keep going
        traceback.print_exc()
        results[name][m] = f"error: {type(e).__name__}"
      log(f"    {time.perf_counter() - t0:.1f} s")
  return results


# ---- the table ---------------------------------------------------------------------------------
def _num(x: float) -> str:
  return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def tokens_per_s(result, tokens: int) -> float | None:
  return result.me_per_s * tokens if isinstance(result, CellResult) else None


def report(workload: Workload, results: dict, models: list[int], batch_size: int) -> str:
  """The markdown tables: tokens/s with the ratios, then compile seconds and accuracies."""
  plan = make_plan(workload, 1, batch_size)
  tokens = tokens_per_model_epoch(workload, plan)
  data = workload.data
  scored = float((data.y_train >= 0).mean())
  head = ["column", *[f"M={m}" for m in models]]

  def cell(result, fmt):
    if result is None:
      return "-"
    return result if isinstance(result, str) else fmt(result)

  star = lambda r: "*" if r.extrapolated else ""
  rows = [[COLUMNS[c], *[cell(results[c].get(m), lambda r: _num(tokens_per_s(r, tokens)) + star(r))
                         for m in models]] for c in results]
  for c in (c for c in BASELINES if c in results and "memjax" in results):
    def ratio(m, c=c):
      a, b = results["memjax"].get(m), results[c].get(m)
      if isinstance(a, CellResult) and isinstance(b, CellResult):
        return f"{a.me_per_s / b.me_per_s:.2f}x"
      return "-"
    rows.append([f"memjax / {COLUMNS[c][4:]}", *[ratio(m) for m in models]])
  out = [f"### {workload.title}",
         f"{workload.num_params:,} params/model; N={data.num_train} sequences of L="
         f"{workload.sequence_length} (V={data.num_classes}; {100 * scored:.0f}% of positions "
         f"scored), n_in={int(plan.keep[0].sum())}, B={batch_size} sequences/step, "
         f"S={plan.steps} steps/epoch, {workload.epochs} epoch(s), Adam lr "
         f"{workload.learning_rate:g}; {tokens:,} tokens per model-epoch.", "",
         "Training tokens/s (B x L positions per step per model; `*` = cap hit, extrapolated "
         "from the part that ran), and memjax's multiple of each baseline:", "",
         table(head, rows), "",
         "Compile seconds (excluded above) and mean test token accuracy of the trained models:",
         ""]
  rows = []
  for c in results:
    if c != "torch_loop":
      rows.append([f"{COLUMNS[c]} compile s", *[cell(results[c].get(m), lambda r: "-" if r.compile_s
                                                       is None else f"{r.compile_s:.2f}")
                                                for m in models]])
  for c in results:
    rows.append([f"{COLUMNS[c]} accuracy", *[cell(results[c].get(m), lambda r: "-" if r.accuracy
                                                  is None else f"{r.accuracy:.3f}")
                                             for m in models]])
  out.append(table(head, rows))
  notes: dict[tuple[str, str], list[int]] = {}
  for c in results:
    for m, r in results[c].items():
      for note in (r.note.split("; ") if isinstance(r, CellResult) and r.note else ()):
        notes.setdefault((COLUMNS[c], note), []).append(m)
  if notes:
    out += ["", "Notes: " + "; ".join(f"{c} M={','.join(map(str, ms))}: {note}"
                                      for (c, note), ms in notes.items())]
  return "\n".join(out)


# ---- main --------------------------------------------------------------------------------------
def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--quick", action="store_true",
                 help="smoke run: M in {1, 2}, tiny synthetic data and model, 1 epoch, 2 s caps "
                      "(memjax: chunks of M)")
  p.add_argument("--data", default="auto",
                 help="auto (pydoc if this memjax has it, else synthetic), synthetic, or a "
                      "memjax.load spec of language-model data (pydoc, text:PATH)")
  p.add_argument("--models", default=None, help="comma list of M (default 1,16,64,256)")
  p.add_argument("--model-kwargs", default=None,
                 help='JSON kwargs of the gpt (default {}: nano; --quick: a tiny one)')
  p.add_argument("--epochs", type=int, default=1, help="epochs per model (default 1)")
  p.add_argument("--batch-size", type=int, default=None,
                 help="sequences per step (default 32; --quick 8)")
  p.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's constant LR")
  p.add_argument("--chunk", default="auto",
                 help="memjax models per chunk (default auto: the runner's policy)")
  p.add_argument("--max-seconds", type=float, default=None,
                 help="time cap per baseline cell (default 20; --quick: 2)")
  p.add_argument("--memjax-max-seconds", type=float, default=None,
                 help="memjax stops after the chunk that passes this many training seconds and "
                      "extrapolates (default 60; --quick: 2)")
  p.add_argument("--columns", default=",".join(COLUMNS),
                 help="comma list of memjax,flax_loop,scanned,torch_loop")
  p.add_argument("--json", default=None, help="write every number to this JSON file")
  args = p.parse_args(argv)
  args.models = [int(m) for m in (args.models or ("1,2" if args.quick else
                                                  "1,16,64,256")).split(",")]
  quick_model = {"width": 16, "depth": 1, "heads": 2}
  args.model_kwargs = (json.loads(args.model_kwargs) if args.model_kwargs
                       else (quick_model if args.quick else {}))
  args.batch_size = args.batch_size or (8 if args.quick else 32)
  args.max_seconds = args.max_seconds or (2.0 if args.quick else 20.0)
  args.memjax_max_seconds = args.memjax_max_seconds or (2.0 if args.quick else 60.0)
  args.columns = args.columns.split(",")
  if args.quick and args.chunk == "auto":
    args.chunk = str(max(args.models))  # one chunk: the vmapped program is what is smoke-tested
  unknown = set(args.columns) - set(COLUMNS)
  if unknown:
    p.error(f"unknown columns {sorted(unknown)}; choose from {', '.join(COLUMNS)}")
  return args


def to_json(result) -> Any:
  if isinstance(result, CellResult):
    return dataclasses.asdict(result) | {"model_epochs_per_s": result.me_per_s}
  return result


def main(argv=None) -> dict:
  """Runs the benchmark, prints the tables; returns {"results", "workload", "text"}."""
  args = parse_args(argv)
  t_start = time.perf_counter()
  load_before = uptime()
  torch_device = None
  if "torch_loop" in args.columns:
    try:
      import _baselines_torch
      torch_device = _baselines_torch.setup(threads=2)
    except ImportError:
      log("torch is not installed: column (4) is skipped")
  data, data_note = load_data(args.data, args.quick)
  kw = args.model_kwargs
  workload = Workload("gpt", f"GPT {json.dumps(kw) if kw else '(nano)'} on {data.name}: "
                      f"{data_note}", "gpt", kw, data, args.epochs, args.learning_rate)
  info = machine()
  peak = matmul_peak_jax(n=1024 if args.quick else 4096)
  lines = ["## memjax language-model training throughput", "",
           f"{time.strftime('%Y-%m-%d %H:%M %Z')}; jax {info['jax']} ({info['backend']}: "
           f"{', '.join(info['devices'])}), flax {info['flax']}, optax {info['optax']}, torch "
           f"{info['torch']} ({torch_device}), {info['cpus']} CPUs, {info['platform']}",
           f"Load before: {load_before}",
           f"Matmul peak (float32 jnp.dot, best of 4): {peak:.0f} GFLOP/s", ""]
  print("\n".join(lines), flush=True)
  runners = column_runners(args, torch_device)
  results = run_all(workload, args, runners)
  text = report(workload, results, args.models, args.batch_size)
  load_after = uptime()
  tail = (f"\nLoad before: {load_before}\nLoad after:  {load_after}\nTotal benchmark time: "
          f"{time.perf_counter() - t_start:.0f} s. Other processes may have been running (see "
          "the load averages on a 2-core machine); treat the numbers as noisy.")
  print(text + "\n" + tail, flush=True)
  if args.json:
    payload = {"args": vars(args), "machine": info, "load_before": load_before,
               "load_after": load_after, "matmul_peak_gflops": peak,
               "params": workload.num_params,
               "tokens_per_model_epoch": tokens_per_model_epoch(
                   workload, make_plan(workload, 1, args.batch_size)),
               "cells": {c: {str(m): to_json(r) for m, r in v.items()}
                         for c, v in results.items()}}
    with open(args.json, "w") as f:
      json.dump(payload, f, indent=1, default=str)
    print(f"JSON written to {args.json}")
  return {"results": results, "workload": workload, "text": "\n".join(lines) + text}


if __name__ == "__main__":
  main()
