"""Shared fixtures (small datasets, the studies at scale "small") and the slow marker of the
docstring examples that train."""

import numpy as np
import pytest

import memjax


# Docstring examples (collected from memjax/ by --doctest-modules) that train models: marked slow
# here, since a docstring cannot carry a marker.
SLOW_DOCTESTS = ("memjax", "memjax.runner.train")


def pytest_collection_modifyitems(items):
  for item in items:
    if isinstance(item, pytest.DoctestItem) and item.name in SLOW_DOCTESTS:
      item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def chunking_cache(tmp_path_factory):
  """Measured chunk sizes go to a cache of the session's own (never the user's ~/.cache)."""
  import os
  path = tmp_path_factory.mktemp("memjax-cache")
  previous = os.environ.get("MEMJAX_CACHE_DIR")
  os.environ["MEMJAX_CACHE_DIR"] = str(path)
  yield path
  if previous is None:
    os.environ.pop("MEMJAX_CACHE_DIR", None)
  else:
    os.environ["MEMJAX_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def digits():
  return memjax.load("digits")


@pytest.fixture(scope="session")
def small_digits(digits):
  """The first 300 training and 100 test digits: fast to train on."""
  return memjax.from_arrays(digits.x_train[:300], digits.y_train[:300], digits.x_test[:100],
                            digits.y_test[:100], name="digits300", standardize=False)


def tiny_images(n_train=64, n_test=32, shape=(8, 8, 3), classes=4, seed=0):
  """Random images whose label is a visible per-class pattern (learnable)."""
  rng = np.random.default_rng(seed)
  patterns = rng.normal(size=(classes, *shape))
  def make(n):
    y = rng.integers(0, classes, n)
    return patterns[y] + 0.5 * rng.normal(size=(n, *shape)), y
  x_train, y_train = make(n_train)
  x_test, y_test = make(n_test)
  return memjax.from_arrays(x_train, y_train, x_test, y_test, name="tiny")


def cat_sentences(n_train=120, n_test=30, seed=0):
  """A tiny text dataset: sentences cut from a repeated phrase, predictable without training on
  them (so a sequence's counterfactual memorization is low unless it is unusual)."""
  from memjax import text
  rng = np.random.default_rng(seed)
  phrase = "the cat sat on the mat. " * 3
  sentences = [phrase[k:k + int(rng.integers(12, 20))]
               for k in rng.integers(0, 24, n_train + n_test)]
  return text.from_texts(sentences[:n_train], sentences[n_train:], name="cat")


@pytest.fixture(scope="session")
def small_studies(small_digits):
  """The studies at scale "small" on 300 digits (~50 s on 2 cores; the ensembles shared
  through a cache of their own), and the log lines of the ensembles trained."""
  from memjax import studies
  from memjax.studies import scales
  # One mitigation of three kinds (all 11 would be slow): trained, a model knob, read off.
  mitigations = (
      studies.Mitigation("weight decay", "weight decay 5e-3", {"weight_decay": 5e-3}),
      studies.Mitigation("dropout", "dropout 0.5", model_kwargs={"dropout": 0.5}),
      studies.Mitigation("early stopping", "stop at 50%", stop_fraction=0.5))
  logs = []
  settings = studies.StudySettings(small_digits, scale="small", log=logs.append,
                                   cache=studies.RunCache())
  out = {
      "model_size": studies.study("model_size").run(settings),
      "epochs": studies.study("epochs").run(settings),
      # Reuses model_size's two ensembles and epochs' ensemble: nothing new is trained.
      "transient": studies.study("transient").run(settings),
      # A third width so that the Pearson r is defined (n = 3); mlp[8] and mlp[64] are cached.
      "gap": studies.study("gap").run(settings, families=(scales.mlp(8), scales.mlp(16),
                                                          scales.mlp(64))),
      "natural_vs_artificial": studies.study("natural_vs_artificial").run(settings),
      "cscore": studies.study("cscore").run(settings),
      # A few settings, one fraction, two rates: the survey's studies at their smallest.
      "mitigation": studies.study("mitigation").run(settings, mitigations=mitigations),
      # Its first ensemble is model_size's mlp[64]; then 2 retrained ones.
      "onion": studies.study("onion").run(settings, fractions=(0.1,)),
      "noisy_labels": studies.study("noisy_labels").run(settings, rates=(0.1, 0.2)),
      # Two levels (no DP, epsilon 2) on the data with 20 canaries.
      "privacy": studies.study("privacy").run(settings, epsilons=(float("inf"), 2.0),
                                              canaries=20),
      # On text, with a cache of its own: two GPT sizes with canaries at 1, 4, 16 repetitions.
      "lm_memorization": studies.study("lm_memorization").run(
          studies.StudySettings(cat_sentences(), scale="small", cache=studies.RunCache())),
  }
  out["logs"] = logs
  out["mitigations"] = mitigations
  out["settings"] = settings
  return out


def load_benchmark(name: str):
  """benchmarks/NAME.py as a module (tests check what a benchmark computes)."""
  import importlib.util
  import sys
  from pathlib import Path
  path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
  if str(path.parent) not in sys.path:  # the benchmarks import their helpers (_baselines_*)
    sys.path.append(str(path.parent))
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="session")
def proxies_benchmark():
  """benchmarks/proxies_vs_memorization.py (the proxy comparison table lives there)."""
  return load_benchmark("proxies_vs_memorization")


@pytest.fixture(scope="session")
def coverage_benchmark():
  """benchmarks/interval_coverage.py (the exact coverage computation lives there)."""
  return load_benchmark("interval_coverage")
