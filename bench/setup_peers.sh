#!/usr/bin/env bash
# Create bench/.venv-peers and install the peer libraries of bench/scm_queries.py into it.
#
# The peers get their own environment because DoWhy pins an older scipy than cauflow uses;
# nothing here touches the project's .venv. torch is installed first and pinned, so that
# pip takes the CPU wheel (an unpinned torch pulls a multi-GB CUDA build) and the peers'
# own requirement on torch is already met.
#
# Usage: bash bench/setup_peers.sh          (from anywhere; PYTHON=python3.11 by default)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3.11}"

if ! command -v "$python" >/dev/null; then
    echo "setup_peers.sh: $python not found; set PYTHON to a Python 3.11 interpreter" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$(grep -E '^torch==' "$here/requirements-peers.txt")"
"$venv/bin/python" -m pip install --quiet -r "$here/requirements-peers.txt"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
print("peers installed:", ", ".join(f"{n} {md.version(n)}" for n in ("torch", "dowhy", "causalflows", "scipy")))
PY
