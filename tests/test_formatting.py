"""The shared output helpers: each file format pinned, and every former copy using them."""

import json

import numpy as np
import pytest

from memjax import attacks, formatting, plotting, report, studies

NAN, INF = float("nan"), float("inf")


# ---- JSON ---------------------------------------------------------------------------------------
def test_jsonable_converts_numpy_recursively():
  obj = {"a": np.array([[1, 2]], np.int32), 3: (np.float32(0.5), np.bool_(False), None, "s"),
         "n": np.int64(7), "f": 1.25, "b": True}
  assert formatting.jsonable(obj) == {"a": [[1, 2]], "3": [0.5, False, None, "s"], "n": 7,
                                      "f": 1.25, "b": True}
  got = formatting.jsonable({"x": np.int64(1)})["x"]
  assert type(got) is int
  assert type(formatting.jsonable(np.bool_(True))) is bool


def test_headline_json_format(tmp_path):
  # headline.json: NaN and +-inf are null, numpy values plain, keys strings, indent 1.
  res = studies.StudyResult(
      name="toy", columns=("a",), rows=[{"a": 1}], description="d",
      headline={"r": NAN, "n": np.int64(2), "arr": np.array([1.5, INF, -INF]),
                "ok": np.bool_(True), 3: (np.float32(0.25), None)})
  res.plot = lambda path: open(path, "wb").close()
  paths = res.save(str(tmp_path))
  assert open(paths["json"]).read() == (
      '{\n "r": null,\n "n": 2,\n "arr": [\n  1.5,\n  null,\n  null\n ],\n "ok": true,\n'
      ' "3": [\n  0.25,\n  null\n ]\n}')
  assert res.markdown().endswith(
      'Headline: `{"r": null, "n": 2, "arr": [1.5, null, null], "ok": true, '
      '"3": [0.25, null]}`\n')


def fake_attack_results():
  def result(name, auc, tprs):
    return attacks.AttackResult(
        name=name, auc=auc, balanced_accuracy=0.6, tpr_at_fpr=tprs,
        fpr=np.array([0.0, 0.5, 1.0]), tpr=np.array([0.0, 0.75, 1.0]), num_members=10,
        num_nonmembers=9, per_target={"auc": np.array([0.6, NAN])},
        per_example_auc=np.array([0.5, NAN]), seconds=1.5)
  return attacks.AttackResults(
      attacks={"lira_online": result("lira_online", 0.71, {0.01: 0.1, 0.001: NAN}),
               "l|oss": result("l|oss", 0.55, {0.01: 0.02, 0.001: 0.001})},
      targets=np.array([0, 1]), num_models=8, num_examples=2, num_population=None,
      fprs=(0.01, 0.001), timings={"lira": 1.0, "metrics": INF})


def test_attacks_json_format(tmp_path):
  # attacks.json: NaN is null but inf stays a number (Infinity), indent 1.
  res = fake_attack_results()
  text = res.to_json(str(tmp_path / "attacks.json"), per_example=True)
  assert open(tmp_path / "attacks.json").read() == text
  per = {"auc": 0.55, "balanced_accuracy": 0.6, "tpr_at_fpr": {"0.01": 0.02, "0.001": 0.001},
         "num_members": 10, "num_nonmembers": 9, "seconds": 1.5,
         "roc": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.75, 1.0]},
         "per_target": {"auc": [0.6, None]}, "per_example_auc": [0.5, None]}
  expected = {"format": "memjax.attack_results/1", "num_models": 8, "num_examples": 2,
              "num_population": None, "targets": [0, 1], "fprs": [0.01, 0.001],
              "timings": {"lira": 1.0, "metrics": INF},
              "attacks": {"lira_online": {**per, "auc": 0.71,
                                          "tpr_at_fpr": {"0.01": 0.1, "0.001": None}},
                          "l|oss": per}}
  assert text == json.dumps(expected, indent=1)
  assert '\n  "metrics": Infinity\n' in text and '"0.001": null' in text


