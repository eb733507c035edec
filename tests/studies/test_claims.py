"""studies.claims: each verdict on headlines where the answer is known by construction."""

import json

import pytest

from memjax import studies

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
