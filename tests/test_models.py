import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import memjax
from memjax import models
from memjax.errors import MemjaxError


IMAGE_MODELS = [name for name in models.REGISTRY if name != "gpt"]  # gpt takes token sequences


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("shape", [(8, 8, 1), (12, 12, 3)])
def test_every_model_maps_images_to_logits(name, shape):
  model = models.build(name, shape, 7, nnx.Rngs(0))
  for train in (True, False):
    assert model(jnp.ones((3, *shape)), train=train).shape == (3, 7)
  assert models.count_params(nnx.state(model, nnx.Param)) > 0


@pytest.mark.slow
def test_vector_models_and_image_only_errors():
  assert models.build("mlp", (5,), 3, nnx.Rngs(0), widths=(4,))(jnp.ones((2, 5))).shape == (2, 3)
  with pytest.raises(MemjaxError, match="needs images"):
    models.build("cnn", (5,), 3, nnx.Rngs(0))
  with pytest.raises(MemjaxError, match="Unknown model"):
    models.build("transformer", (5,), 3, nnx.Rngs(0))
  with pytest.raises(MemjaxError, match="Bad model arguments"):
    models.build("mlp", (5,), 3, nnx.Rngs(0), depth=3)


@pytest.mark.slow
def test_resnet20_size():
  # He et al.'s ResNet-20 for CIFAR-10 has 0.27M parameters.
  model = models.build("resnet", (32, 32, 3), 10, nnx.Rngs(0), width=16, depth=3)
  assert 260_000 < models.count_params(nnx.state(model, nnx.Param)) < 280_000


@pytest.mark.parametrize("impl", ["im2col", "canonical"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel_size", [1, 3])
@pytest.mark.parametrize("channels", [3, 12])  # canonical: weight gradient by slices / by conv
def test_conv_implementations_equal_lax_conv_values_and_grads(impl, stride, kernel_size,
                                                              channels):
  x = jax.random.normal(jax.random.key(0), (4, 9, 9, channels))
  k = jax.random.normal(jax.random.key(1), (kernel_size, kernel_size, channels, 5))
  a = models.conv2d(x, k, stride, impl=impl)
  b = models.conv2d(x, k, stride, impl="lax")
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
  loss = lambda impl: lambda x, k: (models.conv2d(x, k, stride, impl) ** 2).sum()
  ga = jax.grad(loss(impl), argnums=(0, 1))(x, k)
  gb = jax.grad(loss("lax"), argnums=(0, 1))(x, k)
  for got, want in zip(ga, gb):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_conv_implementation_sets_the_default_while_tracing():
  x, k = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
  primitives = lambda: {e.primitive.name for e in jax.make_jaxpr(
      lambda x, k: models.conv2d(x, k))(x, k).jaxpr.eqns}
  with models.conv_implementation("im2col"):
    assert "conv_general_dilated" not in primitives()
  with models.conv_implementation("lax"):
    assert "conv_general_dilated" in primitives()
  with pytest.raises(MemjaxError, match="conv implementation 'fft'"):
    with models.conv_implementation("fft"):
      pass


def test_max_pool_matches_reduce_window():
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 4))
  ref = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
  np.testing.assert_array_equal(models.max_pool2(x), ref)


@pytest.mark.slow
def test_batchnorm_uses_running_averages_at_evaluation():
  model = models.build("resnet", (8, 8, 3), 4, nnx.Rngs(0), width=4)
  x = jax.random.normal(jax.random.key(0), (16, 8, 8, 3)) * 3 + 1
  stats = lambda: jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))
  before = stats()
  y_eval = model(x, train=False)
  after_eval = stats()
  jax.tree.map(np.testing.assert_array_equal, before, after_eval)  # eval leaves stats alone
  y_train = model(x, train=True)
  assert not np.allclose(y_eval, y_train)
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), before, stats())
  assert any(jax.tree.leaves(changed))


