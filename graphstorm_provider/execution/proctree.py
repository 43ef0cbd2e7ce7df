"""
Finding and ending every process of a local job, from /proc (Linux), without psutil.

A job's processes are found two ways, because either alone misses some:

* descendants by parent pid, which also finds processes that cleared their environment;
* the job's marker variable in ``/proc/<pid>/environ``, which also finds processes that left the
  tree (double-forked daemons re-parented to init, ``setsid`` children).

This module is stdlib only: the guard process (``_guard.py``) imports it as a plain script sibling.
Every function here is safe to call from a signal handler (no locks, no logging).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable

MARKER_ENV = "GRAPHSTORM_LOCAL_JOB_MARKER"
_PROC = "/proc"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            data = fh.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return data[data.rfind(")") + 2 :].split()


def alive(pid: int) -> bool:
    """Tell whether ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def parent_table() -> dict[int, int]:
    """``pid -> parent pid`` of every live process."""
    table = {}
    for name in os.listdir(_PROC):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is not None and fields[0] not in ("Z", "X"):
                table[int(name)] = int(fields[1])
    return table


def descendants(root: int, table: dict[int, int] | None = None) -> set[int]:
    """Every live process below ``root`` (children, grandchildren, ...), ``root`` excluded."""
    table = parent_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def with_marker(marker: str) -> set[int]:
    """Live processes whose environment holds ``GRAPHSTORM_LOCAL_JOB_MARKER=<marker>``."""
    needle = f"{MARKER_ENV}={marker}".encode()
    me = os.getpid()
    found = set()
    for name in os.listdir(_PROC):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"{_PROC}/{name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if needle in env.split(b"\0") and alive(int(name)):
            found.add(int(name))
    return found


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def end_processes(find: Callable[[], set[int]], grace: float, reap: Callable[[], None] = lambda: None) -> set[int]:
    """
    SIGTERM everything ``find()`` returns, wait up to ``grace`` seconds, then SIGKILL survivors.

    ``find`` is called again at every step, so processes forked during shutdown are caught too.
    ``reap`` lets a parent collect its exited children (zombies) while it waits.
    Returns what is still alive at the end (empty unless a process is unkillable, e.g. in D state).
    """
    signal_all(find(), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        remaining = find()
        if not remaining:
            return set()
        signal_all(remaining, signal.SIGTERM)  # late forks get their TERM too
        time.sleep(0.05)
    # Stop first so nothing can fork between our scan and the kill, then kill.
    for _ in range(50):
        remaining = find()
        if not remaining:
            return set()
        signal_all(remaining, signal.SIGSTOP)
        signal_all(find(), signal.SIGKILL)
        reap()
        time.sleep(0.05)
    reap()
    return find()
