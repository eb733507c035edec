"""Command line: ``memjax run | scores | attack | report | study``.

    memjax run                                  # 256 MLPs on the embedded digits, ~a minute
    memjax run --data tfds:cifar10 --model resnet --preset back_to_fundamentals --out runs/c10
    memjax run --resume runs/c10                # continue a killed run
    memjax run --resume runs/c10 --models 512   # grow it: trains only the new models
    memjax scores runs/c10                      # print the summary again
    memjax plan runs/c10 --half-width 0.05      # how many models for +-0.05 at the threshold
    memjax attack runs/c10                      # LiRA / RMIA / loss audit, ROC plot
    memjax report runs/c10                      # self-contained HTML report
    memjax study model_size                     # a study of the seed papers (or `all`)
    memjax study model_size --replot DIR        # redraw its plot from the saved table
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

from memjax import report, studies
from memjax.canaries import KINDS as CANARY_KINDS
from memjax.canaries import TEXT_KINDS as TEXT_CANARY_KINDS
from memjax.canaries import with_canaries
from memjax.config import (AUGMENTATIONS, DESIGNS, FIELDS, PRESETS, SAMPLINGS, SCHEDULES,
                           TrainConfig)
from memjax.data import load, spec_slug
from memjax.errors import MemjaxError
from memjax.models import model_name


def _add_summary_flags(p) -> None:
  p.add_argument("--top", type=int, default=10, help="most memorized examples to list")
  p.add_argument("--rank", choices=("score", "lower"), default="score",
                 help="rank the most memorized by their score (default) or by the lower bound "
                 "of their 95%% interval (the most surely memorized)")


def _add_run_parser(sub) -> None:
  p = sub.add_parser("run", help="train an ensemble on random subsets and score every example",
                     description="Train M models, each on a random subset of the training set, "
                     "in one compiled program; write records, scores.csv and run.json to --out.")
  p.add_argument("--data", default=None, help="dataset spec: digits (default, offline), "
                 "npz:PATH, PATH.npz, tfds:NAME[:TRAIN_SPLIT[,TEST_SPLIT]]; text for language "
                 "models: pydoc (embedded, offline), text:PATH (one sequence per line), "
                 "text:PATH:64 (chunks of 64 characters)")
  p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                 help="standardise features with training-split statistics (default) or, with "
                 "--no-standardize, keep them in [0, 1]; part of the training algorithm, "
                 "recorded in run.json")
  p.add_argument("--preset", default=None, help="configuration preset: "
                 f"{', '.join(PRESETS)} (flags below override it; default: 'default', or "
                 "'lm' for text data)")
  canary = p.add_argument_group(
      "canaries", "Plant K examples at the end of the training split for a privacy audit "
      "(memjax attack DIR then bounds epsilon from below); keep the default --keep-ratio 0.5, "
      "which puts each canary IN for exactly half of the models.")
  canary.add_argument("--canaries", type=int, metavar="K", help="number of canaries")
  canary.add_argument("--canary-kind", choices=CANARY_KINDS + TEXT_CANARY_KINDS, default=None,
                      help="images/vectors: mislabeled (default): copies with a wrong label; "
                      "noise: random inputs, random labels; clean_copy: exact copies. Text: "
                      "secret (default): 'my code K is ' and random digits")
  canary.add_argument("--canary-seed", type=int, default=0, help="seed of the canaries")
  canary.add_argument("--canary-repeats", type=_int_list, default=None, metavar="R1,R2,...",
                      help="text: copies of each canary, K canaries per value (default 1; e.g. "
                      "1,4,16)")
  canary.add_argument("--canary-digits", type=int, default=None, metavar="D",
                      help="text: digits per secret (default 6: 10**6 possible secrets)")
  canary.add_argument("--canary-candidates", type=int, default=None, metavar="S",
                      help="text: other secrets each canary is ranked among for its exposure "
                      "(default 1000; 10**D - 1 or more ranks it exactly)")
  training = p.add_argument_group("training (every TrainConfig field; see memjax.TrainConfig)")
  for field in dataclasses.fields(TrainConfig):
    _add_config_flag(training, field)
  p.add_argument("--out", help="run directory (default runs/DATA-MODEL-TIMESTAMP); never "
                 "overwritten")
  p.add_argument("--resume", metavar="DIR", help="continue (or, with a larger --models, grow) "
                 "the run in DIR")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")
  _add_summary_flags(p)
  p.add_argument("--attack", action="store_true", help="also run the membership-inference "
                 "audit (memjax attack) on the finished run")
  p.add_argument("--no-report", action="store_true", help="do not write DIR/report.html "
                 "(memjax report DIR writes it later)")
  multi = p.add_argument_group(
      "several hosts", "Run the same command on every host; the models are sharded over the "
      "devices of all hosts and process 0 writes --out (pass the same --out everywhere).")
  multi.add_argument("--distributed", action="store_true", help="call "
                     "jax.distributed.initialize() first (auto-detects TPU pod slices, SLURM, "
                     "Open MPI; or give the three flags below)")
  multi.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
  multi.add_argument("--num-processes", type=int, help="number of processes (hosts)")
  multi.add_argument("--process-id", type=int, help="this process's index, 0..N-1")


def _add_attack_parser(sub) -> None:
  from memjax.attacks import ATTACKS, DEFAULT_ATTACKS
  p = sub.add_parser("attack", help="membership-inference audit of a finished run",
                     description="Every model in turn is the target, the others its shadow "
                     "models: LiRA (online/offline, fixed variance), RMIA (the paper's; "
                     "ml_privacy_meter's with --attacks ...,rmia_privacy_meter) and the loss "
                     "threshold. Writes DIR/attacks.json, DIR/roc.png and per-example "
                     "mia_auc_* columns in DIR/scores.csv.")
  p.add_argument("dir", help="run directory")
  p.add_argument("--attacks", type=lambda s: tuple(s.split(",")), default=DEFAULT_ATTACKS,
                 help=f"comma-separated subset of {','.join(ATTACKS)}")
  p.add_argument("--max-targets", type=int, help="use only the first K models as targets")


def _add_config_flag(group, field: dataclasses.Field) -> None:
  """One ``--flag`` for a TrainConfig field, typed after the field's default."""
  flags = [f"--{field.name.replace('_', '-')}"]
  if field.metadata.get("flag") and field.metadata["flag"] not in flags:
    flags.insert(0, field.metadata["flag"])
  default = TrainConfig.__dataclass_fields__[field.name].default
  kwargs = {"dest": field.name, "default": None, "help": field.metadata.get("help")}
  if isinstance(default, bool):
    kwargs["action"] = argparse.BooleanOptionalAction
  elif field.name == "measures":
    kwargs.update(type=lambda text: [m for m in text.split(",") if m], metavar="SPEC,...")
  elif field.name.endswith("_kwargs"):
    kwargs.update(type=_json_object, metavar="JSON")
  elif field.name == "keep_ratios":
    kwargs.update(type=lambda text: tuple(float(r) for r in text.split(",")),
                  metavar="R1,R2,...")
  elif field.name == "memory_budget":
    kwargs.update(type=lambda text: int(float(text)), metavar="BYTES")
  elif isinstance(default, (int, float)) and field.name != "chunk_size":
    kwargs["type"] = type(default)
  elif field.name in ("chunk_size", "prefix_length"):
    kwargs["type"] = int
  elif field.name.startswith("dp_"):
    kwargs.update(type=float, metavar="FLOAT")
  choices = {"schedule": SCHEDULES, "augment": AUGMENTATIONS, "design": DESIGNS,
             "sampling": SAMPLINGS}
  if field.name in choices:
    kwargs["choices"] = choices[field.name]
  group.add_argument(*flags, **kwargs)


