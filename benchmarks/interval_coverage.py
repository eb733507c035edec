"""Exact coverage of the intervals of memorization with binary values (a difference of proportions).

For n_in IN and n_out OUT models and true accuracies (p_in, p_out), the number of right IN models
is Binomial(n_in, p_in) and of right OUT models Binomial(n_out, p_out). Enumerating every outcome
(x_in, x_out) with its probability gives the exact coverage of an interval: the probability that
it contains p_in - p_out, with no sampling noise. Compared here:

* ``old Wald``: memjax's earlier interval, ``d +- z se`` with the plug-in (Welch) SE;
* ``newcombe-cp``: memjax's interval now (:func:`memjax.estimators.difference_ci`'s default);
* ``newcombe`` and ``agresti-caffo``: the other methods of ``difference_ci``.

Prints three markdown tables: old vs new coverage at the boundary points, the minimum coverage of
each method over the whole grid for each pair of sizes, and its mean width. With ``--grouped``, a
fourth: Monte Carlo coverage of the grouped interval (``memorization_ci(..., groups=...)``) in a
multi-ratio design (9 ratio groups 0.1, ..., 0.9, balanced), each simulated example one replicate.

    python benchmarks/interval_coverage.py
    python benchmarks/interval_coverage.py --level 0.9
    python benchmarks/interval_coverage.py --grouped      # + the grouped Monte Carlo (~1 min)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from memjax import design, estimators, intervals
from memjax.formatting import markdown_table

# True accuracies, boundaries included; every (p_in, p_out) pair of this grid is evaluated.
GRID = (0.0, 0.001, 0.005, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.995, 0.999, 1.0)
SIZES = (16, 32, 64, 128, 256)  # models per side
PAIRS = tuple((n, n) for n in SIZES) + ((16, 256), (256, 16), (32, 128), (128, 32), (16, 64))
# Where the old interval fails: an example (nearly) always right, or always wrong, on each side.
BOUNDARY_POINTS = ((1.0, 0.0), (0.999, 0.0), (0.995, 0.005), (0.99, 0.01), (0.999, 0.001),
                   (0.05, 0.0), (1.0, 1.0), (0.999, 0.999))


def old_wald(x_in, n_in, x_out, n_out, level=0.95):
  """memjax's earlier interval for binary values: d +- z * Welch SE (sample variances,
  ddof 1, so s^2 / n = p (1 - p) / (n - 1) for 0/1 values)."""
  p_in, p_out = x_in / n_in, x_out / n_out
  se = np.sqrt(p_in * (1 - p_in) / (n_in - 1) + p_out * (1 - p_out) / (n_out - 1))
  return estimators.confidence_interval(p_in - p_out, se, level)


def method(name: str):
  """The interval ``(x_in, n_in, x_out, n_out, level) -> (low, high)`` of a difference_ci method."""
  return lambda x_in, n_in, x_out, n_out, level=0.95: estimators.difference_ci(
      x_in, n_in, x_out, n_out, level, method=name)


METHODS = {"old Wald": old_wald, "newcombe-cp": method("newcombe-cp"),
           "newcombe": method("newcombe"), "agresti-caffo": method("agresti-caffo")}


def outcomes(interval, n_in: int, n_out: int, level: float = 0.95):
  """(low, high), each [n_in + 1, n_out + 1]: the interval for every outcome (x_in, x_out)."""
  x_in = np.arange(n_in + 1, dtype=np.float64)[:, None]
  x_out = np.arange(n_out + 1, dtype=np.float64)[None, :]
  with np.errstate(invalid="ignore", divide="ignore"):
    low, high = interval(x_in, n_in, x_out, n_out, level)
  return np.broadcast_to(low, (n_in + 1, n_out + 1)), np.broadcast_to(high, (n_in + 1, n_out + 1))


def exact_coverage(interval, n_in: int, n_out: int, p_in=GRID, p_out=GRID,
                   level: float = 0.95) -> np.ndarray:
  """[len(p_in), len(p_out)] probability that ``interval`` contains p_in - p_out.

  Args:
    interval: ``(x_in, n_in, x_out, n_out, level) -> (low, high)``, vectorised over the counts.
    n_in, n_out: models per side.
    p_in, p_out: true accuracies.
    level: the interval's confidence level.
  """
  low, high = outcomes(interval, n_in, n_out, level)
  p_in, p_out = np.asarray(p_in, np.float64), np.asarray(p_out, np.float64)
  prob_in = stats.binom.pmf(np.arange(n_in + 1)[None, :], n_in, p_in[:, None])  # [A, X]
  prob_out = stats.binom.pmf(np.arange(n_out + 1)[None, :], n_out, p_out[:, None])  # [B, Y]
  coverage = np.empty((p_in.size, p_out.size))
  tol = 1e-12  # a limit that equals the truth up to rounding covers it
  for b, q in enumerate(p_out):
    truth = (p_in - q)[:, None, None]  # [A, 1, 1]
    covers = (low[None] <= truth + tol) & (truth - tol <= high[None])  # [A, X, Y]
    coverage[:, b] = np.einsum("ax,axy,y->a", prob_in, covers, prob_out[b])
  return coverage


def mean_width(interval, n_in: int, n_out: int, p_in=GRID, p_out=GRID,
               level: float = 0.95) -> float:
  """Expected width of ``interval``, averaged over the (p_in, p_out) grid."""
  low, high = outcomes(interval, n_in, n_out, level)
  prob_in = stats.binom.pmf(np.arange(n_in + 1)[None, :], n_in, np.asarray(p_in)[:, None])
  prob_out = stats.binom.pmf(np.arange(n_out + 1)[None, :], n_out, np.asarray(p_out)[:, None])
  return float(np.einsum("ax,by,xy->ab", prob_in, prob_out, high - low).mean())


def boundary_table(level: float = 0.95) -> str:
  """Old Wald vs newcombe-cp coverage at BOUNDARY_POINTS, n_in = n_out in SIZES."""
  index = {p: i for i, p in enumerate(GRID)}
  rows = []
  for p_in, p_out in BOUNDARY_POINTS:
    for name in ("old Wald", "newcombe-cp"):
      cells = [exact_coverage(METHODS[name], n, n, level=level)[index[p_in], index[p_out]]
               for n in SIZES]
      rows.append([f"({p_in:g}, {p_out:g})", name, *cells])
  return markdown_table(["(p_in, p_out)", "interval", *(f"n = {n}" for n in SIZES)], rows)


def minimum_table(level: float = 0.95) -> tuple[str, str]:
  """(minimum coverage over the grid, mean width) of every method for every pair of sizes."""
  minima, widths = [], []
  for n_in, n_out in PAIRS:
    row_min, row_width = [f"{n_in} / {n_out}"], [f"{n_in} / {n_out}"]
    for interval in METHODS.values():
      coverage = exact_coverage(interval, n_in, n_out, level=level)
      a, b = np.unravel_index(np.argmin(coverage), coverage.shape)
      row_min.append(f"{coverage[a, b]:.4f} at ({GRID[a]:g}, {GRID[b]:g})")
      row_width.append(mean_width(interval, n_in, n_out, level=level))
    minima.append(row_min)
    widths.append(row_width)
  header = ["n_in / n_out", *METHODS]
  return markdown_table(header, minima), markdown_table(header, widths)


RATIOS = tuple(k / 10 for k in range(1, 10))
# (name, p_in(r), p_out(r)): true accuracies of IN and OUT models of ratio r.
GROUPED_SETTINGS = (
    ("null: accuracy 0.6 + 0.25 r", lambda r: 0.6 + 0.25 * r, lambda r: 0.6 + 0.25 * r),
    ("null: accuracy 0.2 + 0.75 r", lambda r: 0.2 + 0.75 * r, lambda r: 0.2 + 0.75 * r),
    ("null: always right (0.999)", lambda r: 0.999, lambda r: 0.999),
    ("memorized (0.999, 0.01)", lambda r: 0.999, lambda r: 0.01),
    ("memorized (0.999, 0.005)", lambda r: 0.999, lambda r: 0.005),
    ("memorized (1, 0.01)", lambda r: 1.0, lambda r: 0.01),
    ("memorized (0.99, 0.001)", lambda r: 0.99, lambda r: 0.001),
    ("memorized (1, 0)", lambda r: 1.0, lambda r: 0.0),
    ("(0.98, 0.03)", lambda r: 0.98, lambda r: 0.03),
    ("(0.995, 0.05)", lambda r: 0.995, lambda r: 0.05),
    ("(0.9, 0.6)", lambda r: 0.9, lambda r: 0.6),
    ("(0.75, 0.25)", lambda r: 0.75, lambda r: 0.25),
    ("(0.5, 0.5)", lambda r: 0.5, lambda r: 0.5),
    ("(0.95, 0.5)", lambda r: 0.95, lambda r: 0.5),
    ("(0.5, 0.005)", lambda r: 0.5, lambda r: 0.005),
    ("(0.01, 0)", lambda r: 0.01, lambda r: 0.0),
    ("(0.995, 0.9 r)", lambda r: 0.995, lambda r: 0.9 * r),
    ("(1, 0.9)", lambda r: 1.0, lambda r: 0.9),
)


def grouped_intervals(correct, keep, groups, level):
  """{name: (low, high)} of the grouped intervals compared: memjax's (square-and-add on
  Clopper-Pearson limits), the same rule on Wilson limits, and two normal intervals with the
  grouped Agresti-Caffo SE, centred on the estimate or on the mean of the shrunk estimates."""
  z = stats.norm.ppf(0.5 + level / 2)
  (x_in, _, _, n_in), (x_out, _, _, n_out) = estimators._sides(correct.astype(float), keep,
                                                                  groups)
  mem = estimators.memorization(correct, keep, groups)
  se = estimators.memorization_se(correct, keep, groups)
  shrunk = ((x_in + 1) / (n_in + 2) - (x_out + 1) / (n_out + 2)).mean(0)
  return {"memjax (newcombe-cp)": estimators.memorization_ci(correct, keep, level, groups),
          "Wilson limits": intervals.square_and_add(x_in, n_in, x_out, n_out, level,
                                                      "wilson"),
          "mem +- z se": (mem - z * se, mem + z * se),
          "shrunk +- z se": (shrunk - z * se, shrunk + z * se)}


def grouped_table(level: float = 0.95, per_group=(10, 30, 100, 300), replicates: int = 5000,
                  seed: int = 0) -> str:
  """Monte Carlo coverage of grouped intervals: one row per (models per group, setting), one
  simulated example per replicate (keep from the balanced multi-ratio design)."""
  rng = np.random.default_rng(seed)
  ratios = np.asarray(RATIOS)
  rows, minima = [], {}
  for size in per_group:
    d = design.make("balanced", size * len(ratios), replicates, RATIOS, seed=seed)
    r = ratios[d.groups][:, None]  # [M, 1] each model's ratio
    for name, p_in, p_out in GROUPED_SETTINGS:
      p = np.where(d.keep, np.broadcast_to(p_in(r), r.shape), np.broadcast_to(p_out(r), r.shape))
      correct = rng.random(d.keep.shape) < p
      truth = np.mean([p_in(g) - p_out(g) for g in ratios])
      cells = []
      for method, (low, high) in grouped_intervals(correct, d.keep, d.groups, level).items():
        coverage = float(np.mean((low <= truth + 1e-12) & (truth - 1e-12 <= high)))
        minima[method] = min(minima.get(method, 1.0), coverage)
        cells.append(coverage)
      rows.append([size, name, *cells])
  rows.append(["all", "minimum", *minima.values()])
  return markdown_table(["models per group", "(p_in, p_out)", *minima], rows, digits=3)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--level", type=float, default=0.95, help="confidence level")
  parser.add_argument("--grouped", action="store_true",
                      help="also the Monte Carlo coverage of the grouped interval")
  args = parser.parse_args(argv)
  start = time.perf_counter()
  print(f"Exact coverage of the {args.level:.0%} intervals, n_in = n_out = n\n")
  print(boundary_table(args.level))
  minima, widths = minimum_table(args.level)
  print(f"\nMinimum coverage over the grid p_in, p_out in {list(GRID)}\n")
  print(minima)
  print("\nMean width over the grid\n")
  print(widths)
  if args.grouped:
    print(f"\nMonte Carlo coverage, 9 ratio groups {RATIOS}, 5,000 examples each\n")
    print(grouped_table(args.level))
  print(f"\n({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
  main()