# ---- vit ----------------------------------------------------------------------------------------
def vit_params(width, depth, tokens, patch_dim, classes, mlp_ratio=4, cls_token=False):
  """Parameters of a ViT: patch embedding, position embeddings (and CLS token), blocks, head.

  A block: two LayerNorms (4w), qkv and output projections (4w^2 + 4w), the MLP
  (2 r w^2 + r w + w).
  """
  w, r = width, mlp_ratio
  block = 4 * w + 4 * w * w + 4 * w + 2 * r * w * w + r * w + w
  embed = patch_dim * w + w + (tokens + cls_token) * w + cls_token * w
  return embed + depth * block + 2 * w + w * classes + classes


def vit_param_count(shape, classes, **kwargs):
  model = nnx.eval_shape(lambda: models.build("vit", shape, classes, nnx.Rngs(0), **kwargs))
  return models.count_params(nnx.state(model, nnx.Param))


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3)])
@pytest.mark.parametrize("kwargs", [
    {}, {"size": "tiny"}, {"size": "small"}, {"size": "tiny", "depth": 1, "heads": 6},
    {"width": 24, "depth": 3, "heads": 3, "mlp_ratio": 2.0}, {"patch": 1, "width": 8},
    {"dropout": 0.1, "width": 16}])
def test_vit_maps_images_to_logits(shape, kwargs):
  # Shapes only (traced, nothing computed): ViT-S at 32x32 would take seconds to run eagerly.
  for train in (True, False):
    logits = nnx.eval_shape(lambda: models.build(
        "vit", shape, 10, nnx.Rngs(params=0, dropout=1), **kwargs)(
            jnp.zeros((3, *shape)), train=train))
    assert (logits.shape, logits.dtype) == ((3, 10), jnp.float32)


@pytest.mark.parametrize("shape, patch", [((8, 8, 1), 2), ((32, 32, 3), 4), ((28, 28, 1), 7),
                                          ((12, 12, 3), 3), ((16, 16, 3), 4), ((64, 64, 3), 8),
                                          ((7, 7, 1), 1), ((30, 30, 3), 6), ((8, 12, 1), 2)])
def test_vit_default_patch_makes_a_4x4_or_8x8_grid(shape, patch):
  model = nnx.eval_shape(lambda: models.build("vit", shape, 3, nnx.Rngs(0), width=8, heads=2))
  assert model.patch == patch


@pytest.mark.parametrize("shape, patch, match", [
    ((8, 8, 1), 3, r"patch=3 does not divide the 8x8 images into whole patches; use one of 1, 2, "
                   r"4, 8"),
    ((32, 32, 3), 5, "patch=5 does not divide the 32x32 images"),
    ((8, 8, 1), 0, "patch=0 does not divide"),
    ((8, 8, 1), 16, "patch=16 does not divide"),
])
def test_vit_bad_patch(shape, patch, match):
  with pytest.raises(MemjaxError, match=match):
    models.build("vit", shape, 3, nnx.Rngs(0), patch=patch)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": "huge"}, "Unknown vit size='huge'; choose one of tiny, small"),
    ({"width": 30, "heads": 4}, "width=30 is not divisible by heads=4"),
    ({"depth": 0}, "vit depth=0; use a positive integer"),
    ({"dropout": 1.0}, r"dropout=1.0; use a rate in \[0, 1\)"),
    ({"mlp_ratio": 0}, "mlp_ratio=0; must be positive"),
])
def test_vit_bad_knobs(kwargs, match):
  with pytest.raises(MemjaxError, match=match):
    nnx.eval_shape(lambda: models.build("vit", (8, 8, 1), 3, nnx.Rngs(0), **kwargs))
  with pytest.raises(MemjaxError, match="needs images"):
    models.build("vit", (64,), 3, nnx.Rngs(0))


