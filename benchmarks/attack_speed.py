"""Wall time of the leave-one-model-out attack evaluation (memjax.attacks.evaluate_attacks).

Synthetic LiRA statistics (float32) for a balanced design: every model is the target once and
the other M - 1 models are its shadows. Two problem sizes: the default digits dataset
(M = 256, N = 1,437, A = 2, Z = 360 test points) and a CIFAR-sized one (M = 256, N = 50,000,
A = 2, Z = 10,000). For each size the script times every attack on its own (including the
setup it needs, e.g. LiRA's per-example sort) and all default attacks in one call (LiRA
variants then share one fit). Prints a markdown table.

  python benchmarks/attack_speed.py            # both sizes
  python benchmarks/attack_speed.py --small    # digits size only
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from memjax import attacks


def synthetic(m: int, n: int, a: int, z: int, seed: int = 0):
  """Balanced keep [M, N]; stats [M, N, A] = base_i + shift_i * keep + noise; test [M, Z, A]."""
  rng = np.random.default_rng(seed)
  keep = np.argsort(rng.random((m, n), dtype=np.float32), axis=0) < m // 2
  base = rng.normal(2.0, 3.0, size=(1, n, 1)).astype(np.float32)
  shift = rng.exponential(0.5, size=(1, n, 1)).astype(np.float32)
  noise = rng.standard_normal((m, n, a), dtype=np.float32)
  stats = base + shift * keep[..., None] + noise
  test = (rng.normal(2.0, 3.0, size=(1, z, 1)).astype(np.float32)
          + rng.standard_normal((m, z, a), dtype=np.float32))
  return stats, keep, test


def time_case(m: int, n: int, a: int, z: int, each: bool = True):
  stats, keep, test = synthetic(m, n, a, z)
  rows = []
  names = attacks.DEFAULT_ATTACKS if each else ()
  for name in names:
    t0 = time.perf_counter()
    res = attacks.evaluate_attacks(stats, keep, test_stats=test, attacks=(name,))
    wall = time.perf_counter() - t0
    rows.append((name, wall, res.timings.get("metrics", float("nan")), res[name].auc))
  t0 = time.perf_counter()
  res = attacks.evaluate_attacks(stats, keep, test_stats=test)
  wall = time.perf_counter() - t0
  rows.append(("all six together", wall, res.timings["metrics"], float("nan")))
  return rows, res


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--small", action="store_true", help="digits size only")
  args = parser.parse_args()
  cases = [(256, 1437, 2, 360)]
  if not args.small:
    cases.append((256, 50_000, 2, 10_000))
  print(f"# evaluate_attacks wall time ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, numpy {np.__version__})\n")
  print("| M | N | A | Z | attack | wall s | of which metrics s | pooled AUC |")
  print("|---|---|---|---|---|---|---|---|")
  for m, n, a, z in cases:
    rows, res = time_case(m, n, a, z)
    for name, wall, metrics_s, auc in rows:
      auc_s = "" if np.isnan(auc) else f"{auc:.4f}"
      print(f"| {m} | {n} | {a} | {z} | {name} | {wall:.2f} | {metrics_s:.2f} | {auc_s} |",
            flush=True)
    print(f"\nphases of the all-together call (N = {n}): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in res.timings.items()) + "\n")


if __name__ == "__main__":
  main()
