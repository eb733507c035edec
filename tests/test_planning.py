"""planning: the predicted interval width, the models it takes, and the plan from a pilot."""

import types

import numpy as np
import pytest

import memjax
from memjax import cli, estimators, planning
from memjax.errors import MemjaxError


def test_half_width_shrinks_like_one_over_sqrt_models():
  widths = [planning.interval_half_width(m, 0.5) for m in (64, 256, 1024)]
  assert widths[0] > widths[1] > widths[2]
  assert widths[0] / widths[2] == pytest.approx(4, rel=0.15)  # 16x the models, 1/4 the width


@pytest.mark.parametrize("p_out, target, ratio", [(0.5, 0.1, 0.5), (0.0, 0.08, 0.5),
                                                   (0.3, 0.12, 0.7), (0.75, 0.1, 0.5)])
def test_models_needed_is_the_smallest_that_reaches_the_target(p_out, target, ratio):
  m = planning.models_needed(target, p_out, keep_ratio=ratio)
  width = lambda k: planning.interval_half_width(k, p_out, keep_ratio=ratio)
  assert width(m) <= target < width(m - 1)
  # A plain scan from below finds no smaller size (up to rounding wiggles around m).
  first = next(k for k in range(4, m + 1) if width(k) <= target)
  assert first >= m - max(4, m // 20)


def test_plan_recovers_the_pilot_s_accuracies_and_its_interval_width():
  # A pilot where every example sits at the threshold: p_out 0.6, p_in 0.85, 128 models.
  rng = np.random.default_rng(0)
  keep = memjax.design.balanced(128, 400, 0.5, seed=0)
  correct = rng.random(keep.shape) < np.where(keep, 0.85, 0.6)
  pilot = types.SimpleNamespace(correct=correct, keep=keep)
  plan = planning.plan(pilot, half_width=0.05)
  assert plan.pilot_models == 128 and plan.keep_ratio == pytest.approx(0.5)
  assert plan.p_out == pytest.approx(0.6, abs=0.03)
  assert plan.examples > 200  # most lie within 0.1 of the threshold
  assert plan.predicted_pilot_half_width == pytest.approx(plan.pilot_half_width, abs=0.01)
  assert plan.models == planning.models_needed(0.05, plan.p_out, keep_ratio=plan.keep_ratio)
  low, high = estimators.memorization_ci(correct, keep)
  assert plan.pilot_half_width == pytest.approx(
      np.median(((high - low) / 2)[np.abs(estimators.memorization(correct, keep) - 0.25)
                                   <= planning.NEAR]))
  text = plan.text("runs/pilot")
  assert f"{plan.models} models give a half-width of 0.05" in text
  assert f"memjax run --resume runs/pilot --models {plan.models}" in text


def test_bad_requests_get_clear_errors():
  with pytest.raises(MemjaxError, match="half_width=0; a half-width"):
    planning.models_needed(0, 0.5)
  with pytest.raises(MemjaxError, match="p_out=0.9"):
    planning.models_needed(0.1, 0.9)
  keep = np.eye(4, 6, dtype=bool)
  pilot = types.SimpleNamespace(correct=np.ones((4, 6), bool), keep=keep)  # all scores 0
  with pytest.raises(MemjaxError, match="No example of the pilot lies within 0.1"):
    planning.plan(pilot)


@pytest.mark.slow
def test_cli_plan(tmp_path, capsys):
  directory = str(tmp_path / "pilot")
  memjax.train("digits", model="mlp", models=16, epochs=3, directory=directory, progress=False)
  assert cli.main(["plan", directory, "--half-width", "0.1"]) == 0
  out = capsys.readouterr().out
  assert out.startswith("pilot: 16 models, keep ratio 0.50;")
  assert f"memjax run --resume {directory} --models" in out
