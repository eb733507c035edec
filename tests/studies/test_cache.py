"""RunCache: one ensemble per (data, configuration), unsaved objects told apart."""

import os

import numpy as np
import pytest

import memjax
from memjax import studies


@pytest.mark.slow
def test_run_cache_tells_unsaved_objects_apart(small_digits):
  """Two losses without an import path are both '<unsaved <lambda>>' in run.json; the study
  cache must not hand the run of one to the other."""
  cache = studies.RunCache()
  base = memjax.TrainConfig(model="logreg", num_models=2, epochs=1, batch_size=64)
  zero = base.replace(loss=lambda logits, labels: 0.0 * logits.sum(-1))
  other = base.replace(loss=lambda logits, labels: 0.0 * logits.sum(-1))
  run_a, _ = cache.train(small_digits, zero)
  run_b, _ = cache.train(small_digits, other)
  run_c, _ = cache.train(small_digits, zero)
  assert run_a is not run_b and run_a is run_c
  assert len(cache) == 2 and len(studies.SHARED) == 0  # a cache of its own


def test_datasets_memoised_per_spec_and_cleared():
  cache = studies.RunCache()
  digits = cache.dataset("digits")
  assert cache.dataset("digits") is digits and cache.dataset(digits) is digits
  cache.clear()
  assert cache.dataset("digits") is not digits


@pytest.mark.slow
def test_saving_saves_resumes_and_restores(small_digits, tmp_path):
  config = memjax.TrainConfig(model="logreg", num_models=2, epochs=1, batch_size=64)
  cache = studies.RunCache()
  lines = []
  with cache.saving(tmp_path / "runs") as same:
    assert same is cache and cache.directory == str(tmp_path / "runs")
    trained, _ = cache.train(small_digits, config, log=lines.append)
  assert cache.directory is None  # restored after the block
  (name,) = os.listdir(tmp_path / "runs")
  assert name.startswith("digits300-logreg-") and len(lines) == 1
  # Another process (a fresh cache) finds the finished run and trains nothing.
  again = studies.RunCache(tmp_path / "runs")
  reused, _ = again.train(small_digits, config)
  np.testing.assert_array_equal(reused.correct, trained.correct)
  assert os.listdir(tmp_path / "runs") == [name]



def test_derived_datasets_made_once_per_dataset_and_key(small_digits, digits):
  cache = studies.RunCache()
  made = []
  def make(tag):
    made.append(tag)
    return tag, object()
  a = cache.derived(small_digits, ("flip", 0.1, 0), lambda: make("a"))
  assert cache.derived(small_digits, ("flip", 0.1, 0), lambda: make("again")) is a
  b = cache.derived(small_digits, ("flip", 0.2, 0), lambda: make("b"))
  c = cache.derived(digits, ("flip", 0.1, 0), lambda: make("c"))
  assert made == ["a", "b", "c"] and a is not b and a is not c
  cache.clear()
  assert cache.derived(small_digits, ("flip", 0.1, 0), lambda: make("d")) is not a
