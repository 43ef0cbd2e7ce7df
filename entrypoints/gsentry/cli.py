"""
Command lines of the entry points: ``<our flags> -- <GraphStorm flags verbatim>``.

Everything after the first ``--`` goes to GraphStorm unchanged. A bad flag of ours fails with one
sentence naming it (no traceback). Any failure exits non-zero and, as SageMaker expects, leaves
its reason in ``<opt_ml>/output/failure``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from gsentry.errors import EntryError, InputError
from gsentry.logs import LEVELS

log = logging.getLogger(__name__)

FAILURE_MAX_BYTES = 1024 * 1024


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage and exit 2
        raise InputError(f"{self.prog}: {message}")


def split_forwarded(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(ours, graphstorm)`` split at the first ``--``."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def new_parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, allow_abbrev=False)
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LEVELS)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, forwarded = split_forwarded(argv)
    args = parser.parse_args(ours)
    return args, forwarded


def write_failure(opt_ml: Path, message: str) -> None:
    """SageMaker shows ``/opt/ml/output/failure`` as the job's FailureReason."""
    try:
        out = opt_ml / "output"
        out.mkdir(parents=True, exist_ok=True)
        (out / "failure").write_text(message[:FAILURE_MAX_BYTES], encoding="utf-8")
    except OSError:
        pass


def run_main(main: Callable[[list[str]], None], argv: Sequence[str] | None = None) -> int:
    """Run an entry point's ``main`` and turn every failure into a message and exit code 1."""
    from gsentry.contract import DEFAULT_OPT_ML, OPT_ML_ENV

    argv = list(sys.argv[1:] if argv is None else argv)
    opt_ml = Path(os.environ.get(OPT_ML_ENV) or DEFAULT_OPT_ML)
    try:
        main(argv)
        return 0
    except EntryError as err:
        message = str(err)
    except KeyboardInterrupt:
        message = "interrupted"
    except Exception:  # an entry-point bug: keep the traceback, it is the only clue
        message = "unexpected error in the entry point:\n" + traceback.format_exc()
    log.error("%s", message)
    # Details first and the one-line reason last: log tails (the local backend keeps the last
    # stderr lines) then end with it. The failure file (SageMaker's FailureReason) starts with it.
    headline, *details = message.splitlines() or ["failed"]
    for line in details:
        print(line, file=sys.stderr)
    print(f"ERROR: {headline}", file=sys.stderr, flush=True)
    write_failure(opt_ml, message)
    return 1


def exit_now(code: int) -> NoReturn:
    """
    End the process with ``code`` once our output is flushed, skipping the interpreter's teardown.

    For an entry point that imports dgl in its own process (partitioning): ``import dgl`` imports
    ogb, which starts non-daemon threads asking PyPI whether ogb and ``outdated`` are the latest
    versions. A normal exit joins them, 2-10 s here without a network (a PyPI round trip on every
    host otherwise), then tears down torch's modules. Everything the entry point writes is closed
    by the time ``run_main`` returns (files, sockets, the failure file); only the log streams
    remain, flushed here.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing left to save
            stream.flush()
    os._exit(code)
