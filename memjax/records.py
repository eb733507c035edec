"""What training produced, per model and example, in memory and on disk.

On disk a records directory holds one ``.npy`` file per array (memory-mappable, readable with
``numpy.load`` alone, no memjax needed) and ``spec.json`` naming every array's shape, dtype, axes
and meaning. Axes: ``eval`` (T evaluations, the last after the final epoch), ``model`` (M),
``example`` (N training examples), ``test_example`` (N_test), ``query`` (A augmented queries).

| array         | shape          | dtype   | meaning                                              |
|---------------|----------------|---------|------------------------------------------------------|
| keep          | [M, N]         | bool    | model m trained on example i (the design)            |
| groups        | [M]            | int32   | index of model m's subset ratio (multi-ratio design) |
| eval_epochs   | [T]            | int32   | epoch after which evaluation t ran                   |
| train_labels  | [N]            | int32   | labels of the training examples                      |
| test_labels   | [N_test]       | int32   | labels of the test examples                          |
| train_correct | [T, M, N]      | bool    | argmax prediction == label                           |
| train_prob    | [T, M, N]      | float16 | softmax probability of the true class                |
| train_loss    | [T, M, N]      | float16 | the training loss per example (cross-entropy)        |
| train_NAME    | [T, M, N]      | float32 | each user measure ``measures={"NAME": fn}``          |
| train_lira    | [M, N, A]      | float32 | LiRA statistic log p_y - log sum_{j!=y} p_j, final   |
| test_*        | as train_*     |         | the same on the test split                           |

All are computed in inference mode (BatchNorm running averages), after the epoch's updates.
The LiRA statistic is a logit of p_y, so ``p_y = sigmoid(lira)`` with float32 precision where the
float16 ``prob`` saturates. Bytes per model-example: 5 per evaluation (+ 4 per user measure) + 4
per query. ``spec.json`` lists the user measures; :func:`schema` gives the whole layout.
"""

from __future__ import annotations

import json
import os

import numpy as np

from memjax.errors import MemjaxError

FORMAT = "memjax.records/1"

# name -> (axes, dtype, description): the arrays every run has besides the evaluation outputs.
FIXED: dict[str, tuple[tuple[str, ...], str, str]] = {
    "keep": (("model", "example"), "bool", "model m trained on example i"),
    "groups": (("model",), "int32", "subset-ratio group of each model"),
    "eval_epochs": (("eval",), "int32", "epoch after which each evaluation ran"),
    "train_labels": (("example",), "int32", "training labels"),
    "test_labels": (("test_example",), "int32", "test labels"),
}
# Evaluated after every evaluation epoch on both splits: name -> (dtype, description).
EVAL_OUTPUTS: dict[str, tuple[str, str]] = {
    "correct": ("bool", "prediction == label"),
    "prob": ("float16", "true-class probability"),
    "loss": ("float16", "the training loss of the example (cross-entropy by default)"),
}
MEASURE_DTYPE = "float32"  # user measures, e.g. measures={"margin": fn}
# After the final epoch only, on A query augmentations.
LIRA = ("float32", "LiRA statistic log p_y - log(sum_{j!=y} p_j) per query augmentation")
PER_MODEL_OUTPUTS = tuple(EVAL_OUTPUTS)  # kept for code that iterates the built-in outputs


def eval_dtypes(measures: tuple[str, ...] = ()) -> dict[str, str]:
  """{output name: dtype} of one evaluation: the built-in outputs, then the user measures."""
  return {**{k: dtype for k, (dtype, _) in EVAL_OUTPUTS.items()},
          **{m: MEASURE_DTYPE for m in measures}}


def schema(measures: tuple[str, ...] = ()) -> dict[str, tuple[tuple[str, ...], str, str]]:
  """Every array of a run's records: name -> (axes, dtype, description).

  The single source of the records' layout: allocation, saving, loading, growing a run and the
  engine's evaluation outputs all derive from it, so a measure is added in one place.
  """
  arrays = dict(FIXED)
  for split, example in (("train", "example"), ("test", "test_example")):
    for name, dtype in eval_dtypes(measures).items():
      description = (EVAL_OUTPUTS[name][1] if name in EVAL_OUTPUTS
                     else f"user measure {name!r}")
      arrays[f"{split}_{name}"] = (("eval", "model", example), dtype, description)
    arrays[f"{split}_lira"] = (("model", example, "query"), *LIRA)
  return arrays


SCHEMA = schema()  # the layout of a run without user measures


