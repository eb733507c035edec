"""memjax.exposure: exact and estimated exposure (Carlini et al. 2019) and the canary table."""

import math

import numpy as np
import pytest
from scipy import stats

from memjax import exposure as exposure_lib
from memjax.errors import MemjaxError
from memjax.exposure import canary_table, exposure


def brute_force_exposure(row, space_size):
  """log2 |R| - log2 rank, rank = the secret's 1-based position among all candidates sorted
  from the most to the least likely, ties placing the secret first."""
  order = sorted(range(len(row)), key=lambda i: (-row[i], i))  # index 0 (the secret) first
  rank = order.index(0) + 1                                    # among equal values
  return math.log2(space_size) - math.log2(rank)


def test_exact_exposure_equals_brute_force_ranking():
  rng = np.random.default_rng(0)
  loglik = np.round(rng.normal(size=(3, 4, 16)), 1)  # rounded: ties happen
  got = exposure(loglik, space_size=16, exact=True)
  assert got.shape == (3, 4) and got.dtype == np.float64
  for index in np.ndindex(3, 4):
    assert got[index] == pytest.approx(brute_force_exposure(loglik[index].tolist(), 16))


def test_exposure_is_maximal_for_the_most_likely_secret_and_monotonic():
  rng = np.random.default_rng(1)
  others = rng.normal(size=999)
  best = np.concatenate([[others.max() + 1], others])
  worst = np.concatenate([[others.min() - 1], others])
  assert exposure(best, 1000, exact=True) == pytest.approx(math.log2(1000))  # 9.97 bits
  assert exposure(worst, 1000, exact=True) == pytest.approx(0.0)
  secrets = np.linspace(-4, 4, 81)
  rows = np.concatenate([secrets[:, None], np.broadcast_to(others, (81, 999))], axis=1)
  exact = exposure(rows, 1000, exact=True)
  fitted = exposure(rows, 10 ** 6, exact=False)
  assert np.all(np.diff(exact) >= 0) and np.all(np.diff(fitted) > 0)
  assert exact[-1] == pytest.approx(math.log2(1000)) and exact[0] == 0.0


def test_fit_agrees_with_exact_exposure_on_a_skew_normal_sample():
  # |R| = 10**6 secrets whose log-perplexities are skew-normal by construction; the exact
  # exposure ranks the secret among all of them, the fit sees 10,000 of them.
  rng = np.random.default_rng(2)
  space, shape = 10 ** 6, 4.0
  perplexity = stats.skewnorm.rvs(shape, loc=2.0, scale=0.5, size=space, random_state=rng)
  sample = rng.choice(space - 1, 10_000, replace=False) + 1  # never column 0, the secret
  for quantile in (0.3, 0.05, 1e-2, 1e-3, 1e-4):
    secret = stats.skewnorm.ppf(quantile, shape, loc=2.0, scale=0.5)
    perplexity[0] = secret
    exact = exposure(-perplexity, space, exact=True)
    fitted = exposure(-perplexity[np.concatenate([[0], sample])], space, exact=False)
    moments = exposure(-perplexity[np.concatenate([[0], sample])], space, exact=False,
                       fit="moments")
    if quantile >= 1e-3:  # 1,000 or more secrets above it: rank noise below 0.1 bit
      assert exact == pytest.approx(-math.log2(quantile), abs=0.1)
    # The fit's error grows into the tail it extrapolates (the shape's sampling error): here
    # 0.03 bits at 1.7 bits of exposure, 0.4 at 10 and 13.6 bits.
    assert fitted == pytest.approx(exact, abs=0.1 + 0.05 * exact), quantile
    assert moments == pytest.approx(exact, abs=0.15 + 0.1 * exact), quantile


