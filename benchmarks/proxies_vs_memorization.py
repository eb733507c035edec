"""How well, and how cheaply, each memorization proxy ranks examples like the full estimator.

Trains the Feldman & Zhang estimator's ensemble (``--models`` MLPs on random halves, evaluated
every epoch), then every proxy of ``memjax.proxies`` from a few models (``--proxy-models``), and
prints one row per proxy: its Spearman correlation with the ensemble's memorization scores (with
a 95% interval), and its wall time, training and compilation included, as a ratio of the
estimator's. The last row is the ceiling: memorization from one half of the ensemble against the
other half. All timings come from the same run on the same machine.

    python benchmarks/proxies_vs_memorization.py                  # digits, 256 models, 20 epochs
    python benchmarks/proxies_vs_memorization.py --models 64 --epochs 10   # quicker
    python benchmarks/proxies_vs_memorization.py --data tfds:cifar10 --model cnn   # if prepared
    python benchmarks/proxies_vs_memorization.py --json out.json  # also the rows as JSON
"""

from __future__ import annotations

import argparse
import json
import time

import jax

import memjax
from memjax import proxies


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data", default="digits", help="dataset spec (default: digits)")
  parser.add_argument("--model", default="mlp")
  parser.add_argument("--models", type=int, default=256, help="models of the full estimator")
  parser.add_argument("--proxy-models", type=int, default=4,
                      help="models each stand-alone proxy trains (even)")
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--json", help="write the rows and run info to this file")
  args = parser.parse_args()

  print(f"jax {jax.__version__} on {jax.default_backend()} ({jax.device_count()} device(s)); "
        f"data {args.data}, model {args.model}, {args.epochs} epochs", flush=True)
  start = time.perf_counter()
  table = proxies.compare_proxies(args.data, models=args.models, proxy_models=args.proxy_models,
                                  model=args.model, epochs=args.epochs, seed=args.seed,
                                  progress=True)
  info = table.info
  print(f"\nfull estimator: {info['models']} models, {info['full_estimator_s']:.1f} s "
        f"({info['full_estimator_s_definition']}); {info['memorized']} of {info['num_train']} "
        f"examples memorized at {memjax.estimators.DEFAULT_THRESHOLD}\n")
  print(table.markdown())
  print(f"\n(sign: the direction a good proxy correlates with memorization; total "
        f"{time.perf_counter() - start:.0f} s)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"rows": table.rows, "info": info, "args": vars(args)}, f, indent=1, default=float)


if __name__ == "__main__":
  main()
