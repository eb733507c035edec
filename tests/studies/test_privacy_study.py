"""The privacy study: DP-SGD levels on data with canaries, each audited (scale "small")."""

import math

import numpy as np
import pytest

from memjax import privacy as privacy_lib
from memjax import studies
from memjax.errors import MemjaxError


@pytest.mark.parametrize("kwargs, match", [
    (dict(epsilons=(0.0,)), "positive target epsilons"),
    (dict(epsilons=()), "positive target epsilons"),
    (dict(attack="rmia"), "attack='rmia'"),
])
def test_bad_options_fail_before_training(small_digits, kwargs, match):
  cache = studies.RunCache()
  with pytest.raises(MemjaxError, match=match):
    studies.privacy(small_digits, scale="small", cache=cache, **kwargs)
  assert len(cache) == 0


@pytest.mark.slow
def test_privacy_small(small_studies):
  res = small_studies["privacy"]
  assert res.columns[:4] == ("epsilon", "epsilon_pld", "noise_multiplier", "delta")
  plain, private = res.rows
  assert math.isinf(plain["epsilon"]) and math.isinf(plain["epsilon_pld"])
  assert plain["noise_multiplier"] == 0.0
  # The private level: sigma calibrated to epsilon 2 at delta 1 / (10 N), N = 300 + 20 canaries.
  assert private["epsilon"] == 2.0 and private["epsilon_pld"] == pytest.approx(2.0, abs=0.01)
  assert private["delta"] == plain["delta"] == pytest.approx(privacy_lib.default_delta(320))
  assert private["noise_multiplier"] > 0.5
  for row in res.rows:
    assert 0 <= row["audit_epsilon"] and row["bound_below_theory"]
    assert 0 <= row["test_acc"] <= 1 and 0 <= row["tpr@0.001"] <= 1
    assert row["memorized_se"] > 0 and row["null_memorized"] >= 0
  # Noise costs accuracy: the private models fit their subsets less well.
  assert private["train_acc"] < plain["train_acc"]
  h = res.headline
  assert h["bounds_below_theory"] and set(h["levels"]) == {"inf", "2"}
  assert h["canaries"] == 20 and h["subset_ratios"] == [0.5]
  assert h["levels"]["2"]["epsilon_pld"] == private["epsilon_pld"]
  claims = {c.claim: c for c in studies.check_claims({"privacy": h})}
  audit = claims["empirical epsilon lower bound (canary audit)"]
  assert audit.agrees and "epsilon 2: bound" in audit.measured
  assert "epsilon 2: " in claims["memorization under DP-SGD"].measured


@pytest.mark.slow
def test_privacy_audits_the_canaries_that_the_study_appended(small_studies):
  settings = small_studies["settings"]
  data, indices = settings.runs.derived(settings.dataset(), ("mislabeled canaries", 20, 0),
                                        lambda: pytest.fail("the study made it already"))
  np.testing.assert_array_equal(indices, np.arange(300, 320))
  assert data.canaries["kind"] == "mislabeled" and data.num_train == 320
