#!/usr/bin/env bash
# Build (or reuse) the SageMaker job image: GraphStorm runtime + entry points in /opt/ml/code.
#
# Usage: docker/build_image.sh [--flavour cpu|gpu] [--base IMAGE] [--tag TAG] [--wheelhouse DIR]
#                              [--engine podman|docker] [--force]
#   --flavour     cpu (default) or gpu; same wheels, gpu adds the NVIDIA runtime env (see docker/Dockerfile)
#   --base        base image with CPython 3.11 (default localhost/graphstorm-base:bookworm, made by
#                 scripts/setup_container_engine.sh)
#   --tag         image tag (default graphstorm:sm, the default image name of the jobs; podman stores it
#                 as localhost/graphstorm:sm and `graphstorm:sm` finds it)
#   --wheelhouse  where the pinned wheels are kept between builds
#                 (default $GRAPHSTORM_WHEELHOUSE, else /var/cache/graphstorm-airflow/wheelhouse, else
#                 ~/.cache/graphstorm-airflow/wheelhouse when /var/cache is not writable)
#   --engine      podman (default when installed) or docker (BuildKit); $GRAPHSTORM_CONTAINER_ENGINE
#   --force       rebuild even when the image's inputs are unchanged
#
# Skips the build when an image with this tag carries the same inputs hash (Dockerfile, requirements,
# entry points, flavour, base image ID) in its label graphstorm-airflow.inputs: a second run takes ~1 s.
# scripts/setup_container_engine.sh installs podman and the base image. The wheels are bind-mounted
# (RUN --mount) from the staged context: no network during the build, no wheel in a layer.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flavour=cpu
base="${GRAPHSTORM_BASE_IMAGE:-localhost/graphstorm-base:bookworm}"
tag="${GRAPHSTORM_IMAGE:-graphstorm:sm}"
# Outside the checkout so fresh clones (CI) reuse it; a non-root user without /var/cache gets ~/.cache.
default_wheelhouse=/var/cache/graphstorm-airflow/wheelhouse
if ! mkdir -p "$default_wheelhouse" 2>/dev/null || [ ! -w "$default_wheelhouse" ]; then
  default_wheelhouse="${XDG_CACHE_HOME:-$HOME/.cache}/graphstorm-airflow/wheelhouse"
fi
wheelhouse="${GRAPHSTORM_WHEELHOUSE:-$default_wheelhouse}"
force=0
engine="${GRAPHSTORM_CONTAINER_ENGINE:-}"

usage() { sed -n '2,20p' "$0"; }
die() { echo "build_image.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --flavour) [ $# -ge 2 ] || die "--flavour needs a value"; flavour="$2"; shift 2 ;;
    --base) [ $# -ge 2 ] || die "--base needs a value"; base="$2"; shift 2 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag="$2"; shift 2 ;;
    --wheelhouse) [ $# -ge 2 ] || die "--wheelhouse needs a value"; wheelhouse="$2"; shift 2 ;;
    --engine) [ $# -ge 2 ] || die "--engine needs a value"; engine="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$flavour" in cpu|gpu) ;; *) die "--flavour must be cpu or gpu, got '$flavour'" ;; esac
log() { echo "[build_image] $*" >&2; }

if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1; then engine=docker
  else die "no podman or docker: run scripts/setup_container_engine.sh (as root) first"
  fi
fi
case "$engine" in podman|docker) ;; *) die "--engine must be podman or docker, got '$engine'" ;; esac
command -v "$engine" >/dev/null 2>&1 || die "--engine $engine is not installed"
image_exists() { "$engine" image inspect "$1" >/dev/null 2>&1; }
image_exists "$base" \
  || die "base image $base is missing: run scripts/setup_container_engine.sh, or pass --base IMAGE"

requirements="$root/docker/requirements-runtime.txt"
dockerfile="$root/docker/Dockerfile"

