"""ROC curves and the membership-inference metrics read off them.

Convention: a LARGER score means "more likely a member" (the positive class). The ROC curve is
traced by lowering a threshold tau over the distinct scores; at each tau,

  TPR(tau) = #{members with score >= tau} / #members
  FPR(tau) = #{non-members with score >= tau} / #non-members.

Tied scores move together (one point per distinct score), exactly as
``sklearn.metrics.roc_curve(..., drop_intermediate=False)``. Everything here is vectorised numpy;
:func:`roc_metrics` evaluates many curves at once (one per row), with one sort in total.

Example:

  >>> import numpy as np
  >>> from memjax import roc
  >>> scores = np.array([0.1, 0.4, 0.35, 0.8])
  >>> is_member = np.array([False, False, True, True])
  >>> fpr, tpr, thresholds = roc.roc_curve(scores, is_member)
  >>> fpr.tolist(), tpr.tolist()
  ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
  >>> float(roc.auc(fpr, tpr))
  0.75
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from memjax.errors import MemjaxError

__all__ = ["DEFAULT_FPRS", "auc", "balanced_accuracy", "roc_curve", "roc_metrics", "roc_summary",
           "thin_curve", "tpr_at_fpr"]

DEFAULT_FPRS = (1e-2, 1e-3, 1e-4)


def _as_labels(name: str, is_member) -> np.ndarray:
  """is_member as a bool array; accepts bool or integer 0/1 arrays."""
  y = np.asarray(is_member)
  if y.dtype == bool:
    return y
  if np.issubdtype(y.dtype, np.integer) and np.all((y == 0) | (y == 1)):
    return y.astype(bool)
  raise MemjaxError(
      f"{name} must be a boolean array (True = member); got dtype {y.dtype}. "
      "Pass a bool mask, or 0/1 integers.")


def _as_scores(name: str, scores) -> np.ndarray:
  s = np.asarray(scores)
  if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
    raise MemjaxError(f"{name} must be a real-valued array; got dtype {s.dtype}.")
  s = s.astype(np.float64, copy=False)
  if np.isnan(s).any():
    raise MemjaxError(
        f"{name} contains {int(np.isnan(s).sum())} NaN values; an ROC curve needs every score "
        "to be comparable. Drop or replace the NaN scores first.")
  return s


def roc_curve(scores, is_member) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """ROC curve of a membership score, one point per distinct score.

  For the distinct scores tau_1 > tau_2 > ... > tau_P (thresholds), point k is
  FPR_k = #{non-members: s >= tau_k} / #non-members and TPR_k = #{members: s >= tau_k} / #members,
  preceded by the point (0, 0) at threshold +inf. Same output as
  ``sklearn.metrics.roc_curve(is_member, scores, drop_intermediate=False)``.

  Args:
    scores: [K] float, attack scores, larger = more likely a member. +-inf allowed, NaN not.
    is_member: [K] bool (or 0/1 int), the true membership of each score.

  Returns:
    (fpr, tpr, thresholds), each [P + 1] float64: fpr and tpr non-decreasing from 0 to 1,
    thresholds strictly decreasing, thresholds[0] = +inf.

  Raises:
    MemjaxError: shapes differ, NaN scores, or one of the classes is empty.
  """
  s = _as_scores("scores", scores)
  y = _as_labels("is_member", is_member)
  if s.ndim != 1 or s.shape != y.shape:
    raise MemjaxError(
        f"roc_curve needs 1-D scores and is_member of the same length; got shapes {s.shape} "
        f"and {y.shape}. Flatten both (e.g. scores.ravel(), is_member.ravel()).")
  n_pos = int(y.sum())
  n_neg = y.size - n_pos
  if n_pos == 0 or n_neg == 0:
    raise MemjaxError(
        f"roc_curve needs both members and non-members; got {n_pos} members and {n_neg} "
        "non-members.")
  order = np.argsort(-s)  # order within ties is irrelevant: only run ends are read
  s_sorted = s[order]
  y_sorted = y[order]
  # Last index of each run of tied scores.
  ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
  tps = np.cumsum(y_sorted, dtype=np.int64)[ends]
  fps = (ends + 1) - tps
  fpr = np.r_[0.0, fps / n_neg]
  tpr = np.r_[0.0, tps / n_pos]
  thresholds = np.r_[np.inf, s_sorted[ends]]
  return fpr, tpr, thresholds


def auc(fpr, tpr) -> float:
  """Area under an ROC curve, trapezoidal: sum_k (fpr_k - fpr_{k-1}) (tpr_k + tpr_{k-1}) / 2.

  On the curve of :func:`roc_curve` this equals the Mann-Whitney probability
  P(s_member > s_nonmember) + P(s_member = s_nonmember) / 2.

  Args:
    fpr: [P] float, non-decreasing false-positive rates.
    tpr: [P] float, true-positive rates at the same points.

  Returns:
    The area, a float in [0, 1].
  """
  fpr = np.asarray(fpr, np.float64)
  tpr = np.asarray(tpr, np.float64)
  if fpr.shape != tpr.shape or fpr.ndim != 1:
    raise MemjaxError(f"auc needs 1-D fpr and tpr of equal length; got {fpr.shape}, {tpr.shape}.")
  if np.any(np.diff(fpr) < 0):
    raise MemjaxError("auc needs fpr sorted in non-decreasing order (as roc_curve returns it).")
  return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tpr_at_fpr(fpr, tpr, target_fpr, *, num_nonmembers: int | None = None):
  """Best TPR among the ROC points whose FPR is at most target_fpr: max{TPR_k : FPR_k <= f}.

  A threshold attack can only reach FPRs that are multiples of 1 / num_nonmembers; with fewer
  than 1 / f non-members, FPR <= f only admits the trivial point (0, 0), so the value is
  reported as NaN when num_nonmembers is given and num_nonmembers * f < 1.

  Args:
    fpr: [P] float, non-decreasing (from :func:`roc_curve`).
    tpr: [P] float, non-decreasing.
    target_fpr: float or [F] float, the FPR budget(s) f.
    num_nonmembers: optional int, number of non-members behind the curve (for the NaN rule).

  Returns:
    float (or [F] float64 for an array target_fpr).

  Example:
    >>> tpr_at_fpr([0, 0, .5, 1], [0, .5, 1, 1], [0.0, 0.6])
    array([0.5, 1. ])
  """
  fpr = np.asarray(fpr, np.float64)
  tpr = np.asarray(tpr, np.float64)
  f = np.asarray(target_fpr, np.float64)
  idx = np.searchsorted(fpr, f, side="right") - 1
  out = np.where(idx >= 0, tpr[np.maximum(idx, 0)], 0.0)
  if num_nonmembers is not None:
    out = np.where(num_nonmembers * f < 1.0 - 1e-9, np.nan, out)
  return float(out) if out.ndim == 0 else out


def balanced_accuracy(fpr, tpr) -> float:
  """Best balanced accuracy over thresholds: max_k (TPR_k + 1 - FPR_k) / 2.

  Args:
    fpr: [P] float, from :func:`roc_curve`.
    tpr: [P] float.

  Returns:
    float in [0.5, 1] for a curve that contains (0, 0).
  """
  fpr = np.asarray(fpr, np.float64)
  tpr = np.asarray(tpr, np.float64)
  return float(np.max((tpr + 1.0 - fpr) / 2.0))


def roc_metrics(scores, is_member, *, axis: int = -1,
                fprs: Sequence[float] = DEFAULT_FPRS) -> dict[str, np.ndarray]:
  """AUC, balanced accuracy and TPR at fixed FPRs of many ROC curves at once.

  Each slice along ``axis`` is one curve (e.g. ``axis=-1`` on [T, N] scores: one curve per
  target model; ``axis=0``: one curve per example, across target models). The values equal
  :func:`auc`, :func:`balanced_accuracy` and :func:`tpr_at_fpr` (with ``num_nonmembers``) applied
  to :func:`roc_curve` of each slice; slices without members or without non-members get NaN.

  Args:
    scores: [..., K, ...] float, larger = member. No NaN.
    is_member: same shape, bool.
    axis: the axis of length K along which each curve runs.
    fprs: the FPR budgets f for the "tpr@f" entries.

  Returns:
    dict with keys "auc", "balanced_accuracy", "tpr@{f:g}" for f in fprs, "num_members",
    "num_nonmembers"; each an array of the input shape without ``axis`` (float64; counts int64).
  """
  s = _as_scores("scores", scores)
  y = _as_labels("is_member", is_member)
  if s.shape != y.shape or s.ndim == 0:
    raise MemjaxError(
        f"roc_metrics needs scores and is_member of the same shape; got {s.shape} and {y.shape}.")
  s = np.moveaxis(s, axis, -1)
  y = np.moveaxis(y, axis, -1)
  batch_shape = s.shape[:-1]
  k = s.shape[-1]
  s = s.reshape(-1, k)
  y = y.reshape(-1, k)
  if s.size == 0:
    raise MemjaxError(f"roc_metrics got an empty array of shape {batch_shape + (k,)}.")
  rows = max(1, _CHUNK_ELEMENTS // k)
  parts = [_roc_metrics_rows(s[i:i + rows], y[i:i + rows], fprs) for i in range(0, len(s), rows)]
  out = {key: np.concatenate([p[key] for p in parts]).reshape(batch_shape) for key in parts[0]}
  return out


_CHUNK_ELEMENTS = 1 << 21  # rows of roc_metrics are processed in chunks of ~2M scores


def _roc_metrics_rows(s: np.ndarray, y: np.ndarray, fprs) -> dict[str, np.ndarray]:
  """roc_metrics on [R, K] scores and labels, one curve per row (one sort per row)."""
  k = s.shape[1]
  order = np.argsort(-s, axis=1)
  s_sorted = _take_last(s, order)
  y_sorted = _take_last(y, order)
  del order
  ctp = np.cumsum(y_sorted, axis=1, dtype=np.int64)
  cfp = np.arange(1, k + 1, dtype=np.int64)[None, :] - ctp
  n_pos = ctp[:, -1:]
  n_neg = cfp[:, -1:]
  # A point of the curve sits at the last element of each run of tied scores.
  valid = np.ones_like(y_sorted)
  valid[:, :-1] = s_sorted[:, 1:] != s_sorted[:, :-1]
  with np.errstate(invalid="ignore", divide="ignore"):
    tpr = ctp / n_pos
    fpr = cfp / n_neg
  # Previous curve point of each position (-1: the origin).
  pos = np.where(valid, np.arange(k)[None, :], -1)
  prev = np.maximum.accumulate(pos, axis=1)
  prev = np.concatenate([np.full((prev.shape[0], 1), -1), prev[:, :-1]], axis=1)
  prev_c = np.maximum(prev, 0)
  tpr_prev = np.where(prev >= 0, _take_last(tpr, prev_c), 0.0)
  fpr_prev = np.where(prev >= 0, _take_last(fpr, prev_c), 0.0)
  area = np.where(valid, (fpr - fpr_prev) * (tpr + tpr_prev) / 2, 0.0).sum(axis=1)
  bal = np.maximum(np.where(valid, (tpr + 1.0 - fpr) / 2, 0.5).max(axis=1), 0.5)
  defined = (n_pos[:, 0] > 0) & (n_neg[:, 0] > 0)
  out = {
      "auc": np.where(defined, area, np.nan),
      "balanced_accuracy": np.where(defined, bal, np.nan),
  }
  for f in fprs:
    best = np.where(valid & (fpr <= f), tpr, 0.0).max(axis=1)
    enough = n_neg[:, 0] * f >= 1.0 - 1e-9
    out[f"tpr@{f:g}"] = np.where(defined & enough, best, np.nan)
  out["num_members"] = n_pos[:, 0]
  out["num_nonmembers"] = n_neg[:, 0]
  return out


def _take_last(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
  """np.take_along_axis(a, idx, axis=-1), idx with a's leading shape; flat indices (faster)."""
  k = a.shape[-1]
  rows = np.arange(a.size // k, dtype=np.int64).reshape(a.shape[:-1] + (1,)) * k
  return np.take(a.reshape(-1), idx + rows)


def _allowed_false_positives(fprs: np.ndarray, num_neg: int) -> np.ndarray:
  """Largest k in [0, num_neg] with k / num_neg <= f (the float comparison roc_curve's fpr uses)."""
  k = np.clip(np.floor(fprs * num_neg).astype(np.int64), 0, num_neg)
  k = np.where((k < num_neg) & ((k + 1) / num_neg <= fprs), k + 1, k)
  return np.where((k > 0) & (k / num_neg > fprs), k - 1, k)


def roc_summary(scores, is_member, *, fprs: Sequence[float] = DEFAULT_FPRS,
                curve_points: int = 2000) -> dict:
  """Metrics of one pooled ROC curve from two sorts, without building the full curve.

  For millions of scores (every target x every example) this is several times faster than
  :func:`roc_curve` and gives the same numbers (tested):

    auc               = (1 / (P Nn)) sum_{members j} (#{non-members < s_j} + #{= s_j} / 2)
    balanced_accuracy = max(1/2, max_tau (TPR + 1 - FPR) / 2); the maximum is reached at a
                        threshold tau equal to a member's score, so only those are evaluated
    tpr@f             = #{members > v_f} / P, v_f the (k + 1)-th largest non-member score and
                        k the largest count with k / Nn <= f (NaN when Nn * f < 1)

  Args:
    scores: [...] float, larger = member. No NaN.
    is_member: same shape, bool.
    fprs: FPR budgets f for the "tpr@f" entries.
    curve_points: the ROC curve is returned at this many log-spaced FPRs (see thin_curve).

  Returns:
    dict: "auc", "balanced_accuracy" (floats), "tpr@{f:g}" (floats), "fpr", "tpr" ([<=
    curve_points + 1] float64, the step curve TPR(f) = max{TPR : FPR <= f} at log-spaced f,
    from (0, 0)), "num_members", "num_nonmembers" (ints).
  """
  s = _as_scores("scores", scores)
  y = _as_labels("is_member", is_member)
  if s.shape != y.shape:
    raise MemjaxError(
        f"roc_summary needs scores and is_member of the same shape; got {s.shape} and {y.shape}.")
  s, y = s.reshape(-1), y.reshape(-1)
  pos = np.sort(s[y])
  neg = np.sort(s[~y])
  n_pos, n_neg = len(pos), len(neg)
  if n_pos == 0 or n_neg == 0:
    raise MemjaxError(
        f"roc_summary needs both members and non-members; got {n_pos} members and {n_neg} "
        "non-members.")
  below = np.searchsorted(neg, pos, side="left")  # non-members strictly below each member
  tied = np.searchsorted(neg, pos, side="right") - below
  area = (below.sum(dtype=np.float64) + 0.5 * tied.sum(dtype=np.float64)) / (n_pos * n_neg)
  starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
  first = np.repeat(starts, np.diff(np.r_[starts, n_pos]))  # first index of each member's value
  gap = (n_pos - first) / n_pos - (n_neg - below) / n_neg  # TPR - FPR at tau = member score

  def tpr_at(f):
    k = _allowed_false_positives(np.asarray(f, np.float64), n_neg)
    v = neg[np.clip(n_neg - 1 - k, 0, n_neg - 1)]
    t = (n_pos - np.searchsorted(pos, v, side="right")) / n_pos
    return np.where(k >= n_neg, 1.0, t)

  out = {"auc": float(area), "balanced_accuracy": float(max(0.5, (1.0 + gap.max()) / 2))}
  for f in fprs:
    out[f"tpr@{f:g}"] = float(tpr_at(f)) if n_neg * f >= 1.0 - 1e-9 else float("nan")
  grid = np.unique(np.r_[np.geomspace(1.0 / n_neg, 1.0, max(curve_points - 1, 1)), 1.0])
  out["fpr"] = np.r_[0.0, grid]
  out["tpr"] = np.r_[0.0, tpr_at(grid)]
  out["num_members"] = n_pos
  out["num_nonmembers"] = n_neg
  return out


def thin_curve(fpr, tpr, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
  """A shorter ROC curve for storage and plotting, exact at log-spaced FPRs.

  Keeps the curve as is when it has at most ``max_points`` points; otherwise returns the step
  curve evaluated at ``max_points`` FPR values log-spaced from the smallest non-zero FPR to 1
  (TPR(f) = max{TPR_k : FPR_k <= f}, as :func:`tpr_at_fpr`), preceded by (0, 0).

  Args:
    fpr: [P] float, non-decreasing.
    tpr: [P] float.
    max_points: maximum number of points returned.

  Returns:
    (fpr, tpr), each [<= max_points + 1] float64.
  """
  fpr = np.asarray(fpr, np.float64)
  tpr = np.asarray(tpr, np.float64)
  if fpr.size <= max_points:
    return fpr, tpr
  lo = fpr[fpr > 0].min()
  grid = np.unique(np.r_[np.geomspace(lo, 1.0, max_points - 1), 1.0])
  return np.r_[0.0, grid], np.r_[0.0, tpr_at_fpr(fpr, tpr, grid)]
