"""`memjax study`: saved outputs, reused ensembles, errors before any training, --replot."""

import json
import os
import sys

import numpy as np
import pytest

import memjax
from memjax import cli, studies
from study_checks import assert_png, read_csv


@pytest.fixture
def digits_npz(small_digits, tmp_path):
  path = tmp_path / "d300.npz"
  np.savez(path, x_train=small_digits.x_train, y_train=small_digits.y_train,
           x_test=small_digits.x_test, y_test=small_digits.y_test)
  return path


@pytest.mark.slow
def test_cli_study(digits_npz, tmp_path, capsys):
  out = tmp_path / "out"
  rc = cli.main(["study", "epochs", "--scale", "small", "--data", f"npz:{digits_npz}", "--out",
                 str(out), "--models", "4", "--epochs", "3"])
  assert rc == 0
  assert sorted(os.listdir(out)) == ["headline.json", "plot.png", "runs", "study.json",
                                     "table.csv", "table.md"]
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
  assert saved.config.num_models == 4 and saved.config.keep_ratio == 0.7  # the paper's
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
                   "--keep-ratio", "0.5"]) == 0
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


@pytest.mark.slow
def test_cli_study_all_checks_the_claims_and_replots(digits_npz, tmp_path, capsys, monkeypatch):
  # Fewer settings of the survey's studies (one per claim) keep this test at a minute.
  # (memjax.studies.NAME is the study's function; its module is in sys.modules.)
  mitigation = sys.modules["memjax.studies.mitigation"]
  privacy = sys.modules["memjax.studies.privacy"]
  monkeypatch.setattr(mitigation, "MITIGATIONS", tuple(
      m for m in mitigation.MITIGATIONS
      if m.label in ("flip+translate 1px", "weight decay 5e-3", "stop at 50%")))
  monkeypatch.setattr(privacy, "EPSILONS", (float("inf"), 2.0))
  out = tmp_path / "all"
  args = ["--scale", "small", "--data", f"npz:{digits_npz}", "--models", "4", "--epochs", "2"]
  assert cli.main(["study", "all", "--out", str(out), *args]) == 0
  # 'all' runs the studies of the data's task: every study but lm_memorization on images.
  image_studies = [n for n, s in studies.REGISTRY.items() if s.task == "classification"]
  assert image_studies == [n for n in studies.STUDIES if n != "lm_memorization"]
  assert sorted(os.listdir(out)) == sorted([*image_studies, "claims.md", "runs"])
  # model_size: 2 ensembles, epochs: 1, natural_vs_artificial: 2, cscore: 1, mitigation: 3 (the
  # baseline and 2 settings; early stopping reads the baseline), onion: 4 (2 fractions x 2
  # removals; its first is model_size's mlp[64]), noisy_labels: 3, privacy: 2 (epsilon inf and 2
  # on the data with canaries); transient and gap reuse them.
  runs = 6 + 3 + 4 + 3 + 2
  assert len(os.listdir(out / "runs")) == runs
  claims = open(out / "claims.md").read()
  assert claims.startswith("# The seed papers' claims, checked (small, d300)\n\n"
                           "| claim | paper | this run (small, d300, keep ratio 0.7) | agrees |\n")
  # The header and 7 claims of the paper (one model_size family), 4 of the survey, 2 of DP.
  assert claims.count("\n| ") == 1 + 7 + 4 + 2
  assert "claims.md" in capsys.readouterr().out
  # --replot redraws every plot from the saved tables, without training.
  for name in image_studies:
    os.remove(out / name / "plot.png")
  studies.clear_cache()
  assert cli.main(["study", "all", "--replot", str(out)]) == 0
  for name in image_studies:
    assert_png(out / name / "plot.png")
  assert len(studies.SHARED) == 0 and len(os.listdir(out / "runs")) == runs
  assert cli.main(["study", "gap", "--replot", str(out / "gap")]) == 0
  # The wrong study, or a directory without a study, is an error saying what to do.
  assert cli.main(["study", "epochs", "--replot", str(out / "gap")]) == 2
  assert ("holds the study 'gap', not 'epochs'; run `memjax study gap --replot"
          in capsys.readouterr().err)
  assert cli.main(["study", "all", "--replot", str(tmp_path)]) == 2
  assert "holds no saved study" in capsys.readouterr().err
