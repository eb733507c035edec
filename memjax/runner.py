"""``memjax.train``: design, chunks, the epoch loop, progress, checkpoints, records.

A run trains ``num_models`` models in chunks of ``chunk_size`` (one compiled program trains a
whole chunk; chunks run one after another). Every model's randomness (initialisation, data
order, augmentation, Poisson batches, DP-SGD noise) depends only on ``(seed, model index)``, so
the records do not depend on the chunking, the number of devices, or on interruptions (bit for
bit with shuffled batches; with Poisson batches and DP-SGD to float rounding, ~1e-6, as XLA sums
those vmapped programs in an order that depends on the chunk size).

With a run directory, records are memory-mapped files there, written as each evaluation
finishes; training state is checkpointed with orbax every ``checkpoint_seconds`` (at the end of
an epoch; atomic, the last two kept), and ``progress.json`` lists the finished chunks. A killed run resumes with
``memjax.train(..., directory=DIR, resume=True)`` (``memjax run --resume DIR``): finished chunks
are never recomputed and the rest continues from its last checkpoint, giving records identical
to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import time
import warnings
from typing import Any

import jax
import numpy as np

from memjax import canaries as canaries_lib
from memjax import design as design_lib
from memjax import engine as engine_lib
from memjax import formatting, imports
from memjax import models as models_lib
from memjax import privacy as privacy_lib
from memjax import records as records_lib
from memjax import tuning
from memjax.config import TrainConfig, check_fields
from memjax.data import Dataset, load
from memjax.errors import MemjaxError
from memjax.records import Records

RUN_FORMAT = "memjax.run/1"


@dataclasses.dataclass
class Run:
  """A finished (or loaded) run.

  Attributes:
    config: the training configuration.
    data: the dataset it was trained on.
    design: the keep-mask design.
    records: per model/example arrays (see :mod:`memjax.records`).
    info: run metadata: timings, versions, devices, chunking, parameter count.
    directory: where it is saved, or None for an in-memory run.
  """

  config: TrainConfig
  data: Dataset
  design: design_lib.Design
  records: Records
  info: dict[str, Any]
  directory: str | None = None

  @property
  def keep(self) -> np.ndarray:
    """[M, N] bool keep mask."""
    return np.asarray(self.records.keep)

  @property
  def correct(self) -> np.ndarray:
    """[M, N] bool, correctness on training examples after the last epoch."""
    return self.records.correct

  @property
  def test_correct(self) -> np.ndarray:
    """[M, N_test] bool, correctness on test examples after the last epoch."""
    return self.records.test_correct_final

  @property
  def groups(self) -> np.ndarray:
    """[M] int32 subset-ratio group of each model."""
    return np.asarray(self.records.groups)

  def scores(self) -> dict[str, np.ndarray]:
    """Per-example score table (columns of ``scores.csv``), see :func:`memjax.scores.table`."""
    from memjax import scores
    return scores.table(self.records, self.data)

  def summary(self, top: int = 10, rank: str = "score") -> str:
    """A short text summary: accuracies, memorized count, most memorized examples (ranked by
    score, or with ``rank="lower"`` by the lower bound of their interval)."""
    from memjax import scores
    return scores.summary(self, top=top, rank=rank)

  @classmethod
  def load(cls, directory: str, data: Dataset | None = None) -> "Run":
    """Opens a run directory written by :func:`train` (records memory-mapped)."""
    info = read_run_info(directory)
    config = TrainConfig.from_dict(info["config"])
    data = load_recorded_data(info) if data is None else canaries_lib.apply_record(
        load(data), info["data"].get("canaries"))
    records = Records.load(os.path.join(directory, "records"))
    design = design_lib.Design(
        keep=np.asarray(records.keep), groups=np.asarray(records.groups),
        ratios=tuple(info["design"]["ratios"]), kind=info["design"]["kind"],
        seed=info["design"]["seed"], block_starts=tuple(info["design"]["block_starts"]))
    return cls(config=config, data=data, design=design, records=records, info=info,
               directory=directory)


def train(data: Any = "digits", model: Any = None, models: int | None = None,
          epochs: int | None = None, keep_ratio: float | None = None, seed: int | None = None,
          *, optimizer: Any = None, loss: Any = None, measures: Any = None,
          config: TrainConfig | None = None, directory: str | None = None,
          resume: bool = False, progress: bool = True, mesh=None, keep=None,
          **overrides) -> Run:
  """Trains ``models`` models, each on its own random subset, in one compiled program per chunk.

  Args:
    data: a dataset spec (``"digits"``, ``"npz:PATH"``, ``"tfds:NAME"``), a Dataset or arrays.
    model: a built-in name (``"mlp"``, ``"vit"``, ...), an import path ``"pkg.module:Name"``, or
      your flax NNX Module class / factory (see :mod:`memjax.models` for the protocol); knobs go
      in ``model_kwargs={...}``.
    models, epochs, keep_ratio, seed: the TrainConfig fields ``num_models``, ``epochs``,
      ``keep_ratio``, ``seed``.
    optimizer: an ``optax.GradientTransformation``, a callable ``total_steps ->
      GradientTransformation``, an optax function name (with ``optimizer_kwargs``) or an import
      path; replaces the default SGD chain entirely (see :class:`TrainConfig`).
    loss: per-example loss ``(logits [B, C], labels [B]) -> [B]`` (default cross-entropy;
      ``label_smoothing=0.1`` smooths the built-in one).
    measures: extra per-example measures to record, ``{name: fn(logits, labels) -> [B]}``;
      they land in ``run.records.train_NAME`` [T, M, N] and feed the estimators
      (``memjax.memorization(run.records.train_NAME[-1], run.keep)``).
    config: a full :class:`TrainConfig` (the arguments above and ``overrides`` replace fields).
    directory: save the run there (records, checkpoints, run.json); it must not exist unless
      ``resume``.
    resume: continue the run in ``directory``; a larger ``models`` grows it. A run trained with
      objects that have no import path (a lambda, an optax transformation) needs them again.
    progress: show a progress bar.
    mesh: a ``jax.sharding.Mesh`` with axis "models" (default: all devices).
    keep: optional [M, N] bool keep mask of your own (e.g. leave-one-out designs); replaces the
      configured design, and M = keep.shape[0].
    **overrides: any other TrainConfig field, e.g. ``batch_size=256, augment="flip_translate"``;
      a misspelt name raises MemjaxError naming the close matches.

  Returns:
    A :class:`Run`; ``run.correct`` [M, N], ``run.keep`` [M, N], ``run.records`` ...

  >>> run = train("digits", model="logreg", models=8, epochs=2, progress=False)
  >>> run.correct.shape
  (8, 1437)
  """
  check_fields(overrides, "memjax.train")
  shortcuts = {"model": model, "num_models": models, "epochs": epochs,
               "keep_ratio": keep_ratio, "seed": seed, "optimizer": optimizer, "loss": loss,
               "measures": measures}
  changes = {k: v for k, v in shortcuts.items() if v is not None} | overrides
  dataset = load(data)
  data_spec = dataset.spec
  if resume:
    if directory is None:
      raise MemjaxError("resume=True needs the run directory to resume.")
    return _resume(directory, dataset, changes, progress=progress, mesh=mesh)
  config = (config or TrainConfig()).replace(**changes) if changes or config else TrainConfig()
  if directory is not None and os.path.exists(directory):
    raise MemjaxError(f"Run directory {directory!r} already exists; memjax never overwrites a "
                      "run. Resume it (memjax run --resume DIR), or choose a new directory.")
  if keep is not None:
    design = design_lib.custom(keep, dataset.num_train, config.seed)
    config = config.replace(num_models=design.num_models)
  else:
    design = design_lib.make(config.design, config.num_models, dataset.num_train,
                             config.ratios, config.seed)
  design = _tie_canary_copies(design, dataset)
  info = _new_info(config, dataset, data_spec, design)
  return _execute(config, dataset, design, info, directory, progress=progress, mesh=mesh)


def _tie_canary_copies(design: design_lib.Design, dataset: Dataset) -> design_lib.Design:
  """The design with every copy of a repeated text canary IN or OUT together (the first copy
  decides): a secret repeated r times is one secret seen r times, not r independent examples."""
  record = dataset.canaries
  if record is None or record.get("kind") != "secret":
    return design
  return dataclasses.replace(design, keep=canaries_lib.tie_copies(design.keep, record))


def load_recorded_data(info: dict[str, Any]) -> Dataset:
  """Reloads the dataset a run was trained on, from its run.json ``info`` (spec and
  preprocessing), with its canaries (:mod:`memjax.canaries`) re-created from their record."""
  if info.get("data_spec") is None:
    raise MemjaxError("The run was trained on in-memory arrays, not a dataset spec; pass them: "
                      "Run.load(directory, data=memjax.from_arrays(...)).")
  dataset = load(info["data_spec"], standardize=info["data"].get("standardized", True))
  return canaries_lib.apply_record(dataset, info["data"].get("canaries"))


def _resumed_config(stored: TrainConfig, changes: dict, directory: str) -> TrainConfig:
  """The stored config with the changes a resume may make: more models, chunking and
  checkpointing; and objects without an import path given again."""
  allowed = {"num_models", "chunk_size", "memory_budget", "checkpoint_seconds"}
  stored_dict = stored.to_dict()
  given_config = stored.replace(**changes)
  given = given_config.to_dict()
  conflicting, objects = [], {}
  for name, value in changes.items():
    if name in allowed:
      continue
    before, after = stored_dict[name], given[name]
    if name == "measures" and before.keys() == after.keys():
      pairs = [(before[k], after[k], given_config.measures[k]) for k in before]
    else:
      pairs = [(before, after, value)]
    # The same spec, or an object given for one that run.json could not name.
    if all(a == b or (isinstance(a, str) and a.startswith(imports.UNSAVED_PREFIX)
                      and not isinstance(obj, str)) for a, b, obj in pairs):
      objects[name] = getattr(given_config, name)
    else:
      conflicting.append(name)
  if conflicting:
    raise MemjaxError(f"Cannot change {sorted(conflicting)} when resuming {directory!r}: the "
                      "models must all be trained the same way. Only the number of models may "
                      "grow; start a new run for other settings.")
  return stored.replace(**{k: v for k, v in changes.items() if k in allowed}, **objects)


def _resume(directory: str, dataset: Dataset, changes: dict, *, progress: bool, mesh) -> Run:
  info = read_run_info(directory)
  config = _resumed_config(TrainConfig.from_dict(info["config"]), changes, directory)
  if dataset.canaries is not None and info["data"].get("canaries") is None:
    raise MemjaxError(f"The run in {directory!r} has no canaries; resume it with the data it "
                      "was trained on (without with_canaries / --canaries).")
  dataset = canaries_lib.apply_record(dataset, info["data"].get("canaries"))
  if dataset.standardized != info["data"].get("standardized", True):
    raise MemjaxError(f"The run in {directory!r} was trained on "
                      f"{'standardised' if not dataset.standardized else 'unstandardised'} "
                      "features; preprocessing is part of the training algorithm, so resume "
                      "with the same choice (memjax.load(..., standardize=...), or drop "
                      "--standardize/--no-standardize to use the recorded one).")
  if dataset.num_train != info["data"]["num_train"]:
    raise MemjaxError(f"The run in {directory!r} was trained on {info['data']['num_train']} "
                      f"examples but this dataset has {dataset.num_train}; pass the same data.")
  records = Records.load(os.path.join(directory, "records"))
  design = design_lib.Design(
      keep=np.array(records.keep), groups=np.array(records.groups),
      ratios=tuple(info["design"]["ratios"]), kind=info["design"]["kind"],
      seed=info["design"]["seed"], block_starts=tuple(info["design"]["block_starts"]))
  if config.num_models < design.num_models:
    raise MemjaxError(f"The run has {design.num_models} models; --models {config.num_models} "
                      "would shrink it. Ask for at least as many.")
  if config.num_models > design.num_models:
    info["grown_from"] = info.get("grown_from", []) + [design.num_models]
    design = _tie_canary_copies(design_lib.extend(design, config.num_models), dataset)
  info["design"] = design.describe()
  return _execute(config, dataset, design, info, directory, progress=progress, mesh=mesh,
                  old_records=records)


def _execute(config: TrainConfig, dataset: Dataset, design: design_lib.Design, info: dict,
             directory: str | None, *, progress: bool, mesh, old_records: Records | None = None
             ) -> Run:
  t_start = time.perf_counter()
  mesh = engine_lib.make_mesh() if mesh is None else mesh
  keep = design.keep
  num_models = design.num_models
  # Steps per epoch are fixed by the first block so growing a run trains new models identically.
  first_block_end = design.block_starts[1] if len(design.block_starts) > 1 else num_models
  steps = info.setdefault("steps_per_epoch",
                          engine_lib.steps_per_epoch(keep[:first_block_end], config.batch_size))
  fns = engine_lib.model_fns(config, dataset)
  chunking = _chunking(config, fns, dataset, num_models, mesh, steps, info.get("chunking"))
  chunk_size = chunking.chunk_size
  # DP-SGD: the guarantee (and a calibrated sigma) is fixed by the first block, like the steps.
  if config.private and info.get("privacy") is None:
    info["privacy"] = privacy_lib.guarantee(config, keep[:first_block_end], steps,
                                            dataset.num_train)
  engine_config = config
  if config.private:
    engine_config = config.replace(dp_noise_multiplier=info["privacy"]["noise_multiplier"],
                                   dp_target_epsilon=None)
  engine = engine_lib.Engine(dataset, engine_config, steps, chunk_size, mesh, fns=fns,
                             conv=chunking.conv, eval_block=chunking.eval_block)
  info["config"] = config.to_dict()
  eval_epochs = _eval_epochs(config)
  info.update(num_params=fns.num_params, chunk_size=chunk_size, eval_block=engine.eval_block,
              chunking=chunking.describe(),
              devices=[str(d) for d in mesh.devices.flat], eval_epochs=eval_epochs)

  # On several hosts process 0 writes the run directory (on a filesystem all hosts share); the
  # other processes train their devices' models and keep their records in memory.
  writer = jax.process_index() == 0
  records_dir = None if directory is None or not writer else os.path.join(directory, "records")
  start_model = 0 if directory is None else _read_progress(directory)["completed_models"]
  if records_dir is not None and os.path.exists(os.path.join(records_dir, "spec.json")):
    if old_records is not None and old_records.num_models != num_models:
      _grow_records(directory, old_records, design, eval_epochs)
    records = Records.load(records_dir, writable=True)
  else:
    records = Records.allocate(keep=keep, groups=design.groups, eval_epochs=eval_epochs,
                               train_labels=dataset.y_train, test_labels=dataset.y_test,
                               num_queries=config.query_augmentations,
                               measures=tuple(config.measures), directory=records_dir,
                               task=dataset.task, canary_shape=engine.canary_shape)
  if records_dir is not None:
    _write_json(os.path.join(directory, "run.json"), info)

  checkpoints = _Checkpoints(directory, config) if directory is not None else None
  chunks = [(s, min(s + chunk_size, num_models)) for s in range(start_model, num_models,
                                                                 chunk_size)]
  bar = _progress_bar(progress, total=(num_models - start_model) * config.epochs,
                      desc=f"{dataset.name}/{models_lib.model_name(config.model)}")
  timings = info.setdefault("timings", {"compile_s": 0.0, "train_s": 0.0, "eval_s": 0.0})
  try:
    for chunk_index, (lo, hi) in enumerate(chunks):
      diverged, dropped = _train_chunk(
          engine, records, keep, lo, hi, eval_epochs, checkpoints, bar, timings,
          chunk_label=f"chunk {chunk_index + 1}/{len(chunks)}")
      if diverged:
        info["diverged_models"] = sorted(set(info.get("diverged_models", [])) | set(diverged))
      if engine.sampling == "poisson":
        info["dropped_examples"] = info.get("dropped_examples", 0) + dropped
      records.flush()
      if records_dir is not None:
        _write_json(os.path.join(directory, "progress.json"), {"completed_models": hi})
      if checkpoints is not None:
        checkpoints.clear()
  finally:
    if bar is not None:
      bar.close()
    if checkpoints is not None:
      checkpoints.close()
  timings["total_s"] = timings.get("total_s", 0.0) + time.perf_counter() - t_start
  model_epochs = (num_models - start_model) * config.epochs
  timings["model_epochs_per_s"] = model_epochs / max(timings["train_s"], 1e-9)
  info["finished"] = True
  if records_dir is not None:
    _write_json(os.path.join(directory, "run.json"), info)
    from memjax import scores
    scores.write_csv(os.path.join(directory, "scores.csv"), scores.table(records, dataset))
    if records.has_canaries:
      from memjax import exposure
      scores.write_csv(os.path.join(directory, "canaries.csv"),
                       exposure.canary_table(records.canary_loglik[-1],
                                             records.canary_extracted[-1], records.keep,
                                             dataset.canaries))
  return Run(config=config, data=dataset, design=design, records=records, info=info,
             directory=directory)


def _train_chunk(engine, records, keep, lo, hi, eval_epochs, checkpoints, bar, timings,
                 chunk_label) -> tuple[list[int], int]:
  """Trains models lo..hi-1 (one compiled epoch at a time); returns those that diverged and
  the number of Poisson-sampled examples dropped for exceeding the batch capacity."""
  config = engine.config
  chunk = engine_lib.Chunk(engine, np.arange(lo, hi), keep[lo:hi])
  restored = checkpoints.restore(lo, engine, chunk.ids) if checkpoints is not None else None
  first_epoch = 0
  if restored is not None:
    chunk.state, first_epoch = restored
  if bar is not None:
    bar.update(chunk.real * first_epoch)
  chunk.compile()
  timings["compile_s"] = engine.compile_seconds
  diverged: list[int] = []
  for epoch in range(first_epoch, config.epochs):
    t0 = time.perf_counter()
    loss = chunk.train_epoch(epoch)
    timings["train_s"] += time.perf_counter() - t0
    newly = [m for m in (lo + np.flatnonzero(~np.isfinite(loss))).tolist() if m not in diverged]
    if newly:
      diverged += newly
      warnings.warn(
          f"{len(newly)} model(s) diverged (non-finite training loss) in epoch {epoch + 1}: "
          f"models {newly[:10]}{' ...' if len(newly) > 10 else ''}. Their predictions are "
          f"meaningless and count as wrong in every estimate. Lower the learning rate (now "
          f"{config.learning_rate}) or use a model with normalisation (vgg, resnet); run.json "
          "lists them under diverged_models.", RuntimeWarning, stacklevel=2)
    if epoch + 1 in eval_epochs:
      t0 = time.perf_counter()
      t = eval_epochs.index(epoch + 1)
      final = epoch + 1 == config.epochs
      for split in ("train", "test"):
        out = chunk.evaluate(split, with_queries=final)
        for name in engine.output_dtypes:
          getattr(records, f"{split}_{name}")[t, lo:hi] = out[name]
        if final:
          getattr(records, f"{split}_lira")[lo:hi] = out["lira"]
      if engine.canary_shape is not None:
        for name, values in chunk.evaluate_canaries().items():
          getattr(records, name)[t, lo:hi] = values
      timings["eval_s"] += time.perf_counter() - t0
    if checkpoints is not None and checkpoints.due(epoch + 1):
      records.flush()  # evaluations up to this epoch are on disk before the checkpoint
      checkpoints.save(lo, epoch + 1, chunk.state)
    if bar is not None:
      bar.set_description(f"{chunk_label} epoch {epoch + 1}/{config.epochs}")
      bar.set_postfix(loss=f"{float(np.mean(loss)):.3f}")
      bar.update(chunk.real)
  dropped = int(chunk.dropped.sum())
  if dropped:
    warnings.warn(f"{dropped} Poisson-sampled example(s) exceeded the batch capacity "
                  f"{engine.batch_capacity} and were left out of their step (expected: almost "
                  "never); run.json counts them under dropped_examples.", RuntimeWarning,
                  stacklevel=2)
  return diverged, dropped


class _Checkpoints:
  """orbax checkpoints of one chunk's training state, keyed by (chunk start, epoch)."""

  def __init__(self, directory: str, config: TrainConfig):
    import orbax.checkpoint as ocp
    self._ocp = ocp
    self.every_seconds = config.checkpoint_seconds
    self.epochs = config.epochs
    self.last_save = time.monotonic()
    self.manager = ocp.CheckpointManager(
        os.path.abspath(os.path.join(directory, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))

  def due(self, epoch: int) -> bool:
    elapsed = time.monotonic() - self.last_save
    return 0 < self.every_seconds <= elapsed and epoch < self.epochs

  def _step(self, chunk_start: int, epoch: int) -> int:
    return chunk_start * (self.epochs + 1) + epoch

  def save(self, chunk_start: int, epoch: int, state) -> None:
    self.last_save = time.monotonic()
    leaves = jax.tree.leaves(state)
    self.manager.save(self._step(chunk_start, epoch),
                      args=self._ocp.args.StandardSave({str(i): x for i, x in enumerate(leaves)}))

  def restore(self, chunk_start: int, engine, ids):
    step = self.manager.latest_step()
    if step is None or step // (self.epochs + 1) != chunk_start:
      return None
    abstract = jax.eval_shape(engine.init_chunk, ids)
    leaves, treedef = jax.tree.flatten(abstract)
    target = {str(i): jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=engine.model_sharding)
              for i, x in enumerate(leaves)}
    restored = self.manager.restore(step, args=self._ocp.args.StandardRestore(target))
    state = jax.tree.unflatten(treedef, [restored[str(i)] for i in range(len(leaves))])
    return state, step % (self.epochs + 1)

  def clear(self) -> None:
    self.manager.wait_until_finished()
    for step in self.manager.all_steps():
      self.manager.delete(step)

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _chunking(config: TrainConfig, fns, dataset, num_models: int, mesh,
              steps: int, previous: dict | None) -> tuning.Chunking:
  """The run's chunking (:func:`memjax.tuning.choose`); a resumed run keeps its own unless the
  resume asks for another chunk size."""
  if previous is not None and config.chunk_size is None \
      and previous["chunk_size"] % mesh.size == 0:
    return dataclasses.replace(tuning.Chunking.from_dict(previous), source="resumed",
                               seconds=0.0)
  return tuning.choose(config, dataset, fns, num_models, mesh, steps)


