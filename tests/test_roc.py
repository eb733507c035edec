"""Tests of memjax.roc: against scikit-learn, brute force, and data with a known answer."""

import numpy as np
import pytest
from sklearn import metrics as skm

from memjax import roc
from memjax.errors import MemjaxError


def _data(n=400, seed=0, ties=True):
  rng = np.random.default_rng(seed)
  y = rng.random(n) < 0.4
  s = rng.normal(size=n) + 0.8 * y
  if ties:
    s = np.round(s, 1)  # many tied scores, across classes too
  return s, y


def _brute_tpr_at_fpr(s, y, f):
  """max TPR over thresholds tau (score >= tau) whose FPR <= f, the trivial threshold included."""
  best = 0.0
  for tau in np.unique(s):
    pred = s >= tau
    fpr = (pred & ~y).sum() / (~y).sum()
    if fpr <= f:
      best = max(best, (pred & y).sum() / y.sum())
  return best


def _brute_balanced_accuracy(s, y):
  best = 0.5
  for tau in np.unique(s):
    pred = s >= tau
    best = max(best, ((pred & y).sum() / y.sum() + (~pred & ~y).sum() / (~y).sum()) / 2)
  return best


@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_matches_sklearn(ties):
  s, y = _data(ties=ties)
  fpr, tpr, thr = roc.roc_curve(s, y)
  sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
  np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-15)
  np.testing.assert_allclose(tpr, sk_tpr, rtol=0, atol=1e-15)
  np.testing.assert_array_equal(thr[1:], sk_thr[1:])
  assert np.isinf(thr[0])
  assert roc.auc(fpr, tpr) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
  assert roc.auc(fpr, tpr) == pytest.approx(skm.auc(sk_fpr, sk_tpr), abs=1e-12)


def test_known_answers():
  y = np.r_[np.zeros(500, bool), np.ones(500, bool)]
  separated = np.r_[np.linspace(0, 1, 500), np.linspace(2, 3, 500)]
  fpr, tpr, _ = roc.roc_curve(separated, y)
  assert roc.auc(fpr, tpr) == 1.0
  assert roc.balanced_accuracy(fpr, tpr) == 1.0
  assert roc.tpr_at_fpr(fpr, tpr, 0.0) == 1.0
  fpr, tpr, _ = roc.roc_curve(-separated, y)
  assert roc.auc(fpr, tpr) == 0.0
  # Identical distributions: AUC ~ 0.5 (sd of the estimate ~ 0.004 here).
  rng = np.random.default_rng(1)
  s = rng.normal(size=20000)
  y = rng.random(20000) < 0.5
  fpr, tpr, _ = roc.roc_curve(s, y)
  assert abs(roc.auc(fpr, tpr) - 0.5) < 0.02
  assert roc.tpr_at_fpr(fpr, tpr, 0.1) == pytest.approx(0.1, abs=0.02)
  # All scores tied: the curve is the diagonal's two ends.
  fpr, tpr, thr = roc.roc_curve(np.zeros(10), np.arange(10) % 2 == 0)
  assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1] and roc.auc(fpr, tpr) == 0.5


def test_tpr_at_fpr_and_balanced_accuracy_brute_force():
  s, y = _data(n=300, seed=3)
  fpr, tpr, _ = roc.roc_curve(s, y)
  for f in [0.0, 0.001, 0.01, 0.05, 0.1, 0.3, 1.0]:
    assert roc.tpr_at_fpr(fpr, tpr, f) == pytest.approx(_brute_tpr_at_fpr(s, y, f), abs=1e-12)
  fs = np.array([0.01, 0.1])
  np.testing.assert_allclose(roc.tpr_at_fpr(fpr, tpr, fs),
                             [_brute_tpr_at_fpr(s, y, f) for f in fs])
  assert roc.balanced_accuracy(fpr, tpr) == pytest.approx(_brute_balanced_accuracy(s, y))
  # Fewer than 1 / f non-members: not measurable.
  n_neg = int((~y).sum())
  assert np.isnan(roc.tpr_at_fpr(fpr, tpr, 0.5 / n_neg, num_nonmembers=n_neg))
  assert not np.isnan(roc.tpr_at_fpr(fpr, tpr, 1.0 / n_neg, num_nonmembers=n_neg))


