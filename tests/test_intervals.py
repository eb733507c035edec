"""intervals: Wilson and Clopper-Pearson against scipy, Newcombe's published values, and the exact
coverage of the memorization interval up to p = 0 and 1."""

import numpy as np
import pytest
from scipy import stats

import memjax
from memjax import intervals
from memjax.errors import MemjaxError

# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (score interval without
# continuity correction, 95%). The figures are the ones quoted from that table by several
# independent test suites (e.g. R package propint's rows (a) and (b); the SAS reference values of
# DescTools' BinomDiffCI "score"), and they follow from the Wilson limits by hand: for (g),
# 1 - sqrt(0.2775^2 + 0.1611^2) = 0.6791.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),  # (a)
    ((9, 10, 3, 10), (0.1705, 0.8090)),  # (b)
    ((6, 7, 2, 7), (0.0582, 0.8062)),  # (c)
    ((5, 56, 0, 29), (-0.0381, 0.1926)),  # (d)
    ((0, 10, 0, 20), (-0.1611, 0.2775)),  # (e)
    ((0, 10, 0, 10), (-0.2775, 0.2775)),  # (f)
    ((10, 10, 0, 20), (0.6791, 1.0)),  # (g)
    ((10, 10, 0, 10), (0.6075, 1.0)),  # (h)
]
# Agresti-Caffo at 95% for rows (a), (b), (g): the SAS reference values DescTools tests against.
AGRESTI_CAFFO = [((56, 70, 48, 80), (0.0525, 0.3358)), ((9, 10, 3, 10), (0.1600, 0.8400)),
                 ((10, 10, 0, 20), (0.6922, 1.0))]


@pytest.mark.parametrize("method, scipy_method", [("wilson", "wilson"),
                                                  ("clopper-pearson", "exact")])
def test_proportion_ci_matches_scipy(method, scipy_method):
  for n in (1, 2, 7, 30):
    x = np.arange(n + 1)
    for level in (0.95, 0.8, 0.99):
      lo, hi = intervals.proportion_ci(x, n, level, method)
      ref = [stats.binomtest(int(k), n).proportion_ci(level, method=scipy_method) for k in x]
      np.testing.assert_allclose(lo, [r.low for r in ref], rtol=1e-10, atol=1e-14)
      np.testing.assert_allclose(hi, [r.high for r in ref], rtol=1e-10, atol=1e-14)
      assert lo[0] == 0 and hi[-1] == 1
  # Broadcasting, float counts, no trials.
  lo, hi = intervals.proportion_ci(np.array([[0.0], [3.0]]), [3, 10], method=method)
  assert lo.shape == (2, 2)
  assert np.isnan(intervals.proportion_ci(0, 0, method=method)).all()


def test_difference_ci_matches_published_values():
  for method, table in (("newcombe", NEWCOMBE_TABLE_II), ("agresti-caffo", AGRESTI_CAFFO)):
    for args, expected in table:
      got = intervals.difference_ci(*args, method=method)
      np.testing.assert_allclose(got, expected, atol=5e-5, err_msg=f"{method} {args}")
  # Vectorised: all eight rows at once give the same.
  args = np.array([a for a, _ in NEWCOMBE_TABLE_II]).T
  lo, hi = intervals.difference_ci(*args, method="newcombe")
  np.testing.assert_allclose(np.stack([lo, hi], 1), [e for _, e in NEWCOMBE_TABLE_II], atol=5e-5)


def test_difference_ci_is_the_square_and_add_of_proportion_limits():
  rng = np.random.default_rng(0)
  n_in, n_out = rng.integers(1, 60, 50), rng.integers(1, 60, 50)
  x_in, x_out = rng.integers(0, n_in + 1), rng.integers(0, n_out + 1)
  for method, side in (("newcombe", "wilson"), ("newcombe-cp", "clopper-pearson")):
    l_in, u_in = intervals.proportion_ci(x_in, n_in, method=side)
    l_out, u_out = intervals.proportion_ci(x_out, n_out, method=side)
    p_in, p_out = x_in / n_in, x_out / n_out
    lo, hi = intervals.difference_ci(x_in, n_in, x_out, n_out, method=method)
    np.testing.assert_allclose(lo, p_in - p_out - np.hypot(p_in - l_in, u_out - p_out),
                               atol=1e-15)
    np.testing.assert_allclose(hi, p_in - p_out + np.hypot(u_in - p_in, p_out - l_out),
                               atol=1e-15)


