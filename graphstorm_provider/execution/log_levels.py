"""
The log level of a job's output line: stdout at INFO, stderr at WARNING, tracebacks at ERROR.

GraphStorm (and PyTorch, DGL) log through Python's ``logging``, whose default handler writes to
stderr, and the entry points relay GraphStorm's merged output on their stdout as ``[gconstruct] ...``
lines; so the stream alone says little. A line that carries its own level (``INFO:root:...``,
``[INFO] ...``, the entry points' ``algo-1 <date> <time> WARNING ...``, after any ``[name] ``
prefixes) keeps that level; a Python warning (``file.py:12: UserWarning: ...``) is a WARNING; a
Python traceback, from its ``Traceback (most recent call last):`` header through the exception
line that ends it, is an ERROR, whichever stream it came on. Other lines: stdout INFO, stderr WARNING.
"""

from __future__ import annotations

import logging
import re

TRACEBACK_HEADER = "Traceback (most recent call last):"
# Lines between chained tracebacks, still part of the error.
_CHAIN_LINES = ("During handling of the above exception", "The above exception was the direct cause")
_LEVEL_NAMES = "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL"
_RELAY_PREFIX = re.compile(
    rf"^(?:\[(?!(?:{_LEVEL_NAMES})\])[\w.@-]+\] ?)+"
)  # "[gconstruct] " (entry points), "[algo-1] "
_ENTRY_LOG_HEADER = re.compile(r"^algo-\d+ \d{4}-\d\d-\d\d [\d:,.]+ ")  # the entry points' log format
_OWN_LEVEL = re.compile(rf"^\s*\[?({_LEVEL_NAMES})\]?[:\s]")
_PYTHON_WARNING = re.compile(r":\d+: \w*Warning: ")
_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.ERROR,
    "FATAL": logging.ERROR,
}


class LineLevels:
    """Classifies the lines of one stream in order (a traceback spans lines: keep one per stream)."""

    def __init__(self, stderr: bool):
        self.default = logging.WARNING if stderr else logging.INFO
        self._in_traceback = False

    def level(self, line: str) -> int:
        line = _ENTRY_LOG_HEADER.sub("", _RELAY_PREFIX.sub("", line))
        if TRACEBACK_HEADER in line:
            self._in_traceback = True
            return logging.ERROR
        if self._in_traceback:
            # Frames are indented; chain markers and blank lines keep the traceback going; the
            # first other line is the exception itself, which ends it.
            stripped = line.strip()
            if line[:1].isspace() or not stripped or stripped.startswith(_CHAIN_LINES):
                return logging.ERROR
            self._in_traceback = False
            return logging.ERROR
        own = _OWN_LEVEL.match(line)
        if own:
            return _LEVELS[own.group(1)]
        if _PYTHON_WARNING.search(line):
            return logging.WARNING
        return self.default


class PerHostLevels:
    """
    Levels of ``[algo-N] ...`` lines of several hosts in one stream (the compose backend's merged logs).

    One :class:`LineLevels` per host, so hosts' tracebacks do not mix.
    """

    def __init__(self) -> None:
        self._hosts: dict[str, LineLevels] = {}

    def level(self, line: str) -> int:
        host = line.split("] ", 1)[0] if line.startswith("[") else ""
        return self._hosts.setdefault(host, LineLevels(stderr=False)).level(line)