def _int_list(text: str) -> tuple[int, ...]:
  try:
    return tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers; "
                                     "write e.g. 1,4,16") from None


def _json_object(text: str) -> dict:
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise argparse.ArgumentTypeError(f"not valid JSON ({e}); write e.g. "
                                     "'{\"learning_rate\": 0.001}'") from e
  if not isinstance(value, dict):
    raise argparse.ArgumentTypeError("must be a JSON object {...}")
  return value


def _initialize_distributed(args) -> None:
  """jax.distributed.initialize() from --distributed / --coordinator flags (before any jax use)."""
  explicit = (args.coordinator, args.num_processes, args.process_id)
  if not (args.distributed or any(v is not None for v in explicit)):
    return
  if any(v is not None for v in explicit) and any(v is None for v in explicit):
    raise MemjaxError("--coordinator, --num-processes and --process-id go together: give all "
                      "three (or only --distributed on a TPU pod slice / SLURM / Open MPI, where "
                      "JAX detects them).")
  import jax
  jax.distributed.initialize(coordinator_address=args.coordinator,
                             num_processes=args.num_processes, process_id=args.process_id)


def cmd_run(args) -> int:
  _initialize_distributed(args)
  from memjax import runner

  if args.preset is not None and args.preset not in PRESETS:
    raise MemjaxError(f"Unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}.")
  changes = {k: getattr(args, k) for k in FIELDS if getattr(args, k) is not None}
  progress = not args.no_progress
  if args.resume:
    if args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
      raise MemjaxError("--resume DIR continues DIR; do not also pass a different --out.")
    info = runner.read_run_info(args.resume)
    standardize = info["data"].get("standardized", True) if args.standardize is None \
        else args.standardize
    if args.canaries is not None:
      raise MemjaxError("--canaries applies to a new run; a resumed run keeps the canaries "
                        "recorded in its run.json. Drop --canaries.")
    if args.data is None and info.get("data_spec") is None:
      raise MemjaxError(f"Cannot tell which data {args.resume!r} was trained on; pass --data.")
    data = load(args.data or info["data_spec"], standardize=standardize)
    run = runner.train(data, directory=args.resume, resume=True, progress=progress, **changes)
  else:
    data = load(args.data or "digits",
                standardize=True if args.standardize is None else args.standardize)
    if args.canaries is not None:
      text_options = {"repeats": args.canary_repeats, "digits": args.canary_digits,
                      "candidates": args.canary_candidates}
      data, _ = with_canaries(data, args.canaries, args.canary_kind, args.canary_seed,
                              **{k: v for k, v in text_options.items() if v is not None})
    # Text data trains the language models' recipe unless told otherwise.
    preset = args.preset or ("lm" if data.task == "language_model" else "default")
    config = PRESETS[preset].replace(**changes)
    out = args.out or os.path.join(
        "runs", f"{spec_slug(data.spec or data.name)}-{spec_slug(model_name(config.model))}-"
        f"{time.strftime('%Y%m%d-%H%M%S')}")
    run = runner.train(data, config=config, directory=out, progress=progress)
  import jax
  if jax.process_index() != 0:  # on several hosts process 0 writes and reports
    return 0
  print(run.summary(top=args.top, rank=args.rank))
  print(f"  wrote {os.path.join(run.directory, 'scores.csv')} (one row per training example), "
        f"records/ and run.json")
  if args.attack:
    _print_audit(run.directory)
  if not args.no_report:
    path = report.write_report(run.directory, data=run.data)
    print(f"  wrote {path}: open it in a browser")
  return 0