@pytest.mark.parametrize("method", intervals.DIFFERENCE_METHODS)
def test_difference_ci_properties(method):
  x_in, x_out = np.meshgrid(np.arange(21.0), np.arange(9.0), indexing="ij")
  lo, hi = intervals.difference_ci(x_in, 20, x_out, 8, method=method)
  assert lo.shape == (21, 9)
  assert np.all((-1 <= lo) & (lo < hi) & (hi <= 1))
  if method != "agresti-caffo":  # Agresti-Caffo centres on the shrunk difference
    assert np.all((lo <= x_in / 20 - x_out / 8) & (x_in / 20 - x_out / 8 <= hi))
  # Swapping the sides negates the interval; a higher level widens it.
  swapped = intervals.difference_ci(x_out, 8, x_in, 20, method=method)
  np.testing.assert_allclose(swapped, (-hi, -lo), atol=1e-15)
  lo99, hi99 = intervals.difference_ci(x_in, 20, x_out, 8, 0.99, method)
  assert np.all((lo99 <= lo) & (hi <= hi99))
  assert np.isnan(intervals.difference_ci([3, 0], [5, 0], [0, 1], [0, 2], method=method)).all()


@pytest.mark.parametrize("args, kwargs, message", [
    ((0.5, 10, 3, 10), {}, "whole numbers.*not proportions"),
    ((11, 10, 3, 10), {}, r"0 <= successes_in <= n_in; got 11.0 of 10.0"),
    ((3, 10, -1, 10), {}, "successes_out"),
    (([1, 2], [3, 4, 5], 1, 3), {}, "broadcast"),
    (([1, 2], 3, [1, 2, 3], 3), {}, "broadcast together"),
    ((1, 3, 1, 3), {"method": "wald"}, "method='wald'; choose one of 'newcombe-cp'"),
    ((1, 3, 1, 3), {"level": 95}, r"level=95.*\(0, 1\)"),
    ((np.array(["1"]), 3, 1, 3), {}, "counts"),
])
def test_difference_ci_bad_inputs(args, kwargs, message):
  with pytest.raises(MemjaxError, match=message):
    intervals.difference_ci(*args, **kwargs)


def test_exact_coverage_of_the_binary_interval(coverage_benchmark):
  # Every outcome (x_in, x_out) enumerated with its binomial probability: no sampling noise.
  bench = coverage_benchmark
  grid = bench.GRID
  assert {0.0, 0.001, 0.005, 0.01, 0.05, 0.5, 0.95, 0.99, 0.995, 0.999, 1.0} <= set(grid)
  new = bench.METHODS["newcombe-cp"]
  for n_in, n_out in bench.PAIRS:
    coverage = bench.exact_coverage(new, n_in, n_out)
    assert coverage.min() >= 0.94, (n_in, n_out, coverage.min())
  # memorization_ci is that interval: one example per outcome (x_in, x_out) of 16 vs 16 models.
  x_in, x_out = np.meshgrid(np.arange(17), np.arange(17), indexing="ij")
  x_in, x_out = x_in.ravel(), x_out.ravel()
  keep = np.repeat([[True], [False]], 16, axis=0) * np.ones((1, x_in.size), bool)
  correct = np.concatenate([np.arange(16)[:, None] < x_in, np.arange(16)[:, None] < x_out])
  lo, hi = memjax.memorization_ci(correct, keep)
  ref_lo, ref_hi = bench.outcomes(new, 16, 16)
  np.testing.assert_allclose(lo, ref_lo.ravel(), rtol=1e-14, atol=1e-15)
  np.testing.assert_allclose(hi, ref_hi.ravel(), rtol=1e-14, atol=1e-15)
  # The old Wald interval fails at the boundary points (128 vs 128 models);
  # the new one holds.
  at = {p: i for i, p in enumerate(grid)}
  old = bench.exact_coverage(bench.METHODS["old Wald"], 128, 128)
  now = bench.exact_coverage(new, 128, 128)
  assert old[at[0.995], at[0.005]] == pytest.approx(0.7225, abs=1e-4)
  assert old[at[0.999], at[0.0]] == pytest.approx(0.1202, abs=1e-4)
  assert old.min() < 0.15 and now[at[0.995], at[0.005]] > 0.95 and now[at[0.999], at[0.0]] > 0.95
