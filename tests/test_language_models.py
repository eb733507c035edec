"""Language models in the engine: sequence measures, extraction, records, training runs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import memjax
from memjax import measures, records as records_lib
from memjax.data import Dataset
from memjax.errors import MemjaxError


def _targets(rng, batch, length, vocab):
  """Random targets [B, L] with random lengths (>= 1) and -1 past each end."""
  y = rng.integers(0, vocab, (batch, length))
  lengths = rng.integers(1, length + 1, batch)
  y[np.arange(length) >= lengths[:, None]] = -1
  return y.astype(np.int32)


def _log_softmax(logits):
  z = logits - logits.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_sequence_measures_match_numpy_reference():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 9, 5)).astype(np.float32) * 3
  y = _targets(rng, 6, 9, 5)
  logp = _log_softmax(logits.astype(np.float64))
  for i in range(6):
    scored = np.flatnonzero(y[i] >= 0)
    token_logp = logp[i, scored, y[i, scored]]
    hits = logits[i, scored].argmax(-1) == y[i, scored]
    others = np.log(np.exp(logp[i, scored]).sum(-1) - np.exp(token_logp))
    np.testing.assert_allclose(measures.token_loglik(logits, y)[i], token_logp.mean(), rtol=1e-5)
    np.testing.assert_allclose(measures.token_cross_entropy(logits, y)[i], -token_logp.mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(measures.token_accuracy(logits, y)[i], hits.mean(), rtol=1e-6)
    np.testing.assert_allclose(measures.sequence_lira_statistic(logits, y)[i],
                               (token_logp - others).mean(), rtol=1e-4, atol=1e-5)


def test_resolve_loss_for_language_models():
  assert measures.resolve_loss("cross_entropy", task="language_model") is \
      measures.token_cross_entropy
  rng = np.random.default_rng(1)
  logits, y = rng.normal(size=(3, 4, 6)).astype(np.float32), _targets(rng, 3, 4, 6)
  smoothed = measures.resolve_loss("cross_entropy", 0.1, task="language_model")(logits, y)
  assert smoothed.shape == (3,) and np.all(np.asarray(smoothed) > 0)


def _greedy_extracts(next_logits, tokens, prefix):
  """Brute force: greedy decoding from tokens[:prefix] with a causal next-token function
  reproduces tokens[prefix:]."""
  generated = list(tokens[:prefix])
  while len(generated) < len(tokens):
    generated.append(int(np.argmax(next_logits(generated))))
  return generated == list(tokens)


def test_extracted_equals_greedy_decoding():
  """One teacher-forced pass decides extraction exactly as generating token by token does."""
  vocab, length = 4, 7
  table = np.random.default_rng(2).normal(size=(vocab + 1, vocab, vocab))

  def next_logits(context):  # a causal "model": the last two tokens (BOS = vocab) decide
    previous = context[-2] if len(context) >= 2 else vocab
    return table[previous, context[-1]] if context else table[vocab, 0]

  rng = np.random.default_rng(3)
  sequences = []
  for _ in range(40):  # greedy continuations (extractable) and random ones (mostly not)
    tokens = list(rng.integers(0, vocab, 3))
    while len(tokens) < length:
      tokens.append(int(np.argmax(next_logits(tokens))) if rng.random() < 0.9
                    else int(rng.integers(vocab)))
    sequences.append(tokens)
  y = np.asarray(sequences, np.int32)  # targets: the tokens themselves
  # logits at position t predict token t from tokens < t
  logits = np.stack([[next_logits(list(s[:t])) for t in range(length)] for s in sequences])
  for prefix in (1, 3, 5):
    want = [_greedy_extracts(next_logits, s, prefix) for s in sequences]
    got = np.asarray(measures.extracted(logits, y, prefix))
    np.testing.assert_array_equal(got, want)
  assert 0 < np.mean(want) < 1
  half = np.asarray(measures.extracted(logits, y))
  np.testing.assert_array_equal(half, [_greedy_extracts(next_logits, s, length // 2)
                                       for s in sequences])


def test_extracted_handles_padding_and_empty_sequences():
  logits = np.zeros((2, 4, 3), np.float32)
  logits[..., 1] = 1.0  # always predicts token 1
  y = np.array([[1, 1, -1, -1], [-1, -1, -1, -1]], np.int32)
  np.testing.assert_array_equal(measures.extracted(logits, y, prefix=1), [True, False])
  np.testing.assert_array_equal(measures.extracted(logits, y, prefix=9), [True, False])


def toy_text_data(num_train=120, num_test=30, seed=0, duplicates=0):
  """A character-level LM dataset in memjax's layout (BOS 0, targets -1 past the end)."""
  rng = np.random.default_rng(seed)
  alphabet = list("abcdefgh ")
  texts = ["".join(rng.choice(alphabet, size=rng.integers(8, 16)))
           for _ in range(num_train + num_test)]
  texts[:duplicates] = [texts[0]] * duplicates
  vocab = [""] + sorted(set("".join(texts)))
  ids = {c: i for i, c in enumerate(vocab)}
  length = max(map(len, texts))

  def encode(part):
    x = np.zeros((len(part), length), np.int32)
    y = np.full((len(part), length), -1, np.int32)
    for i, text in enumerate(part):
      tokens = [ids[c] for c in text]
      x[i, 1:len(tokens)] = tokens[:-1]
      y[i, :len(tokens)] = tokens
    return x, y

  (x_train, y_train), (x_test, y_test) = encode(texts[:num_train]), encode(texts[num_train:])
  return Dataset(name="toy_text", x_train=x_train, y_train=y_train, x_test=x_test,
                 y_test=y_test, num_classes=len(vocab), class_names=tuple(vocab),
                 standardized=False, task="language_model", tokenizer="char")


