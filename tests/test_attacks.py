"""Tests of memjax.attacks: against plain numpy loops, against the published reference
implementations (tensorflow_privacy's advanced_mia; ml_privacy_meter's RMIA, re-typed), and on
data whose answer is known."""

import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from memjax import attacks
from memjax.errors import MemjaxError

REF_MODULE = "tensorflow_privacy.privacy.privacy_tests.membership_inference_attack.advanced_mia"
ALL_LIRA = tuple(attacks.LIRA_VARIANTS)


def _reference():
  return pytest.importorskip(REF_MODULE)


def _random_problem(m=24, n=50, a=2, seed=0, p_in=0.5):
  """Random statistics with example-dependent IN/OUT distributions and a Bernoulli design."""
  rng = np.random.default_rng(seed)
  keep = rng.random((m, n)) < p_in
  base = rng.normal(0, 2, size=(1, n, 1))
  shift = rng.exponential(1.0, size=(1, n, 1))
  scale = rng.uniform(0.3, 2.0, size=(1, n, 1))
  stats = base + shift * keep[..., None] + scale * rng.normal(size=(m, n, a))
  return stats, keep


def _balanced_keep(m, n, rng):
  return np.argsort(rng.random((m, n)), axis=0) < m // 2


# ----------------------------------------------------------------------------------------------
# lira_statistic
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lira_statistic_golden_and_stable():
  phi = attacks.lira_statistic(np.array([[1., 2., -3.], [-1., 1., 0.]]), np.array([1, 2]))
  assert phi.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(phi), [0.98185007, -1.12692801], atol=1e-6)
  big = attacks.lira_statistic(np.array([1000., 0., 0.]), np.array(0))
  assert float(big) == pytest.approx(1000 - math.log(2), abs=1e-4)
  huge = attacks.lira_statistic(np.array([[0., 5000., -3000.], [0., 0., 0.]]), np.array([2, 1]))
  np.testing.assert_allclose(np.asarray(huge), [-8000.0, -math.log(2)], rtol=1e-6)
  assert np.isfinite(np.asarray(huge)).all()


