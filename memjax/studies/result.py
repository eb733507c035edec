"""A study's result: its table, headline figure and plot, saved to and loaded from a directory.

:meth:`StudyResult.save` writes

==================  ===========================================================================
``table.csv``       the table, one row per architecture / epoch / group
``table.md``        the table in markdown, with its description, headline and notes
``headline.json``   the headline figure (what the paper's claim is checked against)
``plot.png``        the figure, drawn by the study's ``plot`` function from the above
``study.json``      what the plot and :meth:`StudyResult.load` need besides the table
``arrays.npz``      per-example arrays a plot draws (only studies that have them)
==================  ===========================================================================

and :meth:`StudyResult.load` reads them back, so a plot can be redrawn without training
(``memjax study NAME --replot DIR``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from typing import Any, Callable

import numpy as np

from memjax import formatting
from memjax.errors import MemjaxError

FILES = {"csv": "table.csv", "md": "table.md", "json": "headline.json", "png": "plot.png",
         "study": "study.json", "arrays": "arrays.npz"}


@dataclasses.dataclass(frozen=True)
class Study:
  """A registered study (see ``memjax.studies.REGISTRY``).

  Attributes:
    name: the study's name (``memjax study NAME``).
    question: what it asks, with the paper section.
    function: ``function(data, **options_and_settings) -> StudyResult``, the public Python entry
      (``memjax.studies.NAME``).
    run: ``run(settings, **options) -> StudyResult``, the same from a
      :class:`~memjax.studies.StudySettings`.
    plot: ``plot(result, path)`` draws the result's figure into a PNG file.
    default_data: the dataset it runs on when none is given (``memjax study NAME``).
    task: the data it needs: "classification" (images or vectors) or "language_model" (text);
      ``memjax study all`` runs the studies of the data's task.
  """

  name: str
  question: str
  function: Callable[..., StudyResult]
  run: Callable[..., StudyResult]
  plot: Callable[[StudyResult, str], None]
  default_data: str = "digits"
  task: str = "classification"


@dataclasses.dataclass
class StudyResult:
  """A study's table, headline figure and what its plot needs.

  Attributes:
    name: the study (a key of ``memjax.studies.REGISTRY``, whose ``plot`` draws it).
    columns: the table's columns, in order.
    rows: one dict per row.
    headline: the headline figure (JSON-serialisable).
    description: what the table shows (the first lines of ``table.md``).
    notes: caveats worth reading with the numbers.
    context: what the plot needs besides the table and headline (e.g. the dataset's name);
      JSON-serialisable.
    arrays: per-example arrays the plot draws (e.g. score histograms), saved in ``arrays.npz``.
  """

  name: str
  columns: tuple[str, ...]
  rows: list[dict]
  headline: dict
  description: str
  notes: list[str] = dataclasses.field(default_factory=list)
  context: dict = dataclasses.field(default_factory=dict)
  arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  def column(self, name: str) -> np.ndarray:
    """One column of the table as an array."""
    return np.asarray([r[name] for r in self.rows])

  def csv(self) -> str:
    """The table as CSV (lists and dicts as JSON, floats at full precision)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(self.columns), lineterminator="\n")
    writer.writeheader()
    for r in self.rows:
      writer.writerow({k: _plain(r[k]) for k in self.columns})
    return buf.getvalue()

  def markdown(self) -> str:
    """The table in markdown, after its name and description, with the headline and notes."""
    lines = [f"# {self.name}", "", self.description, "",
             formatting.markdown_table(self.columns,
                                       [[_fmt(r[k]) for k in self.columns] for r in self.rows]),
             "", "Headline: `" + json.dumps(formatting.jsonable(self.headline)) + "`"]
    if self.notes:
      lines += [""] + [f"- {n}" for n in self.notes]
    return "\n".join(lines) + "\n"

  def plot(self, path: str) -> None:
    """Draws the study's figure into the PNG file ``path`` (the registered study's plot)."""
    from memjax.studies import study
    study(self.name).plot(self, path)

  def save(self, out: str) -> dict[str, str]:
    """Writes the files of :data:`FILES` into ``out`` (arrays.npz only when there are arrays);
    returns their paths by key."""
    os.makedirs(out, exist_ok=True)
    paths = {k: os.path.join(out, f) for k, f in FILES.items()
             if k != "arrays" or self.arrays}
    with open(paths["csv"], "w") as f:
      f.write(self.csv())
    with open(paths["md"], "w") as f:
      f.write(self.markdown())
    with open(paths["json"], "w") as f:
      json.dump(formatting.jsonable(self.headline), f, indent=1)
    with open(paths["study"], "w") as f:
      json.dump(formatting.jsonable({"name": self.name, "description": self.description,
                                     "notes": self.notes, "context": self.context}), f, indent=1)
    if self.arrays:
      np.savez(paths["arrays"], **self.arrays)
    self.plot(paths["png"])
    return paths

  @classmethod
  def load(cls, directory: str) -> StudyResult:
    """The result saved in ``directory`` by :meth:`save` (NaN in the headline reads as None).

    Raises:
      MemjaxError: the directory has no ``study.json`` (not a study, or one saved by a memjax
        older than the format).
    """
    path = os.path.join(directory, FILES["study"])
    if not os.path.exists(path):
      raise MemjaxError(
          f"{directory} has no {FILES['study']}: it is not a study's output directory, or the "
          "study was saved by an older memjax. Run the study again with --out on that "
          "directory: its saved ensembles (in runs/) are reused, nothing is retrained.")
    with open(path) as f:
      meta = json.load(f)
    with open(os.path.join(directory, FILES["csv"]), newline="") as f:
      reader = csv.DictReader(f)
      rows = [{k: _parse(v) for k, v in row.items()} for row in reader]
      columns = tuple(reader.fieldnames or ())
    with open(os.path.join(directory, FILES["json"])) as f:
      headline = json.load(f)
    arrays = {}
    if os.path.exists(os.path.join(directory, FILES["arrays"])):
      with np.load(os.path.join(directory, FILES["arrays"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return cls(name=meta["name"], columns=columns, rows=rows, headline=headline,
               description=meta["description"], notes=meta["notes"],
               context=meta["context"], arrays=arrays)


def _plain(v):
  """A table cell as the CSV writer should see it."""
  if isinstance(v, (np.integer,)):
    return int(v)
  if isinstance(v, (np.floating, float)):
    return float(v)
  if isinstance(v, (list, tuple, dict)):
    return json.dumps(formatting.jsonable(v))
  return v


def _parse(text: str) -> Any:
  """A CSV cell back as the value :func:`_plain` wrote: bool, int, float, JSON list or dict,
  else the string."""
  if text in ("True", "False"):
    return text == "True"
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  if text[:1] in ("[", "{"):
    try:
      return json.loads(text)
    except json.JSONDecodeError:
      pass
  return text


def _fmt(v) -> str:
  """A table cell for markdown: 4 significant digits, n/a for NaN, inf / -inf."""
  if isinstance(v, (bool, np.bool_)):
    return str(bool(v))
  if isinstance(v, (int, np.integer)):
    return str(int(v))
  if isinstance(v, (float, np.floating)):
    v = float(v)
    if math.isnan(v):
      return "n/a"
    if math.isinf(v):
      return "inf" if v > 0 else "-inf"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
  if isinstance(v, (list, tuple, dict)):
    return json.dumps(formatting.jsonable(v))
  return str(v)
