"""
Guard process between the Airflow task and a local job's entry point (stdlib only, run as a script).

    python _guard.py --parent-pid PID --grace SECONDS -- ENTRY_POINT_ARGV...

It plays the part of the container boundary:

* it is a child subreaper (``PR_SET_CHILD_SUBREAPER``): processes that daemonize or ``setsid``
  away from the entry point are re-parented to it, so it can still find and end them;
* when the entry point exits, it ends whatever the entry point left running (a container stops
  with its main process) and exits with the entry point's code;
* on SIGTERM/SIGINT/SIGHUP (``LocalJobRunner.stop()``) it ends the whole tree: TERM, a grace
  period, then KILL, and exits 128+signal;
* it asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so a task process
  that is SIGKILLed (Airflow escalates to it) still takes its job down with it.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphstorm_provider.execution import proctree
else:
    import proctree  # sibling module; this file's folder is sys.path[0] when run as a script

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class _Stop(Exception):
    def __init__(self, signum: int):
        self.signum = signum


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Further signals during cleanup are ignored: the cleanup already ends everything.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signum)


def _reap(statuses: dict[int, int]) -> None:
    """Collect exited children without blocking (we are their reaper)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = status


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != args.parent_pid:  # the parent died before PDEATHSIG was armed
        return 128 + signal.SIGTERM
    _prctl(PR_SET_CHILD_SUBREAPER, 1)

    me = os.getpid()
    marker = os.environ.get(proctree.MARKER_ENV, "")

    def find() -> set[int]:
        found = proctree.descendants(me)
        if marker:
            found |= proctree.with_marker(marker)
        found.discard(me)
        return found

    statuses: dict[int, int] = {}
    exit_code = 0
    try:
        # Python ignores SIGPIPE/SIGXFSZ and an ignored signal survives exec: give the entry point
        # the defaults, as subprocess's restore_signals does.
        child = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        while child not in statuses:
            pid, status = os.waitpid(-1, 0)  # any child: orphans re-parented to us are reaped too
            statuses[pid] = status
        exit_code = os.waitstatus_to_exitcode(statuses[child])
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    except _Stop as stop:
        exit_code = 128 + stop.signum
    except OSError as exc:  # the entry point could not be started at all
        print(f"cannot start {argv[0]}: {exc}", file=sys.stderr, flush=True)
        return 127
    proctree.end_processes(find, args.grace, reap=lambda: _reap(statuses))
    _reap(statuses)
    return exit_code if exit_code >= 0 else 128 - exit_code  # killed by a signal: 128+N like a shell


if __name__ == "__main__":
    sys.exit(main())
