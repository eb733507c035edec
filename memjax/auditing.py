"""Empirical privacy audits: a lower bound on epsilon from membership-inference scores of canaries.

If training is (epsilon, delta)-DP, no test of "was the model trained on canary c?" can do much
better than chance: for every decision rule, TPR <= e^epsilon FPR + delta, and the same for the
complementary rule, TNR <= e^epsilon FNR + delta (DP holds in both directions, with and without
c). So an attack that reaches (TPR, FPR) proves epsilon >= log((TPR - delta) / FPR). With finitely
many observations the rates are estimated, and the audit (Jagielski et al. 2020, "Auditing
differentially private machine learning: how private is private SGD?"; Nasr et al. 2021,
"Adversary instantiation: lower bounds for differentially private machine learning") replaces
them by confidence bounds, as :func:`audit_epsilon` does:

1. The observations, one per (target model, canary) pair with the attack's score on the canary
   and whether the model trained on it, are split at random, IN and OUT separately, into a
   threshold-selection part (fraction ``split``) and an evaluation part.
2. On the selection part, the threshold t (and the direction of the test) that gives the largest
   bound of step 3 is chosen, as jax-privacy's ``Split`` strategy does. (Maximising the point
   estimate log(TPR / FPR) instead would pick a threshold above every OUT score, where the
   estimated FPR is 0 and the ratio infinite, however few IN scores lie there.)
3. On the evaluation part, with the rule "member when score >= t": one-sided Clopper-Pearson
   bounds TPR_lo (lower) and FPR_hi (upper), each at failure probability (1 - confidence) / 2, so
   that both hold together with probability >= confidence (a union bound), and

       epsilon_lb = max(0, log((TPR_lo - delta) / FPR_hi),
                           log((1 - FPR_hi - delta) / (1 - TPR_lo)))

   the second term the complementary test (TNR_lo = 1 - FPR_hi against FNR_hi = 1 - TPR_lo,
   "member when score < t"), as jax-privacy's ``one_sided=False``; ``one_sided=True`` keeps
   only the first. Both terms use the same two bounds, so their maximum holds at ``confidence``.

``method="jax_privacy"`` computes the same bound with the reference implementation,
``jax_privacy.auditing.CanaryScoreAuditor(in_scores, out_scores).epsilon_clopper_pearson(
significance=1 - confidence, delta=delta, one_sided=..., threshold_strategy=Split(split, seed))``
(tested to agree; it returns only epsilon). The split is the same random partition in both.

What the confidence means: the Clopper-Pearson bounds treat the observations as independent
Bernoulli trials. That is exact for one canary per model and independently trained models (the
literature's setting); memjax's audits put many canaries into each model, score each target with
the other models as shadows, and draw the keep mask without replacement (each canary IN for
exactly half of the models), so the observations are dependent and the confidence is nominal.
The bound is a lower bound: weak attacks, few observations or easy-to-miss canaries give values
far below the true epsilon; a bound above the theoretical epsilon of a DP run points to a bug in
the DP implementation or accounting (or to the dependence above).

:func:`canary_observations` turns :func:`memjax.attacks.evaluate_attacks` results (with
``return_scores=True``) into observations; :func:`audit_attacks` audits every attack and
:func:`privacy_audit` builds the ``privacy_audit`` entry of ``attacks.json`` (``memjax attack
DIR`` on a run with canaries).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from memjax import formatting
from memjax.errors import MemjaxError
from memjax.intervals import proportion_ci

METHODS = ("clopper_pearson", "jax_privacy")
DEFAULT_DELTA = 1e-5  # the audit's delta when the run has no DP guarantee (run.json "privacy")
MAIN_ATTACKS = ("lira_online", "loss")  # printed first; every attack evaluated is audited


@dataclasses.dataclass(frozen=True)
class EpsilonAudit:
  """The result of :func:`audit_epsilon`.

  Attributes:
    epsilon: the lower bound on epsilon (>= 0), holding with probability ``confidence``.
    threshold: the score threshold chosen on the selection part (NaN for "jax_privacy").
    direction: the test that gave the bound: "above" (member when score >= threshold, TPR
      against FPR) or "below" (member when score < threshold, TNR against FNR); "" for
      "jax_privacy".
    tpr, fpr: point estimates on the evaluation part of P(score >= threshold) for IN and OUT
      observations (NaN for "jax_privacy").
    tpr_lo, fpr_hi: their one-sided Clopper-Pearson bounds (each at failure probability
      (1 - confidence) / 2).
    num_select_in, num_select_out: IN / OUT observations used to choose the threshold.
    num_eval_in, num_eval_out: IN / OUT observations the bound was computed from.
    confidence, delta, method: as passed.
  """

  epsilon: float
  threshold: float
  direction: str
  tpr: float
  fpr: float
  tpr_lo: float
  fpr_hi: float
  num_select_in: int
  num_select_out: int
  num_eval_in: int
  num_eval_out: int
  confidence: float
  delta: float
  method: str

  def to_dict(self) -> dict[str, Any]:
    """A JSON-ready dict (NaN -> None)."""
    return formatting.jsonable(dataclasses.asdict(self))


def audit_epsilon(scores, members, *, delta: float, confidence: float = 0.95,
                  method: str = "clopper_pearson", split: float = 0.5, seed: int = 0,
                  one_sided: bool = False) -> EpsilonAudit:
  """Lower bound on epsilon from attack scores of canary observations (module docstring).

  Args:
    scores: [K] float, the attack score of each observation (one (model, canary) pair); larger
      = more likely a member.
    members: [K] bool, whether that model trained on that canary.
    delta: the delta of the (epsilon, delta) guarantee audited, in [0, 1).
    confidence: probability that the bound holds, in (0.5, 1).
    method: "clopper_pearson" (memjax) or "jax_privacy" (the reference implementation, needs the
      jax-privacy package; same bound, epsilon only).
    split: fraction of the IN and of the OUT observations used to choose the threshold; the
      rest gives the bound.
    seed: seed of the random split.
    one_sided: use only "member when score >= t" (True), or also the complementary test.

  Returns:
    :class:`EpsilonAudit`.

  >>> rng = np.random.default_rng(0)
  >>> members = np.arange(20000) % 2 == 0
  >>> scores = rng.normal(size=20000) + 2.0 * members  # 2-GDP: epsilon 10.0 at delta 1e-5
  >>> result = audit_epsilon(scores, members, delta=1e-5)
  >>> 2.0 < result.epsilon < 10.0
  True
  """
  s, m = _check_observations(scores, members)
  if method not in METHODS:
    raise MemjaxError(f"method={method!r}; choose one of {', '.join(METHODS)}.")
  if not (isinstance(delta, (int, float)) and 0 <= delta < 1):
    raise MemjaxError(f"delta={delta!r}; the DP delta lies in [0, 1), e.g. 1e-5.")
  if not (isinstance(confidence, (int, float)) and 0.5 < confidence < 1):
    raise MemjaxError(f"confidence={confidence!r}; use a level in (0.5, 1), e.g. 0.95.")
  if not (isinstance(split, (int, float)) and 0 < split < 1):
    raise MemjaxError(f"split={split!r}; the fraction used to choose the threshold lies in "
                      "(0, 1), e.g. 0.5.")
  in_scores, out_scores = s[m], s[~m]
  # The same random partition as jax-privacy's Split strategy (IN and OUT apart, one generator).
  rng = np.random.default_rng(seed)
  perm_in, perm_out = rng.permutation(in_scores.size), rng.permutation(out_scores.size)
  k_in, k_out = int(in_scores.size * split), int(out_scores.size * split)
  sel_in, eval_in = in_scores[perm_in[:k_in]], in_scores[perm_in[k_in:]]
  sel_out, eval_out = out_scores[perm_out[:k_out]], out_scores[perm_out[k_out:]]
  if min(sel_in.size, eval_in.size, sel_out.size, eval_out.size) == 0:
    raise MemjaxError(
        f"Too few observations to split: {in_scores.size} IN and {out_scores.size} OUT, split "
        f"{split}, leave a part without IN or OUT observations. Use more canaries or models "
        "(a useful audit needs hundreds of each).")
  counts = dict(num_select_in=int(sel_in.size), num_select_out=int(sel_out.size),
                num_eval_in=int(eval_in.size), num_eval_out=int(eval_out.size),
                confidence=float(confidence), delta=float(delta), method=method)
  if method == "jax_privacy":
    epsilon = _jax_privacy_epsilon(in_scores, out_scores, delta=delta, confidence=confidence,
                                   split=split, seed=seed, one_sided=one_sided)
    return EpsilonAudit(epsilon=epsilon, threshold=math.nan, direction="", tpr=math.nan,
                        fpr=math.nan, tpr_lo=math.nan, fpr_hi=math.nan, **counts)
  thresholds = np.append(np.union1d(sel_in, sel_out), np.inf)
  bound, direction, _, _ = _bounds(sel_in, sel_out, thresholds, delta, confidence, one_sided)
  best = int(np.argmax(bound))
  threshold = float(thresholds[best])
  bound, direction, (tpr, fpr), (tpr_lo, fpr_hi) = _bounds(
      eval_in, eval_out, np.array([threshold]), delta, confidence, one_sided)
  return EpsilonAudit(epsilon=float(bound[0]), threshold=threshold, direction=str(direction[0]),
                      tpr=float(tpr[0]), fpr=float(fpr[0]), tpr_lo=float(tpr_lo[0]),
                      fpr_hi=float(fpr_hi[0]), **counts)


def _check_observations(scores, members) -> tuple[np.ndarray, np.ndarray]:
  s, m = np.asarray(scores), np.asarray(members)
  if s.ndim != 1 or m.shape != s.shape:
    raise MemjaxError(f"scores and members must be 1-D arrays of one length [K] (one entry per "
                      f"(model, canary) observation); got shapes {s.shape} and {m.shape}. "
                      "Flatten them, or use memjax.auditing.canary_observations.")
  if not np.issubdtype(s.dtype, np.number) or not np.all(np.isfinite(s)):
    raise MemjaxError("scores must be finite numbers (larger = more likely a member); drop "
                      "NaN/inf scores, e.g. of diverged models.")
  if m.dtype != bool:
    raise MemjaxError(f"members must be a bool array (True = the model trained on the canary); "
                      f"got dtype {m.dtype}.")
  if m.all() or not m.any():
    raise MemjaxError(f"The observations are all {'IN' if m.all() else 'OUT'}; the audit needs "
                      "both. Train with keep_ratio 0.5 so each canary is IN for half of the "
                      "models.")
  return s.astype(np.float64), m


def _bounds(in_scores, out_scores, thresholds, delta, confidence, one_sided):
  """epsilon bounds [T] at each threshold, their direction, (tpr, fpr) and (tpr_lo, fpr_hi)."""
  n_in, n_out = in_scores.size, out_scores.size
  tp = n_in - np.searchsorted(np.sort(in_scores), thresholds, side="left")
  fp = n_out - np.searchsorted(np.sort(out_scores), thresholds, side="left")
  # Two-sided intervals at `confidence` have (1 - confidence) / 2 in each tail: the one-sided
  # bounds needed, jointly holding at `confidence`.
  tpr_lo = proportion_ci(tp, n_in, confidence, "clopper-pearson")[0]
  fpr_hi = proportion_ci(fp, n_out, confidence, "clopper-pearson")[1]
  above = _log_ratio(tpr_lo - delta, fpr_hi)
  below = np.full_like(above, -np.inf) if one_sided else _log_ratio(1 - fpr_hi - delta,
                                                                      1 - tpr_lo)
  bound = np.maximum(np.maximum(above, below), 0.0)
  direction = np.where(below > above, "below", "above")
  return bound, direction, (tp / n_in, fp / n_out), (tpr_lo, fpr_hi)


def _log_ratio(numerator, denominator):
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(numerator > 0, np.log(np.maximum(numerator, 1e-300)) - np.log(denominator),
                    -np.inf)


def _jax_privacy_epsilon(in_scores, out_scores, *, delta, confidence, split, seed,
                         one_sided) -> float:
  try:
    from jax_privacy import auditing as jp_auditing
  except ImportError as e:
    raise MemjaxError("method='jax_privacy' needs the jax-privacy package (pip install "
                      "jax-privacy), or use method='clopper_pearson', the same bound computed "
                      "by memjax.") from e
  auditor = jp_auditing.CanaryScoreAuditor(in_scores, out_scores)
  return float(auditor.epsilon_clopper_pearson(
      significance=1 - confidence, delta=delta, one_sided=one_sided,
      threshold_strategy=jp_auditing.Split(threshold_estimation_frac=split, seed=seed)))


# ----------------------------------------------------------------------------------------------
# From attack results to an audit
# ----------------------------------------------------------------------------------------------


def canary_observations(results, keep, indices, attack: str = "lira_online"
                        ) -> tuple[np.ndarray, np.ndarray]:
  """The canary observations of one attack: every target model's score on every canary.

  Args:
    results: :class:`memjax.AttackResults` from ``evaluate_attacks(..., return_scores=True)``.
    keep: [M, N] bool, the run's keep mask (``run.keep``, records' ``keep``).
    indices: [C] int, the canaries' training indices (``with_canaries``'s second result,
      ``run.data.canaries["indices"]``).
    attack: the attack's name in ``results``.

  Returns:
    (scores [T * C] float64, members [T * C] bool), target-major: entry t * C + j is target
    ``results.targets[t]`` on canary ``indices[j]``.
  """
  if attack not in results.attacks:
    raise MemjaxError(f"No attack {attack!r} in the results (they have "
                      f"{', '.join(results.attacks)}); evaluate it first.")
  scores = results.attacks[attack].scores
  if scores is None:
    raise MemjaxError("The attack results hold no per-target scores; evaluate with "
                      "memjax.evaluate_attacks(..., return_scores=True).")
  keep = np.asarray(keep)
  idx = np.asarray(indices)
  if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
    raise MemjaxError(f"indices must be a non-empty 1-D array of training indices; got {idx!r}.")
  if idx.min() < 0 or idx.max() >= scores.shape[1] or keep.shape[1] != scores.shape[1]:
    raise MemjaxError(f"Canary indices run to {idx.max()} and keep has shape {keep.shape}, but "
                      f"the attack scored {scores.shape[1]} examples; pass the run's keep mask "
                      "and its canaries' indices.")
  members = keep[np.asarray(results.targets)][:, idx]
  return np.asarray(scores[:, idx], np.float64).reshape(-1), members.astype(bool).reshape(-1)


def audit_attacks(results, keep, indices, *, delta: float, confidence: float = 0.95,
                  seed: int = 0) -> dict[str, EpsilonAudit]:
  """:func:`audit_epsilon` of every attack in ``results`` on the canary observations.

  Args:
    results, keep, indices: as for :func:`canary_observations`.
    delta, confidence, seed: as for :func:`audit_epsilon` (method "clopper_pearson").

  Returns:
    {attack: EpsilonAudit}, in the order of ``results``.
  """
  out = {}
  for name in results.attacks:
    scores, members = canary_observations(results, keep, indices, name)
    out[name] = audit_epsilon(scores, members, delta=delta, confidence=confidence, seed=seed)
  return out


def privacy_audit(results, keep, canaries: dict[str, Any], privacy: dict[str, Any] | None,
                  confidence: float = 0.95) -> dict[str, Any]:
  """The ``privacy_audit`` entry of ``attacks.json`` for a run with canaries.

  Args:
    results, keep: as for :func:`canary_observations`.
    canaries: the run's canary record (run.json ``data.canaries``). Text canaries (secrets
      repeated r times, all copies IN or OUT together) are audited on their first copies: one
      observation per secret, not r.
    privacy: the run's DP guarantee (run.json ``privacy``: epsilon, delta, ...), or None for a
      non-private run. Its delta is the audit's; without it, :data:`DEFAULT_DELTA` (1e-5).
    confidence: the audit's confidence level.

  Returns:
    A JSON-ready dict: delta, delta_source ("run": the DP run's delta, or "default"),
    confidence, method, canaries (count, kind), theoretical (the run's epsilon, delta,
    accountant, sampling, covered, noise_multiplier; or None), attacks ({name:
    :meth:`EpsilonAudit.to_dict`}), best ({attack, epsilon} of the largest bound).
  """
  delta = DEFAULT_DELTA
  source = "default"
  if privacy and privacy.get("delta") is not None:
    delta, source = float(privacy["delta"]), "run"
  copies = canaries.get("copies")
  indices = [rows[0] for rows in copies] if copies else canaries["indices"]
  audits = audit_attacks(results, keep, indices, delta=delta, confidence=confidence)
  best = max(audits, key=lambda name: audits[name].epsilon)
  theoretical = None
  if privacy:
    theoretical = {k: privacy.get(k) for k in ("epsilon", "delta", "accountant", "sampling",
                                               "covered", "noise_multiplier")}
  return formatting.jsonable({
      "delta": delta, "delta_source": source, "confidence": confidence,
      "method": "clopper_pearson", "canaries": {"count": len(indices),
                                                "kind": canaries["kind"]},
      "theoretical": theoretical,
      "attacks": {name: a.to_dict() for name, a in audits.items()},
      "best": {"attack": best, "epsilon": audits[best].epsilon},
  })


def theoretical_text(privacy: dict[str, Any] | None) -> str:
  """One phrase for a run's theoretical epsilon (run.json ``privacy``)."""
  if not privacy or privacy.get("epsilon") is None:
    return "none (not trained with DP: epsilon = infinity)"
  text = f"epsilon = {privacy['epsilon']:.3g} at delta = {privacy.get('delta', float('nan')):.2g}"
  details = [f"{privacy['accountant']} accountant" if privacy.get("accountant") else None,
             f"{privacy['sampling']} sampling" if privacy.get("sampling") else None]
  if any(details):
    text += " (" + ", ".join(d for d in details if d) + ")"
  if privacy.get("covered") is False:
    text += ("; shuffled batches: the Poisson-sampling accounting does not strictly cover "
             "this training")
  return text


def markdown(audit: dict[str, Any]) -> str:
  """The ``privacy_audit`` entry of attacks.json as text: a line on the guarantees and a table
  of the per-attack bounds (the main attacks first)."""
  names = list(audit["attacks"])
  names = [n for n in MAIN_ATTACKS if n in names] + [n for n in names if n not in MAIN_ATTACKS]
  rows = []
  for name in names:
    a = audit["attacks"][name]
    rows.append([name, f"{a['epsilon']:.3f}", _num(a.get("threshold")), a.get("direction") or "",
                 f"{_num(a.get('tpr'))} (>= {_num(a.get('tpr_lo'))})",
                 f"{_num(a.get('fpr'))} (<= {_num(a.get('fpr_hi'))})",
                 f"{a['num_eval_in']} / {a['num_eval_out']}"])
  table = formatting.markdown_table(
      ["attack", "epsilon lower bound", "threshold", "test", "TPR (lower)", "FPR (upper)",
       "IN / OUT observations"], rows)
  c = audit["canaries"]
  lines = [
      f"privacy audit: {c['count']} {c['kind']} canaries, {audit['confidence']:.0%} "
      f"confidence, delta {audit['delta']:.2g} ("
      + ("the run's DP delta" if audit["delta_source"] == "run" else
         "the default: no DP guarantee in run.json") + ")",
      f"  theoretical: {theoretical_text(audit.get('theoretical'))}",
      f"  empirical lower bound: epsilon >= {audit['best']['epsilon']:.3f} "
      f"({audit['best']['attack']}; each bound holds at the confidence on its own)",
  ]
  theory = (audit.get("theoretical") or {}).get("epsilon")
  if theory is not None and audit["best"]["epsilon"] > theory:
    lines.append("  WARNING: the empirical lower bound exceeds the theoretical epsilon: check "
                 "the DP implementation and its accounting.")
  return "\n".join(lines) + "\n" + table


def _num(v) -> str:
  return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
