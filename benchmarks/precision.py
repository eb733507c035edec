"""Mixed precision: float32 vs ``precision="bf16"`` training speed and accuracy, same run.

For each workload of ``throughput.py`` asked for (default: W1 the digits MLP, 10 epochs, and W2
the small CNN on CIFAR-shaped data, 2 epochs), ``memjax.train`` trains the same M models on the
same keep masks twice, in float32 and in bfloat16 compute (parameters, gradients and optimizer
state float32), and prints training model-epochs per second (compile excluded, chunking as
``memjax.train`` picks it for each precision), the speed ratio, and the mean test accuracy of
both.

bfloat16 pays where the hardware multiplies it natively (GPU tensor cores, TPU MXUs, CPUs with
AMX); XLA:CPU without them converts to float32 around every matmul, which costs time.

  python benchmarks/precision.py                       # W1 and W2, M = 16 (~3 min on 2 cores)
  python benchmarks/precision.py --workloads w2 --models 64 --epochs 1
"""

from __future__ import annotations

import argparse
import sys

import jax
import numpy as np

import memjax

import throughput


def measure(workload, plan, precision: str) -> dict:
  """One memjax.train call in ``precision``: its speed, accuracy and chunking."""
  config = throughput.memjax_config(workload, plan, precision=precision)
  run = memjax.train(workload.data, config=config, keep=plan.keep, progress=False)
  timings = run.info["timings"]
  return {"model_epochs_per_s": timings["model_epochs_per_s"],
          "test_accuracy": float(np.mean(run.records.test_accuracy()[-1])),
          "chunk_size": run.info["chunk_size"], "conv": run.info["chunking"]["conv"]}


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workloads", default="w1,w2")
  p.add_argument("--models", type=int, default=16)
  p.add_argument("--epochs", type=int, default=None,
                 help="epochs (default: 10 for the MLP, 2 for the conv nets)")
  p.add_argument("--batch-size", type=int, default=128)
  args = p.parse_args(argv)
  bench_args = throughput.parse_args(["--workloads", args.workloads])
  bench_args.epochs = args.epochs
  rows = []
  for workload in throughput.make_workloads(bench_args):
    if args.epochs is None and workload.key != "w1":
      workload.epochs = 2
    plan = throughput.make_plan(workload, args.models, args.batch_size)
    cells = {p: measure(workload, plan, p) for p in ("float32", "bf16")}
    f32, bf16 = cells["float32"], cells["bf16"]
    rows.append([workload.title, f"{f32['model_epochs_per_s']:.3g}",
                 f"{bf16['model_epochs_per_s']:.3g}",
                 f"{bf16['model_epochs_per_s'] / f32['model_epochs_per_s']:.2f}x",
                 f"{f32['test_accuracy']:.3f}", f"{bf16['test_accuracy']:.3f}",
                 f"{f32['chunk_size']} / {bf16['chunk_size']}"])
    print(f"[{workload.key}] {cells}", file=sys.stderr, flush=True)
  print(f"## float32 vs bf16 (jax {jax.__version__}, {jax.default_backend()}: "
        f"{jax.devices()[0].device_kind}), M = {args.models}\n")
  print(throughput.table(["workload", "float32 model-epochs/s", "bf16 model-epochs/s",
                          "bf16 / float32", "float32 test acc", "bf16 test acc",
                          "chunk (f32 / bf16)"], rows))


if __name__ == "__main__":
  main()
