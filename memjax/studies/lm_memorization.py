"""Memorization in language models: counterfactual memorization, canary exposure, extraction.

The survey of memorization defines it for language models three ways, and this study measures
all three on ensembles of small causal transformers (``gpt``) trained on random halves of a text
corpus (the embedded ``pydoc`` sentences by default), with secret canaries planted in it
(:func:`memjax.with_canaries`, kind ``"secret"``: "my code 3 is 4 8 1 5 9 2", each repeated 1,
4 or 16 times):

* **counterfactual memorization** (Zhang et al. 2021, the survey's Definition 3): the mean token
  accuracy on a sequence of the models that trained on it minus that of the models that did not;
  its distribution and the most memorized sequences, as text;
* **exposure** of the canaries (Carlini et al. 2019, "The Secret Sharer"): log2 |R| - log2 of the
  rank of the true secret among all candidate secrets R by the model's likelihood, for the models
  that trained on the canary (IN) and those that did not (OUT), vs the number of repetitions, the
  model size and the epochs (:mod:`memjax.exposure`);
* **extraction**: whether greedy decoding from the canary's prefix reproduces its secret;

and relates counterfactual memorization to membership-inference vulnerability: the per-sequence
AUC of LiRA (every model in turn the target of the others) against the memorization score.

The subsets are random halves (ratio 0.5, as Zhang et al.'s) whatever the settings'
``keep_ratio``: every canary is then IN for half of the models. All copies of a canary are IN or
OUT together. The table has one row per (model size, evaluation epoch); the sequences, the
memorization distribution and the attack are those of the main (middle) size at the last epoch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from memjax import attacks as attacks_lib
from memjax import correlation, estimators, exposure, plotting
from memjax import scores as scores_lib
from memjax.canaries import with_canaries
from memjax.config import LM_RECIPE
from memjax.errors import MemjaxError
from memjax.studies.result import Study, StudyResult
from memjax.studies.scales import Arch, arch_config, arch_label
from memjax.studies.settings import StudySettings

NAME = "lm_memorization"
DEFAULT_DATA = "pydoc"
KEEP_RATIO = 0.5  # random halves: Zhang et al.'s design, and every canary IN for half the models
REPEATS = (1, 4, 16)
DEFAULT_ATTACK = "lira_online_fixed"  # pooled variances: robust with tens of shadow models
TOP = 10  # sequences listed in the headline


def gpt(width: int, depth: int, heads: int) -> Arch:
  """A GPT size with the language models' recipe (:data:`memjax.config.LM_RECIPE`)."""
  return ("gpt", "gpt", {"width": width, "depth": depth, "heads": heads},
          {k: v for k, v in LM_RECIPE.items() if k not in ("model", "model_kwargs", "epochs")})


def subset(data, sequences: int | None):
  """The first ``sequences`` training sequences of a text dataset (all for None); the test
  split is kept. The subset is in-memory data (no spec: the spec names the whole corpus)."""
  if sequences is None or sequences >= data.num_train:
    return data
  return dataclasses.replace(data, x_train=data.x_train[:sequences],
                             y_train=data.y_train[:sequences], spec=None,
                             name=f"{data.name}[:{sequences}]")


@dataclasses.dataclass(frozen=True)
class LMScale:
  """How big the study is at a scale.

  Attributes:
    archs: the model sizes, smallest first (exposure vs model size).
    main: index of the size whose sequences, epochs and attack are reported.
    models: models per size.
    epochs: training epochs.
    eval_every: evaluate (memorization, exposure, extraction) every this many epochs.
    canaries: secrets at each repetition count.
    digits: digits of a secret (|R| = 10**digits candidate secrets).
    candidates: candidate secrets scored per canary (exact exposure when that covers R).
    sequences: train on the corpus' first this many training sequences (None: all).
  """

  archs: tuple[Arch, ...]
  main: int
  models: int
  epochs: int
  eval_every: int
  canaries: int
  digits: int
  candidates: int
  sequences: int | None = None


LM_SCALES: dict[str, LMScale] = {
    "small": LMScale(archs=(gpt(16, 1, 2), gpt(32, 1, 2)), main=1, models=8, epochs=6,
                     eval_every=3, canaries=2, digits=3, candidates=999),
    # ~10 minutes on the 2-core CPU: 600 of pydoc's sentences, 24 models of three sizes.
    "default": LMScale(archs=(gpt(16, 1, 2), gpt(32, 2, 2), gpt(64, 2, 4)), main=1,
                       models=24, epochs=LM_RECIPE["epochs"], eval_every=10, canaries=4,
                       digits=6, candidates=300, sequences=600),
    "large": LMScale(archs=(gpt(64, 2, 4), gpt(128, 4, 4), gpt(256, 4, 8)), main=1,
                     models=128, epochs=2 * LM_RECIPE["epochs"], eval_every=10, canaries=8,
                     digits=6, candidates=4000),
}


