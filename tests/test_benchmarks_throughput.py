"""benchmarks/throughput.py (imported by path): the FLOP counter of every family against hand
formulas, the workload names, the --accelerator guard and a tiny evaluation-table run."""

import json
import math

import jax
import pytest

from memjax import models as models_lib

from conftest import load_benchmark


# ---- hand-counted forward FLOPs per example: 2 per multiply-add, plus the bias adds ------------
def _dense(a, b):
  return 2.0 * a * b + b


def _conv(h, w, k, c_in, c_out):
  """A 'SAME' k x k convolution at output size h x w, every tap (padding included)."""
  return 2.0 * h * w * k * k * c_in * c_out


def _hand_cnn(shape, classes, channels=(32, 64), hidden=128):
  (h, w, c), total = shape, 0.0
  for c_out in channels:
    total += _conv(h, w, 3, c, c_out)
    h, w, c = h // 2, w // 2, c_out
  return total + _dense(h * w * c, hidden) + _dense(hidden, classes)


def _hand_resnet(shape, classes, width=16, depth=1):
  h, w, c = shape
  total, c = _conv(h, w, 3, c, width), width
  for stage in range(3):
    for b in range(depth):
      stride = 2 if stage > 0 and b == 0 else 1
      c_out = width * 2 ** stage
      h, w = math.ceil(h / stride), math.ceil(w / stride)
      total += _conv(h, w, 3, c, c_out) + _conv(h, w, 3, c_out, c_out)
      if stride != 1 or c != c_out:
        total += _conv(h, w, 1, c, c_out)  # projection shortcut
      c = c_out
  return total + _dense(c, classes)


def _hand_vgg(shape, classes, width=16, depth=1):
  h, w, c = shape
  total = 0.0
  for s in range(min(4, max(1, int(math.log2(min(h, w))) - 1))):
    for _ in range(depth):
      total += _conv(h, w, 3, c, width * 2 ** s)
      c = width * 2 ** s
    h, w = h // 2, w // 2
  return total + _dense(c, classes)


def _hand_blocks(tokens, width, depth):
  """Transformer blocks: q, k, v, out projections, scores and weighted sum, a 4x MLP."""
  per_token = 4 * _dense(width, width) + _dense(width, 4 * width) + _dense(4 * width, width)
  return depth * (tokens * per_token + 2 * 2.0 * tokens * tokens * width)


