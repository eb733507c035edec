"""The model axis sharded over several devices gives the records of one device."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest


SCRIPT = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_num_cpu_devices", {devices})
    import numpy as np
    import memjax
    assert len(jax.devices()) == {devices}, jax.devices()
    data = memjax.load("digits")
    data = memjax.from_arrays(data.x_train[:300], data.y_train[:300], data.x_test[:100],
                              data.y_test[:100], standardize=False)
    run = memjax.train(data, model="{model}", models=8, epochs=2, batch_size=64,
                       progress=False, chunk_size={chunk}, **{kwargs})
    r = run.records
    np.savez(sys.argv[1], correct=r.train_correct, lira=r.train_lira, test=r.test_lira,
             devices=np.array(run.info["devices"]))
""")


def run_with_devices(tmp_path, devices, model="mlp", chunk=8, kwargs=None):
  out = tmp_path / f"out{devices}-{model}.npz"
  script = SCRIPT.format(devices=devices, model=model, chunk=chunk, kwargs=kwargs or {})
  env = dict(os.environ, XLA_FLAGS="")
  subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, timeout=600)
  return np.load(out)


@pytest.mark.slow
def test_four_devices_equal_one_device(tmp_path):
  one = run_with_devices(tmp_path, 1)
  four = run_with_devices(tmp_path, 4)
  assert len(four["devices"]) == 4 and len(one["devices"]) == 1
  np.testing.assert_array_equal(one["correct"], four["correct"])
  np.testing.assert_allclose(one["lira"], four["lira"], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(one["test"], four["test"], rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_batchnorm_models_shard_too(tmp_path):
  kwargs = {"model_kwargs": {"width": 4}}
  one = run_with_devices(tmp_path, 1, model="resnet", chunk=4, kwargs=kwargs)
  four = run_with_devices(tmp_path, 4, model="resnet", chunk=4, kwargs=kwargs)
  # Per-device programs have other shapes, so float sums reassociate and training amplifies it
  # to ~1e-2 in the statistic; models mixing their BatchNorm statistics would differ by O(1).
  np.testing.assert_allclose(one["lira"], four["lira"], atol=5e-2)
  assert np.corrcoef(one["lira"].ravel(), four["lira"].ravel())[0, 1] > 0.9999


MULTIHOST = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_num_cpu_devices", 2)
    process_id, num_processes, out, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if num_processes > 1:
      jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                                 num_processes=num_processes, process_id=process_id)
    import numpy as np
    import memjax
    assert len(jax.devices()) == 2 * num_processes
    data = memjax.load("digits")
    data = memjax.from_arrays(data.x_train[:300], data.y_train[:300], data.x_test[:100],
                              data.y_test[:100], standardize=False)
    run = memjax.train(data, model="mlp", models=8, epochs=2, batch_size=64, progress=False,
                       chunk_size=8)
    np.savez(out, correct=run.records.train_correct, lira=run.records.train_lira,
             test=run.records.test_lira)
""")


def free_port() -> int:
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_loopback_equal_one_process(tmp_path):
  """jax.distributed over two local processes (2 CPU devices each) = one process."""
  port = str(free_port())
  env = dict(os.environ, XLA_FLAGS="")
  outs = [tmp_path / f"p{i}.npz" for i in range(2)]
  procs = [subprocess.Popen([sys.executable, "-c", MULTIHOST, str(i), "2", str(outs[i]), port],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = [p.communicate(timeout=600)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(logs)[-3000:]
  single = tmp_path / "single.npz"
  subprocess.run([sys.executable, "-c", MULTIHOST, "0", "1", str(single), port], check=True,
                 env=env, timeout=600)
  reference = np.load(single)
  for out in outs:  # every process ends with the full records
    got = np.load(out)
    for name in ("correct", "lira", "test"):
      np.testing.assert_array_equal(got[name], reference[name], err_msg=name)


@pytest.mark.slow
def test_cli_on_two_hosts_writes_what_one_host_writes(tmp_path):
  """`memjax run --coordinator ... --process-id i` on two processes = one plain `memjax run`."""
  port = str(free_port())
  env = dict(os.environ, XLA_FLAGS="", JAX_NUM_CPU_DEVICES="2")
  flags = ["--models", "8", "--epochs", "2", "--model", "logreg", "--no-progress"]
  two = tmp_path / "two"
  procs = [subprocess.Popen([sys.executable, "-m", "memjax", "run", *flags, "--out", str(two),
                             "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                             "--process-id", str(i)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = [p.communicate(timeout=600)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(logs)[-3000:]
  one = tmp_path / "one"
  subprocess.run([sys.executable, "-m", "memjax", "run", *flags, "--out", str(one)], check=True,
                 env=env, timeout=600, capture_output=True)
  # 4 devices (2 hosts) run 2 models each where 2 devices run 4: float sums reassociate.
  load_csv = lambda d: np.genfromtxt(d / "scores.csv", delimiter=",", names=True)
  scores_two, scores_one = load_csv(two), load_csv(one)
  assert scores_two.dtype.names == scores_one.dtype.names
  for name in scores_one.dtype.names:
    np.testing.assert_allclose(scores_two[name], scores_one[name], rtol=1e-3, atol=1e-3,
                               err_msg=name)
  records = lambda d, name: np.load(d / "records" / f"{name}.npy")
  np.testing.assert_array_equal(records(two, "keep"), records(one, "keep"))
  np.testing.assert_allclose(records(two, "train_lira"), records(one, "train_lira"), atol=1e-3)


def test_cli_distributed_flags_go_together(capsys):
  from memjax import cli
  assert cli.main(["run", "--coordinator", "127.0.0.1:1234", "--no-progress"]) == 2
  assert "go together" in capsys.readouterr().err
