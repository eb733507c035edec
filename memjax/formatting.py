"""Plain-text output shared by memjax's modules: JSON-ready values and markdown tables.

* :func:`jsonable` turns results holding numpy scalars and arrays into plain Python values for
  ``json.dump``; NaN and inf become ``null`` or stay numbers, as each file's format says:

  ==================  ===========================================  ====================
  file                call                                         NaN / inf written as
  ==================  ===========================================  ====================
  ``headline.json``   ``jsonable(obj)``                            null / null
  ``attacks.json``    ``jsonable(obj, inf_as_null=False)``         null / Infinity
  ``run.json``        ``json.dump(obj, f, default=json_default)``  NaN / Infinity
  ==================  ===========================================  ====================

* :func:`markdown_table` writes a GitHub-flavoured markdown table (the report, the attack table,
  the studies' ``table.md`` and the proxy comparison).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def jsonable(obj, *, nan_as_null: bool = True, inf_as_null: bool = True):
  """``obj`` with numpy values made plain Python, ready for ``json.dump``.

  Dicts (keys made ``str``), lists and tuples (made lists) and arrays (made lists) are
  converted recursively; numpy bools become ``bool``, numpy integers ``int``, floats ``float``.
  Anything else (str, int, None, ...) is returned as it is.

  Args:
    obj: the value.
    nan_as_null: NaN becomes None (JSON ``null``); else it stays a float (``NaN``).
    inf_as_null: +-inf becomes None; else it stays a float (``Infinity``).

  >>> jsonable({"a": np.array([1.5, np.nan, np.inf]), 2: (np.int64(3), np.bool_(True))})
  {'a': [1.5, None, None], '2': [3, True]}
  >>> jsonable([np.float32(np.inf), float("nan")], inf_as_null=False)
  [inf, None]
  """
  kw = {"nan_as_null": nan_as_null, "inf_as_null": inf_as_null}
  if isinstance(obj, dict):
    return {str(k): jsonable(v, **kw) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v, **kw) for v in obj]
  if isinstance(obj, np.ndarray):
    return jsonable(obj.tolist(), **kw)
  if isinstance(obj, (bool, np.bool_)):
    return bool(obj)
  if isinstance(obj, np.integer):
    return int(obj)
  if isinstance(obj, (float, np.floating)):
    x = float(obj)
    if (nan_as_null and math.isnan(x)) or (inf_as_null and math.isinf(x)):
      return None
    return x
  return obj


def json_default(obj):
  """For ``json.dump(obj, f, default=json_default)``: numpy values as plain Python.

  Numpy integers, floats and bools become ``int``, ``float``, ``bool``; arrays become lists.
  NaN and inf stay numbers (written ``NaN`` and ``Infinity``, as ``json`` writes Python floats).
  Any other type raises TypeError, as ``default`` must.

  >>> import json
  >>> json.dumps({"n": np.int64(3), "x": np.array([0.5, np.nan])}, default=json_default)
  '{"n": 3, "x": [0.5, NaN]}'
  """
  if isinstance(obj, (np.integer, np.floating, np.bool_, np.ndarray)):
    return jsonable(obj, nan_as_null=False, inf_as_null=False)
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def markdown_cell(value: Any, digits: int = 4) -> str:
  """One table cell: floats with ``digits`` decimals (NaN as n/a), anything else ``str``; a
  ``|`` is escaped as ``\\|`` so that it does not split the row."""
  if isinstance(value, (float, np.floating)):
    text = "n/a" if math.isnan(value) else f"{float(value):.{digits}f}"
  else:
    text = str(value)
  return text.replace("|", "\\|")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
  """A GitHub-flavoured markdown table (cells by :func:`markdown_cell`), without a final newline.

  Args:
    header: the column names.
    rows: one sequence of cells per row (pre-formatted strings or values).
    digits: decimals of float cells.

  >>> print(markdown_table(["model", "acc"], [["mlp", 0.91234]], digits=2))
  | model | acc |
  |---|---|
  | mlp | 0.91 |
  >>> print(markdown_table(["proxy"], [["||grad||"]]))
  | proxy |
  |---|
  | \\|\\|grad\\|\\| |
  """
  line = lambda cells: "| " + " | ".join(markdown_cell(c, digits) for c in cells) + " |"
  return "\n".join([line(str(h) for h in header), "|" + "---|" * len(header)]
                   + [line(r) for r in rows])
