"""Datasets: the embedded defaults, `.npz` files, text files, TFDS, and arrays; validated.

Every loader returns a :class:`Dataset`: for classification float32 features in memory and int32
labels; for language models (``task="language_model"``, :mod:`memjax.text`) int32 token inputs
and next-token targets; and the metadata the engine needs.

**Preprocessing is part of the training algorithm**, so memorization scores depend on it. By
default features are *standardised* with statistics of the training split (mean 0, std 1 per
channel for images, per feature for vectors), so models train with one set of defaults. With
``standardize=False`` (``memjax run --no-standardize``) they are only scaled to [0, 1] (uint8 /
255; the digits' 0..16 / 16, what scikit-learn users usually train on). On the digits the two
give clearly different memorized sets. The choice is recorded in run.json (``data.standardized``)
and printed in the summary.

Spec strings accepted by :func:`load` (and ``memjax run --data``):

* ``digits``: scikit-learn's 8x8 handwritten digits (ships inside the scikit-learn wheel, so it
  works offline), split once into 1,437 training and 360 test images, stratified, fixed seed.
* ``npz:PATH`` or any path ending in ``.npz``: a file holding ``x_train, y_train, x_test, y_test``.
* ``tfds:NAME``, ``tfds:NAME:TRAIN_SPLIT`` or ``tfds:NAME:TRAIN_SPLIT,TEST_SPLIT``: a prepared
  TFDS image-classification dataset read with ``tfds.data_source`` (array_record; TensorFlow is not
  imported). Split specs use TFDS slicing, e.g. ``tfds:cifar10:train[:10000],test[:2000]``. A TFDS
  dataset with a text feature and no image (``tfds:lm1b``, ``tfds:tiny_shakespeare``) becomes a
  character-level language-model dataset: one sequence per record, records longer than
  ``max_length`` (128) characters cut into chunks of that length.

Text (language models, :mod:`memjax.text`; tokens are not standardised):

* ``pydoc``: the embedded text corpus, 2,000 English sentences of the documentation shipped with
  CPython 3.12.1 (PSF License; ``memjax/corpora/NOTICE``), 1,800 for training and 200 for testing,
  one sequence per sentence, L = 64 characters; offline.
* ``text:PATH``: a UTF-8 text file, one sequence per non-empty line (L = the longest line; lines
  over 128 characters are refused). ``text:PATH:64``: the whole file cut into chunks of 64
  characters. A seeded random 10% of the sequences is the test split. Loader options pass
  through: ``memjax.load("text:a.txt", tokenizer="byte", test_fraction=0.2)``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from memjax.errors import MemjaxError

DEFAULT_DATASET = "digits"


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A classification or language-model dataset held in memory.

  Attributes:
    name: a short name, used in run directories and reports.
    x_train: [N, *feature_shape] float32, standardised. Language models: [N, L] int32 inputs
      [BOS, c_1, ..., c_{n-1}, 0 ...] (:mod:`memjax.text`).
    y_train: [N] int32 in [0, num_classes). Language models: [N, L] int32 next-token targets
      [c_1, ..., c_n, -1 ...] (-1: not scored).
    x_test: [N_test, *feature_shape] float32, standardised with the training statistics
      (language models: [N_test, L] int32).
    y_test: [N_test] int32 (language models: [N_test, L] int32).
    num_classes: number of classes C (language models: the vocabulary size V, BOS included).
    class_names: C names, or None (language models: the V token strings, "" for BOS).
    raw_train: [N, *feature_shape] the training features before standardisation, for showing
      images in reports (uint8 or float).
    spec: the :func:`load` spec it came from (``"digits"``, ``"npz:PATH"``, ...), recorded in a
      saved run so that :meth:`memjax.Run.load` can reload the data; None for arrays.
    standardized: whether the features were standardised (see the module docstring).
    canaries: None, or the record of the canaries :func:`memjax.canaries.with_canaries` appended
      to the training split (``count``, ``kind``, ``seed``, their training ``indices`` and the
      ``sources`` they copy; text canaries: their copies, prefixes and secrets); saved in
      run.json so that a loaded run re-creates them.
    task: "classification" (default) or "language_model".
    tokenizer: None for classification; "char" or "byte" for language models.
    segmentation: None for classification; how text was cut into sequences ("lines",
      "chunks of 64", "records", ...), for :attr:`preprocessing`.
  """

  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  class_names: tuple[str, ...] | None = None
  raw_train: np.ndarray | None = None
  spec: str | None = None
  standardized: bool = True
  canaries: dict[str, Any] | None = None
  task: str = "classification"
  tokenizer: str | None = None
  segmentation: str | None = None

  @property
  def feature_shape(self) -> tuple[int, ...]:
    return tuple(self.x_train.shape[1:])

  @property
  def is_image(self) -> bool:
    """True for [H, W, C] features (CNNs and image augmentations apply)."""
    return self.x_train.ndim == 4

  @property
  def is_text(self) -> bool:
    """True for language-model datasets (token sequences, :mod:`memjax.text`)."""
    return self.task == "language_model"

  @property
  def sequence_length(self) -> int | None:
    """L for language-model datasets, else None."""
    return int(self.x_train.shape[1]) if self.is_text else None

  def decode(self, tokens) -> str:
    """Token ids [n] -> text (language models); BOS/padding (0) and negative ids are skipped,
    so ``decode(y_train[i])`` is training sequence i."""
    from memjax import text
    return text.tokenizer_of(self).decode(tokens)

  def texts(self, split: str = "train") -> list[str]:
    """The decoded sequences of ``split`` ("train" or "test"), one per row."""
    if split not in ("train", "test"):
      raise MemjaxError(f"Unknown split {split!r}; use 'train' or 'test'.")
    from memjax import text
    tok = text.tokenizer_of(self)
    return [tok.decode(row) for row in (self.y_train if split == "train" else self.y_test)]

  @property
  def num_train(self) -> int:
    return int(self.x_train.shape[0])

  @property
  def num_test(self) -> int:
    return int(self.x_test.shape[0])

  def describe(self) -> dict[str, Any]:
    """A JSON-friendly description (no arrays); ``canaries`` only when there are some."""
    description = {
        "name": self.name,
        "num_train": self.num_train,
        "num_test": self.num_test,
        "feature_shape": list(self.feature_shape),
        "num_classes": self.num_classes,
        "class_names": list(self.class_names) if self.class_names else None,
        "standardized": self.standardized,
        "preprocessing": self.preprocessing,
    }
    if self.is_text:  # classification datasets describe themselves as before
      description.update(task=self.task, tokenizer=self.tokenizer,
                         sequence_length=self.sequence_length, segmentation=self.segmentation)
    if self.canaries is not None:
      description["canaries"] = dict(self.canaries)
    return description

  @property
  def preprocessing(self) -> str:
    """One line saying what was done to the features."""
    if self.is_text:
      return (f"{self.tokenizer}-level tokens (V = {self.num_classes} with BOS), "
              f"{self.segmentation or 'sequences'}, L = {self.sequence_length}; inputs "
              "BOS-shifted, next-token targets (-1 past the end)")
    return ("standardised (training-split mean 0, std 1 per channel/feature)"
            if self.standardized else
            "not standardised (uint8 images and the digits scaled to [0, 1], other features as "
            "given)")


