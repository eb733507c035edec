"""Shared fixtures: small datasets and fast configurations."""

import numpy as np
import pytest

import memjax


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


@pytest.fixture(scope="session")
def proxies_benchmark():
  """benchmarks/proxies_vs_memorization.py as a module (the proxy comparison table lives there)."""
  import importlib.util
  import sys
  from pathlib import Path
  path = Path(__file__).resolve().parents[1] / "benchmarks" / "proxies_vs_memorization.py"
  spec = importlib.util.spec_from_file_location("proxies_vs_memorization", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
  spec.loader.exec_module(module)
  return module
