"""Correlation coefficients with confidence intervals, over the finite pairs of two arrays.

Studies correlate per-architecture figures (the train-test gap with the memorized count,
:func:`pearson`); proxies are judged by how well they rank examples like the memorization score
(:func:`spearman`). Both drop the pairs where either value is not finite, return NaN figures when
the correlation is undefined (too few pairs, a constant array) and never raise for that.

>>> round(pearson([1, 2, 3, 4], [2, 4, 5, 9])["r"], 4)
0.9648
>>> round(spearman([1, 2, 3, 4, 5], [1, 4, 9, 16, 25])["rho"], 6)
1.0
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

from memjax.errors import MemjaxError

NAN = float("nan")


def pearson(x, y, level: float = 0.95) -> dict:
  """Pearson's r with its two-sided p-value and a Fisher-z confidence interval.

  Args:
    x, y: [n] values (pairs with a non-finite value in either are dropped).
    level: confidence level of the interval.

  Returns:
    {"r", "p", "low", "high", "n"}: n is the number of finite pairs; everything but n is NaN
    with fewer than 3 pairs or a constant array, and the interval is NaN with exactly 3 (Fisher
    z needs n > 3).
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise MemjaxError(f"x {x.shape} and y {y.shape} must be two [n] arrays of paired values.")
  ok = np.isfinite(x) & np.isfinite(y)
  n = int(ok.sum())
  if n < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
    return {"r": NAN, "p": NAN, "low": NAN, "high": NAN, "n": n}
  res = scipy_stats.pearsonr(x[ok], y[ok])
  if n > 3:
    ci = res.confidence_interval(level)
    low, high = float(ci.low), float(ci.high)
  else:
    low = high = NAN
  return {"r": float(res.statistic), "p": float(res.pvalue), "low": low, "high": high, "n": n}


def spearman(x, y, level: float = 0.95) -> dict[str, float]:
  """Spearman's rank correlation with a confidence interval.

  Args:
    x: [n] values, e.g. a proxy; NaN entries are dropped, ``inf`` ranks highest.
    y: [n] values, e.g. memorization scores (non-finite entries dropped).
    level: confidence level of the interval: Fisher z with the Fieller et al. (1957) standard
      error ``1.06 / sqrt(n - 3)`` for Spearman's rho.

  Returns:
    {"rho", "low", "high", "n"}; NaN figures with fewer than 4 pairs or a constant array.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise MemjaxError(f"x {x.shape} and y {y.shape} must both be [N] arrays over the same "
                      "examples (e.g. a proxy and the memorization scores).")
  ok = ~np.isnan(x) & np.isfinite(y)
  n = int(ok.sum())
  if n < 4 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
    return {"rho": NAN, "low": NAN, "high": NAN, "n": n}
  rho = float(scipy_stats.spearmanr(x[ok], y[ok]).statistic)
  z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
  half = scipy_stats.norm.ppf(0.5 + level / 2) * 1.06 / math.sqrt(n - 3)
  return {"rho": rho, "low": float(np.tanh(z - half)), "high": float(np.tanh(z + half)), "n": n}