def load(spec: Any = DEFAULT_DATASET, **kwargs) -> Dataset:
  """Loads a dataset from a spec string (see the module docstring) or passes a Dataset through.

  Args:
    spec: ``"digits"``, ``"npz:PATH"``, ``"PATH.npz"``, ``"tfds:NAME[:SPLITS]"``, ``"pydoc"``,
      ``"text:PATH[:LENGTH]"``, a :class:`Dataset`, or a tuple ``(x_train, y_train, x_test,
      y_test)`` of arrays.
    **kwargs: passed to the loader (e.g. ``data_dir=`` for TFDS, ``standardize=False`` to keep
      features in [0, 1] instead of standardising them; ``tokenizer="byte"``,
      ``test_fraction=``, ``seed=`` for text, see :func:`memjax.text.load_text`). Options other
      than ``standardize`` leave ``spec`` None (the spec alone would not reproduce the data).

  Returns:
    A validated :class:`Dataset`.

  >>> data = load("digits")
  >>> data.x_train.shape, data.num_classes
  ((1437, 8, 8, 1), 10)
  """
  if isinstance(spec, Dataset):
    return spec
  if isinstance(spec, (tuple, list)) and len(spec) == 4:
    return from_arrays(*spec, **kwargs)
  if not isinstance(spec, (str, os.PathLike)):
    raise MemjaxError(
        f"Cannot load a dataset from {type(spec).__name__}. Pass a spec string such as 'digits', "
        "'npz:data.npz', 'tfds:cifar10', 'pydoc' or 'text:PATH', a memjax.Dataset, or a tuple "
        "(x_train, y_train, x_test, y_test) of arrays.")
  spec = os.fspath(spec)
  dataset = _load_spec(spec, **kwargs)
  # With loader options other than standardize (recorded in the Dataset) the spec alone would
  # not reproduce the data.
  return dataset if set(kwargs) - {"standardize"} else dataclasses.replace(dataset, spec=spec)