class Records:
  """Arrays of a run (see the module docstring); numpy arrays or memory maps.

  Every array of :func:`schema` is an attribute: ``records.train_correct``, ``records.keep``,
  and for a measure ``"margin"`` ``records.train_margin`` / ``records.test_margin``.

  Args:
    arrays: name -> array, exactly the names of ``schema(measures)``.
    measures: names of the user measures, in order.
  """

  def __init__(self, arrays: dict[str, np.ndarray], measures: tuple[str, ...] = ()):
    expected = schema(tuple(measures))
    missing = sorted(set(expected) - set(arrays))
    if missing:
      raise MemjaxError(f"Records lack the array(s) {missing}.")
    self.__dict__["arrays"] = {name: arrays[name] for name in expected}
    self.__dict__["measures"] = tuple(measures)

  def __getattr__(self, name: str) -> np.ndarray:
    try:
      return self.__dict__["arrays"][name]
    except KeyError:
      raise AttributeError(f"Records have no array {name!r}; they have "
                           f"{', '.join(self.__dict__['arrays'])}.") from None

  def __setattr__(self, name, value):
    raise AttributeError("Records arrays are fixed; write into them (records.NAME[...] = ...).")

  def __repr__(self) -> str:
    return (f"Records({self.num_models} models x {self.num_examples} examples, "
            f"{len(self.eval_epochs)} evaluations, measures={list(self.measures)})")

  # Final-epoch views: what the estimators take.
  @property
  def correct(self) -> np.ndarray:
    """[M, N] bool, correctness on the training examples after the last epoch."""
    return np.asarray(self.train_correct[-1])

  @property
  def test_correct_final(self) -> np.ndarray:
    """[M, N_test] bool, correctness on the test examples after the last epoch."""
    return np.asarray(self.test_correct[-1])

  @property
  def num_models(self) -> int:
    return int(self.keep.shape[0])

  @property
  def num_examples(self) -> int:
    return int(self.keep.shape[1])

  @property
  def num_queries(self) -> int:
    return int(self.train_lira.shape[-1])

  def measure(self, name: str, split: str = "train") -> np.ndarray:
    """[T, M, N(_test)] values of a recorded output (``"loss"``) or user measure."""
    key = f"{split}_{name}"
    if key not in self.arrays or name == "lira":
      raise MemjaxError(f"No measure {name!r} on the {split} split; this run recorded "
                        f"{', '.join(eval_dtypes(self.measures))}.")
    return self.arrays[key]

  def train_accuracy(self) -> np.ndarray:
    """[T, M] accuracy of each model on its own training subset (IN examples)."""
    keep = np.asarray(self.keep)
    return (np.asarray(self.train_correct) & keep).sum(-1) / keep.sum(-1)

  def heldout_accuracy(self) -> np.ndarray:
    """[T, M] accuracy of each model on the training examples it did not train on (OUT)."""
    out = ~np.asarray(self.keep)
    return (np.asarray(self.train_correct) & out).sum(-1) / np.maximum(out.sum(-1), 1)

  def test_accuracy(self) -> np.ndarray:
    """[T, M] accuracy of each model on the test split."""
    return np.asarray(self.test_correct).mean(-1)

  @classmethod
  def allocate(cls, *, keep: np.ndarray, groups: np.ndarray, eval_epochs, train_labels,
               test_labels, num_queries: int, measures: tuple[str, ...] = (),
               directory: str | None = None) -> "Records":
    """Zero-filled records for a run; with ``directory``, writable memory maps there."""
    m, n = keep.shape
    sizes = {"eval": len(eval_epochs), "model": m, "example": n,
             "test_example": len(test_labels), "query": num_queries}
    given = {"keep": keep, "groups": groups, "eval_epochs": np.asarray(eval_epochs),
             "train_labels": train_labels, "test_labels": test_labels}
    if directory is not None:
      os.makedirs(directory, exist_ok=True)
      _write_spec(directory, sizes, tuple(measures))
    arrays = {}
    for name, (axes, dtype, _) in schema(tuple(measures)).items():
      shape = tuple(sizes[a] for a in axes)
      if directory is None:
        arrays[name] = np.zeros(shape, dtype)
      else:
        arrays[name] = np.lib.format.open_memmap(os.path.join(directory, name + ".npy"),
                                                 mode="w+", dtype=dtype, shape=shape)
      if name in given:
        arrays[name][...] = np.asarray(given[name]).astype(dtype)
    return cls(arrays, measures)

  def save(self, directory: str) -> None:
    """Writes every array as ``NAME.npy`` plus ``spec.json`` into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    for name, array in self.arrays.items():
      np.save(os.path.join(directory, name + ".npy"), np.asarray(array))
    _write_spec(directory, self._sizes(), self.measures)

  def flush(self) -> None:
    """Flushes memory-mapped arrays to disk (no-op for in-memory records)."""
    for array in self.arrays.values():
      if isinstance(array, np.memmap):
        array.flush()

  @classmethod
  def load(cls, directory: str, mmap: bool = True, writable: bool = False) -> "Records":
    """Opens records saved by :meth:`save` (memory-mapped read-only by default; ``writable``
    maps them read-write, as a run being resumed does)."""
    spec_path = os.path.join(directory, "spec.json")
    if not os.path.exists(spec_path):
      raise MemjaxError(f"{directory!r} holds no memjax records (no spec.json). Pass the "
                        "records directory of a run, e.g. RUN_DIR/records.")
    with open(spec_path) as f:
      spec = json.load(f)
    if spec.get("format") != FORMAT:
      raise MemjaxError(f"{spec_path} has format {spec.get('format')!r}; this memjax reads "
                        f"{FORMAT!r}.")
    measures = tuple(spec.get("measures", ()))
    mode = "r+" if writable else ("r" if mmap else None)
    arrays = {}
    for name in schema(measures):
      path = os.path.join(directory, name + ".npy")
      if not os.path.exists(path):
        raise MemjaxError(f"Records in {directory!r} lack {name}.npy; the run did not finish "
                          "writing. Resume it with `memjax run --resume RUN_DIR`.")
      arrays[name] = np.load(path, mmap_mode=mode)
    return cls(arrays, measures)

  def _sizes(self) -> dict[str, int]:
    return {"eval": len(self.eval_epochs), "model": self.num_models,
            "example": self.num_examples, "test_example": len(self.test_labels),
            "query": self.num_queries}


def _write_spec(directory: str, sizes: dict[str, int], measures: tuple[str, ...]) -> None:
  spec = {
      "format": FORMAT,
      "sizes": sizes,
      "measures": list(measures),
      "arrays": {
          name: {"file": name + ".npy", "axes": list(axes),
                 "shape": [sizes[a] for a in axes], "dtype": dtype, "description": description}
          for name, (axes, dtype, description) in schema(measures).items()
      },
  }
  tmp = os.path.join(directory, "spec.json.tmp")
  with open(tmp, "w") as f:
    json.dump(spec, f, indent=1)
  os.replace(tmp, os.path.join(directory, "spec.json"))
