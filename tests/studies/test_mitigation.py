"""The mitigation study: its settings checked before training, and at scale "small" the rows
against the ensembles they come from."""

import math

import numpy as np
import pytest

from memjax import attacks, estimators, studies
from memjax.errors import MemjaxError
from memjax.studies.mitigation import DEFAULT_ATTACK, MITIGATIONS, PHI, Mitigation

# One setting of three kinds, as the small_studies fixture runs them.
SMALL = (Mitigation("weight decay", "weight decay 5e-3", {"weight_decay": 5e-3}),
         Mitigation("dropout", "dropout 0.5", model_kwargs={"dropout": 0.5}),
         Mitigation("early stopping", "stop at 50%", stop_fraction=0.5))


def test_default_settings_one_change_each():
  groups = list(dict.fromkeys(m.group for m in MITIGATIONS))
  assert groups == ["augmentation", "weight decay", "dropout", "label smoothing",
                    "early stopping"]
  assert len({m.label for m in MITIGATIONS}) == len(MITIGATIONS)
  for m in MITIGATIONS:
    changes = len(m.config) + len(m.model_kwargs) + (m.stop_fraction is not None)
    assert changes == 1 or m.config.keys() == {"augment", "translate"}, m
  # Within a group, from the weakest to the strongest: the headline's "strongest" is the last.
  stops = [m.stop_fraction for m in MITIGATIONS if m.group == "early stopping"]
  assert stops == sorted(stops, reverse=True)
  assert studies.study("mitigation").function is studies.mitigation


@pytest.mark.parametrize("kwargs, match", [
    (dict(attack="rmia"), "attack='rmia'; choose one of lira_online, .*RMIA needs population"),
    (dict(attack="nope"), "attack='nope'"),
    (dict(fpr=0.0), r"fpr=0.0; use a false-positive rate in \(0, 1\)"),
    (dict(mitigations=[Mitigation("early stopping", "stop", stop_fraction=1.5)]),
     r"stop: stop_fraction=1.5; use a fraction of the epochs in \(0, 1\]"),
    (dict(mitigations=[Mitigation("early stopping", "stop", {"weight_decay": 0.0},
                                  stop_fraction=0.5)]), "cannot change the training too"),
    (dict(mitigations=[SMALL[0], SMALL[0]]), "must be distinct and not 'baseline'"),
    (dict(mitigations=[("weight decay", "wd", {})]), "pass memjax.studies.Mitigation records"),
])
def test_bad_options_fail_before_training(small_digits, kwargs, match):
  cache = studies.RunCache()
  with pytest.raises(MemjaxError, match=match):
    studies.mitigation(small_digits, scale="small", cache=cache, **kwargs)
  assert len(cache) == 0


@pytest.mark.slow
def test_mitigation_small(small_studies):
  res, settings = small_studies["mitigation"], small_studies["settings"]
  assert small_studies["mitigations"] == SMALL
  assert res.columns == ("group", "setting", "epochs", "train_acc", "test_acc", "memorized",
                         "memorized_se", "null_memorized", "mean_score", "attack_auc",
                         "tpr@0.001", "d_memorized", "d_test_acc", "effect", "wall_s")
  assert res.column("setting").tolist() == ["baseline", *[m.label for m in SMALL]]
  assert res.column("epochs").tolist() == [10, 10, 10, 5]  # stop at 50% of 10 epochs
  base = res.rows[0]
  for r in res.rows:
    assert 0 <= r["test_acc"] <= 1 and 0 <= r["train_acc"] <= 1
    assert r["d_memorized"] == r["memorized"] - base["memorized"]
    assert r["d_test_acc"] == pytest.approx(r["test_acc"] - base["test_acc"])
    se = math.hypot(r["memorized_se"], base["memorized_se"])
    assert r["effect"] == ("same" if abs(r["d_memorized"]) <= 2 * se or r is base
                           else "reduced" if r["d_memorized"] < 0 else "increased")
    assert 0 <= r["attack_auc"] <= 1
    # 8 models x 300 examples x 0.3 OUT: 720 non-members, too few for a TPR at 0.1% FPR.
    assert math.isnan(r["tpr@0.001"])
  # The baseline trains once, evaluated every epoch with its LiRA statistic as a measure; early
  # stopping is its records after epoch 5, not an ensemble of its own.
  config = res_config(settings)
  baseline, _ = settings.train(config)
  records, keep = baseline.records, baseline.keep
  np.testing.assert_array_equal(records.measure(PHI)[-1], records.train_lira[..., 0])
  stop = res.rows[3]
  correct = np.asarray(records.train_correct[4])
  assert stop["memorized"] == estimators.count_memorized(
      estimators.memorization(correct, keep))
  assert stop["test_acc"] == pytest.approx(records.test_accuracy()[4].mean())
  auc = attacks.evaluate_attacks(np.asarray(records.measure(PHI)[4])[..., None], keep,
                                 attacks=(DEFAULT_ATTACK,))[DEFAULT_ATTACK].auc
  assert stop["attack_auc"] == pytest.approx(auc) and stop["wall_s"] == 0
  h = res.headline
  assert h["attack"] == DEFAULT_ATTACK and h["models"] == 8 and h["model"] == "mlp[64]"
  assert h["baseline"]["memorized"] == base["memorized"]
  assert set(h["settings"]) == {m.label for m in SMALL}
  assert h["groups"]["dropout"]["strongest"] == "dropout 0.5"
  assert h["reduce_memorization"] == [r["setting"] for r in res.rows if r["effect"] == "reduced"]
  dropout = h["settings"]["dropout 0.5"]
  assert dropout["change"] == res.rows[2]["d_memorized"]
  assert dropout["test_acc_cost"] == pytest.approx(-res.rows[2]["d_test_acc"])
  # Dropout changes the training: another ensemble than the baseline, with another count.
  assert "weight decay 0.0005" in res.description and "mlp[64]" in res.description


def res_config(settings):
  from memjax.studies.mitigation import PHI_SPEC
  from memjax.studies.scales import arch_config
  sc = settings.scale_spec
  config = arch_config(settings.base_config(), sc.epochs_arch, sc.models, None, settings.seed,
                       eval_every=1, default_epochs=sc.epochs)
  return config.replace(measures={PHI: PHI_SPEC})


@pytest.mark.slow
def test_mitigation_skips_what_the_data_or_model_cannot_take(small_digits):
  import memjax
  vectors = memjax.from_arrays(small_digits.x_train[:120].reshape(120, -1),
                               small_digits.y_train[:120], small_digits.x_test[:40].reshape(40, -1),
                               small_digits.y_test[:40], name="vectors", standardize=False)
  res = studies.mitigation(vectors, scale="small", models=4, epochs=2,
                           mitigations=[MITIGATIONS[0], SMALL[2]],
                           arch=("logreg", "logreg", {}), cache=studies.RunCache())
  assert res.column("setting").tolist() == ["baseline", "stop at 50%"]
  assert res.column("epochs").tolist() == [2, 1]
  assert res.notes == ["translate 1px skipped: vectors has vector features, not images."]
  res = studies.mitigation(small_digits, scale="small", models=4, epochs=1, mitigations=SMALL[1:2],
                           arch=("logreg", "logreg", {}), cache=studies.RunCache())
  assert res.column("setting").tolist() == ["baseline"]
  assert res.notes == ["dropout 0.5 skipped: logreg has no dropout knob."]
