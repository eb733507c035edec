"""The paper's claims (and the survey's), checked against the studies' headline figures.

Each :class:`Claim` states a finding of "Back to Fundamentals" (or of the artificial-memorization
literature it answers), what a run measured, and whether the two agree:

* natural memorization vs model size: the family's trend must be ``decreases`` beyond 2 standard
  errors (``model_size``);
* over training: the ``epochs`` study must detect a fall after the peak;
* transient points must score above the mean of all points, model-wise and temporal-wise;
* the memorized count must follow the train-test gap with Pearson r > 0.9 (``gap``);
* artificial points' mean score must grow from the smallest to the largest model, and the natural
  points' by less than half as much (``natural_vs_artificial``);

and three findings of the survey of memorization and the work it reviews:

* weight decay and data augmentation reduce memorization (its Sec. 4.7): the strongest setting
  of each must memorize fewer examples than the baseline by more than 2 combined standard
  errors (``mitigation``);
* the privacy onion effect (Carlini et al. 2022): after removing the most vulnerable examples,
  the next layer must be more vulnerable than after removing as many random ones, by more than
  2 standard errors, at every fraction removed (``onion``);
* memorization finds mislabelled examples better than chance: its precision among the k
  top-ranked examples (k = the number flipped) must exceed the fraction flipped by more than 2
  binomial standard errors at every rate (``noisy_labels``);

and two of differential privacy (``privacy``):

* DP-SGD limits memorization (the survey's Sec. 5): at every epsilon the memorized count above
  its noise floor (the count that shuffling IN/OUT gives, which grows as noisy models underfit)
  must lie below the non-private one's by more than 2 combined standard errors;
* an audit never proves more than the guarantee: every empirical lower bound on epsilon must be
  at most the accountant's epsilon (a bound above it means a bug in the accounting, the
  training, or the audit, or the 5% the confidence level allows).

At small scale and with few models the estimates are noisy: a verdict is only as good as the
ensembles it comes from (read it with the standard errors in the tables).

>>> claims = check_claims({"gap": {"pearson_gap_vs_memorized": {"r": 0.95, "n": 13, "p": 1e-6}}})
>>> [(c.claim, c.agrees) for c in claims]
[('memorized count vs train-test gap', True)]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

from memjax import formatting

GAP_MIN_R = 0.9  # the gap claim holds when Pearson r exceeds this (the paper: 0.99)


@dataclasses.dataclass(frozen=True)
class Claim:
  """One claim, checked.

  Attributes:
    claim: what is claimed about.
    paper: the paper's finding (with its table or figure).
    measured: what the run measured, in words and figures.
    agrees: True / False; None when the run cannot tell (e.g. too few architectures).
  """

  claim: str
  paper: str
  measured: str
  agrees: bool | None

  @property
  def verdict(self) -> str:
    """``yes``, ``no`` or ``n/a``."""
    return "n/a" if self.agrees is None else "yes" if self.agrees else "no"


def check_claims(headlines: Mapping[str, Any]) -> list[Claim]:
  """The claims the given studies can check.

  Args:
    headlines: study name -> its headline dict (``result.headline``, or ``headline.json``
      loaded; NaN may be null) or its :class:`~memjax.studies.StudyResult`. Studies that are
      missing are skipped.

  Returns:
    The claims, in the order of the paper's sections.
  """
  h = {name: getattr(value, "headline", value) for name, value in headlines.items()}
  claims = []
  for family, f in h.get("model_size", {}).get("families", {}).items():
    claims.append(Claim(
        f"natural memorization vs model size ({family})", "decreases (Table 1, Fig. 1)",
        f"{f['direction']}: {' → '.join(str(c) for c in f['memorized_by_size'])} memorized, "
        f"{f['smallest']} to {f['largest']}", f["direction"] == "decreases"))
  if "epochs" in h:
    e = h["epochs"]
    stage = "fall" if e["fall_detected"] else "plateau"
    claims.append(Claim(
        "natural memorization over training", "none, rise, then a fall (Fig. 2)",
        f"none {_span(e['none'])}, rise {_span(e['rise'])}, {stage} {_span(e[stage])}; peak "
        f"{e['peak_count']:.0f} at epoch {e['peak_epoch']}, {e['final_count']:.0f} at the end "
        f"(drop {e['drop']:.0f} ± {_number(e['drop_se']):.0f})", bool(e["fall_detected"])))
  for key, paper in (("model_wise", "45% ± 15% vs 11% ± 19% for all points"),
                     ("temporal_wise", "36% ± 5% vs 11% ± 19% for all points")):
    if "transient" not in h:
      break
    t = h["transient"][key]
    transient_mean = _number(t["transient_score_first"][0])
    all_mean = _number(t["all_score_first"][0])
    claims.append(Claim(
        f"transient points' mean score, {key.replace('_', '-')} ({t['first']} → {t['second']})",
        paper, f"{t['transient']} points: {_percent(t['transient_score_first'])} vs "
        f"{_percent(t['all_score_first'])} for all points",
        t["transient"] > 0 and transient_mean > all_mean))
  if "gap" in h:
    r = h["gap"]["pearson_gap_vs_memorized"]
    value = _number(r["r"])
    claims.append(Claim(
        "memorized count vs train-test gap", "Pearson r = 0.99 (Fig. 3)",
        f"Pearson r = {value:.2f} over {r['n']} architectures (p = {_number(r['p']):.2g})"
        if math.isfinite(value) else f"n/a: {r['n']} architectures (needs 3)",
        value > GAP_MIN_R if math.isfinite(value) else None))
  if "natural_vs_artificial" in h:
    trend = {k: _number(v) for k, v in h["natural_vs_artificial"]["size_trend"].items()}
    claims.append(Claim(
        "artificial memorization vs model size", "increases (literature)",
        f"mean score {trend['noisy_label']:+.2f} (noisy labels), {trend['noisy_input']:+.2f} "
        "(noise inputs) from the smallest to the largest model",
        trend["noisy_label"] > 0 and trend["noisy_input"] > 0))
    claims.append(Claim(
        "natural memorization vs model size, in the same runs",
        "does not grow like the artificial one", f"mean score {trend['natural']:+.3f} (natural "
        "points)", trend["natural"] < min(trend["noisy_label"], trend["noisy_input"]) / 2))
  mitigation = h.get("mitigation", {})
  for group in ("weight decay", "augmentation"):
    if group not in mitigation.get("groups", {}):
      continue
    g, base = mitigation["groups"][group], mitigation["baseline"]
    claims.append(Claim(
        f"memorization under {group} ({g['strongest']})", "reduces it (survey Sec. 4.7)",
        f"{base['memorized']} → {g['memorized']} memorized ({g['change']:+d} ± "
        f"{_number(g['change_se']):.0f}), test accuracy {base['test_acc']:.3f} → "
        f"{g['test_acc']:.3f}", g["effect"] == "reduced"))
  if "onion" in h:
    parts = [f"k={p['k']}: {p['layer_after_top_removal']:.3f} vs "
             f"{p['layer_after_random_removal']:.3f} ({_number(p['effect']):+.3f} ± "
             f"{_number(p['effect_se']):.3f})" for p in h["onion"]["by_fraction"].values()]
    claims.append(Claim(
        "removing the most vulnerable examples exposes the next layer",
        "the privacy onion effect (Carlini et al. 2022)",
        "the next layer's vulnerability after removing the k most vulnerable vs k random: "
        + "; ".join(parts), bool(h["onion"]["onion_effect"])))
  if "noisy_labels" in h:
    n = h["noisy_labels"]
    parts, agrees = [], True
    for rate, flipped in n["flipped"].items():
      precision, chance = n["memorization"][rate]["precision"], n["chance"][rate]
      agrees &= precision > chance + 2 * math.sqrt(chance * (1 - chance) / max(flipped, 1))
      parts.append(f"{float(rate):.0%} flipped: {precision:.2f} vs {chance:.2f}")
    claims.append(Claim(
        "memorization finds mislabelled examples", "better than chance (survey)",
        "precision at k = the number flipped, vs chance: " + "; ".join(parts), bool(agrees)))
  if "privacy" in h:
    claims += _privacy_claims(h["privacy"])
  return claims


def _privacy_claims(p: Mapping[str, Any]) -> list[Claim]:
  levels = p["levels"]
  claims = []
  finite = {k: v for k, v in levels.items() if k != "inf"}
  if "inf" in levels and finite:
    base = levels["inf"]

    def excess(level):  # the count above what estimation noise alone gives
      return level["memorized"] - _number(level["null_memorized"])

    parts, agrees = [], True
    for label, level in finite.items():
      se = math.hypot(_number(base["memorized_se"]), _number(level["memorized_se"]))
      change = excess(level) - excess(base)
      agrees &= change < -2 * se
      parts.append(f"epsilon {label}: {excess(level):.0f} ({change:+.0f} ± {se:.0f}), test "
                   f"accuracy {level['test_acc']:.3f}")
    claims.append(Claim(
        "memorization under DP-SGD", "limits it (survey Sec. 5)",
        f"memorized above the noise floor without DP: {excess(base):.0f} (test accuracy "
        f"{base['test_acc']:.3f}); " + "; ".join(parts), bool(agrees)))
  if finite:
    parts = [f"epsilon {k}: bound {_number(v['audit_epsilon']):.2f}" for k, v in finite.items()]
    claims.append(Claim(
        "empirical epsilon lower bound (canary audit)", "never above the theoretical epsilon",
        "; ".join(parts) + f" ({p['confidence']:.0%} confidence)",
        all(_number(v["audit_epsilon"]) <= _number(v["epsilon_pld"]) for v in finite.values())))
  return claims


def claims_table(claims: Sequence[Claim], measured_as: str = "this run") -> str:
  """The claims as a markdown table: claim | paper | ``measured_as`` | agrees."""
  return formatting.markdown_table(
      ("claim", "paper", measured_as, "agrees"),
      [(c.claim, c.paper, c.measured, c.verdict) for c in claims])


def _number(value) -> float:
  """A headline number; JSON null (a saved NaN) reads as NaN."""
  return math.nan if value is None else float(value)


def _percent(mean_sd) -> str:
  mean, sd = (_number(v) for v in mean_sd)
  return "n/a" if math.isnan(mean) else f"{100 * mean:.0f}% ± {100 * sd:.0f}%"


def _span(span) -> str:
  if not span:
    return "absent"
  return f"epoch {span[0]}" if span[0] == span[1] else f"epochs {span[0]}-{span[1]}"
