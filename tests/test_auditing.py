"""memjax.auditing: epsilon lower bounds from canary scores, checked against mechanisms of known
epsilon, against jax-privacy, and end to end on a trained run with canaries."""

import json
import math

import numpy as np
import pytest
from scipy import optimize, stats

import memjax
from memjax import auditing
from memjax.errors import MemjaxError


def gdp_epsilon(mu: float, delta: float) -> float:
  """The exact epsilon of mu-GDP at delta: the root of
  Phi(-eps / mu + mu / 2) - e^eps Phi(-eps / mu - mu / 2) = delta (Dong, Roth & Su 2019)."""
  def gap(eps):
    return (stats.norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2)
            - delta)
  return optimize.brentq(gap, 0.0, 100.0)


def gaussian_observations(mu: float, k: int, seed: int):
  """Members' scores ~ N(mu, 1), non-members' ~ N(0, 1): a mu-GDP membership test."""
  rng = np.random.default_rng(seed)
  members = np.arange(k) % 2 == 0
  return rng.normal(size=k) + mu * members, members


def randomized_response(eps: float, k: int, seed: int):
  """Score 1 with probability e^eps / (1 + e^eps) for members, 1 / (1 + e^eps) otherwise:
  exactly eps-DP, and the threshold test at 1 reaches TPR / FPR = e^eps."""
  rng = np.random.default_rng(seed)
  members = np.arange(k) % 2 == 0
  p = np.where(members, 1 / (1 + math.exp(-eps)), 1 / (1 + math.exp(eps)))
  return (rng.random(k) < p).astype(np.float64), members


def test_gdp_epsilon_reference_values():
  # Dong, Roth & Su: 1-GDP is (eps, delta)-DP with delta(eps) given above; spot values.
  assert gdp_epsilon(1.0, 1e-5) == pytest.approx(4.377, abs=1e-3)
  mu, eps = 2.0, gdp_epsilon(2.0, 1e-3)
  assert stats.norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * stats.norm.cdf(
      -eps / mu - mu / 2) == pytest.approx(1e-3)


def test_bound_covers_the_true_epsilon_of_gaussian_tests():
  mu, delta = 1.0, 1e-3
  truth = gdp_epsilon(mu, delta)  # 3.14
  bounds = np.array([audit_epsilon_of(gaussian_observations(mu, 2000, seed), delta, seed)
                     for seed in range(200)])
  # At 95% confidence at most 5% of the bounds may exceed the truth; allow binomial slack
  # (Binomial(200, 0.05) exceeds 18 with probability < 0.5%).
  assert (bounds > truth).sum() <= 18
  assert bounds.mean() > 0.3 * truth  # and they are not vacuous


def audit_epsilon_of(observations, delta, seed):
  scores, members = observations
  return memjax.audit_epsilon(scores, members, delta=delta, seed=seed).epsilon


def test_bound_is_close_to_the_truth_with_many_observations():
  mu, delta = 1.0, 1e-3
  truth = gdp_epsilon(mu, delta)
  result = memjax.audit_epsilon(*gaussian_observations(mu, 100_000, 0), delta=delta)
  # 25,000 IN and OUT observations per part resolve FPRs down to ~1e-3; at that FPR 1-GDP
  # reaches about log(TPR / FPR) = 2.5 of the 3.14.
  assert 0.6 * truth < result.epsilon < truth
  assert result.num_eval_in == result.num_eval_out == 25_000
  assert result.num_select_in == result.num_select_out == 25_000
  assert result.tpr_lo < result.tpr and result.fpr < result.fpr_hi
  assert result.direction in ("above", "below") and math.isfinite(result.threshold)


def test_randomized_response_pure_dp():
  eps = 1.0
  bounds, point = [], []
  for seed in range(200):
    scores, members = randomized_response(eps, 4000, seed)
    r = memjax.audit_epsilon(scores, members, delta=0.0, seed=seed)
    bounds.append(r.epsilon)
    # The point estimate on the same evaluation part, for comparison.
    point.append(math.log(r.tpr / r.fpr) if r.direction == "above"
                 else math.log((1 - r.fpr) / (1 - r.tpr)))
  bounds, point = np.array(bounds), np.array(point)
  assert (bounds > eps).sum() <= 18  # coverage at 95% (no violation seen: CP is conservative)
  assert 0.6 < bounds.mean() < eps  # 2,000 observations per part pin e^eps down well
  # The check has teeth: point estimates, no confidence bound, exceed eps about half the time.
  assert (point > eps).mean() > 0.3
  # Many observations: the bound approaches eps.
  big = memjax.audit_epsilon(*randomized_response(eps, 200_000, 1), delta=0.0)
  assert 0.93 * eps < big.epsilon < eps