def test_roc_metrics_rows_equal_single_curves():
  rng = np.random.default_rng(4)
  s = np.round(rng.normal(size=(7, 250)), 1)
  y = rng.random((7, 250)) < 0.5
  s += 0.5 * y
  y[5] = True  # a row without non-members
  fprs = (0.001, 0.01, 0.1)
  out = roc.roc_metrics(s, y, axis=1, fprs=fprs)
  out0 = roc.roc_metrics(s.T, y.T, axis=0, fprs=fprs)
  for key in out:
    np.testing.assert_array_equal(out[key], out0[key])
  for r in range(7):
    if r == 5:
      assert np.isnan(out["auc"][r]) and np.isnan(out["tpr@0.01"][r])
      continue
    fpr, tpr, _ = roc.roc_curve(s[r], y[r])
    n_neg = int((~y[r]).sum())
    assert out["auc"][r] == pytest.approx(skm.roc_auc_score(y[r], s[r]), abs=1e-12)
    assert out["balanced_accuracy"][r] == pytest.approx(roc.balanced_accuracy(fpr, tpr))
    for f in fprs:
      want = roc.tpr_at_fpr(fpr, tpr, f, num_nonmembers=n_neg)
      np.testing.assert_equal(out[f"tpr@{f:g}"][r], want)
    assert out["num_nonmembers"][r] == n_neg
  assert np.isnan(out["tpr@0.001"]).all()  # ~125 non-members per row < 1 / 0.001
  assert np.isnan(out["tpr@0.01"]).sum() == 1


@pytest.mark.parametrize("seed,ties", [(6, True), (7, False), (8, True)])
def test_roc_summary_equals_full_curve(seed, ties):
  s, y = _data(n=3000, seed=seed, ties=ties)
  if seed == 8:
    s = np.round(s)  # very coarse: large tie groups
  s = s.reshape(30, 100)
  y = y.reshape(30, 100)
  fprs = (0.0005, 0.001, 0.01, 0.1, 0.5)
  got = roc.roc_summary(s, y, fprs=fprs, curve_points=50)
  fpr, tpr, _ = roc.roc_curve(s.ravel(), y.ravel())
  n_neg = int((~y).sum())
  assert got["auc"] == pytest.approx(roc.auc(fpr, tpr), abs=1e-12)
  assert got["balanced_accuracy"] == pytest.approx(roc.balanced_accuracy(fpr, tpr), abs=1e-12)
  for f in fprs:
    np.testing.assert_equal(got[f"tpr@{f:g}"], roc.tpr_at_fpr(fpr, tpr, f, num_nonmembers=n_neg))
  np.testing.assert_array_equal(got["tpr"][1:], roc.tpr_at_fpr(fpr, tpr, got["fpr"][1:]))
  assert got["fpr"][-1] == 1.0 and got["tpr"][-1] == 1.0 and len(got["fpr"]) <= 51
  assert got["num_nonmembers"] == n_neg
  # Exactly k / n_neg: the budget admits k false positives (float comparison as roc_curve).
  for k in (1, 3, 7):
    f = k / n_neg
    np.testing.assert_equal(got_k := roc.roc_summary(s, y, fprs=(f,))[f"tpr@{f:g}"],
                            roc.tpr_at_fpr(fpr, tpr, f))
    assert got_k > 0


def test_thin_curve():
  s, y = _data(n=20000, seed=5, ties=False)
  fpr, tpr, _ = roc.roc_curve(s, y)
  tf, tt = roc.thin_curve(fpr, tpr, max_points=300)
  assert len(tf) <= 301 and tf[0] == 0 and tf[-1] == 1 and tt[-1] == 1
  assert np.all(np.diff(tf) > 0) and np.all(np.diff(tt) >= 0)
  np.testing.assert_array_equal(tt[1:], roc.tpr_at_fpr(fpr, tpr, tf[1:]))
  short = roc.thin_curve(fpr[:100], tpr[:100], max_points=300)
  np.testing.assert_array_equal(short[0], fpr[:100])


def test_bad_input():
  with pytest.raises(MemjaxError, match="NaN"):
    roc.roc_curve(np.array([0.1, np.nan]), np.array([True, False]))
  with pytest.raises(MemjaxError, match="both members and non-members"):
    roc.roc_curve(np.array([0.1, 0.2]), np.array([True, True]))
  with pytest.raises(MemjaxError, match="same length"):
    roc.roc_curve(np.zeros(3), np.array([True, False]))
  with pytest.raises(MemjaxError, match="boolean"):
    roc.roc_curve(np.zeros(2), np.array([0.5, 1.0]))
  fpr, tpr, _ = roc.roc_curve(np.array([1.0, 2.0]), np.array([1, 0]))  # 0/1 ints are fine
  assert roc.auc(fpr, tpr) == 0.0


def test_docstring_examples():
  import doctest
  assert doctest.testmod(roc).failed == 0