def spec_slug(spec: str) -> str:
  """A file-name-safe short name for a dataset spec or name: ``"npz:/a/b.npz"`` -> ``"b"``,
  ``"tfds:cifar10"`` -> ``"cifar10"``, ``"digits+artificial"`` -> ``"digits-artificial"``."""
  spec = str(spec)
  if spec.startswith("text:"):  # text:PATH[:LENGTH] -> the file's name (and the length)
    from memjax import text
    path, length = text.parse_spec(spec)
    spec = os.path.splitext(os.path.basename(path))[0] + ("" if length is None else f"-{length}")
  base = os.path.basename(spec.rstrip("/")).replace(".npz", "").replace("tfds:", "")
  return "".join(c if c.isalnum() or c in "-_" else "-" for c in base)


def _load_spec(spec: str, **kwargs) -> Dataset:
  if spec == "digits":
    return load_digits(**kwargs)
  if spec == "pydoc":
    from memjax import text
    return text.load_pydoc(**kwargs)
  if spec.startswith("text:"):
    from memjax import text
    path, length = text.parse_spec(spec)
    if length is not None:
      if kwargs.get("sequence_length", length) != length:
        raise MemjaxError(f"The spec {spec!r} says chunks of {length} but sequence_length="
                          f"{kwargs['sequence_length']}; give the length once.")
      kwargs["sequence_length"] = length
    return text.load_text(path, **kwargs)
  if spec.startswith("npz:"):
    return load_npz(spec[len("npz:"):], **kwargs)
  if spec.endswith(".npz"):
    return load_npz(spec, **kwargs)
  if spec.startswith("tfds:"):
    name, _, splits = spec[len("tfds:"):].partition(":")
    train_split, _, test_split = splits.partition(",")
    return load_tfds(name, train_split=train_split or "train",
                     test_split=test_split or "test", **kwargs)
  raise MemjaxError(
      f"Unknown dataset spec {spec!r}. Use 'digits' (embedded, offline), 'npz:PATH' or a path "
      "ending in .npz, 'tfds:NAME[:TRAIN_SPLIT[,TEST_SPLIT]]', 'pydoc' (embedded text, offline) "
      "or 'text:PATH[:LENGTH]' (a text file for language models).")


def load_digits(standardize: bool = True, test_size: int = 360) -> Dataset:
  """scikit-learn's 8x8 digits as [N, 8, 8, 1] images, fixed stratified split (offline).

  Pixel values are 0..16: standardised by default, else divided by 16 (to [0, 1]).

  Returns:
    Dataset with 1,437 training and 360 test examples, 10 classes.
  """
  from sklearn import datasets as sk_datasets
  from sklearn import model_selection

  digits = sk_datasets.load_digits()
  images = digits.images.astype(np.float32)[..., None]  # [1797, 8, 8, 1], values 0..16
  x_train, x_test, y_train, y_test = model_selection.train_test_split(
      images, digits.target, test_size=test_size, stratify=digits.target, random_state=0)
  if not standardize:  # the [0, 1] features scikit-learn users train on
    x_train, x_test = x_train / 16.0, x_test / 16.0
  return from_arrays(x_train, y_train, x_test, y_test, name="digits", num_classes=10,
                     class_names=[str(c) for c in range(10)], standardize=standardize,
                     raw_scale=16.0 if standardize else 1.0)


