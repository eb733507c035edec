"""Differential privacy against memorization: DP-SGD ensembles at several epsilons, audited.

The survey of memorization ties memorization to privacy: membership inference exploits the
memorized examples, and differential privacy is the mitigation with a guarantee. This study
trains one ensemble per privacy level (DP-SGD with sigma calibrated to each target epsilon,
:mod:`memjax.privacy`; ``inf`` is the same recipe without clipping or noise) on the data with
mislabeled canaries appended (:func:`memjax.with_canaries`), and reports for each level the
test accuracy, the memorized count, LiRA's TPR at 0.1% FPR (every model in turn the target of
the others) and the empirical lower bound on epsilon from the canaries
(:func:`memjax.audit_epsilon`) beside the theoretical epsilon.

A sound accountant and a sound audit imply lower bound <= theoretical epsilon (up to the audit's
confidence): the ``bound_below_theory`` column checks it for every level. The subsets are drawn
at ratio 0.5 whatever the settings' ``keep_ratio``: each canary is then IN for half of the
models, which gives the audit as many members as non-members.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from memjax import attacks as attacks_lib
from memjax import auditing, plotting
from memjax import privacy as privacy_lib
from memjax.canaries import with_canaries
from memjax.errors import MemjaxError
from memjax.studies.figures import ensemble_figures
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "privacy"
EPSILONS = (math.inf, 8.0, 4.0, 1.0)
AUDIT_KEEP_RATIO = 0.5
DEFAULT_CANARIES = 50
BATCHNORM_MODELS = ("vgg", "resnet")  # trained with norm="group" here
# Pooled variances: with tens of shadow models per-example variances are noisy (see mitigation).
DEFAULT_ATTACK = "lira_online_fixed"
COLUMNS = ("epsilon", "epsilon_pld", "noise_multiplier", "delta", "train_acc", "test_acc",
           "memorized", "memorized_se", "null_memorized", "mean_score", "auc", "tpr@0.001",
           "audit_epsilon", "audit_tpr", "audit_fpr", "bound_below_theory", "wall_s")


def privacy(data: Any = "digits", *, epsilons: Sequence[float] | None = None,
            arch: Arch | None = None, canaries: int = DEFAULT_CANARIES,
            attack: str = DEFAULT_ATTACK, confidence: float = 0.95,
            clip_norm: float = 1.0, **settings) -> StudyResult:
  """Test accuracy, memorization, membership inference and audited epsilon under DP-SGD.

  Args:
    data: dataset spec or Dataset (``canaries`` mislabeled copies are appended to it).
    epsilons: the target epsilons (default :data:`EPSILONS`: inf, 8, 4, 1); ``math.inf`` (or
      ``float("inf")``) trains without DP-SGD (Poisson batches all the same, no clipping, no
      noise).
    arch: the architecture (default: the scale's ``epochs_arch``, an MLP on the digits); vgg and
      resnet train with GroupNorm (``norm="group"``), as DP-SGD cannot train BatchNorm.
    canaries: mislabeled canaries for the audit.
    attack: the attack whose TPR is reported and whose canary scores are audited.
    confidence: the audit's confidence level.
    clip_norm: DP-SGD's per-example clip norm C.
    **settings: fields of :class:`~memjax.studies.StudySettings` (``keep_ratio`` is ignored:
      the audit needs ratio 0.5).

  Returns:
    :class:`StudyResult`; headline: per epsilon the figures of the table, whether every bound
    stayed below its theoretical epsilon, and the accuracy and memorization at the extremes.
  """
  return run(StudySettings.of(data, **settings), epsilons=epsilons, arch=arch,
             canaries=canaries, attack=attack, confidence=confidence, clip_norm=clip_norm)


def run(settings: StudySettings, *, epsilons: Sequence[float] | None = None,
        arch: Arch | None = None, canaries: int = DEFAULT_CANARIES,
        attack: str = DEFAULT_ATTACK, confidence: float = 0.95,
        clip_norm: float = 1.0) -> StudyResult:
  """:func:`privacy` from settings."""
  epsilons = [float(e) for e in (EPSILONS if epsilons is None else epsilons)]
  if not epsilons or any(not e > 0 for e in epsilons):
    raise MemjaxError(f"epsilons={epsilons}; give positive target epsilons (inf: no DP-SGD).")
  if attack not in attacks_lib.ATTACKS or attack.startswith("rmia"):
    raise MemjaxError(f"attack={attack!r}; choose one of "
                      f"{', '.join(a for a in attacks_lib.ATTACKS if not a.startswith('rmia'))}.")
  settings = settings.replace(keep_ratio=AUDIT_KEEP_RATIO)
  sc = settings.scale_spec
  (arch,), notes = settings.usable([arch or sc.epochs_arch], "arch")
  if arch[1] in BATCHNORM_MODELS and "norm" not in arch[2]:
    arch = (arch[0], arch[1], {**arch[2], "norm": "group"}, *arch[3:])
    notes.append(f"{arch_label(arch)}: GroupNorm instead of BatchNorm (DP-SGD needs "
                 "per-example gradients, which batch statistics would mix).")
  source = settings.dataset()
  data, canary_indices = settings.runs.derived(
      source, ("mislabeled canaries", canaries, settings.seed),
      lambda: with_canaries(source, canaries, "mislabeled", seed=settings.seed))
  models = settings.models or sc.models
  base = arch_config(settings.base_config(), arch, models, settings.epochs, settings.seed,
                     default_epochs=sc.epochs).replace(sampling="poisson", dp_clip_norm=clip_norm)
  rows = []
  for target in epsilons:
    config = base if math.isinf(target) else base.replace(dp_target_epsilon=target)
    trained, wall = settings.train(config, dataset=data)
    rows.append(_row(trained, target, canary_indices, attack, confidence, settings.threshold,
                     wall))
  headline = {
      "attack": attack, "confidence": confidence, "canaries": canaries,
      "canary_kind": "mislabeled", "model": arch_label(arch), "models": models,
      "epochs": base.epochs, "clip_norm": clip_norm, "threshold": settings.threshold,
      "subset_ratios": [AUDIT_KEEP_RATIO],
      "levels": {_label(r["epsilon"]): {k: r[k] for k in COLUMNS if k != "epsilon"}
                 for r in rows},
      "bounds_below_theory": all(r["bound_below_theory"] for r in rows),
  }
  description = (f"DP-SGD ensembles of {models} {arch_label(arch)} on {data.name} with "
                 f"{canaries} mislabeled canaries, {base.epochs} epochs, Poisson batches of "
                 f"expected size {base.batch_size}, clip norm {clip_norm}, subsets at ratio "
                 f"{AUDIT_KEEP_RATIO}; sigma calibrated to each epsilon by PLD accounting; "
                 f"{attack} TPR at 0.1% FPR; audit: Clopper-Pearson lower bound on epsilon "
                 f"from the canaries' {attack} scores at {confidence:.0%} confidence.")
  return StudyResult(name=NAME, columns=COLUMNS, rows=rows, headline=headline,
                     description=description, notes=notes,
                     context={"data": data.name, "attack": attack})


def _row(trained, target: float, canary_indices, attack: str, confidence: float,
         threshold: float, wall: float) -> dict[str, Any]:
  keep = np.asarray(trained.records.keep)
  results = attacks_lib.evaluate_attacks(
      np.asarray(trained.records.train_lira), keep, attacks=(attack,), return_scores=True)
  privacy = trained.info.get("privacy")
  # The non-private row is audited at the delta the private ones get by default.
  delta = privacy["delta"] if privacy else privacy_lib.default_delta(keep.shape[1])
  scores, members = auditing.canary_observations(results, keep, canary_indices, attack)
  audit = auditing.audit_epsilon(scores, members, delta=delta, confidence=confidence)
  theory = privacy["epsilon"] if privacy else math.inf
  figures = ensemble_figures(trained, threshold)
  return {
      "epsilon": target, "epsilon_pld": theory, "noise_multiplier": privacy["noise_multiplier"] if privacy else 0.0,
      "delta": delta,
      **{k: figures[k] for k in ("train_acc", "test_acc", "memorized", "memorized_se",
                                 "null_memorized", "mean_score")},
      "auc": results[attack].auc,
      "tpr@0.001": results[attack].tpr_at_fpr[1e-3], "audit_epsilon": audit.epsilon,
      "audit_tpr": audit.tpr, "audit_fpr": audit.fpr,
      "bound_below_theory": bool(audit.epsilon <= theory), "wall_s": wall,
  }


def _label(epsilon: float) -> str:
  return "inf" if math.isinf(epsilon) else f"{epsilon:g}"


def plot(result: StudyResult, path: str) -> None:
  """Left: empirical epsilon lower bound vs theoretical epsilon (the diagonal is the bound's
  ceiling). Right: test accuracy and memorized count per epsilon."""
  rows = result.rows
  labels = [_label(r["epsilon"]) for r in rows]
  fig, (left, right) = plotting.subplots(2, 10, 4.0)
  finite = [r for r in rows if math.isfinite(r["epsilon"])]
  top = max([r["epsilon_pld"] for r in finite] + [r["audit_epsilon"] for r in rows] + [1.0])
  left.plot([0, top], [0, top], "k--", lw=1, label="bound = theory")
  left.plot([r["epsilon_pld"] for r in finite], [r["audit_epsilon"] for r in finite], "o-",
            color="C0", label=f"audit ({result.headline['attack']})")
  for r in rows:
    if not math.isfinite(r["epsilon"]):
      left.axhline(r["audit_epsilon"], color="C3", lw=1, ls=":",
                   label=f"no DP: bound {r['audit_epsilon']:.2f}")
  left.set_xlabel("theoretical epsilon (PLD)")
  left.set_ylabel(f"empirical lower bound ({result.headline['confidence']:.0%})")
  left.set_title("privacy audit with mislabeled canaries")
  left.legend(fontsize=7)
  x = np.arange(len(rows))
  right.bar(x - 0.2, [r["memorized"] for r in rows], 0.4, color="C1", label="memorized")
  right.set_ylabel(f"examples memorized (score >= {result.headline['threshold']})")
  right.set_xticks(x, [f"eps={label}" for label in labels])
  twin = right.twinx()
  twin.plot(x, [r["test_acc"] for r in rows], "o-", color="C2", label="test accuracy")
  twin.set_ylabel("test accuracy")
  right.set_title(f"{result.context['data']}: utility and memorization under DP-SGD")
  handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
  right.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper right")
  plotting.save(fig, path)


STUDY = Study(NAME, "DP-SGD at several epsilons: accuracy, memorization, LiRA TPR, audited "
              "epsilon", privacy, run, plot)
