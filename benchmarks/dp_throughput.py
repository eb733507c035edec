"""DP-SGD throughput and accuracy against non-private training of the same models.

Trains the same ensemble (digits, MLP, one compiled program per chunk) four ways in one run and
prints model-epochs/s of the training loop (compilation and evaluation excluded), its ratio to
plain training, and the accuracies:

* shuffle: the default, epochs over a fresh random order of each model's subset;
* poisson: Poisson-sampled batches of the same expected size (what DP-SGD's accounting needs);
* dp-sgd: Poisson batches, per-example clipping (C = 1) and Gaussian noise, sigma calibrated to
  ``--epsilon`` (per-example gradient norms, then one backward pass of the norm-weighted loss);
* dp-sgd, dropout: the same with dropout 0.1 (each example its own dropout mask).

    python benchmarks/dp_throughput.py                 # 64 MLPs 256-256, 10 epochs, eps 8
    python benchmarks/dp_throughput.py --models 16 --epochs 3   # quicker
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import memjax


def measure(data, label: str, **config) -> dict:
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # under-fitting DP models warn; expected
    run = memjax.train(data, progress=False, **config)
  timings = run.info["timings"]
  privacy = run.info.get("privacy")
  return {"label": label, "model_epochs_per_s": timings["model_epochs_per_s"],
          "chunk": run.info["chunk_size"],
          "train_acc": float(run.records.train_accuracy()[-1].mean()),
          "test_acc": float(run.records.test_accuracy()[-1].mean()),
          "epsilon": privacy["epsilon"] if privacy else float("inf"),
          "sigma": privacy["noise_multiplier"] if privacy else 0.0}


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--models", type=int, default=64)
  p.add_argument("--epochs", type=int, default=10)
  p.add_argument("--epsilon", type=float, default=8.0)
  p.add_argument("--widths", default="256,256")
  args = p.parse_args(argv)
  data = memjax.load("digits")
  widths = [int(w) for w in args.widths.split(",")]
  common = dict(model="mlp", models=args.models, epochs=args.epochs,
                model_kwargs={"widths": widths})
  rows = [
      measure(data, "shuffle", **common),
      measure(data, "poisson", sampling="poisson", **common),
      measure(data, "dp-sgd", dp_target_epsilon=args.epsilon, **common),
      measure(data, "dp-sgd, dropout 0.1", dp_target_epsilon=args.epsilon,
              **{**common, "model_kwargs": {"widths": widths, "dropout": 0.1}}),
  ]
  base = rows[0]["model_epochs_per_s"]
  print(f"{args.models} MLPs {widths} on the digits, {args.epochs} epochs, batch 128 "
        "(expected, for Poisson)")
  print("| training | model-epochs/s | vs shuffle | chunk | epsilon | sigma | train acc | "
        "test acc |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    eps = "inf" if not np.isfinite(r["epsilon"]) else f"{r['epsilon']:.2f}"
    print(f"| {r['label']} | {r['model_epochs_per_s']:.1f} | "
          f"{r['model_epochs_per_s'] / base:.3f}x | {r['chunk']} | {eps} | {r['sigma']:.3f} | "
          f"{r['train_acc']:.3f} | {r['test_acc']:.3f} |")


if __name__ == "__main__":
  main()
