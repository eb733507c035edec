"""How many models? The ensemble size that gives a chosen interval width at the threshold.

An example's memorization is a difference of two accuracies, over its IN and its OUT models, so
its confidence interval narrows like ``1 / sqrt(M)`` with the number of models M. What matters is
the width where a decision is made: at the memorization threshold (0.25), where an example is
called memorized or not. :func:`plan` reads a pilot run and answers: how many models give a 95%
interval of half-width ``half_width`` for an example whose memorization is at the threshold?

The figure is computed, not simulated: for a candidate M with keep ratio r, an example at the
threshold with held-out accuracy p_out (the pilot's median over the examples near the threshold)
has about ``n_in = r M`` IN models of accuracy ``p_in = p_out + threshold`` and ``n_out = (1 - r)
M`` OUT models; its interval (:func:`memjax.estimators.difference_ci`, the interval
:func:`memjax.memorization_ci` uses) at the expected counts ``round(p n)`` has a half-width that
shrinks with M, and the smallest M that reaches the target is returned. Grow a run to it with
``memjax run --resume DIR --models M`` (only the new models train).

>>> models_needed(0.1, p_out=0.5, keep_ratio=0.5)
360
"""

from __future__ import annotations

import dataclasses

import numpy as np

from memjax import estimators
from memjax.errors import MemjaxError

NEAR = 0.1  # examples within this of the threshold inform p_out


def interval_half_width(models: int, p_out: float,
                        threshold: float = estimators.DEFAULT_THRESHOLD,
                        keep_ratio: float = 0.5, level: float = 0.95) -> float:
  """Half-width of the memorization interval of an example at ``threshold`` with ``models``.

  Args:
    models: M, the ensemble size.
    p_out: the example's accuracy over OUT models (its IN accuracy is ``p_out + threshold``).
    threshold: the memorization at which the width is wanted.
    keep_ratio: r, the fraction of models that train on the example.
    level: confidence level.

  Returns:
    (high - low) / 2 of :func:`memjax.estimators.difference_ci` at the expected counts.
  """
  n_in = max(1, int(round(keep_ratio * models)))
  n_out = max(1, models - n_in)
  p_in = min(1.0, p_out + threshold)
  low, high = estimators.difference_ci(round(p_in * n_in), n_in, round(p_out * n_out), n_out,
                                       level)
  return float(high - low) / 2


def models_needed(target: float, p_out: float, threshold: float = estimators.DEFAULT_THRESHOLD,
                  keep_ratio: float = 0.5, level: float = 0.95,
                  max_models: int = 1 << 20) -> int:
  """The smallest M whose :func:`interval_half_width` is at most ``target`` (and stays so up to 2 M).

  Args:
    target: the wanted half-width, in (0, 1).
    p_out, threshold, keep_ratio, level: as in :func:`interval_half_width`.
    max_models: give up above this (an error says so).
  """
  if not 0 < target < 1:
    raise MemjaxError(f"half_width={target}; a half-width of a memorization interval lies in "
                      "(0, 1), e.g. 0.05.")
  if not 0 <= p_out <= 1 - threshold:
    raise MemjaxError(f"p_out={p_out}: an example at memorization {threshold} has an OUT "
                      f"accuracy in [0, {1 - threshold}].")
  if not 0 < keep_ratio < 1:
    raise MemjaxError(f"keep_ratio={keep_ratio}; a subset ratio lies in (0, 1).")
  width = lambda m: interval_half_width(m, p_out, threshold, keep_ratio, level)
  high = 4
  while width(high) > target:
    high *= 2
    if high > max_models:
      raise MemjaxError(f"More than {max_models} models would be needed for a half-width of "
                        f"{target}; ask for a wider interval.")
  low = high // 2
  while high - low > 1:  # the width shrinks with M up to rounding: bisect on it
    mid = (low + high) // 2
    low, high = (low, mid) if width(mid) <= target else (mid, high)
  return high


@dataclasses.dataclass
class Plan:
  """What a pilot run says about the ensemble size.

  Attributes:
    models: M, the models that give the target half-width at the threshold.
    pilot_models: the pilot's number of models.
    half_width: the target.
    pilot_half_width: the median half-width of the pilot's examples near the threshold.
    predicted_pilot_half_width: :func:`interval_half_width` at the pilot's size (checks the
      prediction against the pilot's own intervals).
    p_out: the median OUT accuracy of the pilot's examples near the threshold.
    keep_ratio: the pilot's mean fraction of models per example.
    examples: how many examples lay near the threshold (within :data:`NEAR`).
    threshold, level: as asked.
  """

  models: int
  pilot_models: int
  half_width: float
  pilot_half_width: float
  predicted_pilot_half_width: float
  p_out: float
  keep_ratio: float
  examples: int
  threshold: float
  level: float

  def text(self, directory: str | None = None) -> str:
    """A few lines for the command line."""
    lines = [
        f"pilot: {self.pilot_models} models, keep ratio {self.keep_ratio:.2f}; {self.examples} "
        f"examples within {NEAR} of the threshold {self.threshold}, median OUT accuracy "
        f"{self.p_out:.3f}, median {self.level:.0%} interval half-width "
        f"{self.pilot_half_width:.3f} (predicted {self.predicted_pilot_half_width:.3f})",
        f"{self.models} models give a half-width of {self.half_width} at the threshold"]
    if directory is not None and self.models > self.pilot_models:
      lines.append(f"grow the run: memjax run --resume {directory} --models {self.models}")
    return "\n".join(lines)


def plan(run, half_width: float = 0.05, level: float = 0.95,
         threshold: float = estimators.DEFAULT_THRESHOLD) -> Plan:
  """How many models give intervals of half-width ``half_width`` at the threshold.

  Args:
    run: a pilot :class:`memjax.Run` (or its directory).
    half_width: the wanted half-width of the memorization interval at ``threshold``.
    level: confidence level.
    threshold: the memorization threshold.

  Returns:
    :class:`Plan`.
  """
  from memjax import runner
  if isinstance(run, (str, bytes)) or hasattr(run, "__fspath__"):
    run = runner.Run.load(run)
  correct, keep = np.asarray(run.correct), np.asarray(run.keep)
  mem = estimators.memorization(correct, keep)
  near = np.isfinite(mem) & (np.abs(mem - threshold) <= NEAR)
  if not near.any():
    raise MemjaxError(f"No example of the pilot lies within {NEAR} of the threshold "
                      f"{threshold}; train a larger pilot (more models or epochs).")
  p_out = estimators.cscore(correct, keep)  # [N] accuracy over OUT models
  low, high = estimators.memorization_ci(correct, keep, level)
  keep_ratio = float(keep.mean())
  p = float(np.clip(np.median(p_out[near]), 0, 1 - threshold))
  models = models_needed(half_width, p, threshold, keep_ratio, level)
  return Plan(models=models, pilot_models=keep.shape[0], half_width=half_width,
              pilot_half_width=float(np.median((high - low)[near]) / 2),
              predicted_pilot_half_width=interval_half_width(keep.shape[0], p, threshold,
                                                             keep_ratio, level),
              p_out=p, keep_ratio=keep_ratio, examples=int(near.sum()), threshold=threshold,
              level=level)
