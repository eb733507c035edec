"""How well, and how cheaply, each memorization proxy ranks examples like the full estimator.

Trains the Feldman & Zhang estimator's ensemble (``--models`` MLPs on random halves, evaluated
every epoch), then every proxy of ``memjax.proxies`` from a few models (``--proxy-models``, trained
and measured by ``memjax.dynamics``), and prints one row per proxy: its Spearman correlation with
the ensemble's memorization scores (with a 95% interval), and its wall time, training and
compilation included, as a ratio of the estimator's. The last row is the ceiling: memorization
from one half of the ensemble against the other half. All timings come from the same run on the
same machine. The table itself (:func:`compare_proxies`, :class:`ProxyComparison`) is importable
from this file.

    python benchmarks/proxies_vs_memorization.py                  # digits, 256 models, 20 epochs
    python benchmarks/proxies_vs_memorization.py --models 64 --epochs 10   # quicker
    python benchmarks/proxies_vs_memorization.py --data tfds:cifar10 --model cnn   # if prepared
    python benchmarks/proxies_vs_memorization.py --json out.json  # also the rows as JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import jax
import numpy as np

import memjax
from memjax import estimators, formatting
from memjax.config import TrainConfig
from memjax.correlation import spearman
from memjax.dynamics import (DEFAULT_H, DEFAULT_NUM_VECTORS, _check_models, _resolve,
                             holdout_retraining, second_split_forgetting, track)
from memjax.errors import MemjaxError
from memjax.proxies import (cumulative_gradient_norm, cumulative_loss, forgetting_events,
                            learning_speed, mean_curvature)


# ---- the comparison table -----------------------------------------------------------------------
COLUMNS = ("proxy", "source", "models", "sign", "spearman", "ci_low", "ci_high", "wall_s",
           "cost_ratio")


@dataclasses.dataclass
class ProxyComparison:
  """Spearman correlation of every proxy with memorization, and its cost.

  Attributes:
    rows: one dict per proxy with :data:`COLUMNS`: ``sign`` is the expected direction (+1:
      high proxy = memorized), ``spearman`` the rank correlation with the ensemble's memorization
      scores (95% interval ``ci_low..ci_high``), ``wall_s`` the seconds to compute the proxy
      (training its models, compile included, plus the per-epoch measurements it needs), and
      ``cost_ratio`` = wall_s / the full estimator's seconds.
    memorization: [N] reference scores from the ensemble.
    proxies: name -> [N] proxy values.
    info: ensemble size, epochs, the full estimator's seconds and how they were measured.
  """

  rows: list[dict]
  memorization: np.ndarray
  proxies: dict[str, np.ndarray]
  info: dict

  def markdown(self) -> str:
    """The table in markdown (a "|" in a name, as in "||grad||", is escaped)."""
    rows = []
    for r in self.rows:
      rho = (f"{r['spearman']:+.3f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"
             if np.isfinite(r["spearman"]) else "n/a")
      sign = {1: "+", -1: "-", 0: ""}[r["sign"]]
      cost = ((f"{r['wall_s']:.1f}", f"{r['cost_ratio']:.2f}x") if r["wall_s"] > 0
              else ("0 (reuses the ensemble)", "0"))
      rows.append([r["proxy"], r["source"], r["models"], sign, rho, *cost])
    return formatting.markdown_table(("proxy", "source", "models", "sign",
                                      "Spearman rho [95% CI]", "wall s", "cost vs estimator"),
                                     rows)


def compare_proxies(data: Any = "digits", config: TrainConfig | None = None, *,
                    models: int = 128, proxy_models: int = 4, finetune_epochs: int | None = None,
                    h: float = DEFAULT_H, num_vectors: int = DEFAULT_NUM_VECTORS,
                    progress: bool = False, **overrides) -> ProxyComparison:
  """Correlates every proxy with the memorization score of an M-model ensemble; times both.

  1. The full estimator: ``models`` models on random halves (``eval_every=1`` so the ensemble's
     own histories give record-based proxies too). Its cost is the run's wall time minus the
     per-epoch evaluations it would not need: ``total - eval_s * (T - 1) / T``.
  2. Record-based proxies from that ensemble (forgetting, CSL, learning speed over IN models):
     free given the ensemble, listed for reference with cost 0.
  3. Stand-alone proxies from ``proxy_models`` models trained on the whole training set
     (:func:`track`), ``proxy_models`` models in complementary pairs
     (:func:`second_split_forgetting`) and ``proxy_models`` holdout-retrained models
     (:func:`holdout_retraining`).
  4. A reference row: memorization from the other half of the ensemble's models vs the first
     half (split-half reliability), the ceiling any proxy can reach against a noisy reference.

  Args:
    data: dataset spec or Dataset.
    config: training configuration (default TrainConfig; ``**overrides`` replace fields).
    models: M, models of the full estimator.
    proxy_models: models each stand-alone proxy trains (even; pairs for FSLT/SSFT).
    finetune_epochs: holdout fine-tuning epochs (default epochs // 4).
    h, num_vectors: curvature estimate settings.
    progress: progress bar for the ensemble.

  Returns:
    :class:`ProxyComparison`.
  """
  dataset, config = _resolve(data, config, overrides)
  proxy_models = _check_models(proxy_models, "proxy_models")
  if proxy_models % 2:
    raise MemjaxError(f"proxy_models={proxy_models}; use an even number (FSLT/SSFT trains "
                      "pairs of models on complementary halves).")
  t0 = time.perf_counter()
  run = memjax.train(dataset, config=config.replace(num_models=models, eval_every=1),
                     progress=progress)
  total = time.perf_counter() - t0
  t_evals = len(run.records.eval_epochs)
  full_s = total - run.info["timings"]["eval_s"] * (t_evals - 1) / t_evals
  keep = run.keep
  rec = run.records
  mem = estimators.memorization(run.correct, keep)
  proxies: dict[str, np.ndarray] = {}
  rows: list[dict] = []

  def add(name, source, count, sign, values, seconds):
    proxies[f"{name} [{source}]"] = values
    s = spearman(values, mem)
    rows.append({"proxy": name, "source": source, "models": count, "sign": sign,
                 "spearman": s["rho"], "ci_low": s["low"], "ci_high": s["high"],
                 "wall_s": seconds, "cost_ratio": seconds / full_s})

  correct_hist = np.asarray(rec.train_correct)
  ens = f"ensemble IN ({models})"
  add("forgetting events", ens, models, 1, forgetting_events(correct_hist, keep).score, 0.0)
  add("cumulative loss (CSL)", ens, models, 1, cumulative_loss(rec.train_loss, keep), 0.0)
  add("learning speed (mean p_y)", ens, models, -1, learning_speed(rec.train_prob, keep), 0.0)

  dyn = track(dataset, config, models=proxy_models, h=h, num_vectors=num_vectors)
  base = dyn.seconds["train"] + dyn.seconds["stats"]
  solo = f"{proxy_models} models, full data"
  add("forgetting events", solo, proxy_models, 1, forgetting_events(dyn.correct).score, base)
  add("cumulative loss (CSL)", solo, proxy_models, 1, cumulative_loss(dyn.loss), base)
  add("learning speed (mean p_y)", solo, proxy_models, -1, learning_speed(dyn.prob), base)
  add("CSG, ||grad_w l||", solo, proxy_models, 1, cumulative_gradient_norm(dyn.grad_norm),
      base + dyn.seconds["grad_norm"])
  add("CSG, ||grad_x l||^2 (survey Eq. 12)", solo, proxy_models, 1,
      cumulative_gradient_norm(dyn.input_grad_sq), base + dyn.seconds["input_grad_sq"])
  add("input curvature", solo, proxy_models, 1, mean_curvature(dyn.curvature),
      base + dyn.seconds["curvature"])
  split = second_split_forgetting(dataset, config, models=proxy_models)
  split_s = split.seconds["phase_a"] + split.seconds["phase_b"]
  pairs = f"{proxy_models} models, A/B halves"
  add("first-split learning time", pairs, proxy_models, 1, split.fslt, split.seconds["phase_a"])
  add("second-split forgetting time", pairs, proxy_models, -1, split.ssft, split_s)
  hold = holdout_retraining(dataset, config, models=proxy_models,
                            finetune_epochs=finetune_epochs)
  add("holdout retraining (sym. KL)", f"{proxy_models} models + fine-tune on test",
      proxy_models, 1, hold.score, sum(hold.seconds.values()))
  half = models // 2
  mem_other = estimators.memorization(run.correct[half:], keep[half:])
  s = spearman(mem_other, estimators.memorization(run.correct[:half], keep[:half]))
  rows.append({"proxy": "memorization, other half (reference)",
               "source": f"ensemble halves ({half} vs {models - half})", "models": half,
               "sign": 1, "spearman": s["rho"], "ci_low": s["low"], "ci_high": s["high"],
               "wall_s": full_s / 2, "cost_ratio": 0.5})
  info = {"models": models, "proxy_models": proxy_models, "epochs": config.epochs,
          "model": config.model, "model_kwargs": config.model_kwargs,
          "num_train": dataset.num_train, "data": dataset.name, "full_estimator_s": full_s,
          "ensemble_wall_s": total, "memorized": estimators.count_memorized(mem),
          "full_estimator_s_definition": "wall time of memjax.train minus the per-epoch "
                                         "evaluations: total - eval_s * (T - 1) / T"}
  return ProxyComparison(rows=rows, memorization=mem, proxies=proxies, info=info)


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
  table = compare_proxies(args.data, models=args.models, proxy_models=args.proxy_models,
                          model=args.model, epochs=args.epochs, seed=args.seed, progress=True)
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