class Bigram(nnx.Module):
  """Next token from the current one: a causal model small enough for unit tests."""

  def __init__(self, input_shape, num_classes, *, rngs):
    self.embed = nnx.Embed(num_classes, 16, rngs=rngs)
    self.head = nnx.Linear(16, num_classes, rngs=rngs)

  def __call__(self, x, train=False):
    return self.head(jax.nn.tanh(self.embed(x)))


def test_language_model_run_records():
  data = toy_text_data()
  run = memjax.train(data, model=Bigram, models=4, epochs=2, batch_size=16, progress=False,
                     optimizer="adam", optimizer_kwargs={"learning_rate": 0.05}, eval_every=1)
  records = run.records
  assert records.task == "language_model"
  assert records.train_token_accuracy.shape == (2, 4, 120)
  assert records.test_token_loglik.shape == (2, 4, 30)
  assert records.train_lira.shape == (4, 120, 1)
  np.testing.assert_array_equal(records.train_labels, (data.y_train >= 0).sum(1))
  accuracy = np.asarray(records.train_token_accuracy)
  assert np.all((accuracy >= 0) & (accuracy <= 1))
  # prob and loss are the geometric-mean token probability and mean token cross-entropy
  np.testing.assert_allclose(np.asarray(records.train_prob, np.float32),
                             np.exp(records.train_token_loglik), rtol=2e-3)
  np.testing.assert_allclose(np.asarray(records.train_loss, np.float32),
                             -np.asarray(records.train_token_loglik), rtol=2e-3, atol=2e-3)
  scores = run.scores()
  assert "tokens" in scores and "memorization_loglik" in scores and "label" not in scores
  np.testing.assert_allclose(scores["memorization"],
                             memjax.memorization(accuracy[-1], run.keep), equal_nan=True)
  assert "counterfactual memorization" in run.summary()


