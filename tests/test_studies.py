"""Studies: helpers against hand-computed answers, the five studies at scale "small", the CLI."""

import csv
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

import memjax
from memjax import cli, estimators, formatting, plotting, studies
from memjax.errors import MemjaxError

MLP8, MLP16, MLP64 = studies._mlp(8), studies._mlp(16), studies._mlp(64)
VGG = ("vgg", "vgg", {"width": 4, "depth": 1})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def random_history(t=3, m=8, n=40, seed=0):
  """[T, M, N] correctness that depends on keep (IN models right more often) and a [M, N] keep."""
  rng = np.random.default_rng(seed)
  keep = rng.random((m, n)) < 0.5
  p = np.where(keep, 0.8, 0.4)
  return rng.random((t, m, n)) < p, keep


def memorized_counts(correct, keep, threshold=studies.THRESHOLD):
  """[T] counts of examples with score >= threshold, one estimators.memorization call per row."""
  return np.array([estimators.count_memorized(estimators.memorization(c, keep), threshold)
                   for c in correct])


# ---- memorization_history -----------------------------------------------------------------------
def test_memorization_history_known_values():
  keep = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
  first = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], bool)
  second = np.array([[1, 1], [0, 1], [0, 0], [0, 0]], bool)
  # Example 0 is IN for models 0, 1 and OUT for 2, 3; example 1 IN for 1, 2 and OUT for 0, 3.
  # first: example 0 IN 2/2 - OUT 0/2 = 1; example 1 IN 2/2 - OUT 1/2 = 0.5.
  # second: example 0 IN 1/2 - OUT 0/2 = 0.5; example 1 IN 1/2 - OUT 1/2 = 0.
  hist = studies.memorization_history(np.stack([first, second]), keep)
  assert hist.dtype == np.float64
  np.testing.assert_allclose(hist, [[1.0, 0.5], [0.5, 0.0]])


def test_memorization_history_matches_estimators_and_nan():
  correct, keep = random_history(t=4, m=6, n=30)
  keep[0], keep[1] = True, False  # every example has an IN and an OUT model...
  keep[:, 0] = True   # ... but example 0 has no OUT model
  keep[:, 1] = False  # and example 1 no IN model
  hist = studies.memorization_history(correct, keep)
  assert hist.shape == (4, 30)
  for t in range(4):
    np.testing.assert_allclose(hist[t], estimators.memorization(correct[t], keep))
  assert np.isnan(hist[:, :2]).all() and np.isfinite(hist[:, 2:]).all()


def test_memorization_history_shape_errors():
  correct, keep = random_history(t=2, m=4, n=5)
  with pytest.raises(MemjaxError, match=r"\[T, M, N\]"):
    studies.memorization_history(correct[0], keep)
  with pytest.raises(MemjaxError, match=r"matching keep"):
    studies.memorization_history(correct, keep[:, :4])


# ---- bootstrap SE and permutation null ----------------------------------------------------------
def test_memorized_count_se_matches_explicit_resampling():
  # M = 8: every score a resample can give is a/n_in - b/n_out with n_in + n_out = 8, so a score
  # exactly at 0.25 is a dyadic fraction and float32 vs float64 cannot disagree at the threshold.
  correct, keep = random_history(t=3, m=8, n=50, seed=1)
  se = studies.memorized_count_se(correct, keep, n_boot=40, seed=3)
  rng = np.random.default_rng(3)
  weights = rng.multinomial(8, np.full(8, 1 / 8), size=40)
  counts = []
  for w in weights:
    idx = np.repeat(np.arange(8), w)  # the resampled models, repeats included
    hist = studies.memorization_history(correct[:, idx], keep[idx])
    counts.append((np.nan_to_num(hist, nan=-np.inf) >= studies.THRESHOLD).sum(-1))
  expected = np.std(counts, axis=0, ddof=1)
  assert se.shape == (3,)
  np.testing.assert_allclose(se, expected, rtol=1e-12)
  assert (se > 0).all()
  # [M, N] input gives a float equal to the single-evaluation answer.
  single = studies.memorized_count_se(correct[1], keep, n_boot=40, seed=3)
  assert isinstance(single, float) and single == pytest.approx(expected[1])
  # Deterministic for a seed.
  np.testing.assert_array_equal(se, studies.memorized_count_se(correct, keep, n_boot=40, seed=3))


def test_memorized_count_se_zero_when_nothing_varies():
  _, keep = random_history(m=8, n=20)
  always = np.ones((2, 8, 20), bool)  # every model right on everything: all scores 0
  np.testing.assert_array_equal(studies.memorized_count_se(always, keep), [0.0, 0.0])
  assert studies.memorized_count_se(always[0], keep) == 0.0


