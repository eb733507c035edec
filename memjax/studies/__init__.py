"""The experiments of "Back to Fundamentals: Re-examining Memorization in Deep Learning Models",
and four of the survey of memorization (mitigations, the privacy onion effect, noisy labels,
differential privacy).

Each study trains ensembles with :func:`memjax.train`, estimates Feldman & Zhang memorization
(an example is *memorized* when its score is at least the threshold, 0.25 as in the paper) and
returns a :class:`StudyResult`: a table, a headline figure and a plot, written by
:meth:`StudyResult.save` (``table.csv``, ``table.md``, ``headline.json``, ``plot.png``, and what
:meth:`StudyResult.load` needs to redraw the plot without training).

================================  ===============================================================
study                             question (paper section)
================================  ===============================================================
:func:`model_size`                memorization vs parameters within a family (Table 1, Fig. 1)
:func:`epochs`                    memorization per epoch; the stages none / rise / fall (Fig. 2)
:func:`transient`                 model-wise and temporal-wise transient memorization (Sec. 4.3)
:func:`gap`                       memorization count vs train-test gap, Pearson r (Fig. 3)
:func:`natural_vs_artificial`     injected noisy labels / noisy inputs vs natural points
:func:`cscore`                    C-scores (Jiang et al.): held-out accuracy vs subset ratio
:func:`mitigation`                memorization and LiRA TPR under augmentation, weight decay,
                                  dropout, label smoothing, early stopping (survey Sec. 4.7)
:func:`onion`                     the privacy onion effect (Carlini et al. 2022): remove the most
                                  vulnerable examples, retrain, measure the next layer
:func:`noisy_labels`              flipped labels found by memorization, C-score, proxies and
                                  attacks: precision@k and AUROC
:func:`privacy`                   DP-SGD at epsilon inf, 8, 4, 1: test accuracy, memorized
                                  count, LiRA TPR, audited epsilon beside the theoretical one
:func:`lm_memorization`           language models (on text, ``pydoc`` by default): counterfactual
                                  memorization, canary exposure and extraction vs repetitions,
                                  model size and epochs, and LiRA vulnerability
================================  ===============================================================

:func:`check_claims` compares the headline figures of the first five (and of the last three)
with the paper's claims (and the survey's).

Every study takes the same settings (:class:`StudySettings`: data, scale, models, epochs, seed,
config, threshold, keep_ratio (0.7, the paper's, by default), progress, log, cache) as keyword arguments, plus its own options (which
families, which fractions). Scales (:data:`SCALES`): ``"small"`` trains a handful of tiny models
for seconds (tests, pass a small dataset); ``"default"`` is the report's setting on the embedded
digits, minutes on a 2-core CPU; ``"large"`` is meant for accelerators and larger ``data`` (e.g.
``tfds:cifar10``) and has not been run on the CPU. ``models=`` and ``epochs=`` override a scale;
``config=`` sets the other training fields (e.g. ``memjax.PRESETS["back_to_fundamentals"]``),
except where a family brings its own recipe: the vit family of ``model_size`` / ``gap`` trains
with ``memjax.config.VIT_DIGITS_RECIPE`` (an Arch's 4th element, see
:func:`memjax.studies.scales.arch_config`).

Runs with equal data and configuration are trained once per process (:class:`RunCache`,
:func:`clear_cache`), so running several studies in one process (``memjax study all``) trains
each ensemble once; inside :func:`saving_runs` they are also saved and resumed.

Counts carry a bootstrap standard error over models
(:func:`memjax.estimators.memorized_count_se`).

Adding a study: a module in this package with a public function (``NAME(data, *, options,
**settings)``), ``run(settings, **options)``, ``plot(result, path)`` and a :class:`Study` record
``STUDY``; then its import and one entry in :data:`REGISTRY` below.
"""

from __future__ import annotations

import os
from typing import Any

from memjax.errors import MemjaxError
# Estimators that once lived here; still importable from memjax.studies.
from memjax.estimators import (memorization_history, memorized_count_se,  # noqa: F401
                               null_memorized_count)
