"""Membership-inference audit of a finished run directory (``memjax attack DIR``).

Runs :func:`memjax.attacks.evaluate_attacks` on the run's records (every model in turn the
target, the others its shadow models) and writes next to the run:

* ``attacks.json``: per attack AUC, balanced accuracy, TPR at FPR 1%, 0.1%, 0.01% (NaN where
  too few non-members), per-target metrics, timings;
* ``roc.png``: log-log ROC curves of all attacks;
* ``scores.csv``: gains one ``mia_auc_<attack>`` column per attack, the per-example
  vulnerability (AUC of telling the targets that trained on the example from those that did not).

When the run has canaries (``memjax run --canaries K``, :mod:`memjax.canaries`), attacks.json
also holds ``privacy_audit`` (:func:`memjax.auditing.privacy_audit`): per attack, a lower bound
on epsilon at 95% confidence from the attack's scores on the canaries (every target model x every
canary), beside the theoretical epsilon of a DP run (run.json ``privacy``). The audit's delta is
that run's delta, else 1e-5. A language model's text canaries (secrets repeated r times) are
audited once per secret (:func:`memjax.auditing.privacy_audit`).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from memjax import attacks as attacks_lib
from memjax import auditing, runner
from memjax import scores as scores_lib
from memjax.errors import MemjaxError
from memjax.records import Records


def audit(directory: str, attacks: Sequence[str] = attacks_lib.DEFAULT_ATTACKS,
          max_targets: int | None = None) -> attacks_lib.AttackResults:
  """Evaluates the attacks on the run in ``directory`` and writes its outputs (see above)."""
  records = Records.load(os.path.join(directory, "records"))
  if records.num_models < 4:
    raise MemjaxError(f"The run in {directory!r} has {records.num_models} models; leave-one-"
                      "model-out attacks need shadow models with and without each example. "
                      "Grow it: memjax run --resume DIR --models 64.")
  info = runner.read_run_info(directory)
  canaries = info["data"].get("canaries")
  keep = np.asarray(records.keep)
  results = attacks_lib.evaluate_attacks(
      np.asarray(records.train_lira), keep, test_stats=np.asarray(records.test_lira),
      attacks=attacks, max_targets=max_targets, return_scores=canaries is not None)
  if canaries is not None:
    results.privacy_audit = auditing.privacy_audit(results, keep, canaries, info.get("privacy"))
    for result in results.attacks.values():
      result.scores = None  # [T, N] per attack: needed only for the audit
  results.to_json(os.path.join(directory, "attacks.json"))
  attacks_lib.plot_roc(results, os.path.join(directory, "roc.png"))
  data = None
  if records.task == "language_model":  # the score table's text column needs the sequences
    try:
      data = runner.load_recorded_data(info)
    except Exception:  # in-memory or moved data: the table without text
      data = None
  table = scores_lib.table(records, data)
  table.update(results.per_example_columns())
  scores_lib.write_csv(os.path.join(directory, "scores.csv"), table)
  return results