def test_null_memorized_count_matches_reference():
  correct, keep = random_history(t=2, m=8, n=60, seed=2)
  got = studies.null_memorized_count(correct, keep, n_perm=3, seed=5)
  rng = np.random.default_rng(5)
  expected = np.zeros(2)
  for _ in range(3):
    perm = np.argsort(rng.random(keep.shape), axis=0)
    shuffled = np.stack([keep[perm[:, i], i] for i in range(keep.shape[1])], axis=1)
    np.testing.assert_array_equal(shuffled.sum(0), keep.sum(0))  # IN counts kept per example
    expected += memorized_counts(correct, shuffled)
  np.testing.assert_allclose(got, expected / 3)
  # The real signal (IN right 80%, OUT 40%) is well above the permutation floor.
  assert (memorized_counts(correct, keep) > got + 10).all()
  assert isinstance(studies.null_memorized_count(correct[0], keep, n_perm=3, seed=5), float)


def test_null_memorized_count_zero_without_dependence_on_keep():
  _, keep = random_history(m=8, n=30)
  per_example = np.random.default_rng(0).random(30) < 0.5
  correct = np.broadcast_to(per_example, (2, 8, 30))  # same answer from every model
  np.testing.assert_array_equal(studies.null_memorized_count(correct, keep), [0.0, 0.0])


# ---- detect_stages ------------------------------------------------------------------------------
def test_detect_stages_none_rise_fall():
  ep = [1, 2, 3, 4, 5, 6, 7, 8]
  counts = [0, 0, 1, 5, 12, 20, 14, 10]  # none while <= 2 (10% of 20), peak at epoch 6
  s = studies.detect_stages(ep, counts, counts_se=[1.0] * 8)
  assert s["stage"] == ["none"] * 3 + ["rise"] * 3 + ["fall"] * 2
  assert (s["none"], s["rise"], s["fall"], s["plateau"]) == ([1, 3], [4, 6], [7, 8], None)
  assert (s["peak_epoch"], s["peak_count"], s["final_count"]) == (6, 20.0, 10.0)
  assert s["drop"] == 10.0 and s["drop_se"] == pytest.approx(math.sqrt(2))
  assert s["fall_detected"] is True
  # The same drop within 2 combined SE is a plateau, not a fall.
  noisy = studies.detect_stages(ep, counts, counts_se=[6.0] * 8)
  assert noisy["stage"][6:] == ["plateau"] * 2
  assert noisy["fall"] is None and noisy["plateau"] == [7, 8] and not noisy["fall_detected"]
  # Without SE only the relative drop (>= 5% of the peak) matters.
  assert studies.detect_stages(ep, counts)["fall_detected"]
  assert np.isnan(studies.detect_stages(ep, counts)["drop_se"])


def test_detect_stages_noise_floor_counts_as_none():
  # The digits curve of the epochs study: epoch 1's 50 "memorized" examples are estimation noise
  # (the permutation null gives 25 and the SE is 17), so epochs 1-2 are the none stage.
  ep = [1, 2, 3, 4, 5]
  counts, se, null = [50, 17, 29, 56, 30], [16.8, 5.8, 5.0, 6.7, 5.0], [24.75, 5.5, 3, 2.5, 2]
  plain = studies.detect_stages(ep, counts, se)
  assert plain["none"] is None and plain["rise"] == [1, 4]
  s = studies.detect_stages(ep, counts, se, null_counts=null)
  assert s["stage"] == ["none", "none", "rise", "rise", "fall"]
  assert s["none"] == [1, 2] and s["rise"] == [3, 4] and s["fall"] == [5, 5]


def test_detect_stages_without_fall():
  rising = studies.detect_stages([2, 4, 6, 8, 10], [0, 3, 6, 9, 12])  # epochs in steps of 2
  assert rising["stage"] == ["none", "rise", "rise", "rise", "rise"]
  assert rising["none"] == [2, 2] and rising["rise"] == [4, 10]
  assert rising["fall"] is None and rising["plateau"] is None
  assert rising["peak_epoch"] == 10 and rising["drop"] == 0.0 and not rising["fall_detected"]
  flat = studies.detect_stages([1, 2, 3, 4], [0, 10, 10, 10])  # first peak, then level
  assert flat["stage"] == ["none", "rise", "plateau", "plateau"]
  assert flat["peak_epoch"] == 2 and flat["plateau"] == [3, 4] and not flat["fall_detected"]
  small_drop = studies.detect_stages([1, 2, 3], [0, 100, 97])  # 3% < min_drop 5%
  assert small_drop["stage"] == ["none", "rise", "plateau"]
  assert studies.detect_stages([1, 2, 3], [0, 100, 94])["stage"][-1] == "fall"
  early = studies.detect_stages([1, 2, 3], [30, 20, 10])  # peak first: no none stage
  assert early["stage"] == ["rise", "fall", "fall"] and early["none"] is None
  zero = studies.detect_stages([1, 2, 3], [0, 0, 0])
  assert zero["stage"] == ["none"] * 3
  assert zero["rise"] is None and zero["peak_count"] == 0.0 and not zero["fall_detected"]


