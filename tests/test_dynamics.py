"""Drivers that train through engine.Chunk: the runner's models, and data with a known answer."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import memjax
from memjax import dynamics, proxies, studies
from memjax.errors import MemjaxError

FAST = dict(model="mlp", model_kwargs={"widths": [32]}, batch_size=32, learning_rate=0.1)


# ---- the drivers --------------------------------------------------------------------------------
@pytest.mark.slow
def test_track_trains_the_same_models_as_the_runner(small_digits):
  keep = np.random.default_rng(0).random((2, small_digits.num_train)) < 0.5
  dyn = dynamics.track(small_digits, keep=keep, epochs=3, measures=("input_grad_sq",), **FAST)
  run = memjax.train(small_digits, keep=keep, epochs=3, eval_every=1, progress=False, **FAST)
  assert dyn.correct.shape == (3, 2, small_digits.num_train) and dyn.grad_norm is None
  np.testing.assert_array_equal(dyn.correct, run.records.train_correct)
  np.testing.assert_allclose(dyn.loss, run.records.train_loss, rtol=2e-3, atol=2e-3)
  assert (dyn.input_grad_sq >= 0).all() and np.isfinite(dyn.input_grad_sq).all()
  assert dyn.seconds["train"] > 0 and "input_grad_sq" in dyn.seconds
  with pytest.raises(MemjaxError, match="Unknown measure"):
    dynamics.track(small_digits, measures=("hessian",), **FAST)
  with pytest.raises(MemjaxError, match="positive step"):
    dynamics.track(small_digits, h=0.0, **FAST)


@pytest.fixture(scope="module")
def noisy_digits(small_digits):
  """The 300 digits with 30 wrong labels: noisy labels are the known memorized examples."""
  return studies.inject_artificial(small_digits, label_fraction=0.1, input_fraction=0.0,
                                   seed=1)


@pytest.mark.slow
def test_proxies_single_out_noisy_labels(noisy_digits):
  data, groups = noisy_digits
  noisy = groups == studies.NOISY_LABEL
  dyn = dynamics.track(data, models=2, epochs=8, num_vectors=4, **FAST)
  for name, value in {"forgetting": proxies.forgetting_events(dyn.correct).score,
                      "csl": proxies.cumulative_loss(dyn.loss),
                      "csg": proxies.cumulative_gradient_norm(dyn.grad_norm),
                      "csg_input": proxies.cumulative_gradient_norm(dyn.input_grad_sq),
                      "curvature": proxies.mean_curvature(dyn.curvature)}.items():
    assert value[noisy].mean() > 2 * value[~noisy].mean(), name
  speed = proxies.learning_speed(dyn.prob)
  assert speed[noisy].mean() < speed[~noisy].mean() - 0.3


@pytest.mark.slow
def test_second_split_forgetting_noisy_labels_forgotten_first(noisy_digits):
  data, groups = noisy_digits
  noisy = groups == studies.NOISY_LABEL
  res = dynamics.second_split_forgetting(data, models=2, epochs_a=6, epochs_b=6, **FAST)
  assert res.correct_a.shape == (6, 2, 300) and res.correct_b.shape == (7, 2, 300)
  np.testing.assert_array_equal(res.correct_b[0], res.correct_a[-1])
  np.testing.assert_array_equal(res.keep_a[0], ~res.keep_a[1])
  assert np.isnan(res.ssft_per_model[~res.keep_a]).all()
  assert not np.isnan(res.ssft).any() and (res.ssft <= 7).all()
  # Maini et al.: mislabeled examples are learned late and forgotten early.
  assert res.fslt[noisy].mean() > res.fslt[~noisy].mean() + 1
  assert res.ssft[noisy].mean() < res.ssft[~noisy].mean() - 2
  with pytest.raises(MemjaxError, match="even"):
    dynamics.second_split_forgetting(data, models=3, **FAST)


@pytest.mark.slow
def test_holdout_retraining_moves_noisy_labels_most(noisy_digits):
  data, groups = noisy_digits
  noisy = groups == studies.NOISY_LABEL
  # 10 epochs: long enough for the MLP to fit the wrong labels (after 6 it has not yet).
  res = dynamics.holdout_retraining(data, models=2, epochs=10, finetune_epochs=5, **FAST)
  assert res.per_model.shape == (2, 300) and (res.per_model >= 0).all()
  assert res.score[noisy].mean() > 2 * res.score[~noisy].mean()
  assert roc_auc_score(noisy, res.score) > 0.75  # measured 0.88
