"""memjax.text: tokenizers, text files, the embedded pydoc corpus and TFDS text datasets."""

import json
import sys

import numpy as np
import pytest

import memjax
from memjax import data as data_lib
from memjax import text
from memjax.errors import MemjaxError


def write(tmp_path, content, name="corpus.txt"):
  path = tmp_path / name
  path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
  return str(path)


def test_char_tokenizer_round_trip():
  tok = text.CharTokenizer.from_characters("hello world")
  assert tok.vocabulary == ("", " ", "d", "e", "h", "l", "o", "r", "w") and tok.size == 9
  ids = tok.encode("hello")
  assert ids.dtype == np.int32 and ids.tolist() == [4, 3, 5, 5, 6]
  assert tok.decode(ids) == "hello"
  # BOS/padding (0) and unscored targets (-1) are skipped.
  assert tok.decode([0, 4, 3, -1, -1]) == "he"
  with pytest.raises(MemjaxError, match="not in this dataset's vocabulary.*tokenizer='byte'"):
    tok.encode("hello!")
  with pytest.raises(MemjaxError, match="outside the vocabulary"):
    tok.decode([9])


def test_byte_tokenizer_round_trip_on_non_ascii():
  tok = text.ByteTokenizer()
  s = "Grüße, 東京 🙂"
  ids = tok.encode(s)
  assert tok.size == 257 and len(tok.vocabulary) == 257
  assert ids.tolist() == [b + 1 for b in s.encode("utf-8")]
  assert ids.min() >= 1 and ids.max() <= 256
  assert tok.decode(ids) == s
  assert tok.vocabulary[1 + ord("A")] == "A" and tok.vocabulary[1 + 0xC3] == "<0xC3>"


