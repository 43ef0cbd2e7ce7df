"""
A private /dev/shm for a GraphStorm job that shares its machine with other jobs.

DistDGL names its shared-memory segments after the data alone (``node~paper~feat-kvdata-``),
not after the job, so two GraphStorm jobs on one OS that use the same node type and feature
names open, and delete, each other's segments. Containers each have their own /dev/shm; on
a shared machine (the local backend, several developers) the entry point re-executes itself
in a new mount namespace with a fresh tmpfs on /dev/shm, when it is allowed to (root with
``unshare``). ``GSENTRY_PRIVATE_SHM=1`` forces it, ``=0`` turns it off; by default it is on
when ``$GRAPHSTORM_OPT_ML`` points away from ``/opt/ml`` (an emulated container).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence

from gsentry.contract import DEFAULT_OPT_ML, OPT_ML_ENV

log = logging.getLogger(__name__)

MARKER = "GSENTRY_SHM_ISOLATED"
SWITCH = "GSENTRY_PRIVATE_SHM"
# sh gets the command as "$@": no user input is ever parsed by the shell.
_MOUNT_THEN_EXEC = 'mount -t tmpfs -o mode=1777 gsentry-shm /dev/shm && exec "$@"'


def wanted(env: Mapping[str, str]) -> bool:
    if env.get(MARKER) == "1":
        return False
    switch = env.get(SWITCH, "")
    if switch in ("0", "1"):
        return switch == "1"
    opt_ml = env.get(OPT_ML_ENV)
    return bool(opt_ml) and opt_ml is not None and opt_ml.rstrip("/") != DEFAULT_OPT_ML


def wrapped_argv(argv: Sequence[str]) -> list[str]:
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _MOUNT_THEN_EXEC, "sh", *argv]


def _possible() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(wrapped_argv(["true"]), capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def reexec_with_private_shm(env: Mapping[str, str] | None = None) -> None:
    """Replace this process by itself inside a private /dev/shm, if wanted and possible."""
    env = dict(os.environ if env is None else env)
    if env.get(MARKER) == "1":
        log.info("running with a private /dev/shm")
        return
    if not wanted(env):
        return
    if not _possible():
        log.warning(
            "cannot give this job a private /dev/shm (needs root and unshare); another "
            "GraphStorm job on this machine with the same node types may interfere"
        )
        return
    env[MARKER] = "1"
    argv = wrapped_argv([sys.executable, *sys.argv])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)
