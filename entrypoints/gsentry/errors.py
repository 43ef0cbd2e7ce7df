"""Errors the entry points report as one clear message and a non-zero exit code."""

from __future__ import annotations


class EntryError(Exception):
    """A failure the entry point reports without a traceback (bad flag, missing input, ...)."""


class InputError(EntryError, ValueError):
    """A bad flag or environment value; the message names the parameter."""


class GraphStormError(EntryError):
    """A GraphStorm child process failed; carries its exit code and the tail of its output."""

    def __init__(self, what: str, returncode: int, tail: list[str]):
        self.what = what
        self.returncode = returncode
        self.tail = list(tail)
        headline = next((line.strip() for line in self.tail if line.strip()), "no output")
        details = "\n".join(self.tail[1:])
        super().__init__(f"{what} failed (exit code {returncode}): {headline}" + (f"\n{details}" if details else ""))


class PeerError(EntryError):
    """Another host of the job failed, died, or never arrived."""

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"host {host}: {reason}")