def test_language_model_records_do_not_depend_on_chunking():
  data = toy_text_data(seed=1)
  kwargs = dict(model=Bigram, models=4, epochs=2, batch_size=16, progress=False,
                optimizer="adam", optimizer_kwargs={"learning_rate": 0.05})
  one = memjax.train(data, chunk_size=4, **kwargs).records
  two = memjax.train(data, chunk_size=2, **kwargs).records
  # Equal to float rounding: XLA may fuse the attention-free toy differently per chunk size.
  for name in ("train_token_accuracy", "train_token_loglik", "test_lira"):
    np.testing.assert_allclose(getattr(one, name), getattr(two, name), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(one.train_correct, two.train_correct)


def test_records_schema_for_language_models(tmp_path):
  keep = np.ones((2, 3), bool)
  records = records_lib.Records.allocate(
      keep=keep, groups=np.zeros(2), eval_epochs=[1], train_labels=np.full((3, 5), -1),
      test_labels=np.zeros((2, 5)), num_queries=1, task="language_model",
      canary_shape=(4, 11), directory=str(tmp_path))
  records.canary_loglik[...] = 1.5
  records.flush()
  loaded = records_lib.Records.load(str(tmp_path))
  assert loaded.task == "language_model" and loaded.has_canaries
  assert loaded.canary_loglik.shape == (1, 2, 4, 11)
  assert loaded.canary_extracted.shape == (1, 2, 4)
  np.testing.assert_array_equal(loaded.test_labels, [5, 5])
  assert loaded.canary_shape == (4, 11)
  with pytest.raises(MemjaxError, match="language models"):
    records_lib.schema((), "classification", canaries=True)
  with pytest.raises(MemjaxError, match="Unknown task"):
    records_lib.eval_dtypes((), "regression")


def test_user_sequence_measure_and_loss():
  data = toy_text_data(seed=2)

  def first_token_loss(logits, targets):  # (logits [B, L, V], targets [B, L]) -> [B]
    return measures.cross_entropy(logits[:, 0], jnp.maximum(targets[:, 0], 0))

  run = memjax.train(data, model=Bigram, models=2, epochs=1, batch_size=16, progress=False,
                     loss=first_token_loss, measures={"ce": measures.token_cross_entropy})
  np.testing.assert_allclose(run.records.train_ce[-1], -run.records.train_token_loglik[-1],
                             rtol=1e-5)


def test_bad_measure_shape_names_the_sequence_contract():
  data = toy_text_data(seed=3)
  with pytest.raises(MemjaxError, match=r"targets \[B, L\]"):
    memjax.train(data, model=Bigram, models=2, epochs=1, batch_size=16, progress=False,
                 measures={"bad": lambda logits, targets: logits.mean(-1)})


def structured_text_with_canaries(repeats=(1, 16), count=2):
  """Sentences cut from a repeated phrase (predictable without training on them) and secret
  canaries of 3 digits (unpredictable unless trained on) at the given repetitions."""
  from memjax import text
  rng = np.random.default_rng(0)
  phrase = "the cat sat on the mat. " * 3
  sentences = [phrase[k:k + int(rng.integers(12, 20))] for k in rng.integers(0, 24, 150)]
  base = text.from_texts(sentences[:120], sentences[120:], name="cat")
  return memjax.with_canaries(base, count, seed=0, repeats=repeats, digits=3, candidates=999)


@pytest.fixture(scope="module")
def canary_run():
  data, _ = structured_text_with_canaries()
  run = memjax.train(data, model="gpt", model_kwargs={"width": 32, "depth": 1, "heads": 2},
                     models=8, epochs=5, batch_size=16, optimizer="adam",
                     optimizer_kwargs={"learning_rate": 0.01}, progress=False)
  return run


def test_planted_duplicates_are_memorized_and_typical_sequences_are_not(canary_run):
  """Secrets repeated 16 times (all copies IN or OUT together) have high counterfactual
  memorization; the corpus' predictable sentences have low."""
  scores = canary_run.scores()
  record = canary_run.data.canaries
  repeated = [row for copies, r in zip(record["copies"], record["repeats"]) if r == 16
              for row in copies]
  natural = np.arange(120)
  assert np.all(scores["memorization"][repeated] > 0.35)
  assert np.nanmean(scores["memorization"][natural]) < 0.1
  assert np.nanmean(scores["memorization"][repeated]) > \
      np.nanquantile(scores["memorization"][natural], 0.99)
  # all copies of a canary are IN or OUT together
  keep = canary_run.keep
  for copies in record["copies"]:
    assert np.all(keep[:, copies] == keep[:, copies[:1]])


def test_exposure_grows_with_repetitions_and_extraction_needs_training(canary_run):
  from memjax import exposure
  records = canary_run.records
  columns = exposure.canary_table(records.canary_loglik[-1], records.canary_extracted[-1],
                                  canary_run.keep, canary_run.data.canaries)
  repeats = np.asarray(columns["repeats"])
  once, often = repeats == 1, repeats == 16
  assert np.all(columns["method"] == "exact")
  assert columns["exposure_in"][often].mean() > columns["exposure_in"][once].mean() + 2
  assert np.all(columns["exposure_in"] > columns["exposure_out"])
  assert columns["extraction_in"][often].mean() >= 0.5
  assert np.all(columns["extraction_out"] == 0)
  # exposure is bounded by log2 |R| (exact ranking) and the summary reports it
  assert np.all(columns["exposure_in"] <= np.log2(1000) + 1e-9)
  assert "exposure IN" in canary_run.summary()


def test_candidate_scores_equal_a_direct_forward_pass():
  """Engine.evaluate_canaries: the mean log-likelihood of each candidate's secret tokens after
  its prefix, and extraction of the true secret, as one model's own forward pass gives them."""
  from memjax import canaries, engine
  from memjax.config import TrainConfig
  data, _ = structured_text_with_canaries(repeats=(2,), count=1)
  config = TrainConfig(model="gpt", model_kwargs={"width": 16, "depth": 1, "heads": 2},
                       num_models=2, epochs=1, batch_size=16)
  eng = engine.Engine(data, config, steps_per_epoch=3, chunk_size=2)
  chunk = engine.Chunk(eng, np.arange(2), np.ones((2, data.num_train), bool))
  chunk.train_epoch(0)
  out = chunk.evaluate_canaries()
  x, y = canaries.candidate_sequences(data)  # [K, S + 1, L]
  assert out["canary_loglik"].shape == (2, 1, 1000) and out["canary_extracted"].shape == (2, 1)
  params = jax.tree.map(lambda a: a[1], chunk.state["params"])
  model_state = jax.tree.map(lambda a: a[1], chunk.state["model_state"])
  logits, _ = eng.fns.apply(params, model_state, jnp.asarray(x[0, :50]), False)
  logp = np.asarray(jax.nn.log_softmax(logits), np.float64)
  for j in range(50):
    scored = np.flatnonzero(y[0, j] >= 0)
    assert len(scored) == 5  # "d d d": the secret's three digits and two spaces
    want = logp[j, scored, y[0, j, scored]].mean()
    np.testing.assert_allclose(out["canary_loglik"][1, 0, j], want, rtol=1e-4, atol=1e-5)
  predicted = np.asarray(logits[0]).argmax(-1)
  scored = y[0, 0] >= 0
  assert out["canary_extracted"][1, 0] == np.all(predicted[scored] == y[0, 0][scored])


def test_a_classifier_on_text_is_refused_with_what_to_use():
  data = toy_text_data()
  with pytest.raises(MemjaxError, match=r"next-token logits \[B, L, V=.*'mlp' gave \(2, 10\).*"
                     "model='gpt'"):
    memjax.train(data, model="mlp", models=2, epochs=1, progress=False)


def test_cli_runs_a_text_file_with_the_lm_recipe_and_canaries(tmp_path, capsys):
  from memjax import cli
  from conftest import cat_sentences
  path = tmp_path / "cat.txt"
  path.write_text("\n".join(cat_sentences().texts("train")) + "\n")
  out = tmp_path / "run"
  assert cli.main(["run", "--data", f"text:{path}", "--models", "4", "--epochs", "2",
                   "--model-kwargs", '{"width": 16, "depth": 1, "heads": 2}',
                   "--canaries", "1", "--canary-repeats", "1,4", "--canary-digits", "2",
                   "--out", str(out), "--no-progress", "--no-report"]) == 0
  printed = capsys.readouterr().out
  assert "language models" in printed and "exposure IN" in printed
  run = memjax.Run.load(str(out))
  assert run.config.model == "gpt" and run.config.optimizer == "adam"  # the lm preset
  assert run.records.canary_loglik.shape == (1, 4, 2, 100)  # exact: 10**2 candidates
  header = open(out / "canaries.csv").readline().strip().split(",")
  assert header[:4] == ["canary", "row", "prefix", "secret"] and "exposure_in" in header
  scores = memjax.scores.read_csv(str(out / "scores.csv"))
  assert scores["text"][0] == run.data.texts("train")[0]
  assert len(scores["text"]) == run.data.num_train
  # membership inference on sequences, and the privacy audit once per secret
  assert cli.main(["attack", str(out)]) == 0
  audited = json.load(open(out / "attacks.json"))
  assert "lira_online" in audited["attacks"]
  assert audited["privacy_audit"]["canaries"]["count"] == 2
  assert memjax.scores.read_csv(str(out / "scores.csv"))["text"][0] == scores["text"][0]
  # the report lists the sentences as text and the canaries' exposure
  html = open(memjax.report.write_report(str(out))).read()
  assert "Most and least memorized sequences" in html
  assert "Canaries: exposure and extraction" in html
  assert "counterfactual memorization" in html.lower()
  top = np.nanargmax(scores["memorization"])
  assert memjax.report._esc(str(scores["text"][top])) in html
