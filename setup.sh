#!/usr/bin/env bash
# Creates .venv and installs memjax with its test dependencies from this repository's own files.
# Prefers Python 3.12 (newest jax/flax) where pyenv has it, falls back to python3 (>= 3.11).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if command -v pyenv >/dev/null 2>&1; then
    # 3.12 first (the version memjax is measured on), then newer ones.
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | sort -V -r) \
             $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9]' | sort -V); do
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
# Headless Chromium renders the HTML report in tests/test_report.py (skipped without it).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "setup.sh: could not install chromium; the browser test will skip"
fi
echo "setup.sh: done. Try: .venv/bin/memjax run"
