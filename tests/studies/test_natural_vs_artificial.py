"""natural_vs_artificial: the injected points by construction, the study at scale "small"."""

import numpy as np
import pytest

from memjax import studies
from memjax.errors import MemjaxError


def test_inject_artificial_groups_and_changes(small_digits, digits):
  data, groups = studies.inject_artificial(small_digits, label_fraction=0.1, input_fraction=0.05,
                                           seed=3)
  assert groups.shape == (300,)
  assert np.bincount(groups, minlength=3).tolist() == [255, 30, 15]
  lab, inp, nat = (groups == studies.NOISY_LABEL, groups == studies.NOISY_INPUT,
                   groups == studies.NATURAL)
  x0, y0 = small_digits.x_train, small_digits.y_train
  # Noisy labels: every one differs from the true label; the inputs are untouched.
  assert (data.y_train[lab] != y0[lab]).all()
  np.testing.assert_array_equal(data.x_train[lab], x0[lab])
  # Noisy inputs: Gaussian noise with the per-feature mean and sd, far from every real image,
  # except on pixels that never vary (sd 0 up to float32 rounding), which stay at their mean.
  noise = data.x_train[inp].reshape(inp.sum(), -1)
  flat = x0.reshape(len(x0), -1)
  nearest = np.min(((noise[:, None] - flat[None]) ** 2).sum(-1), axis=1)
  assert (nearest > 1.0).all()
  mean, sd = flat.mean(0), flat.std(0)
  const = sd < 1e-4
  assert const.any() and not const.all()
  np.testing.assert_allclose(noise[:, const], np.broadcast_to(mean[const], noise[:, const].shape),
                             atol=1e-4)
  z = (noise[:, ~const] - mean[~const]) / sd[~const]
  assert abs(z.mean()) < 0.15 and 0.85 < z.std() < 1.15
  assert (data.y_train[inp] >= 0).all() and (data.y_train[inp] < 10).all()
  # Natural examples and the test split are unchanged.
  np.testing.assert_array_equal(data.x_train[nat], x0[nat])
  np.testing.assert_array_equal(data.y_train[nat], y0[nat])
  np.testing.assert_array_equal(data.x_test, small_digits.x_test)
  np.testing.assert_array_equal(data.y_test, small_digits.y_test)
  assert data.y_train.dtype == np.int32 and data.x_train.dtype == x0.dtype
  assert data.name == "digits300+artificial" and data.raw_train is None
  # The input dataset itself is not modified.
  np.testing.assert_array_equal(small_digits.x_train, digits.x_train[:300])


def test_inject_artificial_deterministic_per_seed(small_digits):
  a, ga = studies.inject_artificial(small_digits, 0.1, 0.1, seed=7)
  b, gb = studies.inject_artificial(small_digits, 0.1, 0.1, seed=7)
  c, gc = studies.inject_artificial(small_digits, 0.1, 0.1, seed=8)
  np.testing.assert_array_equal(ga, gb)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.y_train, b.y_train)
  assert (ga != gc).any()
  none, g0 = studies.inject_artificial(small_digits, 0.0, 0.0)
  assert (g0 == studies.NATURAL).all()
  np.testing.assert_array_equal(none.x_train, small_digits.x_train)
  np.testing.assert_array_equal(none.y_train, small_digits.y_train)


@pytest.mark.parametrize("label, inp", [(-0.1, 0.0), (1.0, 0.0), (0.0, 1.0), (0.6, 0.5)])
def test_inject_artificial_bad_fractions(small_digits, label, inp):
  with pytest.raises(MemjaxError, match=r"must lie in \[0, 1\) and their sum below 1"):
    studies.inject_artificial(small_digits, label, inp)


def test_natural_vs_artificial_bad_fraction(small_digits):
  with pytest.raises(MemjaxError, match="label_fraction=0.7, input_fraction=0.5"):
    studies.natural_vs_artificial(small_digits, scale="small", label_fraction=0.7,
                                  input_fraction=0.5)


@pytest.mark.slow
def test_natural_vs_artificial_small(small_studies):
  res = small_studies["natural_vs_artificial"]
  assert res.columns == ("model", "params", "epoch", "test_acc", "natural_mean", "natural_frac",
                         "noisy_label_mean", "noisy_label_frac", "noisy_input_mean",
                         "noisy_input_frac")
  assert len(res.rows) == 2 * 10
  assert res.column("model").tolist() == ["mlp[8]"] * 10 + ["mlp[64]"] * 10
  assert res.column("epoch").tolist() == list(range(1, 11)) * 2
  for r in res.rows:
    assert 0 <= r["test_acc"] <= 1
    for g in studies.GROUP_NAMES:
      assert 0 <= r[f"{g}_frac"] <= 1 and -1 <= r[f"{g}_mean"] <= 1
  h = res.headline
  assert h["counts"] == {"natural": 240, "noisy_label": 30, "noisy_input": 30}
  large = [r for r in res.rows if r["model"] == "mlp[64]"]
  for g in studies.GROUP_NAMES:
    assert h["by_epoch_largest"][g] == [r[f"{g}_mean"] for r in large]
    last = h["by_size_last_epoch"][g]
    assert h["size_trend"][g] == pytest.approx(last["mlp[64]"] - last["mlp[8]"])
  # A wrong label can only be predicted by a model that trained on it, so IN models beat OUT
  # models there far more than on natural points; noise inputs likewise.
  final = large[-1]
  assert final["noisy_label_mean"] > final["natural_mean"] + 0.2
  assert final["noisy_input_mean"] > final["natural_mean"] + 0.2
  assert final["noisy_label_frac"] > final["natural_frac"]