def lm_memorization(data: Any = DEFAULT_DATA, *, archs: Sequence[Arch] | None = None,
                    repeats: Sequence[int] = REPEATS, canaries: int | None = None,
                    digits: int | None = None, candidates: int | None = None,
                    eval_every: int | None = None, attack: str = DEFAULT_ATTACK,
                    **settings) -> StudyResult:
  """Counterfactual memorization, canary exposure and extraction of small language models.

  Args:
    data: a text dataset spec (``"pydoc"``, ``"text:PATH"``, ``"tfds:NAME"``) or Dataset.
    archs: the model sizes (default: the scale's, :data:`LM_SCALES`), e.g.
      ``[gpt(32, 1, 2), gpt(64, 2, 4)]``; the middle one is the main one.
    repeats: how many times each canary is inserted.
    canaries: secrets per repetition count (default: the scale's).
    digits: digits per secret (default: the scale's).
    candidates: candidate secrets per canary (default: the scale's); exact exposure when it
      covers all 10**digits - 1 others, the skew-normal fit otherwise.
    eval_every: evaluate every this many epochs (default: the scale's).
    attack: the membership-inference attack related to memorization.
    **settings: fields of :class:`~memjax.studies.StudySettings` (``keep_ratio`` is ignored:
      the study draws random halves).

  Returns:
    :class:`StudyResult`; headline: the main size's exposure and extraction per repetition
    count, the memorization distribution and most memorized sequences, and the correlation of
    memorization with the attack's per-sequence AUC.
  """
  return run(StudySettings.of(data, **settings), archs=archs, repeats=repeats,
             canaries=canaries, digits=digits, candidates=candidates, eval_every=eval_every,
             attack=attack)


