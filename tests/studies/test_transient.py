"""The transient study at scale "small": its counts agree with the ensembles it reuses."""

import pytest

from memjax import studies


@pytest.mark.slow
def test_transient_small(small_studies, small_digits):
  res, size, ep = small_studies["transient"], small_studies["model_size"], small_studies["epochs"]
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