def test_layout_is_bos_shifted_and_padded():
  x, y = text.layout([np.array([5, 6, 7]), np.array([8])], 4)
  assert x.dtype == np.int32 and y.dtype == np.int32
  np.testing.assert_array_equal(x, [[0, 5, 6, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(y, [[5, 6, 7, -1], [8, -1, -1, -1]])
  # Every real target is predicted from the tokens before it: x[t] is y[t - 1].
  np.testing.assert_array_equal(x[0, 1:3], y[0, :2])
  with pytest.raises(MemjaxError, match="1 to 4"):
    text.layout([np.arange(1, 6)], 4)


def test_lines_become_sequences(tmp_path):
  lines = [f"line number {i} here" for i in range(20)]
  path = write(tmp_path, "\n".join(lines[:10]) + "\n\n   \n" + "\r\n".join(lines[10:]) + "\n")
  data = text.load_text(path, test_fraction=0.25, seed=1)
  assert data.task == "language_model" and data.is_text and data.tokenizer == "char"
  assert not data.is_image and data.raw_train is None and not data.standardized
  assert data.num_train == 15 and data.num_test == 5
  longest = max(len(s) for s in lines)
  assert data.feature_shape == (longest,) and data.sequence_length == longest
  assert data.x_train.dtype == np.int32 and data.y_test.shape == (5, longest)
  # Whitespace-only lines are dropped, \r\n endings stripped; the training split keeps file order.
  train, test = data.texts("train"), data.texts("test")
  assert sorted(train + test) == sorted(lines)
  assert train == [s for s in lines if s in set(train)]
  # Vocabulary: BOS "" then the sorted characters of both splits.
  assert data.class_names == ("",) + tuple(sorted(set("".join(lines))))
  assert data.num_classes == len(data.class_names)
  row = data.y_train[0]
  n = int((row >= 0).sum())
  assert data.decode(row) == train[0] and n == len(train[0])
  np.testing.assert_array_equal(data.x_train[0, 1:n], row[:n - 1])
  assert data.x_train[0, 0] == 0 and np.all(data.x_train[0, n:] == 0) and np.all(row[n:] == -1)
  # A given sequence_length sets L for lines too, and caps them.
  padded = text.load_text(path, sequence_length=30, segmentation="lines", test_fraction=0.25,
                          seed=1)
  assert padded.feature_shape == (30,) and padded.texts("test") == test
  with pytest.raises(MemjaxError, match="more than sequence_length=10"):
    text.load_text(path, sequence_length=10, segmentation="lines")
  # The split is seeded.
  again = text.load_text(path, test_fraction=0.25, seed=1)
  other = text.load_text(path, test_fraction=0.25, seed=2)
  assert again.texts("test") == test and other.texts("test") != test


def test_chunks_cut_the_whole_file(tmp_path):
  content = "abcdefghij\nklmnopqrst\nuvwxyz"  # 28 characters, line breaks included
  path = write(tmp_path, content)
  data = memjax.load(f"text:{path}:8")
  assert data.feature_shape == (8,) and (data.num_train, data.num_test) == (3, 1)
  assert data.spec == f"text:{path}:8" and data.segmentation == "chunks of 8"
  chunks = [content[i:i + 8] for i in range(0, 28, 8)]
  assert sorted(data.texts("train") + data.texts("test")) == sorted(chunks)
  assert "\n" in data.class_names
  assert data_lib.spec_slug(f"text:{path}:8") == "corpus-8"
  # Same through the keyword; lines is the default without a length.
  by_kw = text.load_text(path, sequence_length=8)
  np.testing.assert_array_equal(by_kw.x_train, data.x_train)
  lines = memjax.load(f"text:{path}")
  assert lines.segmentation == "lines" and lines.feature_shape == (10,)
  assert lines.spec == f"text:{path}"
  # Other loader options leave no spec (it would not reproduce the data).
  assert memjax.load(f"text:{path}:8", test_fraction=0.5).spec is None


def test_byte_tokenizer_on_a_non_ascii_file(tmp_path):
  lines = ["naïve café", "Grüße aus Köln", "東京タワー", "plain ascii line"]
  path = write(tmp_path, "\n".join(lines))
  data = memjax.load(f"text:{path}", tokenizer="byte", test_fraction=0.25)
  assert data.tokenizer == "byte" and data.num_classes == 257
  assert data.spec is None  # a loader option: the spec alone would not reproduce it
  assert data.feature_shape == (max(len(s.encode()) for s in lines),)
  assert sorted(data.texts("train") + data.texts("test")) == sorted(lines)
  char = memjax.load(f"text:{path}", test_fraction=0.25)
  assert sorted(char.texts("train") + char.texts("test")) == sorted(lines)
  assert char.feature_shape == (max(len(s) for s in lines),)
  # Not UTF-8: the char tokenizer refuses, the byte tokenizer keeps the bytes.
  latin = write(tmp_path, "caf\xe9\nna\xefve\n".encode("latin-1"), "latin.txt")
  with pytest.raises(MemjaxError, match="not UTF-8.*tokenizer='byte'"):
    memjax.load(f"text:{latin}")
  raw = memjax.load(f"text:{latin}", tokenizer="byte", test_fraction=0.5)
  rows = np.concatenate([raw.y_train, raw.y_test])
  assert sorted(bytes(int(t) - 1 for t in r if t > 0) for r in rows) == [b"caf\xe9", b"na\xefve"]


def test_describe_and_preprocessing_for_text(tmp_path):
  path = write(tmp_path, "one line\nanother line\nthird one\n")
  data = memjax.load(f"text:{path}", test_fraction=0.34)
  described = json.loads(json.dumps(data.describe()))
  assert described["task"] == "language_model" and described["tokenizer"] == "char"
  assert described["sequence_length"] == 12 and described["segmentation"] == "lines"
  assert described["standardized"] is False and described["class_names"][0] == ""
  assert "char-level tokens (V = " in data.preprocessing and "L = 12" in data.preprocessing
  assert "lines" in data.preprocessing


def test_classification_datasets_are_unchanged(digits):
  assert digits.task == "classification" and digits.tokenizer is None and not digits.is_text
  assert digits.sequence_length is None
  assert set(digits.describe()) == {"name", "num_train", "num_test", "feature_shape",
                                    "num_classes", "class_names", "standardized",
                                    "preprocessing"}
  with pytest.raises(MemjaxError, match="not a text dataset"):
    digits.decode([1, 2])


def test_pydoc_corpus_loads_offline():
  data = memjax.load("pydoc")
  assert data.name == "pydoc" and data.spec == "pydoc" and data.task == "language_model"
  assert (data.num_train, data.num_test) == (1800, 200)
  assert data.feature_shape == (64,) and data.num_classes == 73
  sentences = data.texts("train") + data.texts("test")
  assert len(set(sentences)) == 2000
  assert all(20 <= len(s) <= 64 and s.isascii() and s.endswith(".") for s in sentences)
  assert data.texts("train")[0] == "The name is rebound if it was already bound."
  byte = memjax.load("pydoc", tokenizer="byte")
  assert byte.num_classes == 257 and byte.texts("test") == data.texts("test")
  # The load through runner.load_recorded_data passes standardize; it is accepted and ignored.
  assert memjax.load("pydoc", standardize=True).spec == "pydoc"


def test_pydoc_corpus_is_package_data_with_its_notice():
  from importlib import resources
  folder = resources.files("memjax.corpora")
  notice = folder.joinpath("NOTICE").read_text()
  assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in notice
  assert "Copyright (c) 2001" in notice and "3.12.1" in notice
  lines = folder.joinpath("pydoc_sentences.txt").read_text().splitlines()
  assert len(lines) == 2000 and len(set(lines)) == 2000


def test_pydoc_corpus_script_reproduces_the_file():
  """The committed file is what the script makes with CPython 3.12.1."""
  if sys.version_info[:3] != (3, 12, 1):
    pytest.skip("the corpus was made from CPython 3.12.1's documentation")
  from memjax.corpora import make_pydoc_sentences
  assert make_pydoc_sentences.main(["--check"]) == 0


def test_corpus_script_filters():
  from memjax.corpora import make_pydoc_sentences as make
  assert make.keep("The target is only evaluated once.")
  assert not make.keep("Call f(x) to compute it now, please.")  # code-like
  assert not make.keep("Too short.")
  assert not make.keep("lower case start is not a sentence start.")
  assert not make.keep("Non-ASCII caf\u00e9 sentences are dropped here.")
  assert make.paragraphs("Title\n*****\n\nSome *emphasis* here.\n\n* A bullet\n  goes on.\n") == [
      "Some emphasis here.", "A bullet goes on."]


def test_text_errors_name_the_fix(tmp_path):
  with pytest.raises(MemjaxError, match="does not exist.*'pydoc'"):
    memjax.load(f"text:{tmp_path / 'missing.txt'}")
  with pytest.raises(MemjaxError, match="holds no text"):
    memjax.load(f"text:{write(tmp_path, '', 'empty.txt')}")
  blank = write(tmp_path, "  \n\n \t\n", "blank.txt")
  with pytest.raises(MemjaxError, match="holds no text"):
    memjax.load(f"text:{blank}")
  long_file = write(tmp_path, "short line\n" + "x" * 200 + "\n", "long.txt")
  with pytest.raises(MemjaxError, match=r"line 2 of .* has 200 characters, more than "
                     r"max_length=128\. Cut long text into fixed-length chunks.*text:PATH:64"):
    memjax.load(f"text:{long_file}")
  assert memjax.load(f"text:{long_file}", max_length=200).feature_shape == (200,)
  assert memjax.load(f"text:{long_file}:64").feature_shape == (64,)
  with pytest.raises(MemjaxError, match="names no file"):
    memjax.load("text:")
  with pytest.raises(MemjaxError, match="Unknown dataset spec.*'pydoc'.*text:PATH"):
    memjax.load("pydocs")
  path = write(tmp_path, "a line\nanother line\n")
  with pytest.raises(MemjaxError, match="sequence_length=0.*integer >= 1"):
    memjax.load(f"text:{path}:0")
  with pytest.raises(MemjaxError, match="Unknown tokenizer 'word'"):
    memjax.load(f"text:{path}", tokenizer="word")
  with pytest.raises(MemjaxError, match="test_fraction=1.*strictly between 0 and 1"):
    memjax.load(f"text:{path}", test_fraction=1)
  with pytest.raises(MemjaxError, match="holds 1 sequence.*at least 2"):
    memjax.load(f"text:{write(tmp_path, 'only one line', 'one.txt')}")
  with pytest.raises(MemjaxError, match="segmentation='chunks' needs the chunk length"):
    text.load_text(path, segmentation="chunks")
  with pytest.raises(MemjaxError, match="says chunks of 4 but sequence_length=8"):
    memjax.load(f"text:{path}:4", sequence_length=8)


def test_from_texts_builds_both_splits():
  data = text.from_texts(["abc", "ab"], ["cab!"], name="tiny")
  assert data.class_names == ("", "!", "a", "b", "c") and data.feature_shape == (4,)
  assert data.texts("train") == ["abc", "ab"] and data.texts("test") == ["cab!"]
  with pytest.raises(MemjaxError, match="test split has no sequences"):
    text.from_texts(["abc"], [])
  with pytest.raises(MemjaxError, match="Unknown split"):
    data.texts("validation")


def test_tfds_text_dataset_via_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
    records = [r["text"] for r in tfds.data_source("lm1b", split="train")]
    records = [r.decode() if isinstance(r, bytes) else r for r in records]
    data = memjax.load("tfds:lm1b")
    shakespeare = memjax.load("tfds:tiny_shakespeare:train,test")
    chunked = memjax.load("tfds:lm1b", tokenizer="byte", max_length=5)
    with pytest.raises(MemjaxError, match="several text features.*text_key='title'"):
      memjax.load("tfds:ag_news_subset")
    news = memjax.load("tfds:ag_news_subset", text_key="description")
  assert data.task == "language_model" and data.name == "lm1b" and data.spec == "tfds:lm1b"
  assert data.num_train == 6 and data.num_test == 6
  assert data.texts("train") == records
  assert data.feature_shape == (max(len(r) for r in records),)
  assert data.segmentation.startswith("records")
  assert shakespeare.task == "language_model" and shakespeare.num_train == 6
  # Records longer than max_length are cut into chunks of max_length.
  assert chunked.feature_shape == (5,) and chunked.tokenizer == "byte"
  assert chunked.texts("train") == [r[i:i + 5] for r in records for i in range(0, len(r), 5)]
  assert news.is_text
  assert "tensorflow" not in sys.modules


def test_tfds_image_datasets_refuse_text_options():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE), \
       pytest.raises(MemjaxError, match="not a text dataset.*text datasets only"):
    memjax.load("tfds:cifar10", tokenizer="char")
