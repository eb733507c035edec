"""Command line: ``memjax run | scores | attack | report | study``.

    memjax run                                  # 256 MLPs on the embedded digits, ~a minute
    memjax run --data tfds:cifar10 --model resnet --preset back_to_fundamentals --out runs/c10
    memjax run --resume runs/c10                # continue a killed run
    memjax run --resume runs/c10 --models 512   # grow it: trains only the new models
    memjax scores runs/c10                      # print the summary again
    memjax attack runs/c10                      # LiRA / RMIA / loss audit, ROC plot
    memjax report runs/c10                      # self-contained HTML report
    memjax study model_size                     # a study of the seed papers (or `all`)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from memjax import report, studies
from memjax.data import spec_slug
from memjax.errors import MemjaxError


def _add_run_parser(sub) -> None:
  p = sub.add_parser("run", help="train an ensemble on random subsets and score every example",
                     description="Train M models, each on a random subset of the training set, "
                     "in one compiled program; write records, scores.csv and run.json to --out.")
  p.add_argument("--data", default=None, help="dataset spec: digits (default, offline), "
                 "npz:PATH, PATH.npz, tfds:NAME[:TRAIN_SPLIT[,TEST_SPLIT]]")
  p.add_argument("--preset", default="default", help="configuration preset: default, "
                 "back_to_fundamentals, lira (flags below override it)")
  p.add_argument("--model", help="logreg, mlp, cnn, vgg, resnet, vit")
  p.add_argument("--model-kwargs", type=json.loads, metavar="JSON",
                 help='model knobs as JSON, e.g. \'{"widths": [512, 512]}\' or \'{"width": 32}\'')
  p.add_argument("--models", type=int, dest="num_models", help="number of models M")
  p.add_argument("--epochs", type=int)
  p.add_argument("--batch-size", type=int)
  p.add_argument("--lr", type=float, dest="learning_rate", help="peak learning rate")
  p.add_argument("--momentum", type=float)
  p.add_argument("--weight-decay", type=float)
  p.add_argument("--schedule", choices=("triangular", "cosine", "constant"))
  p.add_argument("--augment", choices=("none", "flip", "translate", "flip_translate"))
  p.add_argument("--translate", type=int, help="max shift in pixels for translate")
  p.add_argument("--queries", type=int, dest="query_augmentations",
                 help="number A of augmented queries for the LiRA statistic")
  p.add_argument("--keep-ratio", type=float, help="fraction of the training set per model")
  p.add_argument("--keep-ratios", type=lambda s: tuple(float(r) for r in s.split(",")),
                 help="several ratios (C-score design), e.g. 0.1,0.3,0.5,0.7,0.9")
  p.add_argument("--design", choices=("balanced", "bernoulli"))
  p.add_argument("--eval-every", type=int, help="also evaluate every k epochs")
  p.add_argument("--seed", type=int)
  p.add_argument("--chunk-size", type=int, help="models per compiled chunk (default: fit "
                 "the memory budget)")
  p.add_argument("--memory-budget", type=float, help="device bytes per chunk, e.g. 4e9")
  p.add_argument("--checkpoint-seconds", type=float, help="checkpoint the training state "
                 "at the end of an epoch once this many seconds passed since the last (0: never)")
  p.add_argument("--out", help="run directory (default runs/DATA-MODEL-TIMESTAMP); never "
                 "overwritten")
  p.add_argument("--resume", metavar="DIR", help="continue (or, with a larger --models, grow) "
                 "the run in DIR")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")
  p.add_argument("--top", type=int, default=10, help="most memorized examples to list")
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
                     "models: LiRA (online/offline, fixed variance), RMIA and the loss "
                     "threshold. Writes DIR/attacks.json, DIR/roc.png and per-example "
                     "mia_auc_* columns in DIR/scores.csv.")
  p.add_argument("dir", help="run directory")
  p.add_argument("--attacks", type=lambda s: tuple(s.split(",")), default=DEFAULT_ATTACKS,
                 help=f"comma-separated subset of {','.join(ATTACKS)}")
  p.add_argument("--max-targets", type=int, help="use only the first K models as targets")


CONFIG_FLAGS = ("model", "model_kwargs", "num_models", "epochs", "batch_size", "learning_rate",
                "momentum", "weight_decay", "schedule", "augment", "translate",
                "query_augmentations", "keep_ratio", "keep_ratios", "design", "eval_every",
                "seed", "chunk_size", "memory_budget", "checkpoint_seconds")


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
  from memjax.config import PRESETS

  if args.preset not in PRESETS:
    raise MemjaxError(f"Unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}.")
  changes = {k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None}
  if "memory_budget" in changes:
    changes["memory_budget"] = int(changes["memory_budget"])
  progress = not args.no_progress
  if args.resume:
    if args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
      raise MemjaxError("--resume DIR continues DIR; do not also pass a different --out.")
    data = args.data
    if data is None:
      data = runner.read_run_info(args.resume).get("data_spec")
    if data is None:
      raise MemjaxError(f"Cannot tell which data {args.resume!r} was trained on; pass --data.")
    run = runner.train(data, directory=args.resume, resume=True, progress=progress, **changes)
  else:
    data = args.data or "digits"
    config = PRESETS[args.preset].replace(**changes)
    out = args.out or os.path.join(
        "runs", f"{spec_slug(data)}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    run = runner.train(data, config=config, directory=out, progress=progress)
  import jax
  if jax.process_index() != 0:  # on several hosts process 0 writes and reports
    return 0
  print(run.summary(top=args.top))
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
  print(f"  wrote {os.path.join(directory, 'attacks.json')}, roc.png and mia_auc_* columns in "
        "scores.csv")


def cmd_scores(args) -> int:
  from memjax import runner
  run = runner.Run.load(args.dir)
  print(run.summary(top=args.top))
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
  p.add_argument("--top", type=int, default=10)
  report.add_report_parser(sub)
  studies.add_study_parser(sub)
  return parser


COMMANDS = {"run": cmd_run, "scores": cmd_scores, "attack": cmd_attack,
            "report": report.cmd_report, "study": studies.cmd_study}


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
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
