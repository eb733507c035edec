"""Estimators against plain numpy loops, hand-computed values and known-by-construction data."""

import numpy as np
import pytest
from scipy import stats

import memjax
from memjax import design, estimators
from memjax.errors import MemjaxError


def reference_memorization(correct, keep):
  """(memorization, SE) by a loop: Agresti-Caffo SE for 0/1 values, Welch SE otherwise."""
  out = np.full(keep.shape[1], np.nan)
  se = np.full(keep.shape[1], np.nan)
  binary = np.isin(correct, (0, 1)).all()
  for i in range(keep.shape[1]):
    a, b = correct[keep[:, i], i].astype(float), correct[~keep[:, i], i].astype(float)
    if len(a) and len(b):
      out[i] = a.mean() - b.mean()
      if binary:
        qa, qb = (a.sum() + 1) / (len(a) + 2), (b.sum() + 1) / (len(b) + 2)
        se[i] = np.sqrt(qa * (1 - qa) / (len(a) + 2) + qb * (1 - qb) / (len(b) + 2))
    if len(a) > 1 and len(b) > 1 and not binary:
      se[i] = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
  return out, se


def random_records(m=40, n=60, seed=0, prob=False, kind=None):
  """(values [m, n], keep [m, n]); kind: None/"bool", "prob", "log_prob" (real, negative),
  "count" (integers)."""
  kind = kind or ("prob" if prob else "bool")
  rng = np.random.default_rng(seed)
  keep = rng.random((m, n)) < 0.5
  p = rng.random(n)
  correct = rng.random((m, n)) < np.where(keep, 0.5 + p / 2, p)
  if kind == "prob":
    correct = np.clip(correct + rng.normal(0, 0.1, (m, n)), 0, 1)
  elif kind == "log_prob":
    correct = np.log(np.clip(correct + rng.normal(0, 0.2, (m, n)), 1e-6, 1))
  elif kind == "count":
    correct = correct * rng.integers(0, 7, (m, n))
  return correct, keep


@pytest.mark.parametrize("kind", ["bool", "prob", "log_prob", "count"])
def test_memorization_matches_numpy_loop(kind):
  correct, keep = random_records(kind=kind)
  keep[:, 0] = True  # no OUT models -> NaN
  keep[:, 1] = False  # no IN models -> NaN
  ref, ref_se = reference_memorization(correct, keep)
  np.testing.assert_allclose(memjax.memorization(correct, keep), ref, equal_nan=True)
  np.testing.assert_allclose(memjax.memorization_se(correct, keep), ref_se, equal_nan=True)
  assert np.isnan(memjax.memorization(correct, keep)[:2]).all()


def test_accepts_jax_arrays():
  import jax.numpy as jnp
  correct, keep = random_records()
  np.testing.assert_allclose(memjax.memorization(jnp.asarray(correct), jnp.asarray(keep)),
                             memjax.memorization(correct, keep))


def test_cscore_and_groups_match_loops():
  correct, keep = random_records(m=60)
  ref = np.array([correct[~keep[:, i], i].mean() for i in range(keep.shape[1])])
  np.testing.assert_allclose(memjax.cscore(correct, keep), ref)
  groups = np.repeat([0, 1, 2], 20)
  ref_g = np.array([np.mean([correct[groups == g][~keep[groups == g][:, i], i].mean()
                             for g in range(3)]) for i in range(keep.shape[1])])
  np.testing.assert_allclose(memjax.cscore(correct, keep, groups), ref_g)
  se_ref = np.array([correct[~keep[:, i], i].std(ddof=1) / np.sqrt((~keep[:, i]).sum())
                     for i in range(keep.shape[1])])
  np.testing.assert_allclose(memjax.cscore_se(correct, keep), se_ref)


def test_influence_matches_loop():
  rng = np.random.default_rng(1)
  keep = rng.random((30, 12)) < 0.5
  correct_test = rng.random((30, 7)) < 0.6
  infl = memjax.influence(correct_test, keep)
  assert infl.shape == (12, 7)
  for i in range(12):
    for j in range(7):
      expected = (correct_test[keep[:, i], j].mean() - correct_test[~keep[:, i], j].mean())
      np.testing.assert_allclose(infl[i, j], expected)


