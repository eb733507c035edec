"""Keep-mask designs: which training examples each model trains on.

A design is a boolean matrix ``keep`` of shape [M, N]: ``keep[m, i]`` is True when model m
trains on example i (example i is "IN" for model m, otherwise "OUT"). Three designs:

* ``bernoulli``: every entry independently True with probability r (Feldman & Zhang).
* ``balanced``: every example is IN for exactly round(r * M) models (the LiRA design of
  Carlini et al.: every example gets the same number of IN and OUT models).
* multi-ratio (``ratios=(0.1, ..., 0.9)``): models split evenly over several subset ratios, each
  group drawn with the balanced or Bernoulli design; ``groups[m]`` is model m's ratio index (the
  C-score design of Jiang et al.).

Designs are pure functions of ``(kind, M, N, ratios, seed)``. :func:`extend` grows a design by a
new block of models whose rows are drawn independently with seed ``(seed, first_new_index)``,
so growing a 256-model run to 512 keeps the first 256 rows, and a balanced block stays balanced.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from memjax.errors import MemjaxError

KINDS = ("balanced", "bernoulli")  # "custom" designs come from a user's own keep mask


@dataclasses.dataclass(frozen=True)
class Design:
  """A keep mask and how it was made.

  Attributes:
    keep: [M, N] bool, keep[m, i] = model m trains on example i.
    groups: [M] int32, index into ``ratios`` of each model's subset ratio.
    ratios: the subset ratios, one per group.
    kind: "balanced" or "bernoulli".
    seed: the seed the rows were drawn with.
    block_starts: first model index of each block drawn separately (grown designs have several).
  """

  keep: np.ndarray
  groups: np.ndarray
  ratios: tuple[float, ...]
  kind: str
  seed: int
  block_starts: tuple[int, ...] = (0,)

  @property
  def num_models(self) -> int:
    return int(self.keep.shape[0])

  @property
  def num_examples(self) -> int:
    return int(self.keep.shape[1])

  def describe(self) -> dict:
    return {"kind": self.kind, "seed": self.seed, "ratios": list(self.ratios),
            "num_models": self.num_models, "num_examples": self.num_examples,
            "block_starts": list(self.block_starts)}


def bernoulli(num_models: int, num_examples: int, keep_ratio: float,
              seed: int | Sequence[int]) -> np.ndarray:
  """[M, N] bool with every entry independently True with probability ``keep_ratio``.

  >>> bernoulli(4, 6, 0.5, seed=0).shape
  (4, 6)
  """
  _check(num_models, num_examples, (keep_ratio,))
  rng = np.random.default_rng([*np.atleast_1d(seed), 0])
  return rng.random((num_models, num_examples)) < keep_ratio


def balanced(num_models: int, num_examples: int, keep_ratio: float,
             seed: int | Sequence[int]) -> np.ndarray:
  """[M, N] bool where every column has exactly round(keep_ratio * M) True entries.

  As in Carlini et al.'s LiRA code: per example, rank M uniform draws and keep the lowest
  round(r * M). Every model's row then holds about r * N examples.

  >>> keep = balanced(8, 100, 0.5, seed=0)
  >>> bool((keep.sum(axis=0) == 4).all())
  True
  """
  _check(num_models, num_examples, (keep_ratio,))
  rng = np.random.default_rng([*np.atleast_1d(seed), 1])
  num_in = int(round(keep_ratio * num_models))
  ranks = rng.random((num_models, num_examples)).argsort(axis=0).argsort(axis=0)
  return ranks < num_in


def make(kind: str, num_models: int, num_examples: int, ratios: float | Sequence[float],
         seed: int) -> Design:
  """Builds a design; several ``ratios`` split the models evenly into groups (C-score design).

  Args:
    kind: "balanced" or "bernoulli".
    num_models: M.
    num_examples: N.
    ratios: one subset ratio r in (0, 1), or several.
    seed: integer seed.

  Returns:
    A :class:`Design`; with G ratios, models [g*M/G, (g+1)*M/G) use ratio g.
  """
  if kind not in KINDS:
    raise MemjaxError(f"Unknown design {kind!r}; choose one of {', '.join(KINDS)}.")
  ratios = (float(ratios),) if np.isscalar(ratios) else tuple(float(r) for r in ratios)
  _check(num_models, num_examples, ratios)
  keep, groups = _draw(kind, num_models, num_examples, ratios, seed, start=0)
  return Design(keep=keep, groups=groups, ratios=ratios, kind=kind, seed=seed)


def custom(keep, num_examples: int, seed: int = 0) -> Design:
  """Wraps a user's own [M, N] keep mask (e.g. a leave-one-out design) as a Design."""
  keep = np.asarray(keep)
  if keep.dtype != bool:
    raise MemjaxError(f"keep must be a boolean [M, N] mask; got dtype {keep.dtype}. Pass "
                      "keep.astype(bool).")
  if keep.ndim != 2 or keep.shape[1] != num_examples:
    raise MemjaxError(f"keep has shape {keep.shape}; expected [M, N] with N={num_examples} "
                      "training examples.")
  _check(keep.shape[0], num_examples, ())
  empty = np.flatnonzero(~keep.any(axis=1))
  if empty.size:
    raise MemjaxError(f"Row(s) {empty.tolist()[:5]} of keep select no training example; every "
                      "model needs at least one.")
  ratio = float(keep.mean())
  return Design(keep=keep, groups=np.zeros(keep.shape[0], np.int32), ratios=(ratio,),
                kind="custom", seed=seed)


