"""Training and evaluation throughput of memjax against the loops people write without it.

Every column does the same work in the same run: M models of one architecture, each on its own
random subset of n_in = round(0.5 * N) training examples (the same keep masks for every column),
batch size B per model, S = ceil(n_in / B) steps per epoch (the last batch wraps around the
model's own shuffled subset), a fresh shuffle per model per epoch, SGD with Nesterov momentum
0.9, weight decay 5e-4 and a constant learning rate (the language model: Adam, see W6).

Workloads (``--workloads``, a comma list of keys, family names or "all"):
  w0 = w0a digits logistic regression 64-10 and w0b digits MLP 64-32-10 (10 epochs);
  w1   digits MLP 64-256-256-10 (10 epochs);
  w2   ``cnn`` conv32-conv64-fc128 (alias cnn), CIFAR-shaped synthetic data, 1 epoch;
  w3   ``resnet`` width 16, depth 1 (alias resnet), CIFAR-shaped, 1 epoch;
  w4   ``vgg`` width 16, depth 1: four conv-BN-ReLU stages of 16-128 channels (alias vgg);
  w5   ``vit`` patch 4 (64 tokens), width 64, depth 2, 4 heads (alias vit), CIFAR-shaped;
  w6   ``gpt`` nano on the embedded pydoc sentences (alias lm), Adam 3e-3, batches of 32
       sequences, 2 epochs: ``lm_throughput.py``'s columns (its memjax column is the engine
       epoch by epoch; torch.func is not run for it).
Default on CPU: w0,w1,w2 at M = 1, 16, 64, 256 (about 10 minutes on 2 cores with the evaluation
table), plus w3 off-CPU or with ``--resnet``; "all" adds w3-w6 (about 20 more minutes on 2
cores). ``--accelerator`` runs the accelerator-sized workloads (w2-w6 at M = 64, 256, 1024; the
CIFAR-shaped data at CIFAR-10's size, 50,000 training and 10,000 test examples; the GPT "micro")
unchanged on a GPU or TPU; on a CPU it refuses unless ``--force``.

Columns:
  (1) memjax: ``memjax.train(data, config=..., keep=...)``; throughput from
      ``run.info["timings"]["train_s"]`` (compile excluded), and also from the wall time of the
      whole call (design, init, compile, training, evaluation, records).
  (2) Flax loop: Python loops over models and minibatches calling one jitted NNX train step.
  (3) scanned loop: Python loop over models of one jitted ``lax.scan``-ned single-model epoch.
  (4) PyTorch loop: ``nn.Module`` + ``torch.optim.SGD``, Python loops, 2 threads (torch
      versions of every family, parameter counts checked equal to memjax's).
  (5) torch.func: ``stack_module_state`` + ``vmap(grad(functional_call))`` + manual SGD.

Reported: model-epochs per second (M * E / training seconds), the ratio memjax / each column,
compile (JAX) or warm-up (torch.func) seconds, achieved GFLOP/s against a float32 matmul peak
measured in the same run, and the mean test accuracy of the trained models (proof that every
column really trained). Baseline cells get a time cap (``--max-seconds``): when it hits, fewer
models / steps run, throughput is extrapolated per model-epoch and the cell is marked ``*``.

FLOPs (:func:`forward_flops_per_example`): XLA's cost analysis of one model's forward pass in
inference mode on a batch, divided by the batch: the pre-optimisation HLO of the lowered
program, convolutions traced as im2col (so every 3x3 tap counts, padding included, as in the
usual 2 k^2 C_in C_out H W; elementwise ops count one FLOP each). Training counts 3x forward
per example. A language model's example is one sequence of L tokens.

Evaluation table (``--eval-models``, default 16 on CPU): memjax's engine
(``memjax.engine.Engine`` + ``Chunk``, in the chunks memjax would pick) at M models times one
training epoch (after compile) and the evaluation of the train and test splits (after a
warm-up call), without and with query augmentations (images: ``augment="flip"``,
``query_augmentations=2``, the plain and the flipped image; text: the LiRA statistic on the plain
sequence, A = 1), and prints the evaluation's forward GFLOP/s next to training's (3x forward
FLOPs per example) and their ratio. ``--eval-only`` prints only these tables.

  python benchmarks/throughput.py --quick                     # smoke run (~1 min on 2 cores)
  python benchmarks/throughput.py --json /tmp/throughput.json # w0,w1,w2 (~10 min on 2 cores)
  python benchmarks/throughput.py --workloads all --json /tmp/all.json     # every family
  python benchmarks/throughput.py --workloads all --eval-only --eval-models 16,64
  python benchmarks/throughput.py --workloads w2 --models 1,16 --max-seconds 10
  python benchmarks/throughput.py --accelerator --json /tmp/gpu.json  # on a GPU / TPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import traceback
from typing import Any, Callable

import jax
import numpy as np

import memjax
from memjax import engine as engine_lib
from memjax import models as models_lib
from memjax.config import TrainConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules below

import lm_throughput  # noqa: E402
from _baselines_flax import CellResult, Plan, flax_loop, scanned_loop  # noqa: E402
from _common import (KEEP_RATIO, Workload, log, machine, make_keep,  # noqa: E402, F401
                     matmul_peak_jax, memjax_chunk_size, memjax_chunking, table, to_json,
                     torch_device_or_none, uptime)

COLUMNS = {
    "memjax": "(1) memjax (train_s)",
    "memjax_call": "(1) memjax (whole call)",
    "flax_loop": "(2) Flax loop, jit step",
    "scanned": "(3) loop of scanned model",
    "torch_loop": "(4) PyTorch loop",
    "torch_func": "(5) torch.func vmap",
}
BASELINES = ("flax_loop", "scanned", "torch_loop", "torch_func")
LOOP_COLUMNS = ("flax_loop", "scanned", "torch_loop")
WORKLOAD_KEYS = ("w0a", "w0b", "w1", "w2", "w3", "w4", "w5", "w6")
WORKLOAD_GROUPS = {  # --workloads names for several keys or by family
    "w0": ("w0a", "w0b"), "logreg": ("w0a",), "mlp": ("w0b", "w1"), "cnn": ("w2",),
    "resnet": ("w3",), "vgg": ("w4",), "vit": ("w5",), "lm": ("w6",), "gpt": ("w6",),
    "all": WORKLOAD_KEYS}
IMAGE_KEYS = ("w2", "w3", "w4", "w5")  # the workloads on the CIFAR-shaped data
ACCELERATOR = {"workloads": "w2,w3,w4,w5,w6", "models": "64,256,1024", "cnn_train": 50_000,
               "cnn_test": 10_000, "eval_models": "64,256", "lm_size": "micro"}


# ---- data and workloads ------------------------------------------------------------------------
def cifar_like(num_train: int, num_test: int = 512, seed: int = 0):
  """Synthetic CIFAR-shaped data (32x32x3, 10 classes): a smooth class template plus noise.

  Learnable in an epoch or two (so accuracies show real training), same shapes as CIFAR-10:
  x_train [num_train, 32, 32, 3] float32, y_train [num_train] int32 (and the test split).
  """
  rng = np.random.default_rng(seed)
  coarse = rng.normal(size=(10, 4, 4, 3)).astype(np.float32)
  templates = coarse.repeat(8, axis=1).repeat(8, axis=2)  # 8x8 blocks of one colour

  def split(n):
    y = rng.integers(0, 10, n).astype(np.int32)
    x = 0.3 * templates[y] + rng.normal(size=(n, 32, 32, 3)).astype(np.float32)
    return x, y

  (x_train, y_train), (x_test, y_test) = split(num_train), split(num_test)
  return memjax.from_arrays(x_train, y_train, x_test, y_test, name="cifar_like", num_classes=10)


def workload_keys(spec: str) -> list[str]:
  """``--workloads`` (comma list of keys, family names or "all") -> keys in WORKLOAD_KEYS order."""
  keys = set()
  for name in filter(None, (n.strip().lower() for n in spec.split(","))):
    if name not in WORKLOAD_KEYS and name not in WORKLOAD_GROUPS:
      raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOAD_KEYS)}, "
                       f"{', '.join(WORKLOAD_GROUPS)}")
    keys.update(WORKLOAD_GROUPS.get(name, (name,)))
  return [k for k in WORKLOAD_KEYS if k in keys]


def lm_workload(args) -> Workload:
  """W6: GPTs on the pydoc sentences, ``lm_throughput.py``'s setting (--quick: a tiny GPT on tiny
  synthetic text; --accelerator: the "micro" size)."""
  data, note = lm_throughput.load_data("pydoc", args.quick)
  kwargs = (dict(lm_throughput.QUICK_MODEL) if args.quick
            else {"size": ACCELERATOR["lm_size"]} if args.accelerator else {})
  name = json.dumps(kwargs) if kwargs else "nano: width 64, depth 2, 4 heads"
  return Workload("w6", f"W6 GPT ({name}) on {data.name} ({note}), Adam 3e-3",
                  "gpt", kwargs, data, args.epochs or (1 if args.quick else 2), 3e-3,
                  batch_size=8 if args.quick else 32)


def make_workloads(args) -> list[Workload]:
  """The workloads selected by ``--workloads`` (W3 also off-CPU or with ``--resnet``)."""
  keys = set(args.workloads)
  if args.resnet or (jax.default_backend() != "cpu" and not args.quick):
    keys.add("w3")
  digits = memjax.load("digits") if keys & {"w0a", "w0b", "w1"} else None
  cifar = cifar_like(args.cnn_train, args.cnn_test) if keys & set(IMAGE_KEYS) else None
  on_cifar = "on CIFAR-shaped synthetic data"

  def epochs(default):
    return args.epochs or (1 if args.quick else default)

  makers = {
      "w0a": lambda: Workload("w0a", "W0a digits logistic regression 64-10", "logreg", {},
                              digits, epochs(10)),
      "w0b": lambda: Workload("w0b", "W0b digits MLP 64-32-10", "mlp", {"widths": (32,)},
                              digits, epochs(10)),
      "w1": lambda: Workload("w1", "W1 digits MLP 64-256-256-10", "mlp", {}, digits,
                             epochs(10)),
      "w2": lambda: Workload("w2", f"W2 small CNN conv32-conv64-fc128 {on_cifar}", "cnn", {},
                             cifar, epochs(1), 0.02),
      "w3": lambda: Workload("w3", f"W3 ResNet (width 16, depth 1) {on_cifar}", "resnet", {},
                             cifar, epochs(1), 0.02),
      "w4": lambda: Workload("w4", f"W4 VGG (width 16, depth 1: 4 stages, 16-128 channels) "
                             f"{on_cifar}", "vgg", {"width": 16, "depth": 1}, cifar, epochs(1),
                             0.1),
      "w5": lambda: Workload("w5", f"W5 ViT (patch 4: 64 tokens, width 64, depth 2, 4 heads) "
                             f"{on_cifar}", "vit",
                             {"patch": 4, "width": 64, "depth": 2, "heads": 4}, cifar, epochs(1),
                             0.05),
      "w6": lambda: lm_workload(args),
  }
  return [makers[k]() for k in WORKLOAD_KEYS if k in keys]


def is_lm(workload: Workload) -> bool:
  return workload.task == "language_model"


def make_plan(workload: Workload, num_models: int, batch_size: int) -> Plan:
  """The cell's work: keep masks, epochs, B (the workload's own, else ``batch_size``), S and the
  optimizer (the language model: ``lm_throughput.make_plan``'s Adam)."""
  batch_size = workload.batch_size or batch_size
  if is_lm(workload):
    return lm_throughput.make_plan(workload, num_models, batch_size)
  keep = make_keep(num_models, workload.data.num_train)
  return Plan(keep=keep, epochs=workload.epochs, batch_size=batch_size,
              steps=engine_lib.steps_per_epoch(keep, batch_size),
              learning_rate=workload.learning_rate)


def memjax_config(workload: Workload, plan: Plan, **changes) -> TrainConfig:
  """memjax's TrainConfig for the plan's work (no augmentation), with ``changes``; the language
  model: ``lm_throughput.memjax_config`` (the plan's Adam)."""
  if is_lm(workload):
    return lm_throughput.memjax_config(workload, plan).replace(**changes)
  return TrainConfig(model=workload.model, model_kwargs=workload.model_kwargs,
                     epochs=plan.epochs, batch_size=plan.batch_size, schedule="constant",
                     learning_rate=plan.learning_rate, momentum=plan.momentum, nesterov=True,
                     weight_decay=plan.weight_decay, augment="none", seed=0).replace(**changes)


# ---- FLOPs -------------------------------------------------------------------------------------
_FORWARD_FLOPS: dict = {}


def forward_flops_per_example(workload: Workload, batch: int = 8) -> float:
  """Forward FLOPs of one model on one example (one sequence for a language model), inference
  mode, by XLA's cost analysis.

  The forward pass ``apply(params, state, x [batch, *feature_shape], train=False) -> logits`` of
  one model is lowered (abstract inputs: nothing runs or compiles) and the FLOPs of its
  pre-optimisation HLO are divided by ``batch``. Convolutions are traced as im2col
  (``memjax.models.conv_implementation``) on every backend, so every 3x3 tap counts, padding
  included (2 k^2 C_in C_out H_out W_out, the usual convention; ``lax.conv``'s count skips the
  padding taps, ~6% fewer for these nets) and the count does not depend on the device. Dense
  layers count 2 (in x out), elementwise ops (bias, ReLU, BatchNorm, softmax, LayerNorm) one per
  element; transcendentals are not FLOPs. The optimised program's count is not used: on XLA:CPU
  it adds the index arithmetic that the im2col gathers fuse into (+15% for the ResNet).
  Cached per (model, kwargs, data shape).
  """
  data = workload.data
  key = (workload.model, json.dumps(workload.model_kwargs, sort_keys=True, default=str),
         tuple(data.feature_shape), str(data.x_train.dtype), data.num_classes, batch)
  if key not in _FORWARD_FLOPS:
    fns = engine_lib.model_fns(workload.config, data)
    params, state = jax.eval_shape(fns.init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((batch, *data.feature_shape), data.x_train.dtype)

    def forward(params, state, x):  # a fresh function: jit caches traces per function object
      return fns.apply(params, state, x, False)[0]

    with models_lib.conv_implementation("im2col"):
      lowered = jax.jit(forward).lower(params, state, x)
    _FORWARD_FLOPS[key] = _flops(lowered) / batch
  return _FORWARD_FLOPS[key]


def _flops(lowered) -> float:
  """FLOPs of a lowered program's HLO (compiled only if the backend cannot analyse it)."""
  try:
    cost = lowered.cost_analysis()
  except Exception:  # some backends analyse compiled programs only
    cost = None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost or "flops" not in cost:
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"])


def flops_per_example(workload: Workload) -> float:
  """Training FLOPs per example: forward + backward = 3x :func:`forward_flops_per_example`
  (the optimizer update is not counted)."""
  return 3.0 * forward_flops_per_example(workload)


# ---- peaks -------------------------------------------------------------------------------------
def matmul_peak_torch(n: int = 4096, reps: int = 4) -> float | None:
  """GFLOP/s of a float32 n x n torch.mm on 2 threads (context for the torch columns)."""
  try:
    import torch
  except ImportError:
    return None
  torch.set_num_threads(2)
  a, b = torch.randn(n, n), torch.randn(n, n)
  torch.mm(a, b)
  best = math.inf
  for _ in range(reps):
    t0 = time.perf_counter()
    torch.mm(a, b)
    best = min(best, time.perf_counter() - t0)
  return 2.0 * n ** 3 / best / 1e9


# ---- the columns -------------------------------------------------------------------------------
def run_memjax(workload: Workload, plan: Plan, num_run: int | None = None
               ) -> tuple[CellResult, CellResult]:
  """Column (1): one memjax.train call -> (train_s based, whole-call based) results.

  With ``num_run`` < M (the memjax cap), only the first ``num_run`` models are trained (a whole
  number of memjax's chunks, so the per-chunk program is the same as for all M) and the
  throughput is extrapolated per model-epoch.
  """
  keep = plan.keep if num_run is None else plan.keep[:num_run]
  t0 = time.perf_counter()
  run = memjax.train(workload.data, config=memjax_config(workload, plan), keep=keep,
                     progress=False)
  wall = time.perf_counter() - t0
  timings = run.info["timings"]
  assert run.info["steps_per_epoch"] == plan.steps, (run.info["steps_per_epoch"], plan.steps)
  acc = float(np.asarray(run.test_correct).mean())
  chunk, ran = run.info["chunk_size"], keep.shape[0]
  note = f"chunks of {chunk}" if chunk < ran else ""
  if ran < plan.num_models:
    note = f"ran {ran} of {plan.num_models} models" + (f", {note}" if note else "")
  done = ran * plan.epochs
  extra = {"timings": dict(timings), "chunk_size": chunk, "models_run": ran}
  return tuple(CellResult(done, secs, timings["compile_s"], acc, ran < plan.num_models,
                          wall_s=wall, note=note, extra=extra)
               for secs in (timings["train_s"], wall))


def memjax_models_to_run(workload: Workload, plan: Plan, previous: Any, cap_s: float
                         ) -> int | None:
  """How many models memjax trains under its cap (None: all), from the last cell's rate."""
  if not isinstance(previous, CellResult):
    return None
  rate = previous.me_per_s
  if plan.model_epochs / rate <= cap_s:
    return None
  chunk = memjax_chunk_size(memjax_config(workload, plan), workload.data, plan.num_models)
  fits = max(chunk, int(cap_s * rate / plan.epochs) // chunk * chunk)
  return fits if fits < plan.num_models else None


def memjax_chunk(workload: Workload, batch_size: int, num_models: int) -> int:
  """torch.func's models per chunk: the memory budget over memjax's estimated bytes per model
  (torch.func vmaps its models like memjax; it gets no measured choice of its own)."""
  from memjax import tuning
  config = workload.config.replace(batch_size=batch_size)
  fns = engine_lib.model_fns(config, workload.data)
  return tuning.max_models_per_device(config, fns, workload.data, num_models, 1)


def column_runners(args, torch_device: str | None) -> dict[str, Callable]:
  """name -> f(workload, plan) -> CellResult, for the selected baseline columns (column (1)
  is :func:`run_memjax`)."""
  cap = args.max_seconds
  runners = {"flax_loop": lambda w, p: flax_loop(w, p, cap),  # loops over models
             "scanned": lambda w, p: scanned_loop(w, p, cap)}
  if torch_device is not None:
    import _baselines_torch as tb
    runners["torch_loop"] = lambda w, p: tb.torch_loop(w, p, cap, torch_device)
    runners["torch_func"] = lambda w, p: tb.torch_func(w, p, cap, torch_device,
                                                       memjax_chunk(w, p.batch_size,
                                                                    p.num_models))
  return {k: v for k, v in runners.items() if k in args.columns}


def lm_column_runners(args, torch_device: str | None) -> dict[str, Callable]:
  """The language model's columns, ``lm_throughput.py``'s (memjax: its engine epoch by epoch,
  in the chunks memjax picks; the loops with the per-token loss; no torch.func)."""
  lm_args = argparse.Namespace(max_seconds=args.max_seconds, chunk="auto",
                               memjax_max_seconds=args.memjax_max_seconds, columns=args.columns)
  return lm_throughput.column_runners(lm_args, torch_device)


def reuse_capped(name: str, cells: dict, num_models: int) -> CellResult | None:
  """For a loop over models (or chunks), a capped smaller-M cell already measured the rate.

  Loop columns train one model (torch.func: one chunk) after another, so their model-epochs/s
  does not depend on M; once a cell hit the cap, a larger M would only repeat that measurement
  on its first models.
  """
  done = [m for m, r in cells.items() if isinstance(r, CellResult) and m < num_models]
  if not done:
    return None
  previous = cells[max(done)]
  loops = name in LOOP_COLUMNS or previous.note.startswith("chunks")
  if not (loops and previous.extrapolated):
    return None
  return dataclasses.replace(previous, note=f"rate of M={max(done)} (loop; cap hit there)")


def run_workload(workload: Workload, args, runners: dict) -> dict:
  """All columns x all M for one workload -> {column: {M: CellResult | str (error)}}.

  Column (1) is :func:`run_memjax` unless ``runners`` has its own "memjax" (the language model).
  """
  results: dict[str, dict[int, Any]] = {c: {} for c in COLUMNS}
  for m in args.models:
    plan = make_plan(workload, m, args.batch_size)
    if "memjax" in args.columns and "memjax" not in runners:
      log(f"[{workload.key} M={m}] memjax ... (load {os.getloadavg()[0]:.2f})")
      previous = results["memjax"][max(results["memjax"])] if results["memjax"] else None
      try:
        num_run = memjax_models_to_run(workload, plan, previous, args.memjax_max_seconds)
        results["memjax"][m], results["memjax_call"][m] = run_memjax(workload, plan, num_run)
      except Exception as e:  # report, keep going
        traceback.print_exc()
        results["memjax"][m] = results["memjax_call"][m] = f"error: {type(e).__name__}"
    for name, runner in runners.items():
      log(f"[{workload.key} M={m}] {name} ... (load {os.getloadavg()[0]:.2f})")
      t0 = time.perf_counter()
      reused = reuse_capped(name, results[name], m)
      if reused is not None:
        results[name][m] = reused
        log("    reused the capped rate of the smaller M")
        continue
      try:
        results[name][m] = runner(workload, plan)
      except Exception as e:
        traceback.print_exc()
        results[name][m] = f"error: {type(e).__name__}"
      log(f"    {time.perf_counter() - t0:.1f} s")
  return results


# ---- tables ------------------------------------------------------------------------------------
def _cell(result, fmt: Callable[[CellResult], str | None]) -> str:
  if result is None:
    return "-"
  if isinstance(result, str):
    return result
  text = fmt(result)
  return "-" if text is None else text


def _num(x: float) -> str:
  return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def ratio(results: dict, column: str, m: int) -> float | None:
  a, b = results["memjax"].get(m), results[column].get(m)
  if isinstance(a, CellResult) and isinstance(b, CellResult):
    return a.me_per_s / b.me_per_s
  return None


def workload_tables(workload: Workload, results: dict, models: list[int], peak: float,
                    batch_size: int) -> str:
  """The markdown tables of one workload."""
  plan = make_plan(workload, 1, batch_size)
  fpe = flops_per_example(workload)
  gflop_me = fpe * plan.steps * plan.batch_size / 1e9
  n_in = int(plan.keep[0].sum())
  head = ["column", *[f"M={m}" for m in models]]
  present = [c for c in COLUMNS if results[c]]
  star = lambda r: "*" if r.extrapolated else ""
  example = f"sequence of L={workload.sequence_length}" if is_lm(workload) else "example"
  out = [f"### {workload.title}",
         f"{workload.num_params:,} params/model; N={workload.data.num_train}, n_in={n_in}, "
         f"B={plan.batch_size}, S={plan.steps} steps/epoch, {workload.epochs} epoch(s); "
         f"{fpe / 3e6:.3g} MFLOP per {example} forward (XLA), {fpe / 1e6:.3g} training (3x), "
         f"{gflop_me:.3g} GFLOP per model-epoch.", "",
         "Model-epochs per second (`*` = cap hit, extrapolated from the part that ran):", ""]
  out.append(table(head, [[COLUMNS[c], *[_cell(results[c].get(m),
                                                lambda r: _num(r.me_per_s) + star(r))
                                          for m in models]] for c in present]))
  out += ["", "memjax (train_s) / column:", ""]
  rows = []
  for c in [c for c in BASELINES if c in present]:
    rows.append([COLUMNS[c], *[f"{ratio(results, c, m):.2f}x" if ratio(results, c, m) else "-"
                               for m in models]])
  out.append(table(head, rows))
  out += ["", f"Achieved GFLOP/s (% of the {peak:.0f} GFLOP/s jnp.dot peak):", ""]
  out.append(table(head, [[COLUMNS[c], *[_cell(results[c].get(m), lambda r: (
      f"{r.me_per_s * gflop_me:.3g} ({100 * r.me_per_s * gflop_me / peak:.0f}%)" + star(r)))
                                         for m in models]] for c in present if c != "memjax_call"]))
  out += ["", "Compile (JAX, AOT) / warm-up (torch.func) seconds, excluded above; "
          "memjax whole-call wall seconds:", ""]
  rows = [[COLUMNS[c], *[_cell(results[c].get(m), lambda r: None if r.compile_s is None
                               else f"{r.compile_s:.2f}") for m in models]]
          for c in present if c not in ("memjax_call", "torch_loop")]
  if "memjax_call" in present:
    rows.append(["memjax whole call (wall s)",
                 *[_cell(results["memjax_call"].get(m), lambda r: f"{r.wall_s:.2f}")
                   for m in models]])
    rows.append(["memjax eval_s (in the call)",
                 *[_cell(results["memjax_call"].get(m),
                         lambda r: f"{r.extra['timings'].get('eval_s', 0.0):.2f}")
                   for m in models]])
  out.append(table(head, rows))
  out += ["", "Mean test accuracy of the trained models (models that finished all epochs):", ""]
  out.append(table(head, [[COLUMNS[c], *[_cell(results[c].get(m), lambda r: None
                                               if r.accuracy is None else f"{r.accuracy:.3f}")
                                         for m in models]]
                          for c in present if c != "memjax_call"]))
  notes = sorted({f"{COLUMNS[c]} M={m}: {r.note}" for c in present
                  for m, r in results[c].items() if isinstance(r, CellResult) and r.note})
  notes += workload_notes(workload, present)
  if notes:
    out += ["", "Notes: " + "; ".join(notes)]
  return "\n".join(out)


def workload_notes(workload: Workload, present: list[str]) -> list[str]:
  """What runs differently for this workload (the ViT's torch.func, the language model's
  columns)."""
  if workload.model == "vit" and "torch_func" in present:
    return ["(5) torch.func: vmap has no batching rule for PyTorch's CPU flash attention (nor its "
            "backward) and falls back to a loop over the models there (PyTorch's own warning)"]
  if not is_lm(workload):
    return []
  notes = ["(1) is memjax's engine epoch by epoch (lm_throughput.py's column, training only; no "
           "whole-call column), every column with Adam 3e-3 and the per-sequence mean token "
           "cross-entropy; accuracy = test token accuracy"]
  if "torch_func" not in present:
    notes.append("(5) torch.func is not run for language models (its loss and step are the "
                 "classification ones)")
  return notes


# ---- evaluation vs training -------------------------------------------------------------------
EVAL_PASSES = (("train", False), ("train", True), ("test", False), ("test", True))


@dataclasses.dataclass
class EvalResult:
  """memjax's engine on one workload at M models: one training epoch and the evaluations.

  Every time is in seconds for the ``models_run`` models (all M unless the cap hit; whole chunks
  of ``chunk_size``), compile and warm-up calls excluded.

  Attributes:
    num_models: M.
    models_run: models trained and evaluated (``extrapolated`` if fewer than M).
    chunk_size: models per chunk (what memjax picks, ``_common.memjax_chunking``, with its
      convolution and evaluation block).
    queries: A, forward passes per example of an evaluation with queries (images: 2, the plain
      and the flipped image; text: 1, the LiRA statistic on the plain sequence).
    examples_per_epoch: S * B examples each model trains on per epoch.
    split_sizes: {"train": N, "test": N_test}.
    compile_s: the epoch program's compile.
    train_s: one training epoch.
    eval_s: {"train" | "test" | "train+queries" | "test+queries": evaluation seconds}.
    first_call_s: the same passes' first calls on the first chunk (compile + one run).
    forward_flops: forward FLOPs per example (:func:`forward_flops_per_example`).
    extrapolated: the cap stopped it before all M models.
  """

  num_models: int
  models_run: int
  chunk_size: int
  queries: int
  examples_per_epoch: int
  split_sizes: dict
  compile_s: float
  train_s: float
  eval_s: dict = dataclasses.field(default_factory=dict)
  first_call_s: dict = dataclasses.field(default_factory=dict)
  forward_flops: float = 0.0
  extrapolated: bool = False

  def train_gflops(self) -> float:
    """Training GFLOP/s: 3x forward FLOPs x examples trained / seconds."""
    work = 3 * self.forward_flops * self.models_run * self.examples_per_epoch
    return work / max(self.train_s, 1e-12) / 1e9

  def eval_gflops(self, split: str, with_queries: bool) -> float:
    """Evaluation GFLOP/s: forward FLOPs x forward passes (A with queries) / seconds."""
    passes = self.queries if with_queries else 1
    work = self.forward_flops * passes * self.models_run * self.split_sizes[split]
    return work / max(self.eval_s[pass_name(split, with_queries)], 1e-12) / 1e9


def pass_name(split: str, with_queries: bool) -> str:
  return split + ("+queries" if with_queries else "")


def eval_config(workload: Workload, plan: Plan) -> TrainConfig:
  """The evaluation table's config: the plan's training, with 2 query augmentations (plain and
  flipped; training flips at random too) for images; text as it is (A = 1)."""
  if workload.data.x_train.ndim == 4:
    return memjax_config(workload, plan, augment="flip", query_augmentations=2)
  return memjax_config(workload, plan)


def run_eval(workload: Workload, num_models: int, batch_size: int, cap_s: float) -> EvalResult:
  """The evaluation table's cell: memjax's engine trains M models for one epoch and evaluates
  the train and test splits without and with queries, chunk after chunk, until ``cap_s``
  seconds have been timed (then whole chunks only; the rates are per model).

  Every pass's first call on the first chunk is a warm-up (compile + run, reported apart); the
  epoch program is compiled ahead of time (``Chunk.compile``). A pass that takes less than 0.2 s
  is repeated (training: epochs 0, 1, ...) and timed by its mean.
  """
  plan = make_plan(workload, num_models, batch_size)
  config = eval_config(workload, plan)
  chunking = memjax_chunking(config, workload.data, num_models)
  chunk = chunking.chunk_size
  engine = engine_lib.Engine(workload.data, config, plan.steps, chunk, conv=chunking.conv,
                             eval_block=chunking.eval_block)
  result = EvalResult(num_models=num_models, models_run=0, chunk_size=chunk,
                      queries=len(engine.queries), examples_per_epoch=plan.steps * plan.batch_size,
                      split_sizes=dict(engine.num_examples), compile_s=0.0, train_s=0.0,
                      eval_s={pass_name(*p): 0.0 for p in EVAL_PASSES},
                      forward_flops=forward_flops_per_example(workload))
  timed = 0.0
  for lo in range(0, num_models, chunk):
    hi = min(lo + chunk, num_models)
    run = engine_lib.Chunk(engine, np.arange(lo, hi), plan.keep[lo:hi])
    run.compile()  # once per engine
    result.train_s += _seconds(run.train_epoch)  # returns host losses: synchronised
    for split, queries in EVAL_PASSES:
      name = pass_name(split, queries)
      if lo == 0:
        result.first_call_s[name] = _seconds(lambda _: run.evaluate(split, queries), 0.0)
      result.eval_s[name] += _seconds(lambda _: run.evaluate(split, queries))  # host arrays
    result.models_run = hi
    timed = result.train_s + sum(result.eval_s.values())
    if timed >= cap_s and hi < num_models:
      result.extrapolated = True
      break
  result.compile_s = engine.compile_seconds
  return result


def _seconds(f: Callable[[int], Any], min_seconds: float = 0.2) -> float:
  """Seconds per call of ``f(i)`` (synchronous), i = 0, 1, ...: the mean of as many calls as
  take ``min_seconds`` (at least one), so that millisecond passes are timed over several."""
  calls, t0 = 0, time.perf_counter()
  while True:
    f(calls)
    calls += 1
    elapsed = time.perf_counter() - t0
    if elapsed >= min_seconds:
      return elapsed / calls


def eval_table(workload: Workload, results: dict[int, Any]) -> str:
  """The markdown table of :func:`run_eval` 's cells {M: EvalResult | error string}."""
  cells = {m: r for m, r in results.items() if isinstance(r, EvalResult)}
  example = "sequences" if is_lm(workload) else "examples"
  out = [f"#### {workload.key.upper()} evaluation vs training (memjax engine)", "",
         "Seconds for the models run (compile and warm-up calls excluded), forward GFLOP/s "
         f"(forward FLOPs x forward passes x {example} / s; training: 3x forward FLOPs per "
         "example trained) and the ratio to training's GFLOP/s (`*`: cap hit, whole chunks "
         "of the M models ran):", ""]
  rows = []
  for m, r in cells.items():
    star = "*" if r.extrapolated else ""
    train = r.train_gflops()
    rows.append([f"{m}{star}", f"training epoch ({r.examples_per_epoch:,} {example}/model)",
                 f"{r.train_s:.3g}", f"{train:.3g}", "1.00"])
    for split, queries in EVAL_PASSES:
      what = f"evaluate {split} split (N={r.split_sizes[split]:,})"
      if queries:
        what += f", A={r.queries} quer{'ies' if r.queries > 1 else 'y'}"
      gflops = r.eval_gflops(split, queries)
      rows.append([f"{m}{star}", what, f"{r.eval_s[pass_name(split, queries)]:.3g}",
                   f"{gflops:.3g}", f"{gflops / max(train, 1e-12):.2f}"])
  for m, r in results.items():
    if not isinstance(r, EvalResult):
      rows.append([str(m), str(r), "-", "-", "-"])
  out.append(table(["M", "pass", "seconds", "GFLOP/s", "/ training"], rows))
  notes = [f"M={m}: chunks of {r.chunk_size}, {r.models_run} models run, epoch program compile "
           f"{r.compile_s:.2f} s, first calls (compile + run) "
           + ", ".join(f"{k} {v:.2f} s" for k, v in r.first_call_s.items())
           for m, r in cells.items()]
  if cells:
    r = next(iter(cells.values()))
    queries = ("queries: the plain and the horizontally flipped image (augment='flip', "
               "query_augmentations=2; training flips at random too)" if r.queries > 1 else
               "A=1: the LiRA statistic on the plain sequence (text has no query augmentations)")
    notes.append(f"{r.forward_flops / 1e6:.3g} MFLOP forward per {example[:-1]}; " + queries)
  return "\n".join(out + ["", "Notes: " + "; ".join(notes)])


# ---- targets -----------------------------------------------------------------------------------
def targets(all_results: dict, models: list[int], peak: float, workloads: dict,
            batch_size: int) -> list[dict]:
  """The issue's targets (CPU targets, at M=64 or the largest M run) with PASS / MISS."""
  m = 64 if 64 in models else max(models)
  out = []

  def add(name, value, goal, ok, unit=""):
    status = "n/a" if value is None else ("PASS" if ok(value) else "MISS")
    out.append({"target": name, "M": m, "value": value, "goal": goal, "status": status,
                "unit": unit})

  if "w1" in all_results:
    r = all_results["w1"]
    add("W1 memjax / Flax loop", ratio(r, "flax_loop", m), ">= 1.5x", lambda v: v >= 1.5, "x")
    add("W1 memjax / PyTorch loop", ratio(r, "torch_loop", m), ">= 10x", lambda v: v >= 10, "x")
    add("W1 memjax / torch.func", ratio(r, "torch_func", m), ">= 5x", lambda v: v >= 5, "x")
    cell = r["memjax"].get(m)
    if isinstance(cell, CellResult):
      w = workloads["w1"]
      plan = make_plan(w, 1, batch_size)
      gflops = cell.me_per_s * flops_per_example(w) * plan.steps * plan.batch_size / 1e9
      add("W1 memjax % of matmul peak", 100 * gflops / peak, ">= 60%", lambda v: v >= 60, "%")
      add("W1 memjax compile", cell.compile_s, "< 3 s", lambda v: v < 3, " s")
  if "w2" in all_results:
    add("W2 memjax / PyTorch loop", ratio(all_results["w2"], "torch_loop", m), ">= 1.2x",
        lambda v: v >= 1.2, "x")
  for key in ("w0a", "w0b"):
    if key in all_results:
      for c in BASELINES:
        add(f"{key.upper()} memjax / {COLUMNS[c][4:]}", ratio(all_results[key], c, m),
            "(shown)", lambda v: True, "x")
  return out


def targets_table(rows: list[dict]) -> str:
  def value(r):
    v = r["value"]
    return "-" if v is None else f"{v:.3g}{r['unit']}"
  status = lambda r: r["status"] if r["goal"] != "(shown)" else "-"
  return table(["target", "M", "measured", "goal", "status"],
               [[r["target"], str(r["M"]), value(r), r["goal"], status(r)] for r in rows])


# ---- main --------------------------------------------------------------------------------------
def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--quick", action="store_true",
                 help="smoke run: M in {1,16}, 1 epoch, W0+W1, 5 s caps, 512 CIFAR-shaped "
                      "examples, tiny GPT, evaluation table at M=4")
  p.add_argument("--workloads", default=None,
                 help="comma list of w0 (w0a,w0b), w1, ..., w6, family names (logreg, mlp, cnn, "
                      "resnet, vgg, vit, lm) or all (default w0,w1,w2; --quick: w0,w1; "
                      "--accelerator: w2-w6)")
  p.add_argument("--models", default=None,
                 help="comma list of M (default 1,16,64,256; --accelerator: 64,256,1024)")
  p.add_argument("--epochs", type=int, default=None,
                 help="epochs for every workload (default: 10 for W0/W1, 2 for W6, 1 for the "
                      "CIFAR-shaped W2-W5)")
  p.add_argument("--batch-size", type=int, default=128,
                 help="examples per step (W6: 32 sequences)")
  p.add_argument("--max-seconds", type=float, default=None,
                 help="time cap per baseline cell (default 20; --quick: 5)")
  p.add_argument("--memjax-max-seconds", type=float, default=45.0,
                 help="memjax trains a whole number of its chunks of models and extrapolates "
                      "when the previous M's rate predicts more training seconds than this")
  p.add_argument("--columns", default=",".join(["memjax", *BASELINES]),
                 help="comma list of memjax,flax_loop,scanned,torch_loop,torch_func")
  p.add_argument("--cnn-train", type=int, default=None,
                 help="training examples of the CIFAR-shaped data, n_in = half (default 2,560; "
                      "--quick: 512; --accelerator: 50,000)")
  p.add_argument("--cnn-test", type=int, default=None,
                 help="test examples of the CIFAR-shaped data (default 512; --quick: 128; "
                      "--accelerator: 10,000)")
  p.add_argument("--resnet", action="store_true", help="also run W3 (ResNet) on CPU")
  p.add_argument("--eval-models", default=None,
                 help="comma list of M for the evaluation tables, 0 for none (default 16; "
                      "--quick: 4; --accelerator: 64,256)")
  p.add_argument("--eval-max-seconds", type=float, default=None,
                 help="an evaluation cell stops after the chunk that passes this many timed "
                      "seconds and extrapolates per model (default 60; --quick: 10)")
  p.add_argument("--eval-only", action="store_true",
                 help="only the evaluation tables (no training-throughput columns)")
  p.add_argument("--accelerator", action="store_true",
                 help="accelerator-sized workloads: w2-w6 at M = 64, 256, 1024, 50,000 "
                      "CIFAR-shaped training examples, the micro GPT; for a GPU or TPU")
  p.add_argument("--force", action="store_true", help="run --accelerator on a CPU anyway")
  p.add_argument("--json", default=None, help="write every number to this JSON file")
  args = p.parse_args(argv)
  if args.accelerator and jax.default_backend() == "cpu" and not args.force:
    p.error("--accelerator runs the accelerator-sized workloads (M up to 1,024, 50,000 "
            "CIFAR-shaped examples, ResNet, VGG, ViT, GPT), hours of work for a CPU, and "
            f"jax's backend here is the CPU ({jax.devices()[0]}). Run it on a GPU or TPU, drop "
            "--accelerator for the CPU-sized workloads, or add --force to run it here anyway.")

  def default(value, normal, quick, accelerator):
    if value is not None:
      return value
    return quick if args.quick else accelerator if args.accelerator else normal

  try:
    args.workloads = workload_keys(default(args.workloads, "w0,w1,w2", "w0,w1",
                                           ACCELERATOR["workloads"]))
  except ValueError as e:
    p.error(str(e))
  args.models = [int(m) for m in default(args.models, "1,16,64,256", "1,16",
                                         ACCELERATOR["models"]).split(",")]
  args.cnn_train = default(args.cnn_train, 2560, 512, ACCELERATOR["cnn_train"])
  args.cnn_test = default(args.cnn_test, 512, 128, ACCELERATOR["cnn_test"])
  args.eval_models = [int(m) for m in default(args.eval_models, "16", "4",
                                              ACCELERATOR["eval_models"]).split(",") if int(m)]
  args.eval_max_seconds = args.eval_max_seconds or (10.0 if args.quick else 60.0)
  args.max_seconds = args.max_seconds or (5.0 if args.quick else 20.0)
  args.columns = args.columns.split(",")
  unknown = set(args.columns) - {"memjax", *BASELINES}
  if unknown:
    p.error(f"unknown columns {sorted(unknown)}; choose from memjax, {', '.join(BASELINES)}")
  if args.eval_only and not args.eval_models:
    p.error("--eval-only needs evaluation models (--eval-models, e.g. 16)")
  return args


def eval_to_json(result) -> Any:
  """An evaluation cell for the JSON: its fields and its GFLOP/s (training and each pass) and
  each pass's ratio to training's."""
  if not isinstance(result, EvalResult):
    return result
  train = result.train_gflops()
  passes = {pass_name(*p): result.eval_gflops(*p) for p in EVAL_PASSES}
  return to_json(result) | {"train_gflops": train, "eval_gflops": passes,
                            "eval_vs_train": {k: v / max(train, 1e-12)
                                              for k, v in passes.items()}}


def run_evals(workload: Workload, args) -> dict[int, Any]:
  """{M: EvalResult | error string} for ``--eval-models``."""
  out = {}
  for m in args.eval_models:
    log(f"[{workload.key} eval M={m}] memjax engine ... (load {os.getloadavg()[0]:.2f})")
    t0 = time.perf_counter()
    try:
      out[m] = run_eval(workload, m, args.batch_size, args.eval_max_seconds)
    except Exception as e:  # report, keep going
      traceback.print_exc()
      out[m] = f"error: {type(e).__name__}"
    log(f"    {time.perf_counter() - t0:.1f} s")
  return out


def header_lines(args, info: dict, torch_device, peak: float, torch_peak, load_before: str
                 ) -> list[str]:
  """The run's description: versions, devices, load, matmul peak, caps, backend notes."""
  lines = ["## memjax " + ("evaluation" if args.eval_only else "training and evaluation")
           + " throughput", "",
           f"{time.strftime('%Y-%m-%d %H:%M %Z')}; jax {info['jax']} ({info['backend']}: "
           f"{', '.join(info['devices'])}), flax {info['flax']}, optax {info['optax']}, torch "
           f"{info['torch']} ({torch_device}), {info['cpus']} CPUs, {info['platform']}",
           f"Load before: {load_before}",
           f"Matmul peak ({args.peak_n}^2 float32, best of 4): jnp.dot {peak:.0f} GFLOP/s"
           + (f", torch.mm {torch_peak:.0f} GFLOP/s" if torch_peak else "")]
  if not args.eval_only:
    lines.append(f"Caps: {args.max_seconds:.0f} s of training per baseline cell. Same work in "
                 "every column: per-model subsets (n_in = N/2), SGD Nesterov 0.9, wd 5e-4, "
                 "constant LR (W6: Adam).")
  if args.accelerator:
    lines.append(f"Accelerator-sized workloads: M in {args.models}, {args.cnn_train:,} "
                 f"CIFAR-shaped training examples.")
  elif info["backend"] != "cpu":
    lines.append(f"Note: jax runs on {info['backend']}; `--accelerator` runs the "
                 "accelerator-sized workloads (M = 64, 256, 1024, 50,000 CIFAR-shaped examples, "
                 "ResNet, VGG, ViT, GPT).")
  return lines + [""]


def main(argv=None) -> dict:
  """Runs the benchmark, prints the tables; returns {"results": {key: {column: {M: cell}}},
  "evals": {key: {M: EvalResult | error}}, "workloads": {key: Workload}, "args"}."""
  args = parse_args(argv)
  t_start = time.perf_counter()
  load_before = uptime()
  torch_device = None
  if not args.eval_only and {"torch_loop", "torch_func"} & set(args.columns):
    torch_device = torch_device_or_none("columns (4) and (5) are")
  args.peak_n = 2048 if args.quick else 4096
  peak = matmul_peak_jax(args.peak_n)
  torch_peak = matmul_peak_torch(args.peak_n) if torch_device == "cpu" else None
  info = machine()
  print("\n".join(header_lines(args, info, torch_device, peak, torch_peak, load_before)),
        flush=True)
  runners = column_runners(args, torch_device)
  workloads = {w.key: w for w in make_workloads(args)}
  all_results, evals = {}, {}
  for key, workload in workloads.items():
    if not args.eval_only:
      columns = lm_column_runners(args, torch_device) if is_lm(workload) else runners
      all_results[key] = run_workload(workload, args, columns)
      print(workload_tables(workload, all_results[key], args.models, peak, args.batch_size)
            + "\n", flush=True)
    if args.eval_models:
      evals[key] = run_evals(workload, args)
      print(eval_table(workload, evals[key]) + "\n", flush=True)
  target_rows = []
  if not args.eval_only:
    target_rows = targets(all_results, args.models, peak, workloads, args.batch_size)
    if target_rows:
      print("### Targets (CPU targets from the issue)\n")
      print(targets_table(target_rows))
  load_after = uptime()
  print(f"\nLoad before: {load_before}\nLoad after:  {load_after}")
  print(f"Total benchmark time: {time.perf_counter() - t_start:.0f} s. Other processes may have "
        "been running (see the load averages on a 2-core machine); treat the numbers as noisy.")
  if args.json:
    payload = {"args": vars(args), "machine": info, "load_before": load_before,
               "load_after": load_after, "matmul_peak_gflops": peak,
               "torch_matmul_peak_gflops": torch_peak,
               "workloads": {k: {"title": w.title, "params": w.num_params,
                                 "forward_flops_per_example": forward_flops_per_example(w),
                                 "flops_per_example": flops_per_example(w),
                                 "epochs": w.epochs,
                                 "cells": {c: {str(m): to_json(r) for m, r in v.items()}
                                           for c, v in all_results.get(k, {}).items()},
                                 "eval": {str(m): eval_to_json(r)
                                          for m, r in evals.get(k, {}).items()}}
                             for k, w in workloads.items()},
               "targets": target_rows}
    with open(args.json, "w") as f:
      json.dump(payload, f, indent=1, default=str)
    print(f"JSON written to {args.json}")
  return {"results": all_results, "evals": evals, "workloads": workloads, "args": args}


if __name__ == "__main__":
  main()
