"""Logging for the entry points: one format, the host name in every line."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL")


class _StreamHandler(logging.StreamHandler[TextIO]):
    """
    A stream handler that lets the stop signal through.

    The SIGTERM handler raises to unwind the entry point; if the signal lands while a record is
    being written, logging's ``handleError`` would print and swallow that exception.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        from gsentry.errors import EntryError

        error = sys.exc_info()[1]
        if isinstance(error, EntryError):
            raise error
        super().handleError(record)


def setup_logging(level: str, host: str) -> None:
    handler = _StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"{host} %(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
    # boto's own debug output would drown GraphStorm's.
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
