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

With several subset ratios (``groups``: the ratio group of each model), memorization, its SE and
interval, influence and the per-evaluation history are computed within each group and averaged
over the groups where the example has IN and OUT models: pooling all models would credit
memorization with the larger training sets of the IN models (IN models come more often from the
large ratios).

All functions take numpy or jax arrays (bool, integer or float) and return float64 numpy arrays;
an example without IN (or OUT) models gets NaN. Non-finite values (NaN, inf) are rejected:
mask or clip them first. Standard errors treat the models as independent draws (each model's
subset and randomness are independent), so the standard error of a mean over n models is
``std(ddof=1) / sqrt(n)``.

Standard errors (:func:`memorization_se`) and confidence intervals (:func:`memorization_ci`)
depend on the values:

* binary values (every value 0 or 1: bool correctness). Memorization is then a difference of
  two binomial proportions, x_in / n_in - x_out / n_out (x right models of n), and the
  normal-approximation (Wald) interval ``mem_i +- z * se_i`` with the plug-in SE (memjax's
  earlier interval) fails where it matters most: when every IN and every OUT model is
  right (or wrong) the SE is exactly 0 and the interval a point. With 128 IN and 128 OUT
  models its 95% interval covers the true memorization with probability 0.72 at (p_in, p_out) =
  (0.995, 0.005) and 0.12 at (0.999, 0). The interval is now Newcombe's (1998) square-and-add
  rule on the exact (Clopper-Pearson) limits of each proportion (:func:`difference_ci`, method
  "newcombe-cp"): its exact coverage (every outcome enumerated; benchmarks/interval_coverage.py)
  is at least 0.945 for n_in, n_out in {16, ..., 256} and p_in, p_out on a grid from 0 to 1
  boundaries included, where Newcombe's hybrid score interval (Wilson limits) falls to 0.84,
  Agresti-Caffo's to 0.91 and the old Wald interval to 0.02; it lies within [-1, 1]. The
  standard error is Agresti and Caffo's, ``sqrt(q_in (1 - q_in) / (n_in + 2) + q_out (1 -
  q_out) / (n_out + 2))`` with ``q = (x + 1) / (n + 2)``: close to the plug-in one with many
  models, never 0.
* any other (real) values: the unpooled (Welch) standard error
  ``se_i = sqrt(s_in^2 / n_in + s_out^2 / n_out)`` with sample variances s^2 (ddof 1), and the
  Welch t interval ``mem_i +- t_{df_i} * se_i``, t the Student t quantile with
  Welch-Satterthwaite degrees of freedom
  ``df_i = (a + b)^2 / (a^2 / (n_in - 1) + b^2 / (n_out - 1))``, ``a = s_in^2 / n_in``,
  ``b = s_out^2 / n_out`` (as ``scipy.stats.ttest_ind(..., equal_var=False)``); it is accurate
  for roughly Gaussian measures and wider than the normal interval when there are few models.
