"""Memorization, C-scores and influence: exact, vectorised functions of the records.

Notation: M models, N training examples, ``keep[m, i]`` True when model m trained on example i
(i is IN for m), ``values[m, i]`` a performance measure of model m on example i: bool
correctness (the usual case, ``records.correct``), a probability, or any finite real number such
as the true-class log-probability, a margin or a per-token log-likelihood. For example i,
IN_i = {m : keep[m, i]} and OUT_i = the other models; n_in and n_out are their sizes.

* Counterfactual memorization (Zhang et al. 2021; the survey's Definition 3): for a performance
  measure ``values``, ``mem_i = mean_{m in IN_i} values[m, i] - mean_{m in OUT_i} values[m, i]``,
  the subsampled estimate of E[values | trained on i] - E[values | not trained on i].
* Memorization (Feldman & Zhang 2020) is the special case of 0/1 correctness:
  P(correct | trained on i) - P(correct | not trained on i), a difference of two proportions.
* C-score (Jiang et al. 2021): ``cscore_i = mean_{m in OUT_i} values[m, i]``, the expected
  accuracy (or measure) on i when held out; with subset-ratio groups, the mean over groups of
  the per-group OUT means.
* Influence (Feldman & Zhang): ``infl[i, j] = mean_{IN_i} values_test[m, j] -
  mean_{OUT_i} values_test[m, j]``, computed with two matmuls.

All functions take numpy or jax arrays (bool, integer or float) and return float64 numpy arrays;
an example without IN (or OUT) models gets NaN. Non-finite values (NaN, inf) are rejected:
mask or clip them first. Standard errors treat the models as independent draws (each model's
subset and randomness are independent), so the standard error of a mean over n models is
``std(ddof=1) / sqrt(n)``, and that of a memorization score is the unpooled (Welch) one,
``se_i = sqrt(s_in^2 / n_in + s_out^2 / n_out)`` with sample variances s^2 (ddof 1).

Confidence intervals (:func:`memorization_ci`) depend on the values:

* binary values (every value 0 or 1: bool correctness): the normal-approximation interval
  ``mem_i +- z * se_i``, z the normal quantile (1.96 at 95%);
* any other (real) values: the Welch t interval ``mem_i +- t_{df_i} * se_i``, t the Student t
  quantile with Welch-Satterthwaite degrees of freedom
  ``df_i = (a + b)^2 / (a^2 / (n_in - 1) + b^2 / (n_out - 1))``, ``a = s_in^2 / n_in``,
  ``b = s_out^2 / n_out`` (as ``scipy.stats.ttest_ind(..., equal_var=False)``); it is accurate
  for roughly Gaussian measures and wider than the normal interval when there are few models.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from memjax.errors import MemjaxError

DEFAULT_THRESHOLD = 0.25  # Feldman & Zhang's threshold for "memorized"


def as_keep_mask(keep, shape: tuple[int, int] | None = None, *, name: str = "keep",
                 shape_doc: str = "[M, N]", against: str = "the values",
                 integers: bool = True) -> np.ndarray:
  """The one validator of keep masks: ``keep`` as a numpy bool array, checked.

  Args:
    keep: [M, N] bool, True where model m trained on example i (numpy or jax).
    shape: the (M, N) it must have; None checks no shape.
    name: the argument's name, for messages (``keep``, ``shadow_keep``, ``ref_keep``).
    shape_doc: its shape as messages write it, e.g. ``"[M, N]"``.
    against: what the shape must match, for messages (``"the statistics"``, ``"the history"``).
    integers: accept 0/1 integers (cast to bool); False accepts bool only.

  Returns:
    ``keep`` as a bool numpy array (of ``shape`` when given).

  Raises:
    MemjaxError: another dtype, integers other than 0/1, or the wrong shape.

  >>> as_keep_mask([[1, 0], [0, 1]]).tolist()
  [[True, False], [False, True]]
  """
  keep = np.asarray(keep)
  if keep.dtype != bool:
    if integers and np.issubdtype(keep.dtype, np.integer) and np.isin(keep, (0, 1)).all():
      keep = keep.astype(bool)
    else:
      what = (" with values other than 0 and 1"
              if integers and np.issubdtype(keep.dtype, np.integer) else "")
      raise MemjaxError(
          f"{name} must be a boolean {shape_doc} mask (True = the model trained on the example)"
          f"{', or 0/1 integers' if integers else ''}; got dtype {keep.dtype}{what}. If it is a "
          f"0/1 mask pass {name}.astype(bool); if it lists example indices, build the mask "
          "first.")
  if shape is not None and keep.shape != tuple(shape):
    raise MemjaxError(
        f"{name} has shape {keep.shape} but must be {shape_doc} = {tuple(shape)} to match "
        f"{against} (same models in the same order, same examples); pass the mask of the same "
        "run.")
  return keep


def _finite_float(values: np.ndarray, name: str, axes: tuple[str, ...]) -> np.ndarray:
  """``values`` as float64, or a MemjaxError naming the first non-finite entry by ``axes``."""
  if np.iscomplexobj(values):
    raise MemjaxError(f"{name} has complex dtype {values.dtype}; pass a real measure (e.g. "
                      "np.abs or the real part).")
  try:
    values = values.astype(np.float64)
  except (TypeError, ValueError) as e:
    raise MemjaxError(f"{name} must hold numbers (bool, integer or float); got dtype "
                      f"{values.dtype} ({e}).") from None
  finite = np.isfinite(values)
  if not finite.all():
    first = np.argwhere(~finite)[0]
    where = ", ".join(f"{a} {int(j)}" for a, j in zip(axes, first))
    raise MemjaxError(
        f"{name} has {values.size - int(finite.sum())} non-finite values (NaN or inf), the "
        f"first at {where} ({values[tuple(first)]}); the estimators need finite values. Drop "
        "those models or examples (e.g. a diverged model: values[ok], keep[ok]), or clip the "
        "measure to a finite range (np.clip, or np.nan_to_num for log-probabilities of 0).")
  return values


def _validate(values, keep, name: str = "values",
              column: str = "example") -> tuple[np.ndarray, np.ndarray]:
  values, keep = np.asarray(values), as_keep_mask(keep)
  if keep.ndim != 2:
    raise MemjaxError(f"keep must have shape [M, N]; got {keep.shape}.")
  if values.ndim != 2 or values.shape[0] != keep.shape[0]:
    raise MemjaxError(f"{name} has shape {values.shape} but keep has {keep.shape}; "
                      f"{name} must be [M, ...] with the same number of models M.")
  return _finite_float(values, name, ("model", column)), keep


def _is_binary(values: np.ndarray) -> bool:
  """True when every value is 0 or 1 (correctness): the normal interval applies."""
  return bool(np.all((values == 0) | (values == 1)))


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


def memorization(values, keep) -> np.ndarray:
  """Memorization of each training example: IN mean minus OUT mean of a performance measure.

  With bool correctness this is Feldman & Zhang memorization; with any other measure (a
  probability, log-probability, margin, per-token log-likelihood) it is counterfactual
  memorization (Zhang et al. 2021), in the measure's units.

  Args:
    values: [M, N] bool correctness, or integer or float values of a measure, of each model on
      each example; all finite.
    keep: [M, N] bool, model m trained on example i.

  Returns:
    [N] float64: mean of values over IN models minus mean over OUT models; NaN where an
    example has no IN or no OUT model.

  >>> keep = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
  >>> correct = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], bool)
  >>> memorization(correct, keep).tolist()
  [1.0, 0.5]
  >>> log_prob = np.array([[-0.1, -2.0], [-0.3, -0.5], [-2.0, -0.5], [-1.0, -1.5]])
  >>> memorization(log_prob, keep).round(3).tolist()
  [1.3, 1.25]
  """
  values, keep = _validate(values, keep)
  mean_in, _, _ = _masked_mean_var(values, keep)
  mean_out, _, _ = _masked_mean_var(values, ~keep)
  return mean_in - mean_out


def _welch(values: np.ndarray, keep: np.ndarray):
  """(estimate, Welch standard error, Welch-Satterthwaite df), each [N], of validated input.

  The df is NaN where the SE is (fewer than 2 IN or 2 OUT models) and inf where both sample
  variances are 0 (the interval is then the point itself).
  """
  mean_in, var_in, n_in = _masked_mean_var(values, keep)
  mean_out, var_out, n_out = _masked_mean_var(values, ~keep)
  with np.errstate(invalid="ignore", divide="ignore"):
    a, b = var_in / n_in, var_out / n_out
    se = np.sqrt(var_in / n_in + var_out / n_out)
    df = (a + b) ** 2 / (a ** 2 / (n_in - 1) + b ** 2 / (n_out - 1))
  df = np.where(a + b == 0, np.inf, df)
  return mean_in - mean_out, se, df


def memorization_se(values, keep) -> np.ndarray:
  """[N] standard error of :func:`memorization`: sqrt(var_IN / n_IN + var_OUT / n_OUT).

  The unpooled (Welch) standard error, for binary and real values alike. Sample variances
  (ddof 1); NaN where an example has fewer than 2 IN or 2 OUT models.

  Args:
    values: [M, N] bool, integer or float, finite (as in :func:`memorization`).
    keep: [M, N] bool.
  """
  values, keep = _validate(values, keep)
  return _welch(values, keep)[1]


def confidence_interval(estimate, standard_error, level: float = 0.95, df=None):
  """Interval ``estimate +- q * se``; returns (low [N], high [N]).

  Args:
    estimate, standard_error: [N] arrays.
    level: confidence level in (0, 1).
    df: None for the normal quantile q (the default); else [N] (or scalar) degrees of freedom
      of a Student t quantile, e.g. the Welch-Satterthwaite df of a difference of means.
  """
  if not 0 < level < 1:
    raise MemjaxError(f"level={level}; a confidence level lies in (0, 1), e.g. 0.95.")
  if df is None:
    q = scipy_stats.norm.ppf(0.5 + level / 2)
  else:
    q = scipy_stats.t.ppf(0.5 + level / 2, np.asarray(df, np.float64))
  estimate, standard_error = np.asarray(estimate), np.asarray(standard_error)
  return estimate - q * standard_error, estimate + q * standard_error


def memorization_ci(values, keep, level: float = 0.95):
  """(low [N], high [N]) confidence interval of :func:`memorization`.

  Binary values (all 0 or 1, e.g. bool correctness): the normal-approximation interval
  ``mem +- z * se``. Real values: the Welch t interval ``mem +- t_df * se`` with
  Welch-Satterthwaite degrees of freedom per example (the interval of
  ``scipy.stats.ttest_ind(in_values, out_values, equal_var=False)``); it is the point itself
  where both sample variances are 0. NaN where the standard error is (fewer than 2 IN or OUT
  models).

  Args:
    values: [M, N] bool, integer or float, finite.
    keep: [M, N] bool.
    level: confidence level in (0, 1).
  """
  values, keep = _validate(values, keep)
  estimate, se, df = _welch(values, keep)
  return confidence_interval(estimate, se, level, df=None if _is_binary(values) else df)


def cscore(values, keep, groups=None) -> np.ndarray:
  """C-score (Jiang et al.): expected accuracy (or measure) on each example when held out.

  Args:
    values: [M, N] bool correctness, or integer or float values of a measure; finite.
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
  values, keep = _validate(values, keep)
  if groups is None:
    return _masked_mean_var(values, ~keep)[0]
  groups = _validate_groups(groups, keep.shape[0])
  means = np.stack([_masked_mean_var(values[groups == g], ~keep[groups == g])[0]
                    for g in np.unique(groups)])
  with np.errstate(invalid="ignore"):
    return _nanmean_or_nan(means)


