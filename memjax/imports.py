"""Import paths for user code: ``"package.module:Name"`` <-> the object it names.

memjax stores every user-supplied part of the training algorithm (a model class, an optimizer
factory, a loss, a measure) in ``run.json`` as an import path, so that ``memjax run --resume``,
``memjax report`` and :meth:`memjax.Run.load` find it again in a new process.

>>> import_object("optax:adam").__name__
'adam'
>>> from memjax.models import MLP
>>> import_path(MLP)
'memjax.models:MLP'
>>> import_path(lambda x: x) is None  # lambdas, closures and instances have none
True
"""

from __future__ import annotations

import importlib
from typing import Any

from memjax.errors import MemjaxError

UNSAVED_PREFIX = "<unsaved "  # how run.json records an object that has no import path


def is_import_path(spec: Any) -> bool:
  """True for strings of the form ``"package.module:Name"`` (``Name`` may be dotted)."""
  return isinstance(spec, str) and ":" in spec and not spec.startswith(UNSAVED_PREFIX)


def import_object(path: str, what: str = "object") -> Any:
  """The object named by ``"package.module:Name"`` (``Name`` may be ``Outer.Inner``).

  Raises:
    MemjaxError: naming the module or attribute that could not be found and how to fix it.
  """
  module_name, _, attribute = path.partition(":")
  if not module_name or not attribute:
    raise MemjaxError(f"{what} {path!r} is not an import path; write 'package.module:Name'.")
  try:
    obj = importlib.import_module(module_name)
  except ImportError as e:
    raise MemjaxError(f"Cannot import module {module_name!r} for the {what} ({path!r}: {e}). "
                      "Install the package, or run from the directory that holds it (or add "
                      "that directory to PYTHONPATH).") from e
  for part in attribute.split("."):
    if not hasattr(obj, part):
      raise MemjaxError(f"Module {module_name!r} has no attribute {attribute!r} (the {what}, "
                        f"{path!r}). Check the spelling after the colon.")
    obj = getattr(obj, part)
  return obj


def import_path(obj: Any) -> str | None:
  """``"module:qualname"`` when importing that gives back ``obj`` itself, else None.

  Module-level functions and classes have one; lambdas, closures, local classes and instances
  (an ``optax.GradientTransformation``) do not.
  """
  module = getattr(obj, "__module__", None)
  qualname = getattr(obj, "__qualname__", None)
  if not module or not qualname or "<" in qualname or module == "__main__":
    return None
  path = f"{module}:{qualname}"
  try:
    return path if import_object(path) is obj else None
  except MemjaxError:
    return None


def describe(obj: Any) -> str:
  """How ``run.json`` stores ``obj``: itself for a string, its import path when it has one, and
  ``"<unsaved REPR>"`` otherwise (such a run can be read, but resuming it needs the object)."""
  if isinstance(obj, str):
    return obj
  return import_path(obj) or f"{UNSAVED_PREFIX}{_short_repr(obj)}>"


def require_saved(spec: Any, what: str, keyword: str) -> None:
  """Raises a clear error when a stored spec is an unsaved object that must be passed again."""
  if isinstance(spec, str) and spec.startswith(UNSAVED_PREFIX):
    raise MemjaxError(
        f"The run was trained with a {what} given as a Python object without an import path "
        f"({spec}); run.json cannot name it. Pass the same object again "
        f"(memjax.train(..., resume=True, {keyword}=...)), or define it at module level in an "
        "importable file so that memjax can store 'package.module:Name'.")


def resolve(spec: Any, what: str, builtins: dict[str, Any], *, keyword: str,
            expected: str) -> Any:
  """The object ``spec`` stands for: a built-in by name, an object by import path, or ``spec``
  itself; it must be callable.

  Args:
    spec: a key of ``builtins``, an import path ``"package.module:Name"``, or an object.
    what: how messages name it ("model", "measure 'margin'", ...).
    builtins: name -> object.
    keyword: the ``memjax.train`` keyword that passes such an object (for messages).
    expected: what a callable of this kind is, e.g. "a flax NNX Module class or factory".
  """
  if isinstance(spec, str):
    require_saved(spec, what, keyword)
    if spec in builtins:
      return builtins[spec]
    if not is_import_path(spec):
      raise MemjaxError(f"Unknown {what} {spec!r}; choose one of {', '.join(builtins)}, or give "
                        f"{expected} as an import path 'package.module:Name'.")
    spec = import_object(spec, what)
  if not callable(spec):
    raise MemjaxError(f"The {what} must be a built-in name, an import path, or {expected}; got "
                      f"{type(spec).__name__}.")
  return spec


def _short_repr(obj: Any) -> str:
  text = getattr(obj, "__qualname__", None) or type(obj).__name__
  return text if len(text) <= 60 else text[:57] + "..."
