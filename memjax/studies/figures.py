"""The figures the studies report about one trained ensemble: accuracies and memorized count
(model_size, mitigation and privacy rows)."""

from __future__ import annotations

import numpy as np

from memjax import estimators

FIGURES = ("train_acc", "test_acc", "memorized", "memorized_se", "null_memorized", "mean_score",
           "sd_score")


def ensemble_figures(trained, threshold: float, evaluation: int = -1) -> dict[str, float]:
  """An ensemble's figures at one of its evaluations.

  Args:
    trained: a :class:`memjax.Run`.
    threshold: an example is memorized when its score is at least this.
    evaluation: index into the run's evaluations (-1: after the last epoch).

  Returns:
    {"train_acc": mean accuracy of the models on their own subsets, "test_acc", "memorized":
    #examples with score >= threshold, "memorized_se": its bootstrap SE over models,
    "null_memorized": the count a permutation of IN/OUT gives (estimation noise alone),
    "mean_score", "sd_score"}.
  """
  records, keep = trained.records, trained.keep
  correct = np.asarray(records.train_correct[evaluation])
  mem = estimators.memorization(correct, keep)
  mean, sd = estimators.mean_sd(mem)
  return {
      "train_acc": float(records.train_accuracy()[evaluation].mean()),
      "test_acc": float(records.test_accuracy()[evaluation].mean()),
      "memorized": estimators.count_memorized(mem, threshold),
      "memorized_se": estimators.memorized_count_se(correct, keep, threshold),
      "null_memorized": estimators.null_memorized_count(correct, keep, threshold),
      "mean_score": mean, "sd_score": sd}
