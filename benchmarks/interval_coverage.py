"""Exact coverage of the intervals of memorization with binary values (a difference of proportions).

For n_in IN and n_out OUT models and true accuracies (p_in, p_out), the number of right IN models
is Binomial(n_in, p_in) and of right OUT models Binomial(n_out, p_out). Enumerating every outcome
(x_in, x_out) with its probability gives the exact coverage of an interval: the probability that
it contains p_in - p_out, with no sampling noise. Compared here:

* ``old Wald``: memjax's interval before issue 13, ``d +- z se`` with the plug-in (Welch) SE;
* ``newcombe-cp``: memjax's interval now (:func:`memjax.estimators.difference_ci`'s default);
* ``newcombe`` and ``agresti-caffo``: the other methods of ``difference_ci``.

Prints three markdown tables: old vs new coverage at the boundary points, the minimum coverage of
each method over the whole grid for each pair of sizes, and its mean width.

    python benchmarks/interval_coverage.py
    python benchmarks/interval_coverage.py --level 0.9
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from memjax import estimators
from memjax.formatting import markdown_table

# True accuracies, boundaries included; every (p_in, p_out) pair of this grid is evaluated.
GRID = (0.0, 0.001, 0.005, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.995, 0.999, 1.0)
SIZES = (16, 32, 64, 128, 256)  # models per side
PAIRS = tuple((n, n) for n in SIZES) + ((16, 256), (256, 16), (32, 128), (128, 32), (16, 64))
# Where the old interval fails: an example (nearly) always right, or always wrong, on each side.
BOUNDARY_POINTS = ((1.0, 0.0), (0.999, 0.0), (0.995, 0.005), (0.99, 0.01), (0.999, 0.001),
                   (0.05, 0.0), (1.0, 1.0), (0.999, 0.999))


def old_wald(x_in, n_in, x_out, n_out, level=0.95):
  """memjax's interval for binary values before issue 13: d +- z * Welch SE (sample variances,
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


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--level", type=float, default=0.95, help="confidence level")
  args = parser.parse_args(argv)
  start = time.perf_counter()
  print(f"Exact coverage of the {args.level:.0%} intervals, n_in = n_out = n\n")
  print(boundary_table(args.level))
  minima, widths = minimum_table(args.level)
  print(f"\nMinimum coverage over the grid p_in, p_out in {list(GRID)}\n")
  print(minima)
  print("\nMean width over the grid\n")
  print(widths)
  print(f"\n({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
  main()
