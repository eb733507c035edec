"""The notebooks run top to bottom, at their tiny size, and show what they promise.

Each notebook is executed with nbclient in a fresh Jupyter kernel, as a reader would run it, with
``MEMJAX_NOTEBOOK_SIZE=tiny`` (seconds on a CPU) and its run directories under a temporary folder.
Needs ``nbclient`` and ``ipykernel`` (the ``notebooks`` extra); skipped without them.
"""

import base64
import io
import os
import time

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install nbclient ipykernel (notebook tests)")
nbclient = pytest.importorskip("nbclient", reason="pip install nbclient ipykernel (notebook tests)")
pytest.importorskip("ipykernel", reason="pip install nbclient ipykernel (notebook tests)")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
BUDGET_S = 120  # each notebook takes well under a minute at tiny size on 2 CPU cores


def _execute(name, tmp_path, monkeypatch):
  """Runs notebooks/NAME at tiny size; returns the executed notebook and its wall time."""
  monkeypatch.setenv("MEMJAX_NOTEBOOK_SIZE", "tiny")
  monkeypatch.setenv("MEMJAX_NOTEBOOK_OUT", str(tmp_path))
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax-cache"))
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  client = nbclient.NotebookClient(nb, timeout=BUDGET_S, kernel_name="python3",
                                   resources={"metadata": {"path": NOTEBOOKS}})
  start = time.perf_counter()
  client.execute()  # raises CellExecutionError, with the traceback, when a cell fails
  return nb, time.perf_counter() - start


def _outputs(nb):
  """(text of all stream/text outputs, [decoded PNG bytes], [markdown outputs])."""
  text, pngs, markdown = [], [], []
  for cell in nb.cells:
    for out in cell.get("outputs", []):
      assert out.output_type != "error", f"{out.ename}: {out.evalue}"
      if out.output_type == "stream":
        text.append(out.text)
      data = out.get("data", {})
      if "image/png" in data:
        pngs.append(base64.b64decode(data["image/png"]))
      if "text/markdown" in data:
        markdown.append(data["text/markdown"])
      if "text/plain" in data:
        text.append(data["text/plain"])
  return "\n".join(text), pngs, markdown


def _check_pngs(pngs, minimum):
  from PIL import Image
  assert len(pngs) >= minimum, f"{len(pngs)} inline images, expected >= {minimum}"
  for png in pngs:
    image = Image.open(io.BytesIO(png))
    assert image.width > 300 and image.height > 200 and len(png) > 10_000


@pytest.mark.slow
def test_quickstart(tmp_path, monkeypatch):
  nb, seconds = _execute("quickstart.ipynb", tmp_path, monkeypatch)
  text, pngs, markdown = _outputs(nb)
  assert "SIZE=tiny" in text and "device(s)" in text and "backend:" in text
  assert "16 models" in text and "sharded over" in text
  assert any("| index | label | memorization |" in m for m in markdown)
  assert any("lira_online" in m for m in markdown)  # the attack table
  assert "model DropoutMLP" in text and "counterfactual memorization of the margin" in text
  _check_pngs(pngs, 3)  # most memorized images, histogram, ROC
  (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("quickstart-tiny")]
  for name in ("scores.csv", "run.json", "report.html", "attacks.json", "roc.png"):
    assert (run_dir / name).exists(), name
  assert seconds < BUDGET_S


@pytest.mark.slow
def test_reproduce_back_to_fundamentals(tmp_path, monkeypatch):
  nb, seconds = _execute("reproduce_back_to_fundamentals.ipynb", tmp_path, monkeypatch)
  text, pngs, markdown = _outputs(nb)
  assert "SIZE=tiny" in text and "digits300: 300 training / 100 test" in text
  # 6 ensembles (3 sizes, the per-epoch one, 2 with artificial points) serve the 5 studies: the
  # transient and gap studies reuse the others' through memjax.studies' cache.
  assert "6 ensembles trained for 5 studies" in text
  _check_pngs(pngs, 5)  # model size, epochs, transient, train-test gap, natural vs artificial
  tables = "\n".join(markdown)
  for study, columns in (
      ("model_size", "| family | model | params | models | epochs | train_acc | test_acc | gap |"),
      ("epochs", "| epoch | memorized | memorized_se | null_memorized | mean_score |"),
      ("transient", "| kind | group | first | second | count | mean_score_first |"),
      ("gap", "| family | model | params | train_acc | test_acc | gap | memorized |"),
      ("natural_vs_artificial", "| natural_mean | natural_frac | noisy_label_mean |")):
    assert f"# {study}\n" in tables, study
    assert columns in tables, columns
  for row in ("| mlp | mlp[8] |", "| mlp | mlp[512] |", "| model-wise | transient |",
              "| temporal-wise | transient |", "Headline: `"):
    assert row in tables, row
  claims = "| claim | paper | this run (tiny, cpu) | agrees |"
  assert claims in tables
  for claim in ("natural memorization vs model size (mlp)", "natural memorization over training",
                "transient points' mean score, model-wise", "memorized count vs train-test gap",
                "artificial memorization vs model size"):
    assert claim in tables, claim
  (study_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("back-to-fundamentals-tiny-")]
  for study in ("model_size", "epochs", "transient", "gap", "natural_vs_artificial"):
    for name in ("table.csv", "table.md", "headline.json", "plot.png"):
      assert (study_dir / study / name).stat().st_size > 0, f"{study}/{name}"
    assert (study_dir / study / "table.md").read_text().startswith(f"# {study}\n")
  assert claims in (study_dir / "claims.md").read_text()
  assert seconds < BUDGET_S