def test_mle_is_scipys_skewnorm_fit():
  rng = np.random.default_rng(5)
  samples = np.stack([stats.skewnorm.rvs(a, loc=1.0, scale=0.3, size=500, random_state=rng)
                      for a in (-3.0, 0.0, 1.5, 8.0)]).reshape(2, 2, 500)
  alpha, loc, scale = exposure_lib.skewnorm_mle(samples)
  assert alpha.shape == (2, 2)
  for index in np.ndindex(2, 2):
    want = stats.skewnorm.fit(samples[index])
    got = (alpha[index], loc[index], scale[index])
    assert stats.skewnorm.logpdf(samples[index], *got).sum() == pytest.approx(
        stats.skewnorm.logpdf(samples[index], *want).sum(), abs=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
  samples[0, 0, 0] = np.nan
  samples[1, 1] = 2.0
  alpha, _, scale = exposure_lib.skewnorm_mle(samples)
  assert np.isnan(alpha[0, 0]) and np.isnan(scale[1, 1]) and np.isfinite(alpha[0, 1])


def test_fit_is_finite_far_beyond_the_candidates():
  rng = np.random.default_rng(3)
  others = -stats.skewnorm.rvs(3.0, loc=1.0, scale=0.2, size=1000, random_state=rng)
  far = exposure(np.concatenate([[10.0], others]), 10 ** 6, exact=False)  # 45 scales away
  assert np.isfinite(far) and far > 100
  nan = exposure(np.array([[np.nan, -1.0, -2.0], [-1.0, -1.0, -1.0]]), 10, exact=False)
  assert np.all(np.isnan(nan))  # a NaN log-likelihood; candidates that do not vary
  assert np.isnan(exposure(np.array([np.nan, 1.0, 2.0, 3.0]), 4, exact=True))


def test_skewnorm_moments_recover_the_parameters():
  rng = np.random.default_rng(4)
  x = stats.skewnorm.rvs(3.0, loc=-1.0, scale=2.0, size=(2, 100_000), random_state=rng)
  alpha, loc, scale = exposure_lib.skewnorm_moments(x)
  assert alpha.shape == (2,)
  np.testing.assert_allclose(loc, -1.0, atol=0.05)
  np.testing.assert_allclose(scale, 2.0, atol=0.05)
  np.testing.assert_allclose(alpha, 3.0, atol=0.5)


def test_skewnorm_logcdf_matches_scipy_and_the_far_tail():
  z = np.linspace(-3, 4, 29)
  for alpha in (-4.0, 0.0, 0.7, 5.0):
    want = stats.skewnorm.logcdf(z, alpha)
    ok = want > math.log(1e-12)
    np.testing.assert_allclose(exposure_lib.skewnorm_logcdf(z, alpha, 0, 1)[ok], want[ok],
                               rtol=1e-6, atol=1e-9)
  # alpha = 0 is the normal distribution, whose log CDF scipy gives far into the tail.
  far = np.array([-8.0, -20.0, -60.0])
  np.testing.assert_allclose(exposure_lib.skewnorm_logcdf(far, 0.0, 0.0, 1.0),
                             stats.norm.logcdf(far), rtol=1e-9)
  mpmath = pytest.importorskip("mpmath")
  mpmath.mp.dps = 40
  for a, point in ((5.0, -6.0), (20.0, -1.0), (-3.0, -12.0)):
    slope = -point + a * stats.norm.pdf(a * point) / stats.norm.cdf(a * point)
    breaks = [-mpmath.inf] + [point - k / slope for k in (200, 50, 10, 3, 1, 0.3)] + [point]
    want = float(mpmath.log(mpmath.quad(
        lambda t, a=a: 2 * mpmath.npdf(t) * mpmath.ncdf(a * t), breaks)))
    assert exposure_lib.skewnorm_logcdf(point, a, 0.0, 1.0) == pytest.approx(want, rel=1e-8)


def test_exposure_errors_name_the_fix():
  with pytest.raises(MemjaxError, match="needs every one of the .R. = 100 secrets.*exact=False"):
    exposure(np.zeros((2, 11)), 100, exact=True)
  with pytest.raises(MemjaxError, match="at least one other candidate"):
    exposure(np.zeros((2, 1)), 100, exact=False)
  with pytest.raises(MemjaxError, match="Unknown fit"):
    exposure(np.zeros((2, 5)), 100, exact=False, fit="kde")
  with pytest.raises(MemjaxError, match="space_size"):
    exposure(np.zeros((2, 5)), 1, exact=False)


def make_record(exact=True):
  """Two canaries of a 4-secret space: canary 0 once (row 10), canary 1 twice (rows 11, 12)."""
  return {"count": 1, "kind": "secret", "seed": 0, "repeats": [1, 2],
          "indices": [10, 11, 12], "copies": [[10], [11, 12]],
          "prefixes": ["my code 0 is ", "my code 1 is "], "secrets": ["1 2", "3 0"],
          "digits": 2, "space_size": 4 if exact else 100, "candidates": 3, "exact": exact}


def test_canary_table_on_constructed_arrays():
  record = make_record()
  # 4 models; the secret's rank per model and canary: exposure = 2 - log2 rank.
  ranks = np.array([[1, 4], [2, 1], [4, 2], [1, 1]])
  loglik = np.zeros((4, 2, 4))
  for m, k in np.ndindex(4, 2):
    loglik[m, k, 1:] = [3.0, 2.0, 1.0]
    loglik[m, k, 0] = 4.5 - ranks[m, k]  # 3.5 beats all, 2.5 all but 3, ..., 0.5 none
  extracted = np.array([[True, False], [False, True], [False, False], [True, True]])
  keep = np.zeros((4, 13), bool)
  keep[[0, 3], 10] = True        # canary 0 IN for models 0 and 3
  keep[[1, 3], 11] = True        # canary 1 IN for models 1, 3 (model 3 via one copy only)
  keep[1, 12] = True
  table = canary_table(loglik, extracted, keep, record)
  assert set(table) == {"canary", "row", "prefix", "secret", "repeats", "n_in", "n_out",
                        "exposure_in", "exposure_out", "extraction_in", "extraction_out",
                        "method", "space_size", "max_exposure"}
  assert all(len(v) == 2 for v in table.values())
  assert table["canary"].tolist() == [0, 1] and table["row"].tolist() == [10, 11]
  assert table["prefix"].tolist() == record["prefixes"] and table["secret"][1] == "3 0"
  assert table["repeats"].tolist() == [1, 2]
  assert table["n_in"].tolist() == [2, 2] and table["n_out"].tolist() == [2, 2]
  e = 2 - np.log2(ranks)
  np.testing.assert_allclose(table["exposure_in"], [(e[0, 0] + e[3, 0]) / 2,
                                                    (e[1, 1] + e[3, 1]) / 2])
  np.testing.assert_allclose(table["exposure_out"], [(e[1, 0] + e[2, 0]) / 2,
                                                     (e[0, 1] + e[2, 1]) / 2])
  np.testing.assert_allclose(table["extraction_in"], [1.0, 1.0])
  np.testing.assert_allclose(table["extraction_out"], [0.0, 0.0])
  assert table["method"].tolist() == ["exact", "exact"]
  assert table["space_size"].tolist() == [4, 4] and table["max_exposure"][0] == 2.0
  # Without any IN model a canary's IN columns are NaN.
  none_in = canary_table(loglik, extracted, np.zeros((4, 13), bool), record)
  assert np.all(np.isnan(none_in["exposure_in"])) and none_in["n_in"].tolist() == [0, 0]
  # Not exact: the fit, and the method says so.
  fitted = canary_table(loglik, extracted, keep, make_record(exact=False))
  assert fitted["method"][0] == "skew-normal fit" and fitted["space_size"][0] == 100


def test_canary_table_errors_name_the_fix():
  record = make_record()
  keep = np.zeros((4, 13), bool)
  with pytest.raises(MemjaxError, match=r"expected \[M, K, S \+ 1\] = \[4, 2, S \+ 1\]"):
    canary_table(np.zeros((4, 3, 4)), np.zeros((4, 2), bool), keep, record)
  with pytest.raises(MemjaxError, match="extracted has shape"):
    canary_table(np.zeros((4, 2, 4)), np.zeros((4, 3), bool), keep, record)
  with pytest.raises(MemjaxError, match="keep mask of the data with the canaries"):
    canary_table(np.zeros((4, 2, 4)), np.zeros((4, 2), bool), keep[:, :11], record)
  with pytest.raises(MemjaxError, match="no text canaries"):
    canary_table(np.zeros((4, 2, 4)), np.zeros((4, 2), bool), keep, {"count": 2})
