"""The run cache: every ensemble the studies of a process train, trained once.

Studies share ensembles: ``gap`` reads the ensembles of ``model_size``, ``transient`` those of
``model_size`` and ``epochs``. A :class:`RunCache` remembers, for one process,

* the datasets loaded from spec strings (so that ``"digits"`` is one :class:`memjax.Dataset`),
* the finished runs, keyed by the dataset's identity and the TrainConfig's JSON,
* the datasets with injected artificial points of ``natural_vs_artificial``, and the other
  datasets a study derives from its data (:meth:`RunCache.derived`: flipped labels, examples
  removed),

and, inside :meth:`RunCache.saving`, saves every ensemble as a memjax run under a directory, so
that an interrupted study resumes and a repeated one trains nothing. Studies use the
process-wide :data:`SHARED` cache unless their :class:`~memjax.studies.StudySettings` name
another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from typing import Any, Callable

import numpy as np

from memjax import imports
from memjax import models as models_lib
from memjax.config import TrainConfig
from memjax.data import Dataset, load, spec_slug


class RunCache:
  """Datasets and trained ensembles shared by the studies of one process.

  Args:
    directory: save every ensemble as a memjax run under this directory (see :meth:`saving`);
      None keeps them in memory only.
  """

  def __init__(self, directory: str | os.PathLike | None = None):
    self.directory = None if directory is None else os.fspath(directory)
    self._datasets: dict[str, Dataset] = {}
    self._runs: dict[tuple[int, str], tuple[Dataset, Any, float]] = {}
    self._injected: dict[tuple, tuple[Dataset, Dataset, np.ndarray]] = {}
    self._derived: dict[tuple, tuple[Dataset, Any]] = {}

  def clear(self) -> None:
    """Forgets every dataset and ensemble (saved runs stay on disk)."""
    self._datasets.clear()
    self._runs.clear()
    self._injected.clear()
    self._derived.clear()

  def __len__(self) -> int:
    """The number of ensembles held."""
    return len(self._runs)

  @contextlib.contextmanager
  def saving(self, directory: str | os.PathLike):
    """Within the block, every ensemble trained is a memjax run saved under ``directory``.

    Each ensemble goes to ``directory/DATA-MODEL-HASH`` (HASH of its configuration). A run that
    is already there is resumed, or reused when finished, so an interrupted study loses at most
    the chunk in progress and a repeated one trains nothing. ``memjax study --out DIR`` uses
    ``DIR/runs``; ``memjax report DIR/runs/NAME`` renders any of them.
    """
    previous, self.directory = self.directory, os.fspath(directory)
    try:
      yield self
    finally:
      self.directory = previous

  def dataset(self, data: Any) -> Dataset:
    """``memjax.load(data)``, memoised for spec strings so that every study shares one
    Dataset (a Dataset passed in is returned as it is)."""
    if isinstance(data, (str, os.PathLike)):
      spec = os.fspath(data)
      if spec not in self._datasets:
        self._datasets[spec] = load(spec)
      return self._datasets[spec]
    return load(data)

  def injected(self, dataset: Dataset, label_fraction: float, input_fraction: float,
               seed: int, inject: Callable) -> tuple[Dataset, np.ndarray]:
    """``inject(dataset, label_fraction, input_fraction, seed)``, made once per arguments (so
    that its Dataset, and with it the ensembles trained on it, are shared)."""
    key = (id(dataset), label_fraction, input_fraction, seed)
    if key not in self._injected:  # the dataset is kept so that its id stays unique
      self._injected[key] = (dataset, *inject(dataset, label_fraction, input_fraction, seed))
    return self._injected[key][1:]

  def derived(self, dataset: Dataset, key: tuple, make: Callable[[], Any]) -> Any:
    """``make()``, made once per (dataset, key): a dataset a study derives from ``dataset``
    (with what goes with it, e.g. the mask of the changed examples), shared so that the
    ensembles trained on it are too.

    Args:
      dataset: the dataset it derives from (its identity is part of the key).
      key: what else it depends on, hashable, e.g. ``("flipped labels", 0.1, seed)``.
      make: builds it.
    """
    full = (id(dataset), *key)
    if full not in self._derived:  # the dataset is kept so that its id stays unique
      self._derived[full] = (dataset, make())
    return self._derived[full][1]

  def train(self, dataset: Dataset, config: TrainConfig, progress: bool = False,
            log: Callable[[str], None] | None = None):
    """``memjax.train`` once per (dataset, config); returns (run, wall seconds of the training).

    Args:
      dataset: the data (its identity is part of the key).
      config: the ensemble's TrainConfig.
      progress: progress bars while training.
      log: a print-like callable, given one line per ensemble trained.
    """
    from memjax import runner
    config_json = json.dumps(config.to_dict(), sort_keys=True, default=str)
    # Objects without an import path are all "<unsaved ...>" in the JSON: tell them apart by
    # identity, which also keeps another process from reusing their saved runs.
    if imports.UNSAVED_PREFIX in config_json:
      parts = (config.model, config.optimizer, config.loss, *config.measures.values())
      config_json += repr([id(p) for p in parts if not isinstance(p, (str, type(None)))])
    key = (id(dataset), config_json)
    if key in self._runs:
      return self._runs[key][1:]
    directory = self.run_directory(dataset, config, config_json)
    resume = directory is not None and os.path.exists(os.path.join(directory, "run.json"))
    t0 = time.perf_counter()
    run = runner.train(dataset, config=config, directory=directory, resume=resume,
                       progress=progress)
    wall = time.perf_counter() - t0
    self._runs[key] = (dataset, run, wall)  # the dataset is kept so that its id stays unique
    if log is not None:
      log(f"  trained {config.model} {config.model_kwargs} x{config.num_models} models, "
          f"{config.epochs} epochs: {wall:.1f} s")
    return run, wall

  def run_directory(self, dataset: Dataset, config: TrainConfig,
                    config_json: str) -> str | None:
    """``directory/DATA-MODEL-HASH`` when saving, else None."""
    if self.directory is None:
      return None
    digest = hashlib.sha1(config_json.encode()).hexdigest()[:10]
    name = spec_slug(models_lib.model_name(config.model))
    return os.path.join(self.directory, f"{spec_slug(dataset.name)}-{name}-{digest}")


SHARED = RunCache()  # the cache of the studies of this process, unless told otherwise


def clear_cache() -> None:
  """Forgets the datasets and ensembles the studies loaded and trained in this process."""
  SHARED.clear()


def saving_runs(directory: str | os.PathLike):
  """Within the block, every ensemble a study trains is saved under ``directory`` (see
  :meth:`RunCache.saving`; this is that of :data:`SHARED`).

  >>> from memjax import studies
  >>> with studies.saving_runs("studies/mine/runs"):  # doctest: +SKIP
  ...   result = studies.model_size("digits")
  """
  return SHARED.saving(directory)