def cmd_attack(args) -> int:
  _print_audit(args.dir, attacks=args.attacks, max_targets=args.max_targets)
  return 0


def _print_audit(directory: str, **kwargs) -> None:
  from memjax import audit
  results = audit.audit(directory, **kwargs)
  print(results.table(markdown=True))
  if results.privacy_audit is not None:
    from memjax import auditing
    print(auditing.markdown(results.privacy_audit))
  print(f"  wrote {os.path.join(directory, 'attacks.json')}, roc.png and mia_auc_* columns in "
        "scores.csv")


def cmd_plan(args) -> int:
  """``memjax plan DIR``: how many models give the wanted interval half-width at the threshold."""
  from memjax import planning
  print(planning.plan(args.dir, half_width=args.half_width, level=args.level).text(args.dir))
  return 0


def cmd_scores(args) -> int:
  from memjax import runner
  run = runner.Run.load(args.dir)
  print(run.summary(top=args.top, rank=args.rank))
  return 0


def _add_study_parser(sub) -> None:
  p = sub.add_parser(
      "study", help="run an experiment of the Back to Fundamentals paper",
      description="Train the ensembles of a study, write table.csv, table.md, headline.json, "
      "study.json and plot.png to --out, print the table ('all': every study, sharing "
      "ensembles, and claims.md, the paper's claims checked).")
  p.add_argument("name", choices=(*studies.STUDIES, "all"), help="the study ('all': every "
                 "study, sharing ensembles)")
  p.add_argument("--data", default=None, help="dataset spec: digits (default; pydoc for "
                 "lm_memorization), npz:PATH, text:PATH, tfds:NAME[:TRAIN_SPLIT[,TEST_SPLIT]]")
  p.add_argument("--scale", default="default", choices=tuple(studies.SCALES),
                 help="small (seconds), default (minutes on digits, CPU), large (accelerators)")
  p.add_argument("--preset", default="default", help="TrainConfig preset for the other "
                 f"training fields: {', '.join(PRESETS)}")
  p.add_argument("--models", type=int, help="models per ensemble (overrides the scale)")
  p.add_argument("--epochs", type=int, help="epochs (overrides the scale and a family's own "
                 "recipe, e.g. the vit's)")
  p.add_argument("--keep-ratio", type=float, default=studies.PAPER_KEEP_RATIO,
                 help="fraction of the training set each model trains on (default "
                 f"{studies.PAPER_KEEP_RATIO}, Feldman & Zhang's and the paper's)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", help="output directory (default studies/NAME-DATA-TIMESTAMP); the "
                 "ensembles are saved in OUT/runs, and running again with the same --out "
                 "resumes or reuses them")
  p.add_argument("--replot", metavar="DIR", help="redraw the plot of the study saved in DIR "
                 "(for 'all': of every study in DIR/NAME) without training; other flags are "
                 "ignored")
  p.add_argument("--progress", action="store_true", help="progress bars while training")


