"""memjax.canaries: planted examples, their record in run.json, and their re-creation on load."""

import json

import numpy as np
import pytest

import memjax
from memjax import canaries, runner
from memjax.errors import MemjaxError


@pytest.mark.parametrize("kind", canaries.KINDS)
def test_canaries_are_appended_with_matching_rows(digits, kind):
  data, idx = memjax.with_canaries(digits, 25, kind=kind, seed=3)
  n = digits.num_train
  np.testing.assert_array_equal(idx, np.arange(n, n + 25))
  assert data.x_train.shape == (n + 25, 8, 8, 1) and data.x_train.dtype == np.float32
  assert data.y_train.shape == (n + 25,) and data.y_train.dtype == np.int32
  assert data.raw_train.shape == (n + 25, 8, 8, 1)
  assert data.raw_train.dtype == digits.raw_train.dtype
  # The original examples, the test split and the preprocessing are untouched.
  np.testing.assert_array_equal(data.x_train[:n], digits.x_train)
  np.testing.assert_array_equal(data.y_train[:n], digits.y_train)
  np.testing.assert_array_equal(data.x_test, digits.x_test)
  assert data.spec == digits.spec and data.standardized and data.num_classes == 10
  assert data.y_train[idx].min() >= 0 and data.y_train[idx].max() < 10
  record = data.canaries
  assert record["count"] == 25 and record["kind"] == kind and record["seed"] == 3
  assert record["indices"] == idx.tolist()
  if kind == "noise":
    assert record["sources"] is None
    x = data.x_train[idx]
    assert abs(x.mean()) < 0.1 and abs(x.std() - 1) < 0.1  # N(0, 1) in standardised units
    raw = data.raw_train[idx]  # display rows within the raw range
    assert raw.min() >= digits.raw_train.min() and raw.max() <= digits.raw_train.max()
  else:
    src = np.asarray(record["sources"])
    assert len(set(src.tolist())) == 25 and src.max() < n
    np.testing.assert_array_equal(data.x_train[idx], digits.x_train[src])
    np.testing.assert_array_equal(data.raw_train[idx], digits.raw_train[src])
    if kind == "mislabeled":
      assert np.all(data.y_train[idx] != digits.y_train[src])
    else:
      np.testing.assert_array_equal(data.y_train[idx], digits.y_train[src])


def test_canaries_are_deterministic_and_seeded(digits):
  a, _ = memjax.with_canaries(digits, 30, "noise", seed=1)
  b, _ = memjax.with_canaries(digits, 30, "noise", seed=1)
  c, _ = memjax.with_canaries(digits, 30, "noise", seed=2)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.y_train, b.y_train)
  assert not np.array_equal(a.x_train, c.x_train)
  m1, _ = memjax.with_canaries(digits, 30, "mislabeled", seed=1)
  m2, _ = memjax.with_canaries(digits, 30, "mislabeled", seed=1)
  assert m1.canaries == m2.canaries
  np.testing.assert_array_equal(m1.y_train, m2.y_train)


def test_uint8_images_get_uint8_noise_rows():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (40, 6, 6, 3), dtype=np.uint8)
  data = memjax.from_arrays(x, rng.integers(0, 3, 40), x[:10], rng.integers(0, 3, 10))
  out, idx = memjax.with_canaries(data, 5, "noise")
  assert out.raw_train.dtype == np.uint8 and out.raw_train.shape == (45, 6, 6, 3)
  # Vector data works too (per-feature statistics).
  vec = memjax.from_arrays(rng.normal(size=(50, 7)), rng.integers(0, 2, 50),
                           rng.normal(size=(9, 7)), rng.integers(0, 2, 9))
  out, idx = memjax.with_canaries(vec, 4, "mislabeled")
  assert out.x_train.shape == (54, 7) and np.all(out.y_train[idx] != vec.y_train[
      out.canaries["sources"]])


def test_describe_records_the_canaries_and_the_record_recreates_them(digits):
  assert "canaries" not in digits.describe()  # runs without canaries: run.json unchanged
  data, idx = memjax.with_canaries(digits, 12, "mislabeled", seed=5)
  described = json.loads(json.dumps(data.describe()))  # what run.json holds
  assert described["canaries"] == data.canaries and described["num_train"] == digits.num_train + 12
  again = canaries.apply_record(digits, described["canaries"])
  np.testing.assert_array_equal(again.x_train, data.x_train)
  np.testing.assert_array_equal(again.y_train, data.y_train)
  assert canaries.apply_record(data, described["canaries"]) is data
  assert canaries.apply_record(digits, None) is digits
  # load_recorded_data (Run.load, memjax attack, the report) re-applies them.
  info = {"data_spec": "digits", "data": described}
  loaded = runner.load_recorded_data(info)
  np.testing.assert_array_equal(loaded.y_train, data.y_train)
  np.testing.assert_array_equal(loaded.raw_train, data.raw_train)
  assert loaded.canaries == data.canaries


def test_canary_errors_name_the_fix(digits):
  with pytest.raises(MemjaxError, match="integer >= 1"):
    memjax.with_canaries(digits, 0)
  with pytest.raises(MemjaxError, match="integer >= 1"):
    memjax.with_canaries(digits, 2.5)
  with pytest.raises(MemjaxError, match="choose one of mislabeled, noise, clean_copy"):
    memjax.with_canaries(digits, 5, kind="typo")
  with pytest.raises(MemjaxError, match="seed"):
    memjax.with_canaries(digits, 5, seed=-1)
  with pytest.raises(MemjaxError, match="at most 1437, or kind='noise'"):
    memjax.with_canaries(digits, 2000, kind="mislabeled")
  data, _ = memjax.with_canaries(digits, 5)
  with pytest.raises(MemjaxError, match="in one with_canaries call"):
    memjax.with_canaries(data, 5)
  other, _ = memjax.with_canaries(digits, 6)
  with pytest.raises(MemjaxError, match="other canaries"):
    canaries.apply_record(other, data.canaries)
  # A record that does not fit the data (e.g. another dataset of the same name) is refused.
  with pytest.raises(MemjaxError, match="not the one the run was trained on"):
    canaries.apply_record(memjax.from_arrays(digits.x_train[:100], digits.y_train[:100],
                                             digits.x_test, digits.y_test), data.canaries)