def test_known_by_construction():
  # Example 0 is right only when trained on (memorized: 1), example 1 always right (0),
  # example 2 right half of the time regardless of training (0 in expectation).
  m = 200
  keep = np.zeros((m, 3), bool)
  keep[::2] = True
  correct = np.stack([keep[:, 0], np.ones(m, bool), np.arange(m) % 4 < 2], axis=1)
  mem = memjax.memorization(correct, keep)
  np.testing.assert_allclose(mem, [1.0, 0.0, 0.0])
  np.testing.assert_allclose(memjax.cscore(correct, keep), [0.0, 1.0, 0.5])
  assert memjax.count_memorized(mem) == 1
  lo, hi = memjax.memorization_ci(correct, keep)
  assert lo[2] < 0 < hi[2]


def test_standard_error_is_calibrated():
  # With true memorization 0.3, the 95% interval covers it about 95% of the time.
  rng = np.random.default_rng(0)
  m, n = 64, 4000
  keep = rng.random((m, n)) < 0.5
  correct = rng.random((m, n)) < np.where(keep, 0.9, 0.6)
  lo, hi = memjax.memorization_ci(correct, keep)
  coverage = np.mean((lo <= 0.3) & (0.3 <= hi))
  assert 0.92 < coverage < 0.98


def test_count_memorized_ignores_nan():
  assert memjax.count_memorized([0.1, 0.25, np.nan, 0.9]) == 2
  # The mask behind it keeps the shape (e.g. [T, N] histories), NaN never memorized.
  mask = estimators.is_memorized(np.array([[0.1, 0.25], [np.nan, 0.9]], np.float32))
  assert mask.tolist() == [[False, True], [False, True]]
  assert memjax.count_memorized([0.1, 0.9], threshold=0.05) == 2


@pytest.mark.parametrize("correct, keep, message", [
    (np.ones((3, 4)), np.ones((3, 4)) * 0.5, "boolean"),
    (np.ones((3, 4)), np.full((3, 4), 2), "values other than 0 and 1"),
    (np.ones((2, 4)), np.ones((3, 4), bool), "same number of models"),
    (np.ones(4), np.ones((3, 4), bool), "same number of models"),
    (np.ones((3, 4)) * 1j, np.ones((3, 4), bool), "complex"),
    (np.full((3, 4), "a"), np.ones((3, 4), bool), "must hold numbers"),
])
def test_bad_inputs(correct, keep, message):
  with pytest.raises(MemjaxError, match=message):
    memjax.memorization(correct, keep)


def test_groups_validation():
  correct, keep = random_records()
  with pytest.raises(MemjaxError, match="groups"):
    estimators.cscore(correct, keep, groups=np.zeros(3, int))


# ---- real-valued measures (counterfactual memorization) ----------------------------------------
def counts(values, keep):
  """(x_in, n_in, x_out, n_out), each [N]: right IN models, IN models, right OUT, OUT models."""
  values = np.asarray(values, float)
  return ((values * keep).sum(0), keep.sum(0), (values * ~keep).sum(0), (~keep).sum(0))


def test_binary_values_use_the_difference_interval():
  # bool, 0/1 integers and 0/1 floats are binary: the interval is difference_ci of the counts
  # (Newcombe's rule on Clopper-Pearson limits), whatever the dtype.
  correct, keep = random_records()
  keep[:, 0] = True  # no OUT model: NaN
  keep[:2, 1], keep[2:, 1] = True, False  # 2 IN models
  expected = estimators.difference_ci(*counts(correct, keep))
  assert estimators.DEFAULT_DIFFERENCE_METHOD == "newcombe-cp"
  for values in (correct, correct.astype(np.int8), correct.astype(np.float32)):
    lo, hi = memjax.memorization_ci(values, keep)
    np.testing.assert_array_equal(lo, expected[0])
    np.testing.assert_array_equal(hi, expected[1])
  mem = memjax.memorization(correct, keep)
  assert np.isnan([lo[0], hi[0]]).all()
  assert np.all((-1 <= lo[1:]) & (lo[1:] < mem[1:]) & (mem[1:] < hi[1:]) & (hi[1:] <= 1))
  lo90, hi90 = memjax.memorization_ci(correct, keep, level=0.9)
  assert np.all((lo[1:] < lo90[1:]) & (hi90[1:] < hi[1:]))


