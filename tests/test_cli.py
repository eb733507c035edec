import csv
import subprocess
import sys

import pytest

from memjax import cli


@pytest.mark.slow
def test_run_writes_scores_and_summary(tmp_path, capsys):
  out = tmp_path / "run"
  code = cli.main(["run", "--models", "4", "--epochs", "2", "--model", "logreg",
                   "--out", str(out), "--no-progress"])
  assert code == 0
  printed = capsys.readouterr().out
  assert "train accuracy" in printed and "most memorized" in printed
  with open(out / "scores.csv") as f:
    rows = list(csv.reader(f))
  header = rows[0]
  assert header[:7] == ["index", "label", "memorization", "memorization_se", "memorization_lo",
                        "memorization_hi", "n_in"] and "n_out" in header
  assert "cscore" not in header and "out_accuracy_lo" in header  # one subset ratio: no C-score
  assert len(rows) == 1 + 1437
  # Every run ends in a report to look at (tests/test_report.py checks what it shows).
  assert f"wrote {out / 'report.html'}" in printed
  assert (out / "report.html").stat().st_size > 50_000
  assert cli.main(["scores", str(out)]) == 0
  # Running again into the same directory is refused, not overwritten.
  assert cli.main(["run", "--models", "2", "--epochs", "1", "--out", str(out),
                   "--no-progress"]) == 2
  assert "already exists" in capsys.readouterr().err


def test_bad_input_gives_a_message_not_a_traceback(tmp_path, capsys):
  assert cli.main(["run", "--data", str(tmp_path / "missing.npz"), "--out",
                   str(tmp_path / "r"), "--no-progress"]) == 2
  err = capsys.readouterr().err
  assert "does not exist" in err and "Traceback" not in err
  assert cli.main(["run", "--keep-ratio", "1.5", "--models", "2", "--epochs", "1",
                   "--out", str(tmp_path / "r2"), "--no-progress"]) == 2
  assert "outside (0, 1)" in capsys.readouterr().err
  # Resuming a directory that is not a run names the problem (not the data it cannot find).
  assert cli.main(["run", "--resume", str(tmp_path / "nowhere"), "--no-progress"]) == 2
  assert "is not a directory. Pass the run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_entry_point():
  result = subprocess.run([sys.executable, "-m", "memjax", "--help"], capture_output=True,
                          text=True, check=True)
  assert "run" in result.stdout and "scores" in result.stdout


@pytest.mark.slow
def test_attack_writes_metrics_plot_and_columns(tmp_path, capsys):
  out = tmp_path / "run"
  assert cli.main(["run", "--models", "8", "--epochs", "3", "--model", "logreg", "--out",
                   str(out), "--no-progress", "--attack"]) == 0
  printed = capsys.readouterr().out
  assert "lira_online" in printed and "AUC" in printed
  import json
  metrics = json.loads((out / "attacks.json").read_text())
  assert "lira_online" in str(metrics)
  assert (out / "roc.png").stat().st_size > 10_000
  header = (out / "scores.csv").read_text().splitlines()[0].split(",")
  assert "memorization" in header and "mia_auc_lira_online" in header
  assert cli.main(["attack", str(tmp_path / "missing")]) == 2


def test_canary_flags(tmp_path, capsys):
  args = cli.build_parser().parse_args(["run", "--canaries", "20", "--canary-kind", "noise"])
  assert args.canaries == 20 and args.canary_kind == "noise" and args.canary_seed == 0
  with pytest.raises(SystemExit):
    cli.build_parser().parse_args(["run", "--canary-kind", "typo"])
  assert cli.main(["run", "--canaries", "0", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
  assert "integer >= 1" in capsys.readouterr().err
  run_dir = tmp_path / "old"
  run_dir.mkdir()
  (run_dir / "run.json").write_text('{"config": {}, "data": {}, "design": {}}')
  assert cli.main(["run", "--resume", str(run_dir), "--canaries", "5"]) == 2
  assert "keeps the canaries recorded" in capsys.readouterr().err


@pytest.mark.slow
def test_run_with_canaries_then_attack(tmp_path, capsys):
  import json
  out = tmp_path / "run"
  assert cli.main(["run", "--canaries", "10", "--canary-kind", "noise", "--models", "4",
                   "--epochs", "1", "--model", "logreg", "--out", str(out), "--no-progress",
                   "--attack", "--no-report"]) == 0
  printed = capsys.readouterr().out
  assert "canaries: 10 noise (seed 0, training indices 1437..1446)" in printed
  assert "privacy audit: 10 noise canaries" in printed
  assert json.loads((out / "run.json").read_text())["data"]["canaries"]["count"] == 10
  audit = json.loads((out / "attacks.json").read_text())["privacy_audit"]
  assert audit["attacks"]["lira_online"]["num_eval_in"] == 10 and audit["theoretical"] is None
  assert len((out / "scores.csv").read_text().splitlines()) == 1 + 1447
  assert cli.main(["scores", str(out)]) == 0  # Run.load re-creates the canaries


def test_dp_sgd_flags():
  args = cli.build_parser().parse_args(["run", "--dp-noise-multiplier", "1.5", "--dp-clip-norm",
                                        "0.5", "--dp-delta", "1e-6", "--sampling", "poisson"])
  assert (args.dp_noise_multiplier, args.dp_clip_norm, args.dp_delta, args.sampling) == \
      (1.5, 0.5, 1e-6, "poisson")
  assert cli.build_parser().parse_args(["run", "--dp-target-epsilon", "4"]).dp_target_epsilon \
      == 4.0
  with pytest.raises(SystemExit):
    cli.build_parser().parse_args(["run", "--sampling", "random"])
