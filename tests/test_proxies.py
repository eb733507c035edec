"""Proxies' formulas against hand-computed histories (pure numpy; the drivers that record the
histories are tested in test_dynamics.py, the per-example gradients in
test_example_gradients.py)."""

import numpy as np
import pytest

from memjax import dynamics, example_gradients, proxies
from memjax.errors import MemjaxError


# ---- pure functions of histories ----------------------------------------------------------------
def test_forgetting_events_known_history():
  # T=5 evaluations, M=2 models, N=3 examples.
  c = np.zeros((5, 2, 3), bool)
  c[:, 0, 0] = [1, 0, 1, 1, 0]  # 2 forgetting, 2 learning, first learned at epoch 1
  c[:, 1, 0] = [0, 0, 1, 1, 1]  # 0 forgetting, 1 learning, first at epoch 3
  c[:, 0, 1] = [0, 0, 0, 0, 0]  # never learned
  c[:, 1, 1] = [1, 1, 1, 1, 1]  # learned at once, never forgotten
  c[:, :, 2] = [[0, 1]] * 5     # model 1 always right, model 0 never
  keep = np.array([[True, True, False], [True, False, True]])
  ev = proxies.forgetting_events(c, keep, eval_epochs=[2, 4, 6, 8, 10])
  assert ev.counts.tolist() == [[2, 0, 0], [0, 0, 0]]
  assert ev.learning.tolist() == [[2, 0, 0], [1, 1, 1]]
  assert ev.never_learned.tolist() == [[False, True, True], [False, False, False]]
  np.testing.assert_equal(ev.first_learned, [[2, np.nan, np.nan], [6, 2, 2]])
  # Aggregates use IN models only: example 1 is IN for model 0 only (never learned there).
  np.testing.assert_allclose(ev.forgetting, [1.0, np.nan, 0.0])
  np.testing.assert_allclose(ev.never_learned_fraction, [0.0, 1.0, 0.0])
  np.testing.assert_allclose(ev.first_learned_epoch, [4.0, np.nan, 2.0])
  # Toneva's score: a never-learned pair counts floor(5/2) + 1 = 3 events.
  np.testing.assert_allclose(ev.score, [1.0, 3.0, 0.0])


def test_forgetting_events_defaults_and_errors():
  c = np.random.default_rng(0).random((6, 3, 4)) < 0.5
  ev = proxies.forgetting_events(c)  # keep=None: every model
  np.testing.assert_allclose(ev.learning_events, ev.learning.mean(0))
  with pytest.raises(MemjaxError, match=r"\[T, M, N\]"):
    proxies.forgetting_events(c[0])
  with pytest.raises(MemjaxError, match="keep has shape"):
    proxies.forgetting_events(c, np.ones((3, 5), bool))
  with pytest.raises(MemjaxError, match="boolean"):
    proxies.forgetting_events(c.astype(float) * 0.5)
  with pytest.raises(MemjaxError, match="eval_epochs"):
    proxies.forgetting_events(c, eval_epochs=[1, 2])


def test_cumulative_proxies_known_values():
  loss = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)  # [T=2, M=3, N=2]
  keep = np.array([[1, 0], [1, 0], [0, 0]], bool)
  sums = loss.sum(0)  # [M, N]
  np.testing.assert_allclose(proxies.cumulative_loss(loss, keep),
                             [sums[:2, 0].mean(), np.nan])
  np.testing.assert_allclose(proxies.cumulative_gradient_norm(loss), sums.mean(0))
  prob = loss / loss.max()
  np.testing.assert_allclose(proxies.learning_speed(prob, keep),
                             [prob[:, :2, 0].mean(), np.nan])
  np.testing.assert_allclose(proxies.mean_curvature(loss), loss.mean((0, 1)))
  with pytest.raises(MemjaxError, match="NaN"):
    proxies.cumulative_loss(np.full((1, 1, 1), np.nan))


def test_fslt_and_ssft_known_patterns():
  phase1 = np.array([[0, 1, 0, 1, 1],    # learned for good from the 4th evaluation
                     [1, 1, 1, 1, 1],    # from the first
                     [1, 1, 1, 1, 0]]).T  # not learned at the end -> inf
  fslt = proxies.first_split_learning_time(phase1[:, None, :].astype(bool),
                                           eval_epochs=[1, 2, 3, 4, 5])
  np.testing.assert_equal(fslt, [[4, 1, np.inf]])
  phase2 = np.array([[1, 1, 0, 1, 0, 0],   # forgotten for good from phase-2 epoch 4
                     [1, 1, 1, 1, 1, 1],   # never forgotten -> inf
                     [0, 0, 0, 0, 0, 0],   # already wrong at the end of phase 1 -> 0
                     [1, 0, 0, 0, 0, 0]]).T
  ssft = proxies.second_split_forgetting_time(phase2[:, None, :].astype(bool))
  np.testing.assert_equal(ssft, [[4, np.inf, 0, 1]])
  keep = np.array([[True, True, False, True]])
  np.testing.assert_allclose(proxies.capped_mean(ssft, keep, cap=6), [4, 6, np.nan, 1])


def test_symmetric_kl_known_value():
  p, q = np.log([0.5, 0.5]), np.log([0.25, 0.75])
  expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75) \
      + 0.25 * np.log(0.25 / 0.5) + 0.75 * np.log(0.75 / 0.5)
  np.testing.assert_allclose(proxies.symmetric_kl(p, q), expected)
  logits = np.random.default_rng(0).normal(size=(4, 7, 10))
  other = logits + np.random.default_rng(1).normal(size=(4, 7, 10))
  np.testing.assert_allclose(proxies.symmetric_kl(logits, other),
                             proxies.symmetric_kl(other, logits))
  np.testing.assert_allclose(proxies.symmetric_kl(logits, logits + 3.0), 0, atol=1e-12)
  with pytest.raises(MemjaxError, match="same shape"):
    proxies.symmetric_kl(logits, logits[..., :5])


def test_complementary_halves():
  keep = proxies.complementary_halves(6, 11, seed=3)
  assert keep.shape == (6, 11)
  np.testing.assert_array_equal(keep.sum(0), 3)
  np.testing.assert_array_equal(keep[0::2], ~keep[1::2])
  with pytest.raises(MemjaxError, match="even"):
    proxies.complementary_halves(3, 11)


# ---- names that moved to memjax.dynamics and the benchmark --------------------------------------
def test_moved_names_resolve_to_their_new_modules():
  for name in ("track", "second_split_forgetting", "holdout_retraining", "Dynamics",
               "SplitForgetting", "HoldoutRetraining", "MEASURES", "DEFAULT_H",
               "DEFAULT_NUM_VECTORS"):
    assert getattr(proxies, name) is getattr(dynamics, name), name
  for name in ("example_losses", "weight_gradient_norms", "input_gradients", "input_curvature"):
    assert getattr(proxies, name) is getattr(example_gradients, name), name
  for name in ("compare_proxies", "ProxyComparison"):
    with pytest.raises(AttributeError, match="benchmarks/proxies_vs_memorization.py"):
      getattr(proxies, name)
  with pytest.raises(AttributeError, match="no attribute 'no_such_proxy'"):
    proxies.no_such_proxy  # noqa: B018
