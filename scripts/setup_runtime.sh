#!/usr/bin/env bash
# Creates (or reuses) the GraphStorm runtime: the second virtual environment that runs the entry
# points when instance_type="local" (in containers, the job image installs the same pins).
#
# Usage: scripts/setup_runtime.sh [VENV_DIR]     (default: <checkout>/.venv-runtime)
#   PYTHON=python3.11 picks the base interpreter (the pins are for CPython 3.11).
#
# It installs docker/requirements-runtime.txt, a full lock, with --no-deps (graphstorm's own
# metadata pins a torchdata that needs a newer torch; the lock holds the working set), then checks
# that graphstorm, dgl and torch import. Idempotent: a stamp file in the venv holds the hash of the
# requirements, so a second run only compares hashes and returns in well under a second.
# Afterwards the local backend finds it by default; elsewhere set
#   export GRAPHSTORM_RUNTIME_PYTHON=<VENV_DIR>/bin/python
#
# Wheels come from the wheelhouse the job image is built from (docker/build_image.sh; same path,
# same stamp: $GRAPHSTORM_WHEELHOUSE, else /var/cache/graphstorm-airflow/wheelhouse, else
# ~/.cache/graphstorm-airflow/wheelhouse). If it is missing or stale this script fills it first, so
# the ~3 GB of pinned wheels are downloaded once for both the runtime venv and the image.
# GRAPHSTORM_WHEELHOUSE=none installs straight from the package index instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-runtime}"
requirements="$root/docker/requirements-runtime.txt"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

stamp="$venv/.graphstorm-runtime-stamp"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "GraphStorm runtime up to date: $venv/bin/python"
  exit 0
fi

version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$version" != "3.11" ]]; then
  echo "warning: $python is Python $version; the runtime pins were tested with 3.11 (set PYTHON=...)" >&2
fi

echo "Creating the GraphStorm runtime in $venv from $requirements ..."
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
rm -f "$stamp"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

default_wheelhouse=/var/cache/graphstorm-airflow/wheelhouse
if ! mkdir -p "$default_wheelhouse" 2>/dev/null || [[ ! -w "$default_wheelhouse" ]]; then
  default_wheelhouse="${XDG_CACHE_HOME:-$HOME/.cache}/graphstorm-airflow/wheelhouse"
fi
wheelhouse="${GRAPHSTORM_WHEELHOUSE:-$default_wheelhouse}"
if [[ "$wheelhouse" == none ]]; then
  "${pip[@]}" install --quiet --no-deps -r "$requirements"
else
  wheelhouse_stamp="$wheelhouse/.requirements-sha256"  # docker/build_image.sh's stamp
  if [[ ! -f "$wheelhouse_stamp" || "$(cat "$wheelhouse_stamp")" != "$want" ]]; then
    echo "Filling the wheelhouse $wheelhouse (about 3 GB, shared with docker/build_image.sh) ..."
    mkdir -p "$wheelhouse"
    rm -f "$wheelhouse_stamp"
    "${pip[@]}" wheel --quiet --no-deps --progress-bar off -r "$requirements" -w "$wheelhouse"
    echo "$want" > "$wheelhouse_stamp"
  fi
  "${pip[@]}" install --quiet --no-deps --no-index --find-links "$wheelhouse" -r "$requirements"
fi
# The stamp is written only once the stack really imports: a half-installed venv is retried.
"$venv/bin/python" -c "import torch, dgl, graphstorm; print('graphstorm', graphstorm.__version__, 'dgl', dgl.__version__, 'torch', torch.__version__)"
echo "$want" > "$stamp"
echo "GraphStorm runtime ready: $venv/bin/python"