"""

from __future__ import annotations

import numpy as np

from memjax.errors import MemjaxError
# The intervals of proportions and their differences; confidence_interval, proportion_ci and
# difference_ci (and their method names) are also importable from here.
from memjax.intervals import (DEFAULT_DIFFERENCE_METHOD, DIFFERENCE_METHODS,  # noqa: F401
                              PROPORTION_METHODS, SIDE_METHOD, agresti_caffo_variance,
                              check_level, confidence_interval, difference_ci, proportion_ci,
                              square_and_add)

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


def _masked_stats(values: np.ndarray, mask: np.ndarray):
  """Per-column total, mean, sample variance (ddof 1) and count of values[mask].

  [M, N] -> 4 x [N]; the total of 0/1 values is their exact number of ones.
  """
  count = mask.sum(axis=0)
  total = np.where(mask, values, 0.0).sum(axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = total / count
    sq = np.where(mask, (values - mean) ** 2, 0.0).sum(axis=0)
    var = sq / (count - 1)
  mean = np.where(count > 0, mean, np.nan)
  var = np.where(count > 1, var, np.nan)
  return total, mean, var, count


def _masked_mean_var(values: np.ndarray, mask: np.ndarray):
  """Per-column mean, sample variance (ddof 1) and count of values[mask]. [M, N] -> 3 x [N]."""
  return _masked_stats(values, mask)[1:]


def _group_masks(groups, num_models: int) -> list:
  """Model selectors: ``[slice(None)]`` (all models) without groups, else one [M] bool mask per
  distinct group, in increasing group order."""
  if groups is None:
    return [slice(None)]
  groups = _validate_groups(groups, num_models)
  return [groups == g for g in np.unique(groups)]


def _sides(values: np.ndarray, keep: np.ndarray, groups):
  """Statistics of each example's IN and OUT models within each group, stacked over groups.

  Returns:
    (inside, outside), each a tuple (total, mean, var, count) of [G, N] arrays (G = 1 without
    groups), as :func:`_masked_stats` computes them on the models of one group.
  """
  per_group = [(_masked_stats(values[s], keep[s]), _masked_stats(values[s], ~keep[s]))
               for s in _group_masks(groups, keep.shape[0])]
  return tuple(tuple(np.stack(a) for a in zip(*side)) for side in zip(*per_group))


def _grouped_se(variances: np.ndarray, used: np.ndarray) -> np.ndarray:
  """sqrt(sum of the used groups' variances) / (number used): [G, N] -> [N].

  The standard error of a mean over the used groups of independent estimates; NaN where no group
  is used or a used group's variance is NaN.
  """
  count = used.sum(axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    se = np.sqrt(np.where(used, variances, 0.0).sum(axis=0)) / count
  return np.where(count > 0, se, np.nan)


def memorization(values, keep, groups=None) -> np.ndarray:
  """Memorization of each training example: IN mean minus OUT mean of a performance measure.

  With bool correctness this is Feldman & Zhang memorization; with any other measure (a
  probability, log-probability, margin, per-token log-likelihood) it is counterfactual
  memorization (Zhang et al. 2021), in the measure's units.

  Args:
    values: [M, N] bool correctness, or integer or float values of a measure, of each model on
      each example; all finite.
    keep: [M, N] bool, model m trained on example i.
    groups: optional [M] ints, the subset-ratio group of each model (``records.groups`` of a
      run with several ``keep_ratios``). With groups the estimate is computed within each group
      and averaged over the groups where the example has both IN and OUT models (an unweighted
      mean, as :func:`cscore` does). Pooling models of different ratios biases memorization
      whenever accuracy depends on the training-set size, since IN models come more often from
      the large ratios: with ratios 0.1, ..., 0.9 and accuracy 0.6 + 0.25 r, whatever the
      model trained on, pooled memorization averages +0.066 instead of 0. None pools all
      models.

  Returns:
    [N] float64: mean of values over IN models minus mean over OUT models (with groups, the mean
    over groups of that difference); NaN where an example has no IN or no OUT model (with
    groups: in no group has both).

  >>> keep = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
  >>> correct = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], bool)
  >>> memorization(correct, keep).tolist()
  [1.0, 0.5]
  >>> log_prob = np.array([[-0.1, -2.0], [-0.3, -0.5], [-2.0, -0.5], [-1.0, -1.5]])
  >>> memorization(log_prob, keep).round(3).tolist()
  [1.3, 1.25]
  >>> memorization(correct, keep, groups=np.array([0, 0, 1, 1])).tolist()  # 0 has no pair
  [nan, 0.5]
  """
  values, keep = _validate(values, keep)
  (_, mean_in, _, _), (_, mean_out, _, _) = _sides(values, keep, groups)
  return _nanmean_or_nan(mean_in - mean_out)


def _welch(values: np.ndarray, keep: np.ndarray, groups=None):
  """(estimate, Welch standard error, Welch-Satterthwaite df), each [N], of validated input.

  With groups: of the mean over the used groups (those with IN and OUT models) of the
  within-group differences, ``se = sqrt(sum_g s_in^2 / n_in + s_out^2 / n_out) / G`` and the
  Satterthwaite df of that sum of 2G variance terms (G = 1 without groups). The df is NaN where
  the SE is (fewer than 2 IN or 2 OUT models in a used group) and inf where every sample
  variance is 0 (the interval is then the point itself).
  """
  (_, mean_in, var_in, n_in), (_, mean_out, var_out, n_out) = _sides(values, keep, groups)
  used = (n_in > 0) & (n_out > 0)
  with np.errstate(invalid="ignore", divide="ignore"):
    a = np.where(used, var_in / n_in, 0.0)
    b = np.where(used, var_out / n_out, 0.0)
    total = a.sum(axis=0) + b.sum(axis=0)
    df = total ** 2 / (np.where(used, a ** 2 / (n_in - 1), 0.0).sum(axis=0)
                       + np.where(used, b ** 2 / (n_out - 1), 0.0).sum(axis=0))
  se = _grouped_se(a + b, used)
  df = np.where(np.isnan(se), np.nan, np.where(total == 0, np.inf, df))
  return _nanmean_or_nan(mean_in - mean_out), se, df


def memorization_se(values, keep, groups=None) -> np.ndarray:
  """[N] standard error of :func:`memorization`.

  * Binary values (all 0 or 1, e.g. bool correctness): the Agresti-Caffo standard error
    ``sqrt(q_in (1 - q_in) / (n_in + 2) + q_out (1 - q_out) / (n_out + 2))``, with
    ``q = (x + 1) / (n + 2)`` for the x right models of a side (one success and one failure
    added to each side). Unlike the plug-in (Welch) SE it is never 0 for a finite number of
    models: when every IN and every OUT model is right (or wrong) the plug-in SE is exactly 0,
    with 16 models as with 16,000. It measures precision (e.g. to rank examples); the interval
    of :func:`memorization_ci` is computed from the counts, not from this SE.
  * Real values: the unpooled (Welch) standard error ``sqrt(s_in^2 / n_in + s_out^2 / n_out)``
    with sample variances s^2 (ddof 1).

  With groups: ``sqrt(sum_g v_g) / G``, v_g the squared SE above within group g and G the
  number of groups where the example has IN and OUT models: the SE of the mean over groups of
  independent within-group estimates.

  Args:
    values: [M, N] bool, integer or float, finite (as in :func:`memorization`).
    keep: [M, N] bool.
    groups: optional [M] ints, the ratio group of each model (as in :func:`memorization`).

  Returns:
    [N] float64; NaN where an example has no IN or no OUT model (in every group), and for real
    values where a side has fewer than 2 models (in a group used by the estimate).
  """
  values, keep = _validate(values, keep)
  if not _is_binary(values):
    return _welch(values, keep, groups)[1]
  (x_in, _, _, n_in), (x_out, _, _, n_out) = _sides(values, keep, groups)
  variance = agresti_caffo_variance(x_in, n_in) + agresti_caffo_variance(x_out, n_out)
  return _grouped_se(variance, (n_in > 0) & (n_out > 0))


def memorization_ci(values, keep, level: float = 0.95, groups=None):
  """(low [N], high [N]) confidence interval of :func:`memorization`.

  * Binary values (all 0 or 1, e.g. bool correctness): :func:`difference_ci` (its default,
    Newcombe's square-and-add rule on exact Clopper-Pearson limits) of each example's counts
    x_in / n_in and x_out / n_out; within [-1, 1], and never a single point.
  * Real values: the Welch t interval ``mem +- t_df * se`` with Welch-Satterthwaite degrees of
    freedom per example (the interval of ``scipy.stats.ttest_ind(in_values, out_values,
    equal_var=False)``); it is the point itself where both sample variances are 0.

  With groups, for the mean over the G groups where the example has IN and OUT models:

  * binary values: the same square-and-add rule over the 2G proportions (Zou & Donner's MOVER
    for a linear combination), ``low = mem - sqrt(sum_g (p_in,g - l_in,g)^2 + (u_out,g -
    p_out,g)^2) / G`` and ``high`` likewise, (l, u) the Clopper-Pearson limits; G = 1 is the
    ungrouped interval. Its 95% coverage, Monte Carlo over 9 ratio groups (0.1, ..., 0.9) of 10
    to 300 models each and 18 accuracy settings from null worlds to memorized examples
    (``benchmarks/interval_coverage.py --grouped``), is 0.91 to 1.00 (0.92 or more at the
    memorized corners, e.g. (p_in, p_out) = (0.999, 0.01)). Alternatives fall lower: the same
    rule on Wilson limits to 0.86, the normal interval ``mem +- z se`` with the grouped SE of
    :func:`memorization_se` to 0.83 (small groups, accuracies near 0.5), and a normal interval
    centred on the mean of the groups' Agresti-Caffo estimates to 0 for memorized examples
    (their shrinkage toward 0 adds up over small groups).
  * real values: ``mem +- t_df * se`` with the grouped SE of :func:`memorization_se` and the
    Welch-Satterthwaite df of its 2G variance terms.

  Args:
    values: [M, N] bool, integer or float, finite.
    keep: [M, N] bool.
    level: confidence level in (0, 1).
    groups: optional [M] ints, the ratio group of each model (as in :func:`memorization`).

  Returns:
    (low, high), each [N] float64; NaN where an example has no IN or no OUT model (in every
    group), and for real values where a side has fewer than 2 models (in a used group).
  """
  check_level(level)
  values, keep = _validate(values, keep)
  if _is_binary(values):
    (x_in, _, _, n_in), (x_out, _, _, n_out) = _sides(values, keep, groups)
    return square_and_add(x_in, n_in, x_out, n_out, level,
                           SIDE_METHOD[DEFAULT_DIFFERENCE_METHOD])
  estimate, se, df = _welch(values, keep, groups)
  return confidence_interval(estimate, se, level, df=df)


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


def memorization_history(values, keep, groups=None) -> np.ndarray:
  """Memorization after every evaluation, vectorised over evaluations.

  Args:
    values: [T, M, N] bool correctness per evaluation (``records.train_correct``), or integer or
      float values of a measure (finite).
    keep: [M, N] bool.
    groups: optional [M] ints, the ratio group of each model (as in :func:`memorization`).

  Returns:
    [T, N] float64, row t = ``memorization(values[t], keep, groups)`` (bit for bit for bool
    values; NaN without IN or OUT models).

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
  if c.dtype != bool:
    c = _finite_float(c, "values", ("evaluation", "model", "example"))
  if groups is None:
    return _history(c, k)
  return _nanmean_or_nan(_history(c[:, s], k[s]) for s in _group_masks(groups, k.shape[0]))


def _history(c: np.ndarray, k: np.ndarray) -> np.ndarray:
  """[T, N] memorization of validated [T, M, N] values (bool or float64) and keep, pooled."""
  n_in = k.sum(0)
  n_out = k.shape[0] - n_in
  if c.dtype == bool:
    hits_in = (c & k).sum(1)
  else:
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


def influence(values_test, keep, groups=None) -> np.ndarray:
  """Feldman & Zhang influence of every training example on every test example.

  Args:
    values_test: [M, N_test] bool correctness (or integer or float values of a measure, finite)
      of each model on each test example.
    keep: [M, N] bool.
    groups: optional [M] ints, the ratio group of each model: the influence is then computed
      within each group and averaged over the groups where training example i has IN and OUT
      models, as :func:`memorization` does.

  Returns:
    [N, N_test] float64 (float32 for very large matrices is the caller's cast):
    ``infl[i, j] = mean_{m: keep[m, i]} values_test[m, j] - mean_{m: not keep[m, i]}
    values_test[m, j]``, computed as ``keep.T @ v / n_in - (~keep).T @ v / n_out`` (with
    groups, the mean over groups of that); NaN rows where i has no IN or no OUT model (in every
    group).
  """
  values_test, keep = _validate(values_test, keep, "values_test", "test example")
  if groups is None:
    return _influence(values_test, keep)
  return _nanmean_or_nan(_influence(values_test[s], keep[s])
                         for s in _group_masks(groups, keep.shape[0]))


def _influence(values_test: np.ndarray, keep: np.ndarray) -> np.ndarray:
  """[N, N_test] influence of validated values and keep, pooled over all their models."""
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


def _nanmean_or_nan(parts) -> np.ndarray:
  """Mean of the finite entries across ``parts`` (arrays of one shape, e.g. the rows of a [G, N]
  array or a generator of per-group results); NaN where none is finite."""
  total = count = None
  for part in parts:
    present = np.isfinite(part)
    value = np.where(present, part, 0.0)
    total = value if total is None else total + value
    count = present.astype(np.int64) if count is None else count + present
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count > 0, total / count, np.nan)