@pytest.mark.slow
def test_vit_parameter_counts():
  # The formula reproduces the published ViT-Ti/16 and ViT-S/16 (CLS token, 224x224, 1000
  # classes; timm's vit_tiny_patch16_224 and vit_small_patch16_224: 5.7M and 22.1M; 5.5M and
  # 21.7M without the head).
  assert vit_params(192, 12, 196, 768, 1000, cls_token=True) == 5_717_416
  assert vit_params(384, 12, 196, 768, 1000, cls_token=True) == 22_050_664
  # memjax's ViT pools the mean instead of a CLS token: 2 * width fewer parameters.
  assert vit_param_count((224, 224, 3), 1000, size="tiny", patch=16) == 5_717_416 - 2 * 192
  # At 32x32 with patch 4 (64 tokens of 4*4*3 = 48 values), 10 classes.
  tiny = vit_param_count((32, 32, 3), 10, size="tiny")
  small = vit_param_count((32, 32, 3), 10, size="small")
  assert tiny == vit_params(192, 12, 64, 48, 10)
  assert small == vit_params(384, 12, 64, 48, 10)
  assert 5.3e6 < tiny < 5.5e6 and 21.2e6 < small < 21.5e6  # the blocks dominate: ~ ViT-Ti, ViT-S
  # The size's knobs can be overridden one by one.
  assert vit_param_count((32, 32, 3), 10, size="small", depth=2) == vit_params(384, 2, 64, 48, 10)
  assert vit_param_count((8, 8, 1), 10, width=32, depth=2, heads=2) == vit_params(32, 2, 16, 4, 10)