# ---------------------------------------------------------------------------------------------
# Inputs hash: everything that ends up in the image. Entry point files are hashed by relative
# path + content (no __pycache__), and the base by image ID, so a rebuilt base also rebuilds.
entry_hash=$(cd "$root" && find entrypoints -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
base_id=$("$engine" image inspect --format '{{.Id}}' "$base")
inputs_hash=$( { sha256sum "$dockerfile" "$requirements" | cut -d' ' -f1; echo "$entry_hash" "$flavour" "$base_id"; } \
  | sha256sum | cut -d' ' -f1)

if [ "$force" = 0 ] && image_exists "$tag"; then
  have=$("$engine" image inspect --format '{{index .Config.Labels "graphstorm-airflow.inputs"}}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$inputs_hash" ]; then
    log "image $tag is up to date (inputs $inputs_hash)"
    exit 0
  fi
  log "image $tag is out of date (inputs ${have:-unlabelled} -> $inputs_hash): rebuilding"
fi

# ---------------------------------------------------------------------------------------------
# Wheelhouse: pip wheel (not download) so any sdist-only pin is built into a wheel once, here,
# and the image build installs only wheels. Stamped by the requirements hash; reused when it matches.
req_hash=$(sha256sum "$requirements" | cut -d' ' -f1)
stamp="$wheelhouse/.requirements-sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ]; then
  log "wheelhouse $wheelhouse is up to date"
else
  # A host CPython 3.11 picks the same wheels the image's python3.11 installs.
  py=""
  for candidate in "${PYTHON:-}" python3.11 python3; do
    if [ -z "$candidate" ] || ! command -v "$candidate" >/dev/null 2>&1; then continue; fi
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = 3.11 ]; then
      py="$candidate"; break
    fi
  done
  [ -n "$py" ] || die "no CPython 3.11 on this host to fetch the cp311 wheels (set PYTHON=...)"
  if ! "$py" -m pip --version >/dev/null 2>&1; then
    # e.g. Debian's python3.11 without python3-pip: a private venv brings pip.
    "$py" -m venv "$wheelhouse.pip-venv"
    py="$wheelhouse.pip-venv/bin/python"
  fi
  mkdir -p "$wheelhouse"
  rm -f "$stamp"
  log "filling the wheelhouse $wheelhouse from $requirements (about 3 GB; 2 min on a fast link)"
  "$py" -m pip wheel --quiet --disable-pip-version-check --no-deps --progress-bar off \
    -r "$requirements" -w "$wheelhouse"
  echo "$req_hash" >"$stamp"
fi

# ---------------------------------------------------------------------------------------------
# Stage a small context laid out like the repository: the checkout holds venvs and data that
# must not be sent to the builder.
# Next to the wheelhouse, so its wheels can be hard-linked in (same file system).
context=$(mktemp -d "$(dirname "$wheelhouse")/image-context.XXXXXX")
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/docker"
cp "$dockerfile" "$requirements" "$context/docker/"
cp -r "$root/entrypoints" "$context/entrypoints"
find "$context/entrypoints" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
# Hard links when the wheelhouse is on the same file system (instant), a copy otherwise.
mkdir -p "$context/wheelhouse"
cp -l "$wheelhouse"/*.whl "$context/wheelhouse/" 2>/dev/null || cp "$wheelhouse"/*.whl "$context/wheelhouse/"

old_id=$("$engine" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
log "building $tag with $engine (flavour $flavour, base $base)"
start=$(date +%s)
if [ "$engine" = podman ]; then
  # --format docker: the OCI format drops SHELL (and HEALTHCHECK); SageMaker/ECR take either.
  build=(podman build --layers --format docker)
else
  export DOCKER_BUILDKIT=1  # RUN --mount needs BuildKit
  build=(docker build)
fi
"${build[@]}" \
  -f "$context/docker/Dockerfile" \
  --build-arg "BASE_IMAGE=$base" \
  --build-arg "FLAVOUR=$flavour" \
  --label "graphstorm-airflow.inputs=$inputs_hash" \
  -t "$tag" \
  "$context" >"$context.log" 2>&1 || {
    tail -40 "$context.log" >&2
    echo "build_image.sh: $engine build failed; full log: $context.log" >&2
    exit 1
  }
# A rebuilt runtime layer (new pins or base) leaves the previous 6 GB layer chain behind, untagged and
# unused: prune dangling images then. Not after the usual entry-point rebuild (seconds), which
# reuses that layer, so a concurrent build's cache is not touched in the common case.
if [ "$engine" = podman ] && ! grep -A1 -- '--mount=type=bind,source=wheelhouse' "$context.log" | grep -q 'Using cache'; then
  log "runtime layer rebuilt: pruning the previous, now unused image layers"
  podman image prune -f >/dev/null 2>&1 || true
fi
rm -f "$context.log"
log "built $tag in $(( $(date +%s) - start )) s: $("$engine" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.1f GB", $1/1e9}')"

# The previous image under this tag is now untagged: drop it (and only it) unless a container uses it.
new_id=$("$engine" image inspect --format '{{.Id}}' "$tag")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  "$engine" rmi "$old_id" >/dev/null 2>&1 || true
fi