def test_no_leak_gives_zero():
  rng = np.random.default_rng(0)
  members = rng.random(5000) < 0.5
  r = memjax.audit_epsilon(rng.normal(size=5000), members, delta=1e-5)
  assert r.epsilon < 0.2
  assert memjax.audit_epsilon(np.zeros(5000), members, delta=1e-5).epsilon == 0.0


@pytest.mark.parametrize("one_sided", [False, True])
@pytest.mark.parametrize("delta", [0.0, 1e-5, 1e-2])
def test_agrees_with_jax_privacy(one_sided, delta):
  pytest.importorskip("jax_privacy")
  from jax_privacy import auditing as jp
  for seed, (mu, k) in enumerate([(0.5, 300), (1.0, 3000), (2.0, 20_000), (3.0, 1000)]):
    scores, members = gaussian_observations(mu, k, seed)
    scores = np.round(scores, 1) if seed == 1 else scores  # ties too
    ours = memjax.audit_epsilon(scores, members, delta=delta, seed=seed, one_sided=one_sided)
    # The reference through audit_epsilon: the same random split (jax-privacy's Split strategy).
    ref = memjax.audit_epsilon(scores, members, delta=delta, seed=seed, one_sided=one_sided,
                               method="jax_privacy")
    assert ours.epsilon == pytest.approx(ref.epsilon, abs=1e-9)
    assert math.isnan(ref.threshold) and ref.num_eval_in == ours.num_eval_in
    # And called directly: its Split, and its Explicit threshold on our evaluation part.
    auditor = jp.CanaryScoreAuditor(scores[members], scores[~members])
    direct = auditor.epsilon_clopper_pearson(
        significance=0.05, delta=delta, one_sided=one_sided,
        threshold_strategy=jp.Split(threshold_estimation_frac=0.5, seed=seed))
    assert ours.epsilon == pytest.approx(direct, abs=1e-9)


