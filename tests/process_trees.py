"""What the local backend's stop/kill tests and bench/local_backend_overhead.py share: an
adversarial process tree for a job's entry point, a way to find what is left of it, and an
Airflow task run as its own process (to stop it the way Airflow stops a task)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

from graphstorm_provider.execution import proctree

# An entry point that starts an adversarial process tree; every process carries the marker
# (argv[1]) in its command line. Prints READY once the whole tree is in place.
TREE_ENTRY = textwrap.dedent("""
    import os, pathlib, signal, subprocess, sys, time
    marker = sys.argv[1]
    sleeper = [sys.executable, "-c", "import time; time.sleep(3600)", marker]
    ready_dir = pathlib.Path(os.environ["GRAPHSTORM_OPT_ML"])
    # Ignores SIGTERM, and says so (touches its file) only once the handler is in place.
    stubborn_code = ("import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "pathlib.Path(sys.argv[2]).touch(); time.sleep(3600)")
    stubborn = lambda n: [sys.executable, "-c", stubborn_code, marker, str(ready_dir / f"stubborn-{n}")]
    # A child with a grandchild of its own.
    subprocess.Popen([sys.executable, "-c",
                      "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(3600)",
                      *sleeper])
    # A child in its own session and process group that ignores SIGTERM.
    subprocess.Popen(stubborn(1), start_new_session=True)
    # A double-forked daemon in its own session with an empty environment: it escapes the
    # process tree, the process group and the marker variable at once.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve(sys.executable, stubborn(2), {})
        os._exit(0)
    os.wait()
    while not all((ready_dir / f"stubborn-{n}").exists() for n in (1, 2)):
        time.sleep(0.01)
    print("READY", flush=True)
    time.sleep(3600)
""")


# A test runner started in the background (``cmd &`` without job control) ignores SIGINT, and its
# children inherit that: a child a test sends SIGINT to is started through this prefix, which sets
# SIGINT back to its default disposition and execs the command (Python then installs its own
# KeyboardInterrupt handler, as in a terminal).
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def with_default_sigint(argv: list[str]) -> list[str]:
    """``argv`` run with SIGINT at its default disposition, whatever this process inherited."""
    return [sys.executable, "-c", _DEFAULT_SIGINT, *argv]


def live_processes_with(marker: str) -> set[int]:
    """Live processes whose command line holds ``marker`` (zombies are gone already)."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and proctree.alive(int(name)):
            found.add(int(name))
    return found


def end_tree(proc: subprocess.Popen, marker: str | None = None) -> None:
    """What a test's ``finally`` does, also after a failure or a timeout: kill ``proc`` if it still
    runs and every live process whose command line holds ``marker``."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in live_processes_with(marker) if marker else ():
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, signal.SIGKILL)


@dataclass
class TaskProcess:
    """An ``airflow tasks test`` run in its own process, its output collected line by line."""

    proc: subprocess.Popen
    lines: list[str]
    seen: threading.Event  # set at the first output line holding the awaited text
    reader: threading.Thread

    def tail(self, count: int = 40) -> str:
        return "".join(self.lines[-count:])


def airflow_tasks_test(
    dag_id: str, task_id: str, *, watch_for: str, env: dict[str, str] | None = None, run_id: str | None = None
) -> TaskProcess:
    """Start this venv's ``airflow tasks test dag_id task_id [run_id]`` (the way a worker runs a
    task, so it can be sent SIGTERM like a stopped task); ``seen`` is set once a line holds
    ``watch_for``. With ``run_id`` (an existing DAG run) the task runs in that run, as a retry does."""
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    proc = subprocess.Popen(
        [str(venv_bin / "airflow"), "tasks", "test", dag_id, task_id, *([run_id] if run_id else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if watch_for in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return TaskProcess(proc, lines, seen, reader)