def test_binary_interval_and_se_never_collapse():
  # Every IN and every OUT model right (example 0) or wrong (1), or right exactly when IN (2):
  # the plug-in SE is 0 and the Wald interval a point; the new SE and interval are not.
  m = 256
  keep = np.zeros((m, 3), bool)
  keep[::2] = True
  correct = np.stack([np.ones(m, bool), np.zeros(m, bool), keep[:, 2]], axis=1)
  mem = memjax.memorization(correct, keep)
  lo, hi = memjax.memorization_ci(correct, keep)
  se = memjax.memorization_se(correct, keep)
  np.testing.assert_array_equal(mem, [0, 0, 1])
  assert np.all(se > 0) and np.all(lo < mem) and np.all(hi[:2] > mem[:2]) and hi[2] == 1
  # 128 vs 128 models: the exact limits of 128/128 and 0/128 are 1 - u and u, u = 1 - 0.025^(1/128);
  # all right: low = 0 - sqrt((1 - (1 - u))^2 + (1 - 1)^2) = -u; memorized: 1 - sqrt(u^2 + u^2).
  u = 1 - 0.025 ** (1 / 128)
  np.testing.assert_allclose([lo[0], hi[0], lo[2]], [-u, u, 1 - np.sqrt(2) * u], rtol=1e-12)
  np.testing.assert_allclose(se[:2], np.sqrt(2 * (129 / 130) * (1 / 130) / 130))




def welch_reference(values, keep, i, level=0.95):
  """Plain numpy Welch statistics of example i: (estimate, se, df, low, high)."""
  a, b = values[keep[:, i], i].astype(float), values[~keep[:, i], i].astype(float)
  va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  se = np.sqrt(va + vb)
  df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
  q = stats.t.ppf(0.5 + level / 2, df)
  est = a.mean() - b.mean()
  return est, se, df, est - q * se, est + q * se


@pytest.mark.parametrize("kind", ["prob", "log_prob", "count"])
def test_real_values_welch_interval_matches_loop_and_scipy(kind):
  values, keep = random_records(m=30, n=40, seed=3, kind=kind)
  est = memjax.memorization(values, keep)
  se = memjax.memorization_se(values, keep)
  _, _, df = estimators._welch(values.astype(float), keep)
  for level in (0.95, 0.8):
    lo, hi = memjax.memorization_ci(values, keep, level=level)
    for i in range(keep.shape[1]):
      ref = welch_reference(values, keep, i, level)
      np.testing.assert_allclose([est[i], se[i], df[i], lo[i], hi[i]], ref, rtol=1e-10)
      # scipy's Welch test: statistic = estimate / se, the same df and interval.
      res = stats.ttest_ind(values[keep[:, i], i], values[~keep[:, i], i], equal_var=False)
      np.testing.assert_allclose(se[i], est[i] / res.statistic, rtol=1e-10)
      np.testing.assert_allclose(df[i], res.df, rtol=1e-10)
      ci = res.confidence_interval(confidence_level=level)
      np.testing.assert_allclose([lo[i], hi[i]], [ci.low, ci.high], rtol=1e-10)
  # The t interval is wider than the normal one with the same standard error.
  lo, hi = memjax.memorization_ci(values, keep)
  z_lo, z_hi = memjax.confidence_interval(est, se)
  assert np.all(lo < z_lo) and np.all(hi > z_hi)