def load_npz(path: str, standardize: bool = True) -> Dataset:
  """Loads ``x_train, y_train, x_test, y_test`` (and optional ``class_names``) from a .npz file."""
  path = os.path.expanduser(path)
  if not os.path.exists(path):
    raise MemjaxError(f"Dataset file {path!r} does not exist. Check the path, or use "
                      "'digits' for the embedded default dataset.")
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = {k: f[k] for k in f.files}
  except (ValueError, OSError) as e:
    raise MemjaxError(f"Could not read {path!r} as a .npz file ({e}). Save it with "
                      "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...).") from e
  required = ("x_train", "y_train", "x_test", "y_test")
  missing = [k for k in required if k not in arrays]
  if missing:
    raise MemjaxError(
        f"{path!r} is missing the array(s) {', '.join(missing)} (it has: "
        f"{', '.join(sorted(arrays)) or 'nothing'}). Save it with np.savez(path, x_train=..., "
        "y_train=..., x_test=..., y_test=...).")
  class_names = arrays.get("class_names")
  name = os.path.splitext(os.path.basename(path))[0]
  return from_arrays(*(arrays[k] for k in required), name=name,
                     class_names=None if class_names is None else [str(c) for c in class_names],
                     standardize=standardize)


def load_tfds(name: str, train_split: str = "train", test_split: str = "test",
              data_dir: str | None = None, standardize: bool = True, *,
              tokenizer: str | None = None, max_length: int | None = None,
              text_key: str | None = None) -> Dataset:
  """Reads a prepared TFDS image-classification or text dataset with ``tfds.data_source``.

  Nothing is downloaded: the dataset must already be prepared in ``data_dir`` (default: the TFDS
  default, ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). TensorFlow is not imported.

  A dataset whose features hold a ``tfds.features.Text`` and no image (``lm1b``,
  ``tiny_shakespeare``, ``imdb_reviews``: labels are ignored) becomes a language-model dataset
  (:mod:`memjax.text`): one sequence per record (its string, UTF-8), records longer than
  ``max_length`` tokens cut into consecutive chunks of ``max_length``, empty records skipped.

  Args:
    name: TFDS name, e.g. ``"cifar10"`` (a version may follow: ``"cifar10:3.0.2"`` is not a
      split; write ``"cifar10/3.0.2"`` as TFDS does).
    train_split, test_split: TFDS split specs, slicing allowed (``"train[:5000]"``).
    data_dir: where the prepared dataset lives.
    standardize: image datasets only (text is not standardised).
    tokenizer, max_length, text_key: text datasets only: "char" (default) or "byte"; the chunk
      length (default 128); which Text feature to read (default "text", or the only one).
  """
  import tensorflow_datasets as tfds

  if not name:
    raise MemjaxError("Empty TFDS name. Use e.g. 'tfds:cifar10' or 'tfds:mnist:train[:5000]'.")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # DatasetNotFoundError and friends
    raise MemjaxError(f"TFDS does not know the dataset {name!r} ({e}). Check the name against "
                      "`tfds.list_builders()`.") from e
  features = builder.info.features
  text_keys = _text_keys(features)
  if text_keys is not None:
    return _load_tfds_text(tfds, builder, name, text_keys, train_split, test_split, data_dir,
                           tokenizer=tokenizer or "char", max_length=max_length,
                           text_key=text_key)
  if tokenizer is not None or max_length is not None or text_key is not None:
    raise MemjaxError(f"TFDS dataset {name!r} is not a text dataset (it has an image or no Text "
                      "feature); tokenizer, max_length and text_key apply to text datasets only.")
  image_key, label_key = _supervised_keys(builder.info)
  num_classes = features[label_key].num_classes
  class_names = getattr(features[label_key], "names", None)

  def read(split: str) -> tuple[np.ndarray, np.ndarray]:
    records = _read_tfds_split(tfds, builder, name, split, data_dir)
    xs = np.stack([np.asarray(r[image_key]) for r in records])
    ys = np.asarray([r[label_key] for r in records])
    return xs, ys

  x_train, y_train = read(train_split)
  x_test, y_test = read(test_split)
  return from_arrays(x_train, y_train, x_test, y_test, name=name.replace("/", "-"),
                     num_classes=num_classes, class_names=class_names, standardize=standardize)


