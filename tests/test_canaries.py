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


# ------------------------------------------------------------------------------------------------
# Text canaries (secrets)


@pytest.fixture(scope="module")
def pydoc():
  return memjax.load("pydoc")


def test_text_canaries_are_secrets_with_repeats(pydoc):
  data, idx = memjax.with_canaries(pydoc, 3, seed=4, repeats=(1, 4, 16), digits=6)
  n = pydoc.num_train
  record = data.canaries
  assert record["kind"] == "secret" and record["count"] == 3 and record["seed"] == 4
  assert record["repeats"] == [1, 1, 1, 4, 4, 4, 16, 16, 16]
  assert data.num_train == n + 3 * (1 + 4 + 16) and idx.tolist() == list(range(n, n + 63))
  assert record["indices"] == idx.tolist()
  # Copies: consecutive rows after the originals, repeats[k] of canary k.
  flat = [r for rows in record["copies"] for r in rows]
  assert flat == idx.tolist() and [len(c) for c in record["copies"]] == record["repeats"]
  assert len(set(record["prefixes"])) == 9 and record["prefixes"][3] == "my code 3 is "
  for k, rows in enumerate(record["copies"]):
    secret = record["secrets"][k]
    assert len(secret) == 11 and secret.replace(" ", "").isdigit() and secret[1::2] == " " * 5
    for r in rows:
      assert data.decode(data.y_train[r]) == record["prefixes"][k] + secret
  assert record["digits"] == 6 and record["space_size"] == 10 ** 6
  assert record["candidates"] == 1000 and record["exact"] is False
  # The originals, the test split and the vocabulary are untouched (all characters known).
  np.testing.assert_array_equal(data.x_train[:n], pydoc.x_train)
  np.testing.assert_array_equal(data.y_test, pydoc.y_test)
  assert data.class_names == pydoc.class_names and data.spec == "pydoc"
  # Seeded.
  again, _ = memjax.with_canaries(pydoc, 3, seed=4, repeats=(1, 4, 16))
  other, _ = memjax.with_canaries(pydoc, 3, seed=5, repeats=(1, 4, 16))
  assert again.canaries == record and other.canaries["secrets"] != record["secrets"]


def test_text_canaries_extend_the_vocabulary_and_repad():
  from memjax import text
  base = text.from_texts(["abc", "ba", "cab"], ["ab"], name="tiny")  # no digits, L = 3
  data, _ = memjax.with_canaries(base, 2, digits=3)
  assert data.sequence_length == len("my code 1 is 1 2 3") and data.feature_shape[0] > 3
  canary_text = "".join(data.canaries["prefixes"] + data.canaries["secrets"])
  assert set(canary_text) <= set(data.class_names) and "m" not in base.class_names
  assert set("0123456789") <= set(data.class_names)  # every candidate secret is encodable
  x, _ = memjax.canaries.candidate_sequences(data)
  assert x.shape == (2, 1000, data.sequence_length)
  assert list(data.class_names) == [""] + sorted(data.class_names[1:])
  # The original sequences decode the same after re-encoding and re-padding.
  assert data.texts("train")[:3] == ["abc", "ba", "cab"] and data.texts("test") == ["ab"]
  assert np.all(data.y_train[:3, 3:] == -1) and np.all(data.x_train[:3, 3:] == 0)
  record = data.canaries
  assert data.texts("train")[3] == record["prefixes"][0] + record["secrets"][0]
  # The byte tokenizer needs no new tokens.
  raw = text.from_texts(["abc", "ba"], ["ab"], tokenizer="byte")
  out, _ = memjax.with_canaries(raw, 1)
  assert out.num_classes == 257 and out.texts("train")[2].startswith("my code 0 is ")


def test_tie_copies_keeps_copies_together_and_the_in_count(pydoc):
  data, _ = memjax.with_canaries(pydoc, 4, repeats=(1, 3))
  record = data.canaries
  design = memjax.design.make("balanced", 16, data.num_train, (0.5,), 0)
  tied = canaries.tie_copies(design.keep, record)
  assert tied.shape == design.keep.shape and tied is not design.keep
  for rows in record["copies"]:
    np.testing.assert_array_equal(tied[:, rows], np.repeat(tied[:, rows[:1]], len(rows), 1))
    np.testing.assert_array_equal(tied[:, rows[0]], design.keep[:, rows[0]])
    assert tied[:, rows[0]].sum() == 8  # the balanced design's IN count per canary
  original = np.setdiff1d(np.arange(data.num_train), record["indices"])
  np.testing.assert_array_equal(tied[:, original], design.keep[:, original])
  # Image records (no copies) pass through.
  np.testing.assert_array_equal(canaries.tie_copies(design.keep, {"count": 1}), design.keep)
  with pytest.raises(MemjaxError, match="keep mask of the data with the canaries"):
    canaries.tie_copies(design.keep[:, :100], record)


