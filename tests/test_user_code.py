"""Your model, your optimizer, your loss: user code trains through the one engine path.

The module below is the kind of code a researcher writes: it is not part of memjax, it is found
by import path (``test_user_code:DropoutMLP``, this directory is on sys.path under pytest and
PYTHONPATH in the subprocess tests of tests/test_resume_kill.py).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import memjax
from memjax import cli, engine, measures


class DropoutMLP(nnx.Module):
  """Flatten -> Linear -> ReLU -> Dropout -> Linear: a user module with a random stream."""

  def __init__(self, input_shape, num_classes, *, rngs: nnx.Rngs, hidden: int = 64,
               rate: float = 0.2):
    self.hidden = nnx.Linear(int(np.prod(input_shape)), hidden, rngs=rngs)
    self.dropout = nnx.Dropout(rate, rngs=rngs)
    self.head = nnx.Linear(hidden, num_classes, rngs=rngs)

  def __call__(self, x, train: bool):
    x = jax.nn.relu(self.hidden(x.reshape(x.shape[0], -1)))
    return self.head(self.dropout(x, deterministic=not train))


def true_logit(logits, labels):
  """A user measure: the logit of the true class, [B]."""
  return jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]


def make_adam(total_steps, peak=3e-3):
  """A user optimizer factory that needs the number of steps (a cosine schedule)."""
  return optax.adam(optax.cosine_decay_schedule(peak, total_steps))


def planted(data, count=12, seed=0):
  """``data`` with ``count`` training labels changed to another class; returns (data, indices)."""
  rng = np.random.default_rng(seed)
  index = rng.choice(data.num_train, count, replace=False)
  y = data.y_train.copy()
  y[index] = (y[index] + rng.integers(1, data.num_classes, count)) % data.num_classes
  return memjax.from_arrays(data.x_train, y, data.x_test, data.y_test, name="planted",
                            standardize=False), index


FAST = dict(models=8, epochs=3, batch_size=64, progress=False)


@pytest.mark.slow
def test_user_module_with_dropout_finds_planted_mislabels(small_digits):
  data, index = planted(small_digits)
  run = memjax.train(data, model=DropoutMLP, model_kwargs={"hidden": 128}, models=32,
                     epochs=30, batch_size=32, progress=False)
  assert run.info["config"]["model"] == "test_user_code:DropoutMLP"
  assert run.records.train_accuracy()[-1].mean() > 0.97
  mem = memjax.memorization(run.correct, run.keep)
  typical = np.delete(mem, index)
  assert mem[index].min() >= 0.5, mem[index]
  assert np.median(typical) <= 0.1


@pytest.mark.slow
def test_dropout_streams_are_chunk_independent_and_really_random(small_digits):
  # Rate 0.5: a model drawing another model's (or another step's) dropout mask would move its
  # outputs by far more than the float rounding XLA's kernels for other chunk shapes give
  # (~1e-6 on the LiRA statistic, the same for the built-in MLP without dropout).
  kwargs = dict(model=DropoutMLP, model_kwargs={"rate": 0.5}, eval_every=1, **FAST)
  runs = [memjax.train(small_digits, chunk_size=size, **kwargs) for size in (1, 8)]
  a, b = runs[0].records, runs[1].records
  np.testing.assert_array_equal(a.train_correct, b.train_correct)
  np.testing.assert_array_equal(a.test_correct, b.test_correct)
  for name in ("train_lira", "test_lira"):
    np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-5)
  for name in ("train_prob", "train_loss", "test_prob"):  # float16: one unit in the last place
    np.testing.assert_allclose(getattr(a, name).astype(np.float32),
                               getattr(b, name).astype(np.float32), rtol=2e-3, atol=1e-4)
  no_dropout = memjax.train(small_digits, **dict(kwargs, model_kwargs={"rate": 0.0}))
  assert np.abs(no_dropout.records.train_lira - a.train_lira).max() > 0.1
  # The model's random stream is reseeded each step: rebuilt from the key, never carried.
  fns = engine.model_fns(memjax.TrainConfig(model=DropoutMLP), small_digits)
  assert fns.random_streams == ("default", "dropout") or "dropout" in fns.random_streams
  params, state = fns.init(jax.random.key(0))
  x = jnp.asarray(small_digits.x_train[:16])
  a, _ = fns.apply(params, state, x, True, jax.random.key(1))
  b, _ = fns.apply(params, state, x, True, jax.random.key(1))
  c, _ = fns.apply(params, state, x, True, jax.random.key(2))
  d, _ = fns.apply(params, state, x, False)
  e, _ = fns.apply(params, state, x, False)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  np.testing.assert_array_equal(d, e)  # evaluation is deterministic


@pytest.mark.slow
def test_cli_trains_a_user_module_by_import_path_and_reports(tmp_path, capsys):
  out = tmp_path / "run"
  assert cli.main(["run", "--model", "test_user_code:DropoutMLP", "--model-kwargs",
                   '{"hidden": 32}', "--models", "4", "--epochs", "2", "--optimizer", "adam",
                   "--optimizer-kwargs", '{"learning_rate": 0.003}', "--measures",
                   "margin,test_user_code:true_logit", "--out", str(out), "--no-progress"]) == 0
  printed = capsys.readouterr().out
  assert "model DropoutMLP" in printed and "optimizer adam" in printed
  info = json.loads((out / "run.json").read_text())
  assert info["config"]["model"] == "test_user_code:DropoutMLP"
  assert info["config"]["optimizer"] == "adam"
  assert info["config"]["measures"] == {"margin": "margin", "true_logit": "test_user_code:true_logit"}
  header = (out / "scores.csv").read_text().splitlines()[0].split(",")
  assert "memorization_true_logit" in header and "memorization_margin_se" in header
  run = memjax.Run.load(str(out))
  assert run.records.train_true_logit.shape == (1, 4, 1437)
  assert run.records.train_true_logit.dtype == np.float32
  assert (out / "report.html").exists()
  assert cli.main(["report", str(out)]) == 0


@pytest.mark.slow
def test_optimizers_replace_the_default_chain(small_digits):
  adam = memjax.train("digits", model="mlp", optimizer=optax.adam(1e-3), models=4, epochs=20,
                      progress=False)
  assert adam.records.train_accuracy()[-1].min() >= 0.99
  assert adam.info["config"]["optimizer"].startswith("<unsaved")
  # A callable total_steps -> transformation, an import path of a factory, an optax name.
  by_steps = memjax.train(small_digits, optimizer=lambda steps: make_adam(steps), **FAST)
  by_path = memjax.train(small_digits, optimizer="test_user_code:make_adam", **FAST)
  np.testing.assert_array_equal(by_steps.records.train_lira, by_path.records.train_lira)
  named = memjax.train(small_digits, optimizer="adam", optimizer_kwargs={"learning_rate": 3e-3},
                       **FAST)
  same = memjax.train(small_digits, optimizer=optax.adam(3e-3), **FAST)
  np.testing.assert_array_equal(named.records.train_lira, same.records.train_lira)
  # No implicit weight decay or schedule: optax.sgd(lr) is plain SGD, not the default chain.
  plain = memjax.train(small_digits, optimizer=optax.sgd(0.1), **FAST)
  default = memjax.train(small_digits, learning_rate=0.1, **FAST)
  assert not np.array_equal(plain.records.train_lira, default.records.train_lira)


@pytest.mark.slow
def test_bad_optimizers_and_misspelt_settings_get_clear_errors(small_digits):
  with pytest.raises(memjax.MemjaxError, match="optax has no optimizer 'adamm'"):
    memjax.train(small_digits, optimizer="adamm", **FAST)
  with pytest.raises(memjax.MemjaxError, match="Bad optimizer arguments"):
    memjax.train(small_digits, optimizer="adam", optimizer_kwargs={"lr": 1e-3}, **FAST)
  with pytest.raises(memjax.MemjaxError, match="did you mean 'learning_rate'"):
    memjax.train(small_digits, lerning_rate=0.1, **FAST)
  with pytest.raises(memjax.MemjaxError, match="Cannot import module 'nowhere.nets'"):
    memjax.train(small_digits, model="nowhere.nets:Net", **FAST)
  with pytest.raises(memjax.MemjaxError, match="not a flax NNX Module"):
    memjax.train(small_digits, model=lambda shape, classes, *, rngs: "no module", **FAST)
  with pytest.raises(memjax.MemjaxError, match="measure 'bad' function returned shape"):
    memjax.train(small_digits, measures={"bad": lambda logits, labels: logits}, **FAST)


@pytest.mark.slow
def test_the_loss_is_the_training_objective(small_digits):
  # A loss that is zero everywhere leaves the models at their initialisation.
  frozen = memjax.train(small_digits, loss=lambda logits, labels: 0.0 * logits.sum(-1), **FAST)
  learned = memjax.train(small_digits, **FAST)
  assert frozen.records.train_accuracy()[-1].mean() < 0.4
  assert learned.records.train_accuracy()[-1].mean() > 0.8
  np.testing.assert_array_equal(np.asarray(frozen.records.train_loss), 0)
  # Label smoothing is the built-in option; the records' loss is the smoothed loss.
  smooth = memjax.train(small_digits, label_smoothing=0.2, **FAST)
  assert smooth.info["config"]["label_smoothing"] == 0.2
  assert float(np.asarray(smooth.records.train_loss, np.float32).min()) > 0.1
  logits = jnp.array([[3.0, 0.0, -1.0]])
  np.testing.assert_allclose(measures.label_smoothed_cross_entropy(0.2)(logits, jnp.array([0])),
                             optax.softmax_cross_entropy(
                                 logits, jnp.array([[0.8 + 0.2 / 3, 0.2 / 3, 0.2 / 3]])),
                             rtol=1e-6)


@pytest.mark.slow
def test_real_valued_measures_feed_the_estimators(small_digits):
  run = memjax.train(small_digits, measures={"true_logit": true_logit, "margin": "margin"},
                     **FAST)
  values = np.asarray(run.records.train_true_logit[-1], np.float64)
  assert values.shape == (8, 300) and np.isfinite(values).all()
  mem = memjax.memorization(values, run.keep)
  keep = run.keep
  expected = [values[keep[:, i], i].mean() - values[~keep[:, i], i].mean() for i in range(300)]
  np.testing.assert_allclose(mem, expected, rtol=1e-10)
  assert np.nanmean(mem) > 0  # models are more confident on what they trained on
  assert "memorization_true_logit" in run.scores()


@pytest.mark.slow
def test_linen_modules_through_the_nnx_bridge(small_digits):
  import flax.linen as nn

  class LinenMLP(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x, train):
      x = nn.relu(nn.Dense(32)(x.reshape(x.shape[0], -1)))
      x = nn.Dropout(0.1, deterministic=not train)(x)
      return nn.Dense(self.num_classes)(x)

  # The one line of memjax.models' documentation:
  model = lambda shape, classes, *, rngs: nnx.bridge.ToNNX(  # noqa: E731
      LinenMLP(classes), rngs=rngs).lazy_init(jnp.zeros((1, *shape)), train=False)
  runs = [memjax.train(small_digits, model=model, chunk_size=size, **dict(FAST, epochs=8))
          for size in (2, 8)]
  assert runs[0].records.train_accuracy()[-1].mean() > 0.9
  np.testing.assert_allclose(runs[0].records.train_lira, runs[1].records.train_lira, rtol=1e-5,
                             atol=1e-5)
  # linen's Dropout draws from the reseeded "dropout" stream: one key, one mask.
  fns = engine.model_fns(memjax.TrainConfig(model=model), small_digits)
  params, state = fns.init(jax.random.key(0))
  x = jnp.asarray(small_digits.x_train[:16])
  outputs = [fns.apply(params, state, x, True, jax.random.key(k))[0] for k in (1, 1, 2)]
  np.testing.assert_array_equal(outputs[0], outputs[1])
  assert not np.allclose(outputs[0], outputs[2])


@pytest.mark.slow
def test_resume_needs_objects_without_import_paths(tmp_path, small_digits):
  directory = str(tmp_path / "run")
  opt = optax.adam(3e-3)
  memjax.train(small_digits, optimizer=opt, directory=directory, models=4, epochs=2,
               batch_size=64, progress=False)
  with pytest.raises(memjax.MemjaxError, match="Pass the same object again"):
    memjax.train(small_digits, directory=directory, resume=True, models=6, progress=False)
  grown = memjax.train(small_digits, directory=directory, resume=True, models=6,
                       optimizer=opt, progress=False)
  assert grown.records.num_models == 6
  with pytest.raises(memjax.MemjaxError, match="Cannot change"):
    memjax.train(small_digits, directory=directory, resume=True, models=8, optimizer="sgd",
                 progress=False)


@pytest.mark.slow
def test_preprocessing_is_recorded_and_resume_keeps_it(tmp_path):
  directory = str(tmp_path / "raw")
  raw = memjax.load("digits", standardize=False)
  run = memjax.train(raw, model="logreg", models=2, epochs=1, directory=directory,
                     progress=False)
  assert run.info["data"]["standardized"] is False
  assert "not standardised" in run.summary()
  assert not memjax.Run.load(directory).data.standardized  # reloaded as it was trained
  with pytest.raises(memjax.MemjaxError, match="unstandardised features"):
    memjax.train("digits", directory=directory, resume=True, models=4, progress=False)
  grown = memjax.train(raw, directory=directory, resume=True, models=4, progress=False)
  assert grown.records.num_models == 4
