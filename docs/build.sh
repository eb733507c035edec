#!/usr/bin/env bash
# Builds the HTML API reference of memjax from its docstrings with pdoc, into site/ (gitignored).
#
#   docs/build.sh            # -> site/index.html; open it in a browser
#   PYTHON=python3 docs/build.sh
#
# Every public module of the memjax package is documented (Google-style docstrings). The build
# fails when pdoc or a memjax module warns while it renders (a broken docstring, an unresolvable
# annotation, a deprecated call at import) or when a public module has no docstring. Needs
# `pip install pdoc` (the `docs` extra).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
OUT="${1:-site}"
"$PYTHON" - "$OUT" <<'EOF'
import os
import pkgutil
import shutil
import sys
import warnings
from pathlib import Path

try:
  import pdoc
  import pdoc.extract
  import pdoc.render
except ImportError:
  sys.exit("docs/build.sh: pdoc is not installed; run `pip install pdoc` (or the docs extra).")

import memjax

out = Path(sys.argv[1])
package_dir = os.path.dirname(memjax.__file__)
# The package, plus every public submodule (pdoc alone follows only those named in __all__).
walked = pdoc.extract.walk_specs(["memjax"])
modules = walked + sorted(f"memjax.{m.name}" for m in pkgutil.iter_modules(memjax.__path__)
                          if not m.name.startswith("_") and f"memjax.{m.name}" not in walked)
pdoc.render.configure(docformat="google", show_source=True, search=True,
                      footer_text=f"memjax {memjax.__version__}")
if out.exists():
  shutil.rmtree(out)
with warnings.catch_warnings(record=True) as caught:
  warnings.simplefilter("always")
  pdoc.pdoc(*(["memjax"] + modules[len(walked):]), output_directory=out)


def ours(w):
  """A warning from pdoc itself or raised in memjax's own code (not a third-party import)."""
  return "pdoc" in os.path.normpath(w.filename).split(os.sep) or \
      os.path.abspath(w.filename).startswith(package_dir + os.sep)


problems = [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
            for w in caught if ours(w)]
problems += [f"{name}: the module has no docstring" for name in modules
             if not (sys.modules[name].__doc__ or "").strip()]
missing = [name for name in modules if not (out / (name.replace(".", "/") + ".html")).exists()]
problems += [f"{name}: no page was written" for name in missing]
if problems:
  print("docs/build.sh: the API reference has problems:", *problems, sep="\n  ", file=sys.stderr)
  sys.exit(1)
print(f"docs/build.sh: wrote {out}/index.html ({len(modules)} modules: {', '.join(modules)})")
EOF
