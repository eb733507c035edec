"""Canaries: examples planted in the training split to audit privacy (``memjax run --canaries K``).

An empirical privacy audit (Jagielski et al. 2020, "Auditing differentially private machine
learning: how private is private SGD?"; Nasr et al. 2021, "Adversary instantiation") plants
examples, *canaries*, trains models with and without each of them, and asks how well a
membership-inference attack tells the two apart: a DP guarantee (epsilon, delta) caps that, so a
good attack gives a lower bound on epsilon (:func:`memjax.auditing.audit_epsilon`). Canaries are
made easy to tell apart, so the bound is as high as the training algorithm allows:

* ``"mislabeled"``: copies of random training examples with a random wrong label (the model
  must memorize them to fit them);
* ``"noise"``: Gaussian noise inputs with random labels, drawn with each channel's (vector data:
  each feature's) training mean and standard deviation, so in standardised feature space they are
  N(0, 1) like the features around them but lie off the data's manifold;
* ``"clean_copy"``: exact copies of random training examples with their true labels (the
  weakest: a duplicate changes little; a baseline).

:func:`with_canaries` appends them after the N original examples (training indices N ... N + K
- 1), leaves the features' standardisation as it was (statistics of the original examples) and
the test split unchanged, and records them in the returned Dataset (``Dataset.canaries``, saved
in run.json under ``data.canaries``), so that :meth:`memjax.Run.load` and ``memjax attack DIR``
re-create the same data (:func:`memjax.runner.load_recorded_data`). Everything is a function of
the dataset and ``seed``.

The keep-mask design decides which models train on each canary. The default balanced design with
``keep_ratio=0.5`` puts every example, so every canary, IN for exactly half of the models and OUT
for the other half: the choice for audits, since the bound needs many IN and many OUT
observations of each canary (r = 0.5 maximises the smaller of the two counts).

>>> import memjax
>>> data, idx = with_canaries(memjax.load("digits"), 10, kind="mislabeled", seed=0)
>>> data.num_train, idx.tolist()[:2], data.canaries["kind"]
(1447, [1437, 1438], 'mislabeled')
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from memjax.data import Dataset, load
from memjax.errors import MemjaxError

KINDS = ("mislabeled", "noise", "clean_copy")


def with_canaries(data: Any, count: int, kind: str = "mislabeled",
                  seed: int = 0) -> tuple[Dataset, np.ndarray]:
  """Appends ``count`` canaries of ``kind`` to the training split (see the module docstring).

  Args:
    data: a :class:`memjax.Dataset` or anything :func:`memjax.load` accepts.
    count: K >= 1, the number of canaries; at most N for the copying kinds ("mislabeled",
      "clean_copy"), which copy K different training examples.
    kind: "mislabeled", "noise" or "clean_copy".
    seed: seed of the random choices (sources, labels, noise).

  Returns:
    (dataset, indices): the dataset with N + K training examples (``x_train`` [N + K, ...],
    ``y_train`` [N + K], ``raw_train`` [N + K, ...] with the canaries' display rows), its
    ``canaries`` record set; and indices [K] int64 = N ... N + K - 1, the canaries' positions
    in the training split.
  """
  dataset = load(data)
  if dataset.canaries is not None:
    raise MemjaxError(
        f"The dataset already has {dataset.canaries['count']} {dataset.canaries['kind']} "
        "canaries; add all canaries in one with_canaries call (to the dataset without them).")
  if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
    raise MemjaxError(f"count={count!r}; the number of canaries must be an integer >= 1 (e.g. "
                      "--canaries 50).")
  if kind not in KINDS:
    raise MemjaxError(f"Unknown canary kind {kind!r}; choose one of {', '.join(KINDS)}.")
  if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
    raise MemjaxError(f"seed={seed!r}; the canary seed must be an integer >= 0.")
  count, seed = int(count), int(seed)
  n, classes = dataset.num_train, dataset.num_classes
  rng = np.random.default_rng(seed)
  raw = None if dataset.raw_train is None else np.asarray(dataset.raw_train)
  sources = None
  if kind == "noise":
    z = rng.standard_normal((count, *dataset.feature_shape))
    x = _rescaled(z, dataset.x_train).astype(np.float32)
    y = rng.integers(0, classes, count)
    raw_rows = None if raw is None else _as_dtype(_rescaled(z, raw), raw)
  else:
    if count > n:
      raise MemjaxError(f"count={count} {kind} canaries would copy more examples than the {n} "
                        f"of the training split; use at most {n}, or kind='noise'.")
    sources = np.sort(rng.choice(n, size=count, replace=False))
    x = dataset.x_train[sources]
    y = np.asarray(dataset.y_train)[sources]
    if kind == "mislabeled":
      y = (y + rng.integers(1, classes, count)) % classes
    raw_rows = None if raw is None else raw[sources]
  indices = np.arange(n, n + count, dtype=np.int64)
  record = {"count": count, "kind": kind, "seed": seed, "indices": indices.tolist(),
            "sources": None if sources is None else sources.tolist()}
  out = dataclasses.replace(
      dataset,
      x_train=np.ascontiguousarray(np.concatenate([dataset.x_train, x]), np.float32),
      y_train=np.concatenate([np.asarray(dataset.y_train), y]).astype(np.int32),
      raw_train=None if raw is None else np.concatenate([raw, raw_rows]),
      canaries=record)
  return out, indices


def apply_record(dataset: Dataset, record: dict[str, Any] | None) -> Dataset:
  """Re-creates the canaries of a saved record (run.json ``data.canaries``) on ``dataset``.

  Args:
    dataset: the data without canaries (or already with exactly these canaries).
    record: a ``Dataset.canaries`` record, or None (returns ``dataset`` unchanged).

  Returns:
    The dataset with the recorded canaries.
  """
  if record is None:
    return dataset
  if dataset.canaries is not None:
    if _same(dataset.canaries, record):
      return dataset
    raise MemjaxError(
        f"The dataset has other canaries ({_describe(dataset.canaries)}) than the run "
        f"({_describe(record)}); pass the data without canaries and memjax adds the run's.")
  out, _ = with_canaries(dataset, record["count"], record["kind"], record["seed"])
  if not _same(out.canaries, record):
    raise MemjaxError(
        f"Re-creating the run's canaries ({_describe(record)}) on this data gave other "
        f"training indices or sources ({out.num_train} examples with them, the run's first "
        f"canary at {record['indices'][0]}); the data is not the one the run was trained on. "
        "Pass the original data.")
  return out


def _same(a: dict, b: dict) -> bool:
  keys = ("count", "kind", "seed", "indices", "sources")
  return all(a.get(k) == b.get(k) for k in keys)


def _describe(record: dict) -> str:
  return f"{record['count']} {record['kind']}, seed {record['seed']}"


def _rescaled(z: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """``z`` [K, *shape] (standard normal) scaled to the mean and std of ``reference`` [N, *shape]
  per channel (images [N, H, W, C]) or per feature (vectors [N, D])."""
  ref = np.asarray(reference, np.float64)
  axes = tuple(range(ref.ndim - 1)) if ref.ndim == 4 else (0,)
  return ref.mean(axis=axes, keepdims=True) + ref.std(axis=axes, keepdims=True) * z


def _as_dtype(values: np.ndarray, like: np.ndarray) -> np.ndarray:
  """``values`` clipped to the range of ``like`` (for display) in its dtype, integers rounded."""
  values = np.clip(values, np.min(like), np.max(like))
  if np.issubdtype(like.dtype, np.integer):
    values = np.round(values)
  return values.astype(like.dtype)