def test_run_json_format_through_json_default():
  # run.json: json.dump(..., default=json_default): numpy values plain, NaN and inf kept.
  obj = {"a": np.float32(NAN), "b": np.int64(3), "c": np.array([1.0, NAN, INF]), "d": INF,
         "e": np.float64(NAN), "f": [np.float16(1.5)], "g": np.bool_(True),
         "h": np.array([[1, 2]], np.int32)}
  text = json.dumps(obj, indent=1, default=formatting.json_default)
  assert text == (
      '{\n "a": NaN,\n "b": 3,\n "c": [\n  1.0,\n  NaN,\n  Infinity\n ],\n "d": Infinity,\n'
      ' "e": NaN,\n "f": [\n  1.5\n ],\n "g": true,\n "h": [\n  [\n   1,\n   2\n  ]\n ]\n}')
  with pytest.raises(TypeError, match="not JSON serialisable: complex"):
    json.dumps({"z": 1j}, default=formatting.json_default)
  with pytest.raises(TypeError, match="not JSON serialisable: object"):
    json.dumps({"o": object()}, default=formatting.json_default)


# ---- markdown -----------------------------------------------------------------------------------
def test_markdown_table_cells():
  md = formatting.markdown_table(["model", "a|b"], [["mlp", 0.91234], ["||grad||", NAN],
                                                    [np.int64(3), np.float32(0.5)]], digits=2)
  assert md == ("| model | a\\|b |\n|---|---|\n| mlp | 0.91 |\n| \\|\\|grad\\|\\| | n/a |\n"
                "| 3 | 0.50 |")
  assert report.markdown_table is formatting.markdown_table  # the report's public name
  assert formatting.markdown_table(["x"], []) == "| x |\n|---|"


def test_attack_table_markdown():
  assert fake_attack_results().table(markdown=True) == (
      "| attack | AUC | bal. acc. | TPR@1% FPR | TPR@0.1% FPR | per-target AUC |\n"
      "|---|---|---|---|---|---|\n"
      "| lira_online | 0.7100 | 0.6000 | 10.00% | n/a | 0.6000 ± 0.0000 |\n"
      "| l\\|oss | 0.5500 | 0.6000 | 2.00% | 0.10% | 0.6000 ± 0.0000 |")


def test_study_markdown():
  res = studies.StudyResult(
      name="toy", columns=("a", "b", "c", "d"), description="A toy table.", headline={},
      rows=[{"a": "x", "b": np.int64(3), "c": 0.5, "d": [1, 2]},
            {"a": "y|z", "b": True, "c": NAN, "d": {"k": np.float32(0.25)}}],
      notes=["a caveat"])
  assert res.markdown() == (
      "# toy\n\nA toy table.\n\n| a | b | c | d |\n|---|---|---|---|\n| x | 3 | 0.5 | [1, 2] |\n"
      '| y\\|z | True | n/a | {"k": 0.25} |\n\nHeadline: `{}`\n\n- a caveat\n')


def test_proxy_comparison_markdown(proxies_benchmark):
  rows = [{"proxy": "forgetting events", "source": "ensemble IN (8)", "models": 8, "sign": 1,
           "spearman": 0.41234, "ci_low": 0.1, "ci_high": 0.6, "wall_s": 0.0,
           "cost_ratio": 0.0},
          {"proxy": "CSG, ||grad_w l||", "source": "2 models, full data", "models": 2,
           "sign": -1, "spearman": NAN, "ci_low": NAN, "ci_high": NAN, "wall_s": 3.25,
           "cost_ratio": 0.5}]
  md = proxies_benchmark.ProxyComparison(rows=rows, memorization=np.zeros(2), proxies={},
                                         info={}).markdown()
  assert md == (
      "| proxy | source | models | sign | Spearman rho [95% CI] | wall s | cost vs estimator |\n"
      "|---|---|---|---|---|---|---|\n"
      "| forgetting events | ensemble IN (8) | 8 | + | +0.412 [+0.10, +0.60] | "
      "0 (reuses the ensemble) | 0 |\n"
      "| CSG, \\|\\|grad_w l\\|\\| | 2 models, full data | 2 | - | n/a | 3.2 | 0.50x |")


# ---- figures ------------------------------------------------------------------------------------
def test_figures_have_an_agg_canvas():
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  fig = plotting.figure(2, 1.5)
  assert isinstance(fig.canvas, FigureCanvasAgg) and tuple(fig.get_size_inches()) == (2, 1.5)
  fig, axes = plotting.subplots(3, width=2, height=1)
  assert len(axes) == 3 and tuple(fig.get_size_inches()) == (6, 1)
  assert fig.get_layout_engine() is not None  # constrained, as the studies' plots were
  assert report.figure_png is plotting.figure_png
  assert plotting.figure_png(fig, dpi=50)[:8] == b"\x89PNG\r\n\x1a\n"