def test_welch_interval_degenerate_cases():
  keep = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 0], [0, 1, 0]], bool)
  values = np.array([[2.0, 1.0, 5.0], [2.0, 2.0, 7.0], [0.5, 3.0, 1.0], [0.5, 4.0, 2.5]])
  lo, hi = memjax.memorization_ci(values, keep)
  # Example 0: no spread on either side -> the interval is the point 1.5.
  assert lo[0] == hi[0] == 1.5
  # Example 1: no OUT model; example 2: one IN model -> no standard error, no interval.
  assert np.isnan([lo[1], hi[1], lo[2], hi[2]]).all()
  assert np.isnan(memjax.memorization_se(values, keep)[1:]).all()


def construct(m, n, seed):
  """values = base_i + delta_i * keep + Gaussian noise whose sd differs between IN and OUT
  models, with exactly m / 2 IN models per example. Returns (values, keep, base, delta)."""
  rng = np.random.default_rng(seed)
  keep = rng.permuted(np.repeat([[True], [False]], m // 2, axis=0) * np.ones((1, n), bool),
                      axis=0)
  base, delta = rng.normal(-2, 1, n), rng.uniform(0, 3, n)
  sd = np.where(keep, 0.3, 1.0) * rng.uniform(0.5, 2, n)
  return base + delta * keep + sd * rng.standard_normal((m, n)), keep, base, delta


def test_real_values_known_by_construction():
  # With 200 models the estimate recovers delta_i within a few SE for every example, and the
  # C-score (the OUT mean) recovers base_i.
  values, keep, base, delta = construct(200, 500, seed=6)
  est, se = memjax.memorization(values, keep), memjax.memorization_se(values, keep)
  assert np.all(np.abs(est - delta) < 5 * se)
  assert abs(np.mean((est - delta) / se)) < 4 / np.sqrt(500)
  np.testing.assert_allclose(np.std((est - delta) / se), 1, atol=0.1)
  cs, cs_se = memjax.cscore(values, keep), memjax.cscore_se(values, keep)
  assert np.all(np.abs(cs - base) < 5 * cs_se)


def test_welch_interval_coverage():
  # Monte Carlo over 4,000 synthetic examples with 6 IN and 6 OUT models each: the 95% Welch
  # interval covers the true delta_i 95% of the time (fixed seed: 0.9505); the normal interval
  # with the same SE under-covers (0.90).
  values, keep, _, delta = construct(12, 4000, seed=7)
  est, se = memjax.memorization(values, keep), memjax.memorization_se(values, keep)
  lo, hi = memjax.memorization_ci(values, keep)
  coverage = np.mean((lo <= delta) & (delta <= hi))
  assert 0.93 <= coverage <= 0.97, coverage
  z_lo, z_hi = memjax.confidence_interval(est, se)
  assert np.mean((z_lo <= delta) & (delta <= z_hi)) < coverage - 0.03


def test_influence_of_real_values_matches_loop():
  rng = np.random.default_rng(2)
  keep = rng.random((25, 10)) < 0.5
  values_test = rng.normal(size=(25, 6))
  infl = memjax.influence(values_test, keep)
  for i in range(10):
    np.testing.assert_allclose(infl[:, 0][i], values_test[keep[:, i], 0].mean()
                               - values_test[~keep[:, i], 0].mean())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fn", [memjax.memorization, memjax.memorization_se,
                                memjax.memorization_ci, memjax.cscore, memjax.cscore_se])
def test_non_finite_values_raise(fn, bad):
  values, keep = random_records(kind="log_prob")
  values[3, 7] = bad
  with pytest.raises(MemjaxError, match=r"non-finite values.*model 3, example 7.*clip"):
    fn(values, keep)


def test_non_finite_test_values_raise():
  values, keep = random_records(kind="log_prob")
  test = values[:, :5].copy()
  test[1, 2] = np.nan
  with pytest.raises(MemjaxError, match="values_test has 1 non-finite.*model 1, test example 2"):
    memjax.influence(test, keep)


def test_keep_mask_validator():
  keep = np.array([[1, 0], [0, 1]])
  assert estimators.as_keep_mask(keep).dtype == bool
  assert estimators.as_keep_mask(keep, (2, 2)).tolist() == [[True, False], [False, True]]
  with pytest.raises(MemjaxError, match=r"ref_keep must be a boolean \[R, N\] mask.*"
                     r"ref_keep.astype\(bool\)"):
    estimators.as_keep_mask(keep, name="ref_keep", shape_doc="[R, N]", integers=False)
  with pytest.raises(MemjaxError, match=r"keep has shape \(2, 2\) but must be \[M, N\] = "
                     r"\(2, 3\) to match the history"):
    estimators.as_keep_mask(keep, (2, 3), against="the history")


