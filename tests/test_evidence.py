"""The estimators on training runs where the answer is known: planted mislabels and exact LOO."""

import numpy as np
import pytest

import memjax


@pytest.mark.slow
def test_planted_mislabeled_singletons_score_near_one(small_digits):
  rng = np.random.default_rng(0)
  y = small_digits.y_train.copy()
  planted = rng.choice(len(y), 12, replace=False)
  y[planted] = (y[planted] + rng.integers(1, 10, len(planted))) % 10  # a wrong label
  data = memjax.from_arrays(small_digits.x_train, y, small_digits.x_test, small_digits.y_test,
                            standardize=False)
  run = memjax.train(data, models=32, progress=False)
  mem = memjax.memorization(run.correct, run.keep)
  typical = np.setdiff1d(np.arange(len(y)), planted)
  print(f"\nplanted: mean memorization {mem[planted].mean():.3f} (min {mem[planted].min():.3f});"
        f" typical: mean {mem[typical].mean():.3f}, median {np.median(mem[typical]):.3f}")
  assert run.records.train_accuracy()[-1].min() >= 0.99  # models fit their subsets
  assert mem[planted].mean() > 0.85 and mem[planted].min() > 0.5
  # 150 examples per model: natural memorization of atypical digits is real but rarer.
  assert np.median(mem[typical]) < 0.05 and mem[typical].mean() < 0.2
  top = np.argsort(-mem)[:len(planted)]
  assert len(np.intersect1d(top, planted)) >= len(planted) - 2


def clusters_with_outliers(seed=0):
  """3 Gaussian clusters of 8 points in 8-D; 3 'outliers' carry another cluster's label."""
  rng = np.random.default_rng(seed)
  centers = 4.0 * rng.normal(size=(3, 8))
  labels = np.repeat(np.arange(3), 8)
  x = centers[labels] + rng.normal(size=(24, 8))
  outliers = np.array([0, 8, 16])
  labels = labels.copy()
  labels[outliers] = (labels[outliers] + 1) % 3
  x_test = centers[np.arange(30) % 3] + rng.normal(size=(30, 8))
  return memjax.from_arrays(x, labels, x_test, np.arange(30) % 3, name="clusters"), outliers


@pytest.mark.slow
def test_subsampled_estimator_agrees_with_exact_leave_one_out():
  data, outliers = clusters_with_outliers()
  n, reps = data.num_train, 24
  settings = dict(model="mlp", model_kwargs={"widths": (64, 64)}, epochs=150, batch_size=8,
                  learning_rate=0.1, weight_decay=0.0, progress=False)
  # Exact definition: `reps` models on the full set, `reps` models on the set without i, for
  # every i (different seeds via different model indices).
  loo_keep = np.ones(((n + 1) * reps, n), bool)
  for i in range(n):
    loo_keep[(i + 1) * reps:(i + 2) * reps, i] = False
  loo = memjax.train(data, keep=loo_keep, **settings)
  full = loo.correct[:reps].astype(float)
  without = np.stack([loo.correct[(i + 1) * reps:(i + 2) * reps, i] for i in range(n)], 1)
  loo_mem = full.mean(0) - without.mean(0)
  loo_se = np.sqrt(full.var(0, ddof=1) / reps + without.var(0, ddof=1) / reps)
  # Subsampled estimator (Feldman & Zhang) on random 90% subsets (close to leave-one-out).
  sub = memjax.train(data, models=256, keep_ratio=0.9, seed=1, **settings)
  mem = memjax.memorization(sub.correct, sub.keep)
  se = memjax.memorization_se(sub.correct, sub.keep)
  z = np.abs(mem - loo_mem) / np.sqrt(se ** 2 + loo_se ** 2 + 1e-12)
  print(f"\nLOO {np.round(loo_mem, 2)}\nsub {np.round(mem, 2)}\nmax |diff| "
        f"{np.abs(mem - loo_mem).max():.3f}, max z {z.max():.2f}, "
        f"outliers LOO {loo_mem[outliers].round(2)} vs subsampled {mem[outliers].round(2)}")
  assert (loo_mem[outliers] > 0.8).all() and (mem[outliers] > 0.8).all()
  assert np.mean(z < 2) >= 0.9 and z.max() < 4
  assert np.abs(mem - loo_mem).max() < 0.3
