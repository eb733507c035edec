"""Training throughput of memjax against the loops people write without it.

Every column does the same work in the same run: M models of one architecture, each on its own
random subset of n_in = round(0.5 * N) training examples (the same keep masks for every column),
batch size B per model, S = ceil(n_in / B) steps per epoch (the last batch wraps around the
model's own shuffled subset), a fresh shuffle per model per epoch, SGD with Nesterov momentum
0.9, weight decay 5e-4 and a constant learning rate of 0.1.

Columns:
  (1) memjax: ``memjax.train(data, model=..., keep=..., epochs=E, batch_size=B, ...)``;
      throughput from ``run.info["timings"]["train_s"]`` (compile excluded), and also from the
      wall time of the whole call (design, init, compile, training, evaluation, records).
  (2) Flax loop: Python loops over models and minibatches calling one jitted NNX train step.
  (3) scanned loop: Python loop over models of one jitted ``lax.scan``-ned single-model epoch.
  (4) PyTorch loop: ``nn.Module`` + ``torch.optim.SGD``, Python loops, 2 threads.
  (5) torch.func: ``stack_module_state`` + ``vmap(grad(functional_call))`` + manual SGD.

Reported: model-epochs per second (M * E / training seconds), the ratio memjax / each column,
compile (JAX) or warm-up (torch.func) seconds, achieved GFLOP/s against a float32 matmul peak
measured in the same run, and the mean test accuracy of the trained models (proof that every
column really trained). Baseline cells get a time cap (``--max-seconds``): when it hits, fewer
models / steps run, throughput is extrapolated per model-epoch and the cell is marked ``*``.

  python benchmarks/throughput.py --quick                     # smoke run, seconds
  python benchmarks/throughput.py --json /tmp/throughput.json # full run (~10-15 min on 2 cores)
  python benchmarks/throughput.py --workloads w2 --models 1,16 --max-seconds 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
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

from _baselines_flax import CellResult, Plan, flax_loop, scanned_loop

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
KEEP_RATIO = 0.5


@dataclasses.dataclass
class Workload:
  """One architecture on one dataset.

  Attributes:
    key: short name (w0a, w0b, w1, w2, w3).
    title: description printed above its tables.
    model, model_kwargs: the memjax model.
    data: the memjax Dataset.
    epochs: epochs per model.
    learning_rate: constant learning rate of every column (0.1 diverges for the CNNs).
  """

  key: str
  title: str
  model: str
  model_kwargs: dict
  data: Any
  epochs: int
  learning_rate: float = 0.1

  @property
  def config(self) -> TrainConfig:
    return TrainConfig(model=self.model, model_kwargs=self.model_kwargs)

  @property
  def num_params(self) -> int:
    return engine_lib.model_fns(self.config, self.data).num_params


# ---- data and workloads ------------------------------------------------------------------------
def cifar_like(num_train: int, num_test: int = 512, seed: int = 0):
  """Synthetic CIFAR-shaped data (32x32x3, 10 classes): a smooth class template plus noise.

  Learnable in an epoch or two (so accuracies show real training), same shapes as CIFAR-10.
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


def make_workloads(args) -> list[Workload]:
  """The workloads selected by ``--workloads`` (W3 only off-CPU or with ``--resnet``)."""
  digits = memjax.load("digits")
  keys = set(args.workloads)
  if args.resnet or (jax.default_backend() != "cpu" and not args.quick):
    keys.add("w3")
  cifar = cifar_like(args.cnn_train) if keys & {"w2", "w3"} else None

  def epochs(default):
    return args.epochs or (1 if args.quick else default)

  all_workloads = [
      ("w0", Workload("w0a", "W0a digits logistic regression 64-10", "logreg", {}, digits,
                      epochs(10))),
      ("w0", Workload("w0b", "W0b digits MLP 64-32-10", "mlp", {"widths": (32,)}, digits,
                      epochs(10))),
      ("w1", Workload("w1", "W1 digits MLP 64-256-256-10", "mlp", {}, digits, epochs(10))),
      ("w2", Workload("w2", "W2 small CNN conv32-conv64-fc128 on CIFAR-shaped synthetic data",
                      "cnn", {}, cifar, epochs(1), 0.02)),
      ("w3", Workload("w3", "W3 ResNet (width 16, depth 1) on CIFAR-shaped synthetic data",
                      "resnet", {}, cifar, epochs(1), 0.02)),
  ]
  return [w for k, w in all_workloads if k in keys]


def make_keep(num_models: int, num_examples: int, seed: int = 0) -> np.ndarray:
  """[M, N] bool: every model gets exactly round(0.5 * N) examples, drawn at random."""
  rng = np.random.default_rng(seed)
  n_in = int(round(KEEP_RATIO * num_examples))
  keep = np.zeros((num_models, num_examples), bool)
  for m in range(num_models):
    keep[m, rng.choice(num_examples, n_in, replace=False)] = True
  return keep