def test_candidate_sequences_layout(pydoc):
  data, _ = memjax.with_canaries(pydoc, 2, seed=1, digits=3, candidates=5000)
  record = data.canaries
  assert record["exact"] and record["candidates"] == 999
  x, y = canaries.candidate_sequences(data)
  length = data.sequence_length
  assert x.shape == y.shape == (2, 1000, length) and x.dtype == y.dtype == np.int32
  for k in range(2):
    prefix, secret = record["prefixes"][k], record["secrets"][k]
    row = record["copies"][k][0]
    # Row 0 is the canary itself, laid out as its training row; only the secret is scored.
    np.testing.assert_array_equal(x[k, 0], data.x_train[row])
    p = len(prefix)
    np.testing.assert_array_equal(y[k, 0, p:], data.y_train[row, p:])
    assert np.all(y[k, :, :p] == -1) and data.decode(y[k, 0]) == secret
    # Exact: every one of the 10**3 secrets once, with the same prefix.
    secrets = [data.decode(y[k, i]) for i in range(1000)]
    assert sorted(s.replace(" ", "") for s in secrets) == [f"{v:03d}" for v in range(1000)]
    assert all(data.decode(x[k, i, :p + 1]) == prefix for i in range(1000))
    n = p + 5  # "1 2 3": each scored token is the next input, up to the last one
    np.testing.assert_array_equal(x[k, :, p + 1:n], y[k, :, p:n - 1])
    assert np.all(y[k, :, n:] == -1) and np.all(x[k, :, n:] == 0)


def test_candidate_sequences_sample_without_the_secret(pydoc):
  data, _ = memjax.with_canaries(pydoc, 2, seed=2, digits=6, candidates=300)
  x, y = canaries.candidate_sequences(data)
  assert x.shape[:2] == (2, 301)
  for k in range(2):
    secrets = [data.decode(y[k, i]) for i in range(301)]
    assert secrets[0] == data.canaries["secrets"][k]
    assert len(set(secrets)) == 301  # distinct, the secret only in row 0
  _, y2 = canaries.candidate_sequences(data)  # deterministic
  np.testing.assert_array_equal(y, y2)
  with pytest.raises(MemjaxError, match="no text canaries"):
    canaries.candidate_sequences(pydoc)


def test_text_canary_record_round_trip(pydoc):
  data, _ = memjax.with_canaries(pydoc, 2, seed=3, repeats=(2, 5), digits=4, candidates=50)
  described = json.loads(json.dumps(data.describe()))
  assert described["canaries"] == data.canaries
  again = canaries.apply_record(pydoc, described["canaries"])
  np.testing.assert_array_equal(again.x_train, data.x_train)
  np.testing.assert_array_equal(again.y_train, data.y_train)
  assert again.canaries == data.canaries and again.class_names == data.class_names
  assert canaries.apply_record(data, described["canaries"]) is data
  loaded = runner.load_recorded_data({"data_spec": "pydoc", "data": described})
  np.testing.assert_array_equal(loaded.y_train, data.y_train)
  with pytest.raises(MemjaxError, match="not the one the run was trained on"):
    canaries.apply_record(memjax.load("pydoc", test_fraction=0.2), described["canaries"])
  with pytest.raises(MemjaxError, match="not a text dataset"):
    canaries.apply_record(memjax.load("digits"), described["canaries"])


def test_text_canary_errors_name_the_fix(pydoc, digits):
  with pytest.raises(MemjaxError, match="text dataset, whose canaries are kind='secret'"):
    memjax.with_canaries(pydoc, 2, kind="mislabeled")
  with pytest.raises(MemjaxError, match="plants secrets in text datasets.*mislabeled"):
    memjax.with_canaries(digits, 2, kind="secret")
  with pytest.raises(MemjaxError, match="repeats applies to text canaries only"):
    memjax.with_canaries(digits, 2, repeats=(1, 4))
  with pytest.raises(MemjaxError, match="digits, candidates apply to text canaries only"):
    memjax.with_canaries(digits, 2, digits=4, candidates=10)
  with pytest.raises(MemjaxError, match="integers >= 1, e.g. repeats=.1, 4, 16"):
    memjax.with_canaries(pydoc, 2, repeats=(1, 0))
  with pytest.raises(MemjaxError, match="1 to 18 digits"):
    memjax.with_canaries(pydoc, 2, digits=0)
  with pytest.raises(MemjaxError, match="candidates=0"):
    memjax.with_canaries(pydoc, 2, candidates=0)
  # The image default stays "mislabeled".
  assert memjax.with_canaries(digits, 2)[0].canaries["kind"] == "mislabeled"


def test_cli_canary_flags_for_text():
  from memjax import cli
  args = cli.build_parser().parse_args(
      ["run", "--data", "pydoc", "--canaries", "4", "--canary-repeats", "1,4,16",
       "--canary-digits", "5", "--canary-candidates", "200"])
  assert args.canary_repeats == (1, 4, 16) and args.canary_digits == 5
  assert args.canary_candidates == 200 and args.canary_kind is None
  assert cli.build_parser().parse_args(["run", "--canary-kind", "secret"]).canary_kind == "secret"
  with pytest.raises(SystemExit):
    cli.build_parser().parse_args(["run", "--canary-repeats", "1,x"])
