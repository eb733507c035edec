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

Chunk size (``--chunk``, default "auto"): what ``memjax.train`` picks (measured by
:mod:`memjax.tuning` on this machine, cached). Measured on 2 cores before that existed
(M = 16, synthetic data, best of 2), chunks of 1, 4 and 16 models trained 174k, 134k and 116k
tokens/s: vmapping GPTs does not pay on a CPU, where one model's [B L, width] matmuls already
fill the cores.

The loop columns (2-4) train one model after another, so their tokens/s does not grow with M:
M models take M times as long, which is what a researcher gets by looping. Tokens/s counts
B x L positions per step per model (padding included: every column computes them); the data
line gives the fraction of them that are scored. Baseline cells get a time cap
(``--max-seconds``); memjax trains whole chunks until ``--memjax-max-seconds``; a capped cell
extrapolates per model-epoch and is marked ``*``. Every cell is measured (a loop's rate is not
carried over from a smaller M), so the cells of a row also show the noise of the machine: the
PyTorch loop's 2 threads slow down many times over when another process takes a core. Each column also reports the mean test token
accuracy of its fully trained models, proof that it really trained.

Data (``--data``): "pydoc" (default), the embedded corpus of 2,000 documentation sentences
(1,800 for training, L = 64, V = 73); "synthetic": N = 2,000 training and 256 test sequences of
L = 64 characters from 63 symbols (V = 64 with BOS), lengths uniform in [L/2, L], drawn from a
random sparse Markov chain (learnable, so accuracies show training) and tokenized by
``memjax.text.from_texts``; or any ``memjax.load`` spec of a language-model dataset
(``text:PATH``).

The memjax column trains with the engine's built-in language-model loss (the default
``TrainConfig.loss``: ``memjax.measures.token_cross_entropy``), the same maths as the
baselines' own (``_baselines_flax.sequence_cross_entropy``).

  python benchmarks/lm_throughput.py --quick          # smoke run, seconds
  python benchmarks/lm_throughput.py                  # M = 1, 16, 64, 256 (~5 min on 2 cores)
  python benchmarks/lm_throughput.py --models 1,64 --data synthetic --json /tmp/lm.json
