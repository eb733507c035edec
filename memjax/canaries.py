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

**Text canaries** (language models, :mod:`memjax.text`; Carlini et al. 2019, "The Secret
Sharer"): kind ``"secret"``, the default for text datasets. Canary k is the sequence
``prefix_k + secret_k``: a prefix of its own (``"my code 3 is "``) and ``digits`` random digits
separated by spaces (``"4 8 1 5 9 2"``), one of the ``|R| = 10**digits`` possible secrets.
``count`` canaries are planted at each value of ``repeats`` (``repeats=(1, 4, 16)``: 3 * count
canaries, a third appended once, a third 4 times, a third 16 times), all copies of a canary in
consecutive rows after the N originals. If a canary is longer than L the data is re-padded to
its length; a character missing from a char vocabulary is added (the data is re-encoded). The
record keeps the prefixes, secrets and copies (:func:`tie_copies` puts all copies of a canary
IN or OUT together); :func:`candidate_sequences` builds the sequences the secret is ranked among
(:mod:`memjax.exposure`).

The keep-mask design decides which models train on each canary. The default balanced design with
``keep_ratio=0.5`` puts every example, so every canary, IN for exactly half of the models and OUT
for the other half: the choice for audits, since the bound needs many IN and many OUT
observations of each canary (r = 0.5 maximises the smaller of the two counts).

>>> import memjax
>>> data, idx = with_canaries(memjax.load("digits"), 10, kind="mislabeled", seed=0)
>>> data.num_train, idx.tolist()[:2], data.canaries["kind"]
(1447, [1437, 1438], 'mislabeled')
>>> text, idx = with_canaries(memjax.load("pydoc"), 2, repeats=(1, 4), digits=4)
>>> text.num_train - 1800, text.canaries["copies"][2], text.canaries["repeats"]
(10, [1802, 1803, 1804, 1805], [1, 1, 4, 4])
>>> text.canaries["prefixes"][1] + text.canaries["secrets"][1] == text.texts()[1801]
True
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from memjax.data import Dataset, load
from memjax.errors import MemjaxError

KINDS = ("mislabeled", "noise", "clean_copy")
TEXT_KINDS = ("secret",)
PREFIX = "my code {k} is "
DEFAULT_REPEATS, DEFAULT_DIGITS, DEFAULT_CANDIDATES = (1,), 6, 1000
MAX_DIGITS = 18  # 10**18 secrets still fit in int64


def with_canaries(data: Any, count: int, kind: str | None = None, seed: int = 0,
                  repeats=DEFAULT_REPEATS, digits: int = DEFAULT_DIGITS,
                  candidates: int = DEFAULT_CANDIDATES) -> tuple[Dataset, np.ndarray]:
  """Appends ``count`` canaries of ``kind`` to the training split (see the module docstring).

  Args:
    data: a :class:`memjax.Dataset` or anything :func:`memjax.load` accepts.
    count: K >= 1, the number of canaries (text: at each value of ``repeats``); at most N for
      the copying kinds ("mislabeled", "clean_copy"), which copy K different training examples.
    kind: "mislabeled", "noise" or "clean_copy" for classification data, "secret" for text;
      None (default): "mislabeled" for classification, "secret" for text.
    seed: seed of the random choices (sources, labels, noise; secrets and candidates).
    repeats: text only: the numbers of copies, e.g. (1, 4, 16); ``count`` canaries each.
    digits: text only: digits per secret (1 ... 18); |R| = 10**digits possible secrets.
    candidates: text only: S, how many other secrets each canary is ranked among
      (:func:`candidate_sequences`); at least 10**digits - 1 ranks it among all (exact).

  Returns:
    (dataset, indices): the dataset with N + K training examples (``x_train`` [N + K, ...],
    ``y_train`` [N + K], ``raw_train`` [N + K, ...] with the canaries' display rows), its
    ``canaries`` record set; and indices [K] int64 = N ... N + K - 1, the canaries' positions
    in the training split. Text: N + R rows, R = count * sum(repeats) (every copy), and
    indices [R] = N ... N + R - 1.
  """
  dataset = load(data)
  if dataset.canaries is not None:
    raise MemjaxError(
        f"The dataset already has {dataset.canaries['count']} {dataset.canaries['kind']} "
        "canaries; add all canaries in one with_canaries call (to the dataset without them).")
  if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
    raise MemjaxError(f"count={count!r}; the number of canaries must be an integer >= 1 (e.g. "
                      "--canaries 50).")
  if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
    raise MemjaxError(f"seed={seed!r}; the canary seed must be an integer >= 0.")
  if dataset.is_text:
    if kind is None:
      kind = "secret"
    if kind not in TEXT_KINDS:
      raise MemjaxError(
          f"Canary kind {kind!r} applies to classification data; {dataset.name!r} is a text "
          "dataset, whose canaries are kind='secret' (the default): a prefix and random "
          "digits.")
    return _with_secrets(dataset, int(count), int(seed), repeats, digits, candidates)
  if kind is None:
    kind = "mislabeled"
  if kind in TEXT_KINDS:
    raise MemjaxError(f"Canary kind {kind!r} plants secrets in text datasets; {dataset.name!r} "
                      f"is a classification dataset: choose one of {', '.join(KINDS)}.")
  if kind not in KINDS:
    raise MemjaxError(f"Unknown canary kind {kind!r}; choose one of {', '.join(KINDS)}.")
  text_options = {"repeats": (_as_tuple(repeats), DEFAULT_REPEATS),
                  "digits": (digits, DEFAULT_DIGITS), "candidates": (candidates,
                                                         DEFAULT_CANDIDATES)}
  changed = [k for k, (given, default) in text_options.items() if given != default]
  if changed:
    raise MemjaxError(f"{', '.join(changed)} appl{'ies' if len(changed) == 1 else 'y'} to text "
                      f"canaries only; {dataset.name!r} is a classification dataset (drop "
                      "--canary-repeats/--canary-digits/--canary-candidates).")
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
  if record["kind"] in TEXT_KINDS:
    if not dataset.is_text:
      raise MemjaxError(f"The run's canaries are text secrets ({_describe(record)}) but "
                        f"{dataset.name!r} is not a text dataset; pass the run's data.")
    out, _ = with_canaries(dataset, record["count"], record["kind"], record["seed"],
                           repeats=tuple(record["repeats"][::record["count"]]),
                           digits=record["digits"], candidates=record["candidates"])
  else:
    out, _ = with_canaries(dataset, record["count"], record["kind"], record["seed"])
  if not _same(out.canaries, record):
    raise MemjaxError(
        f"Re-creating the run's canaries ({_describe(record)}) on this data gave other "
        f"training indices or sources ({out.num_train} examples with them, the run's first "
        f"canary at {record['indices'][0]}); the data is not the one the run was trained on. "
        "Pass the original data.")
  return out


def _same(a: dict, b: dict) -> bool:
  keys = ("count", "kind", "seed", "indices", "sources",  # text canaries: also
          "repeats", "copies", "prefixes", "secrets", "digits", "space_size", "candidates",
          "exact")
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


# ------------------------------------------------------------------------------------------------
# Text canaries: secrets (Carlini et al. 2019)


def _as_tuple(values) -> tuple:
  if isinstance(values, numbers.Integral) and not isinstance(values, bool):
    return (int(values),)
  try:
    return tuple(values)
  except TypeError:
    return (values,)


def _with_secrets(dataset: Dataset, count: int, seed: int, repeats, digits: int,
                  candidates: int) -> tuple[Dataset, np.ndarray]:
  """Text canaries: ``count`` secrets per value of ``repeats`` (see the module docstring)."""
  from memjax import text as text_lib

  values = _as_tuple(repeats)
  if not values or any(isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1
                       for r in values):
    raise MemjaxError(f"repeats={repeats!r}; give the numbers of copies as integers >= 1, e.g. "
                      "repeats=(1, 4, 16) (--canary-repeats 1,4,16).")
  if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or not (
      1 <= digits <= MAX_DIGITS):
    raise MemjaxError(f"digits={digits!r}; a secret has 1 to {MAX_DIGITS} digits (e.g. 6: "
                      "10**6 possible secrets; --canary-digits 6).")
  if isinstance(candidates, bool) or not isinstance(candidates, numbers.Integral) or (
      candidates < 1):
    raise MemjaxError(f"candidates={candidates!r}; the number of other secrets each canary is "
                      "ranked among must be an integer >= 1 (e.g. 1000; --canary-candidates).")
  digits = int(digits)
  space_size = 10 ** digits
  candidates = min(int(candidates), space_size - 1)
  per_canary = [int(r) for r in values for _ in range(count)]  # [K]
  total = len(per_canary)
  rng = np.random.default_rng(seed)
  secret_values = rng.choice(space_size, total, replace=total > space_size)
  secrets = [_spaced(int(v), digits) for v in secret_values]
  prefixes = [PREFIX.format(k=k) for k in range(total)]
  n = dataset.num_train
  copies, start = [], n
  for r in per_canary:
    copies.append(list(range(start, start + r)))
    start += r
  indices = np.arange(n, start, dtype=np.int64)
  rows = [p + s for p, s, r in zip(prefixes, secrets, per_canary) for _ in range(r)]

  tok = text_lib.tokenizer_of(dataset)
  arrays = [np.asarray(a) for a in (dataset.x_train, dataset.y_train, dataset.x_test,
                                    dataset.y_test)]
  if dataset.tokenizer == "char":
    # every digit: the candidate secrets use them all, not only the canaries' own
    missing = set("".join(rows)) - set(tok.vocabulary[1:]) | (set("0123456789")
                                                              - set(tok.vocabulary[1:]))
    if missing:  # a larger sorted vocabulary: re-encode the data
      new = text_lib.CharTokenizer.from_characters(set(tok.vocabulary[1:]) | missing)
      mapping = np.array([0] + [new.vocabulary.index(c) for c in tok.vocabulary[1:]], np.int32)
      arrays = [np.where(a >= 0, mapping[np.maximum(a, 0)], a).astype(np.int32) for a in arrays]
      tok = new
  encoded = [tok.encode(r) for r in rows]
  length = max(dataset.sequence_length, max(len(e) for e in encoded))
  fills = (text_lib.BOS, text_lib.IGNORE) * 2  # x, y, x_test, y_test
  arrays = [_padded(a, length, fill) for a, fill in zip(arrays, fills)]
  x_rows, y_rows = text_lib.layout(encoded, length)
  record = {"count": count, "kind": "secret", "seed": seed, "repeats": per_canary,
            "indices": indices.tolist(), "copies": copies, "prefixes": prefixes,
            "secrets": secrets, "digits": digits, "space_size": space_size,
            "candidates": candidates, "exact": bool(space_size - 1 <= candidates)}
  out = dataclasses.replace(
      dataset, x_train=np.concatenate([arrays[0], x_rows]),
      y_train=np.concatenate([arrays[1], y_rows]), x_test=arrays[2], y_test=arrays[3],
      num_classes=tok.size, class_names=tuple(tok.vocabulary), canaries=record)
  return out, indices


def _spaced(value: int, digits: int) -> str:
  """4815 with 6 digits -> "0 0 4 8 1 5"."""
  return " ".join(f"{value:0{digits}d}")


def _padded(a: np.ndarray, length: int, fill: int) -> np.ndarray:
  """[N, L] -> [N, length] with ``fill`` on the right."""
  if a.shape[1] == length:
    return a
  return np.pad(a, ((0, 0), (0, length - a.shape[1])), constant_values=fill).astype(np.int32)


def _text_record(data: Any) -> tuple[Dataset, dict[str, Any]]:
  dataset = load(data)
  record = dataset.canaries
  if record is None or record.get("kind") not in TEXT_KINDS:
    raise MemjaxError(f"Dataset {dataset.name!r} has no text canaries; add them with "
                      "memjax.with_canaries(text_data, count) (--canaries K on text data).")
  return dataset, record


def tie_copies(keep, record: dict[str, Any]) -> np.ndarray:
  """Puts all copies of each canary IN or OUT together: they take their first copy's column.

  Under the balanced design every column, so every first copy, is IN for the same number of
  models; tying leaves each canary that number of IN models (a model's training set grows or
  shrinks by the copies it gains or loses).

  Args:
    keep: [M, N] bool, model m trains on training example i (N includes the canary rows).
    record: a text ``Dataset.canaries`` record (``copies``); image records pass through.

  Returns:
    [M, N] bool, a new array; ``keep`` itself is not changed.
  """
  keep = np.array(keep, dtype=bool, copy=True)
  if keep.ndim != 2:
    raise MemjaxError(f"keep has shape {keep.shape}; expected [models, examples].")
  copies = (record or {}).get("copies") or []
  last = max((c[-1] for c in copies if c), default=-1)
  if last >= keep.shape[1]:
    raise MemjaxError(f"keep has {keep.shape[1]} columns but the canaries' copies reach row "
                      f"{last}; pass the keep mask of the data with the canaries.")
  for rows in copies:
    if len(rows) > 1:
      keep[:, rows[1:]] = keep[:, rows[:1]]
  return keep


def candidate_sequences(data: Any) -> tuple[np.ndarray, np.ndarray]:
  """The sequences each text canary's secret is ranked among (:func:`memjax.exposure.exposure`).

  Row 0 of canary k is the canary itself (``prefix_k + secret_k``); rows 1 ... S hold the same
  prefix with other secrets: with ``record["exact"]`` all 10**digits - 1 others in increasing
  order, else S = ``record["candidates"]`` drawn uniformly without replacement from the other
  secrets (seeded by the record's seed and k). Only the secret is scored: ``y`` is -1 on the
  prefix (and past the end), so a model's mean log-likelihood over the scored tokens of a row is
  the log-likelihood per token of its secret given the prefix.

  Args:
    data: a text dataset with secret canaries (:func:`with_canaries`).

  Returns:
    (x, y): int32 [K, S + 1, L] each, inputs and targets laid out as the dataset's rows (BOS-
    shifted inputs, -1 where not scored); L the dataset's sequence length.
  """
  from memjax import text as text_lib

  dataset, record = _text_record(data)
  tok = text_lib.tokenizer_of(dataset)
  digits, space = record["digits"], record["space_size"]
  others = record["candidates"]
  length = dataset.sequence_length
  digit_tokens = np.array([tok.encode(str(d))[0] for d in range(10)], np.int32)
  space_token = tok.encode(" ")[0]
  powers = 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)  # [digits]
  secret_length = 2 * digits - 1
  count = len(record["secrets"])
  x = np.full((count, others + 1, length), text_lib.BOS, np.int32)
  y = np.full((count, others + 1, length), text_lib.IGNORE, np.int32)
  for k, (prefix, secret) in enumerate(zip(record["prefixes"], record["secrets"])):
    value = int(secret.replace(" ", ""))
    if record["exact"]:
      values = np.delete(np.arange(space, dtype=np.int64), value)
    else:
      rng = np.random.default_rng([record["seed"], 1, k])
      values = rng.choice(space - 1, others, replace=False).astype(np.int64)
      values += values >= value  # skip the secret itself
    values = np.concatenate([[value], values])  # [S + 1]
    prefix_tokens = tok.encode(prefix)
    p = len(prefix_tokens)
    sequences = np.empty((others + 1, p + secret_length), np.int32)
    sequences[:, :p] = prefix_tokens
    sequences[:, p::2] = digit_tokens[(values[:, None] // powers) % 10]
    sequences[:, p + 1::2] = space_token
    n = sequences.shape[1]
    y[k, :, p:n] = sequences[:, p:]
    x[k, :, 1:n] = sequences[:, :-1]
  return x, y
