"""Exposure of planted secrets (Carlini et al. 2019, "The Secret Sharer: Evaluating and Testing
Unintended Memorization in Neural Networks", USENIX Security).

A text canary (:func:`memjax.canaries.with_canaries`, kind "secret") is a prefix and a random
secret r from a space R of |R| = 10**digits possible secrets. A model's *log-perplexity* of a
candidate r' is the negative log-likelihood of its secret tokens given the prefix,
Px(r') = -sum log P(token | preceding tokens). memjax's records hold the mean log-likelihood
per scored token (``canary_loglik``, :func:`memjax.canaries.candidate_sequences`), which is
-Px / (the number of secret tokens): every candidate has the same number of tokens, so the order
of the candidates, and the skew-normal fit below (affine-equivariant), are the paper's.

* **Rank** of the secret: its position among all of R ordered by likelihood, 1 = the most
  likely. Here rank = 1 + the number of candidates *strictly* more likely (ties count in the
  secret's favour; the paper counts candidates at most as perplexing, so ties count against it;
  with continuous likelihoods the two agree).
* **Exposure** (the paper's Definition 4): exposure = log2 |R| - log2 rank. It lies in
  [0, log2 |R|]: log2 |R| (19.93 bits for 6 digits) when the secret is the most likely of all
  |R| candidates, 0 when it is the least likely. An exposure of e bits means the secret is about
  as likely as the best of |R| / 2**e guesses: a model that has not seen the secret has expected
  exposure about 1 bit.
* **Exact** exposure needs the likelihood of every candidate (``record["exact"]``: when
  ``candidates >= 10**digits - 1``).
* **Estimated** exposure (the paper's Section 4.3): with S < |R| - 1 candidates drawn uniformly
  from R, the distribution of their log-perplexities is fitted by a skew-normal distribution
  (``scipy.stats.skewnorm``: shape alpha, location xi, scale omega; by maximum likelihood, the
  estimate of ``scipy.stats.skewnorm.fit``, vectorised) and exposure = -log2 CDF_fit(Px(secret)),
  the fitted fraction of R at most as perplexing as the secret. The fit extrapolates, so it can
  exceed log2 |R|, and its error grows into the tail (on a skew-normal sample of 10,000: about
  0.03 bits at 2 bits of exposure, 0.4 at 10 to 14 bits). The log-CDF is computed in log space
  (a log-domain quadrature in the far left tail), so that a secret far more likely than every
  candidate gets a large finite exposure, not infinity.

>>> import numpy as np
>>> loglik = np.array([[-0.1, -2.0, -0.5, -1.0]])  # the secret, then the other 3 of |R| = 4
>>> exposure(loglik, space_size=4, exact=True)     # the most likely: log2 4 = 2 bits
array([2.])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from memjax.errors import MemjaxError

FITS = ("mle", "moments")
METHOD_EXACT, METHOD_FIT = "exact", "skew-normal fit"
_MAX_SKEWNESS = 0.99  # a skew-normal's skewness is below 0.9953 in magnitude
_TAIL_CDF = 1e-6      # below this CDF, the log-domain quadrature replaces Owen's T formula
# Gauss-Laguerre rule: sum w_i f(v_i) ~ the integral of exp(-v) f(v) over v > 0.
_LAGUERRE_NODES, _LAGUERRE_WEIGHTS = np.polynomial.laguerre.laggauss(48)


def exposure(loglik, space_size: int, exact: bool, fit: str = "mle") -> np.ndarray:
  """Exposure in bits of each secret among its candidates (see the module docstring).

  Args:
    loglik: [..., S + 1] log-likelihoods (any affine-equivalent score, e.g. mean nats per token),
      column 0 the true secret, columns 1 ... S the other candidates.
    space_size: |R|, the number of possible secrets (10**digits).
    exact: whether the columns are all of R (S + 1 == |R|): exact rank; else the skew-normal fit.
    fit: with ``exact=False``: "mle" (default; maximum likelihood, the estimate of
      ``scipy.stats.skewnorm.fit``, vectorised: :func:`skewnorm_mle`, about 1 ms per row of
      1,000 candidates) or "moments" (the skew-normal with the candidates' mean, variance and
      skewness: closed form, faster, but far off in the tail of strongly skewed samples).

  Returns:
    [...] float64 exposures; NaN where a row holds a NaN or infinite log-likelihood, or (fit)
    all its candidates are equally likely.
  """
  loglik = np.asarray(loglik, np.float64)
  if loglik.ndim < 1 or loglik.shape[-1] < 2:
    raise MemjaxError(f"loglik has shape {loglik.shape}; expected [..., S + 1] with column 0 the "
                      "secret and at least one other candidate.")
  if isinstance(space_size, bool) or not isinstance(space_size, (int, np.integer)) or (
      space_size < 2):
    raise MemjaxError(f"space_size={space_size!r}; |R|, the number of possible secrets, must be "
                      "an integer >= 2 (10**digits).")
  candidates = loglik.shape[-1] - 1
  bad = ~np.all(np.isfinite(loglik), axis=-1)
  if exact:
    if candidates + 1 != space_size:
      raise MemjaxError(f"Exact exposure needs every one of the |R| = {space_size} secrets, but "
                        f"loglik holds {candidates + 1} per row; pass exact=False to use the "
                        "skew-normal fit.")
    rank = 1 + np.sum(loglik[..., 1:] > loglik[..., :1], axis=-1)
    out = math.log2(space_size) - np.log2(rank)
  else:
    if fit not in FITS:
      raise MemjaxError(f"Unknown fit {fit!r}; choose one of {', '.join(FITS)}.")
    perplexity = -loglik  # log-perplexity up to a positive factor: lower = more likely
    alpha, loc, scale = (skewnorm_moments if fit == "moments" else skewnorm_mle)(
        perplexity[..., 1:])
    with np.errstate(invalid="ignore", divide="ignore"):
      out = -skewnorm_logcdf(perplexity[..., 0], alpha, loc, scale) / math.log(2)
  out = np.where(bad, np.nan, out)
  return np.asarray(out, np.float64)


def skewnorm_moments(samples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Method-of-moments skew-normal fit along the last axis (vectorised, closed form).

  Args:
    samples: [..., S] values.

  Returns:
    (alpha, loc, scale): [...] each, the shape, location and scale of ``scipy.stats.skewnorm``
    with the samples' mean, variance and skewness (skewness clipped to +-0.99, inside the
    family's range); scale NaN where the samples do not vary.
  """
  x = np.asarray(samples, np.float64)
  mean = x.mean(axis=-1)
  centred = x - mean[..., None]
  m2 = np.mean(centred ** 2, axis=-1)
  m3 = np.mean(centred ** 3, axis=-1)
  with np.errstate(invalid="ignore", divide="ignore"):
    skew = np.clip(np.nan_to_num(m3 / m2 ** 1.5), -_MAX_SKEWNESS, _MAX_SKEWNESS)
    g = np.abs(skew) ** (2 / 3)
    delta = np.sign(skew) * np.sqrt(np.pi / 2 * g / (g + ((4 - np.pi) / 2) ** (2 / 3)))
    alpha = delta / np.sqrt(1 - delta ** 2)
    scale = np.sqrt(m2 / (1 - 2 * delta ** 2 / np.pi))
    scale = np.where(m2 > 0, scale, np.nan)
    loc = mean - scale * delta * np.sqrt(2 / np.pi)
  return alpha, loc, scale