def test_detect_stages_errors():
  with pytest.raises(MemjaxError, match="equal-length"):
    studies.detect_stages([1, 2, 3], [1, 2])
  with pytest.raises(MemjaxError, match="non-empty"):
    studies.detect_stages([], [])
  with pytest.raises(MemjaxError, match="1-D"):
    studies.detect_stages(np.ones((2, 2)), np.ones((2, 2)))


# ---- arch_label, scales ---------------------------------------------------------------------
@pytest.mark.parametrize("arch, label", [
    (("mlp", "mlp", {"widths": [64, 64]}), "mlp[64,64]"),
    (("mlp", "mlp", {"widths": [8]}), "mlp[8]"),
    (("mlp", "mlp", {}), "mlp[256,256]"),
    (("vgg", "vgg", {"width": 8, "depth": 1}), "vgg w8 d1"),
    (("vgg", "vgg", {"depth": 2, "width": 16}), "vgg w16 d2"),
    (("resnet", "resnet", {"width": 4, "depth": 2}), "resnet w4 d2"),
    (("vit", "vit", {"width": 32, "depth": 2, "heads": 2}, {"epochs": 20}), "vit w32 d2 h2"),
    (("vit", "vit", {"size": "small", "depth": 6}), "vit small d6"),
    (("vit", "vit", {"width": 16, "dropout": 0.1, "mlp_ratio": 2, "patch": 4}),
     "vit w16 drop0.1 r2 p4"),
])
def test_arch_label(arch, label):
  assert studies.arch_label(arch) == label


def test_arch_config_applies_the_arch_recipe():
  base = memjax.TrainConfig(batch_size=32, learning_rate=0.3, epochs=9)
  recipe = {"epochs": 7, "learning_rate": 0.05, "batch_size": 16}
  vit = ("vit", "vit", {"width": 16}, recipe)
  cfg = studies._arch_config(base, vit, 4, None, 1, default_epochs=15)
  assert (cfg.model, cfg.model_kwargs, cfg.num_models, cfg.seed) == ("vit", {"width": 16}, 4, 1)
  assert (cfg.epochs, cfg.learning_rate, cfg.batch_size) == (7, 0.05, 16)  # the recipe's
  assert recipe == {"epochs": 7, "learning_rate": 0.05, "batch_size": 16}  # left alone
  # Explicit epochs win over the recipe's; eval_every is the study's.
  cfg = studies._arch_config(base, vit, 4, 3, 1, eval_every=1, default_epochs=15)
  assert (cfg.epochs, cfg.eval_every, cfg.learning_rate) == (3, 1, 0.05)
  # Without a recipe: the scale's epochs (else the base's) and the base's other fields.
  cfg = studies._arch_config(base, MLP8, 4, None, 1, default_epochs=15)
  assert (cfg.epochs, cfg.learning_rate, cfg.batch_size) == (15, 0.3, 32)
  assert studies._arch_config(base, MLP8, 4, None, 1).epochs == 9


def test_epochs_text_names_a_recipe_s_own_epochs():
  vit = ("vit", "vit", {"width": 16}, {"epochs": 20, "batch_size": 32})
  assert studies._epochs_text([MLP8, VGG, vit], 15, None) == "15 epochs (vit: 20, its recipe)"
  assert studies._epochs_text([vit, vit], 15, None) == "20 epochs"
  assert studies._epochs_text([MLP8, ("vit", "vit", {}, {"batch_size": 8})], 15, None) == (
      "15 epochs")
  assert studies._epochs_text([MLP8, vit], 15, 7) == "7 epochs"  # explicit epochs win


@pytest.mark.parametrize("scale, shape", [("default", (8, 8, 1)), ("large", (32, 32, 3))])
def test_scales_have_a_vit_family_with_its_recipe(scale, shape):
  from flax import nnx
  from memjax import models
  vits = [a for a in studies.SCALES[scale].families if a[0] == "vit"]
  assert len(vits) >= 2
  sizes = [models.count_params(nnx.state(nnx.eval_shape(
      lambda a=a: models.build("vit", shape, 10, nnx.Rngs(0), **a[2])), nnx.Param)) for a in vits]
  assert sizes == sorted(set(sizes))  # ordered by size, all different
  recipe = {k: v for k, v in memjax.config.VIT_DIGITS_RECIPE.items()
            if k not in ("model", "model_kwargs")}
  for arch in vits:
    cfg = studies._arch_config(memjax.TrainConfig(), arch, 8, None, 0, default_epochs=3)
    assert {k: getattr(cfg, k) for k in recipe if k != "epochs"} == {
        k: v for k, v in recipe.items() if k != "epochs"}


