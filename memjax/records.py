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
| train_loss    | [T, M, N]      | float16 | cross-entropy loss                                   |
| train_lira    | [M, N, A]      | float32 | LiRA statistic log p_y - log sum_{j!=y} p_j, final   |
| test_*        | as train_*     |         | the same on the test split                           |

All are computed in inference mode (BatchNorm running averages), after the epoch's updates.
The LiRA statistic is a logit of p_y, so ``p_y = sigmoid(lira)`` with float32 precision where the
float16 ``prob`` saturates. Bytes per model-example: 5 per evaluation + 4 per query.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from memjax.errors import MemjaxError

FORMAT = "memjax.records/1"

# name -> (axes, dtype, description)
SCHEMA: dict[str, tuple[tuple[str, ...], str, str]] = {
    "keep": (("model", "example"), "bool", "model m trained on example i"),
    "groups": (("model",), "int32", "subset-ratio group of each model"),
    "eval_epochs": (("eval",), "int32", "epoch after which each evaluation ran"),
    "train_labels": (("example",), "int32", "training labels"),
    "test_labels": (("test_example",), "int32", "test labels"),
    "train_correct": (("eval", "model", "example"), "bool", "prediction == label"),
    "train_prob": (("eval", "model", "example"), "float16", "true-class probability"),
    "train_loss": (("eval", "model", "example"), "float16", "cross-entropy loss"),
    "train_lira": (("model", "example", "query"), "float32",
                   "LiRA statistic log p_y - log(sum_{j!=y} p_j) per query augmentation"),
    "test_correct": (("eval", "model", "test_example"), "bool", "prediction == label"),
    "test_prob": (("eval", "model", "test_example"), "float16", "true-class probability"),
    "test_loss": (("eval", "model", "test_example"), "float16", "cross-entropy loss"),
    "test_lira": (("model", "test_example", "query"), "float32",
                  "LiRA statistic per query augmentation"),
}
PER_MODEL_OUTPUTS = ("correct", "prob", "loss")  # evaluated every eval epoch, train and test


@dataclasses.dataclass
class Records:
  """Arrays of a run (see the module docstring); numpy arrays or read-only memory maps."""

  keep: np.ndarray
  groups: np.ndarray
  eval_epochs: np.ndarray
  train_labels: np.ndarray
  test_labels: np.ndarray
  train_correct: np.ndarray
  train_prob: np.ndarray
  train_loss: np.ndarray
  train_lira: np.ndarray
  test_correct: np.ndarray
  test_prob: np.ndarray
  test_loss: np.ndarray
  test_lira: np.ndarray

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
               test_labels, num_queries: int, directory: str | None = None) -> "Records":
    """Zero-filled records for a run; with ``directory``, writable memory maps there."""
    m, n = keep.shape
    sizes = {"eval": len(eval_epochs), "model": m, "example": n,
             "test_example": len(test_labels), "query": num_queries}
    given = {"keep": keep, "groups": groups, "eval_epochs": np.asarray(eval_epochs),
             "train_labels": train_labels, "test_labels": test_labels}
    if directory is not None:
      os.makedirs(directory, exist_ok=True)
      _write_spec(directory, sizes)
    arrays = {}
    for name, (axes, dtype, _) in SCHEMA.items():
      shape = tuple(sizes[a] for a in axes)
      if directory is None:
        arrays[name] = np.zeros(shape, dtype)
      else:
        arrays[name] = np.lib.format.open_memmap(os.path.join(directory, name + ".npy"),
                                                 mode="w+", dtype=dtype, shape=shape)
      if name in given:
        arrays[name][...] = np.asarray(given[name]).astype(dtype)
    return cls(**arrays)

  def save(self, directory: str) -> None:
    """Writes every array as ``NAME.npy`` plus ``spec.json`` into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    for name in SCHEMA:
      np.save(os.path.join(directory, name + ".npy"), np.asarray(getattr(self, name)))
    _write_spec(directory, self._sizes())

  def flush(self) -> None:
    """Flushes memory-mapped arrays to disk (no-op for in-memory records)."""
    for name in SCHEMA:
      array = getattr(self, name)
      if isinstance(array, np.memmap):
        array.flush()

  @classmethod
  def load(cls, directory: str, mmap: bool = True) -> "Records":
    """Opens records saved by :meth:`save` (memory-mapped read-only by default)."""
    spec_path = os.path.join(directory, "spec.json")
    if not os.path.exists(spec_path):
      raise MemjaxError(f"{directory!r} holds no memjax records (no spec.json). Pass the "
                        "records directory of a run, e.g. RUN_DIR/records.")
    with open(spec_path) as f:
      spec = json.load(f)
    if spec.get("format") != FORMAT:
      raise MemjaxError(f"{spec_path} has format {spec.get('format')!r}; this memjax reads "
                        f"{FORMAT!r}.")
    arrays = {}
    for name in SCHEMA:
      path = os.path.join(directory, name + ".npy")
      if not os.path.exists(path):
        raise MemjaxError(f"Records in {directory!r} lack {name}.npy; the run did not finish "
                          "writing. Resume it with `memjax run --resume RUN_DIR`.")
      arrays[name] = np.load(path, mmap_mode="r" if mmap else None)
    return cls(**arrays)

  def _sizes(self) -> dict[str, int]:
    return {"eval": len(self.eval_epochs), "model": self.num_models,
            "example": self.num_examples, "test_example": len(self.test_labels),
            "query": int(self.train_lira.shape[-1])}


def _write_spec(directory: str, sizes: dict[str, int]) -> None:
  spec = {
      "format": FORMAT,
      "sizes": sizes,
      "arrays": {
          name: {"file": name + ".npy", "axes": list(axes),
                 "shape": [sizes[a] for a in axes], "dtype": dtype, "description": description}
          for name, (axes, dtype, description) in SCHEMA.items()
      },
  }
  tmp = os.path.join(directory, "spec.json.tmp")
  with open(tmp, "w") as f:
    json.dump(spec, f, indent=1)
  os.replace(tmp, os.path.join(directory, "spec.json"))
