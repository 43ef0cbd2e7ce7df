"""
``gs-sagemaker``: one command, one subcommand per job or tool.

Subcommand registry (how to add one)
------------------------------------
:data:`SUBCOMMANDS` maps a subcommand name to ``("package.module:function", "one-line help")``.
``main`` imports the module only when that subcommand runs (so ``gs-sagemaker train --dry-run``
never imports what ``compose`` needs, and nothing imports boto3 before it is used) and calls::

    function(argv: list[str]) -> int

with the arguments after the subcommand name. The function owns its parsing (``prog`` should be
``gs-sagemaker <name>``), prints its own output and returns the process exit code. Contract:

* bad input -> one line ``gs-sagemaker <name>: error: <sentence naming the flag>`` on stderr and
  exit code 2, before any request is sent; no traceback for anything the user can fix;
* ``-h``/``--help`` prints help and returns 0.

``main`` also turns any ``ValueError`` that escapes a subcommand into that one line with exit
code 2, so a ``JobSpecError`` is enough. To add a subcommand, add one line to ``SUBCOMMANDS``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from graphstorm_provider.argparsing import closest
from graphstorm_provider.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

PROG = "gs-sagemaker"

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "gconstruct": ("graphstorm_provider.cli.launch:gconstruct", "graph construction (SageMaker Processing job)"),
    "partition": ("graphstorm_provider.cli.launch:partition", "distributed partitioning (SageMaker Training job)"),
    "train": ("graphstorm_provider.cli.launch:train", "model training (SageMaker Training job)"),
    "infer": ("graphstorm_provider.cli.launch:infer", "offline inference (SageMaker Training job)"),
    "compose": ("graphstorm_provider.cli.compose:run", "write/run a compose file emulating a SageMaker cluster"),
    "synthetic-acm": ("graphstorm_provider.cli.synthetic_acm:run", "generate a synthetic ACM-like raw graph"),
}


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        f"usage: {PROG} <command> [flags...]",
        "",
        "Run GraphStorm jobs on Amazon SageMaker (or locally with --instance-type local), with the",
        "flags of GraphStorm's SageMaker launch scripts. Job commands also take --dry-run: print the",
        "SageMaker request as JSON and send nothing.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    lines += ["", f"Run '{PROG} <command> --help' for a command's flags."]
    return "\n".join(lines)


def error(message: str, prog: str = PROG) -> int:
    """Print the one-line error the contract promises; return exit code 2."""
    text = " ".join(str(message).split())  # one line, whatever the exception said
    print(f"{prog}: error: {text}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return EXIT_USAGE
    if args[0] in ("-h", "--help"):
        print(usage())
        return EXIT_OK
    if args[0] == "--version":
        from graphstorm_provider import __version__

        print(f"{PROG} {__version__}")
        return EXIT_OK
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        meant = closest(name, SUBCOMMANDS)
        hint = f" (did you mean {meant!r}?)" if meant else ""
        return error(f"unknown command {name!r}{hint}; choose from {', '.join(SUBCOMMANDS)}.")
    target, _ = SUBCOMMANDS[name]
    module_name, _, function_name = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError):
        return error(f"the {name!r} command is not available in this installation ({target} is missing).")
    try:
        return int(function(rest) or EXIT_OK)
    except ValueError as err:  # JobSpecError and friends: the user's input, not a bug
        return error(str(err), f"{PROG} {name}")
    except KeyboardInterrupt:
        print(f"{PROG} {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into e.g. `head`, which exited: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