def test_usable_skips_vit_on_vectors(small_digits):
  flat = memjax.from_arrays(small_digits.x_train.reshape(300, -1), small_digits.y_train,
                            small_digits.x_test.reshape(100, -1), small_digits.y_test,
                            name="flat", standardize=False)
  vit = ("vit", "vit", {"width": 16, "depth": 1}, {"epochs": 3})
  assert studies._usable([vit, MLP8], flat) == (
      [MLP8], ["vit w16 d1 skipped: flat has vector features, not images."])
  assert studies._usable([vit, MLP8], small_digits) == ([vit, MLP8], [])
  # A recipe with a misspelt field is an error naming the close match, not a silent skip.
  typo = ("vit", "vit", {"width": 16}, {"learning_rat": 0.1})
  with pytest.raises(MemjaxError, match="did you mean 'learning_rate'"):
    studies._arch_config(memjax.TrainConfig(), typo, 8, None, 0, default_epochs=3)


def test_model_size_with_a_vit_family(small_digits, tmp_path):
  vit = ("vit", "vit", {"width": 8, "depth": 1, "heads": 2}, {"epochs": 2, "batch_size": 64})
  studies.clear_cache()
  try:
    res = studies.model_size(small_digits, scale="small", families=[MLP8, vit], models=4)
  finally:
    studies.clear_cache()
  assert res.column("model").tolist() == ["mlp[8]", "vit w8 d1 h2"]
  assert res.column("epochs").tolist() == [10, 2]  # the scale's, the vit recipe's
  assert "10 epochs (vit: 2, its recipe)" in res.description
  assert set(res.headline["families"]) == {"mlp", "vit"}
  res.save(str(tmp_path))
  assert_png(tmp_path / "plot.png")


def test_scales_are_consistent():
  assert set(studies.SCALES) == {"small", "default", "large"}
  assert tuple(studies.FUNCTIONS) == studies.STUDIES
  for sc in studies.SCALES.values():
    small, large = sc.transient_pair
    assert 0 <= small < large < len(sc.families)
    assert min(sc.models, sc.epochs, sc.epochs_models, sc.epochs_epochs) >= 1
    assert 0 <= sc.label_fraction and 0 <= sc.input_fraction
    assert sc.label_fraction + sc.input_fraction < 1


# ---- inject_artificial --------------------------------------------------------------------------
def test_inject_artificial_groups_and_changes(small_digits, digits):
  data, groups = studies.inject_artificial(small_digits, label_fraction=0.1, input_fraction=0.05,
                                           seed=3)
  assert groups.shape == (300,)
  assert np.bincount(groups, minlength=3).tolist() == [255, 30, 15]
  lab, inp, nat = (groups == studies.NOISY_LABEL, groups == studies.NOISY_INPUT,
                   groups == studies.NATURAL)
  x0, y0 = small_digits.x_train, small_digits.y_train
  # Noisy labels: every one differs from the true label; the inputs are untouched.
  assert (data.y_train[lab] != y0[lab]).all()
  np.testing.assert_array_equal(data.x_train[lab], x0[lab])
  # Noisy inputs: Gaussian noise with the per-feature mean and sd, far from every real image,
  # except on pixels that never vary (sd 0 up to float32 rounding), which stay at their mean.
  noise = data.x_train[inp].reshape(inp.sum(), -1)
  flat = x0.reshape(len(x0), -1)
  nearest = np.min(((noise[:, None] - flat[None]) ** 2).sum(-1), axis=1)
  assert (nearest > 1.0).all()
  mean, sd = flat.mean(0), flat.std(0)
  const = sd < 1e-4
  assert const.any() and not const.all()
  np.testing.assert_allclose(noise[:, const], np.broadcast_to(mean[const], noise[:, const].shape),
                             atol=1e-4)
  z = (noise[:, ~const] - mean[~const]) / sd[~const]
  assert abs(z.mean()) < 0.15 and 0.85 < z.std() < 1.15
  assert (data.y_train[inp] >= 0).all() and (data.y_train[inp] < 10).all()
  # Natural examples and the test split are unchanged.
  np.testing.assert_array_equal(data.x_train[nat], x0[nat])
  np.testing.assert_array_equal(data.y_train[nat], y0[nat])
  np.testing.assert_array_equal(data.x_test, small_digits.x_test)
  np.testing.assert_array_equal(data.y_test, small_digits.y_test)
  assert data.y_train.dtype == np.int32 and data.x_train.dtype == x0.dtype
  assert data.name == "digits300+artificial" and data.raw_train is None
  # The input dataset itself is not modified.
  np.testing.assert_array_equal(small_digits.x_train, digits.x_train[:300])


def test_inject_artificial_deterministic_per_seed(small_digits):
  a, ga = studies.inject_artificial(small_digits, 0.1, 0.1, seed=7)
  b, gb = studies.inject_artificial(small_digits, 0.1, 0.1, seed=7)
  c, gc = studies.inject_artificial(small_digits, 0.1, 0.1, seed=8)
  np.testing.assert_array_equal(ga, gb)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.y_train, b.y_train)
  assert (ga != gc).any()
  none, g0 = studies.inject_artificial(small_digits, 0.0, 0.0)
  assert (g0 == studies.NATURAL).all()
  np.testing.assert_array_equal(none.x_train, small_digits.x_train)
  np.testing.assert_array_equal(none.y_train, small_digits.y_train)