def run(settings: StudySettings, *, archs: Sequence[Arch] | None = None,
        repeats: Sequence[int] = REPEATS, canaries: int | None = None,
        digits: int | None = None, candidates: int | None = None,
        eval_every: int | None = None, attack: str = DEFAULT_ATTACK) -> StudyResult:
  """:func:`lm_memorization` from settings."""
  sc = LM_SCALES[settings.scale]
  archs = tuple(archs or sc.archs)
  main = sc.main if archs == sc.archs else len(archs) // 2
  canaries, digits = canaries or sc.canaries, digits or sc.digits
  candidates, eval_every = candidates or sc.candidates, eval_every or sc.eval_every
  repeats = tuple(int(r) for r in repeats)
  if attack not in attacks_lib.ATTACKS or attack.startswith("rmia"):
    raise MemjaxError(f"attack={attack!r}; choose one of "
                      f"{', '.join(a for a in attacks_lib.ATTACKS if not a.startswith('rmia'))}.")
  full = settings.dataset()
  source = settings.runs.derived(full, ("first sequences", sc.sequences),
                                 lambda: subset(full, sc.sequences))
  if source.task != "language_model":
    raise MemjaxError(f"lm_memorization needs a text dataset; {source.name} is "
                      f"{source.task} data. Use --data pydoc (embedded), text:PATH or a TFDS "
                      "text dataset.")
  settings = settings.replace(keep_ratio=KEEP_RATIO)
  data, _ = settings.runs.derived(
      source, ("secret canaries", canaries, repeats, digits, candidates, settings.seed),
      lambda: with_canaries(source, canaries, kind="secret", seed=settings.seed,
                            repeats=repeats, digits=digits, candidates=candidates))
  natural = np.arange(source.num_train)  # the corpus' own sequences (canaries come after)
  models = settings.models or sc.models
  epochs = settings.epochs or sc.epochs
  base = settings.base_config()
  rows, trained = [], []
  for arch in archs:
    config = arch_config(base, arch, models, epochs, settings.seed, eval_every=eval_every)
    run_, wall = settings.train(config, dataset=data)
    trained.append(run_)
    rows += _rows(run_, arch, data.canaries, natural, repeats, settings.threshold, wall)
  main_run = trained[main]
  main_table = scores_lib.table(main_run.records, main_run.data)
  memorization = np.asarray(main_table["memorization"])[natural]
  results = attacks_lib.evaluate_attacks(np.asarray(main_run.records.train_lira),
                                         main_run.keep, attacks=(attack,))
  auc = np.asarray(results[attack].per_example_auc)[natural]
  relation = correlation.spearman(memorization, auc)
  for row in rows:  # the attack belongs to the main size's last evaluation
    last = row["model"] == arch_label(archs[main]) and row["epoch"] == epochs
    row["attack_auc"] = results[attack].auc if last else math.nan
    row["spearman_memorization_auc"] = relation["rho"] if last else math.nan
  final = [r for r in rows if r["model"] == arch_label(archs[main]) and r["epoch"] == epochs][0]
  texts = main_table["text"][natural]
  order = scores_lib.most_memorized({k: np.asarray(v)[natural] for k, v in main_table.items()
                                     if k in ("memorization", "memorization_se",
                                              "memorization_lo")}, TOP)
  headline = {
      "model": arch_label(archs[main]), "models": models, "epochs": epochs,
      "repeats": list(repeats), "canaries_per_repeat": canaries, "digits": digits,
      "exposure_method": "exact" if data.canaries["exact"] else "skew-normal fit",
      "max_exact_exposure": math.log2(data.canaries["space_size"]),
      "exposure_in": {r: final[f"exposure_in_r{r}"] for r in repeats},
      "exposure_out": {r: final[f"exposure_out_r{r}"] for r in repeats},
      "extraction_in": {r: final[f"extraction_in_r{r}"] for r in repeats},
      "extraction_out": {r: final[f"extraction_out_r{r}"] for r in repeats},
      "exposure_grows_with_repeats": bool(np.all(np.diff(
          [final[f"exposure_in_r{r}"] for r in repeats]) > 0)),
      "memorization_mean": float(np.nanmean(memorization)),
      "memorization_quantiles": {f"{q:g}": float(np.nanquantile(memorization, q))
                                 for q in (0.5, 0.9, 0.99, 1.0)},
      "memorized": estimators.count_memorized(memorization, settings.threshold),
      "threshold": settings.threshold, "attack": attack,
      "spearman_memorization_auc": relation,
      "most_memorized": [{"index": int(i), "memorization": float(memorization[i]),
                          "text": str(texts[i])} for i in order],
  }
  columns = ("model", "params", "epoch", "train_token_acc", "test_token_acc",
             "mean_memorization", "memorized",
             *[f"{what}_r{r}" for r in repeats
               for what in ("exposure_in", "exposure_out", "extraction_in", "extraction_out")],
             "attack_auc", "spearman_memorization_auc", "wall_s")
  rows = [{k: row[k] for k in columns} for row in rows]  # in the table's order
  description = (
      f"Ensembles of {models} causal transformers of each size on random halves of "
      f"{source.name} ({source.num_train} sequences, {source.preprocessing}) with "
      f"{canaries} secret canaries of {digits} digits at each repetition count "
      f"{', '.join(map(str, repeats))} ({data.num_train - source.num_train} rows), "
      f"{epochs} epochs, evaluated every {eval_every}. Memorization: counterfactual memorization "
      "on token accuracy (Zhang et al. 2021), mean and count >= "
      f"{settings.threshold} over the corpus' sequences; exposure (Carlini et al. 2019, "
      f"{headline['exposure_method']} over {data.canaries['space_size']:,} candidate secrets) "
      "and extraction (greedy decoding from the prefix gives the secret): means over the models "
      f"that trained on the canary (in) and the others (out); {attack}: AUC over every target "
      "model and sequence, and Spearman's rho between a sequence's memorization and its "
      "per-sequence AUC (main size, last epoch).")
  notes = [f"Main size: {arch_label(archs[main])}; its most memorized sequences are in "
           "headline.json."]
  return StudyResult(name=NAME, columns=columns, rows=rows, headline=headline,
                     description=description, notes=notes,
                     context={"data": source.name, "main": arch_label(archs[main]),
                              "epochs": epochs, "repeats": list(repeats), "attack": attack,
                              "threshold": settings.threshold},
                     arrays={"memorization": memorization, "auc": auc})