@pytest.mark.slow
def test_vit_dropout_acts_only_while_training():
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
  apply = nnx.jit(lambda model, x, train: model(x, train=train), static_argnames="train")
  model = models.build("vit", (8, 8, 1), 5, nnx.Rngs(params=0, dropout=1), width=16, depth=2,
                       dropout=0.2)
  eval1, eval2 = apply(model, x, False), apply(model, x, False)
  train1, train2 = apply(model, x, True), apply(model, x, True)  # the stream advances
  np.testing.assert_array_equal(eval1, eval2)
  assert not np.allclose(train1, eval1) and not np.allclose(train1, train2)
  # Without dropout nothing is random: train and eval agree, and no dropout stream is needed.
  plain = models.build("vit", (8, 8, 1), 5, nnx.Rngs(params=0), width=16, depth=2)
  np.testing.assert_array_equal(apply(plain, x, True), apply(plain, x, False))
  assert not [m for _, m in nnx.iter_graph(plain) if isinstance(m, nnx.Dropout)]
  with pytest.raises(MemjaxError, match="needs random numbers while training: build it with "
                     r"nnx.Rngs\(params=..., dropout=...\)"):
    models.build("vit", (8, 8, 1), 5, nnx.Rngs(params=0), dropout=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_matches_reference(causal):
  attention = models.SelfAttention(16, 4, rngs=nnx.Rngs(0), causal=causal)
  x = jax.random.normal(jax.random.key(1), (2, 5, 16))
  mha = attention.attention
  q, k, v = mha.query(x), mha.key(x), mha.value(x)  # [2, 5, 4, 4]
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / 2.0
  if causal:
    logits = jnp.where(jnp.tril(jnp.ones((5, 5), bool)), logits, -jnp.inf)
  ref = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
  np.testing.assert_allclose(attention(x), mha.out(ref), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["attention", "block"])
def test_causal_attention_masks_the_future(module):
  rngs = nnx.Rngs(0)
  make = {"attention": lambda causal: models.SelfAttention(16, 2, rngs=rngs, causal=causal),
          "block": lambda causal: models.TransformerBlock(16, 2, rngs=rngs, causal=causal)}[module]
  apply = nnx.jit(lambda module, x: module(x))
  causal, full = make(True), make(False)
  x = jax.random.normal(jax.random.key(1), (3, 7, 16))
  for t in range(6):  # the tokens after t replaced
    changed = x.at[:, t + 1:].set(jax.random.normal(jax.random.key(t + 2), (3, 6 - t, 16)))
    before, after = apply(causal, x), apply(causal, changed)
    np.testing.assert_allclose(after[:, :t + 1], before[:, :t + 1], atol=1e-6)
    assert not np.allclose(after[:, t + 1:], before[:, t + 1:])
    # Without the mask every position sees the future.
    assert not np.allclose(apply(full, changed)[:, :t + 1], apply(full, x)[:, :t + 1])


@pytest.mark.slow
def test_tiny_vit_fits_digits(small_digits):
  # memjax.train's default SGD chain (the engine builds the model with nnx.Rngs(params=key));
  # each model fits its 150 of the 300 digits (~7 s on 2 cores).
  run = memjax.train(small_digits, model="vit", model_kwargs={"width": 16, "depth": 1, "heads": 2},
                     models=4, epochs=30, batch_size=16, learning_rate=0.1, warmup_fraction=0.3,
                     progress=False)
  assert run.info["num_params"] == vit_params(16, 1, 16, 4, 10)
  assert run.records.train_accuracy()[-1].min() > 0.97
  assert run.records.test_accuracy()[-1].mean() > 0.5  # 0.66 measured


@pytest.mark.slow
def test_mlp_dropout_acts_only_while_training_and_is_reseeded_by_the_engine(small_digits):
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
  apply = nnx.jit(lambda model, x, train: model(x, train=train), static_argnames="train")
  model = models.build("mlp", (8, 8, 1), 5, nnx.Rngs(params=0, dropout=1), widths=(32, 32),
                       dropout=0.5)
  eval1, eval2 = apply(model, x, False), apply(model, x, False)
  train1, train2 = apply(model, x, True), apply(model, x, True)  # the stream advances
  np.testing.assert_array_equal(eval1, eval2)
  assert not np.allclose(train1, eval1) and not np.allclose(train1, train2)
  # The same parameters as the MLP without dropout (Dropout has none), which is deterministic
  # and keeps no Dropout module.
  plain = models.build("mlp", (8, 8, 1), 5, nnx.Rngs(params=0), widths=(32, 32))
  count = lambda m: models.count_params(nnx.state(m, nnx.Param))
  assert count(plain) == count(model)
  np.testing.assert_array_equal(apply(plain, x, True), apply(plain, x, False))
  assert not [m for _, m in nnx.iter_graph(plain) if isinstance(m, nnx.Dropout)]
  with pytest.raises(MemjaxError, match="needs random numbers while training: build it with "
                     r"nnx.Rngs\(params=..., dropout=...\)"):
    models.build("mlp", (8, 8, 1), 5, nnx.Rngs(params=0), dropout=0.1)
  with pytest.raises(MemjaxError, match=r"mlp dropout=1.0; use a rate in \[0, 1\)"):
    models.build("mlp", (8, 8, 1), 5, nnx.Rngs(params=0, dropout=1), dropout=1.0)
  # Through the engine: the model's stream is rebuilt from each step's key, so a step's mask
  # depends on its key only, and evaluation is deterministic.
  from memjax import engine
  config = memjax.TrainConfig(model="mlp", model_kwargs={"widths": [32], "dropout": 0.5})
  fns = engine.model_fns(config, small_digits)
  assert "dropout" in fns.random_streams
  params, state = fns.init(jax.random.key(0))
  xs = jnp.asarray(small_digits.x_train[:16])
  a, _ = fns.apply(params, state, xs, True, jax.random.key(1))
  b, _ = fns.apply(params, state, xs, True, jax.random.key(1))
  c, _ = fns.apply(params, state, xs, True, jax.random.key(2))
  d, _ = fns.apply(params, state, xs, False)
  e, _ = fns.apply(params, state, xs, False)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  np.testing.assert_array_equal(d, e)
  # Trained, dropout models are random per step yet reproducible per seed.
  kwargs = dict(model="mlp", model_kwargs={"widths": [32], "dropout": 0.5}, models=4, epochs=2,
                batch_size=64, progress=False)
  r1, r2 = memjax.train(small_digits, **kwargs), memjax.train(small_digits, **kwargs)
  np.testing.assert_array_equal(r1.records.train_lira, r2.records.train_lira)
  r0 = memjax.train(small_digits, **dict(kwargs, model_kwargs={"widths": [32]}))
  assert np.abs(r0.records.train_lira - r1.records.train_lira).max() > 0.1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg", "resnet"])
def test_group_norm_variants_keep_no_batch_statistics(name):
  rngs = nnx.Rngs(0)
  model = models.build(name, (8, 8, 3), 4, rngs, width=4, depth=1, norm="group")
  _, _, state = nnx.split(model, nnx.Param, ...)
  assert not jax.tree.leaves(state)  # nothing but parameters: per-example gradients are valid
  x = jax.random.normal(jax.random.key(0), (5, 8, 8, 3))
  # Each example is normalised on its own: a batch of one gives the same logits.
  np.testing.assert_allclose(model(x, train=True)[:1], model(x[:1], train=True), rtol=1e-4,
                             atol=1e-5)
  with pytest.raises(MemjaxError, match="norm='layer'"):
    models.build(name, (8, 8, 3), 4, rngs, width=4, norm="layer")


# ---- gpt ----------------------------------------------------------------------------------------
def gpt_params(vocab, length, width, depth, mlp_ratio=4):
  """Parameters of the GPT: token and position embeddings, blocks, final LayerNorm, head.

  A block: two LayerNorms (4w), qkv and output projections (4w^2 + 4w), the MLP
  (2 r w^2 + r w + w).
  """
  w, r = width, mlp_ratio
  block = 4 * w + 4 * w * w + 4 * w + 2 * r * w * w + r * w + w
  return vocab * w + length * w + depth * block + 2 * w + w * vocab + vocab


def gpt_param_count(length, vocab, **kwargs):
  model = nnx.eval_shape(lambda: models.build("gpt", (length,), vocab, nnx.Rngs(0), **kwargs))
  return models.count_params(nnx.state(model, nnx.Param))


def tokens(shape, vocab, seed=0):
  return jax.random.randint(jax.random.key(seed), shape, 0, vocab, jnp.int32)


@pytest.mark.parametrize("kwargs", [
    {}, {"size": "pico"}, {"size": "micro"}, {"size": "nano", "depth": 1},
    {"width": 24, "depth": 3, "heads": 3, "mlp_ratio": 2.0}, {"dropout": 0.1, "width": 16}])
def test_gpt_maps_tokens_to_logits(kwargs):
  # Shapes only (traced, nothing computed).
  for train in (True, False):
    for dtype in (jnp.int32, jnp.float32):  # floats holding ids (the engine's memory estimate)
      logits = nnx.eval_shape(lambda: models.build(
          "gpt", (12,), 9, nnx.Rngs(params=0, dropout=1), **kwargs)(
              jnp.zeros((3, 12), dtype), train=train))
      assert (logits.shape, logits.dtype) == ((3, 12, 9), jnp.float32)


def test_gpt_parameter_counts():
  assert gpt_param_count(64, 73) == gpt_params(73, 64, 64, 2) == 113_609  # the default: nano
  assert gpt_param_count(64, 73, size="pico") == gpt_params(73, 64, 32, 2)
  assert gpt_param_count(64, 73, size="micro") == gpt_params(73, 64, 128, 4)
  assert gpt_param_count(64, 257, size="micro", depth=2) == gpt_params(257, 64, 128, 2)
  assert (gpt_param_count(10, 5, width=24, depth=3, heads=3, mlp_ratio=2.0)
          == gpt_params(5, 10, 24, 3, mlp_ratio=2))
  # Dropout has no parameters.
  assert gpt_param_count(64, 73, dropout=0.1) == gpt_param_count(64, 73)


def test_gpt_is_causal():
  length, vocab = 8, 11
  model = models.build("gpt", (length,), vocab, nnx.Rngs(0), width=16, depth=2, heads=2)
  x = tokens((3, length), vocab)
  # Row t of `changed`: x with the token at position t replaced by another one.
  changed = jnp.stack([x.at[:, t].set((x[:, t] + 1 + t % (vocab - 1)) % vocab)
                       for t in range(length)])  # [L, 3, L]
  logits = jax.jit(lambda x: model(x.reshape(-1, length)))(jnp.concatenate([x[None], changed]))
  before, changed_logits = logits[:3], logits[3:].reshape(length, 3, length, vocab)
  for t, after in enumerate(changed_logits):
    np.testing.assert_allclose(after[:, :t], before[:, :t], atol=1e-6)  # the past: untouched
    assert not np.allclose(after[:, t], before[:, t])  # position t sees its own token
    # Every later position sees it too, in at least one of the sequences.
    assert all(not np.allclose(after[:, s], before[:, s]) for s in range(t, length))


@pytest.mark.slow
def test_gpt_dropout_acts_only_while_training():
  x = tokens((4, 10), 7)
  apply = nnx.jit(lambda model, x, train: model(x, train=train), static_argnames="train")
  model = models.build("gpt", (10,), 7, nnx.Rngs(params=0, dropout=1), width=16, depth=2,
                       heads=2, dropout=0.2)
  eval1, eval2 = apply(model, x, False), apply(model, x, False)
  train1, train2 = apply(model, x, True), apply(model, x, True)  # the stream advances
  np.testing.assert_array_equal(eval1, eval2)
  assert not np.allclose(train1, eval1) and not np.allclose(train1, train2)
  # Without dropout nothing is random: train and eval agree, and no dropout stream is needed.
  plain = models.build("gpt", (10,), 7, nnx.Rngs(params=0), width=16, depth=2, heads=2)
  np.testing.assert_array_equal(apply(plain, x, True), apply(plain, x, False))
  assert not [m for _, m in nnx.iter_graph(plain) if isinstance(m, nnx.Dropout)]
  with pytest.raises(MemjaxError, match="needs random numbers while training: build it with "
                     r"nnx.Rngs\(params=..., dropout=...\)"):
    models.build("gpt", (10,), 7, nnx.Rngs(params=0), dropout=0.1)


@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3), (4, 16), ()])
def test_gpt_refuses_image_data(shape):
  with pytest.raises(MemjaxError, match=r"gpt needs token sequences \[L\]; the data has features "
                     r"of shape .*Load text with memjax.load\('text:PATH'\) or "
                     r"memjax.load\('pydoc'\)"):
    models.build("gpt", shape, 10, nnx.Rngs(0))


