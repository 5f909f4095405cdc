#!/usr/bin/env bash
# Installs Arize Phoenix (PyPI `arize-phoenix`) into a virtual environment unless it is
# already there, and prints the path of its `phoenix` binary (the only thing on stdout).
#   CRUX_PHOENIX_VENV  where the venv lives (default: ~/.cache/crux/phoenix-venv)
# Usage in CI:  export CRUX_PHOENIX_BIN="$(bash .ci/phoenix.sh)"
set -euo pipefail
venv="${CRUX_PHOENIX_VENV:-$HOME/.cache/crux/phoenix-venv}"
bin="$venv/bin/phoenix"
if [ ! -x "$bin" ]; then
    echo "installing arize-phoenix into $venv ..." >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check arize-phoenix >&2
fi
"$bin" --help >/dev/null 2>&1 || { echo "phoenix at $bin does not run" >&2; exit 1; }
echo "$bin"