def test_memorization_history_of_real_values_and_compatibility():
  rng = np.random.default_rng(4)
  keep = rng.random((12, 20)) < 0.5
  keep[:, 0] = True
  values = rng.normal(size=(3, 12, 20))
  hist = estimators.memorization_history(values, keep)
  for t in range(3):
    np.testing.assert_allclose(hist[t], memjax.memorization(values[t], keep), rtol=1e-12,
                               atol=1e-14, equal_nan=True)
  correct = values > 0
  np.testing.assert_array_equal(estimators.memorization_history(correct, keep)[1],
                                memjax.memorization(correct[1], keep))  # bit for bit
  values[2, 5, 7] = np.nan
  with pytest.raises(MemjaxError, match="evaluation 2, model 5, example 7"):
    estimators.memorization_history(values, keep)
  # The per-epoch estimators moved here from memjax.studies, which still exports them.
  from memjax import studies
  for name in ("memorization_history", "memorized_count_se", "null_memorized_count"):
    assert getattr(studies, name) is getattr(estimators, name)


# ---- per-evaluation memorization, its bootstrap SE and permutation null -----------------------
def random_history(t=3, m=8, n=40, seed=0):
  """[T, M, N] correctness that depends on keep (IN models right more often) and a [M, N] keep."""
  rng = np.random.default_rng(seed)
  keep = rng.random((m, n)) < 0.5
  p = np.where(keep, 0.8, 0.4)
  return rng.random((t, m, n)) < p, keep


def memorized_counts(correct, keep, threshold=estimators.DEFAULT_THRESHOLD):
  """[T] counts of examples with score >= threshold, one estimators.memorization call per row."""
  return np.array([estimators.count_memorized(estimators.memorization(c, keep), threshold)
                   for c in correct])


def test_memorization_history_known_values():
  keep = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
  first = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], bool)
  second = np.array([[1, 1], [0, 1], [0, 0], [0, 0]], bool)
  # Example 0 is IN for models 0, 1 and OUT for 2, 3; example 1 IN for 1, 2 and OUT for 0, 3.
  # first: example 0 IN 2/2 - OUT 0/2 = 1; example 1 IN 2/2 - OUT 1/2 = 0.5.
  # second: example 0 IN 1/2 - OUT 0/2 = 0.5; example 1 IN 1/2 - OUT 1/2 = 0.
  hist = estimators.memorization_history(np.stack([first, second]), keep)
  assert hist.dtype == np.float64
  np.testing.assert_allclose(hist, [[1.0, 0.5], [0.5, 0.0]])


def test_memorization_history_matches_estimators_and_nan():
  correct, keep = random_history(t=4, m=6, n=30)
  keep[0], keep[1] = True, False  # every example has an IN and an OUT model...
  keep[:, 0] = True   # ... but example 0 has no OUT model
  keep[:, 1] = False  # and example 1 no IN model
  hist = estimators.memorization_history(correct, keep)
  assert hist.shape == (4, 30)
  for t in range(4):
    np.testing.assert_allclose(hist[t], estimators.memorization(correct[t], keep))
  assert np.isnan(hist[:, :2]).all() and np.isfinite(hist[:, 2:]).all()


def test_memorization_history_shape_errors():
  correct, keep = random_history(t=2, m=4, n=5)
  with pytest.raises(MemjaxError, match=r"\[T, M, N\]"):
    estimators.memorization_history(correct[0], keep)
  with pytest.raises(MemjaxError, match=r"matching keep"):
    estimators.memorization_history(correct, keep[:, :4])


