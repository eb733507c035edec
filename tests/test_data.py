
import numpy as np
import pytest

import memjax
from memjax import data as data_lib
from memjax.errors import MemjaxError


def test_digits_is_offline_fixed_and_standardised(digits):
  assert digits.x_train.shape == (1437, 8, 8, 1) and digits.x_test.shape == (360, 8, 8, 1)
  assert digits.num_classes == 10 and digits.is_image
  assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int32
  np.testing.assert_allclose(digits.x_train.mean(), 0.0, atol=1e-5)
  np.testing.assert_allclose(digits.x_train.std(), 1.0, atol=1e-4)
  again = memjax.load("digits")
  np.testing.assert_array_equal(again.y_train, digits.y_train)  # the split is fixed
  assert digits.raw_train.max() <= 1.0  # kept for display in [0, 1]


def test_npz_round_trip(tmp_path, digits):
  path = tmp_path / "d.npz"
  np.savez(path, x_train=digits.x_train[:50], y_train=digits.y_train[:50],
           x_test=digits.x_test[:20], y_test=digits.y_test[:20])
  for spec in (f"npz:{path}", str(path)):
    d = memjax.load(spec)
    assert d.num_train == 50 and d.num_test == 20 and d.name == "d"
    assert d.spec == spec  # recorded in run.json: Run.load reloads the data from it
  raw = memjax.load(str(path), standardize=False)  # the spec and the recorded choice reload it
  assert raw.spec == str(path) and not raw.standardized and raw.describe()["standardized"] is False
  assert memjax.load((digits.x_train, digits.y_train, digits.x_test, digits.y_test)).spec is None


def test_digits_without_standardisation_are_scaled_to_unit_interval():
  raw = memjax.load("digits", standardize=False)
  assert raw.x_train.min() == 0.0 and raw.x_train.max() == 1.0 and not raw.standardized
  standard = memjax.load("digits")
  assert standard.standardized and abs(float(standard.x_train.mean())) < 1e-5
  assert "not standardised" in raw.preprocessing and "standardised" in standard.preprocessing


def test_arrays_tuple_and_vectors():
  rng = np.random.default_rng(0)
  d = memjax.load((rng.normal(size=(30, 5)), rng.integers(0, 3, 30),
                   rng.normal(size=(10, 5)), rng.integers(0, 3, 10)))
  assert d.feature_shape == (5,) and not d.is_image and d.num_classes == 3


def test_uint8_images_are_scaled_and_grey_images_get_a_channel():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (20, 6, 6), dtype=np.uint8)
  d = memjax.from_arrays(x, np.arange(20) % 2, x[:5], np.arange(5) % 2, standardize=False)
  assert d.feature_shape == (6, 6, 1)
  assert d.x_train.max() <= 1.0


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.update(y_train=a["y_train"][:-1]), "same length"),
    (lambda a: a.update(y_train=a["y_train"] + 0.5), "non-integer"),
    (lambda a: a.update(y_train=-a["y_train"] - 1), "negative label"),
    (lambda a: a.update(x_train=np.where(np.arange(40)[:, None] == 3, np.nan, a["x_train"])),
     "NaN/inf"),
    (lambda a: a.update(x_test=a["x_test"][:0], y_test=a["y_test"][:0]), "empty"),
    (lambda a: a.update(x_test=a["x_test"][:, :3]), "feature shape"),
    (lambda a: a.update(y_train=np.eye(3)[a["y_train"]]), "1-D"),
    (lambda a: a.update(y_train=np.zeros(40, int), y_test=np.zeros(10, int)), "at least 2"),
])
def test_bad_arrays_get_clear_errors(mutate, message):
  rng = np.random.default_rng(0)
  arrays = {"x_train": rng.normal(size=(40, 4)), "y_train": rng.integers(0, 3, 40),
            "x_test": rng.normal(size=(10, 4)), "y_test": rng.integers(0, 3, 10)}
  mutate(arrays)
  with pytest.raises(MemjaxError, match=message):
    memjax.from_arrays(**arrays)


def test_labels_beyond_num_classes():
  with pytest.raises(MemjaxError, match=r"\[0, num_classes\)"):
    memjax.from_arrays(np.zeros((4, 2)), [0, 1, 2, 5], np.zeros((2, 2)), [0, 1], num_classes=3)


def test_missing_file_and_missing_keys(tmp_path):
  with pytest.raises(MemjaxError, match="does not exist"):
    memjax.load(str(tmp_path / "nope.npz"))
  path = tmp_path / "partial.npz"
  np.savez(path, x_train=np.zeros((3, 2)), y_train=np.zeros(3))
  with pytest.raises(MemjaxError, match="missing the array.*x_test"):
    memjax.load(f"npz:{path}")
  with pytest.raises(MemjaxError, match="Unknown dataset spec"):
    memjax.load("mnist")


def test_tfds_reads_with_data_source_without_tensorflow():
  tfds = pytest.importorskip("tensorflow_datasets")
  import sys
  with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
    d = memjax.load("tfds:cifar10")
  assert d.x_train.shape == (24, 32, 32, 3) and d.num_classes == 10
  assert len(d.class_names) == 10
  assert "tensorflow" not in sys.modules  # array_record reading, no TensorFlow import


def test_tfds_spec_parsing(monkeypatch):
  calls = []
  rng = np.random.default_rng(0)
  tiny = memjax.from_arrays(rng.normal(size=(4, 3)), [0, 1, 0, 1], rng.normal(size=(2, 3)), [0, 1])

  def fake_load_tfds(name, **kw):
    calls.append((name, kw))
    return tiny

  monkeypatch.setattr(data_lib, "load_tfds", fake_load_tfds)
  assert memjax.load("tfds:cifar10:train[:10],test[:5]").spec == "tfds:cifar10:train[:10],test[:5]"
  memjax.load("tfds:mnist")
  assert calls == [("cifar10", {"train_split": "train[:10]", "test_split": "test[:5]"}),
                   ("mnist", {"train_split": "train", "test_split": "test"})]


def test_tfds_not_prepared_is_a_clear_error(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(MemjaxError, match="not downloaded/prepared.*never downloads"):
    data_lib.load_tfds("mnist", data_dir=str(tmp_path))


def test_spec_slug_names_run_directories():
  assert data_lib.spec_slug("npz:/a/b.npz") == "b"
  assert data_lib.spec_slug("tfds:cifar10:train[:10]") == "cifar10-train--10-"
  assert data_lib.spec_slug("digits+artificial") == "digits-artificial"
  assert data_lib.spec_slug("digits") == "digits"
