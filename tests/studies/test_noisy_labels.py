"""The noisy_labels study: flipping, precision@k and AUROC by construction; at scale "small",
that memorization finds the flipped labels."""

import numpy as np
import pytest

from memjax import studies
from memjax.errors import MemjaxError
from memjax.studies.noisy_labels import CHANCE, detection_auroc, precision_at_k


def test_flip_labels_deterministic_and_always_wrong(small_digits):
  data, flipped = studies.flip_labels(small_digits, 0.1, seed=3)
  assert flipped.sum() == 30 and data.name == "digits300+flip0.1-s3" and data.spec is None
  assert (data.y_train[flipped] != small_digits.y_train[flipped]).all()
  np.testing.assert_array_equal(data.y_train[~flipped], small_digits.y_train[~flipped])
  np.testing.assert_array_equal(data.x_train, small_digits.x_train)
  np.testing.assert_array_equal(data.y_test, small_digits.y_test)
  again, same = studies.flip_labels(small_digits, 0.1, seed=3)
  np.testing.assert_array_equal(same, flipped)
  np.testing.assert_array_equal(again.y_train, data.y_train)
  _, other = studies.flip_labels(small_digits, 0.1, seed=4)
  assert (other != flipped).any()
  with pytest.raises(MemjaxError, match=r"fraction=1.0; flip a fraction of the labels in"):
    studies.flip_labels(small_digits, 1.0)


def test_precision_at_k_and_auroc_by_construction():
  pos = np.array([True, True, False, False, False])
  assert precision_at_k([5, 4, 3, 2, 1], pos) == 1.0
  assert precision_at_k([1, 2, 3, 4, 5], pos) == 0.0
  assert precision_at_k([5, 1, 4, 2, 3], pos) == 0.5
  # Ties share the last places in expectation: a constant score gives the base rate.
  assert precision_at_k(np.zeros(5), pos) == pytest.approx(0.4)
  assert precision_at_k([9, 1, 1, 1, 1], pos) == pytest.approx((1 + 1 / 4) / 2)
  assert precision_at_k([np.nan, 1, 0, 0, 0], pos) == 0.5  # NaN ranks last
  assert precision_at_k([5, 4, 3, 2, 1], pos, k=4) == 0.5
  assert detection_auroc([5, 4, 3, 2, 1], pos) == 1.0
  assert detection_auroc([1, 2, 3, 4, 5], pos) == 0.0
  assert detection_auroc(np.zeros(5), pos) == 0.5
  rng = np.random.default_rng(0)
  s, p = rng.normal(size=200), rng.random(200) < 0.3
  # The Mann-Whitney probability, counted pair by pair.
  pairs = (s[p][:, None] > s[~p][None]).mean()
  assert detection_auroc(s, p) == pytest.approx(pairs)
  with pytest.raises(MemjaxError, match="needs positives and negatives"):
    detection_auroc([1, 2], [True, True])
  with pytest.raises(MemjaxError, match="k=0; rank at least 1"):
    precision_at_k([1, 2], [False, False])
  with pytest.raises(MemjaxError, match="must be \\[N\\] arrays of the same length"):
    precision_at_k([1, 2, 3], [True, False])


@pytest.mark.parametrize("kwargs, match", [
    (dict(rates=(0.0,)), r"rates=\[0.0\]; flip fractions of the labels in \(0, 1\)"),
    (dict(attacks=("lira",)), r"Unknown attack\(s\) \['lira'\]"),
])
def test_bad_options_fail_before_training(small_digits, kwargs, match):
  cache = studies.RunCache()
  with pytest.raises(MemjaxError, match=match):
    studies.noisy_labels(small_digits, scale="small", cache=cache, **kwargs)
  assert len(cache) == 0


@pytest.mark.slow
def test_noisy_labels_small(small_studies):
  res = small_studies["noisy_labels"]
  assert res.columns == ("score", "kind", "precision@k 0.1", "auroc 0.1", "precision@k 0.2",
                         "auroc 0.2", "mean_precision")
  scores = res.column("score").tolist()
  assert scores[:7] == ["memorization", "1 - held-out accuracy", "1 - IN accuracy",
                        "final loss (IN)", "cumulative loss (CSL)", "1 - learning speed",
                        "forgetting events"]
  assert scores[7:-1] == [f"mia_auc_{a}" for a in ("lira_online", "lira_online_fixed",
                                                    "lira_offline", "lira_offline_fixed",
                                                    "rmia", "loss")]
  assert scores[-1] == CHANCE
  by = {r["score"]: r for r in res.rows}
  h = res.headline
  assert h["flipped"] == {"0.1": 30, "0.2": 60}
  assert by[CHANCE]["precision@k 0.1"] == 0.1 and by[CHANCE]["auroc 0.2"] == 0.5
  for r in res.rows:
    for key in ("0.1", "0.2"):
      assert 0 <= r[f"precision@k {key}"] <= 1 and 0 <= r[f"auroc {key}"] <= 1
  # A flipped label is only predicted by models that trained on it: memorization, the held-out
  # accuracy and the cumulative loss find them better than chance, even with 8 models
  # (measured: precision 0.32 / 0.47, 0.58 / 0.76, 0.90 / 0.93; AUROC 0.78, 0.94-0.96, 0.997).
  for key in ("0.1", "0.2"):
    for name, times, auroc in (("memorization", 1.5, 0.7), ("1 - held-out accuracy", 2.5, 0.9),
                               ("cumulative loss (CSL)", 3.5, 0.95)):
      assert by[name][f"precision@k {key}"] > times * float(key), (name, key)
      assert by[name][f"auroc {key}"] > auroc, (name, key)
    assert 0 < h["flipped_in_accuracy"][key] < 1
    assert h["memorization"][key]["precision"] == by["memorization"][f"precision@k {key}"]
    best = max(res.rows[:-1], key=lambda r: r[f"precision@k {key}"])
    assert h["best_precision"][key] == best["score"]
    assert 0 <= h["test_acc"][key] <= 1
  assert h["best_overall"]["score"] == max(res.rows[:-1],
                                           key=lambda r: r["mean_precision"])["score"]