@pytest.mark.parametrize("label, inp", [(-0.1, 0.0), (1.0, 0.0), (0.0, 1.0), (0.6, 0.5)])
def test_inject_artificial_bad_fractions(small_digits, label, inp):
  with pytest.raises(MemjaxError, match=r"must lie in \[0, 1\) and their sum below 1"):
    studies.inject_artificial(small_digits, label, inp)


# ---- StudyResult --------------------------------------------------------------------------------
def read_csv(path):
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    return reader.fieldnames, list(reader)


def assert_csv_round_trips(result, path):
  header, rows = read_csv(path)
  assert header == list(result.columns)
  assert len(rows) == len(result.rows)
  for got, want in zip(rows, result.rows):
    for k in result.columns:
      v = want[k]
      if isinstance(v, (bool, np.bool_)):
        assert got[k] == str(bool(v))
      elif isinstance(v, (int, np.integer)):
        assert int(got[k]) == v
      elif isinstance(v, (float, np.floating)):
        np.testing.assert_equal(float(got[k]), float(v))  # exact repr, NaN == NaN
      elif isinstance(v, (list, tuple, dict)):
        assert json.loads(got[k]) == formatting.jsonable(v)
      else:
        assert got[k] == str(v)


def assert_png(path, min_size=(300, 200)):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_MAGIC
  with Image.open(path) as im:
    im.verify()
  with Image.open(path) as im:
    assert im.format == "PNG"
    w, h = im.size
  assert min_size[0] <= w <= 4000 and min_size[1] <= h <= 3000, im.size


def test_study_result_save_synthetic(tmp_path):
  def plot(path):
    fig, (ax,) = plotting.subplots(1)
    ax.plot([0, 1], [1, 0])
    fig.savefig(path, dpi=100)

  res = studies.StudyResult(
      name="toy", columns=("a", "b", "c", "d", "e"),
      rows=[{"a": "x", "b": np.int64(3), "c": 0.5, "d": [1, 2], "e": True},
            {"a": "y", "b": 4, "c": float("nan"), "d": {"k": np.float32(0.25)},
             "e": np.bool_(False)}],
      headline={"r": float("nan"), "n": np.int64(2), "arr": np.array([1.5, np.inf])},
      description="A toy table.", plot=plot, notes=["a caveat"])
  paths = res.save(str(tmp_path / "out"))
  assert {os.path.basename(p) for p in paths.values()} == {
      "table.csv", "table.md", "headline.json", "plot.png"}
  assert all(os.path.dirname(p) == str(tmp_path / "out") for p in paths.values())
  assert_csv_round_trips(res, paths["csv"])
  with open(paths["json"]) as f:
    assert json.load(f) == {"r": None, "n": 2, "arr": [1.5, None]}  # NaN / inf -> null
  md = open(paths["md"]).read()
  assert md.startswith("# toy\n\nA toy table.\n\n| a | b | c | d | e |\n|---|---|---|---|---|\n")
  assert "| x | 3 | 0.5 | [1, 2] | True |" in md
  assert '| y | 4 | n/a | {"k": 0.25} | False |' in md
  assert 'Headline: `{"r": null, "n": 2, "arr": [1.5, null]}`' in md and "- a caveat" in md
  assert_png(paths["png"])
  np.testing.assert_array_equal(res.column("b"), [3, 4])


def test_fmt_numbers():
  assert studies._fmt(0.000123) == "1.23e-04"
  assert studies._fmt(0.0) == "0"
  assert studies._fmt(123456.7) == "1.235e+05"
  assert studies._fmt(float("inf")) == "n/a"
  assert studies._fmt(np.int32(7)) == "7"


# ---- the five studies at scale "small" ----------------------------------------------------------
@pytest.fixture(scope="module")
def results(small_digits):
  """The five studies on 300 digits (~15 s on 2 cores; ensembles shared through the cache)."""
  studies.clear_cache()
  logs = []
  out = {
      "model_size": studies.model_size(small_digits, scale="small", log=logs.append),
      "epochs": studies.epochs(small_digits, scale="small", log=logs.append),
      # Reuses model_size's two ensembles and epochs' ensemble: nothing new is trained.
      "transient": studies.transient(small_digits, scale="small", log=logs.append),
      # A third width so that the Pearson r is defined (n = 3); mlp[8] and mlp[64] are cached.
      "gap": studies.gap(small_digits, scale="small", families=(MLP8, MLP16, MLP64),
                         log=logs.append),
      "natural_vs_artificial": studies.natural_vs_artificial(small_digits, scale="small",
                                                             log=logs.append),
  }
  out["logs"] = logs
  yield out
  studies.clear_cache()


def test_studies_share_ensembles(results):
  trained = [line for line in results["logs"] if "trained" in line]
  # model_size: mlp[8], mlp[64]; epochs: mlp[64] every epoch; gap: mlp[16]; natural_vs_artificial:
  # mlp[8], mlp[64] on the injected data. transient trains nothing of its own.
  assert len(trained) == 6, trained


