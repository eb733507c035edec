"""studies.claims: each verdict on headlines where the answer is known by construction."""

import json
import math

import pytest

from memjax import formatting, studies

NAN = float("nan")


def headlines(direction="decreases", fall=True, transient=(5, 0.45, 0.11), r=0.95,
              trend=(0.01, 0.2, 0.3)):
  """Headlines of the five studies with the figures each claim reads."""
  count, transient_mean, all_mean = transient
  natural, noisy_label, noisy_input = trend
  return {
      "model_size": {"families": {"mlp": {
          "direction": direction, "memorized_by_size": [30, 20], "smallest": "mlp[16]",
          "largest": "mlp[512]"}}},
      "epochs": {"fall_detected": fall, "none": [1, 2], "rise": [3, 9],
                 "fall": [10, 30] if fall else None, "plateau": None if fall else [10, 30],
                 "peak_count": 60.0, "peak_epoch": 9, "final_count": 40.0, "drop": 20.0,
                 "drop_se": 4.0},
      "transient": {key: {"first": "a", "second": "b", "transient": count,
                          "transient_score_first": [transient_mean, 0.1],
                          "all_score_first": [all_mean, 0.2]}
                    for key in ("model_wise", "temporal_wise")},
      "gap": {"pearson_gap_vs_memorized": {"r": r, "n": 13, "p": 1e-6}},
      "natural_vs_artificial": {"size_trend": {"natural": natural, "noisy_label": noisy_label,
                                               "noisy_input": noisy_input}},
  }


def verdicts(h):
  return [c.agrees for c in studies.check_claims(h)]


def test_the_paper_s_findings_agree():
  claims = studies.check_claims(headlines())
  assert [c.claim for c in claims] == [
      "natural memorization vs model size (mlp)", "natural memorization over training",
      "transient points' mean score, model-wise (a → b)",
      "transient points' mean score, temporal-wise (a → b)",
      "memorized count vs train-test gap", "artificial memorization vs model size",
      "natural memorization vs model size, in the same runs"]
  assert all(c.agrees is True and c.verdict == "yes" for c in claims)
  assert claims[0].measured == "decreases: 30 → 20 memorized, mlp[16] to mlp[512]"
  assert claims[1].measured == ("none epochs 1-2, rise epochs 3-9, fall epochs 10-30; peak 60 at "
                                "epoch 9, 40 at the end (drop 20 ± 4)")
  assert claims[2].measured == "5 points: 45% ± 10% vs 11% ± 20% for all points"
  assert claims[4].measured == "Pearson r = 0.95 over 13 architectures (p = 1e-06)"


@pytest.mark.parametrize("change, disagrees", [
    (dict(direction="flat"), 0), (dict(direction="increases"), 0), (dict(fall=False), 1),
    (dict(transient=(0, NAN, 0.11)), 2), (dict(transient=(5, 0.05, 0.11)), 2),
    (dict(r=0.85), 4), (dict(trend=(-0.2, -0.1, 0.3)), 5),
    (dict(trend=(0.2, 0.2, 0.3)), 6),  # natural grows as much as half the artificial: no
])
def test_each_claim_fails_on_its_counterexample(change, disagrees):
  got = verdicts(headlines(**change))
  expected = [True] * 7
  expected[disagrees] = False
  if disagrees == 2:  # both transient kinds share the figures
    expected[3] = False
  assert got == expected


def test_undefined_correlation_is_not_a_verdict_and_saved_nan_reads_back():
  h = json.loads(json.dumps(headlines(r=None)))  # a NaN r is saved as null
  gap = studies.check_claims(h)[4]
  assert gap.agrees is None and gap.verdict == "n/a"
  assert gap.measured == "n/a: 13 architectures (needs 3)"


def test_missing_studies_are_skipped_and_results_accepted():
  h = headlines()
  only = studies.check_claims({"gap": h["gap"], "epochs": h["epochs"]})
  assert [c.claim for c in only] == ["natural memorization over training",
                                     "memorized count vs train-test gap"]
  assert studies.check_claims({}) == []
  result = studies.StudyResult(name="gap", columns=(), rows=[], headline=h["gap"],
                               description="")
  assert studies.check_claims({"gap": result}) == studies.check_claims({"gap": h["gap"]})


def test_claims_table():
  table = studies.claims_table(studies.check_claims(headlines(direction="flat")), "digits")
  lines = table.split("\n")
  assert lines[:2] == ["| claim | paper | digits | agrees |", "|---|---|---|---|"]
  assert lines[2].endswith("| flat: 30 → 20 memorized, mlp[16] to mlp[512] | no |")
  assert len(lines) == 2 + 7