@pytest.mark.parametrize("kwargs, match", [
    ({"size": "huge"}, "Unknown gpt size='huge'; choose one of pico, nano, micro"),
    ({"width": 30, "heads": 4}, "width=30 is not divisible by heads=4"),
    ({"depth": 0}, "gpt depth=0; use a positive integer"),
    ({"width": 32.0}, "gpt width=32.0; use a positive integer"),
    ({"dropout": 1.0}, r"gpt dropout=1.0; use a rate in \[0, 1\)"),
    ({"mlp_ratio": 0}, "gpt mlp_ratio=0; must be positive"),
])
def test_gpt_bad_knobs(kwargs, match):
  with pytest.raises(MemjaxError, match=match):
    nnx.eval_shape(lambda: models.build("gpt", (16,), 5, nnx.Rngs(0), **kwargs))


def test_gpt_bad_vocabulary_and_inputs():
  with pytest.raises(MemjaxError, match="at least 2 tokens"):
    models.build("gpt", (16,), 1, nnx.Rngs(0))
  model = nnx.eval_shape(lambda: models.build("gpt", (16,), 5, nnx.Rngs(0), width=8, heads=2))
  for shape in [(2, 8), (2, 16, 1), (16,)]:
    with pytest.raises(MemjaxError, match=r"gpt was built for token sequences \[B, 16\]"):
      model(jnp.zeros(shape, jnp.int32))


