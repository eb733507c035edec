"""correlation: Pearson and Spearman against scipy and hand-computed intervals."""

import math

import numpy as np
import pytest
from scipy import stats

from memjax import correlation
from memjax.errors import MemjaxError


def test_pearson_known_values():
  x, y = [1, 2, 3, 4, 5, 7], [2, 4, 5, 4, 5, 9]
  res = correlation.pearson(x, y)
  r = np.corrcoef(x, y)[0, 1]
  t = r * math.sqrt(4 / (1 - r * r))
  half = stats.norm.ppf(0.975) / math.sqrt(6 - 3)  # Fisher z interval
  assert res["n"] == 6
  assert res["r"] == pytest.approx(r)
  assert res["p"] == pytest.approx(2 * stats.t.sf(abs(t), 4))
  assert res["low"] == pytest.approx(math.tanh(math.atanh(r) - half))
  assert res["high"] == pytest.approx(math.tanh(math.atanh(r) + half))
  # Non-finite pairs are dropped.
  with_nan = correlation.pearson(x + [np.nan, 3.0], y + [1.0, np.inf])
  assert with_nan == pytest.approx(res)
  assert correlation.pearson([1, 2, 3], [3, 2, 1])["r"] == pytest.approx(-1.0)


def test_pearson_degenerate():
  three = correlation.pearson([1, 2, 3], [1, 3, 2])
  assert three["r"] == pytest.approx(0.5) and math.isnan(three["low"]) and math.isnan(three["high"])
  for x, y in (([1, 2], [3, 4]), ([1, 2, 3], [5, 5, 5]), ([2, 2, 2, 2], [1, 2, 3, 4])):
    res = correlation.pearson(x, y)
    assert math.isnan(res["r"]) and math.isnan(res["p"]) and res["n"] == len(x)


def test_spearman_with_interval():
  x = np.arange(50.0)
  s = correlation.spearman(x, x ** 3)
  assert s["rho"] == pytest.approx(1.0) and s["n"] == 50
  y = np.random.default_rng(0).normal(size=50) + x / 10
  x_nan = x.copy()
  x_nan[:5] = np.nan
  s = correlation.spearman(x_nan, y)
  assert s["n"] == 45 and s["low"] < s["rho"] < s["high"]
  assert np.isnan(correlation.spearman(np.ones(10), y[:10])["rho"])


def test_shape_errors():
  with pytest.raises(MemjaxError, match="must be two"):
    correlation.pearson([1, 2, 3], [1, 2])
  with pytest.raises(MemjaxError, match="same examples"):
    correlation.spearman(np.ones((2, 3)), np.ones((2, 3)))