def test_memorized_count_se_matches_explicit_resampling():
  # M = 8: every score a resample can give is a/n_in - b/n_out with n_in + n_out = 8, so a score
  # exactly at 0.25 is a dyadic fraction and float32 vs float64 cannot disagree at the threshold.
  correct, keep = random_history(t=3, m=8, n=50, seed=1)
  se = estimators.memorized_count_se(correct, keep, n_boot=40, seed=3)
  rng = np.random.default_rng(3)
  weights = rng.multinomial(8, np.full(8, 1 / 8), size=40)
  counts = []
  for w in weights:
    idx = np.repeat(np.arange(8), w)  # the resampled models, repeats included
    hist = estimators.memorization_history(correct[:, idx], keep[idx])
    counts.append((np.nan_to_num(hist, nan=-np.inf) >= estimators.DEFAULT_THRESHOLD).sum(-1))
  expected = np.std(counts, axis=0, ddof=1)
  assert se.shape == (3,)
  np.testing.assert_allclose(se, expected, rtol=1e-12)
  assert (se > 0).all()
  # [M, N] input gives a float equal to the single-evaluation answer.
  single = estimators.memorized_count_se(correct[1], keep, n_boot=40, seed=3)
  assert isinstance(single, float) and single == pytest.approx(expected[1])
  # Deterministic for a seed.
  np.testing.assert_array_equal(se, estimators.memorized_count_se(correct, keep, n_boot=40, seed=3))


def test_memorized_count_se_zero_when_nothing_varies():
  _, keep = random_history(m=8, n=20)
  always = np.ones((2, 8, 20), bool)  # every model right on everything: all scores 0
  np.testing.assert_array_equal(estimators.memorized_count_se(always, keep), [0.0, 0.0])
  assert estimators.memorized_count_se(always[0], keep) == 0.0


def test_null_memorized_count_matches_reference():
  correct, keep = random_history(t=2, m=8, n=60, seed=2)
  got = estimators.null_memorized_count(correct, keep, n_perm=3, seed=5)
  rng = np.random.default_rng(5)
  expected = np.zeros(2)
  for _ in range(3):
    perm = np.argsort(rng.random(keep.shape), axis=0)
    shuffled = np.stack([keep[perm[:, i], i] for i in range(keep.shape[1])], axis=1)
    np.testing.assert_array_equal(shuffled.sum(0), keep.sum(0))  # IN counts kept per example
    expected += memorized_counts(correct, shuffled)
  np.testing.assert_allclose(got, expected / 3)
  # The real signal (IN right 80%, OUT 40%) is well above the permutation floor.
  assert (memorized_counts(correct, keep) > got + 10).all()
  assert isinstance(estimators.null_memorized_count(correct[0], keep, n_perm=3, seed=5), float)


def test_null_memorized_count_zero_without_dependence_on_keep():
  _, keep = random_history(m=8, n=30)
  per_example = np.random.default_rng(0).random(30) < 0.5
  correct = np.broadcast_to(per_example, (2, 8, 30))  # same answer from every model
  np.testing.assert_array_equal(estimators.null_memorized_count(correct, keep), [0.0, 0.0])


# ---- several subset ratios: estimates within groups, averaged over groups ---------------------
def grouped_records(kind="bool", m=45, n=24, seed=5):
  """(values, keep, groups) with three unequal groups of models; some examples lack IN or OUT
  models in a group (column 0: no IN model in group 0; column 1: no OUT model anywhere)."""
  values, keep = random_records(m=m, n=n, seed=seed, kind=kind)
  groups = np.repeat([2, 0, 7], [20, 15, 10])  # labels need not be 0..G-1 nor sorted
  keep[groups == 0, 0] = False
  keep[:, 1] = True
  return values, keep, groups