"""

from __future__ import annotations

import argparse
import json
import os
import string
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
                             make_optimizer, token_accuracy)
from _baselines_flax import scanned_loop  # noqa: E402
from _common import (Workload, log, machine, make_keep, matmul_peak_jax,  # noqa: E402
                     memjax_chunk_size, table, to_json, torch_device_or_none, uptime)

COLUMNS = {
    "memjax": "(1) memjax engine",
    "flax_loop": "(2) Flax loop, jit step",
    "scanned": "(3) loop of scanned model",
    "torch_loop": "(4) PyTorch loop",
}
BASELINES = ("flax_loop", "scanned", "torch_loop")
QUICK_MODEL = {"width": 16, "depth": 1, "heads": 2}  # --quick's gpt (with tiny synthetic data)


# ---- data --------------------------------------------------------------------------------------
SYMBOLS = string.ascii_letters + string.digits + "-."  # 64 characters; V = symbols + 1 (BOS)


def synthetic_lm(num_train: int = 2000, num_test: int = 256, length: int = 64, vocab: int = 64,
                 seed: int = 0):
  """A language-model Dataset of random character sequences from a random sparse Markov chain.

  ``vocab - 1`` symbols (characters of :data:`SYMBOLS`); each row of the chain puts its mass on a
  few successors (Dirichlet(0.1) weights), the first symbol is uniform; lengths uniform in
  [L/2, L]. Tokenized by ``memjax.text.from_texts`` (char tokenizer, sequence length L): x [N, L],
  y [N, L] in memjax's layout, V = the symbols that occur + 1 (``vocab`` when all do).
  """
  from memjax import text
  if not 2 <= vocab <= len(SYMBOLS) + 1:
    raise MemjaxError(f"synthetic vocab={vocab}; use 2 to {len(SYMBOLS) + 1}.")
  rng = np.random.default_rng(seed)
  symbols = vocab - 1
  cumulative = np.cumsum(rng.dirichlet(np.full(symbols, 0.1), size=symbols), axis=1)

  def sequences(n):
    out = []
    for _ in range(n):
      size = rng.integers(length // 2, length + 1)
      seq = [rng.integers(symbols)]
      for u in rng.random(size - 1):
        seq.append(min(int(np.searchsorted(cumulative[seq[-1]], u)), symbols - 1))
      out.append("".join(SYMBOLS[k] for k in seq))
    return out

  return text.from_texts(sequences(num_train), sequences(num_test), name="synthetic_lm",
                         sequence_length=length, segmentation="synthetic Markov chain")


def load_data(spec: str, quick: bool):
  """(Dataset, note): ``spec`` "synthetic" or a memjax.load spec of LM data ("pydoc", ...)."""
  if spec == "synthetic" or quick and spec == "pydoc":
    sizes = dict(num_train=64, num_test=32, length=16, vocab=16) if quick else {}
    return synthetic_lm(**sizes), "synthetic Markov-chain characters"
  data = memjax.load(spec)
  if getattr(data, "task", "classification") != "language_model":
    raise MemjaxError(f"The benchmark trains language models; {spec!r} is a "
                      f"{getattr(data, 'task', 'classification')} dataset (x "
                      f"{data.x_train.shape}). Use --data pydoc, synthetic or text:PATH.")
  return data, f"memjax.load({spec!r})"


def make_plan(workload: Workload, num_models: int, batch_size: int) -> Plan:
  keep = make_keep(num_models, workload.data.num_train)
  return Plan(keep=keep, epochs=workload.epochs, batch_size=batch_size,
              steps=engine_lib.steps_per_epoch(keep, batch_size),
              learning_rate=workload.learning_rate, momentum=0.0, weight_decay=0.0,
              optimizer="adam")


def tokens_per_model_epoch(workload: Workload, plan: Plan) -> int:
  return plan.steps * plan.batch_size * workload.sequence_length


# ---- column (1): the memjax engine --------------------------------------------------------------
def memjax_config(workload: Workload, plan: Plan) -> TrainConfig:
  """The engine's configuration: the built-in loss (token cross-entropy), the Plan's Adam."""
  return TrainConfig(model=workload.model, model_kwargs=workload.model_kwargs,
                     batch_size=plan.batch_size, optimizer=make_optimizer(plan), augment="none",
                     seed=0)


def build_engine(workload: Workload, plan: Plan, chunk: int):
  """The Engine for ``chunk`` models (cached: e.g. M = 64 and 256 in chunks of 64 share the
  same compiled programs)."""
  key = (id(workload), chunk, plan.steps, plan.batch_size, plan.learning_rate)
  if key not in _ENGINES:
    _ENGINES[key] = engine_lib.Engine(workload.data, memjax_config(workload, plan), plan.steps,
                                      chunk)
  return _ENGINES[key]


_ENGINES: dict = {}


def memjax_chunk(workload: Workload, plan: Plan, chunk: str | int = "auto") -> int:
  """Models per chunk: ``chunk`` if a number, else what ``memjax.train`` would pick
  (``_common.memjax_chunk_size``)."""
  if chunk != "auto":
    return max(1, min(plan.num_models, int(chunk)))
  return memjax_chunk_size(memjax_config(workload, plan), workload.data, plan.num_models)


def run_memjax(workload: Workload, plan: Plan, chunk: int, cap_s: float) -> CellResult:
  """Column (1): chunks of ``chunk`` models, each trained epoch by epoch with the compiled
  program; stops after the chunk during which ``cap_s`` seconds of training were exceeded."""
  engine = build_engine(workload, plan, chunk)
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
  note = f"chunks of {chunk}" if chunk < plan.num_models else ""
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


def run_all(workload: Workload, args, runners: dict) -> dict:
  """{column: {M: CellResult | str (error)}}."""
  results: dict[str, dict[int, Any]] = {c: {} for c in runners}
  for m in args.models:
    plan = make_plan(workload, m, args.batch_size)
    for name, runner in runners.items():
      log(f"[M={m}] {name} ... (load {os.getloadavg()[0]:.2f})")
      t0 = time.perf_counter()
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
                      "(memjax: one chunk of M)")
  p.add_argument("--data", default="pydoc",
                 help="pydoc (default), synthetic, or a memjax.load spec of language-model data "
                      "(text:PATH); --quick: synthetic")
  p.add_argument("--models", default=None, help="comma list of M (default 1,16,64,256)")
  p.add_argument("--model-kwargs", default=None,
                 help='JSON kwargs of the gpt (default {}: nano; --quick: a tiny one)')
  p.add_argument("--epochs", type=int, default=None,
                 help="epochs per model (default 2: longer cells, less noise; --quick 1)")
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
  args.model_kwargs = (json.loads(args.model_kwargs) if args.model_kwargs
                       else (QUICK_MODEL if args.quick else {}))
  args.batch_size = args.batch_size or (8 if args.quick else 32)
  args.epochs = args.epochs or (1 if args.quick else 2)
  args.max_seconds = args.max_seconds or (2.0 if args.quick else 20.0)
  args.memjax_max_seconds = args.memjax_max_seconds or (2.0 if args.quick else 60.0)
  args.columns = args.columns.split(",")
  if args.quick and args.chunk == "auto":
    args.chunk = str(max(args.models))  # one chunk: the vmapped program is what is smoke-tested
  unknown = set(args.columns) - set(COLUMNS)
  if unknown:
    p.error(f"unknown columns {sorted(unknown)}; choose from {', '.join(COLUMNS)}")
  return args


def main(argv=None) -> dict:
  """Runs the benchmark, prints the tables; returns {"results", "workload", "text"}."""
  args = parse_args(argv)
  t_start = time.perf_counter()
  load_before = uptime()
  torch_device = None
  if "torch_loop" in args.columns:
    torch_device = torch_device_or_none("column (4) is")
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
