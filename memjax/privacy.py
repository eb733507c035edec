"""Differential-privacy accounting of DP-SGD runs, with Google's ``dp-accounting`` library.

A DP-SGD run (``TrainConfig(dp_noise_multiplier=sigma)`` or ``dp_target_epsilon=eps``) trains
every model with the Gaussian mechanism on Poisson-subsampled batches: each step, each of the
model's n_in IN examples joins the batch independently with probability q = batch_size / n_in,
its gradient is clipped to L2 norm C, and Gaussian noise of standard deviation sigma*C is added to
the sum (see :func:`memjax.engine.train_step`). Each model is then (epsilon, delta)-DP with
respect to its own training subset (add or remove one example), where epsilon is the privacy
loss of T = epochs * steps_per_epoch self-composed Poisson-subsampled Gaussian mechanisms.

:func:`epsilon` computes it with the privacy-loss-distribution accountant (PLD, tight up to its
discretisation) or the Renyi accountant (RDP, a looser upper bound);
:func:`noise_for_epsilon` calibrates sigma to a target epsilon; :func:`guarantee` builds the ``run.info["privacy"]`` record
of a run.

>>> eps = epsilon(noise_multiplier=1.0, sampling_rate=0.01, steps=1000, delta=1e-5)
>>> round(eps, 1)
1.8
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np

from memjax.errors import MemjaxError

ACCOUNTANTS = ("pld", "rdp")
# Renyi orders of the RDP accountant: from 2 up (orders below 2 often fail to converge for large
# sampling rates and never give the best bound there).
RDP_ORDERS = tuple([2 + x / 10 for x in range(0, 100)] + list(range(12, 64)) + [128, 256, 512])
# Poisson batches run with a static capacity (see :func:`batch_capacity`): a batch larger than it
# drops its surplus examples, which happens at a step with at most this probability.
CAPACITY_TAIL = 1e-10


def _dp_accounting():
  try:
    import dp_accounting
  except ImportError as e:  # a core dependency; only a broken install gets here
    raise MemjaxError("Privacy accounting needs the dp-accounting package: pip install "
                      "dp-accounting.") from e
  return dp_accounting


def _event(noise_multiplier: float, sampling_rate: float, steps: int):
  dp = _dp_accounting()
  step = dp.GaussianDpEvent(noise_multiplier)
  if sampling_rate < 1:
    step = dp.PoissonSampledDpEvent(sampling_rate, step)
  return dp.SelfComposedDpEvent(step, steps)


def _accountant(name: str, search: bool = False):
  """A fresh accountant; ``search``: PLD on a 10x coarser grid (pessimistic, so epsilon comes
  out at most ~1e-5 larger relative, and 10x faster) for calibration searches."""
  dp = _dp_accounting()
  if name == "pld":
    return dp.pld.PLDAccountant(value_discretization_interval=1e-3 if search else 1e-4)
  if name == "rdp":
    return dp.rdp.RdpAccountant(orders=RDP_ORDERS)
  raise MemjaxError(f"accountant={name!r}; choose one of {', '.join(ACCOUNTANTS)}.")


def _check(noise_multiplier: float | None, sampling_rate: float, steps: int, delta: float):
  if noise_multiplier is not None and noise_multiplier < 0:
    raise MemjaxError(f"noise_multiplier={noise_multiplier}; must be >= 0.")
  if not 0 < sampling_rate <= 1:
    raise MemjaxError(f"sampling_rate={sampling_rate}; must lie in (0, 1].")
  if steps < 1:
    raise MemjaxError(f"steps={steps}; DP-SGD takes at least 1 step.")
  if not 0 < delta < 1:
    raise MemjaxError(f"delta={delta}; must lie in (0, 1).")


def epsilon(noise_multiplier: float, sampling_rate: float, steps: int, delta: float,
            accountant: str = "pld") -> float:
  """Epsilon of ``steps`` Poisson-subsampled Gaussian mechanisms at ``delta``.

  Args:
    noise_multiplier: sigma, the noise standard deviation in units of the clip norm.
    sampling_rate: q, the probability that an example joins a step's batch (1: every step sees
      every example, no amplification by subsampling).
    steps: T, the number of noisy gradient steps.
    delta: the delta of (epsilon, delta)-DP.
    accountant: "pld" (privacy-loss distributions, tight) or "rdp" (Renyi DP, an upper bound).

  Returns:
    epsilon (inf for sigma = 0).
  """
  _check(noise_multiplier, sampling_rate, steps, delta)
  if noise_multiplier == 0:
    return math.inf
  acc = _accountant(accountant)
  with _quiet():
    acc.compose(_event(noise_multiplier, sampling_rate, steps))
    return float(acc.get_epsilon(delta))


def noise_for_epsilon(target_epsilon: float, sampling_rate: float, steps: int, delta: float,
                      accountant: str = "pld") -> float:
  """The smallest noise multiplier sigma whose :func:`epsilon` is at most ``target_epsilon``
  (``dp_accounting.calibrate_dp_mechanism``; sigma to an absolute tolerance of 1e-3, the
  search's PLD on a coarser, pessimistic grid, so the final epsilon is at most the target).

  The search runs on the fast RDP accountant first; its sigma is an upper bound (RDP
  over-estimates epsilon), so the PLD search then brackets [sigma_rdp / 2, sigma_rdp] and never
  tries the tiny sigmas whose privacy-loss distributions take gigabytes.
  """
  _check(None, sampling_rate, steps, delta)
  if not target_epsilon > 0:
    raise MemjaxError(f"target epsilon={target_epsilon}; must be > 0.")
  dp = _dp_accounting()

  def calibrate(name, bracket):
    return float(dp.calibrate_dp_mechanism(
        lambda: _accountant(name, search=True), lambda sigma: _event(sigma, sampling_rate, steps),
        target_epsilon, delta, bracket_interval=bracket, tol=1e-3))

  def searched_epsilon(sigma):
    acc = _accountant(accountant, search=True)
    acc.compose(_event(sigma, sampling_rate, steps))
    return acc.get_epsilon(delta)

  with _quiet():
    sigma = calibrate("rdp", dp.LowerEndpointAndGuess(1e-3, 1.0))
    if accountant == "rdp":
      return sigma
    _accountant(accountant)  # validates the name
    if searched_epsilon(sigma / 2) <= target_epsilon:
      return calibrate(accountant, dp.LowerEndpointAndGuess(1e-3, sigma / 2))
    return calibrate(accountant, dp.ExplicitBracketInterval(sigma / 2, sigma))


def default_delta(num_examples: int) -> float:
  """delta = 1 / (10 N) for a training set of N examples: well below 1/N, the level at which
  (epsilon, delta)-DP would allow publishing one whole example outright."""
  return 1.0 / (10.0 * num_examples)


def batch_capacity(batch_size: int, num_examples: int, tail: float = CAPACITY_TAIL) -> int:
  """K, the static size of Poisson batches with expected size ``batch_size``.

  The engine needs static shapes: each step gathers the sampled examples into K slots and
  masks the unused ones. A model with n_in IN examples draws Binomial(n_in, batch_size / n_in)
  of them; for K above the mean that tail is at most the Poisson(batch_size) tail (Anderson and
  Samuels, 1967), so one K from the Poisson tail serves every model and subset size. A batch
  larger than K (probability <= ``tail`` per step and model) keeps its first K examples; runs
  count how often that happened (``dropped_examples`` in run.json).

  Args:
    batch_size: the expected batch size q * n_in.
    num_examples: N, the training set size (K never exceeds it).
    tail: the per-step overflow probability allowed.
  """
  from scipy import stats
  k = int(stats.poisson.isf(tail, batch_size)) + 1
  return int(min(num_examples, max(k, batch_size)))


def sampling_rates(keep: np.ndarray, batch_size: int) -> np.ndarray:
  """[M] q of every model: batch_size / n_in(m), at most 1 (the expected batch is the batch
  size). keep: [M, N] bool."""
  num_in = np.maximum(np.asarray(keep).sum(axis=1), 1)
  return np.minimum(1.0, batch_size / num_in)


def guarantee(config, keep: np.ndarray, steps_per_epoch: int, num_examples: int
              ) -> dict[str, Any] | None:
  """The ``run.info["privacy"]`` record of a run (None without DP-SGD), calibrating sigma when
  the config asks for a target epsilon.

  Args:
    config: the :class:`memjax.TrainConfig`.
    keep: [M, N] bool keep mask (each model's subset is its private dataset).
    steps_per_epoch: S; the run takes T = epochs * S noisy steps.
    num_examples: N, for the default delta.

  Returns:
    {"epsilon", "epsilon_rdp", "delta", "noise_multiplier", "clip_norm", "sampling",
    "sampling_rate", "steps", "accountant", "covered", "note"}: epsilon by PLD (and by RDP for
    comparison) for the model with the largest sampling rate (the smallest subset; all models
    share it in the balanced design). "covered" is False when the run shuffled instead of
    Poisson sampling: the Poisson accounting then does not cover it.
  """
  if not config.private:
    return None
  delta = config.dp_delta if config.dp_delta is not None else default_delta(num_examples)
  q = float(sampling_rates(keep, config.batch_size).max())
  steps = config.epochs * steps_per_epoch
  sigma = config.dp_noise_multiplier
  if sigma is None:
    sigma = noise_for_epsilon(config.dp_target_epsilon, q, steps, delta)
  sampling = config.batch_sampling
  covered = sampling == "poisson"
  note = ("Poisson sampling, add/remove-one adjacency, per model with respect to its own subset"
          if covered else
          "the run shuffled its batches, so this Poisson-sampling epsilon does NOT cover it (an "
          "optimistic figure); use sampling='poisson' for a guarantee")
  if not covered:
    warnings.warn("DP-SGD with sampling='shuffle': the privacy accounting assumes Poisson "
                  "sampling and does not cover shuffled batches; the reported epsilon is not a "
                  "guarantee. Use sampling='poisson' (the default under DP).", RuntimeWarning,
                  stacklevel=3)
  return {
      "epsilon": epsilon(sigma, q, steps, delta, "pld"),
      "epsilon_rdp": epsilon(sigma, q, steps, delta, "rdp"),
      "delta": delta, "noise_multiplier": sigma, "clip_norm": config.dp_clip_norm,
      "sampling": sampling, "sampling_rate": q, "steps": steps, "accountant": "pld",
      "target_epsilon": config.dp_target_epsilon, "covered": covered, "note": note,
  }


def describe(privacy: dict[str, Any] | None) -> str:
  """One line for summaries: 'DP-SGD: (epsilon=..., delta=...)-DP per model, sigma=..., ...'."""
  if not privacy:
    return "not private (no DP-SGD)"
  eps = privacy["epsilon"]
  text = (f"DP-SGD: ({'inf' if math.isinf(eps) else f'{eps:.3g}'}, {privacy['delta']:.2g})-DP "
          f"per model (PLD; RDP {privacy['epsilon_rdp']:.3g}), "
          f"sigma={privacy['noise_multiplier']:.4g}, C={privacy['clip_norm']:g}, "
          f"q={privacy['sampling_rate']:.4g}, {privacy['steps']} steps, "
          f"{privacy['sampling']} sampling")
  if not privacy.get("covered", True):
    text += " (NOT covered by the Poisson accounting)"
  return text


class _quiet:
  """Silences absl's per-order convergence warnings of the RDP accountant."""

  def __enter__(self):
    self.logger = logging.getLogger("absl")
    self.level = self.logger.level
    self.logger.setLevel(logging.ERROR)

  def __exit__(self, *exc):
    self.logger.setLevel(self.level)
