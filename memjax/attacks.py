"""Membership inference: LiRA, RMIA and the loss threshold, with leave-one-model-out evaluation.

Every attack score here follows one convention: LARGER = more likely a member.

Notation: M models, N training examples, A augmented queries per example, Z population
(test-split) examples. ``keep[m, i]`` is True when model m trained on example i (i is IN for m,
otherwise OUT). ``stats[m, i, a]`` is the LiRA statistic of model m on query a of example i,
phi = log p_y - log(sum_{j != y} p_j) (:func:`lira_statistic`), the logit of the true-class
probability: p_y = sigmoid(phi) (:func:`prob_from_statistic`) and the cross-entropy loss is
-log p_y = softplus(-phi) (:func:`loss_from_statistic`).

Attacks (formulas in each function's docstring):

* :func:`lira`: the likelihood-ratio attack of Carlini et al. (2022), "Membership inference
  attacks from first principles", online and offline, per-example or fixed variance; exactly the
  semantics of tensorflow_privacy's ``advanced_mia.compute_score_lira`` (negated), and the
  paper's one-sided offline test.
* :func:`rmia`: the relative membership inference attack of Zarifzadeh et al. (2024),
  "Low-Cost High-Power Membership Inference Attacks", online and offline; and, with
  ``variant="privacy_meter"``, exactly the offline RMIA of the authors' tool ml_privacy_meter.
* :func:`loss_attack`: the global loss threshold of Yeom et al. (2018).

:func:`evaluate_attacks` makes every model in turn the target and the other M - 1 models its
shadow (reference) models, computed vectorised across targets; :class:`AttackResults` holds the
ROC metrics, per-target metrics and per-example vulnerability; :func:`plot_roc` draws the
log-log ROC curves.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from typing import Sequence

import numpy as np
import scipy.special

from memjax import estimators, formatting, plotting
from memjax import roc as roc_lib
from memjax.measures import lira_statistic  # noqa: F401 (re-exported: defined once there)
from memjax.roc import _take_last
from memjax.errors import MemjaxError

__all__ = [
    "ATTACKS", "DEFAULT_ATTACKS", "LIRA_VARIANTS", "RMIA_VARIANTS", "AttackResult", "AttackResults",
    "evaluate_attacks", "lira", "lira_statistic", "log_prob_from_statistic", "loss_attack",
    "loss_from_statistic", "plot_roc", "prob_from_statistic", "rmia",
]

SD_EPS = 1e-30  # added to every standard deviation before use (as the reference does)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

LIRA_VARIANTS = {
    # name: (online, fix_variance, one_sided)
    "lira_online": (True, False, True),
    "lira_online_fixed": (True, True, True),
    "lira_offline": (False, False, True),
    "lira_offline_fixed": (False, True, True),
    "lira_offline_two_sided": (False, False, False),
    "lira_offline_two_sided_fixed": (False, True, False),
}
RMIA_VARIANTS = ("paper", "privacy_meter")
ATTACKS = tuple(LIRA_VARIANTS) + ("rmia", "rmia_offline", "rmia_privacy_meter", "loss")
DEFAULT_ATTACKS = ("lira_online", "lira_online_fixed", "lira_offline", "lira_offline_fixed",
                   "rmia", "loss")

# Work arrays of the leave-one-model-out evaluation hold about this many float64 entries each.
_BATCH_ELEMENTS = 1 << 21


# ----------------------------------------------------------------------------------------------
# The statistic (memjax.measures.lira_statistic computes it; these convert it)
# ----------------------------------------------------------------------------------------------


def prob_from_statistic(stats) -> np.ndarray:
  """True-class probability from the LiRA statistic: p_y = sigmoid(phi) = 1 / (1 + exp(-phi)).

  Args:
    stats: [...] float, LiRA statistics (e.g. records' ``train_lira`` [M, N, A]).

  Returns:
    [...] float64 probabilities.
  """
  return scipy.special.expit(np.asarray(stats, np.float64))


def log_prob_from_statistic(stats) -> np.ndarray:
  """log p_y = log sigmoid(phi) = -softplus(-phi), finite for every finite phi.

  Args:
    stats: [...] float, LiRA statistics.

  Returns:
    [...] float64.
  """
  s = np.asarray(stats, np.float64)
  return np.minimum(s, 0.0) - np.log1p(np.exp(-np.abs(s)))


def loss_from_statistic(stats) -> np.ndarray:
  """Cross-entropy loss from the LiRA statistic: -log p_y = softplus(-phi).

  Args:
    stats: [...] float, LiRA statistics.

  Returns:
    [...] float64 losses (>= 0).
  """
  return np.logaddexp(0.0, -np.asarray(stats, np.float64))


# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------


def _float_array(name: str, x, ndim: int, shape_doc: str) -> np.ndarray:
  a = np.asarray(x)
  if not np.issubdtype(a.dtype, np.floating):
    raise MemjaxError(f"{name} must be a floating-point array {shape_doc}; got dtype {a.dtype}.")
  if a.ndim != ndim:
    raise MemjaxError(f"{name} must have shape {shape_doc}; got shape {a.shape}.")
  bad = a.size - int(np.count_nonzero(np.isfinite(a)))
  if bad:
    raise MemjaxError(
        f"{name} has {bad} non-finite values (NaN/inf), e.g. from a diverged model. Drop those "
        "models, or recompute the statistic with memjax.attacks.lira_statistic, which is finite "
        "for finite logits.")
  return a


def _prob_array(name: str, p, shape_doc: str) -> np.ndarray:
  a = np.asarray(p)
  if not np.issubdtype(a.dtype, np.floating):
    raise MemjaxError(f"{name} must be a float array of probabilities {shape_doc}; got {a.dtype}.")
  a = a.astype(np.float64, copy=False)
  if not np.all((a >= 0) & (a <= 1)):
    raise MemjaxError(
        f"{name} must hold probabilities in [0, 1] {shape_doc}. If you have LiRA statistics, "
        "convert them with memjax.attacks.prob_from_statistic.")
  return a


# ----------------------------------------------------------------------------------------------
# LiRA
# ----------------------------------------------------------------------------------------------


def _fill_column_mean(x: np.ndarray, axis: int) -> np.ndarray:
  """Replaces NaN entries with the mean of the non-NaN entries along ``axis`` (the examples)."""
  missing = np.isnan(x)
  if not missing.any():
    return x
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    mean = np.nanmean(x, axis=axis, keepdims=True)
  return np.where(missing, mean, x)


def _gaussian_logpdf(x, mu, sd):
  """log N(x; mu, sd^2) = -((x - mu) / sd)^2 / 2 - log sd - log(2 pi) / 2."""
  z = (x - mu) / sd
  return -0.5 * z * z - np.log(sd) - _HALF_LOG_2PI


def _lira_from_gaussians(t, mu_in, sd_in, mu_out, sd_out, *, online: bool, one_sided: bool,
                         axis: int):
  """LiRA scores from fitted Gaussians; mean over the augmentation ``axis``. sd without SD_EPS."""
  sd_out = sd_out + SD_EPS
  if online:
    sd_in = sd_in + SD_EPS
    per_query = _gaussian_logpdf(t, mu_in, sd_in) - _gaussian_logpdf(t, mu_out, sd_out)
  elif one_sided:
    per_query = scipy.special.log_ndtr((t - mu_out) / sd_out)
  else:
    per_query = -_gaussian_logpdf(t, mu_out, sd_out)
  return per_query.mean(axis=axis)


def _masked_median(stats: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Median over models (axis 0) of stats [M, N, A] where mask [M, N]; NaN without models."""
  k = mask.sum(axis=0)  # [N]
  s = np.sort(np.where(mask[..., None], stats, np.inf), axis=0)
  lo = np.maximum((k - 1) // 2, 0)[None, :, None]
  hi = (k // 2)[None, :, None]
  hi = np.minimum(hi, len(s) - 1)
  lo_v = np.take_along_axis(s, np.broadcast_to(lo, (1,) + s.shape[1:]), axis=0)[0]
  hi_v = np.take_along_axis(s, np.broadcast_to(hi, (1,) + s.shape[1:]), axis=0)[0]
  return np.where((k == 0)[:, None], np.nan, 0.5 * (lo_v + hi_v))


def _fit_side(stats: np.ndarray, mask: np.ndarray, fix_variance: bool):
  """mu [N, A] and sd ([N, A] or scalar) of one side (IN or OUT), reference semantics."""
  k = mask.sum(axis=0)[:, None].astype(np.float64)  # [N, 1]
  mu = _masked_median(stats, mask)
  m3 = mask[..., None]
  if fix_variance:
    resid = stats - mu[None]  # residuals about each example's own median
    count = k.sum() * stats.shape[2]
    if count == 0:
      sd = np.nan
    else:
      rbar = np.where(m3, resid, 0.0).sum() / count
      sd = math.sqrt(np.where(m3, (resid - rbar) ** 2, 0.0).sum() / count)
  else:
    with np.errstate(invalid="ignore", divide="ignore"):
      mean = np.where(m3, stats, 0.0).sum(axis=0) / k
      sd = np.sqrt(np.where(m3, (stats - mean[None]) ** 2, 0.0).sum(axis=0) / k)
    sd = _fill_column_mean(sd, axis=0)
  return _fill_column_mean(mu, axis=0), sd


def lira(target_stats, shadow_stats, shadow_keep, *, online: bool = True,
         fix_variance: bool = False, one_sided: bool = True) -> np.ndarray:
  """LiRA (Carlini et al. 2022) membership scores of one target model; larger = member.

  For example i, query a, with IN_i = {m : shadow_keep[m, i]} and OUT_i the other shadow models:

    mu_in[i, a]  = median_{m in IN_i} s[m, i, a]        (even count: mean of the middle two)
    sd_in[i, a]  = std_{m in IN_i} s[m, i, a]           (population std, ddof = 0)
    mu_out, sd_out likewise over OUT_i.

  ``fix_variance=True`` replaces sd_in by ONE scalar, the std (ddof 0, about their mean) of all
  residuals s[m, i, a] - mu_in[i, a], m in IN_i, pooled over every example and query; likewise
  sd_out (two different scalars). Every sd gets + 1e-30. With L(t; mu, sd) the Gaussian
  log-density and t = target_stats[i, a], the score of example i is

    online                  : mean_a [ L(t; mu_in, sd_in) - L(t; mu_out, sd_out) ]
    offline, one_sided=True : mean_a log Phi((t - mu_out) / sd_out)   (the paper's test:
                              1 - Pr[Z > t], Z ~ N(mu_out, sd_out^2); large t = member)
    offline, one_sided=False: -mean_a L(t; mu_out, sd_out)            (two-sided; what the
                              reference code and Carlini's plot.py compute)

  These are exactly -compute_score_lira(...) of tensorflow_privacy's advanced_mia (online:
  option="both"; offline two-sided: option="out"; fix_variance as is), whose SMALLER = member.
  An example without IN (OUT) shadow models gets, per query, the mean over the other examples
  of mu_in (mu_out) and, per-example variance, of sd_in (sd_out): the reference's
  ``replace_nan_with_column_mean``; a warning says how many examples this affected.

  Args:
    target_stats: [N, A] float, the target model's statistics ([N] is read as A = 1).
    shadow_stats: [M, N, A] float, the shadow models' statistics ([M, N] as A = 1).
    shadow_keep: [M, N] bool, shadow_keep[m, i] = shadow model m trained on example i.
    online: use IN and OUT Gaussians (True) or the OUT Gaussian only (False).
    fix_variance: one pooled sd per side instead of one per example and query.
    one_sided: offline only; the paper's one-sided test (True) or the reference's two-sided.

  Returns:
    [N] float64 scores, larger = more likely a member.

  Example (the tiny golden of the notes: IN [1, 2, 4, 5], OUT [0, 1, 2, 6], target 2.5):
    >>> import numpy as np
    >>> shadow = np.array([1., 2., 4., 5., 0., 1., 2., 6.])[:, None, None]
    >>> keep = np.array([True] * 4 + [False] * 4)[:, None]
    >>> round(float(lira(np.array([[2.5]]), shadow, keep)[0]), 8)
    0.41136612
    >>> round(float(lira(np.array([[2.5]]), shadow, keep, online=False, one_sided=False)[0]), 8)
    1.83845002
  """
  t = np.asarray(target_stats)
  s = np.asarray(shadow_stats)
  if t.ndim == 1 and s.ndim == 2:
    t, s = t[:, None], s[..., None]
  s = _float_array("shadow_stats", s, 3, "[M, N, A]")
  m, n, a = s.shape
  t = _float_array("target_stats", t, 2, "[N, A]")
  if t.shape != (n, a):
    raise MemjaxError(
        f"target_stats has shape {t.shape} but shadow_stats {s.shape} needs [N, A] = {(n, a)}.")
  keep = estimators.as_keep_mask(shadow_keep, (m, n), name="shadow_keep",
                                against="the statistics", integers=False)
  s = s.astype(np.float64)
  t = t.astype(np.float64)
  k_in = keep.sum(axis=0)
  sides = [("OUT", ~keep, k_in == m)] + ([("IN", keep, k_in == 0)] if online else [])
  for side, _, missing in sides:
    if missing.all():
      raise MemjaxError(
          f"lira: no example has any {side} shadow model, so the {side} Gaussians cannot be "
          f"fitted. The keep mask must have both True and False in some columns"
          + (" (or use online=False)." if side == "IN" else "."))
    if missing.any():
      warnings.warn(
          f"lira: {int(missing.sum())} of {n} examples have no {side} shadow model; their "
          f"{side} Gaussian uses the mean over the other examples (reference behaviour). Use "
          "more shadow models or a balanced design.", stacklevel=2)
  mu_out, sd_out = _fit_side(s, ~keep, fix_variance)
  mu_in, sd_in = _fit_side(s, keep, fix_variance) if online else (None, None)
  return _lira_from_gaussians(t, mu_in, sd_in, mu_out, sd_out, online=online,
                              one_sided=one_sided, axis=-1)


# ----------------------------------------------------------------------------------------------
# RMIA
# ----------------------------------------------------------------------------------------------


def _log_mean_exp(log_x: np.ndarray, axis: int) -> np.ndarray:
  """log(mean(exp(log_x))) along axis, stable; -inf where all entries are -inf."""
  return np.logaddexp.reduce(log_x, axis=axis) - math.log(log_x.shape[axis])


def _rmia_log_denominator(log_mean: np.ndarray, offline_a: float | None) -> np.ndarray:
  """log Pr(x): online log_mean as is; offline log(((1 + a) / 2) exp(log_mean) + (1 - a) / 2)."""
  if offline_a is None:
    return log_mean
  with np.errstate(divide="ignore"):
    return np.logaddexp(math.log((1.0 + offline_a) / 2.0) + log_mean,
                        math.log((1.0 - offline_a) / 2.0) if offline_a < 1 else -np.inf)


def _count_below(x: np.ndarray, z: np.ndarray) -> np.ndarray:
  """counts[t, i] = #{j : z[t, j] < x[t, i]} for x [T, N], z [T, Z].

  One sort of z per row (vectorised over rows), then one binary search of all N values per row:
  O((N + Z) log Z) per target, no [N, Z] comparison matrix.
  """
  zs = np.sort(z, axis=1)
  return np.stack([np.searchsorted(zs[t], x[t], side="left") for t in range(len(x))])


def _rmia_from_log_ratios(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, gamma: float):
  """Fraction of z with LR(x) / LR(z) > gamma: log_ratio_z < log_ratio_x - log gamma. [T, N]."""
  counts = _count_below(log_ratio_x - math.log(gamma), log_ratio_z)
  return counts / log_ratio_z.shape[1]


def _check_gamma_a(gamma: float, offline_a: float | None, balance_in_out: bool = False):
  if not gamma > 0:
    raise MemjaxError(f"rmia: gamma must be > 0; got {gamma}.")
  if offline_a is not None and not 0.0 <= offline_a <= 1.0:
    raise MemjaxError(f"rmia: offline_a must lie in [0, 1] (or None for online); got {offline_a}.")
  if balance_in_out and offline_a is not None:
    raise MemjaxError("rmia: balance_in_out weights IN and OUT reference models in the online "
                      "attack; the offline attack (offline_a set) uses OUT models only. Drop "
                      "one of the two.")


def _check_rmia_options(variant: str, gamma: float, offline_a, balance_in_out: bool, paired):
  if variant not in RMIA_VARIANTS:
    raise MemjaxError(f"rmia: unknown variant {variant!r}; choose from {RMIA_VARIANTS} (the "
                      "paper's formulas, or ml_privacy_meter's offline RMIA).")
  tune = isinstance(offline_a, str)
  if tune and (variant != "privacy_meter" or offline_a != "tune"):
    raise MemjaxError(f"rmia: offline_a={offline_a!r}; the only string is 'tune', "
                      "ml_privacy_meter's per-target choice of a: use variant='privacy_meter'.")
  if (paired is not None) != tune:
    raise MemjaxError("rmia: paired (the model ml_privacy_meter attacks to tune a) goes with "
                      "variant='privacy_meter' and offline_a='tune', and those need it.")
  if variant == "paper":
    _check_gamma_a(gamma, offline_a, balance_in_out)
    return
  if gamma != 1.0:
    raise MemjaxError(f"rmia: ml_privacy_meter fixes gamma = 1 (it counts ratios > 1.0); got "
                      f"gamma={gamma}. Use variant='paper' for another gamma.")
  if balance_in_out:
    raise MemjaxError("rmia: balance_in_out belongs to the paper's online attack; "
                      "variant='privacy_meter' is offline. Drop one of the two.")
  if offline_a is None:
    raise MemjaxError("rmia: ml_privacy_meter's RMIA is offline only: pass offline_a='tune' "
                      "with paired=(prob, keep, pop_prob) for its per-target tuning of a (what "
                      "its run_mia.py does), or a fixed a in [0, 1].")
  if not tune:
    _check_gamma_a(gamma, offline_a)


def _mean_over_queries(name: str, p: np.ndarray, ndim: int, shape_doc: str) -> np.ndarray:
  """Probabilities [..., A] -> their mean over queries; [...] passes through."""
  if p.ndim == ndim + 1:
    return p.mean(axis=-1)
  if p.ndim != ndim:
    raise MemjaxError(f"{name} must have shape {shape_doc}; got {p.shape}.")
  return p


def rmia(target_prob, ref_prob, ref_keep, target_pop_prob, ref_pop_prob, *,
         gamma: float = 1.0, offline_a: float | str | None = None,
         balance_in_out: bool = False, variant: str = "paper", paired=None) -> np.ndarray:
  """RMIA membership scores of one target model; larger = member.

  Two variants. ``variant="paper"`` (default): the relative membership inference attack of
  Zarifzadeh et al. (2024), "Low-Cost High-Power Membership Inference Attacks", online or
  offline. ``variant="privacy_meter"``: exactly the offline RMIA of the authors' tool
  ml_privacy_meter, which normalises the population differently and tunes a per target, so it
  gives other numbers than the paper's formulas.

  Pr(x | theta) is the target model's true-class probability of x (the mean over queries when
  a query axis is given). With R reference models theta_r and a population Z of points known
  to be non-members of every model (e.g. the test split):

  variant="paper":

    online : Pr(x) = mean_r Pr(x | theta_r)                      (IN and OUT reference models)
             balance_in_out=True: Pr(x) = (mean_{r IN for x} Pr(x | theta_r)
                                           + mean_{r OUT for x} Pr(x | theta_r)) / 2
             (the two means weighted equally whatever the IN/OUT mix of the reference models;
             equal to the pooled mean when every example is IN for half of them)
    offline: Pr(x) = ((1 + a) / 2) * mean_{r OUT for x} Pr(x | theta_r) + (1 - a) / 2
             (the paper's linear approximation of the IN mean, Pr_IN = a Pr_OUT + 1 - a,
             inside Pr(x) = (Pr_IN + Pr_OUT) / 2; a = offline_a in [0, 1], a = 1 uses Pr_OUT)

    Pr(z) likewise for every population point z (all reference models are OUT for z; offline
    applies the same (1 + a) / 2 transform, as ml_privacy_meter does).
    LR(x) = Pr(x | theta) / Pr(x),   LR(z) = Pr(z | theta) / Pr(z),
    score(x) = (1 / Z) #{z : LR(x) / LR(z) > gamma}                (in [0, 1]).

    Computed in log space. An example with no OUT (offline, balanced) or no IN (balanced)
    reference model uses the mean of that side's mean over the other examples (with a warning).

  variant="privacy_meter" (offline only, gamma = 1), from the first 2k reference models,
  k = floor(R / 2) (R odd: the last one is unused, as its ``columns[:2k]``):

    Pr_OUT(x) = (1 / k) * sum of the k largest of {Pr(x | theta_r) * [r OUT for x]}
                IN models count as 0. With reference models in pairs trained on complementary
                halves (ml_privacy_meter's design: x is OUT for exactly k) this is the paper's
                OUT mean; otherwise the mean of the k largest OUT probabilities, or, with fewer
                than k OUT models, their sum / k; no OUT model: 0.
    Pr_OUT(z) = (1 / k) * sum of the k largest of {Pr(z | theta_r)}: the mean of the LARGER
                HALF of the reference models' probabilities (the paper: the mean of all R).
    Pr(x) = ((1 + a) / 2) Pr_OUT(x) + (1 - a) / 2,   Pr(z) likewise,
    score(x) = (1 / Z) #{z : (Pr(x | theta) / Pr(x)) / (Pr(z | theta) / Pr(z)) > 1.0}
               (in probability space with floats, as it computes it; no gamma; a ratio 0 / 0
               is NaN and never counts, a positive / 0 is inf. In float64 here; its softmax
               signals are float32, whose rounding can move near-ties by one 1 / Z step.)
    a: offline_a in [0, 1], or offline_a="tune": its per-target tuning. For each a in
      np.arange(0, 1.1, 0.1) (0, 0.1, ..., 1), the score above of the PAIRED model (``paired``:
      a model with known membership that is not among the R, in ml_privacy_meter the model
      trained on the complement of the target's training set) from the first TWO reference
      models (k = 1), scored by sklearn's ROC AUC against the paired model's membership; the
      first a with the largest AUC wins (strict >, from a = 0). The paper fixes a (the default
      of :func:`evaluate_attacks` is 0.3).

    Source: github.com/privacytrustlab/ml_privacy_meter, commit e384af8fd931 (2025-04-26),
    attacks.py: get_rmia_out_signals (lines 7-39), tune_offline_a (42-88), run_rmia (91-138);
    audit.py audit_models (176-194) runs both per target for run_mia.py. (Its MIA class,
    modules/mia/attacks/rmia.py, the library API behind DUCI, differs again: k = R // 2 of all
    the R models given; with k = 1 it maps IN probabilities to OUT ones, (p + a - 1) / a, and
    averages all R. Not reproduced here.)

  Both: the population ratios are sorted once and each x is placed by binary search (no
  [N, Z] matrix). Scores are multiples of 1 / Z: with a small population (e.g. the 360 digits
  test points) many examples share the top score, which caps the TPR measurable at very low
  FPR.

  Args:
    target_prob: [N] or [N, A] float, target model's true-class probabilities p_y of the
      candidate examples (from LiRA statistics: :func:`prob_from_statistic`).
    ref_prob: [R, N] or [R, N, A] float, the reference models' probabilities of the same
      (privacy_meter: their order matters, see above).
    ref_keep: [R, N] bool, ref_keep[r, i] = reference model r trained on example i; needed for
      offline and balance_in_out, may be None online (which then averages over all reference
      models).
    target_pop_prob: [Z] or [Z, A] float, target model's probabilities of the population.
    ref_pop_prob: [R, Z] or [R, Z, A] float, the reference models' probabilities of it.
    gamma: the likelihood-ratio threshold gamma > 0 (the paper's gamma; 1 by default;
      privacy_meter: must be 1).
    offline_a: None for the online attack, or a in [0, 1] for the offline attack;
      privacy_meter: a in [0, 1], or "tune" (with ``paired``).
    balance_in_out: paper, online only: weight the IN and OUT reference means equally (see
      above); what :func:`evaluate_attacks` uses, so that the target's own membership, which
      changes the IN/OUT mix of its leave-one-out reference models, cannot shift Pr(x).
    variant: "paper" or "privacy_meter" (:data:`RMIA_VARIANTS`).
    paired: privacy_meter with offline_a="tune" only: the paired model as a tuple (prob [N] or
      [N, A] float, keep [N] bool, pop_prob [Z] or [Z, A] float): its probabilities of the
      candidates, its membership of them, its probabilities of the population.

  Returns:
    [N] float64 scores in [0, 1].

  Example:
    >>> import numpy as np
    >>> ref = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> pop_ref = np.full((2, 4), 0.5)
    >>> rmia(np.array([0.9, 0.2]), ref, None, np.array([0.1, 0.3, 0.6, 0.8]), pop_ref).tolist()
    [1.0, 0.25]
    >>> keep = np.array([[True, False], [False, True]])
    >>> rmia(np.array([0.9, 0.2]), ref, keep, np.array([0.1, 0.3, 0.6, 0.8]), pop_ref,
    ...      variant="privacy_meter", offline_a=0.5).tolist()
    [1.0, 0.25]
  """
  _check_rmia_options(variant, gamma, offline_a, balance_in_out, paired)
  tq = _prob_array("target_prob", target_prob, "[N] or [N, A]")
  rq = _prob_array("ref_prob", ref_prob, "[R, N] or [R, N, A]")
  tz = _prob_array("target_pop_prob", target_pop_prob, "[Z] or [Z, A]")
  rz = _prob_array("ref_pop_prob", ref_pop_prob, "[R, Z] or [R, Z, A]")
  tq = _mean_over_queries("target_prob", tq, 1, "[N] or [N, A]")
  rq = _mean_over_queries("ref_prob", rq, 2, "[R, N] or [R, N, A]")
  tz = _mean_over_queries("target_pop_prob", tz, 1, "[Z] or [Z, A]")
  rz = _mean_over_queries("ref_pop_prob", rz, 2, "[R, Z] or [R, Z, A]")
  r, n = rq.shape
  if tq.shape != (n,) or rz.shape != (r, tz.shape[0]):
    raise MemjaxError(
        f"rmia: shapes do not match: target_prob {tq.shape} (need [N] = ({n},)), ref_prob "
        f"{rq.shape} [R, N], target_pop_prob {tz.shape} [Z], ref_pop_prob {rz.shape} "
        f"(need [R, Z] = ({r}, {tz.shape[0]})).")
  if tz.shape[0] == 0:
    raise MemjaxError("rmia needs at least one population point (target_pop_prob is empty).")
  keep = None if ref_keep is None else estimators.as_keep_mask(
      ref_keep, (r, n), name="ref_keep", shape_doc="[R, N]", against="the statistics",
      integers=False)
  if keep is None and (offline_a is not None or balance_in_out):
    raise MemjaxError(
        f"rmia {'offline (offline_a set)' if offline_a is not None else 'with balance_in_out'} "
        "needs ref_keep [R, N] to know which reference models are IN and OUT for each example.")
  if variant == "privacy_meter":
    if r < 2:
      raise MemjaxError(f"rmia variant='privacy_meter' averages the larger half of at least 2 "
                        f"reference models; got R = {r}. Pass more reference models.")
    if paired is not None:
      paired = _paired_model(paired, n, tz.shape[0])
    return _privacy_meter_rmia(tq, rq, keep, tz, rz, offline_a, paired)[0]
  with np.errstate(divide="ignore"):
    lq, lrq, lz, lrz = np.log(tq), np.log(rq), np.log(tz), np.log(rz)
  if offline_a is not None:
    lpx = _rmia_log_denominator(_ref_side_log_mean(lrq, ~keep, "OUT"), offline_a)
  elif balance_in_out:
    lpx = _balanced_log_mean(_ref_side_log_mean(lrq, keep, "IN"),
                             _ref_side_log_mean(lrq, ~keep, "OUT"))
  else:
    lpx = _log_mean_exp(lrq, axis=0)
  lpz = _rmia_log_denominator(_log_mean_exp(lrz, axis=0), offline_a)
  ratio_x = _log_ratio(lq, lpx)
  ratio_z = _log_ratio(lz, lpz)
  return _rmia_from_log_ratios(ratio_x[None], ratio_z[None], gamma)[0]


def _log_ratio(log_num: np.ndarray, log_den: np.ndarray) -> np.ndarray:
  """log(num / den) with 0 / anything = 0 (-inf) and positive / 0 = +inf."""
  with np.errstate(invalid="ignore"):
    return np.where(np.isneginf(log_num), -np.inf, log_num - log_den)


def _ref_side_log_mean(log_p: np.ndarray, side: np.ndarray, name: str) -> np.ndarray:
  """log mean_{r : side[r, i]} exp(log_p[r, i]) [N] from log_p, side [R, N] (name: "IN"/"OUT").

  Examples without a reference model on that side get the log of the mean over the others.
  """
  k = side.sum(axis=0)
  if not k.any():
    raise MemjaxError(
        f"rmia: no example has an {name} reference model (ref_keep is all "
        f"{name == 'OUT'}), so Pr_{name}(x) cannot be estimated. Pass the reference models' "
        "real keep mask (True = trained on the example)"
        + (", or balance_in_out=False." if name == "IN" else "."))
  if not k.all():
    warnings.warn(
        f"rmia: {int((k == 0).sum())} of {len(k)} examples have no {name} reference model; "
        "they use the mean over the other examples.", stacklevel=3)
  with np.errstate(divide="ignore", invalid="ignore"):
    lp = scipy.special.logsumexp(np.where(side, log_p, -np.inf), axis=0) - np.log(k)
  return _fill_log_mean_over_examples(lp[None], k[None] > 0)[0]


def _balanced_log_mean(log_in: np.ndarray, log_out: np.ndarray) -> np.ndarray:
  """log((exp(log_in) + exp(log_out)) / 2): the IN and OUT means weighted equally."""
  return np.logaddexp(log_in, log_out) - math.log(2.0)


def _fill_log_mean_over_examples(log_mean: np.ndarray, defined: np.ndarray) -> np.ndarray:
  """[T, N] log-means; undefined entries get log of the mean over defined examples in the row."""
  p = np.where(defined, np.exp(log_mean), 0.0)
  with np.errstate(divide="ignore", invalid="ignore"):
    fill = np.log(p.sum(axis=1, keepdims=True) / defined.sum(axis=1, keepdims=True))
  return np.where(defined, log_mean, fill)


def _paired_model(paired, n: int, z: int):
  """Validated (prob [N], keep [N], pop_prob [Z]) of the paired model (privacy_meter tuning)."""
  if not isinstance(paired, (tuple, list)) or len(paired) != 3:
    raise MemjaxError("rmia: paired must be a tuple (prob [N] or [N, A], keep [N] bool, "
                      "pop_prob [Z] or [Z, A]) of the paired model; got "
                      f"{type(paired).__name__}.")
  prob = _mean_over_queries(
      "paired[0]", _prob_array("paired[0]", paired[0], "[N] or [N, A]"), 1, "[N] or [N, A]")
  pop = _mean_over_queries(
      "paired[2]", _prob_array("paired[2]", paired[2], "[Z] or [Z, A]"), 1, "[Z] or [Z, A]")
  keep = estimators.as_keep_mask(paired[1], (n,), name="paired[1]", shape_doc="[N]",
                                 against="the candidates", integers=False)
  if prob.shape != (n,) or pop.shape != (z,):
    raise MemjaxError(f"rmia: paired has shapes {prob.shape}, {keep.shape}, {pop.shape}; it "
                      f"needs [N] = ({n},), [N] and [Z] = ({z},) like the target's.")
  if keep.all() or not keep.any():
    raise MemjaxError("rmia: the paired model's keep mask must have members and non-members: "
                      "tuning a scores the attack on it by ROC AUC.")
  return prob, keep, pop


# ml_privacy_meter's grid of the offline coefficient (tune_offline_a): 0, 0.1, ..., 1, as np.arange
# makes them (0.30000000000000004 included).
_PRIVACY_METER_A_GRID = np.arange(0, 1.1, 0.1)


def _privacy_meter_out_mean(prob: np.ndarray, keep: np.ndarray | None, k: int) -> np.ndarray:
  """ml_privacy_meter's get_rmia_out_signals + mean: [K] mean of the k largest of prob * ~keep
  over the first 2k models of prob [R, K] (keep None: all OUT, as for the population).

  The same numpy calls on the same [K, 2k] memory layout as its code, hence the same rounding.
  """
  x = np.ascontiguousarray(prob[:2 * k].T)
  if keep is not None:
    x = x * ~np.ascontiguousarray(keep[:2 * k].T)
  return np.mean(-np.sort(-x, axis=1)[:, :k], axis=1)


def _privacy_meter_scores(tq, out_x, tz, out_z, a) -> np.ndarray:
  """ml_privacy_meter's run_rmia from the OUT means: [N] fraction of z with ratio_x / ratio_z > 1.

  For floats u, v >= 0, fl(u / v) > 1 exactly when u > v (a quotient of two different floats
  never rounds to 1) and a NaN ratio counts for nothing, so counting the ratio_z below each
  ratio_x by binary search gives its [N, Z] comparison's result.
  """
  with np.errstate(divide="ignore", invalid="ignore"):
    ratio_x = tq / ((1 + a) / 2 * out_x + (1 - a) / 2)
    ratio_z = tz / ((1 + a) / 2 * out_z + (1 - a) / 2)
  counts = _count_below(ratio_x[None], ratio_z[None])[0]
  return np.where(np.isnan(ratio_x), 0, counts) / len(tz)


def _privacy_meter_tune_a(paired, rq: np.ndarray, keep: np.ndarray, rz: np.ndarray) -> float:
  """ml_privacy_meter's tune_offline_a: the grid's a of best AUC on the paired model (k = 1)."""
  from sklearn import metrics  # its AUC (trapezoids), so that near-ties break the same way

  prob, member, pop = paired
  out_x, out_z = _privacy_meter_out_mean(rq, keep, 1), _privacy_meter_out_mean(rz, None, 1)
  best_a, best_auc = 0.0, 0.0
  for a in _PRIVACY_METER_A_GRID:
    fpr, tpr, _ = metrics.roc_curve(member, _privacy_meter_scores(prob, out_x, pop, out_z, a))
    auc = metrics.auc(fpr, tpr)
    if auc > best_auc:
      best_a, best_auc = a, auc
  return best_a


def _privacy_meter_rmia(tq, rq, keep, tz, rz, offline_a, paired) -> tuple[np.ndarray, float]:
  """ml_privacy_meter's offline RMIA of one target from validated [N], [R, N], [Z], [R, Z]
  float64 probabilities: ([N] scores, the a used)."""
  a = _privacy_meter_tune_a(paired, rq, keep, rz) if offline_a == "tune" else offline_a
  k = rq.shape[0] // 2
  scores = _privacy_meter_scores(tq, _privacy_meter_out_mean(rq, keep, k), tz,
                                 _privacy_meter_out_mean(rz, None, k), a)
  return scores, float(a)


# ----------------------------------------------------------------------------------------------
# Loss threshold
# ----------------------------------------------------------------------------------------------


def loss_attack(target_loss) -> np.ndarray:
  """Global loss-threshold attack (Yeom et al. 2018): score = -loss (low loss = member).

  Args:
    target_loss: [...] float, the target model's loss on each example (cross-entropy
      -log p_y; from LiRA statistics: :func:`loss_from_statistic`).

  Returns:
    [...] float64 scores.
  """
  loss = np.asarray(target_loss)
  if not np.issubdtype(loss.dtype, np.floating):
    raise MemjaxError(f"loss_attack: target_loss must be a float array; got dtype {loss.dtype}.")
  return -loss.astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Leave-one-model-out evaluation: LiRA
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _GroupedStats:
  """Per example and query, the M statistics sorted within their group: IN first, then OUT.

  grouped[i, a, :k_in[i]] are the IN values sorted ascending, grouped[i, a, k_in[i]:] the OUT
  values; rank[i, a, m] is the position of model m's value inside its own group. Dropping one
  model (the target) from a sorted group shifts the median's indices by at most one, and the
  group's mean and sum of squared deviations update in O(1).
  """

  grouped: np.ndarray  # [N, A, M] stats dtype
  rank: np.ndarray  # [N, A, M] int16/int32
  k_in: np.ndarray  # [N] int64
  k_out: np.ndarray  # [N] int64
  mean_in: np.ndarray  # [N, A] float64 (NaN for empty groups)
  s2_in: np.ndarray  # [N, A] float64, sum of squared deviations about mean_in
  mean_out: np.ndarray
  s2_out: np.ndarray


def _group_stats(stats: np.ndarray, keep: np.ndarray) -> _GroupedStats:
  m, n, a = stats.shape
  k_in = keep.sum(axis=0).astype(np.int64)
  k_out = m - k_in
  grouped = np.empty((n, a, m), stats.dtype)
  rank = np.empty((n, a, m), np.int16 if m < 2 ** 15 else np.int32)
  rank_flat = rank.reshape(-1)
  grouped_flat = grouped.reshape(-1)
  mean_in, s2_in, mean_out, s2_out = (np.empty((n, a)) for _ in range(4))
  chunk = max(1, _BATCH_ELEMENTS // (a * m))
  steps = np.arange(1, m + 1)
  for lo in range(0, n, chunk):
    sl = slice(lo, min(lo + chunk, n))
    x = np.ascontiguousarray(np.moveaxis(stats[:, sl, :], 0, -1))  # [n_c, A, M]
    kin = np.ascontiguousarray(np.broadcast_to(keep[:, sl].T[:, None, :], x.shape))
    order = np.argsort(x, axis=-1)  # any order within ties will do
    ks = _take_last(kin, order)  # group of the j-th smallest value
    c_in = np.cumsum(ks, axis=-1)
    c_out = steps - c_in
    base = np.arange(sl.start * a, sl.stop * a, dtype=np.int64).reshape(-1, a, 1) * m
    dest = np.where(ks, c_in - 1, k_in[sl, None, None] + c_out - 1)
    grouped_flat[dest + base] = _take_last(x, order)
    rank_flat[order + base] = np.where(ks, c_in - 1, c_out - 1)
    x64 = x.astype(np.float64)
    for side_mask, cnt, mean, s2 in ((kin, k_in[sl], mean_in, s2_in),
                                     (~kin, k_out[sl], mean_out, s2_out)):
      with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(side_mask, x64, 0.0).sum(axis=-1) / cnt[:, None]
      mean[sl] = mu
      s2[sl] = np.where(side_mask, (x64 - mu[..., None]) ** 2, 0.0).sum(axis=-1)
  return _GroupedStats(grouped, rank, k_in, k_out, mean_in, s2_in, mean_out, s2_out)


def _loo_side_fit(gs: _GroupedStats, stats: np.ndarray, keep: np.ndarray, targets: np.ndarray,
                  x: np.ndarray, side_in: bool, need_free: bool, need_fixed: bool):
  """Gaussian fit of one side for a batch of T targets, each without its own statistics.

  Args:
    gs: the grouped statistics of all M models.
    stats: [M, N, A] all statistics (for the rare exact fallback).
    keep: [M, N] bool.
    targets: [T] int model indices.
    x: [N, A, T] float64, the targets' own statistics.
    side_in: fit the IN side (True) or the OUT side (False).
    need_free, need_fixed: which standard deviations to return.

  Returns:
    mu [N, A, T] (column-mean filled), sd [N, A, T] (filled) or None, sd_fixed [T] or None.
  """
  m = gs.grouped.shape[-1]
  trained = keep[targets].T[:, None, :]  # [N, 1, T]
  removed = trained if side_in else ~trained  # target is in this side's group
  k = gs.k_in if side_in else gs.k_out
  mean = (gs.mean_in if side_in else gs.mean_out)[..., None]  # [N, A, 1]
  s2 = (gs.s2_in if side_in else gs.s2_out)[..., None]
  offset = 0 if side_in else gs.k_in[:, None, None]
  n = k[:, None, None] - removed  # [N, 1, T] models left in the group
  r = np.where(removed, gs.rank[:, :, _as_slice(targets)], m)  # [N, A, T]; m: nothing removed
  lo = (n - 1) // 2
  hi = n // 2
  i_lo = np.clip(offset + lo + (lo >= r), 0, m - 1)
  i_hi = np.clip(offset + hi + (hi >= r), 0, m - 1)
  med = 0.5 * (_take_last(gs.grouped, i_lo).astype(np.float64) + _take_last(gs.grouped, i_hi))
  empty = np.broadcast_to(n == 0, med.shape)
  med = np.where(empty, np.nan, med)
  nf = n.astype(np.float64)
  d = x - mean  # deviation of the target's value from its group's mean (if it is in the group)
  sd = sd_fixed = None
  with np.errstate(invalid="ignore", divide="ignore"):
    if need_free:
      var = np.where(removed, (s2 - d * d) / nf - (d / nf) ** 2, s2 / nf)
      var = np.where(n == 0, np.nan, var)
      # Dropping the target can leave (almost) equal values: recompute those few exactly.
      risky = removed & (n >= 1) & ~(var * nf > 1e-6 * (s2 + d * d))
      if risky.any():
        var[risky] = _exact_loo_var(stats, keep, targets, risky, side_in)
      sd = _fill_column_mean(np.sqrt(np.maximum(var, 0.0)), axis=0)
    if need_fixed:
      c = med - mean  # median relative to the group mean
      sum_e = np.where(removed, -d, 0.0)  # sum of the remaining deviations from the group mean
      sq_e = np.where(removed, s2 - d * d, s2)
      r1 = np.where(empty, 0.0, sum_e - nf * c).sum(axis=(0, 1))
      r2 = np.where(empty, 0.0, sq_e - 2.0 * c * sum_e + nf * c * c).sum(axis=(0, 1))
      count = n.sum(axis=(0, 1)) * x.shape[1]
      sd_fixed = np.sqrt(np.maximum(r2 / count - (r1 / count) ** 2, 0.0))
  return _fill_column_mean(med, axis=0), sd, sd_fixed


def _as_slice(idx: np.ndarray):
  """A slice for consecutive indices (a cheap view), else the index array itself."""
  if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
    return slice(int(idx[0]), int(idx[0]) + len(idx))
  return idx


def _exact_loo_var(stats, keep, targets, risky, side_in):
  """Two-pass variance of the group without the target, for the entries flagged ``risky``."""
  i, a, t = np.nonzero(risky)
  vals = stats[:, i, a].T.astype(np.float64)  # [F, M]
  in_group = keep[:, i].T if side_in else ~keep[:, i].T
  in_group = in_group & (np.arange(stats.shape[0])[None, :] != targets[t][:, None])
  cnt = in_group.sum(axis=1)
  mu = np.where(in_group, vals, 0.0).sum(axis=1) / cnt
  return np.where(in_group, (vals - mu[:, None]) ** 2, 0.0).sum(axis=1) / cnt


def _loo_lira_scores(stats, keep, targets, variants, timings):
  """LiRA scores [T, N] of each requested variant, each target against the other M - 1 models."""
  m, n, a = stats.shape
  need_in = any(LIRA_VARIANTS[v][0] for v in variants)
  need_free = any(not LIRA_VARIANTS[v][1] for v in variants)
  need_fixed = any(LIRA_VARIANTS[v][1] for v in variants)
  t0 = time.perf_counter()
  gs = _group_stats(stats, keep)
  out = {v: np.empty((len(targets), n)) for v in variants}
  batch = max(1, _BATCH_ELEMENTS // (n * a))
  for lo in range(0, len(targets), batch):
    tb = targets[lo:lo + batch]
    x = np.moveaxis(stats[tb], 0, -1).astype(np.float64)  # [N, A, T]
    fit_out = _loo_side_fit(gs, stats, keep, tb, x, False, need_free, need_fixed)
    fit_in = (_loo_side_fit(gs, stats, keep, tb, x, True, need_free, need_fixed)
              if need_in else (None, None, None))
    for v in variants:
      online, fixed, one_sided = LIRA_VARIANTS[v]
      j = 2 if fixed else 1
      sd_out = fit_out[j] if not fixed else fit_out[j][None, None, :]
      sd_in = None
      if online:
        sd_in = fit_in[j] if not fixed else fit_in[j][None, None, :]
      with np.errstate(invalid="ignore", divide="ignore"):
        scores = _lira_from_gaussians(x, fit_in[0], sd_in, fit_out[0], sd_out, online=online,
                                      one_sided=one_sided, axis=1)  # [N, T]
      out[v][lo:lo + batch] = scores.T
  for v in variants:
    bad = np.isnan(out[v]).any(axis=1)
    if bad.any():
      raise MemjaxError(
          f"{v}: target model(s) {targets[bad][:5].tolist()} leave no example with "
          f"{'IN and OUT' if LIRA_VARIANTS[v][0] else 'OUT'} shadow models; use more models or "
          "a balanced keep design.")
  timings["lira"] = time.perf_counter() - t0
  return out


# ----------------------------------------------------------------------------------------------
# Leave-one-model-out evaluation: RMIA and loss
# ----------------------------------------------------------------------------------------------


def _log_mean_query_prob(stats: np.ndarray) -> np.ndarray:
  """[M, K, A] statistics -> [M, K] log of the mean over queries of p_y = sigmoid(phi)."""
  return _log_mean_exp(log_prob_from_statistic(stats), axis=-1)


def _loo_log_mean(log_p: np.ndarray, mask: np.ndarray | None, targets: np.ndarray):
  """log mean_{m != t, mask[m, k]} exp(log_p[m, k]) for each target t: [T, K], NaN if empty.

  Exclusive prefix and suffix log-sum-exp along the model axis (no cancellation when the
  target's own probability dominates the sum).
  """
  v = log_p if mask is None else np.where(mask, log_p, -np.inf)
  neg = np.full((1, v.shape[1]), -np.inf)
  with np.errstate(invalid="ignore", divide="ignore"):
    pre = np.concatenate([neg, np.logaddexp.accumulate(v, axis=0)[:-1]])
    suf = np.concatenate([np.logaddexp.accumulate(v[::-1], axis=0)[::-1][1:], neg])
    total = np.logaddexp(pre[targets], suf[targets])
    if mask is None:
      count = np.full(total.shape, v.shape[0] - 1)
    else:
      count = mask.sum(axis=0)[None, :] - mask[targets]
    return np.where(count > 0, total - np.log(count), np.nan)


def _loo_side_log_mean(log_p: np.ndarray, side: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """:func:`_loo_log_mean` over one side's models [T, K], empty entries filled as rmia does."""
  lp = _loo_log_mean(log_p, side, targets)
  return _fill_log_mean_over_examples(lp, ~np.isnan(lp))


def _loo_rmia_log_px(lq: np.ndarray, keep: np.ndarray, targets: np.ndarray,
                     offline_a: float | None) -> np.ndarray:
  """log Pr(x) [T, N] of each target from the other M - 1 models.

  Online: rmia's balance_in_out, (Pr_IN(x) + Pr_OUT(x)) / 2, so that the target's own
  membership (which removes one IN or one OUT model from its reference set) cannot shift it;
  offline: the transform of the OUT mean.
  """
  if offline_a is not None:
    return _rmia_log_denominator(_loo_side_log_mean(lq, ~keep, targets), offline_a)
  return _balanced_log_mean(_loo_side_log_mean(lq, keep, targets),
                            _loo_side_log_mean(lq, ~keep, targets))


def _loo_rmia_scores(stats, keep, test_stats, targets, gamma, offline_a):
  """RMIA scores [T, N], each target against the other M - 1 models as reference models."""
  lq = _log_mean_query_prob(stats)  # [M, N]
  lqz = _log_mean_query_prob(test_stats)  # [M, Z]
  lpx = _loo_rmia_log_px(lq, keep, targets, offline_a)
  bad = np.isnan(lpx).any(axis=1)
  if bad.any():
    raise MemjaxError(
        f"rmia: target model(s) {targets[bad][:5].tolist()} leave no example with an "
        f"{'OUT' if offline_a is not None else 'IN (or an OUT)'} reference model; use more "
        "models or a balanced keep design.")
  lpz = _rmia_log_denominator(_loo_log_mean(lqz, None, targets), offline_a)
  ratio_x = _log_ratio(lq[targets], lpx)
  ratio_z = _log_ratio(lqz[targets], lpz)
  out = np.empty(ratio_x.shape)
  batch = max(1, _BATCH_ELEMENTS // (ratio_x.shape[1] + ratio_z.shape[1]))
  for lo in range(0, len(targets), batch):
    out[lo:lo + batch] = _rmia_from_log_ratios(ratio_x[lo:lo + batch], ratio_z[lo:lo + batch],
                                               gamma)
  return out


def _paired_index(t: int, m: int) -> int:
  """ml_privacy_meter's paired model of target t: t + 1 for even t, t - 1 for odd t (the last
  model of an odd M, which has no partner, gets t - 1)."""
  p = t + 1 if t % 2 == 0 else t - 1
  return p if p < m else t - 1


def _loo_rmia_privacy_meter_scores(stats, keep, test_stats, targets):
  """ml_privacy_meter's RMIA of each target as its run_mia.py runs it: [T, N] scores, [T] a.

  Target t is attacked with the first 2k of the models other than t and its paired model,
  k = (M - 2) // 2, and a tuned on the paired model; a loop over targets.
  """
  m, n, _ = stats.shape
  q = prob_from_statistic(stats).mean(axis=-1)  # [M, N], as rmia averages the queries
  qz = prob_from_statistic(test_stats).mean(axis=-1)  # [M, Z]
  k = (m - 2) // 2
  scores, tuned = np.empty((len(targets), n)), np.empty(len(targets))
  for j, t in enumerate(targets):
    p = _paired_index(int(t), m)
    refs = [i for i in range(m) if i not in (t, p)][:2 * k]
    paired = _paired_model((q[p], keep[p], qz[p]), n, qz.shape[1])
    scores[j], tuned[j] = _privacy_meter_rmia(q[t], q[refs], keep[refs], qz[t], qz[refs],
                                              "tune", paired)
  return scores, tuned


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


def _pct(f: float) -> str:
  return f"{f * 100:g}%"


@dataclasses.dataclass
class AttackResult:
  """Metrics of one attack over all targets.

  Attributes:
    name: the attack's name (see :data:`ATTACKS`).
    auc: ROC AUC of all targets' scores pooled (every (target, example) pair is one sample).
    balanced_accuracy: best balanced accuracy max_tau (TPR + 1 - FPR) / 2 of the pooled ROC.
    tpr_at_fpr: {f: TPR at FPR <= f} of the pooled ROC; NaN with fewer than 1 / f non-members.
    fpr, tpr: the pooled ROC curve, thinned to <= 2,000 points (exact at log-spaced FPRs).
    num_members, num_nonmembers: pooled counts behind the curve.
    per_target: {"auc", "balanced_accuracy", "tpr@f", "num_members", "num_nonmembers"}: [T]
      arrays, the same metrics for each target model on its own; "rmia_privacy_meter" adds
      "offline_a", the a tuned for each target.
    per_example_auc: [N] float64, the per-example vulnerability: for example i, the AUC of
      telling the targets that trained on i from those that did not by the score of i,
      P(score_IN > score_OUT) + P(tie) / 2 over target models. 0.5 = indistinguishable,
      1 = perfectly exposed; NaN when i is IN for all or none of the targets.
    seconds: wall time of this attack's scores (LiRA variants share one fit: see timings).
    scores: [T, N] float64 scores (only with ``return_scores=True``), else None.
  """

  name: str
  auc: float
  balanced_accuracy: float
  tpr_at_fpr: dict[float, float]
  fpr: np.ndarray
  tpr: np.ndarray
  num_members: int
  num_nonmembers: int
  per_target: dict[str, np.ndarray]
  per_example_auc: np.ndarray
  seconds: float = float("nan")
  scores: np.ndarray | None = None


@dataclasses.dataclass
class AttackResults:
  """Results of :func:`evaluate_attacks`.

  Attributes:
    attacks: {name: AttackResult}, in the order requested.
    targets: [T] int, the models used as targets.
    num_models: M.
    num_examples: N.
    num_population: Z (population points for RMIA), or None.
    fprs: the FPR budgets of the tpr_at_fpr entries.
    timings: wall seconds per phase ("lira" = the shared fit and all LiRA variants, "rmia",
      "rmia_offline", "rmia_privacy_meter", "loss", "metrics").
    privacy_audit: for a run with canaries, the empirical privacy audit
      (:func:`memjax.auditing.privacy_audit`, set by ``memjax attack``), else None.
  """

  attacks: dict[str, AttackResult]
  targets: np.ndarray
  num_models: int
  num_examples: int
  num_population: int | None
  fprs: tuple[float, ...]
  timings: dict[str, float]
  privacy_audit: dict | None = None

  def __getitem__(self, name: str) -> AttackResult:
    return self.attacks[name]

  def table(self, markdown: bool = False):
    """One row per attack: pooled AUC, balanced accuracy, TPR at each FPR, per-target AUC.

    Args:
      markdown: return a markdown table string instead of the list of dict rows.

    Returns:
      list of dicts (keys: attack, auc, balanced_accuracy, tpr@f..., target_auc_mean,
      target_auc_std) or a markdown string.
    """
    rows = []
    for name, r in self.attacks.items():
      row = {"attack": name, "auc": r.auc, "balanced_accuracy": r.balanced_accuracy}
      for f in self.fprs:
        row[f"tpr@{f:g}"] = r.tpr_at_fpr[f]
      t_auc = r.per_target["auc"]
      row["target_auc_mean"] = float(np.nanmean(t_auc)) if np.isfinite(t_auc).any() else np.nan
      row["target_auc_std"] = float(np.nanstd(t_auc)) if np.isfinite(t_auc).any() else np.nan
      rows.append(row)
    if not markdown:
      return rows
    head = (["attack", "AUC", "bal. acc."] + [f"TPR@{_pct(f)} FPR" for f in self.fprs]
            + ["per-target AUC"])
    cells = []
    for row in rows:
      tprs = [row[f"tpr@{f:g}"] for f in self.fprs]
      cells.append([row["attack"], f"{row['auc']:.4f}", f"{row['balanced_accuracy']:.4f}",
                    *("n/a" if math.isnan(v) else f"{v * 100:.2f}%" for v in tprs),
                    f"{row['target_auc_mean']:.4f} ± {row['target_auc_std']:.4f}"])
    return formatting.markdown_table(head, cells)

  def __str__(self) -> str:
    return self.table(markdown=True)

  def per_example_columns(self) -> dict[str, np.ndarray]:
    """{"mia_auc_<attack>": [N] per-example vulnerability} for a per-example CSV/table."""
    return {f"mia_auc_{name}": r.per_example_auc for name, r in self.attacks.items()}

  def to_dict(self, per_example: bool = False) -> dict:
    """A JSON-ready dict (NaN -> None, inf kept); per-example arrays only with
    ``per_example=True``."""
    attacks = {}
    for name, r in self.attacks.items():
      d = {"auc": r.auc, "balanced_accuracy": r.balanced_accuracy,
           "tpr_at_fpr": {f"{f:g}": v for f, v in r.tpr_at_fpr.items()},
           "num_members": r.num_members, "num_nonmembers": r.num_nonmembers,
           "seconds": r.seconds, "roc": {"fpr": r.fpr, "tpr": r.tpr},
           "per_target": r.per_target}
      if per_example:
        d["per_example_auc"] = r.per_example_auc
      attacks[name] = d
    out = {
        "format": "memjax.attack_results/1", "num_models": self.num_models,
        "num_examples": self.num_examples, "num_population": self.num_population,
        "targets": self.targets, "fprs": list(self.fprs), "timings": self.timings,
        "attacks": attacks}
    if self.privacy_audit is not None:
      out["privacy_audit"] = self.privacy_audit
    return formatting.jsonable(out, inf_as_null=False)  # attacks.json: inf stays Infinity

  def to_json(self, path: str | None = None, *, per_example: bool = False) -> str:
    """The results as JSON (NaN written as null); also written to ``path`` when given."""
    text = json.dumps(self.to_dict(per_example=per_example), indent=1)
    if path is not None:
      with open(path, "w") as f:
        f.write(text)
    return text


def _summarise(name: str, scores: np.ndarray, members: np.ndarray, fprs, seconds: float,
               return_scores: bool) -> AttackResult:
  pooled = roc_lib.roc_summary(scores, members, fprs=fprs)
  per_target = roc_lib.roc_metrics(scores, members, axis=1, fprs=fprs)
  per_example = roc_lib.roc_metrics(scores, members, axis=0, fprs=())["auc"]
  return AttackResult(
      name=name, auc=pooled["auc"], balanced_accuracy=pooled["balanced_accuracy"],
      tpr_at_fpr={f: pooled[f"tpr@{f:g}"] for f in fprs}, fpr=pooled["fpr"], tpr=pooled["tpr"],
      num_members=pooled["num_members"], num_nonmembers=pooled["num_nonmembers"],
      per_target=per_target, per_example_auc=per_example, seconds=seconds,
      scores=scores if return_scores else None)


# ----------------------------------------------------------------------------------------------
# evaluate_attacks
# ----------------------------------------------------------------------------------------------


def evaluate_attacks(train_stats, keep, *, test_stats=None,
                     attacks: Sequence[str] = DEFAULT_ATTACKS, max_targets: int | None = None,
                     fprs: Sequence[float] = roc_lib.DEFAULT_FPRS, rmia_gamma: float = 1.0,
                     rmia_offline_a: float = 0.3, return_scores: bool = False) -> AttackResults:
  """Leave-one-model-out evaluation of membership inference attacks over an ensemble.

  Every model t in turn (the first ``max_targets`` models) is the target; the other M - 1
  models are its shadow / reference models (but see "rmia_privacy_meter"), and the members of
  t are {i : keep[t, i]}. Scores equal calling the single-target functions on each target
  (tested), but are computed vectorised across targets: per example and query, the M
  statistics are sorted once within their IN and OUT groups, so removing the target's own
  value from a median is an O(1) index shift and from a mean / variance an O(1) update (RMIA:
  exclusive prefix/suffix log-sum-exp over models); targets are processed in batches that
  bound memory.

  Attacks (names; see :func:`lira`, :func:`rmia`, :func:`loss_attack` for the formulas):
    "lira_online", "lira_online_fixed": online LiRA, per-example / fixed variance.
    "lira_offline", "lira_offline_fixed": offline LiRA, the paper's one-sided test.
    "lira_offline_two_sided", "lira_offline_two_sided_fixed": the reference code's offline test.
    "rmia": online RMIA with gamma = rmia_gamma and Pr(x) = (Pr_IN(x) + Pr_OUT(x)) / 2, the
      means over the target's IN and OUT reference models weighted equally (:func:`rmia` with
      ``balance_in_out=True``), not the pooled mean over all M - 1 (rmia's default, and this
      evaluation's until it changed; its RMIA figures were higher). The pooled mean is biased
      here: a member of the target leaves one IN model fewer among the references, which
      lowers Pr(x) and raises the member's score (a non-member, one OUT model fewer), so the
      target's own membership leaked into its score. Equal weights give Pr(x) the same
      expectation whatever the target's membership. (LiRA's leave-one-out fits already keep
      IN and OUT apart.)
    "rmia_offline": offline RMIA with a = rmia_offline_a (OUT reference models only: no such
      bias).
    "rmia_privacy_meter": ml_privacy_meter's offline RMIA (:func:`rmia` with
      ``variant="privacy_meter"``, ``offline_a="tune"``) as its run_mia.py runs it: target t's
      paired model is t + 1 for even t and t - 1 for odd t (the last model of an odd M: t - 1),
      its reference models the first 2k of the other M - 2 models, k = (M - 2) // 2, and a is
      tuned per target on the paired model (the values: per_target["offline_a"]); gamma = 1
      (rmia_gamma does not apply). Needs M >= 4; not among the defaults. A loop over targets.
      Meaningful only on ml_privacy_meter's design, models 2j and 2j + 1 trained on
      complementary halves (:func:`memjax.proxies.complementary_halves`), where every example
      is OUT for exactly k of the reference models; with any other keep mask (a warning says
      so) the k largest OUT-masked probabilities mix in zeros or drop OUT models depending on
      the target's own membership, and the figures are biased, possibly below chance.
    The RMIA attacks need ``test_stats`` (the population); without it they are skipped with a
    warning. Pr(x | theta) is the mean over queries of sigmoid(stat).
    "loss": the loss threshold on the first query, loss = softplus(-stat[..., 0]).

  Args:
    train_stats: [M, N, A] float, LiRA statistics (:func:`lira_statistic`) of every model on
      every query of every training example (records' ``train_lira``).
    keep: [M, N] bool, keep[m, i] = model m trained on example i.
    test_stats: optional [M, Z, A'] float, the same statistics on population points that no
      model trained on (records' ``test_lira``); used by RMIA.
    attacks: names from :data:`ATTACKS`.
    max_targets: use only the first max_targets models as targets (all models still serve as
      shadows of the others); None = all M.
    fprs: FPR budgets for the TPR-at-FPR metrics.
    rmia_gamma: RMIA's likelihood-ratio threshold gamma ("rmia", "rmia_offline").
    rmia_offline_a: RMIA's offline coefficient a (only for "rmia_offline").
    return_scores: keep every attack's [T, N] scores (float64) in the results.

  Returns:
    :class:`AttackResults`.
  """
  stats = _float_array("train_stats", train_stats, 3, "[M, N, A]")
  m, n, _ = stats.shape
  keep = estimators.as_keep_mask(keep, (m, n), shape_doc="[M, N] (models x training examples)",
                               against="the statistics", integers=False)
  if m < 3:
    raise MemjaxError(
        f"evaluate_attacks needs at least 3 models (a target and 2 shadows); got {m}.")
  attacks = tuple(attacks)
  unknown = [a for a in attacks if a not in ATTACKS]
  if unknown or not attacks:
    raise MemjaxError(f"evaluate_attacks: unknown attack(s) {unknown}; choose from {ATTACKS}.")
  if test_stats is not None:
    test_stats = _float_array("test_stats", test_stats, 3, "[M, Z, A]")
    if test_stats.shape[0] != m or test_stats.shape[1] == 0:
      raise MemjaxError(
          f"test_stats has shape {test_stats.shape}; it needs the same M = {m} models as "
          "train_stats and at least one population example: [M, Z, A].")
  else:
    skipped = [a for a in attacks if a.startswith("rmia")]
    if skipped:
      warnings.warn(f"evaluate_attacks: {skipped} need test_stats (population points); skipped.",
                    stacklevel=2)
      attacks = tuple(a for a in attacks if not a.startswith("rmia"))
      if not attacks:
        raise MemjaxError("evaluate_attacks: RMIA needs test_stats; pass the test-split stats.")
  if max_targets is None:
    max_targets = m
  if not 1 <= int(max_targets) <= m:
    raise MemjaxError(f"max_targets must be in [1, {m}]; got {max_targets}.")
  _check_gamma_a(rmia_gamma, rmia_offline_a)
  if "rmia_privacy_meter" in attacks and m < 4:
    raise MemjaxError(f"rmia_privacy_meter needs at least 4 models (a target, its paired model "
                      f"and 2 reference models); got {m}. Train more models.")
  targets = np.arange(int(max_targets))
  members = keep[targets]
  timings: dict[str, float] = {}
  scores: dict[str, np.ndarray] = {}
  lira_names = [a for a in attacks if a in LIRA_VARIANTS]
  if lira_names:
    scores.update(_loo_lira_scores(stats, keep, targets, lira_names, timings))
  for name, a in (("rmia", None), ("rmia_offline", rmia_offline_a)):
    if name in attacks:
      t0 = time.perf_counter()
      scores[name] = _loo_rmia_scores(stats, keep, test_stats, targets, rmia_gamma, a)
      timings[name] = time.perf_counter() - t0
  if "rmia_privacy_meter" in attacks:
    if m % 2 or not np.array_equal(keep[0::2], ~keep[1::2]):
      warnings.warn(
          "evaluate_attacks: rmia_privacy_meter assumes ml_privacy_meter's design, models 2j and "
          "2j + 1 trained on complementary halves, and this keep mask is not one. Its Pr_OUT(x), "
          "the mean of the k largest OUT-masked reference probabilities, then depends on how "
          "many reference models are OUT for x, which here depends on the target's own "
          "membership: the figures are biased (even below chance). To compare with "
          "ml_privacy_meter, train with keep=memjax.proxies.complementary_halves(M, N).",
          stacklevel=2)
    t0 = time.perf_counter()
    scores["rmia_privacy_meter"], tuned_a = _loo_rmia_privacy_meter_scores(
        stats, keep, test_stats, targets)
    timings["rmia_privacy_meter"] = time.perf_counter() - t0
  if "loss" in attacks:
    t0 = time.perf_counter()
    scores["loss"] = loss_attack(loss_from_statistic(stats[targets, :, 0]))
    timings["loss"] = time.perf_counter() - t0
  t0 = time.perf_counter()
  results = {}
  for name in attacks:
    sec = timings["lira"] if name in LIRA_VARIANTS else timings[name]
    results[name] = _summarise(name, scores[name], members, tuple(fprs), sec, return_scores)
  if "rmia_privacy_meter" in results:
    results["rmia_privacy_meter"].per_target["offline_a"] = tuned_a
  timings["metrics"] = time.perf_counter() - t0
  return AttackResults(
      attacks=results, targets=targets, num_models=m, num_examples=n,
      num_population=None if test_stats is None else int(test_stats.shape[1]),
      fprs=tuple(fprs), timings=timings)


# ----------------------------------------------------------------------------------------------
# Plot
# ----------------------------------------------------------------------------------------------


def plot_roc(results: AttackResults, path: str, *, title: str | None = None) -> str:
  """Log-log ROC curves of every attack in ``results`` with the chance diagonal, saved as PNG.

  Drawn by :func:`memjax.plotting.roc_figure`, as the report's ROC (Agg canvas, no pyplot).

  Args:
    results: from :func:`evaluate_attacks`.
    path: output file (PNG).
    title: optional plot title.

  Returns:
    path.
  """
  curves, lo = [], 1.0
  for name, r in results.attacks.items():
    lo = min(lo, 1.0 / max(r.num_nonmembers, 1))
    low = r.tpr_at_fpr.get(1e-3, np.nan)
    label = f"{name} (AUC {r.auc:.3f}" + ("" if math.isnan(low) else f", TPR@0.1% {low:.1%}") + ")"
    curves.append((label, r.fpr, r.tpr))
  fig = plotting.roc_figure(curves, lo, title or f"membership inference, "
                            f"{len(results.targets)} targets, {results.num_models} models")
  plotting.save(fig, path, dpi=150)
  return path
