"""memjax: per-example memorization, C-scores and membership inference from many models at once.

>>> import memjax
>>> data = memjax.load("digits")
>>> run = memjax.train(data, model="mlp", models=16, epochs=2, progress=False)
>>> memjax.memorization(run.correct, run.keep).shape
(1437,)
"""

from memjax import (auditing, canaries, dynamics, example_gradients, intervals, measures, models,
                    privacy, proxies, report, roc, studies)
from memjax.attacks import (AttackResults, evaluate_attacks, lira, lira_statistic, loss_attack,
                            loss_from_statistic, plot_roc, prob_from_statistic, rmia)
from memjax.auditing import audit_epsilon
from memjax.canaries import with_canaries
from memjax.config import PRESETS, TrainConfig
from memjax.data import Dataset, from_arrays, load
from memjax.design import Design
from memjax.errors import MemjaxError
from memjax.planning import plan
from memjax.estimators import (count_memorized, cscore, cscore_se, influence, memorization,
                               memorization_ci, memorization_se)
from memjax.intervals import confidence_interval, difference_ci, proportion_ci
from memjax.records import Records
from memjax.report import write_report
from memjax.runner import Run, train

__version__ = "0.1.0"

__all__ = [
    # modules
    "auditing", "canaries", "dynamics", "example_gradients", "intervals", "measures", "models",
    "privacy", "proxies", "report", "roc", "studies",
    # training and data
    "PRESETS", "TrainConfig", "Dataset", "from_arrays", "load", "Design", "Records", "Run",
    "train", "plan", "MemjaxError", "with_canaries",
    # estimators
    "confidence_interval", "count_memorized", "cscore", "cscore_se", "difference_ci",
    "influence", "memorization", "memorization_ci", "memorization_se", "proportion_ci",
    # attacks and reports
    "AttackResults", "evaluate_attacks", "lira", "lira_statistic", "loss_attack",
    "loss_from_statistic", "plot_roc", "prob_from_statistic", "rmia", "write_report",
    # privacy audits
    "audit_epsilon",
]