def survey_headlines(wd_effect="reduced", augment_effect="reduced", exposed=(True, True),
                     precision=(0.3, 0.4)):
  """Headlines of the survey's three studies with the figures their claims read."""
  def group(strongest, effect):
    return {"strongest": strongest, "memorized": 30, "change": -15, "change_se": 4.0,
            "effect": effect, "test_acc": 0.96}
  return {
      "mitigation": {"baseline": {"memorized": 45, "test_acc": 0.97},
                     "groups": {"augmentation": group("flip+translate 1px", augment_effect),
                                "weight decay": group("weight decay 5e-3", wd_effect),
                                "dropout": group("dropout 0.5", "same")}},
      "onion": {"by_fraction": {
          f: {"k": k, "layer_after_top_removal": 0.8, "layer_after_random_removal": 0.7,
              "effect": 0.1, "effect_se": None if not e else 0.02, "exposed": e}
          for f, k, e in (("0.05", 72, exposed[0]), ("0.1", 144, exposed[1]))},
          "onion_effect": all(exposed)},
      "noisy_labels": {"flipped": {"0.05": 72, "0.2": 287},
                       "memorization": {"0.05": {"precision": precision[0]},
                                        "0.2": {"precision": precision[1]}},
                       "chance": {"0.05": 0.05, "0.2": 0.2}},
  }


def test_survey_claims_agree_and_read_their_figures():
  claims = studies.check_claims(json.loads(json.dumps(survey_headlines())))
  assert [c.claim for c in claims] == [
      "memorization under weight decay (weight decay 5e-3)",
      "memorization under augmentation (flip+translate 1px)",
      "removing the most vulnerable examples exposes the next layer",
      "memorization finds mislabelled examples"]
  assert all(c.agrees is True for c in claims)
  assert claims[0].measured == "45 → 30 memorized (-15 ± 4), test accuracy 0.970 → 0.960"
  assert claims[2].measured.endswith("k=72: 0.800 vs 0.700 (+0.100 ± 0.020); k=144: 0.800 vs "
                                     "0.700 (+0.100 ± 0.020)")
  assert claims[3].measured == ("precision at k = the number flipped, vs chance: 5% flipped: "
                                "0.30 vs 0.05; 20% flipped: 0.40 vs 0.20")


@pytest.mark.parametrize("change, disagrees", [
    (dict(wd_effect="same"), [0]), (dict(wd_effect="increased"), [0]),
    (dict(augment_effect="same"), [1]), (dict(exposed=(True, False)), [2]),
    # 0.2 + 2 sqrt(0.2 x 0.8 / 287) = 0.247: a precision of 0.24 is within chance.
    (dict(precision=(0.3, 0.24)), [3]), (dict(precision=(0.05, 0.4)), [3]),
])
def test_each_survey_claim_fails_on_its_counterexample(change, disagrees):
  got = [c.agrees for c in studies.check_claims(json.loads(json.dumps(
      survey_headlines(**change))))]
  assert got == [i not in disagrees for i in range(4)]


def test_survey_claims_only_for_the_groups_run():
  h = survey_headlines()
  del h["mitigation"]["groups"]["weight decay"]
  claims = studies.check_claims({"mitigation": h["mitigation"]})
  assert [c.claim for c in claims] == ["memorization under augmentation (flip+translate 1px)"]


def privacy_headline(private_memorized=20, bounds=(1.2, 0.4)):
  """The privacy study's headline with the figures its two claims read (saved through JSON,
  so the non-private level's infinite epsilon reads back as null)."""
  def level(epsilon, memorized, bound, null=2.0, se=3.0):
    return {"epsilon_pld": epsilon, "memorized": memorized, "memorized_se": se,
            "null_memorized": null, "test_acc": 0.9, "audit_epsilon": bound}
  h = {"confidence": 0.95,
       "levels": {"inf": level(math.inf, 45, 5.0), "8": level(7.99, 30, bounds[0]),
                  "1": level(0.999, private_memorized, bounds[1], null=12.0)}}
  return json.loads(json.dumps(formatting.jsonable(h)))


def test_privacy_claims_agree_and_read_their_figures():
  claims = studies.check_claims({"privacy": privacy_headline()})
  assert [(c.claim, c.agrees) for c in claims] == [
      ("memorization under DP-SGD", True),
      ("empirical epsilon lower bound (canary audit)", True)]
  assert claims[0].measured == (
      "memorized above the noise floor without DP: 43 (test accuracy 0.900); epsilon 8: 28 "
      "(-15 ± 4), test accuracy 0.900; epsilon 1: 8 (-35 ± 4), test accuracy 0.900")
  assert claims[1].measured == "epsilon 8: bound 1.20; epsilon 1: bound 0.40 (95% confidence)"


@pytest.mark.parametrize("change, disagrees", [
    # epsilon 1: 52 - 12 = 40 above the noise floor against 43 without DP is within 2 SE.
    (dict(private_memorized=52), [0]), (dict(private_memorized=60), [0]),
    (dict(bounds=(8.5, 0.4)), [1]), (dict(bounds=(1.2, 1.01)), [1]),
])
def test_each_privacy_claim_fails_on_its_counterexample(change, disagrees):
  got = [c.agrees for c in studies.check_claims({"privacy": privacy_headline(**change)})]
  assert got == [i not in disagrees for i in range(2)]


def test_privacy_claims_without_a_non_private_level():
  h = privacy_headline()
  del h["levels"]["inf"]
  assert [c.claim for c in studies.check_claims({"privacy": h})] == [
      "empirical epsilon lower bound (canary audit)"]