@pytest.mark.slow
def test_gpt_learns_a_deterministic_sequence():
  # One model, Adam, the token layout of memjax.text (BOS 0 first; targets -1 not scored): the
  # next character of "abcd..." repeated is determined by the previous one, and the model
  # learns it (masked mean cross-entropy from ln 6 = 1.8 to < 0.1 nats in 150 steps, ~3 s).
  import optax
  length, vocab = 12, 6
  text = np.array([1 + i % (vocab - 1) for i in range(length)], np.int32)  # 1 2 3 4 5 1 2 ...
  starts = np.arange(8) % (vocab - 1)
  seqs = np.stack([np.roll(text, -s) for s in starts])          # [8, L] different phases
  x = np.concatenate([np.zeros((8, 1), np.int32), seqs[:, :-1]], axis=1)
  y = seqs.copy()
  y[:, 0] = -1  # the first token after BOS is a random phase: not scored
  model = models.build("gpt", (length,), vocab, nnx.Rngs(0), width=16, depth=1, heads=2)
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  def loss_fn(model):
    logits = model(jnp.asarray(x), train=True)
    mask = y >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, np.maximum(y, 0))
    return (ce * mask).sum() / mask.sum()

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  first = float(step(model, optimizer))
  for _ in range(150):
    last = float(step(model, optimizer))
  assert first > 1.2 and last < 0.1, (first, last)
