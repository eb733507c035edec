"""memjax.privacy: DP accounting against dp-accounting, closed forms and the engine's batches."""

import math
import warnings

import dp_accounting
import numpy as np
import pytest
from scipy import optimize, stats

from memjax import design, privacy
from memjax.config import TrainConfig
from memjax.errors import MemjaxError


def gaussian_mechanism_epsilon(sigma: float, delta: float) -> float:
  """Exact epsilon of one Gaussian mechanism with sensitivity 1 and noise sigma (Balle and Wang
  2018): delta(eps) = Phi(1/(2 sigma) - eps sigma) - e^eps Phi(-1/(2 sigma) - eps sigma)."""
  def gap(eps):
    return (stats.norm.cdf(0.5 / sigma - eps * sigma)
            - math.exp(eps) * stats.norm.cdf(-0.5 / sigma - eps * sigma) - delta)
  return optimize.brentq(gap, 0.0, 100.0)


@pytest.mark.parametrize("sigma, q, steps, delta", [(1.0, 0.01, 1000, 1e-5),
                                                    (0.8, 0.2, 60, 7e-5),
                                                    (2.0, 0.5, 10, 1e-6)])
def test_epsilon_equals_dp_accounting_called_directly(sigma, q, steps, delta):
  event = dp_accounting.SelfComposedDpEvent(
      dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
  pld = dp_accounting.pld.PLDAccountant()
  pld.compose(event)
  rdp = dp_accounting.rdp.RdpAccountant(orders=privacy.RDP_ORDERS)
  rdp.compose(event)
  assert privacy.epsilon(sigma, q, steps, delta) == pytest.approx(pld.get_epsilon(delta), rel=1e-9)
  assert privacy.epsilon(sigma, q, steps, delta, "rdp") == pytest.approx(rdp.get_epsilon(delta),
                                                                        rel=1e-9)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 3.0])
def test_one_full_batch_step_is_the_gaussian_mechanism(sigma):
  """q = 1, T = 1: no subsampling, the exact epsilon is known in closed form; PLD matches it
  to its discretisation and RDP (an upper bound) is never below it."""
  delta = 1e-5
  exact = gaussian_mechanism_epsilon(sigma, delta)
  assert privacy.epsilon(sigma, 1.0, 1, delta) == pytest.approx(exact, rel=2e-3)
  assert privacy.epsilon(sigma, 1.0, 1, delta, "rdp") >= exact - 1e-9


def test_epsilon_behaves_like_a_privacy_loss():
  base = privacy.epsilon(1.0, 0.1, 100, 1e-5)
  assert privacy.epsilon(1.0, 0.1, 400, 1e-5) > base  # more steps, more loss
  assert privacy.epsilon(2.0, 0.1, 100, 1e-5) < base  # more noise, less
  assert privacy.epsilon(1.0, 0.05, 100, 1e-5) < base  # smaller batches amplify
  assert privacy.epsilon(1.0, 0.1, 100, 1e-5, "rdp") > base  # PLD is the tighter accountant
  assert math.isinf(privacy.epsilon(0.0, 0.1, 100, 1e-5))


@pytest.mark.parametrize("target", [1.0, 4.0])
def test_noise_for_epsilon_is_the_smallest_sigma_meeting_the_target(target):
  sigma = privacy.noise_for_epsilon(target, 0.2, 60, 1e-5)
  assert privacy.epsilon(sigma, 0.2, 60, 1e-5) <= target * (1 + 1e-6)
  assert privacy.epsilon(sigma * 0.99, 0.2, 60, 1e-5) > target


def test_bad_accounting_arguments_name_the_fix():
  for kwargs, match in [(dict(sampling_rate=0.0), "sampling_rate"), (dict(steps=0), "steps"),
                        (dict(delta=1.0), "delta"), (dict(noise_multiplier=-1.0), ">= 0")]:
    args = dict(noise_multiplier=1.0, sampling_rate=0.1, steps=10, delta=1e-5) | kwargs
    with pytest.raises(MemjaxError, match=match):
      privacy.epsilon(**args)
  with pytest.raises(MemjaxError, match="accountant"):
    privacy.epsilon(1.0, 0.1, 10, 1e-5, accountant="moments")
  with pytest.raises(MemjaxError, match="> 0"):
    privacy.noise_for_epsilon(0.0, 0.1, 10, 1e-5)


@pytest.mark.parametrize("batch", [16, 128, 512])
def test_batch_capacity_holds_every_binomial_batch_but_a_negligible_tail(batch):
  capacity = privacy.batch_capacity(batch, 50_000)
  for num_in in (batch, 2 * batch, 10 * batch, 50_000):
    assert stats.binom.sf(capacity, num_in, min(1, batch / num_in)) <= privacy.CAPACITY_TAIL
  assert capacity < batch + 8 * math.sqrt(batch) + 10  # and not wastefully large
  assert privacy.batch_capacity(128, 100) == 100  # never more than the data


def test_guarantee_record_of_a_run():
  keep = design.balanced(8, 1000, 0.5, seed=0)
  assert privacy.guarantee(TrainConfig(), keep, 4, 1000) is None
  config = TrainConfig(dp_noise_multiplier=1.0, batch_size=100, epochs=5)
  record = privacy.guarantee(config, keep, 5, 1000)
  q = 100 / keep.sum(axis=1).min()  # the model with the smallest subset (~500 IN examples)
  assert record["sampling_rate"] == pytest.approx(q) and 0.19 < q < 0.22
  assert record["steps"] == 25 and record["delta"] == pytest.approx(1e-4)
  assert record["epsilon"] == pytest.approx(privacy.epsilon(1.0, q, 25, 1e-4))
  assert record["epsilon_rdp"] >= record["epsilon"] and record["covered"]
  assert "DP-SGD" in privacy.describe(record) and "poisson" in privacy.describe(record)
  calibrated = privacy.guarantee(TrainConfig(dp_target_epsilon=2.0, batch_size=100, epochs=5,
                                             dp_delta=1e-5), keep, 5, 1000)
  assert calibrated["epsilon"] == pytest.approx(2.0, abs=0.01) and calibrated["delta"] == 1e-5
  with pytest.warns(RuntimeWarning, match="does not cover shuffled"):
    shuffled = privacy.guarantee(config.replace(sampling="shuffle"), keep, 5, 1000)
  assert not shuffled["covered"] and "NOT covered" in privacy.describe(shuffled)


def test_config_validates_the_dp_fields():
  assert not TrainConfig().private and TrainConfig().batch_sampling == "shuffle"
  assert TrainConfig(dp_noise_multiplier=1.0).batch_sampling == "poisson"
  assert TrainConfig(dp_target_epsilon=8.0).private
  for kwargs, match in [(dict(dp_noise_multiplier=1.0, dp_target_epsilon=2.0), "not both"),
                        (dict(sampling="random"), "sampling"), (dict(dp_clip_norm=0.0), "> 0"),
                        (dict(dp_delta=2.0), "dp_delta"), (dict(dp_target_epsilon=-1.0), "> 0")]:
    with pytest.raises(MemjaxError, match=match):
      TrainConfig(**kwargs)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert TrainConfig.from_dict(TrainConfig(dp_clip_norm=math.inf).to_dict()).dp_clip_norm \
        == math.inf
    np.testing.assert_equal(privacy.default_delta(1437), 1 / 14370)