def skewnorm_mle(samples, iterations: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Maximum-likelihood skew-normal fit along the last axis (vectorised over rows).

  The same estimate as ``scipy.stats.skewnorm.fit`` (a test checks it), about 10x faster on
  many rows: each row is standardised, started from :func:`skewnorm_moments` (skewness clipped
  to a shape of +-3, away from the boundary), and refined by damped Newton steps
  (Levenberg-Marquardt on location, log scale and shape, with the log-likelihood's analytic
  gradient and Hessian) until a step changes no parameter by more than 1e-9.

  Args:
    samples: [..., S] values.
    iterations: the most Newton steps per row.

  Returns:
    (alpha, loc, scale): [...] each (``scipy.stats.skewnorm`` parameters); NaN for rows that
    hold a NaN or do not vary. The shape is kept within +-100 (the likelihood of a half-normal-
    like sample grows without bound in it).
  """
  x = np.asarray(samples, np.float64)
  batch = x.shape[:-1]
  rows = x.reshape(-1, x.shape[-1])
  mean = rows.mean(axis=-1)
  sd = rows.std(axis=-1)
  good = np.isfinite(mean) & (sd > 0)
  alpha = np.full(len(rows), np.nan)
  loc, scale = alpha.copy(), alpha.copy()
  if np.any(good):
    u = (rows[good] - mean[good, None]) / sd[good, None]
    a, xi, eta = _newton_skewnorm(u, iterations)
    alpha[good] = a
    loc[good] = mean[good] + sd[good] * xi
    scale[good] = sd[good] * np.exp(eta)
  return alpha.reshape(batch), loc.reshape(batch), scale.reshape(batch)


def _newton_skewnorm(u: np.ndarray, iterations: int):
  """Levenberg-Marquardt maximum likelihood of [R, S] standardised rows: (alpha, loc, log scale),
  [R] each. The log-likelihood of one value, z = (u - loc) / scale, is
  l = -log scale - z**2 / 2 + log Phi(alpha z) + const."""
  n = u.shape[-1]
  alpha, xi, scale = skewnorm_moments(u)
  alpha = np.clip(alpha, -3.0, 3.0)
  _, xi, scale = _moments_with_shape(u, alpha)
  eta = np.log(scale)
  damping = np.full(len(u), 1e-3)
  active = np.ones(len(u), bool)

  def negative_loglik(u, xi, eta, alpha):
    z = (u - xi[:, None]) * np.exp(-eta)[:, None]
    return n * eta + np.sum(z ** 2 / 2 - special.log_ndtr(alpha[:, None] * z), axis=-1)

  value = negative_loglik(u, xi, eta, alpha)
  for _ in range(iterations):
    if not np.any(active):
      break
    i = np.flatnonzero(active)
    ui, xii, etai, ai = u[i], xi[i], eta[i], alpha[i]
    omega = np.exp(etai)[:, None]
    z = (ui - xii[:, None]) / omega
    a = ai[:, None]
    v = a * z
    w = np.exp(-v ** 2 / 2 - 0.5 * math.log(2 * math.pi) - special.log_ndtr(v))  # phi / Phi
    dw = -w * (v + w)                        # d w(v) / dv
    lz, lzz = -z + a * w, -1 + a ** 2 * dw   # dl/dz, d2l/dz2
    lza, laa = w + a * z * dw, z ** 2 * dw   # d2l/dz dalpha, d2l/dalpha2
    gradient = np.stack([np.sum(-lz / omega, -1), -n + np.sum(-z * lz, -1),
                         np.sum(z * w, -1)], -1)  # of the log-likelihood: [r, 3]
    h_xx = np.sum(lzz / omega ** 2, -1)
    h_xe = np.sum((lzz * z + lz) / omega, -1)
    h_ee = np.sum(lzz * z ** 2 + lz * z, -1)
    h_xa, h_ea, h_aa = np.sum(-lza / omega, -1), np.sum(-z * lza, -1), np.sum(laa, -1)
    curvature = -np.stack([np.stack([h_xx, h_xe, h_xa], -1), np.stack([h_xe, h_ee, h_ea], -1),
                           np.stack([h_xa, h_ea, h_aa], -1)], -2)  # of the negative: [r, 3, 3]
    diagonal = np.abs(np.diagonal(curvature, axis1=-2, axis2=-1)) + 1e-12
    system = curvature + (damping[i, None] * diagonal)[:, :, None] * np.eye(3)
    with np.errstate(all="ignore"):
      step = np.linalg.solve(system, gradient[:, :, None])[:, :, 0]
    step = np.where(np.isfinite(step), step, 0.0)
    new = (xii + step[:, 0], etai + step[:, 1], np.clip(ai + step[:, 2], -100.0, 100.0))
    with np.errstate(all="ignore"):
      new_value = negative_loglik(ui, *new)
    better = np.isfinite(new_value) & (new_value <= value[i])
    xi[i] = np.where(better, new[0], xii)
    eta[i] = np.where(better, new[1], etai)
    alpha[i] = np.where(better, new[2], ai)
    value[i] = np.where(better, new_value, value[i])
    damping[i] = np.clip(np.where(better, damping[i] / 3, damping[i] * 10), 1e-12, 1e12)
    done = (better & (np.max(np.abs(step), axis=-1) < 1e-9)) | (damping[i] >= 1e12)
    active[i[done]] = False
  return alpha, xi, eta


def _moments_with_shape(u: np.ndarray, alpha: np.ndarray):
  """The location and scale that match each row's mean and variance for a given shape."""
  delta = alpha / np.sqrt(1 + alpha ** 2)
  scale = np.sqrt(u.var(axis=-1) / (1 - 2 * delta ** 2 / np.pi))
  loc = u.mean(axis=-1) - scale * delta * np.sqrt(2 / np.pi)
  return alpha, loc, scale


def skewnorm_logcdf(x, alpha, loc, scale) -> np.ndarray:
  """log CDF of the skew-normal distribution (``scipy.stats.skewnorm``), finite far in the tails.

  Where the CDF is at least 1e-6 it is Phi(z) - 2 T(z, alpha) (Owen's T, ``scipy.special``),
  z = (x - loc) / scale. Below, that difference cancels, so log CDF = log of the integral of the
  density 2 phi(t) Phi(alpha t) over t < z is computed in log space: the log density is concave,
  so with s its slope at z and t = z - v / s the integrand is exp(-v) times a smooth factor at
  most 1 that decays slowly there, which a 48-node Gauss-Laguerre rule with log-sum-exp
  integrates to about 1e-8 relative.

  Args:
    x, alpha, loc, scale: arrays that broadcast together.

  Returns:
    The log CDF, broadcast shape; NaN where scale is NaN or not positive.
  """
  x, alpha, loc, scale = np.broadcast_arrays(*(np.asarray(v, np.float64)
                                               for v in (x, alpha, loc, scale)))
  with np.errstate(invalid="ignore", divide="ignore"):
    z = (x - loc) / scale
    direct = special.ndtr(z) - 2 * special.owens_t(z, alpha)
    out = np.array(np.log(np.clip(direct, 1e-300, 1.0)), np.float64, ndmin=1).reshape(z.shape)
  tail = np.isfinite(z) & (direct < _TAIL_CDF)
  if np.any(tail):
    out[tail] = _log_left_tail(z[tail], alpha[tail])
  out[~(scale > 0) | np.isnan(z)] = np.nan
  out[np.isposinf(z) & (scale > 0)] = 0.0
  out[np.isneginf(z) & (scale > 0)] = -np.inf
  return out if out.ndim else out[()]


def _log_left_tail(z: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """log of the integral of 2 phi(t) Phi(alpha t) over t < z, for z [n] in the left tail."""
  def log_density(t, a):
    return math.log(2) - t ** 2 / 2 - 0.5 * math.log(2 * math.pi) + special.log_ndtr(a * t)

  at = alpha * z
  slope = -z + alpha * np.exp(-at ** 2 / 2 - 0.5 * math.log(2 * math.pi) - special.log_ndtr(at))
  slope = np.maximum(slope, 1e-6)
  t = z[:, None] - _LAGUERRE_NODES[None, :] / slope[:, None]  # [n, P]
  at_z = log_density(z, alpha)
  log_terms = (log_density(t, alpha[:, None]) - at_z[:, None] + _LAGUERRE_NODES
               + np.log(_LAGUERRE_WEIGHTS))
  return at_z - np.log(slope) + special.logsumexp(log_terms, axis=-1)


def canary_table(loglik, extracted, keep, record: dict[str, Any],
                 fit: str = "mle") -> dict[str, np.ndarray]:
  """One row per text canary (``DIR/canaries.csv``): its exposure and extraction when IN / OUT.

  Args:
    loglik: [M, K, S + 1] each model's log-likelihood of each canary's candidates (records'
      ``canary_loglik``; column 0 the true secret, :func:`memjax.canaries.candidate_sequences`).
    extracted: [M, K] bool, greedy decoding from the prefix gave the secret (records'
      ``canary_extracted``).
    keep: [M, N] bool, the training mask (N includes the canary rows); a model is IN for canary
      k when it trained on any copy of it (after :func:`memjax.canaries.tie_copies`: on all).
    record: the dataset's canaries record (``Dataset.canaries``, run.json ``data.canaries``).
    fit: the skew-normal fit when the record is not exact (:func:`exposure`).

  Returns:
    Columns of length K: ``canary`` (k), ``row`` (its first copy's training row), ``prefix``,
    ``secret``, ``repeats``, ``n_in``, ``n_out`` (models), ``exposure_in``, ``exposure_out``
    (mean exposure in bits over the IN / OUT models; NaN without any), ``extraction_in``,
    ``extraction_out`` (fraction of those models that extract the secret), ``method`` ("exact"
    or "skew-normal fit"), ``space_size`` (|R|) and ``max_exposure`` (log2 |R|, the most an
    exact exposure can be).
  """
  if not record or "secrets" not in record:
    raise MemjaxError("The record has no text canaries (no 'secrets'); canary_table needs the "
                      "record of memjax.with_canaries on a text dataset (run.json data.canaries).")
  loglik = np.asarray(loglik, np.float64)
  extracted = np.asarray(extracted).astype(bool)
  keep = np.asarray(keep).astype(bool)
  count = len(record["secrets"])
  models = keep.shape[0] if keep.ndim == 2 else None
  if loglik.ndim != 3 or loglik.shape[:2] != (models, count):
    raise MemjaxError(f"loglik has shape {loglik.shape}; expected [M, K, S + 1] = [{models}, "
                      f"{count}, S + 1] for {models} models (keep) and {count} canaries.")
  if extracted.shape != (models, count):
    raise MemjaxError(f"extracted has shape {extracted.shape}; expected [M, K] = "
                      f"[{models}, {count}].")
  copies = record["copies"]
  if keep.shape[1] <= max(c[-1] for c in copies):
    raise MemjaxError(f"keep has {keep.shape[1]} columns but the canaries reach row "
                      f"{max(c[-1] for c in copies)}; pass the keep mask of the data with the "
                      "canaries.")
  space_size = int(record["space_size"])
  exact = bool(record["exact"])
  values = exposure(loglik, space_size, exact, fit=fit)  # [M, K]
  is_in = np.stack([keep[:, rows].any(axis=1) for rows in copies], axis=1)  # [M, K]

  def mean_where(x, mask):
    with np.errstate(invalid="ignore", divide="ignore"):
      x = np.where(mask, x, np.nan)
      counts = np.sum(~np.isnan(x), axis=0)
      return np.where(counts > 0, np.nansum(x, axis=0) / np.maximum(counts, 1), np.nan)

  hits = extracted.astype(np.float64)
  return {
      "canary": np.arange(count),
      "row": np.array([rows[0] for rows in copies]),
      "prefix": np.array(record["prefixes"], dtype=object),
      "secret": np.array(record["secrets"], dtype=object),
      "repeats": np.array(record["repeats"]),
      "n_in": is_in.sum(axis=0),
      "n_out": (~is_in).sum(axis=0),
      "exposure_in": mean_where(values, is_in),
      "exposure_out": mean_where(values, ~is_in),
      "extraction_in": mean_where(hits, is_in),
      "extraction_out": mean_where(hits, ~is_in),
      "method": np.array([METHOD_EXACT if exact else METHOD_FIT] * count, dtype=object),
      "space_size": np.full(count, space_size),
      "max_exposure": np.full(count, math.log2(space_size)),
  }