def _eval_epochs(config: TrainConfig) -> list[int]:
  epochs = list(range(config.eval_every, config.epochs, config.eval_every)) \
      if config.eval_every else []
  return epochs + [config.epochs]


def _new_info(config, dataset, data_spec, design) -> dict:
  import flax
  import optax
  return {
      "format": RUN_FORMAT,
      "config": config.to_dict(),
      "data_spec": data_spec,
      "data": dataset.describe(),
      "design": design.describe(),
      "versions": {"memjax": _version(), "jax": jax.__version__, "flax": flax.__version__,
                   "optax": optax.__version__, "numpy": np.__version__,
                   "python": platform.python_version()},
      "backend": jax.default_backend(),
      "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
  }


def _version() -> str:
  from importlib import metadata
  try:
    return metadata.version("memjax")
  except metadata.PackageNotFoundError:
    return "unknown"


def _grow_records(directory, old: Records, design, eval_epochs) -> None:
  """Copies the finished models' records into larger arrays for a grown design."""
  new_dir = os.path.join(directory, "records.grow")
  if os.path.exists(new_dir):
    shutil.rmtree(new_dir)
  m_old = old.num_models
  grown = Records.allocate(keep=design.keep, groups=design.groups, eval_epochs=eval_epochs,
                           train_labels=np.asarray(old.train_labels),
                           test_labels=np.asarray(old.test_labels),
                           num_queries=old.num_queries, measures=old.measures,
                           directory=new_dir, task=old.task, canary_shape=old.canary_shape)
  for name, (axes, _, _) in records_lib.schema(old.measures, old.task,
                                               old.has_canaries).items():
    if "model" in axes and name not in ("keep", "groups"):
      index = (slice(None),) * axes.index("model") + (slice(0, m_old),)
      getattr(grown, name)[index] = getattr(old, name)
  grown.flush()
  del grown
  final = os.path.join(directory, "records")
  backup = final + ".old"
  os.replace(final, backup)
  os.replace(new_dir, final)
  shutil.rmtree(backup)


