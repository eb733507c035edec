"""StudyResult: the saved files, their round trip, the registry and the shared ensembles."""

import json
import os

import numpy as np
import pytest

from memjax import formatting, plotting, studies
from memjax.studies import result
from memjax.errors import MemjaxError
from study_checks import assert_csv_round_trips, assert_png


def test_study_result_save_synthetic(tmp_path, monkeypatch):
  def plot(result, path):
    fig, (ax,) = plotting.subplots(1)
    ax.plot(result.column("b"), [1, 0])
    fig.savefig(path, dpi=100)

  # A study of one's own: a module's function, run and plot, and its registry entry.
  monkeypatch.setitem(studies.REGISTRY, "toy", studies.Study("toy", "a toy", None, None, plot))
  res = studies.StudyResult(
      name="toy", columns=("a", "b", "c", "d", "e"),
      rows=[{"a": "x", "b": np.int64(3), "c": 0.5, "d": [1, 2], "e": True},
            {"a": "y", "b": 4, "c": float("nan"), "d": {"k": np.float32(0.25)},
             "e": np.bool_(False)}],
      headline={"r": float("nan"), "n": np.int64(2), "arr": np.array([1.5, np.inf])},
      description="A toy table.", notes=["a caveat"], context={"data": "toys"},
      arrays={"scores": np.array([0.5, np.nan])})
  paths = res.save(str(tmp_path / "out"))
  assert {os.path.basename(p) for p in paths.values()} == {
      "table.csv", "table.md", "headline.json", "plot.png", "study.json", "arrays.npz"}
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
  # Loaded back: the same table (types too), headline (NaN as null), context and arrays.
  loaded = studies.StudyResult.load(str(tmp_path / "out"))
  assert (loaded.name, loaded.columns, loaded.description, loaded.notes, loaded.context) == (
      "toy", res.columns, "A toy table.", ["a caveat"], {"data": "toys"})
  assert_same_rows(loaded.rows, res.rows)
  assert loaded.headline == {"r": None, "n": 2, "arr": [1.5, None]}
  np.testing.assert_array_equal(loaded.arrays["scores"], [0.5, np.nan])
  os.remove(paths["png"])
  assert studies.replot(str(tmp_path / "out")) == paths["png"]
  assert_png(paths["png"])


def assert_same_rows(got, want):
  """Rows equal value for value and type for type: numpy scalars as Python's (NaN equal to
  NaN), lists and dicts as JSON gives them back."""
  assert len(got) == len(want)
  for g, w in zip(got, want):
    assert list(g) == list(w)
    for k, v in w.items():
      if isinstance(v, (bool, np.bool_)):
        expected = bool(v)
      elif isinstance(v, (int, np.integer)):
        expected = int(v)
      elif isinstance(v, (float, np.floating)):
        expected = float(v)
      elif isinstance(v, (list, tuple, dict)):
        expected = json.loads(json.dumps(formatting.jsonable(v)))
      else:
        expected = v
      np.testing.assert_equal(g[k], expected)
      assert type(g[k]) is type(expected), (k, g[k], v)


def test_load_tells_what_is_missing(tmp_path):
  with pytest.raises(MemjaxError, match="has no study.json: it is not a study's output directory"):
    studies.StudyResult.load(str(tmp_path))


def test_unknown_study_has_no_plot(tmp_path):
  res = studies.StudyResult(name="nope", columns=("a",), rows=[{"a": 1}], headline={},
                            description="")
  with pytest.raises(MemjaxError, match="Unknown study 'nope'; choose one of model_size"):
    res.save(str(tmp_path))
  assert os.path.exists(tmp_path / "table.csv")  # the table is written before the plot


def test_fmt_numbers():
  assert result._fmt(0.000123) == "1.23e-04"
  assert result._fmt(0.0) == "0"
  assert result._fmt(123456.7) == "1.235e+05"
  assert result._fmt(float("inf")) == "inf" and result._fmt(-np.inf) == "-inf"
  assert result._fmt(float("nan")) == "n/a"
  assert result._fmt(np.int32(7)) == "7"


def test_run_study_unknown_name(small_digits):
  with pytest.raises(MemjaxError, match="Unknown study 'nope'; choose one of model_size, epochs, "
                     "transient, gap, natural_vs_artificial"):
    studies.run_study("nope", small_digits)


@pytest.mark.slow
def test_studies_share_ensembles(small_studies):
  trained = [line for line in small_studies["logs"] if "trained" in line]
  # model_size: mlp[8], mlp[64]; epochs: mlp[64] every epoch; gap: mlp[16]; natural_vs_artificial:
  # mlp[8], mlp[64] on the injected data; cscore: mlp[64] on 9 ratios; mitigation: its
  # baseline (every epoch) and 2 settings; onion: 2 retrained (its first is model_size's
  # mlp[64]); noisy_labels: 2 rates; privacy: 2 levels on the data with canaries. transient
  # trains nothing of its own.
  assert len(trained) == 7 + 3 + 2 + 2 + 2, trained


@pytest.mark.slow
@pytest.mark.parametrize("name", studies.STUDIES)
def test_study_save_writes_files(small_studies, name, tmp_path):
  res = small_studies[name]
  paths = res.save(str(tmp_path / name))
  saved = ["headline.json", "plot.png", "study.json", "table.csv", "table.md"]
  assert sorted(os.listdir(tmp_path / name)) == sorted(
      saved + (["arrays.npz"] if name in ("transient", "cscore", "onion", "lm_memorization")
               else []))
  assert_csv_round_trips(res, paths["csv"])
  with open(paths["json"]) as f:
    assert json.load(f) == json.loads(json.dumps(formatting.jsonable(res.headline)))
  md = open(paths["md"]).read()
  assert md.startswith(f"# {name}\n") and md.count("\n|") == len(res.rows) + 2
  assert_png(paths["png"])
  # What was saved is enough to redraw the plot without training: the same table and headline.
  loaded = studies.StudyResult.load(str(tmp_path / name))
  assert_same_rows(loaded.rows, res.rows)
  assert loaded.headline == json.loads(json.dumps(formatting.jsonable(res.headline)))
  assert loaded.context == res.context and loaded.arrays.keys() == res.arrays.keys()
  before = open(paths["png"], "rb").read()
  studies.replot(str(tmp_path / name))
  assert open(paths["png"], "rb").read() == before  # the same figure, pixel for pixel


@pytest.mark.slow
def test_run_study_uses_cache_and_saves(small_studies, small_digits, tmp_path):
  res = studies.run_study("model_size", small_digits, scale="small", out=str(tmp_path),
                          cache=small_studies["settings"].cache)
  assert res.rows == small_studies["model_size"].rows  # the cached ensembles, even their wall_s
  assert sorted(os.listdir(tmp_path)) == ["headline.json", "plot.png", "study.json", "table.csv",
                                          "table.md"]
