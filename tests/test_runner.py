import json
import os

import numpy as np
import pytest

import memjax
from memjax import engine as engine_lib
from memjax.errors import MemjaxError

FAST = dict(model="mlp", model_kwargs={"widths": (16,)}, batch_size=64, progress=False)


def assert_same_records(a, b):
  for name in ("keep", "train_correct", "train_prob", "train_loss", "train_lira", "test_correct",
               "test_lira"):
    np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)),
                                  err_msg=name)


@pytest.mark.slow
def test_run_directory_layout_and_reload(tmp_path, small_digits):
  out = tmp_path / "run"
  run = memjax.train(small_digits, models=4, epochs=2, directory=str(out), **FAST)
  assert {"records", "run.json", "scores.csv", "progress.json"} <= set(os.listdir(out))
  info = json.loads((out / "run.json").read_text())
  assert info["config"]["num_models"] == 4 and info["finished"]
  assert {"compile_s", "train_s", "eval_s", "total_s"} <= set(info["timings"])
  again = memjax.Run.load(str(out), data=small_digits)
  assert_same_records(run.records, again.records)
  with pytest.raises(MemjaxError, match="in-memory arrays, not a dataset spec; pass them"):
    memjax.Run.load(str(out))  # small_digits has no spec to reload it from
  # The records open with numpy alone, described by spec.json.
  spec = json.loads((out / "records" / "spec.json").read_text())
  for name, entry in spec["arrays"].items():
    array = np.load(out / "records" / entry["file"], mmap_mode="r")
    assert list(array.shape) == entry["shape"] and str(array.dtype) == entry["dtype"], name


def test_existing_directory_is_never_overwritten(tmp_path, small_digits):
  out = tmp_path / "run"
  out.mkdir()
  (out / "precious.txt").write_text("keep me")
  with pytest.raises(MemjaxError, match="never overwrites"):
    memjax.train(small_digits, models=2, epochs=1, directory=str(out), **FAST)
  assert (out / "precious.txt").read_text() == "keep me"


class Interrupt(Exception):
  pass


def interrupt_after(monkeypatch, epochs: int):
  """Makes the compiled epoch raise after `epochs` successful calls (a killed process)."""
  original = engine_lib.Engine.compiled_train_epoch
  calls = {"n": 0}

  def patched(self, *args):
    fn = original(self, *args)

    def wrapped(*a):
      if calls["n"] >= epochs:
        raise Interrupt()
      calls["n"] += 1
      return fn(*a)
    return wrapped

  monkeypatch.setattr(engine_lib.Engine, "compiled_train_epoch", patched)


@pytest.mark.slow
def test_interrupted_run_resumes_to_identical_records(tmp_path, small_digits, monkeypatch):
  kwargs = dict(models=6, epochs=4, chunk_size=3, eval_every=2, checkpoint_seconds=1e-9, **FAST)
  reference = memjax.train(small_digits, **kwargs)
  out = str(tmp_path / "run")
  with monkeypatch.context() as m:
    interrupt_after(m, epochs=6)  # chunk 1 done (4 epochs), chunk 2 killed after 2 epochs
    with pytest.raises(Interrupt):
      memjax.train(small_digits, directory=out, **kwargs)
  assert json.load(open(os.path.join(out, "progress.json")))["completed_models"] == 3
  resumed = memjax.train(small_digits, directory=out, resume=True, progress=False)
  assert_same_records(reference.records, resumed.records)


@pytest.mark.slow
def test_grow_trains_only_new_models(tmp_path, small_digits, monkeypatch):
  out = str(tmp_path / "run")
  small = memjax.train(small_digits, models=4, epochs=2, chunk_size=4, directory=out, **FAST)
  old_lira = np.array(small.records.train_lira)
  epochs_trained = {"n": 0}
  original = engine_lib.Engine.compiled_train_epoch

  def counting(self, *args):
    fn = original(self, *args)
    def wrapped(*a):
      epochs_trained["n"] += 1
      return fn(*a)
    return wrapped

  monkeypatch.setattr(engine_lib.Engine, "compiled_train_epoch", counting)
  grown = memjax.train(small_digits, models=8, directory=out, resume=True, progress=False)
  assert epochs_trained["n"] == 2  # one chunk of 4 new models x 2 epochs
  assert grown.records.num_models == 8
  np.testing.assert_array_equal(grown.records.train_lira[:4], old_lira)
  assert (grown.keep.sum(0) == 4).all()  # both balanced blocks: 2 + 2 IN models per example
  assert np.isfinite(grown.records.train_lira).all()
  with pytest.raises(MemjaxError, match="Cannot change"):
    memjax.train(small_digits, models=8, epochs=5, directory=out, resume=True, progress=False)


def test_resume_errors(tmp_path, small_digits):
  with pytest.raises(MemjaxError, match="not a memjax run directory"):
    memjax.train(small_digits, directory=str(tmp_path), resume=True, progress=False)


@pytest.mark.slow
def test_diverged_models_are_reported(tmp_path, small_digits):
  with pytest.warns(RuntimeWarning, match=r"diverged \(non-finite training loss\).*Lower the "
                    r"learning rate \(now 1e\+30\)"):
    run = memjax.train(small_digits, models=2, epochs=2, model="mlp", learning_rate=1e30,
                       directory=str(tmp_path / "run"), progress=False)
  assert run.info["diverged_models"] == [0, 1]
  info = json.loads((tmp_path / "run" / "run.json").read_text())
  assert info["diverged_models"] == [0, 1]
  assert "WARNING: 2 model(s) diverged" in run.summary()
