"""benchmarks/lm_throughput.py (imported by path): its quick mode trains every column."""

import numpy as np
import pytest

from conftest import load_benchmark


def test_synthetic_lm_layout():
  bench = load_benchmark("lm_throughput")
  data = bench.synthetic_lm(num_train=20, num_test=4, length=12, vocab=9)
  x, y = data.x_train, data.y_train
  assert x.shape == y.shape == (20, 12) and x.dtype == y.dtype == np.int32
  assert data.task == "language_model" and data.num_classes <= 9 and data.feature_shape == (12,)
  lengths = (y >= 0).sum(1)
  assert lengths.min() >= 6 and lengths.max() <= 12
  for xi, yi, n in zip(x, y, lengths):
    assert xi[0] == 0 and (xi[n:] == 0).all() and (yi[n:] == -1).all()  # BOS, padding
    np.testing.assert_array_equal(xi[1:n], yi[:n - 1])  # x is y shifted right by one
    assert ((yi[:n] >= 1) & (yi[:n] < data.num_classes)).all()


def test_the_baselines_loss_is_the_engines():
  # The Flax / PyTorch loops minimise the batch mean of _baselines_flax.sequence_cross_entropy;
  # memjax's engine that of its built-in language-model loss: the same function.
  import jax
  from memjax import measures
  load_benchmark("lm_throughput")
  import _baselines_flax
  logits = jax.random.normal(jax.random.key(0), (3, 5, 7))
  targets = np.array([[1, 2, 3, -1, -1], [4, 5, 6, 0, 1], [-1] * 5], np.int32)
  np.testing.assert_allclose(_baselines_flax.sequence_cross_entropy(logits, targets),
                             measures.resolve_loss("cross_entropy", task="language_model")(
                                 logits, targets), rtol=1e-6)


@pytest.mark.slow
def test_lm_throughput_quick(capsys):
  # One M (each M compiles the memjax and Flax programs again) and not the scanned loop (the
  # Flax loop's code with lax.scan): ~15 s on 2 cores; the PyTorch column runs where torch is
  # installed.
  bench = load_benchmark("lm_throughput")
  out = bench.main(["--quick", "--models", "2", "--columns", "memjax,flax_loop,torch_loop"])
  results = out["results"]
  for column in ("memjax", "flax_loop"):
    cell = results[column][2]
    assert isinstance(cell, bench.CellResult), cell  # not an error string
    assert cell.model_epochs == 2 and cell.run_s > 0 and 0 <= cell.accuracy <= 1
  text = capsys.readouterr().out
  assert "Training tokens/s" in text and "memjax / Flax loop" in text
  assert "(1) memjax engine" in text and "load average" in text