def test_model_size_small(results, small_digits):
  res = results["model_size"]
  assert res.name == "model_size"
  assert res.columns == ("family", "model", "params", "models", "epochs", "train_acc",
                         "test_acc", "gap", "memorized", "memorized_se", "null_memorized",
                         "mean_score", "sd_score", "wall_s")
  assert res.column("model").tolist() == ["mlp[8]", "mlp[64]"]
  d, c = int(np.prod(small_digits.feature_shape)), small_digits.num_classes
  # One hidden layer: d*w + w weights and biases in, w*c + c out.
  assert res.column("params").tolist() == [d * w + w + w * c + c for w in (8, 64)]
  for r in res.rows:
    assert (r["family"], r["models"], r["epochs"]) == ("mlp", 8, 10)
    assert 0 <= r["test_acc"] <= 1 and 0 <= r["train_acc"] <= 1
    assert r["gap"] == pytest.approx(r["train_acc"] - r["test_acc"])
    assert isinstance(r["memorized"], int) and 0 <= r["memorized"] <= small_digits.num_train
    assert r["memorized_se"] > 0 and r["null_memorized"] >= 0
    assert -1 <= r["mean_score"] <= 1 and r["sd_score"] >= 0
  fam = res.headline["families"]["mlp"]
  assert (fam["smallest"], fam["largest"]) == ("mlp[8]", "mlp[64]")
  assert fam["memorized_by_size"] == res.column("memorized").tolist()
  change = fam["memorized_largest"] - fam["memorized_smallest"]
  noise = 2 * math.hypot(*res.column("memorized_se"))
  assert fam["direction"] == ("flat" if abs(change) <= noise
                              else "decreases" if change < 0 else "increases")
  assert "N=300" in res.description and "8 models" in res.description


def test_epochs_small(results):
  res = results["epochs"]
  assert res.columns == ("epoch", "memorized", "memorized_se", "null_memorized", "mean_score",
                         "train_acc", "test_acc", "gap", "stage")
  assert res.column("epoch").tolist() == list(range(1, 11))
  counts = res.column("memorized")
  assert all(isinstance(r["memorized"], int) and r["memorized"] >= 0 for r in res.rows)
  assert ((res.column("test_acc") >= 0) & (res.column("test_acc") <= 1)).all()
  assert ((res.column("train_acc") >= 0) & (res.column("train_acc") <= 1)).all()
  assert set(res.column("stage")) <= {"none", "rise", "fall", "plateau"}
  # The stages are detect_stages of the table's own columns.
  stages = studies.detect_stages(res.column("epoch"), counts, res.column("memorized_se"))
  assert res.column("stage").tolist() == stages["stage"]
  h = res.headline
  assert h["peak_epoch"] == int(res.column("epoch")[np.argmax(counts)])
  assert (h["peak_count"], h["final_count"]) == (counts.max(), counts[-1])
  assert (h["model"], h["models"]) == ("mlp[64]", 8)
  # Training on own subsets: the last epoch fits its training subsets well.
  assert res.rows[-1]["train_acc"] > 0.9


def test_transient_small(results, small_digits):
  res, size, ep = results["transient"], results["model_size"], results["epochs"]
  assert res.columns == ("kind", "group", "first", "second", "count", "mean_score_first",
                         "sd_score_first", "mean_score_second", "sd_score_second", "mean_cscore")
  groups = ["all", "memorized (first)", "memorized (second)", "transient"]
  assert [(r["kind"], r["group"]) for r in res.rows] == (
      [("model-wise", g) for g in groups] + [("temporal-wise", g) for g in groups])
  by = {(r["kind"], r["group"]): r for r in res.rows}
  mem_size = dict(zip(size.column("model"), size.column("memorized")))
  counts = ep.column("memorized")
  for kind, key, first, second in (
      ("model-wise", "model_wise", mem_size["mlp[8]"], mem_size["mlp[64]"]),
      ("temporal-wise", "temporal_wise", counts.max(), counts[-1])):
    # The counts agree with the studies whose ensembles transient reuses.
    assert by[kind, "all"]["count"] == small_digits.num_train
    assert by[kind, "memorized (first)"]["count"] == first == res.headline[key]["memorized_first"]
    assert by[kind, "memorized (second)"]["count"] == second
    n_tr = by[kind, "transient"]["count"]
    assert n_tr == res.headline[key]["transient"]
    assert max(0, first - second) <= n_tr <= first
    # By construction: memorized under first means score >= threshold there; transient means
    # below it under second.
    assert by[kind, "memorized (first)"]["mean_score_first"] >= studies.THRESHOLD
    assert by[kind, "memorized (second)"]["mean_score_second"] >= studies.THRESHOLD
    if n_tr:
      assert by[kind, "transient"]["mean_score_first"] >= studies.THRESHOLD
      assert by[kind, "transient"]["mean_score_second"] < studies.THRESHOLD
    for r in res.rows:
      assert 0 <= r["mean_cscore"] <= 1
  assert res.rows[0]["first"] == "mlp[8]" and res.rows[0]["second"] == "mlp[64]"
  assert res.rows[4]["second"] == "mlp[64] epoch 10"