def reference_grouped(values, keep, groups):
  """Per example, a plain loop: (estimate, SE, [(x_in, n_in, x_out, n_out, a, b) per used
  group]) with a, b the squared SE terms of the two sides (Agresti-Caffo for 0/1 values)."""
  binary = np.isin(values, (0, 1)).all()
  est, se, parts = [], [], []
  for i in range(keep.shape[1]):
    diffs, variances, used = [], [], []
    for g in np.unique(groups):
      a = values[(groups == g) & keep[:, i], i].astype(float)
      b = values[(groups == g) & ~keep[:, i], i].astype(float)
      if not (len(a) and len(b)):
        continue
      diffs.append(a.mean() - b.mean())
      if binary:
        qa, qb = (a.sum() + 1) / (len(a) + 2), (b.sum() + 1) / (len(b) + 2)
        va, vb = qa * (1 - qa) / (len(a) + 2), qb * (1 - qb) / (len(b) + 2)
      else:
        va = a.var(ddof=1) / len(a) if len(a) > 1 else np.nan
        vb = b.var(ddof=1) / len(b) if len(b) > 1 else np.nan
      variances.append(va + vb)
      used.append((a.sum(), len(a), b.sum(), len(b), va, vb))
    est.append(np.mean(diffs) if diffs else np.nan)
    se.append(np.sqrt(np.sum(variances)) / len(diffs) if diffs else np.nan)
    parts.append(used)
  return np.array(est), np.array(se), parts


@pytest.mark.parametrize("kind", ["bool", "prob", "log_prob"])
def test_grouped_estimates_match_loop(kind):
  values, keep, groups = grouped_records(kind)
  est, se, parts = reference_grouped(values, keep, groups)
  assert np.isnan(est[1]) and np.isfinite(est[0]) and len(parts[0]) == 2
  np.testing.assert_allclose(memjax.memorization(values, keep, groups), est, rtol=1e-12,
                             atol=1e-15, equal_nan=True)
  np.testing.assert_allclose(memjax.memorization_se(values, keep, groups), se, rtol=1e-12,
                             equal_nan=True)
  lo, hi = memjax.memorization_ci(values, keep, groups=groups)
  for i in range(keep.shape[1]):
    if not parts[i]:
      assert np.isnan([lo[i], hi[i]]).all()
      continue
    x_in, n_in, x_out, n_out, va, vb = map(np.array, zip(*parts[i]))
    g = len(parts[i])
    if kind == "bool":
      # Square-and-add over all 2G proportions, Clopper-Pearson limits from scipy.
      ci = lambda x, n: stats.binomtest(int(x), int(n)).proportion_ci(0.95, method="exact")
      cin, cout = [ci(*c) for c in zip(x_in, n_in)], [ci(*c) for c in zip(x_out, n_out)]
      p_in, p_out = x_in / n_in, x_out / n_out
      down = np.sum((p_in - [c.low for c in cin]) ** 2 + ([c.high for c in cout] - p_out) ** 2)
      up = np.sum(([c.high for c in cin] - p_in) ** 2 + (p_out - [c.low for c in cout]) ** 2)
      expected = [max(est[i] - np.sqrt(down) / g, -1), min(est[i] + np.sqrt(up) / g, 1)]
    else:
      # Welch t: the Satterthwaite df of the 2G variance terms.
      df = np.sum(va + vb) ** 2 / np.sum(va ** 2 / (n_in - 1) + vb ** 2 / (n_out - 1))
      q = stats.t.ppf(0.975, df)
      expected = [est[i] - q * se[i], est[i] + q * se[i]]
    np.testing.assert_allclose([lo[i], hi[i]], expected, rtol=1e-10, atol=1e-12,
                               err_msg=f"example {i}")


def test_grouped_influence_and_history_match_loop():
  values, keep, groups = grouped_records("log_prob")
  test = np.random.default_rng(9).normal(size=(keep.shape[0], 6))
  infl = memjax.influence(test, keep, groups)
  for i in range(keep.shape[1]):
    for j in range(6):
      expected = reference_grouped(test[:, j:j + 1], keep[:, i:i + 1], groups)[0][0]
      np.testing.assert_allclose(infl[i, j], expected, rtol=1e-12, atol=1e-15, equal_nan=True)
  history = np.stack([values, values > -0.5, np.exp(values)])  # float, bool, float
  for t in range(3):
    got = estimators.memorization_history(history[t:t + 1], keep, groups)[0]
    np.testing.assert_allclose(got, memjax.memorization(history[t], keep, groups), rtol=1e-12,
                               atol=1e-15, equal_nan=True)
  correct = np.stack([values > -0.5, values > -1])
  np.testing.assert_array_equal(estimators.memorization_history(correct, keep, groups)[1],
                                memjax.memorization(correct[1], keep, groups))  # bit for bit