def _read_tfds_split(tfds, builder, name: str, split: str, data_dir: str | None) -> list:
  """All records (dicts) of one split, read with ``tfds.data_source`` (never downloads)."""
  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:
    if not builder.is_prepared():
      raise MemjaxError(
          f"TFDS dataset {name!r} is not downloaded/prepared in {builder.data_dir!r}, and "
          "memjax never downloads at run time. On a machine with internet run `python -c "
          f"\"import tensorflow_datasets as tfds; tfds.builder('{name}').download_and_prepare("
          "file_format='array_record')\"`, copy the data directory here, and pass data_dir= "
          "(or set TFDS_DATA_DIR).") from e
    raise MemjaxError(f"Could not open split {split!r} of TFDS dataset {name!r} ({e}). "
                      "Check the split name and slicing, e.g. 'train[:10%]'.") from e
  if len(source) == 0:
    raise MemjaxError(f"Split {split!r} of TFDS dataset {name!r} is empty. Widen the slice.")
  try:  # batched reads where the source supports them (array_record does)
    return list(source.__getitems__(list(range(len(source)))))
  except TypeError:  # e.g. tfds.testing.mock_data sources
    return [source[i] for i in range(len(source))]


def _text_keys(features) -> list[str] | None:
  """The top-level Text features' keys of a TFDS dataset without images, else None."""
  import tensorflow_datasets as tfds
  items = list(features.items()) if hasattr(features, "items") else []
  if any(isinstance(f, tfds.features.Image) for _, f in items):
    return None
  keys = [k for k, f in items if isinstance(f, tfds.features.Text)]
  return keys or None


def _load_tfds_text(tfds, builder, name: str, text_keys: list[str], train_split: str,
                    test_split: str, data_dir: str | None, *, tokenizer: str,
                    max_length: int | None, text_key: str | None) -> Dataset:
  """A TFDS text dataset as a language-model Dataset (see :func:`load_tfds`)."""
  from memjax import text
  if text_key is None:
    if "text" in text_keys or len(text_keys) == 1:
      text_key = "text" if "text" in text_keys else text_keys[0]
    else:
      raise MemjaxError(f"TFDS dataset {name!r} has several text features ({', '.join(text_keys)})"
                        f"; choose one: memjax.load('tfds:{name}', text_key={text_keys[0]!r}).")
  elif text_key not in text_keys:
    raise MemjaxError(f"TFDS dataset {name!r} has no text feature {text_key!r}; it has "
                      f"{', '.join(text_keys)}.")
  length = text.DEFAULT_MAX_LENGTH if max_length is None else max_length
  text._check_length(length, "max_length")

  def read(split: str) -> list:
    sequences = []
    for record in _read_tfds_split(tfds, builder, name, split, data_dir):
      value = record[text_key]
      value = value.item() if isinstance(value, np.ndarray) else value
      value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
      sequences.append(value if tokenizer == "char" else value.encode("utf-8"))
    pieces = text.chunked(sequences, length)
    if not pieces:
      raise MemjaxError(f"Split {split!r} of TFDS dataset {name!r} holds no text in "
                        f"{text_key!r}. Choose another split or text_key.")
    return pieces

  train, test = read(train_split), read(test_split)
  return text.from_texts(train, test, name=name.replace("/", "-"), tokenizer=tokenizer,
                         max_length=length, segmentation=f"records (chunks of {length} beyond)")


def _supervised_keys(info) -> tuple[str, str]:
  if info.supervised_keys and len(info.supervised_keys) == 2:
    image_key, label_key = info.supervised_keys
    if isinstance(image_key, str) and isinstance(label_key, str):
      return image_key, label_key
  keys = info.features.keys()
  if "image" in keys and "label" in keys:
    return "image", "label"
  raise MemjaxError(f"TFDS dataset {info.name!r} has no (image, label) supervised keys; memjax "
                    "reads image-classification datasets only.")


