"""Matplotlib figures on the Agg canvas: the one place memjax makes a figure.

Every plot of the report, the studies and the attacks starts here. A figure is a
``matplotlib.figure.Figure`` with its own ``FigureCanvasAgg``: pyplot is never imported, so no
global backend is chosen or changed and nothing is drawn on screen; the caller saves it
(``fig.savefig(path, dpi=...)``) or takes its PNG bytes (:func:`figure_png`).

>>> fig, (ax,) = subplots(1)
>>> _ = ax.plot([0, 1], [1, 0])
>>> figure_png(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io

DPI = 110  # the resolution of the report's and the studies' figures
# Colour and marker of each model family, in every panel of every plot (other families: the next
# default colours, circles).
FAMILY_STYLES = {"mlp": ("C0", "o"), "vgg": ("C1", "s"), "resnet": ("C2", "^"), "vit": ("C3", "D")}


def figure(width: float, height: float, *, layout: str | None = None):
  """An empty Figure of ``width`` x ``height`` inches with an Agg canvas (no pyplot).

  Args:
    width, height: size in inches.
    layout: matplotlib's layout engine, e.g. ``"constrained"``; None for none (the default).
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  fig = Figure(figsize=(width, height), layout=layout)
  FigureCanvasAgg(fig)
  return fig


def subplots(ncols: int = 1, width: float = 5.0, height: float = 3.8):
  """(Figure, [ncols] Axes): one row of ``ncols`` axes, each ``width`` inches wide, constrained
  layout (the studies' plots)."""
  fig = figure(width * ncols, height, layout="constrained")
  return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def family_style(family: str, index: int = 0) -> tuple[str, str]:
  """(colour, marker) of a model family: its entry in :data:`FAMILY_STYLES`, else the
  ``index``-th colour after those, with circles. Pass the family's position among the plotted
  families as ``index`` so that two unknown families differ.

  >>> family_style("vgg"), family_style("mine", 1)
  (('C1', 's'), ('C5', 'o'))
  """
  if family in FAMILY_STYLES:
    return FAMILY_STYLES[family]
  return f"C{(index + len(FAMILY_STYLES)) % 10}", "o"


def roc_figure(curves, lowest_fpr: float, title: str):
  """Log-log ROC curves with the chance diagonal: the attacks' and the report's ROC figure.

  Args:
    curves: (label, fpr [K], tpr [K]) per curve; points where either rate is 0 are dropped (a
      log axis cannot show them).
    lowest_fpr: the left and bottom end of both axes (1 / the number of non-members: no attack
      can resolve a lower rate).
    title: the axes' title.

  Returns:
    A 5.5 x 5 inch Figure.
  """
  fig = figure(5.5, 5.0)
  ax = fig.add_subplot()
  for label, fpr, tpr in curves:
    ok = (fpr > 0) & (tpr > 0)
    ax.loglog(fpr[ok], tpr[ok], lw=1.3, label=label)
  ax.plot([lowest_fpr, 1], [lowest_fpr, 1], "k--", lw=0.8, label="chance")
  ax.set_xlim(lowest_fpr, 1)
  ax.set_ylim(lowest_fpr, 1)
  ax.set_xlabel("false positive rate")
  ax.set_ylabel("true positive rate")
  ax.set_title(title)
  ax.legend(loc="lower right", fontsize=7)
  ax.grid(True, alpha=0.3)
  fig.tight_layout()
  return fig


def save(fig, path: str, dpi: int = DPI) -> None:
  """Writes a Figure to ``path`` (PNG unless the suffix says otherwise) at ``dpi``."""
  fig.savefig(path, dpi=dpi)


def figure_png(fig, dpi: int = DPI) -> bytes:
  """The PNG bytes of a matplotlib Figure."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=dpi)
  return buf.getvalue()