@pytest.mark.parametrize("kind", ["bool", "log_prob"])
def test_without_groups_nothing_changes(kind):
  values, keep, _ = grouped_records(kind)
  # Today's estimate, bit for bit: the IN mean minus the OUT mean over all models.
  mean_in = estimators._masked_mean_var(values.astype(float), keep)[0]
  mean_out = estimators._masked_mean_var(values.astype(float), ~keep)[0]
  one_group = np.full(keep.shape[0], 3)
  np.testing.assert_array_equal(memjax.memorization(values, keep), mean_in - mean_out)
  np.testing.assert_array_equal(memjax.memorization(values, keep, one_group), mean_in - mean_out)
  # A single group is the pooled estimator for every function.
  for fn in (memjax.memorization_se, memjax.memorization_ci):
    np.testing.assert_array_equal(fn(values, keep), fn(values, keep, groups=one_group))
  test = values[:, :5]
  np.testing.assert_array_equal(memjax.influence(test, keep),
                                memjax.influence(test, keep, one_group))
  history = np.stack([values, values[::-1]])
  np.testing.assert_array_equal(estimators.memorization_history(history, keep),
                                estimators.memorization_history(history, keep, one_group))


@pytest.mark.parametrize("fn", [memjax.memorization, memjax.memorization_se,
                                memjax.memorization_ci, memjax.influence])
def test_grouped_functions_validate_groups(fn):
  values, keep, groups = grouped_records()
  for bad in (groups[:-1], groups.astype(float)):
    with pytest.raises(MemjaxError, match=r"groups must be \[M\]=45 integers"):
      fn(values, keep, groups=bad)
  with pytest.raises(MemjaxError, match="groups"):
    estimators.memorization_history(values[None], keep, groups[:3])


def test_null_world_groups_remove_the_ratio_bias():
  # Correctness depends only on the model's subset ratio (P(correct) = 0.6 + 0.25 r), never on
  # whether it trained on the example: true memorization is 0 everywhere. Pooling all models
  # biases it (IN models come more often from large ratios: mean ratio 0.633 IN vs 0.367 OUT,
  # so + 0.25 * 0.267 = +0.067); within-group estimates averaged over groups do not.
  ratios = tuple(k / 10 for k in range(1, 10))
  d = design.make("balanced", 270, 3000, ratios, seed=0)
  rng = np.random.default_rng(0)
  correct = rng.random(d.keep.shape) < (0.6 + 0.25 * np.asarray(ratios)[d.groups])[:, None]
  pooled = memjax.memorization(correct, d.keep)
  grouped = memjax.memorization(correct, d.keep, d.groups)
  print(f"\nnull world: pooled mean {pooled.mean():+.4f}, grouped mean {grouped.mean():+.4f}")
  assert abs(grouped.mean()) <= 0.005
  assert 0.06 <= pooled.mean() <= 0.075
  # The grouped interval covers 0 for about 95% of the examples (each one a replicate).
  lo, hi = memjax.memorization_ci(correct, d.keep, groups=d.groups)
  plo, phi = memjax.memorization_ci(correct, d.keep)
  coverage, pooled_coverage = np.mean((lo <= 0) & (0 <= hi)), np.mean((plo <= 0) & (0 <= phi))
  print(f"coverage of 0: grouped {coverage:.3f}, pooled {pooled_coverage:.3f}")
  assert 0.94 <= coverage <= 0.99 and pooled_coverage < 0.85
  # The same for influence on held-out points and for the per-epoch history.
  test = rng.random((270, 200)) < (0.6 + 0.25 * np.asarray(ratios)[d.groups])[:, None]
  assert abs(np.mean(memjax.influence(test, d.keep, d.groups))) <= 0.005
  assert np.mean(memjax.influence(test, d.keep)) > 0.05
  history = estimators.memorization_history(correct[None], d.keep, d.groups)
  np.testing.assert_array_equal(history[0], grouped)
