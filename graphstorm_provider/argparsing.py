"""
The one argparse subclass of the provider's command lines: errors raise, never exit.

Also what tells a mistyped flag of ours from a GraphStorm flag to forward (:func:`mistyped_flag`).

``gs-sagemaker <step>``, ``gs-sagemaker compose`` and ``gs-sagemaker synthetic-acm`` each pass the
exception their errors become; the command prints it as one line (exit code 2), with no usage dump
and no traceback.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any, NoReturn


class RaisingArgumentParser(argparse.ArgumentParser):
    """
    argparse whose ``error`` raises ``error_type(message)`` instead of printing usage and exiting.

    :param error_type: builds the exception from argparse's message (e.g. ``JobSpecError``).
    """

    def __init__(self, *args: Any, error_type: Callable[[str], Exception] = ValueError, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_type = error_type

    def error(self, message: str) -> NoReturn:
        raise self.error_type(message)


# gs-sagemaker's flag that prints the request and sends nothing (GraphStorm has no such flag).
DRY_RUN_FLAG = "--dry-run"

# How close (difflib's ratio) an unknown --flag must be to one of ours to be taken for a typo of it.
# At 0.88 no option of GraphStorm's own parsers is (tests/test_cli_forwarding.py checks every one):
# the closest, --logging-level against our --log-level, is 0.85.
FLAG_TYPO_CUTOFF = 0.88
# An unknown flag that begins several of ours is taken for an abbreviation of them up to this many.
MAX_ABBREVIATED_FLAGS = 3


def long_options(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--flag`` ``parser`` takes (argparse keeps no public list of them)."""
    return [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]


def spelled_as_flag(name: str) -> str:
    """``name`` (a ``--flag``) in our spelling: lower case, words joined by dashes (``--dryRun`` -> ``--dry-run``)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name[2:]).replace("_", "-")
    return "--" + words.lower()


def mistyped_flag(arg: str, known: Iterable[str]) -> str | None:
    """
    Return the flag of ``known`` that ``arg`` (an unknown ``--flag``, maybe ``--flag=value``) is a typo of.

    A typo is: the flag in another case or with underscores (``--DRY-RUN``, ``--dry_run``,
    ``--dryRun``); an abbreviation of one of them (``--sm`` for ``--sm-estimator-parameters``, which
    GraphStorm's argparse-based launch scripts would take as that flag; of a few, they are all
    returned, joined by " or "); two neighbouring letters swapped (``--regoin``); or a close spelling.
    None when it is no flag or close to none of them (then it is someone else's: GraphStorm's).
    """
    name = arg.partition("=")[0]
    if not name.startswith("--") or len(name) <= 2:
        return None
    candidates = list(known)
    spelled = spelled_as_flag(name)
    if spelled != name and spelled in candidates:
        return spelled
    longer = sorted({flag for flag in candidates if flag.startswith(spelled) and flag != spelled})
    if 1 <= len(longer) <= MAX_ABBREVIATED_FLAGS:
        return " or ".join(longer)
    swapped = [flag for flag in candidates if _one_swap_apart(spelled, flag)]
    if swapped:
        return swapped[0]
    close = difflib.get_close_matches(spelled, candidates, n=1, cutoff=FLAG_TYPO_CUTOFF)
    return close[0] if close else None


def _one_swap_apart(typed: str, flag: str) -> bool:
    """Whether ``typed`` is ``flag`` with two neighbouring letters swapped (``--regoin``, ``--rloe``)."""
    if len(typed) != len(flag) or typed == flag:
        return False
    diff = [i for i, (a, b) in enumerate(zip(typed, flag, strict=True)) if a != b]
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and typed[diff[0]] == flag[diff[1]]
        and typed[diff[1]] == flag[diff[0]]
    )


# How close (difflib's ratio) a mistyped value, command or run-conf key must be to a valid one to be suggested.
SUGGESTION_CUTOFF = 0.7


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate ``word`` most likely is a typo of, or None."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=SUGGESTION_CUTOFF)
    return close[0] if close else None