def cmd_study(args) -> int:
  """``memjax study NAME``: runs the study (or all), saves and prints it; or redraws a plot."""
  data = args.data or (studies.study(args.name).default_data if args.name != "all"
                       else "digits")
  if args.replot:
    names = list(studies.STUDIES) if args.name == "all" else [args.name]
    return _replot_studies(args.replot, names, every=args.name == "all")
  if args.preset not in PRESETS:
    raise MemjaxError(f"Unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}.")
  root = args.out or os.path.join(
      "studies", f"{args.name}-{spec_slug(data)}-{time.strftime('%Y%m%d-%H%M%S')}")
  settings = studies.StudySettings(
      data=data, scale=args.scale, models=args.models, epochs=args.epochs, seed=args.seed,
      config=PRESETS[args.preset], keep_ratio=args.keep_ratio, progress=args.progress,
      log=lambda line: print(line, flush=True))
  dataset = settings.dataset()
  # 'all': every study of the data's task (image studies on images, lm_memorization on text).
  names = ([n for n, s in studies.REGISTRY.items() if s.task == dataset.task]
           if args.name == "all" else [args.name])
  results = {}
  for name in names:
    out = os.path.join(root, name) if args.name == "all" else root
    t0 = time.perf_counter()
    print(f"memjax study {name} ({args.scale}) on {dataset.name} ...", flush=True)
    with settings.runs.saving(os.path.join(root, "runs")):
      results[name] = studies.study(name).run(settings)
    results[name].save(out)
    print(results[name].markdown())
    print(f"  wrote {out}/table.csv, table.md, headline.json, study.json, plot.png "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)
  if len(names) > 1:
    table = studies.claims_table(studies.check_claims(results), f"this run ({args.scale}, "
                                 f"{dataset.name}, {settings.ratio_text()})")
    with open(os.path.join(root, "claims.md"), "w") as f:
      f.write(f"# The seed papers' claims, checked ({args.scale}, {dataset.name})\n\n"
              f"{table}\n")
    print(f"{table}\n  wrote {root}/claims.md", flush=True)
  return 0


def _replot_studies(directory: str, names: list[str], every: bool) -> int:
  """Redraws the plot of the study in ``directory`` (``every``: of each study in its
  subdirectories), checking that it is the study named."""
  targets = [os.path.join(directory, n) for n in names] if every else [directory]
  found = [t for t in targets if os.path.exists(os.path.join(t, "study.json"))]
  if every and not found:
    raise MemjaxError(f"{directory} holds no saved study ({', '.join(names)} subdirectories "
                      "with a study.json); pass the --out of `memjax study all`.")
  for target in found if every else targets:
    print(f"  wrote {studies.replot(target, None if every else names[0])}", flush=True)
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="memjax", description="Per-example memorization, C-scores and membership inference "
      "from many models trained at once in one compiled JAX program.")
  sub = parser.add_subparsers(dest="command", required=True)
  _add_run_parser(sub)
  _add_attack_parser(sub)
  p = sub.add_parser("scores", help="print the summary of a finished run")
  p.add_argument("dir", help="run directory")
  _add_summary_flags(p)
  p = sub.add_parser("plan", help="how many models a run needs for a given interval width",
                     description="From a pilot run: the number of models whose memorization "
                     "intervals have half-width --half-width at the threshold 0.25.")
  p.add_argument("dir", help="the pilot run's directory")
  p.add_argument("--half-width", type=float, default=0.05,
                 help="wanted half-width of the interval at the threshold (default 0.05)")
  p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
  report.add_report_parser(sub)
  _add_study_parser(sub)
  return parser


COMMANDS = {"run": cmd_run, "scores": cmd_scores, "plan": cmd_plan, "attack": cmd_attack,
            "report": report.cmd_report, "study": cmd_study}


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
  # Like `python -m`, find user code (--model mynets:WideNet) in the working directory.
  if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.append(os.getcwd())
  try:
    return COMMANDS[args.command](args)
  except MemjaxError as e:
    print(f"memjax: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("memjax: interrupted; finished work is saved. Resume with `memjax run --resume DIR`.",
          file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
