"""Confidence intervals for proportions and their differences, vectorised over examples.

An example's accuracy over its IN (or OUT) models is a binomial proportion x / n, and its
memorization the difference of two, x_in / n_in - x_out / n_out. Memorized examples sit at the
boundary, where every IN model is right and (nearly) every OUT model wrong, and that is where the
textbook normal-approximation (Wald) interval fails: its standard error is 0 there and the
interval a point. This module has the intervals that hold there:

* :func:`proportion_ci`: Wilson's score interval, or the exact Clopper-Pearson one;
* :func:`difference_ci`: p_in - p_out by Newcombe's square-and-add rule on exact (default) or
  Wilson limits, or by Agresti and Caffo's adjusted Wald interval;
* :func:`confidence_interval`: ``estimate +- q * se`` with a normal or Student t quantile (for
  real-valued measures).

:mod:`memjax.estimators` applies them to the records (``memorization_ci``); the choice of default
and its exact coverage are documented in :func:`difference_ci` and ``benchmarks/
interval_coverage.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from memjax.errors import MemjaxError


def agresti_caffo_variance(successes, n):
  """Variance of Agresti and Caffo's proportion q = (x + 1) / (n + 2): q (1 - q) / (n + 2)."""
  q = (successes + 1) / (n + 2)
  return q * (1 - q) / (n + 2)


def check_level(level: float) -> None:
  if not 0 < level < 1:
    raise MemjaxError(f"level={level}; a confidence level lies in (0, 1), e.g. 0.95.")


def confidence_interval(estimate, standard_error, level: float = 0.95, df=None):
  """Interval ``estimate +- q * se``; returns (low [N], high [N]).

  Args:
    estimate, standard_error: [N] arrays.
    level: confidence level in (0, 1).
    df: None for the normal quantile q (the default); else [N] (or scalar) degrees of freedom
      of a Student t quantile, e.g. the Welch-Satterthwaite df of a difference of means.
  """
  check_level(level)
  if df is None:
    q = scipy_stats.norm.ppf(0.5 + level / 2)
  else:
    q = scipy_stats.t.ppf(0.5 + level / 2, np.asarray(df, np.float64))
  estimate, standard_error = np.asarray(estimate), np.asarray(standard_error)
  return estimate - q * standard_error, estimate + q * standard_error


PROPORTION_METHODS = ("wilson", "clopper-pearson")
DIFFERENCE_METHODS = ("newcombe-cp", "newcombe", "agresti-caffo")
DEFAULT_DIFFERENCE_METHOD = "newcombe-cp"  # the interval of memorization_ci for binary values
SIDE_METHOD = {"newcombe-cp": "clopper-pearson", "newcombe": "wilson"}


def _check_method(method: str, methods: tuple[str, ...]) -> None:
  if method not in methods:
    raise MemjaxError(f"method={method!r}; choose one of {', '.join(map(repr, methods))}.")


