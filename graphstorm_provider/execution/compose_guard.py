"""
Last-resort teardown of a compose run whose owner died without cleaning up.

Containers belong to the engine, not to the process that started them: a task process
that is SIGKILLed (OOM killer, a supervisor's kill escalation) would leave the cluster
running. ``ComposeJobRunner`` therefore starts this guard in its own session with a pipe
on its stdin. The runner writes ``done`` after its own teardown; if the pipe closes
without it, the owner is gone and the guard kills and removes the containers and the
network by name, then the runner's scratch in its work dir (``--scratch``): the archives being
packed from the leader's folders (``.archive-*``, as large as the model) and the failure files
being read (``.failure-*``). The compose file stays, for debugging, as after a failed run.

    python -m graphstorm_provider.execution.compose_guard [--scratch WORK_DIR] ENGINE NETWORK CONTAINER...
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from graphstorm_provider.exit_codes import EXIT_OK, EXIT_USAGE

DONE = "done"
TEARDOWN_TIMEOUT_S = 120  # per engine command (kill, rm, network rm)
# The compose runner's scratch in its work dir, named with these prefixes (compose_runner.py).
ARCHIVE_SCRATCH_PREFIX = ".archive-"
FAILURE_FILE_PREFIX = ".failure-"
SCRATCH_OPTION = "--scratch"


def teardown(engine: str, network: str, containers: list[str]) -> None:
    for argv in (
        [engine, "kill", *containers],
        [engine, "rm", "-f", "-v", *containers],
        [engine, "network", "rm", *(["-f"] if engine == "podman" else []), network],
    ):
        try:
            subprocess.run(argv, capture_output=True, timeout=TEARDOWN_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue


def remove_scratch(work_dir: Path) -> None:
    """Remove the runner's scratch directly in ``work_dir`` (nothing else, nothing deeper)."""
    for path in work_dir.glob(ARCHIVE_SCRATCH_PREFIX + "*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
    for path in work_dir.glob(FAILURE_FILE_PREFIX + "*"):
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    scratch = None
    if argv[:1] == [SCRATCH_OPTION] and len(argv) > 1:
        scratch, argv = Path(argv[1]), argv[2:]
    if len(argv) < 3:
        print(f"usage: compose_guard [{SCRATCH_OPTION} WORK_DIR] ENGINE NETWORK CONTAINER...", file=sys.stderr)
        return EXIT_USAGE
    engine, network, containers = argv[0], argv[1], argv[2:]
    told = sys.stdin.read()  # returns when the owner closes the pipe or dies
    if told.strip() != DONE:
        print(f"compose guard: owner gone; removing {', '.join(containers)} and {network}", file=sys.stderr)
        teardown(engine, network, containers)
        if scratch is not None:
            remove_scratch(scratch)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