def _progress_bar(enabled: bool, total: int, desc: str):
  if not enabled:
    return None
  from tqdm.auto import tqdm
  return tqdm(total=total, desc=desc, unit="model-epoch", unit_scale=True, dynamic_ncols=True)


def _read_progress(directory: str) -> dict:
  path = os.path.join(directory, "progress.json")
  if not os.path.exists(path):
    return {"completed_models": 0}
  with open(path) as f:
    return json.load(f)


def read_run_info(run_dir: str) -> dict[str, Any]:
  """The run.json of a run directory, with a clear error when it is not one."""
  if not os.path.isdir(run_dir):
    raise MemjaxError(f"{run_dir!r} is not a directory. Pass the run directory written by "
                      "`memjax run --out DIR` (it holds run.json, scores.csv and records/).")
  path = os.path.join(run_dir, "run.json")
  if not os.path.exists(path):
    raise MemjaxError(f"{run_dir!r} is not a memjax run directory (no run.json). Pass the DIR "
                      "given to `memjax run --out DIR`.")
  try:
    with open(path) as f:
      info = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise MemjaxError(f"Could not read {path} ({e}); the run directory is damaged.") from e
  missing = [k for k in ("config", "data", "design") if k not in info]
  if missing:
    raise MemjaxError(f"{path} lacks {missing}; it was not written by `memjax run`.")
  return info


def _write_json(path: str, obj: dict) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1, default=formatting.json_default)
  os.replace(tmp, path)
