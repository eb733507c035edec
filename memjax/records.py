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

**Language models** (a text dataset, ``task = "language_model"``): every training example is a
sequence, and the same arrays hold per-sequence values: ``correct`` is *extraction* (greedy
decoding from the sequence's prefix reproduces the rest exactly, :func:`memjax.measures.extracted`),
``prob`` the geometric-mean token probability, ``loss`` the mean token cross-entropy, ``lira``
the mean token LiRA statistic (A = 1), and ``train_labels`` the number of tokens of each
sequence. Two more evaluation arrays are recorded:

| array                | shape     | dtype   | meaning                                          |
|----------------------|-----------|---------|--------------------------------------------------|
| train_token_accuracy | [T, M, N] | float32 | fraction of the sequence's tokens predicted      |
| train_token_loglik   | [T, M, N] | float32 | mean log-likelihood per token (nats)             |

and with text canaries (``memjax run --canaries K``, :mod:`memjax.canaries`), at every
evaluation, axes ``canary`` (K) and ``candidate`` (S + 1, the canary's own secret first):

| array            | shape            | dtype   | meaning                                        |
|------------------|------------------|---------|------------------------------------------------|
| canary_loglik    | [T, M, K, S + 1] | float32 | mean log-likelihood per secret token of each   |
|                  |                  |         | candidate secret after the canary's prefix     |
| canary_extracted | [T, M, K]        | bool    | greedy decoding from the prefix gives the      |
|                  |                  |         | secret                                         |

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
TASKS = ("classification", "language_model")
# Language models: what the built-in outputs mean per sequence, and their two extra outputs.
LM_MEANINGS: dict[str, str] = {
    "correct": "extraction: greedy decoding from the prefix reproduces the rest",
    "prob": "geometric-mean token probability, exp(token_loglik)",
    "loss": "the training loss of the sequence (mean token cross-entropy by default)",
    "train_labels": "tokens per training sequence",
    "test_labels": "tokens per test sequence",
    "lira": "mean over the sequence's tokens of the token LiRA statistic",
}
LM_OUTPUTS: dict[str, tuple[str, str]] = {
    "token_accuracy": ("float32", "fraction of the sequence's tokens predicted (argmax)"),
    "token_loglik": ("float32", "mean log-likelihood per token (nats)"),
}
CANARY_ARRAYS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "canary_loglik": (("eval", "model", "canary", "candidate"), "float32",
                      "mean log-likelihood per secret token of each candidate (column 0: the "
                      "canary's own secret)"),
    "canary_extracted": (("eval", "model", "canary"), "bool",
                         "greedy decoding from the canary's prefix reproduces its secret"),
}


def _check_task(task: str) -> None:
  if task not in TASKS:
    raise MemjaxError(f"Unknown task {task!r}; records hold one of {', '.join(TASKS)}.")


def eval_dtypes(measures: tuple[str, ...] = (), task: str = "classification") -> dict[str, str]:
  """{output name: dtype} of one evaluation: the built-in outputs (with a language model's
  token outputs), then the user measures."""
  _check_task(task)
  builtin = dict(EVAL_OUTPUTS) | (LM_OUTPUTS if task == "language_model" else {})
  return {**{k: dtype for k, (dtype, _) in builtin.items()},
          **{m: MEASURE_DTYPE for m in measures}}


def schema(measures: tuple[str, ...] = (), task: str = "classification",
           canaries: bool = False) -> dict[str, tuple[tuple[str, ...], str, str]]:
  """Every array of a run's records: name -> (axes, dtype, description).

  The single source of the records' layout: allocation, saving, loading, growing a run and the
  engine's evaluation outputs all derive from it, so a measure is added in one place.

  Args:
    measures: the user measures' names.
    task: "classification" or "language_model" (two more outputs, other meanings).
    canaries: a language model's run with text canaries (the ``canary_*`` arrays).
  """
  lm = task == "language_model"
  meanings = LM_MEANINGS if lm else {}
  arrays = {name: (axes, dtype, meanings.get(name, description))
            for name, (axes, dtype, description) in FIXED.items()}
  builtin = dict(EVAL_OUTPUTS) | (LM_OUTPUTS if lm else {})
  for split, example in (("train", "example"), ("test", "test_example")):
    for name, dtype in eval_dtypes(measures, task).items():
      description = (meanings.get(name, builtin[name][1]) if name in builtin
                     else f"user measure {name!r}")
      arrays[f"{split}_{name}"] = (("eval", "model", example), dtype, description)
    dtype, description = LIRA
    arrays[f"{split}_lira"] = (("model", example, "query"), dtype,
                               meanings.get("lira", description))
  if canaries:
    if not lm:
      raise MemjaxError("Canary exposure arrays belong to language models' runs.")
    arrays.update(CANARY_ARRAYS)
  return arrays


def example_labels(y: np.ndarray) -> np.ndarray:
  """[N] what the records keep as ``*_labels``: class labels y [N], or for token targets
  y [N, L] (-1 where not scored) the number of tokens of each sequence."""
  y = np.asarray(y)
  return y if y.ndim == 1 else (y >= 0).sum(axis=1).astype(np.int32)


SCHEMA = schema()  # the layout of a run without user measures


class Records:
  """Arrays of a run (see the module docstring); numpy arrays or memory maps.

  Every array of :func:`schema` is an attribute: ``records.train_correct``, ``records.keep``,
  and for a measure ``"margin"`` ``records.train_margin`` / ``records.test_margin``.

  Args:
    arrays: name -> array, exactly the names of ``schema(measures, task, canaries)``.
    measures: names of the user measures, in order.
    task: "classification" or "language_model".
  """

  def __init__(self, arrays: dict[str, np.ndarray], measures: tuple[str, ...] = (),
               task: str = "classification"):
    expected = schema(tuple(measures), task, canaries="canary_loglik" in arrays)
    missing = sorted(set(expected) - set(arrays))
    if missing:
      raise MemjaxError(f"Records lack the array(s) {missing}.")
    self.__dict__["arrays"] = {name: arrays[name] for name in expected}
    self.__dict__["measures"] = tuple(measures)
    self.__dict__["task"] = task

  def __getattr__(self, name: str) -> np.ndarray:
    try:
      return self.__dict__["arrays"][name]
    except KeyError:
      raise AttributeError(f"Records have no array {name!r}; they have "
                           f"{', '.join(self.__dict__['arrays'])}.") from None

  def __setattr__(self, name, value):
    raise AttributeError("Records arrays are fixed; write into them (records.NAME[...] = ...).")

  def __repr__(self) -> str:
    task = "" if self.task == "classification" else f", {self.task}"
    return (f"Records({self.num_models} models x {self.num_examples} examples, "
            f"{len(self.eval_epochs)} evaluations, measures={list(self.measures)}{task})")

  @property
  def has_canaries(self) -> bool:
    """True when the run recorded text canaries' exposure arrays (``canary_*``)."""
    return "canary_loglik" in self.arrays

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
                        f"{', '.join(eval_dtypes(self.measures, self.task))}.")
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
               directory: str | None = None, task: str = "classification",
               canary_shape: tuple[int, int] | None = None) -> "Records":
    """Zero-filled records for a run; with ``directory``, writable memory maps there.

    ``train_labels`` / ``test_labels``: [N] labels, or token targets [N, L] (their token counts
    are kept, :func:`example_labels`); ``canary_shape``: (K canaries, S + 1 candidates) of a
    language model's run with text canaries.
    """
    m, n = keep.shape
    train_labels, test_labels = example_labels(train_labels), example_labels(test_labels)
    sizes = {"eval": len(eval_epochs), "model": m, "example": n,
             "test_example": len(test_labels), "query": num_queries}
    if canary_shape is not None:
      sizes.update(canary=int(canary_shape[0]), candidate=int(canary_shape[1]))
    given = {"keep": keep, "groups": groups, "eval_epochs": np.asarray(eval_epochs),
             "train_labels": train_labels, "test_labels": test_labels}
    if directory is not None:
      os.makedirs(directory, exist_ok=True)
      _write_spec(directory, sizes, tuple(measures), task)
    arrays = {}
    for name, (axes, dtype, _) in schema(tuple(measures), task,
                                         canary_shape is not None).items():
      shape = tuple(sizes[a] for a in axes)
      if directory is None:
        arrays[name] = np.zeros(shape, dtype)
      else:
        arrays[name] = np.lib.format.open_memmap(os.path.join(directory, name + ".npy"),
                                                 mode="w+", dtype=dtype, shape=shape)
      if name in given:
        arrays[name][...] = np.asarray(given[name]).astype(dtype)
    return cls(arrays, measures, task)

  def save(self, directory: str) -> None:
    """Writes every array as ``NAME.npy`` plus ``spec.json`` into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    for name, array in self.arrays.items():
      np.save(os.path.join(directory, name + ".npy"), np.asarray(array))
    _write_spec(directory, self._sizes(), self.measures, self.task)

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
    task = spec.get("task", "classification")
    mode = "r+" if writable else ("r" if mmap else None)
    arrays = {}
    for name in schema(measures, task, canaries="canary" in spec["sizes"]):
      path = os.path.join(directory, name + ".npy")
      if not os.path.exists(path):
        raise MemjaxError(f"Records in {directory!r} lack {name}.npy; the run did not finish "
                          "writing. Resume it with `memjax run --resume RUN_DIR`.")
      arrays[name] = np.load(path, mmap_mode=mode)
    return cls(arrays, measures, task)

  @property
  def canary_shape(self) -> tuple[int, int] | None:
    """(K canaries, S + 1 candidates) of the canary arrays, or None without them."""
    return tuple(self.canary_loglik.shape[2:]) if self.has_canaries else None

  def _sizes(self) -> dict[str, int]:
    sizes = {"eval": len(self.eval_epochs), "model": self.num_models,
             "example": self.num_examples, "test_example": len(self.test_labels),
             "query": self.num_queries}
    if self.has_canaries:
      sizes.update(canary=self.canary_shape[0], candidate=self.canary_shape[1])
    return sizes


def _write_spec(directory: str, sizes: dict[str, int], measures: tuple[str, ...],
                task: str = "classification") -> None:
  spec = {
      "format": FORMAT,
      "task": task,
      "sizes": sizes,
      "measures": list(measures),
      "arrays": {
          name: {"file": name + ".npy", "axes": list(axes),
                 "shape": [sizes[a] for a in axes], "dtype": dtype, "description": description}
          for name, (axes, dtype, description) in schema(measures, task,
                                                         "canary" in sizes).items()
      },
  }
  tmp = os.path.join(directory, "spec.json.tmp")
  with open(tmp, "w") as f:
    json.dump(spec, f, indent=1)
  os.replace(tmp, os.path.join(directory, "spec.json"))
