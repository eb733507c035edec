"""studies.settings: what every study takes, checked before anything trains."""

import pytest

import memjax
from memjax import studies
from memjax.errors import MemjaxError
from memjax.studies import scales

MLP8 = scales.mlp(8)
VGG = ("vgg", "vgg", {"width": 4, "depth": 1})


def test_usable_skips_vit_on_vectors(small_digits):
  flat = memjax.from_arrays(small_digits.x_train.reshape(300, -1), small_digits.y_train,
                            small_digits.x_test.reshape(100, -1), small_digits.y_test,
                            name="flat", standardize=False)
  vit = ("vit", "vit", {"width": 16, "depth": 1}, {"epochs": 3})
  assert studies.StudySettings(flat).usable([vit, MLP8], "families") == (
      [MLP8], ["vit w16 d1 skipped: flat has vector features, not images."])
  assert studies.StudySettings(small_digits).usable([vit, MLP8], "families") == (
      [vit, MLP8], [])
  # A recipe with a misspelt field is an error naming the close match, not a silent skip.
  typo = ("vit", "vit", {"width": 16}, {"learning_rat": 0.1})
  with pytest.raises(MemjaxError, match="did you mean 'learning_rate'"):
    scales.arch_config(memjax.TrainConfig(), typo, 8, None, 0, default_epochs=3)


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


def test_settings_from_keywords_name_a_misspelt_one(small_digits):
  settings = studies.StudySettings.of(small_digits, scale="small", models=4, seed=3)
  assert (settings.data, settings.scale, settings.models, settings.seed) == (
      small_digits, "small", 4, 3)
  assert settings.scale_spec is studies.SCALES["small"]
  assert settings.runs is studies.SHARED and settings.dataset() is small_digits
  assert settings.base_config().batch_size == 32  # the small scale's override
  cache = studies.RunCache()
  assert settings.replace(cache=cache).runs is cache
  with pytest.raises(MemjaxError, match="Unknown study setting 'model' \\(did you mean "
                     "'models'\\?\\); the settings are scale, models"):
    studies.StudySettings.of(small_digits, model=4)
  # The public functions take the same keywords.
  with pytest.raises(MemjaxError, match="Unknown study setting 'treshold'"):
    studies.epochs(small_digits, treshold=0.3)


def test_keep_ratio_is_the_paper_s_unless_told(small_digits):
  settings = studies.StudySettings(small_digits, scale="small")
  assert settings.base_config().keep_ratio == studies.PAPER_KEEP_RATIO == 0.7
  assert settings.ratio_text() == "keep ratio 0.7"
  config = memjax.TrainConfig(keep_ratio=0.5)
  assert settings.replace(config=config, keep_ratio=None).base_config().keep_ratio == 0.5
  several = memjax.TrainConfig(keep_ratios=(0.25, 0.5))
  assert settings.replace(config=several).ratio_text() == "keep ratios 0.25, 0.5"
  with pytest.raises(MemjaxError, match="keep_ratio=1.5; a subset ratio lies in \\(0, 1\\)"):
    studies.StudySettings(small_digits, keep_ratio=1.5)