def cscore_se(values, keep, groups=None) -> np.ndarray:
  """[N] standard error of :func:`cscore` (with groups: of the mean of per-group means).

  Args: as :func:`cscore`.
  """
  values, keep = _validate(values, keep)
  if groups is None:
    _, var, n = _masked_mean_var(values, ~keep)
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.sqrt(var / n)
  groups = _validate_groups(groups, keep.shape[0])
  variances = []
  for g in np.unique(groups):
    _, var, n = _masked_mean_var(values[groups == g], ~keep[groups == g])
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


def mean_sd(scores) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof 1) of the finite entries of ``scores``.

  Args:
    scores: [...] values, e.g. [N] memorization scores (NaN where undefined).

  Returns:
    (mean, sd): NaN, NaN without a finite entry; sd 0.0 with one.

  >>> mean_sd([0.0, 1.0, float("nan")])
  (0.5, 0.7071067811865476)
  """
  x = np.asarray(scores, np.float64)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return float("nan"), float("nan")
  return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def memorization_history(values, keep) -> np.ndarray:
  """Memorization after every evaluation, vectorised over evaluations.

  Args:
    values: [T, M, N] bool correctness per evaluation (``records.train_correct``), or integer or
      float values of a measure (finite).
    keep: [M, N] bool.

  Returns:
    [T, N] float64, row t = ``memorization(values[t], keep)`` (bit for bit for bool values; NaN
    without IN or OUT models).

  >>> keep = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
  >>> first = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], bool)
  >>> memorization_history(np.stack([first, ~first]), keep).tolist()
  [[1.0, 0.5], [-1.0, -0.5]]
  """
  c = np.asarray(values)
  k = as_keep_mask(keep)
  if c.ndim != 3 or c.shape[1:] != k.shape:
    raise MemjaxError(f"correct must be [T, M, N] matching keep [M, N]={k.shape}; got "
                      f"{c.shape}.")
  n_in = k.sum(0)
  n_out = k.shape[0] - n_in
  if c.dtype == bool:
    hits_in = (c & k).sum(1)
    hits_all = c.sum(1)
  else:
    c = _finite_float(c, "values", ("evaluation", "model", "example"))
    hits_in = np.where(k, c, 0.0).sum(1)
    hits_all = c.sum(1)
  with np.errstate(invalid="ignore", divide="ignore"):
    mem = hits_in / n_in - (hits_all - hits_in) / n_out
  return np.where((n_in > 0) & (n_out > 0), mem, np.nan)


def memorized_count_se(correct, keep, threshold: float = DEFAULT_THRESHOLD, n_boot: int = 100,
                       seed: int = 0) -> np.ndarray:
  """Bootstrap (over models) standard error of the number of memorized examples.

  Models are resampled with replacement (each model's subset and randomness are independent
  draws); every resample recomputes all scores and the count.

  Args:
    correct: [T, M, N] (or [M, N]) bool correctness.
    keep: [M, N] bool.
    threshold: score at which an example counts as memorized.
    n_boot: bootstrap resamples.
    seed: resampling seed.

  Returns:
    [T] standard errors (a float for [M, N] input).
  """
  c = np.asarray(correct, bool)
  single = c.ndim == 2
  c = c[None] if single else c
  k = as_keep_mask(keep)
  m = k.shape[0]
  rng = np.random.default_rng(seed)
  w = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot).astype(np.float32)  # [B, M]
  kf = k.astype(np.float32)
  n_in = w @ kf
  n_out = w @ (1 - kf)
  hits_in = np.einsum("bm,tmn->btn", w, (c & k).astype(np.float32))
  hits_all = np.einsum("bm,tmn->btn", w, c.astype(np.float32))
  with np.errstate(invalid="ignore", divide="ignore"):
    mem = hits_in / n_in[:, None] - (hits_all - hits_in) / n_out[:, None]
  counts = is_memorized(mem, threshold).sum(-1)  # [B, T]
  se = counts.std(0, ddof=1)
  return float(se[0]) if single else se


def null_memorized_count(correct, keep, threshold: float = DEFAULT_THRESHOLD, n_perm: int = 4,
                         seed: int = 0) -> np.ndarray:
  """Memorized count expected from estimation noise alone (a permutation null).

  Each example's IN/OUT labels are shuffled across models (its number of IN models is kept), so
  IN and OUT models no longer differ in anything but chance; the count of scores >= threshold
  is averaged over ``n_perm`` shuffles. Counts near this floor are noise, not memorization.

  Args:
    correct: [T, M, N] (or [M, N]) bool correctness.
    keep: [M, N] bool.
    threshold: memorization threshold.
    n_perm: shuffles averaged.
    seed: shuffle seed.

  Returns:
    [T] mean null counts (a float for [M, N] input).
  """
  c = np.asarray(correct, bool)
  single = c.ndim == 2
  c = c[None] if single else c
  k = as_keep_mask(keep)
  rng = np.random.default_rng(seed)
  counts = np.zeros(c.shape[0])
  for _ in range(n_perm):
    shuffled = np.take_along_axis(k, np.argsort(rng.random(k.shape), axis=0), axis=0)
    hist = memorization_history(c, shuffled)
    counts += is_memorized(hist, threshold).sum(-1)
  counts /= n_perm
  return float(counts[0]) if single else counts


def influence(values_test, keep) -> np.ndarray:
  """Feldman & Zhang influence of every training example on every test example.

  Args:
    values_test: [M, N_test] bool correctness (or integer or float values of a measure, finite)
      of each model on each test example.
    keep: [M, N] bool.

  Returns:
    [N, N_test] float64 (float32 for very large matrices is the caller's cast):
    ``infl[i, j] = mean_{m: keep[m, i]} values_test[m, j] - mean_{m: not keep[m, i]}
    values_test[m, j]``, computed as ``keep.T @ v / n_in - (~keep).T @ v / n_out``.
  """
  values_test, keep = _validate(values_test, keep, "values_test", "test example")
  keep_f = keep.astype(np.float64)
  n_in = keep_f.sum(axis=0)[:, None]
  n_out = keep.shape[0] - n_in
  total = values_test.sum(axis=0)[None, :]
  sum_in = keep_f.T @ values_test
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
