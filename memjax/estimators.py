"""Memorization, C-scores and influence: exact, vectorised functions of the records.

Notation: M models, N training examples, ``keep[m, i]`` True when model m trained on example i
(i is IN for m), ``correct[m, i]`` in [0, 1] (bool correctness or a probability). For example i,
IN_i = {m : keep[m, i]} and OUT_i = the other models.

* Memorization (Feldman & Zhang 2020):
  ``mem_i = mean_{m in IN_i} correct[m, i] - mean_{m in OUT_i} correct[m, i]``,
  the subsampled estimate of P(correct | trained on i) - P(correct | not trained on i).
* C-score (Jiang et al. 2021): ``cscore_i = mean_{m in OUT_i} correct[m, i]``, expected accuracy
  on i when held out; with subset-ratio groups, the mean over groups of the per-group OUT means.
* Influence (Feldman & Zhang): ``infl[i, j] = mean_{IN_i} correct_test[m, j] -
  mean_{OUT_i} correct_test[m, j]``, computed with two matmuls.

All functions take numpy or jax arrays and return float64 numpy arrays; an example without IN
(or OUT) models gets NaN. Standard errors treat the models as independent draws (each model's
subset and randomness are independent), so the standard error of a mean over n models is
``std(ddof=1) / sqrt(n)``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from memjax.errors import MemjaxError

DEFAULT_THRESHOLD = 0.25  # Feldman & Zhang's threshold for "memorized"


def as_keep_mask(keep) -> np.ndarray:
  """``keep`` as a numpy bool array; 0/1 integers are accepted, anything else raises."""
  keep = np.asarray(keep)
  if keep.dtype != bool:
    if np.issubdtype(keep.dtype, np.integer) and np.isin(keep, (0, 1)).all():
      return keep.astype(bool)
    raise MemjaxError(f"keep must be a boolean [M, N] mask; got dtype {keep.dtype}. Pass "
                      "keep.astype(bool) (True = the model trained on the example).")
  return keep


def _validate(correct, keep, correct_name: str = "correct") -> tuple[np.ndarray, np.ndarray]:
  correct, keep = np.asarray(correct), as_keep_mask(keep)
  if keep.ndim != 2:
    raise MemjaxError(f"keep must have shape [M, N]; got {keep.shape}.")
  if correct.ndim != 2 or correct.shape[0] != keep.shape[0]:
    raise MemjaxError(f"{correct_name} has shape {correct.shape} but keep has {keep.shape}; "
                      f"{correct_name} must be [M, ...] with the same number of models M.")
  correct = correct.astype(np.float64)
  if np.isnan(correct).any() or (correct < 0).any() or (correct > 1).any():
    raise MemjaxError(f"{correct_name} must hold values in [0, 1] (bool correctness or "
                      "probabilities) without NaN.")
  return correct, keep


def _masked_mean_var(values: np.ndarray, mask: np.ndarray):
  """Per-column mean, sample variance (ddof 1) and count of values[mask]. [M, N] -> 3 x [N]."""
  count = mask.sum(axis=0)
  total = np.where(mask, values, 0.0).sum(axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = total / count
    sq = np.where(mask, (values - mean) ** 2, 0.0).sum(axis=0)
    var = sq / (count - 1)
  mean = np.where(count > 0, mean, np.nan)
  var = np.where(count > 1, var, np.nan)
  return mean, var, count


def memorization(correct, keep) -> np.ndarray:
  """Feldman & Zhang memorization of each training example.

  Args:
    correct: [M, N] bool correctness (or probabilities in [0, 1]) of each model on each example.
    keep: [M, N] bool, model m trained on example i.

  Returns:
    [N] float64: mean of correct over IN models minus mean over OUT models; NaN where an
    example has no IN or no OUT model.

  >>> keep = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
  >>> correct = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], bool)
  >>> memorization(correct, keep).tolist()
  [1.0, 0.5]
  """
  correct, keep = _validate(correct, keep)
  mean_in, _, _ = _masked_mean_var(correct, keep)
  mean_out, _, _ = _masked_mean_var(correct, ~keep)
  return mean_in - mean_out


def memorization_se(correct, keep) -> np.ndarray:
  """[N] standard error of :func:`memorization`: sqrt(var_IN / n_IN + var_OUT / n_OUT).

  Sample variances (ddof 1); NaN where an example has fewer than 2 IN or 2 OUT models.
  """
  correct, keep = _validate(correct, keep)
  _, var_in, n_in = _masked_mean_var(correct, keep)
  _, var_out, n_out = _masked_mean_var(correct, ~keep)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.sqrt(var_in / n_in + var_out / n_out)


def confidence_interval(estimate, standard_error, level: float = 0.95):
  """Normal-approximation interval ``estimate +- z * se``; returns (low [N], high [N])."""
  if not 0 < level < 1:
    raise MemjaxError(f"level={level}; a confidence level lies in (0, 1), e.g. 0.95.")
  z = scipy_stats.norm.ppf(0.5 + level / 2)
  estimate, standard_error = np.asarray(estimate), np.asarray(standard_error)
  return estimate - z * standard_error, estimate + z * standard_error


def memorization_ci(correct, keep, level: float = 0.95):
  """(low [N], high [N]) normal-approximation confidence interval of :func:`memorization`."""
  return confidence_interval(memorization(correct, keep), memorization_se(correct, keep), level)


def cscore(correct, keep, groups=None) -> np.ndarray:
  """C-score (Jiang et al.): expected accuracy on each example when it is held out.

  Args:
    correct: [M, N] bool or probabilities in [0, 1].
    keep: [M, N] bool.
    groups: optional [M] ints, e.g. the subset-ratio index of each model. With groups, the
      C-score is the mean over groups of the per-group OUT means (groups where the example has
      no OUT model are skipped), i.e. an average over subset ratios as in Jiang et al.

  Returns:
    [N] float64; NaN where an example has no OUT model.

  >>> keep = np.array([[1, 0], [0, 1], [0, 0]], bool)
  >>> correct = np.array([[1, 0], [1, 1], [0, 1]], bool)
  >>> cscore(correct, keep).tolist()
  [0.5, 0.5]
  """
  correct, keep = _validate(correct, keep)
  if groups is None:
    return _masked_mean_var(correct, ~keep)[0]
  groups = _validate_groups(groups, keep.shape[0])
  means = np.stack([_masked_mean_var(correct[groups == g], ~keep[groups == g])[0]
                    for g in np.unique(groups)])
  with np.errstate(invalid="ignore"):
    return _nanmean_or_nan(means)


def cscore_se(correct, keep, groups=None) -> np.ndarray:
  """[N] standard error of :func:`cscore` (with groups: of the mean of per-group means)."""
  correct, keep = _validate(correct, keep)
  if groups is None:
    _, var, n = _masked_mean_var(correct, ~keep)
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.sqrt(var / n)
  groups = _validate_groups(groups, keep.shape[0])
  variances = []
  for g in np.unique(groups):
    _, var, n = _masked_mean_var(correct[groups == g], ~keep[groups == g])
    with np.errstate(invalid="ignore", divide="ignore"):
      variances.append(var / n)
  variances = np.stack(variances)
  present = np.isfinite(variances)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.sqrt(np.where(present, variances, 0).sum(0)) / present.sum(0)


def is_memorized(scores, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
  """[...] bool, same shape as ``scores``: score >= threshold; NaN scores (no IN or no OUT
  model) are never memorized."""
  return np.nan_to_num(np.asarray(scores), nan=-np.inf) >= threshold


def count_memorized(scores, threshold: float = DEFAULT_THRESHOLD) -> int:
  """Number of examples with memorization score >= threshold (NaN scores never count)."""
  return int(np.sum(is_memorized(np.asarray(scores, dtype=np.float64), threshold)))


def influence(correct_test, keep) -> np.ndarray:
  """Feldman & Zhang influence of every training example on every test example.

  Args:
    correct_test: [M, N_test] bool (or probabilities) of each model on each test example.
    keep: [M, N] bool.

  Returns:
    [N, N_test] float64 (float32 for very large matrices is the caller's cast):
    ``infl[i, j] = mean_{m: keep[m, i]} correct_test[m, j] - mean_{m: not keep[m, i]}
    correct_test[m, j]``, computed as ``keep.T @ c / n_in - (~keep).T @ c / n_out``.
  """
  correct_test, keep = _validate(correct_test, keep, "correct_test")
  keep_f = keep.astype(np.float64)
  n_in = keep_f.sum(axis=0)[:, None]
  n_out = keep.shape[0] - n_in
  total = correct_test.sum(axis=0)[None, :]
  sum_in = keep_f.T @ correct_test
  with np.errstate(invalid="ignore", divide="ignore"):
    result = sum_in / n_in - (total - sum_in) / n_out
  return np.where((n_in > 0) & (n_out > 0), result, np.nan)


def _validate_groups(groups, num_models: int) -> np.ndarray:
  groups = np.asarray(groups)
  if groups.shape != (num_models,) or not np.issubdtype(groups.dtype, np.integer):
    raise MemjaxError(f"groups must be [M]={num_models} integers (the group of each model); "
                      f"got shape {groups.shape} and dtype {groups.dtype}.")
  return groups


def _nanmean_or_nan(a: np.ndarray) -> np.ndarray:
  present = np.isfinite(a)
  count = present.sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count > 0, np.where(present, a, 0).sum(0) / count, np.nan)