def _rows(trained, arch: Arch, record: dict, natural: np.ndarray, repeats: Sequence[int],
          threshold: float, wall: float) -> list[dict[str, Any]]:
  """One row per evaluation of one size: accuracies, memorization, exposure, extraction."""
  records, keep = trained.records, trained.keep
  rows = []
  for t, epoch in enumerate(np.asarray(records.eval_epochs).tolist()):
    accuracy = np.asarray(records.train_token_accuracy[t], np.float64)
    memorization = estimators.memorization(accuracy, keep)[natural]
    own = (accuracy * keep).sum(1) / keep.sum(1)
    canary_columns = exposure.canary_table(records.canary_loglik[t], records.canary_extracted[t],
                                           keep, record)
    row = {"model": arch_label(arch), "params": trained.info.get("num_params"), "epoch": epoch,
           "train_token_acc": float(own.mean()),
           "test_token_acc": float(np.asarray(records.test_token_accuracy[t]).mean()),
           "mean_memorization": float(np.nanmean(memorization)),
           "memorized": estimators.count_memorized(memorization, threshold)}
    reps = np.asarray(canary_columns["repeats"])
    for r in repeats:
      pick = reps == r
      for what in ("exposure_in", "exposure_out", "extraction_in", "extraction_out"):
        row[f"{what}_r{r}"] = float(np.nanmean(np.asarray(canary_columns[what])[pick]))
    row["wall_s"] = wall
    rows.append(row)
  return rows


def plot(result: StudyResult, path: str) -> None:
  """Four panels: the memorization histogram; exposure vs repetitions per size; exposure vs
  epochs of the main size; memorization vs the attack's per-sequence AUC."""
  ctx, rows = result.context, result.rows
  repeats, last = ctx["repeats"], ctx["epochs"]
  fig, axes = plotting.subplots(4, 4.4, 3.6)
  mem, auc = result.arrays["memorization"], result.arrays["auc"]
  ax = axes[0]
  ax.hist(mem[np.isfinite(mem)], bins=30, color="C0")
  ax.axvline(ctx["threshold"], color="C3", ls="--", lw=1)
  ax.set_yscale("log")
  ax.set_xlabel("counterfactual memorization (token accuracy)")
  ax.set_ylabel("sequences")
  ax.set_title(f"{ctx['data']}: {ctx['main']}")
  ax = axes[1]
  for i, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
    final = [r for r in rows if r["model"] == model and r["epoch"] == last][0]
    ax.plot(repeats, [final[f"exposure_in_r{r}"] for r in repeats], "o-", color=f"C{i}",
            label=f"{model} (in)")
    ax.plot(repeats, [final[f"exposure_out_r{r}"] for r in repeats], "x:", color=f"C{i}")
  ax.axhline(result.headline["max_exact_exposure"], color="grey", lw=0.8, ls="--")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("repetitions of the canary")
  ax.set_ylabel("exposure (bits); dotted: OUT models")
  ax.set_title("exposure vs repetitions and size")
  ax.legend(fontsize=7)
  ax = axes[2]
  main_rows = [r for r in rows if r["model"] == ctx["main"]]
  epochs = [m["epoch"] for m in main_rows]
  twin = ax.twinx()
  for i, r in enumerate(repeats):
    ax.plot(epochs, [m[f"exposure_in_r{r}"] for m in main_rows], "o-", color=f"C{i}",
            label=f"{r}x: exposure")
    twin.plot(epochs, [m[f"extraction_in_r{r}"] for m in main_rows], "s:", color=f"C{i}",
              alpha=0.7, label=f"{r}x: extraction")
  ax.set_xlabel("epoch")
  ax.set_ylabel("exposure of IN models (bits), solid")
  twin.set_ylabel("extraction rate of IN models, dotted")
  twin.set_ylim(-0.02, 1.02)
  ax.set_title(f"{ctx['main']}: per epoch")
  ax.legend(fontsize=7, loc="lower right")
  ax = axes[3]
  ok = np.isfinite(mem) & np.isfinite(auc)
  ax.scatter(mem[ok], auc[ok], s=4, alpha=0.4)
  rho = result.headline["spearman_memorization_auc"]["rho"]
  ax.set_xlabel("counterfactual memorization")
  ax.set_ylabel(f"{ctx['attack']} per-sequence AUC")
  ax.set_title(f"vulnerability vs memorization (rho {rho:.2f})")
  plotting.save(fig, path)


STUDY = Study(NAME, "language models: counterfactual memorization, canary exposure and "
              "extraction vs repetitions, size and epochs, and LiRA vulnerability (survey "
              "Sec. 3)", lm_memorization, run, plot, default_data=DEFAULT_DATA,
              task="language_model")