def test_gap_small(results):
  res, size = results["gap"], results["model_size"]
  assert res.columns == ("family", "model", "params", "train_acc", "test_acc", "gap",
                         "memorized", "memorized_se", "mean_score")
  assert res.column("model").tolist() == ["mlp[8]", "mlp[16]", "mlp[64]"]
  assert (np.diff(res.column("params")) > 0).all()
  # The shared ensembles give model_size's numbers exactly.
  for r in (res.rows[0], res.rows[2]):
    ref = next(s for s in size.rows if s["model"] == r["model"])
    assert all(r[k] == ref[k] for k in res.columns)
  overall = res.headline["pearson_gap_vs_memorized"]
  assert overall["n"] == 3 == res.headline["points"]
  assert overall["r"] == pytest.approx(np.corrcoef(res.column("gap"),
                                                   res.column("memorized"))[0, 1])
  assert res.headline["per_family"]["mlp"] == pytest.approx(overall, nan_ok=True)
  assert res.headline["pearson_gap_vs_mean_score"]["r"] == pytest.approx(
      np.corrcoef(res.column("gap"), res.column("mean_score"))[0, 1])


def test_natural_vs_artificial_small(results):
  res = results["natural_vs_artificial"]
  assert res.columns == ("model", "params", "epoch", "test_acc", "natural_mean", "natural_frac",
                         "noisy_label_mean", "noisy_label_frac", "noisy_input_mean",
                         "noisy_input_frac")
  assert len(res.rows) == 2 * 10
  assert res.column("model").tolist() == ["mlp[8]"] * 10 + ["mlp[64]"] * 10
  assert res.column("epoch").tolist() == list(range(1, 11)) * 2
  for r in res.rows:
    assert 0 <= r["test_acc"] <= 1
    for g in studies.GROUP_NAMES:
      assert 0 <= r[f"{g}_frac"] <= 1 and -1 <= r[f"{g}_mean"] <= 1
  h = res.headline
  assert h["counts"] == {"natural": 240, "noisy_label": 30, "noisy_input": 30}
  large = [r for r in res.rows if r["model"] == "mlp[64]"]
  for g in studies.GROUP_NAMES:
    assert h["by_epoch_largest"][g] == [r[f"{g}_mean"] for r in large]
    last = h["by_size_last_epoch"][g]
    assert h["size_trend"][g] == pytest.approx(last["mlp[64]"] - last["mlp[8]"])
  # A wrong label can only be predicted by a model that trained on it, so IN models beat OUT
  # models there far more than on natural points; noise inputs likewise.
  final = large[-1]
  assert final["noisy_label_mean"] > final["natural_mean"] + 0.2
  assert final["noisy_input_mean"] > final["natural_mean"] + 0.2
  assert final["noisy_label_frac"] > final["natural_frac"]


@pytest.mark.parametrize("name", studies.STUDIES)
def test_study_save_writes_files(results, name, tmp_path):
  res = results[name]
  paths = res.save(str(tmp_path / name))
  assert sorted(os.listdir(tmp_path / name)) == ["headline.json", "plot.png", "table.csv",
                                                 "table.md"]
  assert_csv_round_trips(res, paths["csv"])
  with open(paths["json"]) as f:
    assert json.load(f) == json.loads(json.dumps(formatting.jsonable(res.headline)))
  md = open(paths["md"]).read()
  assert md.startswith(f"# {name}\n") and md.count("\n|") == len(res.rows) + 2
  assert_png(paths["png"])


def test_run_study_uses_cache_and_saves(results, small_digits, tmp_path):
  res = studies.run_study("model_size", small_digits, scale="small", out=str(tmp_path))
  assert res.rows == results["model_size"].rows  # the cached ensembles, even their wall_s
  assert sorted(os.listdir(tmp_path)) == ["headline.json", "plot.png", "table.csv", "table.md"]


def test_run_study_unknown_name(small_digits):
  with pytest.raises(MemjaxError, match="Unknown study 'nope'; choose one of model_size, epochs, "
                     "transient, gap, natural_vs_artificial"):
    studies.run_study("nope", small_digits)


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", studies.STUDIES)
def test_unknown_scale(small_digits, name):
  with pytest.raises(MemjaxError, match="Unknown scale 'huge'; choose one of small, default, "
                     "large"):
    studies.run_study(name, small_digits, scale="huge")


@pytest.mark.parametrize("name", studies.STUDIES)
@pytest.mark.parametrize("field, value", [("models", 0), ("models", -2), ("models", 2.5),
                                          ("epochs", 0)])
