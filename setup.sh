#!/usr/bin/env bash
# Creates .venv and installs memjax with its test dependencies from this repository's own files.
# Prefers Python 3.12 (newest jax/flax) where pyenv has it, falls back to python3 (>= 3.11).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[2-9]' | sort -V -r); do
      cand="$(pyenv root)/versions/$v/bin/python3"
      if [ -x "$cand" ]; then PYTHON="$cand"; break; fi
    done
  fi
fi
echo "setup.sh: using $($PYTHON --version 2>&1) at $PYTHON"
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# Reference LiRA implementation, compared against in tests/test_attacks.py (numpy/scipy only).
.venv/bin/python -m pip install -q --no-deps --ignore-requires-python tensorflow-empirical-privacy==0.1.0
echo "setup.sh: done. Try: .venv/bin/memjax run"
