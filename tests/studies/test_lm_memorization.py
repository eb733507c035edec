"""The language models' study: counterfactual memorization, exposure, extraction, LiRA."""

import importlib
import math

import numpy as np
import pytest

from memjax import studies
from memjax.errors import MemjaxError

# (memjax.studies.lm_memorization is the study's function; this is its module.)
lm_study = importlib.import_module("memjax.studies.lm_memorization")


@pytest.mark.slow
def test_exposure_and_extraction_grow_with_repetitions(small_studies):
  result = small_studies["lm_memorization"]
  head = result.headline
  assert head["exposure_method"] == "exact" and head["repeats"] == [1, 4, 16]
  assert head["exposure_grows_with_repeats"]
  exposure_in = [head["exposure_in"][r] for r in (1, 4, 16)]
  assert exposure_in[2] > exposure_in[0] + 2
  assert all(head["exposure_out"][r] < head["exposure_in"][r] for r in (1, 4, 16))
  assert head["extraction_in"][16] > 0 and all(head["extraction_out"][r] == 0
                                               for r in (1, 4, 16))
  assert max(exposure_in) <= head["max_exact_exposure"] + 1e-9


@pytest.mark.slow
def test_rows_sizes_epochs_and_the_attack(small_studies):
  result = small_studies["lm_memorization"]
  # Two sizes x two evaluations (every 3 of 6 epochs); the attack on the main size's last.
  assert [(r["model"], r["epoch"]) for r in result.rows] == [
      ("gpt w16 d1 h2", 3), ("gpt w16 d1 h2", 6), ("gpt w32 d1 h2", 3), ("gpt w32 d1 h2", 6)]
  attacked = [r for r in result.rows if not math.isnan(r["attack_auc"])]
  assert len(attacked) == 1 and attacked[0]["model"] == result.headline["model"]
  assert 0.5 < attacked[0]["attack_auc"] <= 1
  assert result.rows[1]["params"] < result.rows[3]["params"]
  # the corpus' sentences, not the canaries: 120 scores and per-sequence AUCs
  assert result.arrays["memorization"].shape == result.arrays["auc"].shape == (120,)
  top = result.headline["most_memorized"]
  assert len(top) == lm_study.TOP and all("the" in t["text"] or "at" in t["text"] for t in top)
  assert top[0]["memorization"] == pytest.approx(np.nanmax(result.arrays["memorization"]))


def test_refuses_image_data(small_digits):
  with pytest.raises(MemjaxError, match="lm_memorization needs a text dataset"):
    studies.lm_memorization(small_digits, scale="small")


def test_registered_with_its_default_data():
  entry = studies.study("lm_memorization")
  assert entry.default_data == "pydoc" and entry.task == "language_model"
  assert all(s.default_data == "digits" for n, s in studies.REGISTRY.items()
             if n != "lm_memorization")


def test_subset_keeps_the_test_split():
  from conftest import cat_sentences
  data = cat_sentences()
  part = lm_study.subset(data, 50)
  assert part.num_train == 50 and part.num_test == data.num_test and part.spec is None
  assert lm_study.subset(data, None) is data and lm_study.subset(data, 500) is data
