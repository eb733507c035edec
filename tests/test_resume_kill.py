"""A `memjax run` killed with SIGKILL resumes with `--resume` to the uninterrupted records."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import memjax


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
  data = memjax.load("digits")
  path = tmp_path_factory.mktemp("data") / "digits300.npz"
  np.savez(path, x_train=data.x_train[:300], y_train=data.y_train[:300],
           x_test=data.x_test[:100], y_test=data.y_test[:100])
  return str(path)


BUILT_IN = ("--model", "mlp", "--model-kwargs", '{"widths": [16]}')
# A module of the test directory with dropout, by import path, with Adam and a user measure.
USER_CODE = ("--model", "test_user_code:DropoutMLP", "--model-kwargs", '{"hidden": 16}',
             "--optimizer", "adam", "--optimizer-kwargs", '{"learning_rate": 0.003}',
             "--measures", "test_user_code:true_logit")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.dirname(__file__)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))


def cli(model, *args):
  return [sys.executable, "-m", "memjax", "run", *model, "--models", "8", "--chunk-size", "4",
          "--epochs", "12", "--batch-size", "32", "--eval-every", "4", "--no-progress", *args]


def wait_for_checkpoint(directory, proc, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    ckpt = os.path.join(directory, "checkpoints")
    steps = [d for d in os.listdir(ckpt) if d.isdigit()] if os.path.isdir(ckpt) else []
    if steps or os.path.exists(os.path.join(directory, "progress.json")):
      return
    if proc.poll() is not None:
      raise AssertionError("the run finished before it could be killed")
    time.sleep(0.05)
  raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
@pytest.mark.parametrize("model", [BUILT_IN, USER_CODE], ids=["builtin", "user_code"])
def test_sigkill_then_resume_gives_identical_records(tmp_path, digits_npz, model):
  reference = tmp_path / "reference"
  subprocess.run(cli(model, "--data", digits_npz, "--out", str(reference)), check=True,
                 capture_output=True, timeout=600, env=ENV)
  killed = tmp_path / "killed"
  proc = subprocess.Popen(cli(model, "--data", digits_npz, "--out", str(killed),
                              "--checkpoint-seconds", "1e-9"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
  wait_for_checkpoint(str(killed), proc)
  time.sleep(0.3)  # somewhere mid-chunk, mid-epoch
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(killed / "scores.csv")  # it really died before finishing
  result = subprocess.run([sys.executable, "-m", "memjax", "run", "--resume", str(killed),
                           "--no-progress"], capture_output=True, text=True, timeout=600,
                          env=ENV)
  assert result.returncode == 0, result.stderr[-2000:]
  a = memjax.Records.load(str(reference / "records"))
  b = memjax.Records.load(str(killed / "records"))
  assert a.measures == b.measures == (("true_logit",) if model is USER_CODE else ())
  for name in a.arrays:
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
  assert json.loads((killed / "run.json").read_text())["finished"]
  assert (reference / "scores.csv").read_text() == (killed / "scores.csv").read_text()
  if model is USER_CODE:  # grow the finished run: only the new models train
    result = subprocess.run([sys.executable, "-m", "memjax", "run", "--resume", str(killed),
                             "--models", "12", "--no-progress", "--no-report"],
                            capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    grown = memjax.Records.load(str(killed / "records"))
    assert grown.num_models == 12
    for name in ("train_true_logit", "train_lira", "test_correct"):
      old, new = getattr(a, name), getattr(grown, name)
      index = (slice(None), slice(0, 8)) if name != "train_lira" else (slice(0, 8),)
      np.testing.assert_array_equal(new[index], old, err_msg=name)
    assert np.abs(np.asarray(grown.train_true_logit[:, 8:])).max() > 0  # new models trained
