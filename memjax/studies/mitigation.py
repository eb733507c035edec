"""Mitigations of memorization: one training change at a time against a baseline.

The survey of memorization (its Sec. 4.7) lists the usual regularisers as mitigations: data
augmentation, weight decay, dropout, label smoothing and early stopping. This study trains one
ensemble per setting (:data:`MITIGATIONS`), each the baseline with one change, and reports for
each the number of examples memorized (Feldman & Zhang, with its bootstrap standard error), the
train and test accuracy, and how exposed the training set is to membership inference: LiRA's
TPR at 0.1% FPR and its AUC, every model in turn the target of the others
(:func:`memjax.attacks.evaluate_attacks`; online LiRA with a pooled variance by default, see
:data:`DEFAULT_ATTACK`).

The architecture is an MLP (the scale's ``epochs_arch``; ``mlp[256,256]`` at the default
scale): it is the one built-in family with a dropout knob and the fastest on the CPU, and the
image augmentations act on its inputs (8x8 images) all the same. Early stopping trains nothing
of its own: the baseline is evaluated after every epoch, and "stop at f" reads the ensemble
after epoch ``round(f * epochs)`` of the full schedule (the one-cycle learning rate not yet
annealed), its LiRA statistic recorded at every epoch as a measure.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Sequence

import numpy as np

from memjax import attacks as attacks_lib
from memjax import plotting
from memjax.errors import MemjaxError
from memjax.studies.figures import ensemble_figures
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "mitigation"
PHI = "phi"  # the per-epoch LiRA statistic, a measure of the baseline's records
PHI_SPEC = "memjax.measures:lira_statistic"
DROPOUT_MODELS = ("mlp", "vit")  # built-in models with a dropout knob
# Online LiRA with one pooled variance per side: Carlini et al. advise it with fewer than 64
# shadow models, and with 47 (48 mlp[256,256] on the digits) its TPR at 0.1% FPR is 1.95%
# against 0.77% with per-example variances; with a handful of models (the small scale) the
# per-example variance of 1-2 OUT models is 0 and the online scores degenerate.
DEFAULT_ATTACK = "lira_online_fixed"
GROUP_COLORS = {"baseline": "0.4", "augmentation": "C0", "weight decay": "C1", "dropout": "C2",
                "label smoothing": "C3", "early stopping": "C4"}


@dataclasses.dataclass(frozen=True)
class Mitigation:
  """One setting: the baseline with one change.

  Attributes:
    group: the kind of mitigation ("augmentation", "weight decay", ...); a group's settings are
      listed from the weakest to the strongest, and the headline names the strongest.
    label: the row's name, e.g. ``"weight decay 5e-3"``.
    config: TrainConfig fields changed (e.g. ``{"weight_decay": 5e-3}``).
    model_kwargs: model knobs changed (e.g. ``{"dropout": 0.5}``).
    stop_fraction: early stopping: read the baseline after ``round(f * epochs)`` epochs (at
      least 1) instead of training another ensemble.
  """

  group: str
  label: str
  config: dict = dataclasses.field(default_factory=dict)
  model_kwargs: dict = dataclasses.field(default_factory=dict)
  stop_fraction: float | None = None


MITIGATIONS: tuple[Mitigation, ...] = (
    # Shifts of 1 pixel on the 8x8 digits (the default 2 costs the MLP 8 points of test accuracy);
    # flips are the survey's standard augmentation, though a mirrored digit is not always one.
    Mitigation("augmentation", "translate 1px", {"augment": "translate", "translate": 1}),
    Mitigation("augmentation", "flip+translate 1px", {"augment": "flip_translate",
                                                       "translate": 1}),
    Mitigation("weight decay", "weight decay 0", {"weight_decay": 0.0}),
    Mitigation("weight decay", "weight decay 5e-3", {"weight_decay": 5e-3}),
    Mitigation("dropout", "dropout 0.2", model_kwargs={"dropout": 0.2}),
    Mitigation("dropout", "dropout 0.5", model_kwargs={"dropout": 0.5}),
    Mitigation("label smoothing", "label smoothing 0.1", {"label_smoothing": 0.1}),
    Mitigation("label smoothing", "label smoothing 0.2", {"label_smoothing": 0.2}),
    Mitigation("early stopping", "stop at 50%", stop_fraction=0.5),
    Mitigation("early stopping", "stop at 25%", stop_fraction=0.25),
    Mitigation("early stopping", "stop at 10%", stop_fraction=0.1),
)


def mitigation(data: Any = "digits", *, mitigations: Sequence[Mitigation] | None = None,
               arch: Arch | None = None, attack: str = DEFAULT_ATTACK, fpr: float = 1e-3,
               **settings) -> StudyResult:
  """Memorization and membership-inference exposure under each mitigation (survey Sec. 4.7).

  Trains the baseline (the settings' recipe, evaluated after every epoch) and one ensemble per
  setting of ``mitigations`` that changes the training (early stopping reads the baseline's
  earlier epochs). Columns: the group and setting, epochs trained, mean train accuracy (on each
  model's own subset) and test accuracy, memorized count (score >= threshold) with its
  bootstrap SE and the count estimation noise alone gives, the mean score, the attack's pooled
  AUC and TPR at ``fpr``, and the changes from the baseline (``d_memorized``, ``d_test_acc``);
  ``effect`` says whether the count moved by more than 2 combined SE (``reduced`` /
  ``increased``) or not (``same``).

  Args:
    data: dataset spec or Dataset (images for the augmentations).
    mitigations: the settings (default :data:`MITIGATIONS`); dropout settings are skipped, with
      a note, for a model without a dropout knob.
    arch: the architecture (default: the scale's ``epochs_arch``, an MLP).
    attack: the membership-inference attack (a name of :data:`memjax.attacks.ATTACKS` other
      than the RMIA ones, which need population points).
    fpr: the false-positive rate of the TPR column.
    **settings: fields of :class:`~memjax.studies.StudySettings`.

  Returns:
    :class:`StudyResult`; headline: the baseline's figures, each setting's change in count and
    test accuracy, per group the strongest setting's effect, and the settings that reduce
    memorization.
  """
  return run(StudySettings.of(data, **settings), mitigations=mitigations, arch=arch,
             attack=attack, fpr=fpr)


def run(settings: StudySettings, *, mitigations: Sequence[Mitigation] | None = None,
        arch: Arch | None = None, attack: str = DEFAULT_ATTACK, fpr: float = 1e-3) -> StudyResult:
  """:func:`mitigation` from settings."""
  if attack not in attacks_lib.ATTACKS or attack.startswith("rmia"):
    raise MemjaxError(f"attack={attack!r}; choose one of "
                      f"{', '.join(a for a in attacks_lib.ATTACKS if not a.startswith('rmia'))} "
                      "(RMIA needs population points).")
  if not 0 < fpr < 1:
    raise MemjaxError(f"fpr={fpr}; use a false-positive rate in (0, 1), e.g. 1e-3.")
  mitigations = list(MITIGATIONS if mitigations is None else mitigations)
  for m in mitigations:
    if not isinstance(m, Mitigation):
      raise MemjaxError(f"mitigations holds {m!r}; pass memjax.studies.Mitigation records, "
                        "e.g. Mitigation('weight decay', 'weight decay 1e-2', "
                        "{'weight_decay': 1e-2}).")
    if m.stop_fraction is not None and not 0 < m.stop_fraction <= 1:
      raise MemjaxError(f"{m.label}: stop_fraction={m.stop_fraction}; use a fraction of the "
                        "epochs in (0, 1].")
    if m.stop_fraction is not None and (m.config or m.model_kwargs):
      raise MemjaxError(f"{m.label}: early stopping reads the baseline's earlier epochs, so it "
                        "cannot change the training too; make the change a setting of its own.")
  labels = [m.label for m in mitigations]
  if len(set(labels)) < len(labels) or "baseline" in labels:
    raise MemjaxError(f"Setting labels {labels} must be distinct and not 'baseline' (the "
                      "baseline is always trained); rename the repeated ones.")
  dataset, sc = settings.dataset(), settings.scale_spec
  (arch,), notes = settings.usable([arch or sc.epochs_arch], "arch")
  models = settings.models or sc.models
  base = settings.base_config()
  baseline_config = arch_config(base, arch, models, settings.epochs, settings.seed,
                                eval_every=1, default_epochs=sc.epochs)
  epochs = baseline_config.epochs
  baseline_config = baseline_config.replace(
      measures={**baseline_config.measures, PHI: PHI_SPEC})
  t0 = time.perf_counter()
  trained, wall = settings.train(baseline_config)
  rows = [_row(Mitigation("baseline", "baseline"), trained, -1, wall, settings.threshold,
               attack, fpr)]
  for m in mitigations:
    if m.model_kwargs.get("dropout") and arch[1] not in DROPOUT_MODELS:
      notes.append(f"{m.label} skipped: {arch_label(arch)} has no dropout knob.")
      continue
    if m.config.get("augment", "none") != "none" and not dataset.is_image:
      notes.append(f"{m.label} skipped: {dataset.name} has vector features, not images.")
      continue
    if m.stop_fraction is not None:
      stop = max(1, round(m.stop_fraction * epochs))
      rows.append(_row(m, trained, stop - 1, 0.0, settings.threshold, attack, fpr))
      continue
    config = arch_config(base, arch, models, epochs, settings.seed)
    config = config.replace(**m.config).replace(
        model_kwargs={**config.model_kwargs, **m.model_kwargs})
    other, wall = settings.train(config)
    rows.append(_row(m, other, -1, wall, settings.threshold, attack, fpr))
  baseline = rows[0]
  for r in rows:
    r["d_memorized"] = r["memorized"] - baseline["memorized"]
    r["d_test_acc"] = r["test_acc"] - baseline["test_acc"]
    se = math.hypot(r["memorized_se"], baseline["memorized_se"])
    r["effect"] = ("same" if r is baseline or abs(r["d_memorized"]) <= 2 * se
                   else "reduced" if r["d_memorized"] < 0 else "increased")
    r["wall_s"] = r.pop("wall_s")  # the last column
  tpr_key = _tpr_column(fpr)
  headline = {
      "attack": attack, "fpr": fpr, "threshold": settings.threshold,
      "subset_ratios": list(base.ratios), "model": arch_label(arch), "models": models,
      "epochs": epochs,
      "baseline": {k: baseline[k] for k in ("memorized", "memorized_se", "test_acc", tpr_key)},
      "settings": {}, "groups": {}}
  for r in rows[1:]:
    headline["settings"][r["setting"]] = {
        "group": r["group"], "memorized": r["memorized"], "memorized_se": r["memorized_se"],
        "change": r["d_memorized"],
        "change_se": math.hypot(r["memorized_se"], baseline["memorized_se"]),
        "effect": r["effect"], "test_acc": r["test_acc"], "test_acc_cost": -r["d_test_acc"],
        tpr_key: r[tpr_key]}
  for r in rows[1:]:  # the last of a group's settings is its strongest
    headline["groups"][r["group"]] = {"strongest": r["setting"],
                                      **headline["settings"][r["setting"]]}
  headline["reduce_memorization"] = [r["setting"] for r in rows if r["effect"] == "reduced"]
  headline["wall_s"] = time.perf_counter() - t0
  return StudyResult(
      name=NAME, columns=tuple(rows[0]), rows=rows, headline=headline,
      description=(
          f"Mitigations on {dataset.name} (N={dataset.num_train}): {models} {arch_label(arch)} "
          f"models per setting, {settings.ratio_text()}, {epochs} epochs, each setting the "
          f"baseline (weight decay {base.weight_decay:g}, augment {base.augment}, label "
          f"smoothing {base.label_smoothing:g}) with one change; early stopping reads the "
          "baseline after round(f x epochs) epochs of its full schedule. memorized = #examples "
          f"with score >= {settings.threshold} (+- bootstrap SE over models; null_memorized: "
          "the count estimation noise alone gives); train_acc on each model's own subset; "
          f"attack_auc and {tpr_key}: {attack}, every model the target of the others, pooled; "
          "effect: the count's change beyond 2 combined SE."),
      notes=notes, context={"data": dataset.name, "models": models, "epochs": epochs,
                            "model": arch_label(arch), "attack": attack,
                            "ratios": settings.ratio_text()})


def _tpr_column(fpr: float) -> str:
  return f"tpr@{fpr:g}"


def _row(m: Mitigation, trained, t: int, wall: float, threshold: float, attack: str,
         fpr: float) -> dict:
  """One setting's row, from evaluation ``t`` of ``trained`` (-1: the last; earlier ones read
  the LiRA statistic recorded as the measure :data:`PHI`)."""
  records, keep = trained.records, trained.keep
  stats = (np.asarray(records.train_lira) if t == -1
           else np.asarray(records.measure(PHI)[t])[..., None])  # [M, N, A]
  result = attacks_lib.evaluate_attacks(stats, keep, attacks=(attack,), fprs=(fpr,))[attack]
  f = ensemble_figures(trained, threshold, t)
  return {"group": m.group, "setting": m.label,
          "epochs": int(np.asarray(records.eval_epochs)[t]),
          **{k: f[k] for k in ("train_acc", "test_acc", "memorized", "memorized_se",
                               "null_memorized", "mean_score")},
          "attack_auc": float(result.auc),
          _tpr_column(fpr): float(result.tpr_at_fpr[fpr]), "wall_s": wall}


def plot(result: StudyResult, path: str) -> None:
  """Per setting: memorized count (+- SE), test accuracy and the attack's TPR, as bars."""
  h, rows = result.headline, result.rows
  tpr_key = _tpr_column(h["fpr"])
  labels = [r["setting"] for r in rows]
  colors = [GROUP_COLORS.get(r["group"], "C5") for r in rows]
  y = np.arange(len(rows))[::-1]
  fig, axes = plotting.subplots(3, 3.6, 0.3 * len(rows) + 1.6)
  panels = (("memorized", f"examples memorized (score >= {h['threshold']})", "memorized_se"),
            ("test_acc", "test accuracy", None),
            (tpr_key, f"{h['attack']} TPR at {100 * h['fpr']:g}% FPR", None))
  for ax, (key, xlabel, err) in zip(axes, panels):
    values = [r[key] for r in rows]
    ax.barh(y, values, color=colors, xerr=[r[err] for r in rows] if err else None, capsize=2)
    ax.axvline(rows[0][key], color="k", ls="--", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_yticks(y)
    ax.set_yticklabels(labels if ax is axes[0] else [], fontsize=7)
    if key == "test_acc":
      low = min(values)
      ax.set_xlim(max(0.0, low - 0.05 * (1 - low) - 0.02), 1.0)
  c = result.context
  fig.suptitle(f"mitigations ({c['data']}, {c['models']} {c['model']} models, {c['ratios']}, "
               f"{c['epochs']} epochs)")
  plotting.save(fig, path)


STUDY = Study(NAME, "memorization and LiRA TPR under each mitigation (survey Sec. 4.7)",
              mitigation, run, plot)
