"""
Last-resort teardown of a compose run whose owner died without cleaning up.

Containers belong to the engine, not to the process that started them: a task process
that is SIGKILLed (OOM killer, a supervisor's kill escalation) would leave the cluster
running. ``ComposeJobRunner`` therefore starts this guard in its own session with a pipe
on its stdin. The runner writes ``done`` after its own teardown; if the pipe closes
without it, the owner is gone and the guard kills and removes the containers and the
network by name, then the run's own scratch folder (``--scratch``, ``<work dir>/.scratch-<random>``:
the archives being packed from the leader's folders, as large as the model, and the failure files
being read). Nothing else: other runs sharing the work dir keep theirs, and the compose file stays,
for debugging, as after a failed run.

    python -m graphstorm_provider.execution.compose_guard [--scratch SCRATCH_DIR] ENGINE NETWORK CONTAINER...
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from graphstorm_provider.exit_codes import EXIT_OK, EXIT_USAGE

DONE = "done"
TEARDOWN_TIMEOUT_S = 120  # per engine command (kill, rm, network rm)
SCRATCH_OPTION = "--scratch"  # the run's own scratch folder, removed with everything in it


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


def remove_scratch(scratch: Path) -> None:
    """Remove the run's scratch folder ``scratch`` (a link there is removed, not followed)."""
    if scratch.is_symlink():
        scratch.unlink(missing_ok=True)
    elif scratch.is_dir():
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str]) -> int:
    scratch = None
    if argv[:1] == [SCRATCH_OPTION] and len(argv) > 1:
        scratch, argv = Path(argv[1]), argv[2:]
    if len(argv) < 3:
        print(f"usage: compose_guard [{SCRATCH_OPTION} SCRATCH_DIR] ENGINE NETWORK CONTAINER...", file=sys.stderr)
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