def hand_forward_flops(workload) -> float:
  """Matmul / convolution FLOPs of one example's forward pass (elementwise ops not counted)."""
  kw, shape = workload.model_kwargs, workload.data.feature_shape
  classes = workload.data.num_classes
  if workload.model == "logreg":
    return _dense(math.prod(shape), classes)
  if workload.model == "mlp":
    sizes = [math.prod(shape), *kw.get("widths", (256, 256)), classes]
    return sum(_dense(a, b) for a, b in zip(sizes, sizes[1:]))
  if workload.model == "cnn":
    return _hand_cnn(shape, classes, **kw)
  if workload.model == "resnet":
    return _hand_resnet(shape, classes, **kw)
  if workload.model == "vgg":
    return _hand_vgg(shape, classes, **kw)
  if workload.model == "vit":
    h, w, c = shape
    p, width = kw["patch"], kw["width"]
    tokens = (h // p) * (w // p)
    return (tokens * _dense(p * p * c, width) + _hand_blocks(tokens, width, kw["depth"])
            + _dense(width, classes))
  if workload.model == "gpt":
    size = models_lib.GPT_SIZES["nano"] | kw
    tokens = shape[0]
    return (_hand_blocks(tokens, size["width"], size["depth"])
            + tokens * _dense(size["width"], classes))
  raise ValueError(workload.model)


@pytest.fixture(scope="module")
def bench():
  return load_benchmark("throughput")


@pytest.fixture(scope="module")
def every_workload(bench):
  """Every workload's model at its real input shape (tiny datasets: nothing is trained)."""
  args = bench.parse_args(["--workloads", "all", "--cnn-train", "16", "--cnn-test", "8"])
  return bench.make_workloads(args)


def test_forward_flops_of_every_family_match_hand_formulas(bench, every_workload):
  # XLA's count adds the elementwise ops (bias, ReLU, BatchNorm, LayerNorm, softmax, GELU) to
  # the matmuls and convolutions: measured +0-1.8% for the dense and convolutional nets, +4%
  # for the ViT and the GPT.
  assert {w.model for w in every_workload} == set(models_lib.REGISTRY)
  for w in every_workload:
    xla, hand = bench.forward_flops_per_example(w), hand_forward_flops(w)
    assert 1.0 <= xla / hand <= 1.05, (w.key, w.model, xla, hand)
    assert bench.flops_per_example(w) == 3 * xla


def test_forward_flops_do_not_depend_on_the_convolution(bench, every_workload):
  # Counted with im2col convolutions whatever conv2d would pick, and per example.
  resnet = next(w for w in every_workload if w.model == "resnet")
  count = bench.forward_flops_per_example(resnet)
  with models_lib.conv_implementation("lax"):
    assert bench.forward_flops_per_example(resnet, batch=4) == pytest.approx(count, rel=1e-4)


def test_workload_names(bench):
  assert bench.workload_keys("w0,vgg,lm") == ["w0a", "w0b", "w4", "w6"]
  assert bench.workload_keys("vit, w2 ,resnet") == ["w2", "w3", "w5"]
  assert bench.workload_keys("all") == list(bench.WORKLOAD_KEYS)
  with pytest.raises(ValueError, match="unknown workload 'w9'"):
    bench.workload_keys("w1,w9")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the guard is for CPUs")
def test_accelerator_workloads_refuse_a_cpu_unless_forced(bench, capsys):
  with pytest.raises(SystemExit):
    bench.parse_args(["--accelerator"])
  assert "--force" in capsys.readouterr().err
  args = bench.parse_args(["--accelerator", "--force"])
  assert args.models == [64, 256, 1024] and args.cnn_train == 50_000
  assert args.workloads == ["w2", "w3", "w4", "w5", "w6"] and args.eval_models == [64, 256]


def test_torch_models_have_memjax_parameter_counts(every_workload):
  pytest.importorskip("torch")
  import _baselines_torch
  for w in every_workload:  # build_model raises if the counts differ
    model = _baselines_torch.build_model(w)
    assert sum(p.numel() for p in model.parameters()) == w.num_params


@pytest.mark.slow
def test_eval_only_quick(bench, tmp_path, capsys):
  # The evaluation table alone, at 2 models: logistic regressions on the digits (images: 2
  # queries) and the tiny GPT on tiny synthetic text (A = 1); ~15 s on 2 cores.
  out = bench.main(["--quick", "--eval-only", "--workloads", "w0a,lm", "--eval-models", "2",
                    "--json", str(tmp_path / "out.json")])
  assert out["results"] == {} and set(out["evals"]) == {"w0a", "w6"}
  for key, queries in (("w0a", 2), ("w6", 1)):
    cell = out["evals"][key][2]
    assert isinstance(cell, bench.EvalResult), cell  # not an error string
    assert cell.models_run == 2 and cell.queries == queries and cell.train_s > 0
    assert set(cell.eval_s) == {"train", "test", "train+queries", "test+queries"}
    assert all(s > 0 for s in cell.eval_s.values()) and cell.train_gflops() > 0
  text = capsys.readouterr().out
  assert "W0A evaluation vs training" in text and "A=2 queries" in text
  assert "Model-epochs per second" not in text  # no training-throughput columns
  saved = json.loads((tmp_path / "out.json").read_text())["workloads"]
  assert saved["w6"]["eval"]["2"]["eval_gflops"]["train"] > 0
  assert saved["w0a"]["forward_flops_per_example"] == pytest.approx(1290)  # 2*64*10 + 10
