"""Membership-inference evidence on memjax ensembles (the tables of the attacks issue).

Trains an ensemble with balanced keep masks (the LiRA shadow-model design), plants a few
mislabeled training examples, and evaluates every attack leave-one-model-out: each model in turn
is the target, the others its shadows. Prints, per attack, AUC, balanced accuracy and TPR at
FPR 1%, 0.1% and 0.01%, the timing of the evaluation, and how much easier membership of the
planted points is to infer than that of typical points (per-example AUC).

    python benchmarks/attack_evidence.py                      # digits, 256 MLPs
    python benchmarks/attack_evidence.py --workload cifar     # CIFAR-shaped synthetic, small CNN
    python benchmarks/attack_evidence.py --models 64 --epochs 20   # quicker
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import memjax


def planted_digits(num_planted: int, seed: int = 0):
  data = memjax.load("digits")
  rng = np.random.default_rng(seed)
  planted = rng.choice(data.num_train, num_planted, replace=False)
  y = data.y_train.copy()
  y[planted] = (y[planted] + rng.integers(1, 10, num_planted)) % 10
  return memjax.from_arrays(data.x_train, y, data.x_test, data.y_test, name="digits-planted",
                            standardize=False), planted


def cifar_shaped(num_train: int, num_test: int, num_planted: int, noise: float = 4.0,
                 seed: int = 0):
  """32x32x3 images, 10 classes: a smooth class template plus pixel noise of sd ``noise``.

  At noise 4 a small CNN needs ~4 epochs to pass 90% test accuracy (the template is 8x8
  upsampled, so convolutions average much of the noise away); not CIFAR's difficulty, but
  CIFAR's shapes and a real learning curve.
  """
  rng = np.random.default_rng(seed)
  templates = rng.normal(size=(10, 8, 8, 3)).repeat(4, 1).repeat(4, 2)  # smooth 32x32x3
  def make(n):
    y = rng.integers(0, 10, n)
    return templates[y] + noise * rng.normal(size=(n, 32, 32, 3)), y
  (x, y), (xt, yt) = make(num_train), make(num_test)
  planted = rng.choice(num_train, num_planted, replace=False)
  y[planted] = (y[planted] + rng.integers(1, 10, num_planted)) % 10
  return memjax.from_arrays(x, y, xt, yt, name="cifar-shaped"), planted


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workload", choices=("digits", "cifar"), default="digits")
  parser.add_argument("--models", type=int, default=256)
  parser.add_argument("--epochs", type=int, default=None)
  parser.add_argument("--planted", type=int, default=20)
  args = parser.parse_args()
  if args.workload == "digits":
    data, planted = planted_digits(args.planted)
    kwargs = dict(model="mlp", epochs=args.epochs or 40)
  else:
    data, planted = cifar_shaped(1280, 1000, args.planted)
    # The plain CNN (no normalisation) diverges or stalls at the MLP's learning rate of 0.1.
    kwargs = dict(model="cnn", epochs=args.epochs or 12, augment="flip",
                  query_augmentations=2, learning_rate=0.02)
  t0 = time.perf_counter()
  run = memjax.train(data, models=args.models, progress=False, **kwargs)
  train_s = time.perf_counter() - t0
  r = run.records
  print(f"## {data.name}: {args.models} x {run.config.model} ({run.info['num_params']:,} params), "
        f"{run.config.epochs} epochs, train acc {r.train_accuracy()[-1].mean():.3f}, "
        f"test acc {r.test_accuracy()[-1].mean():.3f}, trained in {train_s:.1f} s\n")
  t0 = time.perf_counter()
  results = memjax.evaluate_attacks(np.asarray(r.train_lira), np.asarray(r.keep),
                                    test_stats=np.asarray(r.test_lira))
  attack_s = time.perf_counter() - t0
  print(results.table(markdown=True))
  print(f"\nleave-one-model-out evaluation of all attacks: {attack_s:.2f} s "
        f"({args.models} targets x {data.num_train} examples)\n")
  typical = np.setdiff1d(np.arange(data.num_train), planted)
  mem = memjax.memorization(run.correct, run.keep)
  print("| attack | per-example AUC planted (mean) | typical (mean) | typical (median) |")
  print("|---|---|---|---|")
  for name, result in results.attacks.items():
    auc = result.per_example_auc
    print(f"| {name} | {np.nanmean(auc[planted]):.3f} | {np.nanmean(auc[typical]):.3f} | "
          f"{np.nanmedian(auc[typical]):.3f} |")
  print(f"\nmemorization: planted {np.nanmean(mem[planted]):.3f}, typical "
        f"{np.nanmean(mem[typical]):.3f}")


if __name__ == "__main__":
  main()
