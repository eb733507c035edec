"""The proxy comparison table of benchmarks/proxies_vs_memorization.py (imported by path)."""

import re

import numpy as np
import pytest

from memjax.errors import MemjaxError


@pytest.mark.slow
def test_compare_proxies_table(small_digits, proxies_benchmark):
  table = proxies_benchmark.compare_proxies(small_digits, models=8, proxy_models=2,
                                            model="logreg", epochs=3, batch_size=32, num_vectors=2)
  assert [r["proxy"] for r in table.rows][-1].startswith("memorization, other half")
  assert len(table.rows) == 13
  for r in table.rows:
    assert set(r) == set(proxies_benchmark.COLUMNS) and r["sign"] in (1, -1)
    assert r["wall_s"] >= 0 and np.isfinite(r["cost_ratio"])
    assert np.isnan(r["spearman"]) or -1 <= r["spearman"] <= 1
  assert table.info["full_estimator_s"] > 0 and table.memorization.shape == (300,)
  md = table.markdown()
  assert md.count("\n") == len(table.rows) + 1 and "Spearman" in md
  # Every row has the header's 7 cells: the pipes in "||grad_w l||" are escaped.
  cells = [len(re.split(r"(?<!\\)\|", line)) - 2 for line in md.splitlines()]
  assert cells == [7] * len(cells) and "\\|\\|grad_w l\\|\\|" in md
  with pytest.raises(MemjaxError, match="even"):
    proxies_benchmark.compare_proxies(small_digits, models=4, proxy_models=3, model="logreg",
                                      epochs=1)