def from_arrays(x_train, y_train, x_test, y_test, *, name: str = "arrays",
                num_classes: int | None = None, class_names=None, standardize: bool = True,
                raw_scale: float | None = None) -> Dataset:
  """Builds a validated :class:`Dataset` from numpy (or jax) arrays.

  Args:
    x_train: [N, D] vectors or [N, H, W] / [N, H, W, C] images; uint8 images are scaled to [0, 1].
    y_train: [N] integer labels in [0, num_classes).
    x_test: [N_test, ...] with the same feature shape. y_test: [N_test].
    num_classes: defaults to max label + 1 over both splits.
    standardize: subtract the training mean and divide by the training std (per channel for
      images, per feature for vectors; constant features are left at 0).
    raw_scale: divide the kept raw copy by this for display (images are shown in [0, 1]).
  """
  x_train, x_test = np.asarray(x_train), np.asarray(x_test)
  y_train = _validate_labels(np.asarray(y_train), "y_train")
  y_test = _validate_labels(np.asarray(y_test), "y_test")
  for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
    if x.shape[0] == 0:
      raise MemjaxError(f"The {split} split is empty (x_{split} has shape {x.shape}). Provide "
                        "at least one example in each split.")
    if x.shape[0] != y.shape[0]:
      raise MemjaxError(f"x_{split} has {x.shape[0]} examples but y_{split} has {y.shape[0]} "
                        "labels. They must have the same length.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
      raise MemjaxError(f"x_{split} has dtype {x.dtype}; features must be numeric.")
    if x.ndim < 2:
      raise MemjaxError(f"x_{split} has shape {x.shape}; expected [N, features...]. Reshape "
                        "1-D features to [N, 1].")
  if x_train.shape[1:] != x_test.shape[1:]:
    raise MemjaxError(f"Train features have shape {x_train.shape[1:]} but test features "
                      f"{x_test.shape[1:]}; both splits must share one feature shape.")
  if x_train.ndim == 3:  # [N, H, W] grey images: add a channel axis.
    x_train, x_test = x_train[..., None], x_test[..., None]
  if x_train.ndim > 4:
    raise MemjaxError(f"Features of shape {x_train.shape[1:]} are not supported; use [D] "
                      "vectors or [H, W(, C)] images.")
  is_uint8 = x_train.dtype == np.uint8
  raw_train = x_train
  x_train = x_train.astype(np.float32) / (255.0 if is_uint8 else 1.0)
  x_test = x_test.astype(np.float32) / (255.0 if is_uint8 else 1.0)
  for x, split in ((x_train, "train"), (x_test, "test")):
    bad = ~np.isfinite(x)
    if bad.any():
      first = np.argwhere(bad.reshape(x.shape[0], -1).any(axis=1))[0, 0]
      raise MemjaxError(f"x_{split} contains {int(bad.sum())} NaN/inf value(s) (first in example "
                        f"{first}). Remove or impute them before training.")
  inferred = int(max(y_train.max(), y_test.max())) + 1
  if num_classes is None:
    num_classes = inferred
  elif inferred > num_classes:
    raise MemjaxError(f"Labels go up to {inferred - 1} but num_classes={num_classes}. Labels "
                      "must lie in [0, num_classes).")
  if num_classes < 2:
    raise MemjaxError(f"Only {num_classes} class found; classification needs at least 2.")
  if class_names is not None and len(class_names) != num_classes:
    raise MemjaxError(f"{len(class_names)} class names for {num_classes} classes.")
  if standardize:
    axes = tuple(range(x_train.ndim - 1)) if x_train.ndim == 4 else (0,)
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True)
    std = np.where(std > 1e-8, std, 1.0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
  if raw_scale is not None:
    raw_train = raw_train / raw_scale
  return Dataset(name=name, x_train=np.ascontiguousarray(x_train, np.float32),
                 y_train=y_train, x_test=np.ascontiguousarray(x_test, np.float32),
                 y_test=y_test, num_classes=int(num_classes),
                 class_names=tuple(class_names) if class_names is not None else None,
                 raw_train=raw_train, standardized=bool(standardize))


def _validate_labels(y: np.ndarray, what: str) -> np.ndarray:
  if y.ndim != 1:
    raise MemjaxError(f"{what} has shape {y.shape}; labels must be a 1-D array of class "
                      "indices (convert one-hot labels with y.argmax(-1)).")
  if y.size and not np.issubdtype(y.dtype, np.integer):
    if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
      y = y.astype(np.int64)
    else:
      raise MemjaxError(f"{what} has dtype {y.dtype} with non-integer values; labels must be "
                        "integer class indices 0..C-1 (map string labels with np.unique(y, "
                        "return_inverse=True)).")
  if y.size and y.min() < 0:
    raise MemjaxError(f"{what} contains the negative label {int(y.min())}; labels must be class "
                      "indices 0..C-1.")
  return y.astype(np.int32)