def test_non_positive_models_or_epochs(small_digits, name, field, value):
  with pytest.raises(MemjaxError, match=rf"{field}={value!r}; use a positive integer"):
    studies.run_study(name, small_digits, scale="small", **{field: value})


def test_no_usable_architecture(small_digits):
  flat = memjax.from_arrays(small_digits.x_train.reshape(300, -1), small_digits.y_train,
                            small_digits.x_test.reshape(100, -1), small_digits.y_test,
                            name="flat", standardize=False)
  assert not flat.is_image
  with pytest.raises(MemjaxError, match="No architecture left to train on flat: vgg w4 d1 "
                     "skipped: flat has vector features"):
    studies.model_size(flat, scale="small", families=[VGG])
  with pytest.raises(MemjaxError, match="No architecture left to train on flat"):
    studies.natural_vs_artificial(flat, scale="small", archs=[VGG])


def test_natural_vs_artificial_bad_fraction(small_digits):
  with pytest.raises(MemjaxError, match="label_fraction=0.7, input_fraction=0.5"):
    studies.natural_vs_artificial(small_digits, scale="small", label_fraction=0.7,
                                  input_fraction=0.5)


# ---- command line -------------------------------------------------------------------------------
@pytest.fixture
def digits_npz(small_digits, tmp_path):
  path = tmp_path / "d300.npz"
  np.savez(path, x_train=small_digits.x_train, y_train=small_digits.y_train,
           x_test=small_digits.x_test, y_test=small_digits.y_test)
  return path


def test_cli_study(digits_npz, tmp_path, capsys):
  out = tmp_path / "out"
  rc = cli.main(["study", "epochs", "--scale", "small", "--data", f"npz:{digits_npz}", "--out",
                 str(out), "--models", "4", "--epochs", "3"])
  assert rc == 0
  assert sorted(os.listdir(out)) == ["headline.json", "plot.png", "runs", "table.csv",
                                     "table.md"]
  header, rows = read_csv(out / "table.csv")
  assert header[:2] == ["epoch", "memorized"] and [r["epoch"] for r in rows] == ["1", "2", "3"]
  with open(out / "headline.json") as f:
    headline = json.load(f)
  assert headline["models"] == 4 and headline["model"] == "mlp[64]"
  assert_png(out / "plot.png")
  printed = capsys.readouterr().out
  assert "memjax study epochs (small) on d300" in printed and "# epochs" in printed
  assert f"wrote {out}/table.csv" in printed
  # The ensemble is a saved memjax run (keep ratio from the flag) ...
  (run_name,) = os.listdir(out / "runs")
  saved = memjax.Run.load(str(out / "runs" / run_name))
  assert saved.config.num_models == 4 and saved.config.keep_ratio == 0.5
  # ... which the same command with the same --out reuses instead of retraining.
  studies.clear_cache()
  assert cli.main(["study", "epochs", "--scale", "small", "--data", f"npz:{digits_npz}",
                   "--out", str(out), "--models", "4", "--epochs", "3"]) == 0
  assert os.listdir(out / "runs") == [run_name]
  assert read_csv(out / "table.csv") == (header, rows)
  # Another keep ratio is another ensemble.
  studies.clear_cache()
  assert cli.main(["study", "epochs", "--scale", "small", "--data", f"npz:{digits_npz}",
                   "--out", str(out), "--models", "4", "--epochs", "3",
                   "--keep-ratio", "0.7"]) == 0
  assert len(os.listdir(out / "runs")) == 2


def test_cli_study_errors(digits_npz, tmp_path, capsys):
  data = f"npz:{digits_npz}"
  assert cli.main(["study", "gap", "--scale", "small", "--data", data, "--out",
                   str(tmp_path / "a"), "--models", "0"]) == 2
  assert "memjax: error: models=0; use a positive integer." in capsys.readouterr().err
  assert cli.main(["study", "gap", "--data", data, "--preset", "nope",
                   "--out", str(tmp_path / "b")]) == 2
  assert "Unknown preset 'nope'" in capsys.readouterr().err
  with pytest.raises(SystemExit):  # argparse: not one of the choices
    cli.main(["study", "nope"])
  assert "invalid choice: 'nope'" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_run_cache_tells_unsaved_objects_apart(small_digits):
  """Two losses without an import path are both '<unsaved <lambda>>' in run.json; the study
  cache must not hand the run of one to the other."""
  studies.clear_cache()
  base = memjax.TrainConfig(model="logreg", num_models=2, epochs=1, batch_size=64)
  zero = base.replace(loss=lambda logits, labels: 0.0 * logits.sum(-1))
  other = base.replace(loss=lambda logits, labels: 0.0 * logits.sum(-1))
  run_a, _ = studies._train(small_digits, zero, progress=False, log=None)
  run_b, _ = studies._train(small_digits, other, progress=False, log=None)
  run_c, _ = studies._train(small_digits, zero, progress=False, log=None)
  assert run_a is not run_b and run_a is run_c
  studies.clear_cache()
