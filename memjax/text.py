"""Text datasets for language models: tokenizers, text files, TFDS text and the embedded corpus.

A text dataset is a :class:`memjax.Dataset` with ``task="language_model"``: every sequence
c_1 ... c_n (n <= L tokens, L the dataset's sequence length) becomes one row of

* ``x`` = [BOS, c_1, ..., c_{n-1}, 0, ...]: int32 [L], the inputs (BOS id 0, padding also 0);
* ``y`` = [c_1, ..., c_n, -1, ...]: int32 [L], the next-token targets (-1 = not scored),

so every real token is predicted from the tokens before it. ``num_classes`` is the vocabulary
size V (BOS included) and ``class_names`` the V token strings (index 0 = "" for BOS).

Tokenizers:

* ``"char"`` (default): one token per character; the vocabulary is BOS plus the sorted set of the
  characters of both splits.
* ``"byte"``: one token per byte of the UTF-8 encoding, token 1 + b for byte b (V = 257); any
  text, any script, a fixed vocabulary. Text that is not valid UTF-8 keeps its bytes.

Segmentation of a text file (:func:`load_text`, spec ``text:PATH`` / ``text:PATH:LENGTH``):

* **lines** (default, ``text:PATH``): one sequence per non-empty line (the line break is not part
  of it; whitespace-only lines are skipped); L is the longest line, and a line longer than
  ``max_length`` (128) tokens is refused, since one long line would make every row that long;
* **chunks** (``text:PATH:64``, ``sequence_length=64``): the whole file, line breaks included,
  cut into consecutive chunks of 64 tokens (characters; bytes for the byte tokenizer, where a
  chunk may split a multi-byte character); the last chunk may be shorter. L = 64.

A seeded random ``test_fraction`` (10%) of the sequences is held out as the test split; the rest,
in file order, is the training split.

The embedded corpus ``"pydoc"`` (:func:`load_pydoc`) is 2,000 English sentences from the
documentation shipped with CPython 3.12.1 (``pydoc_data/topics.py`` and the standard library's
module docstrings; PSF License, see ``memjax/corpora/NOTICE``): 1,800 training and 200 test
sentences of 20 to 64 characters, L = 64, V = 73; it works offline.

>>> import memjax
>>> data = memjax.load("pydoc")
>>> data.task, data.num_train, data.num_test, data.feature_shape, data.num_classes
('language_model', 1800, 200, (64,), 73)
>>> data.texts("train")[0]
'The name is rebound if it was already bound.'
>>> data.x_train[0, :4].tolist(), data.y_train[0, :3].tolist()
([0, 40, 54, 51], [40, 54, 51])
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from memjax.errors import MemjaxError

BOS = 0
IGNORE = -1
TOKENIZERS = ("char", "byte")
DEFAULT_MAX_LENGTH = 128
PYDOC = "pydoc"
PYDOC_FILE = "pydoc_sentences.txt"


class CharTokenizer:
  """One token per character. ``vocabulary`` [V]: "" (BOS, id 0) then the characters."""

  name = "char"

  def __init__(self, vocabulary: Sequence[str]):
    self.vocabulary = tuple(vocabulary)
    self._ids = {c: i for i, c in enumerate(self.vocabulary) if i}

  @classmethod
  def from_characters(cls, characters) -> CharTokenizer:
    """The vocabulary BOS plus the sorted set of ``characters``."""
    return cls(("",) + tuple(sorted(set(characters) - {""})))

  @property
  def size(self) -> int:
    return len(self.vocabulary)

  def encode(self, text: str) -> np.ndarray:
    """``text`` -> int32 [len(text)] token ids (no BOS)."""
    try:
      return np.fromiter((self._ids[c] for c in text), np.int32, len(text))
    except KeyError as e:
      raise MemjaxError(
          f"The character {e.args[0]!r} is not in this dataset's vocabulary of {self.size - 1} "
          "characters; encode only text of the dataset's alphabet, or use tokenizer='byte'."
      ) from None

  def decode(self, tokens) -> str:
    """int tokens [n] -> text; BOS/padding (0) and negative ids (unscored targets) skipped."""
    return "".join(self.vocabulary[t] for t in _real_tokens(tokens, self.size))


class ByteTokenizer:
  """One token per UTF-8 byte: token 1 + b for byte b; V = 257."""

  name = "byte"
  vocabulary = ("",) + tuple(chr(b) if 32 <= b < 127 else f"<0x{b:02X}>" for b in range(256))
  size = 257

  def encode(self, text: str | bytes) -> np.ndarray:
    """``text`` (str: encoded as UTF-8; bytes as they are) -> int32 [bytes] token ids."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    return np.frombuffer(raw, np.uint8).astype(np.int32) + 1

  def decode(self, tokens) -> str:
    """int tokens [n] -> text (invalid UTF-8 shown as U+FFFD); 0 and negative ids skipped."""
    return bytes(int(t) - 1 for t in _real_tokens(tokens, self.size)).decode("utf-8", "replace")