def test_explicit_threshold_matches_jax_privacy_on_the_evaluation_part():
  pytest.importorskip("jax_privacy")
  from jax_privacy import auditing as jp
  scores, members = gaussian_observations(1.5, 4000, 7)
  ours = memjax.audit_epsilon(scores, members, delta=1e-5, seed=3)
  rng = np.random.default_rng(3)  # the split audit_epsilon made
  ins, outs = scores[members], scores[~members]
  eval_in = ins[rng.permutation(ins.size)[ins.size // 2:]]
  eval_out = outs[rng.permutation(outs.size)[outs.size // 2:]]
  ref = jp.CanaryScoreAuditor(eval_in, eval_out).epsilon_clopper_pearson(
      significance=0.05, delta=1e-5, one_sided=False,
      threshold_strategy=jp.Explicit(ours.threshold))
  assert ours.epsilon == pytest.approx(ref, abs=1e-9)


def test_audit_errors_name_the_fix():
  scores, members = gaussian_observations(1.0, 100, 0)
  with pytest.raises(MemjaxError, match="1-D arrays of one length"):
    memjax.audit_epsilon(scores[:, None], members, delta=1e-5)
  with pytest.raises(MemjaxError, match="bool"):
    memjax.audit_epsilon(scores, members.astype(int), delta=1e-5)
  with pytest.raises(MemjaxError, match="all IN"):
    memjax.audit_epsilon(scores, np.ones(100, bool), delta=1e-5)
  with pytest.raises(MemjaxError, match="finite"):
    memjax.audit_epsilon(np.where(members, np.nan, scores), members, delta=1e-5)
  with pytest.raises(MemjaxError, match="delta"):
    memjax.audit_epsilon(scores, members, delta=1.5)
  with pytest.raises(MemjaxError, match="confidence"):
    memjax.audit_epsilon(scores, members, delta=1e-5, confidence=0.3)
  with pytest.raises(MemjaxError, match="choose one of clopper_pearson, jax_privacy"):
    memjax.audit_epsilon(scores, members, delta=1e-5, method="bonferroni")
  with pytest.raises(MemjaxError, match="Too few observations"):
    memjax.audit_epsilon(scores[:3], np.array([True, False, True]), delta=1e-5)


class _FakeResults:
  """The two attributes of AttackResults that canary_observations reads."""

  def __init__(self, scores, targets):
    self.attacks = {"lira_online": type("R", (), {"scores": scores})()}
    self.targets = targets


def test_canary_observations_are_target_major():
  scores = np.arange(3 * 6, dtype=float).reshape(3, 6)  # 3 targets x 6 examples
  keep = np.array([[1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 1],
                   [0, 0, 1, 1, 0, 0]], bool)  # 4 models, the first 3 targets
  s, m = auditing.canary_observations(_FakeResults(scores, np.arange(3)), keep, [4, 5])
  np.testing.assert_array_equal(s, [4, 5, 10, 11, 16, 17])
  np.testing.assert_array_equal(m, [True, False, False, True, True, True])
  with pytest.raises(MemjaxError, match="return_scores=True"):
    auditing.canary_observations(_FakeResults(None, np.arange(3)), keep, [4])
  with pytest.raises(MemjaxError, match="No attack 'rmia'"):
    auditing.canary_observations(_FakeResults(scores, np.arange(3)), keep, [4], "rmia")
  with pytest.raises(MemjaxError, match="indices run to 9"):
    auditing.canary_observations(_FakeResults(scores, np.arange(3)), keep, [9])


def test_privacy_audit_text_with_a_theoretical_guarantee():
  audit = {"delta": 1e-6, "delta_source": "run", "confidence": 0.95, "method": "clopper_pearson",
           "canaries": {"count": 50, "kind": "mislabeled"},
           "theoretical": {"epsilon": 0.5, "delta": 1e-6, "accountant": "pld",
                           "sampling": "shuffle", "covered": False},
           "attacks": {"loss": {"epsilon": 0.9, "threshold": 1.0, "direction": "above",
                                "tpr": 0.5, "fpr": 0.1, "tpr_lo": 0.4, "fpr_hi": 0.2,
                                "num_eval_in": 100, "num_eval_out": 100}},
           "best": {"attack": "loss", "epsilon": 0.9}}
  text = auditing.markdown(audit)
  assert "epsilon = 0.5 at delta = 1e-06 (pld accountant, shuffle sampling)" in text
  assert "does not strictly cover" in text and "the run's DP delta" in text
  assert "exceeds the theoretical epsilon" in text and "| loss | 0.900 |" in text
  assert "not trained with DP" in auditing.theoretical_text(None)


@pytest.mark.slow
def test_end_to_end_audit_of_mislabeled_canaries(tmp_path, capsys):
  """Digits with 50 mislabeled canaries, 16 MLPs, 6 epochs, no DP: `memjax attack` finds a
  clearly positive lower bound (measured: lira_online 2.0 after 5 epochs, 3.4 after 10; 16 x 50
  observations cap it near log(1 / 0.018) = 4)."""
  from memjax import audit, cli, report
  data, idx = memjax.with_canaries("digits", 50, kind="mislabeled", seed=0)
  run_dir = str(tmp_path / "run")
  run = memjax.train(data, model="mlp", models=16, epochs=6, progress=False, directory=run_dir)
  assert run.info["data"]["canaries"]["indices"] == idx.tolist()
  # The saved run re-creates its canaries: Run.load, resuming (with the plain data) and attack.
  loaded = memjax.Run.load(run_dir)
  np.testing.assert_array_equal(loaded.data.y_train, data.y_train)
  resumed = memjax.train("digits", directory=run_dir, resume=True, progress=False)
  assert resumed.data.canaries == data.canaries
  assert cli.main(["attack", run_dir]) == 0
  printed = capsys.readouterr().out
  assert "privacy audit: 50 mislabeled canaries" in printed and "epsilon lower bound" in printed
  with open(tmp_path / "run" / "attacks.json") as f:
    stored = json.load(f)["privacy_audit"]
  lira = stored["attacks"]["lira_online"]
  assert lira["epsilon"] > 1.0 and stored["attacks"]["loss"]["epsilon"] >= 0
  assert lira["num_eval_in"] + lira["num_select_in"] == 16 * 50 // 2
  assert stored["delta"] == 1e-5 and stored["delta_source"] == "default"
  assert stored["theoretical"] is None
  # A DP run's guarantee (run.json "privacy") sets the audit's delta and shows beside the bound.
  info_path = tmp_path / "run" / "run.json"
  info = json.loads(info_path.read_text())
  info["privacy"] = {"epsilon": 8.0, "delta": 1e-6, "noise_multiplier": 0.7, "clip_norm": 1.0,
                     "sampling_rate": 0.01, "steps": 100, "sampling": "poisson",
                     "accountant": "pld", "epsilon_rdp": 8.5, "covered": True}
  info_path.write_text(json.dumps(info))
  results = audit.audit(run_dir, attacks=("lira_online", "loss"))
  assert results.privacy_audit["delta"] == 1e-6 and results.privacy_audit["delta_source"] == "run"
  assert results.privacy_audit["theoretical"]["epsilon"] == 8.0
  page = open(report.write_report(run_dir)).read()
  assert 'id="privacy"' in page and "epsilon = 8 at delta = 1e-06" in page
  assert "empirical lower bound" in page and "50 mislabeled canaries" in page