def _binomial_counts(successes, n, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
  """(successes, n) as float64 arrays, checked: whole numbers with 0 <= successes <= n."""
  x, n = np.asarray(successes), np.asarray(n)
  for a, name in zip((x, n), names):
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
      raise MemjaxError(f"{name} must hold counts (integers); got dtype {a.dtype}.")
  x, n = x.astype(np.float64), n.astype(np.float64)
  try:
    shape = np.broadcast_shapes(x.shape, n.shape)
  except ValueError:
    raise MemjaxError(f"{names[0]} has shape {x.shape} and {names[1]} {n.shape}; they must "
                      "broadcast (the same shape, or one of them a scalar).") from None
  with np.errstate(invalid="ignore"):
    bad = ~((x == np.round(x)) & (n == np.round(n)) & (0 <= x) & (x <= n))
  if bad.any():
    first = tuple(int(j) for j in np.argwhere(np.broadcast_to(bad, shape))[0])
    raise MemjaxError(
        f"{names[0]} and {names[1]} must be whole numbers with 0 <= {names[0]} <= {names[1]}; "
        f"got {np.broadcast_to(x, shape)[first]} of {np.broadcast_to(n, shape)[first]} at index "
        f"{first}. Pass counts of successes and of trials, not proportions (successes = "
        "proportion * n).")
  return x, n


def proportion_ci(successes, n, level: float = 0.95, method: str = "wilson"):
  """Confidence interval of a binomial proportion from counts, vectorised: (low, high).

  * ``"wilson"`` (default): the Wilson (1927) score interval, the p with
    ``(x / n - p)^2 <= z^2 p (1 - p) / n``, as ``scipy.stats.binomtest(x, n).proportion_ci(
    method="wilson")``. Near nominal on average, but below it for small n p: its lower limit
    at x = 1 is about 0.17 / n, so where n p is about 0.17 it misses whenever x = 1 (exact 95%
    coverage down to 0.84 there, at any n; Brown, Cai & DasGupta 2001).
  * ``"clopper-pearson"``: the exact interval (beta quantiles, scipy's ``method="exact"``),
    coverage >= level for every p and n, and a little wider.

  Args:
    successes: [...] numbers of successes x, whole numbers 0 <= x <= n (integer or float dtype).
    n: [...] numbers of trials, broadcast against ``successes``.
    level: confidence level in (0, 1).
    method: "wilson" or "clopper-pearson".

  Returns:
    (low, high): float64 arrays of the broadcast shape, within [0, 1]; NaN where n = 0.

  >>> [round(float(b), 4) for b in proportion_ci(0, 10)]
  [0.0, 0.2775]
  >>> [round(float(b), 4) for b in proportion_ci(0, 10, method="clopper-pearson")]
  [0.0, 0.3085]
  """
  check_level(level)
  _check_method(method, PROPORTION_METHODS)
  x, n = _binomial_counts(successes, n, ("successes", "n"))
  with np.errstate(invalid="ignore", divide="ignore"):
    if method == "wilson":
      z2 = scipy_stats.norm.ppf(0.5 + level / 2) ** 2
      center = (x + z2 / 2) / (n + z2)
      half = np.sqrt(z2) / (n + z2) * np.sqrt(x * (n - x) / n + z2 / 4)
      low, high = center - half, center + half
    else:
      alpha = 1 - level
      low = scipy_stats.beta.ppf(alpha / 2, np.maximum(x, 1), n - x + 1)
      high = scipy_stats.beta.ppf(1 - alpha / 2, x + 1, np.maximum(n - x, 1))
  low = np.where(x == 0, 0.0, np.clip(low, 0, 1))
  high = np.where(x == n, 1.0, np.clip(high, 0, 1))
  return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


def square_and_add(x_in, n_in, x_out, n_out, level: float, side: str):
  """Newcombe's square-and-add interval of the mean over groups of p_in - p_out: (low, high).

  ``low = d - sqrt(sum_g (p_in - l_in)^2 + (u_out - p_out)^2) / G`` and
  ``high = d + sqrt(sum_g (u_in - p_in)^2 + (p_out - l_out)^2) / G``, d the mean over the G
  used groups of p_in - p_out and (l, u) the :func:`proportion_ci` limits (method ``side``) of
  each proportion: the MOVER of Zou & Donner (2008) for a linear combination of independent
  proportions; G = 1 is Newcombe's (1998) interval of one difference.

  Args:
    x_in, n_in, x_out, n_out: [G, ...] counts of G independent groups (broadcast); a group
      with n_in = 0 or n_out = 0 is left out.
    level: confidence level.
    side: the :func:`proportion_ci` method of the per-proportion limits.

  Returns:
    (low, high): [...] float64 within [-1, 1]; NaN where no group is used.
  """
  low_in, high_in = proportion_ci(x_in, n_in, level, side)
  low_out, high_out = proportion_ci(x_out, n_out, level, side)
  shape = np.broadcast_shapes(x_in.shape, n_in.shape, x_out.shape, n_out.shape)
  used = np.broadcast_to((n_in > 0) & (n_out > 0), shape)
  count = used.sum(axis=0)

  def total(a):
    return np.where(used, a, 0.0).sum(axis=0)

  with np.errstate(invalid="ignore", divide="ignore"):
    p_in, p_out = x_in / n_in, x_out / n_out
    estimate = total(p_in - p_out) / count
    low = estimate - np.sqrt(total((p_in - low_in) ** 2 + (high_out - p_out) ** 2)) / count
    high = estimate + np.sqrt(total((high_in - p_in) ** 2 + (p_out - low_out) ** 2)) / count
  return (np.where(count > 0, np.clip(low, -1, 1), np.nan),
          np.where(count > 0, np.clip(high, -1, 1), np.nan))


def difference_ci(successes_in, n_in, successes_out, n_out, level: float = 0.95,
                  method: str = DEFAULT_DIFFERENCE_METHOD):
  """Confidence interval of p_in - p_out, two independent binomial proportions, from counts.

  The memorization of an example with binary values is such a difference: x_in of its n_in IN
  models and x_out of its n_out OUT models are right (:func:`memorization_ci` calls this).

  * ``"newcombe-cp"`` (default): Newcombe's square-and-add rule on the exact (Clopper-Pearson)
    limits (l, u) of each proportion: with d = p_in - p_out,
    ``low = d - sqrt((p_in - l_in)^2 + (u_out - p_out)^2)`` and
    ``high = d + sqrt((u_in - p_in)^2 + (p_out - l_out)^2)`` (the MOVER of Zou & Donner 2008).
  * ``"newcombe"``: the same rule on Wilson limits, Newcombe's (1998) hybrid score interval
    (his method 10) as published: 56/70 vs 48/80 gives [0.0524, 0.3339].
  * ``"agresti-caffo"``: one success and one failure added to each side, then the Wald
    interval (Agresti & Caffo 2000), clipped to [-1, 1].

  The default is chosen by exact coverage (every outcome enumerated with its binomial
  probability; ``benchmarks/interval_coverage.py``) of the 95% intervals for n_in, n_out in
  {16, 32, 64, 128, 256} (equal and unequal pairs) and p_in, p_out in {0, 0.001, 0.005, 0.01,
  0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.995, 0.999, 1}. Minimum over that grid: newcombe-cp
  0.945, agresti-caffo 0.909 (unequal sides: n_in = 16, n_out = 64 at (0, 0.25)), newcombe
  0.838 (at (0.01, 0.999), n = 16) and the old Wald interval ``d +- z se`` 0.016. Wilson-based
  intervals fall short where one proportion is within about 0.2 / n of 0 or 1, through
  Wilson's limit at x = 1 (see :func:`proportion_ci`): exactly the memorized corner p_in ~ 1,
  p_out ~ 0. The price is width: averaged over the grid, newcombe-cp is 3% (n = 256 a side) to
  10% (n = 16) wider than newcombe, and 6% to 18% wider than agresti-caffo.

  Args:
    successes_in, n_in: [...] successes and trials of the first proportion (whole numbers).
    successes_out, n_out: [...] of the second; all four broadcast together.
    level: confidence level in (0, 1).
    method: "newcombe-cp", "newcombe" or "agresti-caffo".

  Returns:
    (low, high): float64 arrays of the broadcast shape, within [-1, 1]; NaN where n_in or
    n_out is 0.

  >>> [round(float(b), 4) for b in difference_ci(56, 70, 48, 80, method="newcombe")]
  [0.0524, 0.3339]
  >>> low, high = difference_ci([128, 64], 128, [0, 64], 128)
  >>> low.round(3).tolist(), high.round(3).tolist()
  ([0.96, -0.127], [1.0, 0.127])
  """
  check_level(level)
  _check_method(method, DIFFERENCE_METHODS)
  x_in, n_in = _binomial_counts(successes_in, n_in, ("successes_in", "n_in"))
  x_out, n_out = _binomial_counts(successes_out, n_out, ("successes_out", "n_out"))
  try:
    np.broadcast_shapes(x_in.shape, n_in.shape, x_out.shape, n_out.shape)
  except ValueError:
    raise MemjaxError(f"successes_in, n_in, successes_out, n_out have shapes {x_in.shape}, "
                      f"{n_in.shape}, {x_out.shape}, {n_out.shape}; they must broadcast "
                      "together.") from None
  if method != "agresti-caffo":
    return square_and_add(x_in[None], n_in[None], x_out[None], n_out[None], level,
                           SIDE_METHOD[method])
  z = scipy_stats.norm.ppf(0.5 + level / 2)
  with np.errstate(invalid="ignore", divide="ignore"):
    shrunk = (x_in + 1) / (n_in + 2) - (x_out + 1) / (n_out + 2)
    se = np.sqrt(agresti_caffo_variance(x_in, n_in) + agresti_caffo_variance(x_out, n_out))
  ok = (n_in > 0) & (n_out > 0)
  return (np.where(ok, np.clip(shrunk - z * se, -1, 1), np.nan),
          np.where(ok, np.clip(shrunk + z * se, -1, 1), np.nan))