def make_plan(workload: Workload, num_models: int, batch_size: int) -> Plan:
  keep = make_keep(num_models, workload.data.num_train)
  return Plan(keep=keep, epochs=workload.epochs, batch_size=batch_size,
              steps=engine_lib.steps_per_epoch(keep, batch_size),
              learning_rate=workload.learning_rate)


# ---- FLOPs -------------------------------------------------------------------------------------
def flops_per_example(workload: Workload) -> float:
  """Training FLOPs per example (forward + backward = 3x forward).

  Dense layers: 6 * params. Convolutions: 3 * 2*H_out*W_out*k*k*C_in*C_out (biases, ReLU,
  pooling, BatchNorm and the optimizer update are not counted).
  """
  if workload.model in ("logreg", "mlp"):
    return 6.0 * workload.num_params
  h, w, c = workload.data.feature_shape
  classes = workload.data.num_classes
  kw = workload.model_kwargs
  if workload.model == "cnn":
    channels, hidden = tuple(kw.get("channels", (32, 64))), kw.get("hidden", 128)
    convs = 0.0
    for c_out in channels:
      convs += 2.0 * h * w * 9 * c * c_out
      h, w, c = h // 2, w // 2, c_out
    dense = h * w * c * hidden + hidden + hidden * classes + classes
    return 3.0 * convs + 6.0 * dense
  if workload.model == "resnet":
    width, depth = kw.get("width", 16), kw.get("depth", 1)
    convs = 2.0 * h * w * 9 * c * width
    c = width
    for stage in range(3):
      for b in range(depth):
        stride = 2 if stage > 0 and b == 0 else 1
        c_out = width * 2 ** stage
        h, w = math.ceil(h / stride), math.ceil(w / stride)
        convs += 2.0 * h * w * 9 * (c * c_out + c_out * c_out)
        if stride != 1 or c != c_out:
          convs += 2.0 * h * w * c * c_out
        c = c_out
    return 3.0 * convs + 6.0 * (c * classes + classes)
  raise ValueError(workload.model)


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
  run = memjax.train(workload.data, model=workload.model, model_kwargs=workload.model_kwargs,
                     keep=keep, epochs=plan.epochs, batch_size=plan.batch_size,
                     progress=False, schedule="constant", learning_rate=plan.learning_rate,
                     momentum=plan.momentum, nesterov=True, weight_decay=plan.weight_decay,
                     augment="none", seed=0)
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
  chunk = memjax_chunk(workload, plan.batch_size, plan.num_models)
  fits = max(chunk, int(cap_s * rate / plan.epochs) // chunk * chunk)
  return fits if fits < plan.num_models else None


def memjax_chunk(workload: Workload, batch_size: int, num_models: int) -> int:
  """memjax's default models per chunk (memory budget / estimated bytes per model)."""
  config = workload.config.replace(batch_size=batch_size)
  fns = engine_lib.model_fns(config, workload.data)
  per_model = engine_lib.bytes_per_model(fns, workload.data, config)
  return int(max(1, min(num_models, engine_lib.default_memory_budget() // per_model)))


def column_runners(args, torch_device: str | None) -> dict[str, Callable]:
  """name -> f(workload, plan) -> CellResult, for the selected baseline columns."""
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


def log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def run_workload(workload: Workload, args, runners: dict) -> dict:
  """All columns x all M for one workload -> {column: {M: CellResult | str (error)}}."""
  results: dict[str, dict[int, Any]] = {c: {} for c in COLUMNS}
  for m in args.models:
    plan = make_plan(workload, m, args.batch_size)
    if "memjax" in args.columns:
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


def table(header: list[str], rows: list[list[str]]) -> str:
  widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
  line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
  sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
  return "\n".join([line(header), sep, *map(line, rows)])


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
  gflop_me = fpe * plan.steps * batch_size / 1e9
  n_in = int(plan.keep[0].sum())
  head = ["column", *[f"M={m}" for m in models]]
  present = [c for c in COLUMNS if results[c]]
  star = lambda r: "*" if r.extrapolated else ""
  out = [f"### {workload.title}",
         f"{workload.num_params:,} params/model; N={workload.data.num_train}, n_in={n_in}, "
         f"B={batch_size}, S={plan.steps} steps/epoch, {workload.epochs} epoch(s); "
         f"{fpe / 1e6:.3g} MFLOP/example (fwd+bwd), {gflop_me:.3g} GFLOP per model-epoch.", "",
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
  if notes:
    out += ["", "Notes: " + "; ".join(notes)]
  return "\n".join(out)


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
      gflops = cell.me_per_s * flops_per_example(w) * make_plan(w, 1, batch_size).steps \
          * batch_size / 1e9
      add("W1 memjax % of matmul peak", 100 * gflops / peak, ">= 60%", lambda v: v >= 60, "%")
      add("W1 memjax compile", cell.compile_s, "< 3 s", lambda v: v < 3, " s")
  if "w2" in all_results:
    add("W2 memjax / PyTorch loop", ratio(all_results["w2"], "torch_loop", m), ">= 3x",
        lambda v: v >= 3, "x")
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
                 help="smoke run: M in {1,16}, 1 epoch, W0+W1, 5 s caps")
  p.add_argument("--workloads", default=None,
                 help="comma list of w0,w1,w2 (default: all; --quick: w0,w1)")
  p.add_argument("--models", default=None, help="comma list of M (default 1,16,64,256)")
  p.add_argument("--epochs", type=int, default=None,
                 help="epochs for every workload (default: 10 for W0/W1, 1 for W2/W3)")
  p.add_argument("--batch-size", type=int, default=128)
  p.add_argument("--max-seconds", type=float, default=None,
                 help="time cap per baseline cell (default 20; --quick: 5)")
  p.add_argument("--memjax-max-seconds", type=float, default=45.0,
                 help="memjax trains a whole number of its chunks of models and extrapolates "
                      "when the previous M's rate predicts more training seconds than this")
  p.add_argument("--columns", default=",".join(["memjax", *BASELINES]),
                 help="comma list of memjax,flax_loop,scanned,torch_loop,torch_func")
  p.add_argument("--cnn-train", type=int, default=2560,
                 help="training examples of the CIFAR-shaped data (n_in = half)")
  p.add_argument("--resnet", action="store_true", help="also run W3 (ResNet) on CPU")
  p.add_argument("--json", default=None, help="write every number to this JSON file")
  args = p.parse_args(argv)
  args.workloads = (args.workloads or ("w0,w1" if args.quick else "w0,w1,w2")).split(",")
  args.models = [int(m) for m in (args.models or ("1,16" if args.quick else
                                                  "1,16,64,256")).split(",")]
  args.max_seconds = args.max_seconds or (5.0 if args.quick else 20.0)
  args.columns = args.columns.split(",")
  return args


def to_json(result) -> Any:
  if isinstance(result, CellResult):
    return dataclasses.asdict(result) | {"model_epochs_per_s": result.me_per_s}
  return result


def torch_device_or_none(skipped: str) -> str | None:
  """torch's device for the PyTorch columns (2 threads), or None (logging that ``skipped`` is
  skipped) when torch is not installed."""
  try:
    import _baselines_torch
    return _baselines_torch.setup(threads=2)
  except ImportError:
    log(f"torch is not installed: {skipped} skipped")
    return None


def main(argv=None) -> None:
  args = parse_args(argv)
  t_start = time.perf_counter()
  load_before = uptime()
  torch_device = None
  if {"torch_loop", "torch_func"} & set(args.columns):
    torch_device = torch_device_or_none("columns (4) and (5) are")
  peak = matmul_peak_jax()
  torch_peak = matmul_peak_torch() if torch_device == "cpu" else None
  info = machine()
  print("## memjax training throughput\n")
  print(f"jax {info['jax']} ({info['backend']}: {', '.join(info['devices'])}), flax "
        f"{info['flax']}, optax {info['optax']}, torch {info['torch']} ({torch_device}), "
        f"{info['cpus']} CPUs, {info['platform']}")
  print(f"Load before: {load_before}")
  print(f"Matmul peak (4096^2 float32, best of 4): jnp.dot {peak:.0f} GFLOP/s"
        + (f", torch.mm {torch_peak:.0f} GFLOP/s" if torch_peak else ""))
  print(f"Caps: {args.max_seconds:.0f} s of training per baseline cell. Same work in every "
        "column: per-model subsets (n_in = N/2), SGD Nesterov 0.9, wd 5e-4, constant LR 0.1.\n",
        flush=True)
  runners = column_runners(args, torch_device)
  workloads = {w.key: w for w in make_workloads(args)}
  all_results = {}
  for key, workload in workloads.items():
    all_results[key] = run_workload(workload, args, runners)
    print(workload_tables(workload, all_results[key], args.models, peak, args.batch_size) + "\n",
          flush=True)
  target_rows = targets(all_results, args.models, peak, workloads, args.batch_size)
  load_after = uptime()
  print("### Targets (CPU targets from the issue)\n")
  print(targets_table(target_rows))
  print(f"\nLoad before: {load_before}\nLoad after:  {load_after}")
  print(f"Total benchmark time: {time.perf_counter() - t_start:.0f} s. Other processes may have "
        "been running (see the load averages on a 2-core machine); treat the numbers as noisy.")
  if args.json:
    payload = {"args": vars(args), "machine": info, "load_before": load_before,
               "load_after": load_after, "matmul_peak_gflops": peak,
               "torch_matmul_peak_gflops": torch_peak,
               "workloads": {k: {"title": workloads[k].title, "params": workloads[k].num_params,
                                 "flops_per_example": flops_per_example(workloads[k]),
                                 "epochs": workloads[k].epochs,
                                 "cells": {c: {str(m): to_json(r) for m, r in v.items()}
                                           for c, v in res.items()}}
                             for k, res in all_results.items()},
               "targets": target_rows}
    with open(args.json, "w") as f:
      json.dump(payload, f, indent=1, default=str)
    print(f"JSON written to {args.json}")


if __name__ == "__main__":
  main()