def test_lira_statistic_matches_numpy_and_jit():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 5, size=(4, 3, 10)).astype(np.float32)
  labels = rng.integers(0, 10, size=(4, 3))
  l64 = logits.astype(np.float64)
  p = np.exp(l64 - l64.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  p_y = np.take_along_axis(p, labels[..., None], -1)[..., 0]
  want = np.log(p_y) - np.log(1 - p_y)
  np.testing.assert_allclose(np.asarray(attacks.lira_statistic(logits, labels)), want,
                             atol=2e-5)
  jitted = jax.jit(attacks.lira_statistic)(jnp.asarray(logits), jnp.asarray(labels))
  np.testing.assert_allclose(np.asarray(jitted), want, atol=2e-5)
  vmapped = jax.jit(jax.vmap(attacks.lira_statistic))(jnp.asarray(logits), jnp.asarray(labels))
  np.testing.assert_allclose(np.asarray(vmapped), want, atol=2e-5)


def test_lira_statistic_matches_reference():
  ref = _reference()
  rng = np.random.default_rng(1)
  logits = rng.normal(0, 4, size=(200, 10))
  labels = rng.integers(0, 10, size=200)
  want = ref.calculate_statistic(logits.copy(), labels, option="logit")
  got = np.asarray(attacks.lira_statistic(logits, labels))
  assert np.max(np.abs(got - want)) <= 1e-4


def test_lira_statistic_bad_input():
  with pytest.raises(MemjaxError, match="integer"):
    attacks.lira_statistic(np.zeros((2, 3)), np.array([0.0, 1.0]))
  with pytest.raises(MemjaxError, match="shape"):
    attacks.lira_statistic(np.zeros((2, 3)), np.array([0, 1, 2]))
  with pytest.raises(MemjaxError, match=r"\[0, 3\)"):
    attacks.lira_statistic(np.zeros((2, 3)), np.array([0, 3]))
  with pytest.raises(MemjaxError, match="2 classes"):
    attacks.lira_statistic(np.zeros((2, 1)), np.array([0, 0]))


def test_statistic_conversions():
  s = np.array([-800.0, -3.0, 0.0, 2.5, 800.0])
  with np.errstate(over="ignore"):
    np.testing.assert_allclose(attacks.prob_from_statistic(s), 1 / (1 + np.exp(-s)))
  np.testing.assert_allclose(np.exp(attacks.log_prob_from_statistic(s)),
                             attacks.prob_from_statistic(s))
  np.testing.assert_allclose(attacks.loss_from_statistic(s), -attacks.log_prob_from_statistic(s))
  assert attacks.log_prob_from_statistic(s)[0] == pytest.approx(-800.0)
  np.testing.assert_array_equal(attacks.loss_attack(np.array([0.5, 2.0])), [-0.5, -2.0])


# ----------------------------------------------------------------------------------------------
# lira
# ----------------------------------------------------------------------------------------------


def _golden():
  shadow = np.array([1., 2., 4., 5., 0., 1., 2., 6.])[:, None, None]
  keep = np.array([True] * 4 + [False] * 4)[:, None]
  return np.array([[2.5]]), shadow, keep


@pytest.mark.parametrize("fix_variance", [False, True])
def test_lira_golden(fix_variance):
  t, shadow, keep = _golden()
  kw = dict(fix_variance=fix_variance)
  assert attacks.lira(t, shadow, keep, **kw)[0] == pytest.approx(0.41136612, abs=1e-8)
  two = attacks.lira(t, shadow, keep, online=False, one_sided=False, **kw)[0]
  assert two == pytest.approx(1.83845002, abs=1e-8)
  one = attacks.lira(t, shadow, keep, online=False, **kw)[0]
  assert one == pytest.approx(scipy.stats.norm.logcdf((2.5 - 1.5) / 2.2776084), abs=1e-7)


def _slow_lira(t, shadow, keep, online, fix_variance, one_sided):
  """Plain loops over examples: np.median / np.std per example, reference semantics."""
  m, n, a = shadow.shape
  mu = {}
  sd = {}
  for side, mask in (("in", keep), ("out", ~keep)):
    mus = np.full((n, a), np.nan)
    sds = np.full((n, a), np.nan)
    resid = []
    for i in range(n):
      vals = shadow[mask[:, i], i, :]
      if len(vals):
        mus[i] = np.median(vals, axis=0)
        sds[i] = np.std(vals, axis=0)
        resid.append(vals - mus[i])
    mus = np.where(np.isnan(mus), np.nanmean(mus, axis=0), mus)
    sds = np.where(np.isnan(sds), np.nanmean(sds, axis=0), sds)
    if fix_variance:
      sds = np.full((n, a), np.std(np.concatenate(resid)))
    mu[side], sd[side] = mus, sds + 1e-30
  scores = np.empty(n)
  for i in range(n):
    lo = scipy.stats.norm.logpdf(t[i], mu["out"][i], sd["out"][i])
    if online:
      li = scipy.stats.norm.logpdf(t[i], mu["in"][i], sd["in"][i])
      scores[i] = np.mean(li - lo)
    elif one_sided:
      scores[i] = np.mean(scipy.stats.norm.logcdf(t[i], mu["out"][i], sd["out"][i]))
    else:
      scores[i] = -np.mean(lo)
  return scores


@pytest.mark.parametrize("name", ALL_LIRA)
def test_lira_matches_slow_loop(name):
  online, fix_variance, one_sided = attacks.LIRA_VARIANTS[name]
  stats, keep = _random_problem(m=17, n=40, a=3, seed=2)
  keep[:, 0] = False  # an example without IN models
  keep[:, 1] = True  # and one without OUT models
  t, shadow, sk = stats[0], stats[1:], keep[1:]
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    got = attacks.lira(t, shadow, sk, online=online, fix_variance=fix_variance,
                       one_sided=one_sided)
  want = _slow_lira(t, shadow, sk, online, fix_variance, one_sided)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore:lira")
@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("fix_variance", [False, True])
def test_lira_matches_reference(online, fix_variance):
  """memjax = -compute_score_lira (online: option "both"; offline two-sided: option "out")."""
  ref = _reference()
  stats, keep = _random_problem(m=33, n=120, a=2, seed=3)
  keep[:, 5] = False  # no IN models: column-mean replacement in both
  keep[0, 6], keep[1:, 6] = False, False
  keep[1, 6] = True  # exactly one IN model: sd_in = 0 (+ 1e-30)
  t, shadow, sk = stats[0], stats[1:], keep[1:]
  stat_in = [shadow[sk[:, i], i, :] for i in range(t.shape[0])]
  stat_out = [shadow[~sk[:, i], i, :] for i in range(t.shape[0])]
  want = -ref.compute_score_lira(t, stat_in, stat_out, option="both" if online else "out",
                                 fix_variance=fix_variance)
  got = attacks.lira(t, shadow, sk, online=online, fix_variance=fix_variance, one_sided=False)
  finite = np.abs(want) < 1e6  # the sd = 1e-30 example: compare relatively
  assert np.max(np.abs(got - want)[finite]) <= 1e-4
  np.testing.assert_allclose(got[~finite], want[~finite], rtol=1e-9)


def test_lira_warns_and_rejects_bad_input():
  stats, keep = _random_problem(m=9, n=10, a=1, seed=4)
  t, shadow, sk = stats[0], stats[1:], keep[1:]
  sk_missing = sk.copy()
  sk_missing[:, 3] = False
  with pytest.warns(UserWarning, match="1 of 10 examples have no IN"):
    attacks.lira(t, shadow, sk_missing)
  with pytest.raises(MemjaxError, match="bool"):
    attacks.lira(t, shadow, sk.astype(int))
  with pytest.raises(MemjaxError, match=r"\[M, N\]"):
    attacks.lira(t, shadow, sk[:, :5])
  with pytest.raises(MemjaxError, match="target_stats"):
    attacks.lira(t[:5], shadow, sk)
  with pytest.raises(MemjaxError, match="no example has any IN"):
    attacks.lira(t, shadow, np.zeros_like(sk))
  attacks.lira(t, shadow, np.zeros_like(sk), online=False)  # offline needs no IN models
  bad = shadow.copy()
  bad[0, 0, 0] = np.nan
  with pytest.raises(MemjaxError, match="non-finite"):
    attacks.lira(t, bad, sk)
  with pytest.raises(MemjaxError, match="floating"):
    attacks.lira(t, shadow.astype(int), sk)
  np.testing.assert_allclose(attacks.lira(t[:, 0], shadow[..., 0], sk), attacks.lira(t, shadow, sk))


# ----------------------------------------------------------------------------------------------
# rmia
# ----------------------------------------------------------------------------------------------


def _slow_rmia(tq, rq, rkeep, tz, rz, gamma, a, balance=False):
  """Literal double loop over x and z of the paper's definition (probabilities [N], [R, N],
  [Z], [R, Z], linear space)."""
  scores = np.empty(len(tq))
  for i in range(len(tq)):
    if a is None and balance:
      px = (rq[rkeep[:, i], i].mean() + rq[~rkeep[:, i], i].mean()) / 2
    elif a is None:
      px = rq[:, i].mean()
    else:
      px = (1 + a) / 2 * rq[~rkeep[:, i], i].mean() + (1 - a) / 2
    count = 0
    for j in range(len(tz)):
      pz = rz[:, j].mean() if a is None else (1 + a) / 2 * rz[:, j].mean() + (1 - a) / 2
      count += (tq[i] / px) / (tz[j] / pz) > gamma
    scores[i] = count / len(tz)
  return scores


@pytest.mark.parametrize("gamma,a", [(1.0, None), (2.0, None), (1.0, 0.3), (1.5, 1.0),
                                     (1.0, 0.0)])
def test_rmia_matches_slow_loop(gamma, a):
  rng = np.random.default_rng(5)
  r, n, z, q = 12, 30, 25, 2
  rkeep = rng.random((r, n)) < 0.5
  rkeep[:, 0] = False
  rq = rng.uniform(0.01, 1, size=(r, n, q))
  tq = rng.uniform(0.01, 1, size=(n, q))
  rz = rng.uniform(0.01, 1, size=(r, z, q))
  tz = rng.uniform(0.01, 1, size=(z, q))
  got = attacks.rmia(tq, rq, rkeep, tz, rz, gamma=gamma, offline_a=a)
  want = _slow_rmia(tq.mean(-1), rq.mean(-1), rkeep, tz.mean(-1), rz.mean(-1), gamma, a)
  np.testing.assert_array_equal(got, want)


def test_rmia_balance_in_out_matches_slow_loop():
  rng = np.random.default_rng(5)
  r, n, z = 12, 30, 25
  rkeep = rng.random((r, n)) < 0.3
  rkeep[:, 1] = True
  rkeep[0, 1] = False  # a single OUT reference model
  rq, tq = rng.uniform(0.01, 1, size=(r, n)), rng.uniform(0.01, 1, size=n)
  rz, tz = rng.uniform(0.01, 1, size=(r, z)), rng.uniform(0.01, 1, size=z)
  for g in (1.0, 1.7):
    got = attacks.rmia(tq, rq, rkeep, tz, rz, gamma=g, balance_in_out=True)
    want = _slow_rmia(tq, rq, rkeep, tz, rz, g, None, balance=True)
    np.testing.assert_array_equal(got, want)
  rkeep[:, 0] = True  # no OUT reference model: the mean over the other examples' OUT means
  with pytest.warns(UserWarning, match="1 of 30 examples have no OUT"):
    got = attacks.rmia(tq, rq, rkeep, tz, rz, balance_in_out=True)
  assert np.isfinite(got).all()
  # With every example IN for exactly half of the reference models, balanced = pooled.
  half = _balanced_keep(r, n, rng)
  np.testing.assert_array_equal(attacks.rmia(tq, rq, half, tz, rz, balance_in_out=True),
                                attacks.rmia(tq, rq, None, tz, rz))


def test_rmia_bad_input():
  p = np.full((3, 4), 0.5)
  with pytest.raises(MemjaxError, match="probabilities"):
    attacks.rmia(np.full(4, 2.0), p, None, np.full(5, 0.5), np.full((3, 5), 0.5))
  with pytest.raises(MemjaxError, match="needs ref_keep"):
    attacks.rmia(np.full(4, 0.5), p, None, np.full(5, 0.5), np.full((3, 5), 0.5), offline_a=0.3)
  with pytest.raises(MemjaxError, match="shapes do not match"):
    attacks.rmia(np.full(4, 0.5), p, None, np.full(5, 0.5), np.full((2, 5), 0.5))
  with pytest.raises(MemjaxError, match="offline_a"):
    attacks.rmia(np.full(4, 0.5), p, p > 1, np.full(5, 0.5), np.full((3, 5), 0.5), offline_a=2.0)
  with pytest.raises(MemjaxError, match="needs ref_keep"):
    attacks.rmia(np.full(4, 0.5), p, None, np.full(5, 0.5), np.full((3, 5), 0.5),
                 balance_in_out=True)
  with pytest.raises(MemjaxError, match="OUT models only"):
    attacks.rmia(np.full(4, 0.5), p, p > 1, np.full(5, 0.5), np.full((3, 5), 0.5),
                 offline_a=0.3, balance_in_out=True)
  with pytest.raises(MemjaxError, match="no example has an IN reference model"):
    attacks.rmia(np.full(4, 0.5), p, p > 1, np.full(5, 0.5), np.full((3, 5), 0.5),
                 balance_in_out=True)


# ml_privacy_meter's offline RMIA, re-typed (logging dropped, 2-space indents) from
# github.com/privacytrustlab/ml_privacy_meter at commit e384af8fd9319b8eeb1303aa82474df1441e3c59,
# attacks.py: get_rmia_out_signals (lines 7-39), tune_offline_a (42-88), run_rmia (91-138); and
# audit.py audit_models (lines 176-194), which runs them per target for run_mia.py. Layout as
# there: all_signals [N, M], all_memberships [N, M] (audit.py transposes the [M, N] mask),
# population_signals [Z, M]; models come in pairs 2j, 2j + 1.


def _pm_get_rmia_out_signals(all_signals, all_memberships, target_model_idx,
                             num_reference_models):
  paired_model_idx = (
      target_model_idx + 1 if target_model_idx % 2 == 0 else target_model_idx - 1
  )
  # Add non-target and non-paired model indices
  columns = [
      i
      for i in range(all_signals.shape[1])
      if i != target_model_idx and i != paired_model_idx
  ][: 2 * num_reference_models]
  selected_signals = all_signals[:, columns]
  non_members = ~all_memberships[:, columns]
  out_signals = selected_signals * non_members
  # Sort the signals such that only the non-zero signals (out signals) are kept
  out_signals = -np.sort(-out_signals, axis=1)[:, :num_reference_models]
  return out_signals


def _pm_tune_offline_a(target_model_idx, all_signals, population_signals, all_memberships):
  from sklearn.metrics import auc, roc_curve
  paired_model_idx = (
      target_model_idx + 1 if target_model_idx % 2 == 0 else target_model_idx - 1
  )
  paired_memberships = all_memberships[:, paired_model_idx]
  offline_a = 0.0
  max_auc = 0
  for test_a in np.arange(0, 1.1, 0.1):
    mia_scores = _pm_run_rmia(
        paired_model_idx,
        all_signals,
        population_signals,
        all_memberships,
        1,
        test_a,
    )
    fpr_list, tpr_list, _ = roc_curve(
        paired_memberships.ravel(), mia_scores.ravel()
    )
    roc_auc = auc(fpr_list, tpr_list)
    if roc_auc > max_auc:
      max_auc = roc_auc
      offline_a = test_a
  return offline_a


def _pm_run_rmia(target_model_idx, all_signals, population_signals, all_memberships,
                 num_reference_models, offline_a):
  target_signals = all_signals[:, target_model_idx]
  out_signals = _pm_get_rmia_out_signals(
      all_signals, all_memberships, target_model_idx, num_reference_models
  )
  mean_out_x = np.mean(out_signals, axis=1)
  mean_x = (1 + offline_a) / 2 * mean_out_x + (1 - offline_a) / 2
  prob_ratio_x = target_signals.ravel() / mean_x

  z_signals = population_signals[:, target_model_idx]
  population_memberships = np.zeros_like(population_signals).astype(
      bool
  )  # All population data are OUT for all models
  z_out_signals = _pm_get_rmia_out_signals(
      population_signals,
      population_memberships,
      target_model_idx,
      num_reference_models,
  )
  mean_out_z = np.mean(z_out_signals, axis=1)
  mean_z = (1 + offline_a) / 2 * mean_out_z + (1 - offline_a) / 2
  prob_ratio_z = z_signals.ravel() / mean_z

  ratios = prob_ratio_x[:, np.newaxis] / prob_ratio_z
  counts = np.average(ratios > 1.0, axis=1)

  return counts


def _pm_audit_one_target(target_model_idx, all_signals, population_signals, all_memberships,
                         num_reference_models):
  offline_a = _pm_tune_offline_a(target_model_idx, all_signals, population_signals,
                                 all_memberships)
  return _pm_run_rmia(target_model_idx, all_signals, population_signals, all_memberships,
                      num_reference_models, offline_a), offline_a


def _pm_problem(m, n, z, design, seed, decimals=None):
  """Probabilities [N, M], memberships [N, M] and population [Z, M] in ml_privacy_meter's
  layout; "pairs": its design (models 2j and 2j + 1 on complementary halves), "bernoulli": any
  mix of IN and OUT (example 0 IN for every model); decimals: round, to make ties."""
  rng = np.random.default_rng(seed)
  if design == "pairs":
    half = rng.random((m // 2, n)) < 0.5
    keep = np.stack([half, ~half], axis=1).reshape(m, n)
  else:
    keep = rng.random((m, n)) < 0.5
    keep[:, 0] = True
  base = rng.normal(0, 1.5, size=(1, n))
  signals = scipy.special.expit(base + 1.5 * keep + 0.7 * rng.normal(size=(m, n)))
  pop = scipy.special.expit(rng.normal(0, 1.5, size=(1, z)) + 0.7 * rng.normal(size=(m, z)))
  if decimals is not None:
    signals, pop = np.round(signals, decimals), np.round(pop, decimals)
  return signals.T.copy(), keep.T.copy(), pop.T.copy()


@pytest.mark.parametrize("design,decimals", [("pairs", None), ("pairs", 2), ("bernoulli", None),
                                             ("bernoulli", 1)])
def test_rmia_privacy_meter_matches_retyped_reference(design, decimals):
  m, n, z = 10, 80, 50
  all_signals, all_memberships, population_signals = _pm_problem(m, n, z, design, seed=3,
                                                                 decimals=decimals)
  worst = 0.0
  for t in (0, 3, 6):
    p = t + 1 if t % 2 == 0 else t - 1
    for k in (1, 2, 4):
      with np.errstate(divide="ignore", invalid="ignore"):
        want, want_a = _pm_audit_one_target(t, all_signals, population_signals, all_memberships,
                                            k)
      refs = [i for i in range(m) if i not in (t, p)][:2 * k]
      args = (all_signals[:, t], all_signals[:, refs].T, all_memberships[:, refs].T,
              population_signals[:, t], population_signals[:, refs].T)
      paired = (all_signals[:, p], all_memberships[:, p], population_signals[:, p])
      got = attacks.rmia(*args, variant="privacy_meter", offline_a="tune", paired=paired)
      worst = max(worst, float(np.max(np.abs(got - want))))
      _, got_a = attacks._privacy_meter_rmia(*[np.asarray(v, np.float64) for v in args[:2]],
                                             args[2], *args[3:], "tune", paired)
      assert got_a == want_a
      with np.errstate(divide="ignore", invalid="ignore"):
        fixed = _pm_run_rmia(t, all_signals, population_signals, all_memberships, k, 0.3)
      np.testing.assert_array_equal(
          attacks.rmia(*args, variant="privacy_meter", offline_a=0.3), fixed)
  assert worst <= 1e-9


def test_rmia_privacy_meter_bad_input():
  r = np.full((4, 6), 0.5)
  keep = np.zeros((4, 6), bool)
  args = (np.full(6, 0.5), r, keep, np.full(5, 0.5), np.full((4, 5), 0.5))
  paired = (np.full(6, 0.5), np.arange(6) < 3, np.full(5, 0.5))
  for kwargs, match in [
      (dict(variant="lira"), "unknown variant"),
      (dict(variant="privacy_meter"), "offline only"),
      (dict(variant="privacy_meter", offline_a="tune"), "paired"),
      (dict(variant="privacy_meter", offline_a=0.3, paired=paired), "paired"),
      (dict(offline_a="tune", paired=paired), "variant='privacy_meter'"),
      (dict(variant="privacy_meter", offline_a=0.3, gamma=2.0), "gamma = 1"),
      (dict(variant="privacy_meter", offline_a=1.5), "offline_a"),
      (dict(variant="privacy_meter", offline_a="tune", paired=paired[:2]), "tuple"),
      (dict(variant="privacy_meter", offline_a="tune", paired=(paired[0], paired[1] > 1,
                                                               paired[2])), "members and non"),
      (dict(variant="privacy_meter", offline_a="tune", paired=(paired[0][:5], paired[1],
                                                               paired[2])), "paired"),
  ]:
    with pytest.raises(MemjaxError, match=match):
      attacks.rmia(*args, **kwargs)
  with pytest.raises(MemjaxError, match="at least 2"):
    attacks.rmia(args[0], r[:1], keep[:1], args[3], args[4][:1], variant="privacy_meter",
                 offline_a=0.3)


# ----------------------------------------------------------------------------------------------
# Leave-one-model-out evaluation
# ----------------------------------------------------------------------------------------------


def _naive_loo(stats, keep, test_stats, name, gamma=1.0, offline_a=0.3):
  """Per-target loop: every target scored from scratch against the other models."""
  out = []
  for t in range(stats.shape[0]):
    sh, sk = np.delete(stats, t, 0), np.delete(keep, t, 0)
    if name in attacks.LIRA_VARIANTS:
      online, fix_variance, one_sided = attacks.LIRA_VARIANTS[name]
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.append(attacks.lira(stats[t], sh, sk, online=online, fix_variance=fix_variance,
                                one_sided=one_sided))
    elif name == "rmia_privacy_meter":
      p = attacks.prob_from_statistic
      m = stats.shape[0]
      pair = t + 1 if t % 2 == 0 and t + 1 < m else t - 1
      refs = [i for i in range(m) if i not in (t, pair)][:2 * ((m - 2) // 2)]
      out.append(attacks.rmia(
          p(stats[t]), p(stats[refs]), keep[refs], p(test_stats[t]), p(test_stats[refs]),
          variant="privacy_meter", offline_a="tune",
          paired=(p(stats[pair]), keep[pair], p(test_stats[pair]))))
    elif name.startswith("rmia"):
      p = attacks.prob_from_statistic
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.append(attacks.rmia(p(stats[t]), p(sh), sk, p(test_stats[t]),
                                p(np.delete(test_stats, t, 0)), gamma=gamma,
                                offline_a=offline_a if name == "rmia_offline" else None,
                                balance_in_out=name == "rmia"))
    else:
      out.append(attacks.loss_attack(attacks.loss_from_statistic(stats[t, :, 0])))
  return np.stack(out)


@pytest.mark.parametrize("quantised", [False, True])
def test_evaluate_attacks_equals_naive_per_target_loop(quantised):
  # Small M and a Bernoulli design: some examples lose their last IN (OUT) model when the
  # target is removed; quantised statistics create ties and groups of equal values.
  stats, keep = _random_problem(m=9, n=45, a=2, seed=6)
  keep[:, 0] = True
  keep[1:, 1] = False
  keep[0, 1] = True  # only model 0 trained on example 1
  if quantised:
    stats = np.round(stats)
  stats = stats.astype(np.float32)
  test_stats = np.random.default_rng(7).normal(0, 2, size=(9, 20, 2)).astype(np.float32)
  with pytest.warns(UserWarning, match="complementary halves"):
    res = attacks.evaluate_attacks(stats, keep, test_stats=test_stats, attacks=attacks.ATTACKS,
                                   return_scores=True, rmia_gamma=1.3)
  for name in attacks.ATTACKS:
    want = _naive_loo(stats.astype(np.float64), keep, test_stats.astype(np.float64), name,
                      gamma=1.3)
    np.testing.assert_allclose(res[name].scores, want, rtol=1e-9, atol=1e-9, err_msg=name)


def test_evaluate_attacks_privacy_meter_is_its_audit_of_every_target(tmp_path):
  """evaluate_attacks' "rmia_privacy_meter" on ml_privacy_meter's pair design equals its
  audit_models (re-typed above) of each target with num_ref_models = (M - 2) / 2."""
  m, n, z = 10, 60, 40
  all_signals, all_memberships, population_signals = _pm_problem(m, n, z, "pairs", seed=4)
  stats = scipy.special.logit(all_signals.T)[..., None]
  test = scipy.special.logit(population_signals.T)[..., None]
  prob = attacks.prob_from_statistic(stats[..., 0]).T  # the probabilities memjax attacks
  pop = attacks.prob_from_statistic(test[..., 0]).T
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # its design: no warning
    res = attacks.evaluate_attacks(stats, all_memberships.T, test_stats=test,
                                   return_scores=True, attacks=("rmia_privacy_meter", "rmia"))
  r = res["rmia_privacy_meter"]
  for t in range(m):
    want, want_a = _pm_audit_one_target(t, prob, pop, all_memberships, (m - 2) // 2)
    np.testing.assert_array_equal(r.scores[t], want)
    assert r.per_target["offline_a"][t] == want_a
  assert len(set(r.per_target["offline_a"].tolist())) > 1  # tuned per target
  saved = json.loads(res.to_json(str(tmp_path / "a.json")))
  assert saved["attacks"]["rmia_privacy_meter"]["per_target"]["offline_a"] == (
      r.per_target["offline_a"].tolist())
  assert not np.array_equal(r.scores, res["rmia"].scores)
  with pytest.raises(MemjaxError, match="at least 4 models"):
    attacks.evaluate_attacks(stats[:3], all_memberships.T[:3], test_stats=test[:3],
                             attacks=("rmia_privacy_meter",))
  # Another design, each example OUT for 5 of the 10 models, and no signal at all (p = 0.5).
  # Of its 2k = 8 reference models, a member of the target has 4 or 5 OUT, a non-member 3 or 4:
  # the mean of the k = 4 largest OUT-masked probabilities pads some non-members with a zero,
  # which lowers their Pr(x) and raises their score: below chance.
  keep = _balanced_keep(m, n, np.random.default_rng(1))
  with pytest.warns(UserWarning, match="complementary halves"):
    res = attacks.evaluate_attacks(np.zeros((m, n, 1)), keep, test_stats=test,
                                   attacks=("rmia_privacy_meter",))
  assert res["rmia_privacy_meter"].auc < 0.45


def test_evaluate_attacks_loo_float64_exact():
  """Float64 scores of the vectorised path equal the naive loop to ~1e-9 (before float32)."""
  stats, keep = _random_problem(m=10, n=30, a=2, seed=8)
  targets = np.arange(10)
  got = attacks._loo_lira_scores(stats, keep, targets, ALL_LIRA, {})
  for name in ALL_LIRA:
    np.testing.assert_allclose(got[name], _naive_loo(stats, keep, None, name), rtol=1e-9,
                               atol=1e-9, err_msg=name)
  test_stats = np.random.default_rng(9).normal(size=(10, 15, 2))
  for a in (None, 0.3):
    got = attacks._loo_rmia_scores(stats, keep, test_stats, targets, 1.0, a)
    want = _naive_loo(stats, keep, test_stats, "rmia" if a is None else "rmia_offline")
    np.testing.assert_array_equal(got, want)


def test_evaluate_attacks_rmia_reference_mean_ignores_target_membership():
  """Leave-one-model-out, a member of the target has one IN reference model fewer than a
  non-member. Here the target (model 0) gives p = 0.5 to every example, so its output carries
  no membership signal, and the other models p = 0.9 to their members and 0.1 to the rest.
  The pooled reference mean of a member of model 0, (3 * 0.9 + 4 * 0.1) / 7, is below a
  non-member's, (4 * 0.9 + 3 * 0.1) / 7: the former pooled RMIA told them apart perfectly from
  the reference set alone. The equal-weighted mean is (0.9 + 0.1) / 2 for all: chance."""
  rng = np.random.default_rng(0)
  m, n, z = 8, 40, 30
  keep = _balanced_keep(m, n, rng)  # every example IN for 4 of the 8 models
  p = np.where(keep, 0.9, 0.1)
  p[0] = 0.5
  stats = scipy.special.logit(p)[..., None]
  test = np.zeros((m, z, 1))
  test[0, :, 0] = scipy.special.logit(rng.uniform(0.2, 0.8, z))
  members = keep[0]
  lq, target = np.log(p), np.array([0])
  pooled = np.exp(attacks._loo_log_mean(lq, None, target))[0]
  np.testing.assert_allclose(pooled[members], 3.1 / 7)
  np.testing.assert_allclose(pooled[~members], 3.9 / 7)
  np.testing.assert_allclose(np.exp(attacks._loo_rmia_log_px(lq, keep, target, None)), 0.5)
  pr = attacks.prob_from_statistic
  former = attacks.rmia(pr(stats[0]), pr(stats[1:]), None, pr(test[0]), pr(test[1:]))
  assert former[members].min() > former[~members].max()  # AUC 1 without any signal
  res = attacks.evaluate_attacks(stats, keep, test_stats=test, attacks=("rmia",),
                                 max_targets=1, return_scores=True)
  assert np.unique(res["rmia"].scores).size == 1 and res["rmia"].auc == 0.5


def _shifted_problem(m, n, shift, noise=1.0, seed=0, n_test=200):
  rng = np.random.default_rng(seed)
  keep = _balanced_keep(m, n, rng)
  base = rng.normal(0, 3, size=(1, n, 1))
  stats = base + shift[None, :, None] * keep[..., None] + noise * rng.normal(size=(m, n, 1))
  test = rng.normal(0, 3, size=(1, n_test, 1)) + noise * rng.normal(size=(m, n_test, 1))
  return stats.astype(np.float32), keep, test.astype(np.float32)


def test_known_answer_auc_of_shifted_gaussians():
  """IN ~ N(mu_i + 1, 1), OUT ~ N(mu_i, 1): the optimal test has AUC Phi(1 / sqrt 2) = 0.760."""
  stats, keep, test = _shifted_problem(m=128, n=300, shift=np.ones(300))
  res = attacks.evaluate_attacks(stats, keep, test_stats=test)
  theory = scipy.stats.norm.cdf(1 / math.sqrt(2))
  assert res["lira_online"].auc == pytest.approx(theory, abs=0.03)
  assert res["lira_online_fixed"].auc == pytest.approx(theory, abs=0.03)
  assert res["lira_offline"].auc == pytest.approx(theory, abs=0.03)
  assert res["rmia"].auc > theory - 0.06
  # The global loss threshold cannot undo the spread of mu_i (sd 3): AUC ~ Phi(1 / sqrt 20).
  assert res["loss"].auc == pytest.approx(scipy.stats.norm.cdf(1 / math.sqrt(20)), abs=0.03)
  per_target = res["lira_online"].per_target["auc"]
  assert per_target.shape == (128,) and abs(np.mean(per_target) - theory) < 0.03


def test_planted_memorized_examples_are_most_vulnerable():
  n = 200
  shift = np.zeros(n)
  shift[:10] = 4.0  # memorized: IN and OUT far apart; the rest: identical distributions
  stats, keep, test = _shifted_problem(m=64, n=n, shift=shift, seed=1)
  res = attacks.evaluate_attacks(stats, keep, test_stats=test, attacks=(
      "lira_online", "lira_offline", "lira_online_fixed", "rmia", "loss"))
  for name, r in res.attacks.items():
    v = r.per_example_auc
    assert v.shape == (n,)
    assert abs(np.median(v[10:]) - 0.5) < 0.05, name
    if name == "rmia":
      # RMIA compares probabilities, which saturate: a planted example whose p_y is ~0.9999
      # whether IN or OUT (statistic ~9.5 here) is exposed less. On average it is clear.
      assert v[:10].mean() > 0.9
      continue
    assert v[:10].min() > 0.9, name
    assert set(np.argsort(-v)[:10]) == set(range(10)), name


def test_results_table_json_plot_and_options(tmp_path):
  stats, keep, test = _shifted_problem(m=16, n=80, shift=np.full(80, 2.0), seed=2, n_test=30)
  res = attacks.evaluate_attacks(stats, keep, test_stats=test, max_targets=5)
  assert res.targets.tolist() == [0, 1, 2, 3, 4]
  assert list(res.attacks) == list(attacks.DEFAULT_ATTACKS)
  rows = res.table()
  assert [r["attack"] for r in rows] == list(attacks.DEFAULT_ATTACKS)
  # 5 targets x ~40 non-members: TPR at 1% FPR is measurable, at 0.1% and 0.01% it is not.
  assert not math.isnan(rows[0]["tpr@0.01"]) and math.isnan(rows[0]["tpr@0.001"])
  md = res.table(markdown=True)
  assert md.startswith("| attack | AUC") and "n/a" in md and len(md.splitlines()) == 8
  loaded = json.loads(res.to_json(str(tmp_path / "r.json"), per_example=True))
  assert loaded["attacks"]["lira_online"]["tpr_at_fpr"]["0.001"] is None
  assert len(loaded["attacks"]["loss"]["per_example_auc"]) == 80
  assert json.loads((tmp_path / "r.json").read_text()) == loaded
  cols = res.per_example_columns()
  assert set(cols) == {f"mia_auc_{a}" for a in attacks.DEFAULT_ATTACKS}
  path = attacks.plot_roc(res, str(tmp_path / "roc.png"))
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  r = res["lira_online"]
  assert r.num_members + r.num_nonmembers == 5 * 80 and r.scores is None


def test_evaluate_attacks_bad_input():
  stats, keep, test = _shifted_problem(m=8, n=20, shift=np.ones(20), n_test=10)
  with pytest.warns(UserWarning, match="need test_stats"):
    res = attacks.evaluate_attacks(stats, keep)
  assert "rmia" not in res.attacks
  with pytest.raises(MemjaxError, match="bool"):
    attacks.evaluate_attacks(stats, keep.astype(np.int8))
  with pytest.raises(MemjaxError, match="shape"):
    attacks.evaluate_attacks(stats, keep[:, :10])
  with pytest.raises(MemjaxError, match="unknown attack"):
    attacks.evaluate_attacks(stats, keep, attacks=("lira",))
  with pytest.raises(MemjaxError, match="same M"):
    attacks.evaluate_attacks(stats, keep, test_stats=test[:4])
  with pytest.raises(MemjaxError, match="max_targets"):
    attacks.evaluate_attacks(stats, keep, test_stats=test, max_targets=0)
  with pytest.raises(MemjaxError, match="at least 3 models"):
    attacks.evaluate_attacks(stats[:2], keep[:2])


def test_docstring_examples():
  import doctest
  assert doctest.testmod(attacks).failed == 0
