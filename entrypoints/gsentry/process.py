"""
Run GraphStorm child processes, stream their output, and surface their error on failure.

Commands are argv lists (never shell strings). Each child runs in its own session so that it and
everything it starts (torch's launcher forks one process per trainer) can be stopped together.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from gsentry.errors import EntryError, GraphStormError

log = logging.getLogger(__name__)

TAIL_LINES = 400
_EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt))(:|$)")
# Launcher wrappers whose own traceback hides the real error of the child they ran.
_WRAPPER_ERRORS = ("ChildFailedError", "CalledProcessError", "subprocess.CalledProcessError")
STOP_GRACE_SECONDS = 10.0


def error_summary(lines: Sequence[str], context: int = 30) -> list[str]:
    """
    Return the most useful part of a failed child's output tail: headline first, then context.

    The headline is the first exception a GraphStorm process raised; the context is the
    traceback that led to it (its last ``context`` lines). torch's launcher appends a
    ``ChildFailedError`` traceback of its own that says nothing, so wrapper exceptions never
    make the headline. Without any exception, the last non-empty line heads the tail.
    """
    lines = [line.rstrip("\n") for line in lines]
    real = [
        i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line) and not any(w in line for w in _WRAPPER_ERRORS)
    ]
    if real:
        end = real[0]
        start = next((i for i in range(end, -1, -1) if "Traceback (most recent call last)" in lines[i]), end)
        return [lines[end].strip(), *lines[max(start, end - context) : end + 1]]
    headline = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
    return [headline, *lines[-25:]]


@dataclass
class Child:
    """A running child process whose merged output is echoed with a prefix and kept as a tail."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    cwd: Path | None = None
    proc: subprocess.Popen[str] | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    _reader: threading.Thread | None = None

    def start(self) -> Child:
        log.info("starting %s: %s", self.name, " ".join(self.argv))
        self.proc = subprocess.Popen(
            self.argv,
            env=dict(self.env),
            cwd=str(self.cwd) if self.cwd else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
            errors="replace",
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._pump, name=f"out-{self.name}", daemon=True)
        self._reader.start()
        return self

    def _pump(self) -> None:
        if self.proc is None or self.proc.stdout is None:
            raise RuntimeError(f"{self.name}: output is read only after start()")
        prefix = f"[{self.name}] "
        for line in self.proc.stdout:
            self.tail.append(line.rstrip("\n"))
            sys.stdout.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            sys.stdout.flush()

    def poll(self) -> int | None:
        if self.proc is None:
            raise RuntimeError(f"{self.name}: poll() before start()")
        return self.proc.poll()

    def finish_output(self, timeout: float = 5.0) -> None:
        if self._reader:
            self._reader.join(timeout)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the child's whole session, then SIGKILL whatever is left after ``grace``."""
        if not self.proc:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                # The session may still hold grandchildren (torch's workers) after the leader exits.
            except subprocess.TimeoutExpired:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            break
        self.finish_output()

    def failure(self, what: str | None = None) -> GraphStormError:
        self.finish_output()
        rc = self.proc.returncode if self.proc else -1
        return GraphStormError(what or self.name, rc, error_summary(list(self.tail)))


class AbortRequested(Exception):
    """Raised by :func:`supervise` when ``should_abort`` returned an error to raise."""


def supervise(
    children: list[Child],
    should_abort: Callable[[], Exception | None] = lambda: None,
    on_failure: Callable[[str], None] = lambda reason: None,
    poll_seconds: float = 0.5,
) -> None:
    """
    Wait for every child to exit 0.

    The first child that exits non-zero fails the host: ``on_failure`` is told at once (the host
    tells its peers before anything else: stopping its processes breaks theirs, and they must not
    take that for the cause), every child is stopped (its session too, which ends the failed
    child's output: a killed launcher's workers hold it open) and its error is raised. If
    ``should_abort`` returns an exception (a dead peer host, a signal), every child is stopped and
    that exception is raised; it is asked first, so a peer's failure wins over a failure of this
    host's own seen at the same time. No timeouts here: the peers' watchdog bounds the time a
    distributed job can hang.
    """
    try:
        while True:
            abort = should_abort()
            if abort is not None:
                raise abort
            codes = [(child, child.poll()) for child in children]
            failed = [(child, code) for child, code in codes if code not in (None, 0)]
            if failed:
                child, code = failed[0]
                on_failure(f"{child.name} exited with code {code}")
                _stop_all(children)
                raise child.failure()
            if all(code == 0 for _, code in codes):
                for child in children:
                    child.finish_output()
                return
            time.sleep(poll_seconds)
    finally:
        _stop_all(children)


def _stop_all(children: list[Child]) -> None:
    for child in children:
        if child.proc and child.proc.poll() is None:
            log.warning("stopping %s", child.name)
        child.stop()


def run(
    name: str,
    argv: list[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    should_abort: Callable[[], Exception | None] = lambda: None,
) -> None:
    """Run one child to completion; raise :class:`GraphStormError` with its error on failure."""
    child = Child(name, argv, env if env is not None else os.environ, cwd).start()
    supervise([child], should_abort)


class _Stop:
    """
    Turns SIGTERM (SageMaker's StopTrainingJob, compose down, the local backend's stop) into an exception.

    Wherever the host is (rendezvous, download, GraphStorm running), it unwinds, stops its children and tells its peers.
    Later signals are ignored so cleanup can finish.
    """

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            return
        self.signal = signum
        raise EntryError(f"stopped by signal {signal.Signals(signum).name}")


_STOP = _Stop()


def install_stop_handler() -> None:
    """Make SIGTERM/SIGINT unwind the entry point (children are stopped by :func:`supervise`)."""
    _STOP.install()