def _real_tokens(tokens, size: int) -> list[int]:
  tokens = np.asarray(tokens).reshape(-1)
  if tokens.size and not np.issubdtype(tokens.dtype, np.integer):
    raise MemjaxError(f"Tokens must be integers, got dtype {tokens.dtype}.")
  if tokens.size and tokens.max() >= size:
    raise MemjaxError(f"Token id {int(tokens.max())} is outside the vocabulary of {size} "
                      "tokens; decode tokens of this dataset.")
  return [int(t) for t in tokens if t > 0]


def tokenizer_of(dataset) -> CharTokenizer | ByteTokenizer:
  """The tokenizer of a text :class:`memjax.Dataset` (its vocabulary is ``class_names``)."""
  if dataset.tokenizer == "byte":
    return ByteTokenizer()
  if dataset.tokenizer == "char":
    return CharTokenizer(dataset.class_names)
  raise MemjaxError(f"Dataset {dataset.name!r} is not a text dataset (task "
                    f"{dataset.task!r}); tokens apply to language-model datasets only.")


def layout(sequences: Sequence[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
  """The model's inputs and targets of token sequences (see the module docstring).

  Args:
    sequences: N int arrays of 1 ... ``length`` token ids each (no BOS).
    length: L.

  Returns:
    (x, y): int32 [N, L] each; x = BOS-shifted inputs padded with 0, y = targets padded with -1.
  """
  x = np.full((len(sequences), length), BOS, np.int32)
  y = np.full((len(sequences), length), IGNORE, np.int32)
  for i, s in enumerate(sequences):
    n = len(s)
    if not 1 <= n <= length:
      raise MemjaxError(f"Sequence {i} has {n} tokens; each must have 1 to {length}.")
    y[i, :n] = s
    x[i, 1:n] = s[:-1]
  return x, y


def from_texts(train: Sequence[str | bytes], test: Sequence[str | bytes], *,
               name: str = "texts", tokenizer: str = "char", sequence_length: int | None = None,
               max_length: int = DEFAULT_MAX_LENGTH, segmentation: str = "sequences",
               where: Sequence[str] | None = None):
  """A language-model :class:`memjax.Dataset` of given training and test sequences.

  Args:
    train, test: the sequences (str; bytes for the byte tokenizer), one row each, none empty.
    tokenizer: "char" (vocabulary: BOS plus the sorted characters of both splits) or "byte".
    sequence_length: L; default the longest sequence. No sequence may be longer.
    max_length: without ``sequence_length``, the longest sequence allowed (tokens).
    segmentation: how the sequences were cut from their source, for ``preprocessing``.
    where: one description per sequence of ``train + test`` ("line 12 of a.txt") for errors.

  Returns:
    The dataset: x_train, y_train [N, L] int32, x_test, y_test [N_test, L] int32, V =
    ``num_classes`` tokens named by ``class_names``, task "language_model".
  """
  from memjax.data import Dataset

  if tokenizer not in TOKENIZERS:
    raise MemjaxError(f"Unknown tokenizer {tokenizer!r}; choose one of "
                      f"{', '.join(TOKENIZERS)}.")
  for split, sequences in (("train", train), ("test", test)):
    if len(sequences) == 0:
      raise MemjaxError(f"The {split} split has no sequences; give each split at least one.")
  sequences = list(train) + list(test)
  where = list(where) if where is not None else [
      f"{'training' if i < len(train) else 'test'} sequence "
      f"{i if i < len(train) else i - len(train)}" for i in range(len(sequences))]
  if tokenizer == "char":
    if any(isinstance(s, bytes) for s in sequences):
      raise MemjaxError("The char tokenizer takes str sequences; decode bytes first, or use "
                        "tokenizer='byte'.")
    tok = CharTokenizer.from_characters("".join(sequences))
  else:
    tok = ByteTokenizer()
  tokens = [tok.encode(s) for s in sequences]
  cap = max_length if sequence_length is None else sequence_length
  _check_length(cap, "sequence_length" if sequence_length is not None else "max_length")
  for t, w in zip(tokens, where):
    if len(t) == 0:
      raise MemjaxError(f"The {w} is empty; drop empty sequences.")
    if len(t) > cap:
      unit = "characters" if tokenizer == "char" else "bytes"
      limit = "sequence_length" if sequence_length is not None else "max_length"
      raise MemjaxError(
          f"The {w} has {len(t)} {unit}, more than {limit}={cap}. Cut long text into "
          "fixed-length chunks (spec 'text:PATH:64', "
          "load_text(path, sequence_length=64)), or raise max_length.")
  length = sequence_length or max(len(t) for t in tokens)
  x, y = layout(tokens, length)
  n = len(train)
  return Dataset(name=name, x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:],
                 num_classes=tok.size, class_names=tok.vocabulary, raw_train=None,
                 standardized=False, task="language_model", tokenizer=tok.name,
                 segmentation=segmentation)


def load_text(path: str, sequence_length: int | None = None, tokenizer: str = "char",
              test_fraction: float = 0.1, seed: int = 0, segmentation: str | None = None,
              max_length: int = DEFAULT_MAX_LENGTH, standardize: Any = None):
  """A language-model dataset of a UTF-8 text file (see the module docstring).

  Args:
    path: the file.
    sequence_length: with chunks, the chunk length K (= L); with lines, L (lines up to L).
    tokenizer: "char" or "byte".
    test_fraction: the fraction of the sequences held out as the test split (0 < f < 1),
      chosen at random with ``seed``; at least one sequence in each split.
    seed: seed of the test split.
    segmentation: "lines" (default without ``sequence_length``) or "chunks" (default with it).
    max_length: with lines and no ``sequence_length``, the longest line allowed (tokens).
    standardize: ignored (accepted so that ``memjax.load(spec, standardize=...)`` works for
      every spec; tokens are not standardised).

  Returns:
    The dataset, named after the file: x/y [N, L] int32 (``memjax.Dataset``, task
    "language_model").
  """
  del standardize
  if segmentation is None:
    segmentation = "lines" if sequence_length is None else "chunks"
  if segmentation not in ("lines", "chunks"):
    raise MemjaxError(f"Unknown segmentation {segmentation!r}; use 'lines' (one sequence per "
                      "line) or 'chunks' (fixed-length chunks, with sequence_length).")
  if segmentation == "chunks" and sequence_length is None:
    raise MemjaxError("segmentation='chunks' needs the chunk length: sequence_length=64 (spec "
                      "'text:PATH:64').")
  if sequence_length is not None:
    _check_length(sequence_length, "sequence_length")
  if tokenizer not in TOKENIZERS:
    raise MemjaxError(f"Unknown tokenizer {tokenizer!r}; choose one of "
                      f"{', '.join(TOKENIZERS)}.")
  path = os.path.expanduser(os.fspath(path))
  if not os.path.isfile(path):
    raise MemjaxError(f"Text file {path!r} does not exist. Check the path, or use 'pydoc' "
                      "for the embedded text corpus.")
  with open(path, "rb") as f:
    content: str | bytes = f.read()
  if tokenizer == "char":
    try:
      content = content.decode("utf-8")
    except UnicodeDecodeError as e:
      raise MemjaxError(f"{path!r} is not UTF-8 text ({e}); convert it to UTF-8, or read its "
                        "bytes with tokenizer='byte'.") from None
  name = os.path.splitext(os.path.basename(path))[0]
  if segmentation == "lines":
    newline = "\n" if isinstance(content, str) else b"\n"
    numbered = [(line.rstrip("\r" if isinstance(line, str) else b"\r"), i + 1)
                for i, line in enumerate(content.split(newline))]
    numbered = [(line, i) for line, i in numbered if line.strip()]
    pieces = [line for line, _ in numbered]
    where = [f"line {i} of {path!r}" for _, i in numbered]
    described = "lines"
  else:
    pieces = [content[i:i + sequence_length] for i in range(0, len(content), sequence_length)]
    where = [f"chunk {i} of {path!r}" for i in range(len(pieces))]
    described = f"chunks of {sequence_length}"
  if not pieces:
    raise MemjaxError(f"{path!r} holds no text (it is empty or only whitespace); give a file "
                      "with one sequence per line.")
  train, test = split_indices(len(pieces), test_fraction, seed, what=repr(path))
  return from_texts([pieces[i] for i in train], [pieces[i] for i in test], name=name,
                    tokenizer=tokenizer, sequence_length=sequence_length,
                    max_length=max_length, segmentation=described,
                    where=[where[i] for i in np.concatenate([train, test])])


def load_pydoc(tokenizer: str = "char", test_fraction: float = 0.1, seed: int = 0,
               standardize: Any = None):
  """The embedded corpus (spec ``"pydoc"``): 2,000 sentences of CPython 3.12.1's documentation.

  One sequence per sentence (20 to 64 ASCII characters), a seeded random 10% held out: 1,800
  training and 200 test sentences, L = 64, V = 73 with the char tokenizer. Source and licence:
  ``pydoc_data/topics.py`` and the standard library's module docstrings, PSF License Agreement
  (``memjax/corpora/NOTICE``, ``memjax/corpora/README.md``); made by
  ``memjax/corpora/make_pydoc_sentences.py``. Offline: the file ships inside the package.
  """
  del standardize
  path = resources.files("memjax.corpora").joinpath(PYDOC_FILE)
  with resources.as_file(path) as file:
    data = load_text(file, tokenizer=tokenizer, test_fraction=test_fraction, seed=seed)
  return dataclasses.replace(data, name=PYDOC)


def split_indices(count: int, test_fraction: float, seed: int,
                  what: str = "the data") -> tuple[np.ndarray, np.ndarray]:
  """A seeded random split of ``count`` sequences: (train [N] int64, test [N_test] int64),
  each in increasing order; N_test = round(test_fraction * count), clipped to 1 ... count - 1."""
  if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not (
      0 < test_fraction < 1):
    raise MemjaxError(f"test_fraction={test_fraction!r}; it must lie strictly between 0 and 1 "
                      "(e.g. 0.1).")
  if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
    raise MemjaxError(f"seed={seed!r}; the split seed must be an integer >= 0.")
  if count < 2:
    raise MemjaxError(f"{what} holds {count} sequence; a training and a test split need at "
                      "least 2 (add lines, or use shorter chunks).")
  n_test = min(max(round(test_fraction * count), 1), count - 1)
  rng = np.random.default_rng(int(seed))
  is_test = np.zeros(count, bool)
  is_test[rng.choice(count, n_test, replace=False)] = True
  return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def parse_spec(spec: str) -> tuple[str, int | None]:
  """``"text:PATH"`` -> (PATH, None); ``"text:PATH:64"`` -> (PATH, 64)."""
  rest = spec[len("text:"):]
  path, sep, last = rest.rpartition(":")
  if sep and last.isdigit():
    rest, length = path, int(last)
  else:
    length = None
  if not rest:
    raise MemjaxError(f"Text spec {spec!r} names no file; use 'text:PATH' (one sequence per "
                      "line) or 'text:PATH:64' (chunks of 64 characters).")
  return rest, length


def chunked(sequences: Sequence[str | bytes], length: int) -> list[str | bytes]:
  """Each sequence cut into consecutive pieces of at most ``length`` (str: characters; bytes:
  bytes); empty and whitespace-only sequences dropped."""
  out = []
  for s in sequences:
    if s.strip():
      out.extend(s[i:i + length] for i in range(0, len(s), length))
  return out


def _check_length(value, what: str) -> None:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
    raise MemjaxError(f"{what}={value!r}; it must be an integer >= 1 (tokens per sequence).")