def extend(design: Design, num_models: int) -> Design:
  """Grows ``design`` to ``num_models`` rows; the existing rows are kept unchanged.

  The new rows form one block drawn like a fresh design of ``num_models - M`` models with
  seed ``(seed, M)``: a balanced block is itself balanced, so every example gains exactly
  round(r * (new models)) IN models.
  """
  old = design.num_models
  if design.kind not in KINDS:
    raise MemjaxError(f"A {design.kind!r} design cannot be grown: memjax does not know how its "
                      "rows were drawn. Train the extra models as a new run.")
  if num_models < old:
    raise MemjaxError(f"Cannot shrink a design from {old} to {num_models} models; ask for at "
                      "least as many models as the run already has.")
  if num_models == old:
    return design
  keep, groups = _draw(design.kind, num_models - old, design.num_examples, design.ratios,
                       design.seed, start=old)
  return dataclasses.replace(
      design, keep=np.concatenate([design.keep, keep]),
      groups=np.concatenate([design.groups, groups]),
      block_starts=design.block_starts + (old,))


def _draw(kind, num_models, num_examples, ratios, seed, start):
  draw = balanced if kind == "balanced" else bernoulli
  sizes = np.diff(np.linspace(0, num_models, len(ratios) + 1).round().astype(int))
  keeps, groups = [], []
  for g, (ratio, size) in enumerate(zip(ratios, sizes)):
    if size == 0:
      continue
    # Seeded by (seed, block start, group): blocks are independent and reproducible.
    keeps.append(draw(int(size), num_examples, ratio, seed=(seed, start, g)))
    groups.append(np.full(size, g, np.int32))
  keep = np.concatenate(keeps)
  empty = np.flatnonzero(~keep.any(axis=1))
  if empty.size:
    raise MemjaxError(f"Model(s) {(empty + start).tolist()[:5]} got no training example (N="
                      f"{num_examples} is too small for the keep ratio); raise the keep ratio "
                      "or use more examples.")
  return keep, np.concatenate(groups)


def _check(num_models: int, num_examples: int, ratios: Sequence[float]) -> None:
  if int(num_models) < 1:
    raise MemjaxError(f"num_models={num_models}; train at least one model (memorization needs "
                      "models with and without each example, so in practice dozens).")
  if int(num_examples) < 1:
    raise MemjaxError(f"num_examples={num_examples}; the training split is empty.")
  for r in ratios:
    if not 0.0 < r < 1.0:
      raise MemjaxError(f"keep ratio {r} is outside (0, 1); each model trains on a fraction r "
                        "of the training set, e.g. 0.5.")