from memjax.plotting import FAMILY_STYLES  # noqa: F401
from memjax.studies.cache import SHARED, RunCache, clear_cache, saving_runs  # noqa: F401
from memjax.studies.claims import Claim, check_claims, claims_table  # noqa: F401
from memjax.studies.cscore import STUDY as _CSCORE
from memjax.studies.cscore import cscore  # noqa: F401
# Each study's function has its module's name: memjax.studies.epochs is the function; import
# the module's other parts by their full path (from memjax.studies.epochs import plot).
from memjax.studies.epochs import STUDY as _EPOCHS
from memjax.studies.epochs import detect_stages, epochs  # noqa: F401
from memjax.studies.gap import STUDY as _GAP
from memjax.studies.gap import gap  # noqa: F401
from memjax.studies.lm_memorization import STUDY as _LM_MEMORIZATION
from memjax.studies.lm_memorization import lm_memorization  # noqa: F401
from memjax.studies.model_size import STUDY as _MODEL_SIZE
from memjax.studies.mitigation import MITIGATIONS, Mitigation, mitigation  # noqa: F401
from memjax.studies.mitigation import STUDY as _MITIGATION
from memjax.studies.model_size import model_size  # noqa: F401
from memjax.studies.natural_vs_artificial import STUDY as _NATURAL_VS_ARTIFICIAL
from memjax.studies.noisy_labels import STUDY as _NOISY_LABELS
from memjax.studies.noisy_labels import (detection_auroc, flip_labels,  # noqa: F401
                                         noisy_labels, precision_at_k)
from memjax.studies.onion import STUDY as _ONION
from memjax.studies.onion import onion, remove_examples  # noqa: F401
from memjax.studies.privacy import STUDY as _PRIVACY
from memjax.studies.privacy import privacy  # noqa: F401
from memjax.studies.natural_vs_artificial import (GROUP_NAMES, NATURAL,  # noqa: F401
                                                  NOISY_INPUT, NOISY_LABEL, inject_artificial,
                                                  natural_vs_artificial)
from memjax.studies.result import Study, StudyResult  # noqa: F401
from memjax.studies.scales import (IMAGE_MODELS, SCALES, Arch, Scale,  # noqa: F401
                                   arch_label)
from memjax.studies.settings import PAPER_KEEP_RATIO, THRESHOLD, StudySettings  # noqa: F401
from memjax.studies.transient import STUDY as _TRANSIENT
from memjax.studies.transient import transient  # noqa: F401

REGISTRY: dict[str, Study] = {s.name: s for s in (
    _MODEL_SIZE, _EPOCHS, _TRANSIENT, _GAP, _NATURAL_VS_ARTIFICIAL, _CSCORE, _MITIGATION,
    _ONION, _NOISY_LABELS, _PRIVACY, _LM_MEMORIZATION)}
STUDIES = tuple(REGISTRY)
FUNCTIONS = {name: s.function for name, s in REGISTRY.items()}  # name -> memjax.studies.NAME


def study(name: str) -> Study:
  """The registered :class:`Study` called ``name``, or an error listing them."""
  if name not in REGISTRY:
    raise MemjaxError(f"Unknown study {name!r}; choose one of {', '.join(REGISTRY)} (or 'all' "
                      "on the command line).")
  return REGISTRY[name]


def run_study(name: str, data: Any = None, *, out: str | None = None,
              **kwargs) -> StudyResult:
  """Runs the study ``name`` (a key of :data:`REGISTRY`) and saves it to ``out`` if given.

  Args:
    name: the study.
    data: dataset spec or Dataset (None: the study's default, ``"digits"`` or for the language
      models' study ``"pydoc"``).
    out: directory for :meth:`StudyResult.save`; None saves nothing.
    **kwargs: the study's options and :class:`StudySettings` fields.
  """
  entry = study(name)
  result = entry.function(entry.default_data if data is None else data, **kwargs)
  if out is not None:
    result.save(out)
  return result


def replot(directory: str, name: str | None = None) -> str:
  """Redraws ``directory/plot.png`` from the study saved there, without training; returns the
  path of the plot.

  Args:
    directory: a study's output directory (written by :meth:`StudyResult.save`).
    name: the study expected there; another one is an error saying which it is.
  """
  result = StudyResult.load(directory)
  if name is not None and result.name != name:
    raise MemjaxError(f"{directory} holds the study {result.name!r}, not {name!r}; run "
                      f"`memjax study {result.name} --replot {directory}`.")
  path = os.path.join(directory, "plot.png")
  result.plot(path)
  return path
