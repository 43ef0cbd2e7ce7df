"""
The task's logger as the backends are handed it for a job's output, with a follow-up hook.

:class:`JobLog` works both ways the backends log job output: called with one line (the SageMaker
backend's CloudWatch tail, the compose runner) it logs the line at INFO; used as a logger
(``.log(level, msg, *args)``, ``.info(...)``, ..., as the local runner and leveled runners do) it
passes each record on unchanged. Either way, after each message it asks ``follow(text)`` for one
more line to log at INFO - the train operator's readable epoch summary (``operators/metrics.py``).
It is a ``logging.LoggerAdapter``, so runners that pick levels for ``Logger``/``LoggerAdapter``
objects keep doing so; the wrapped logger may be Airflow's structlog logger (``operator.log``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any


class JobLog(logging.LoggerAdapter[Any]):
    """
    ``logger`` plus ``follow``: see the module docstring.

    :param logger: what the records go to (``operator.log``).
    :param follow: given each message's text, returns a line to log after it, or ``None``.
    """

    def __init__(self, logger: Any, follow: Callable[[str], str | None] | None = None) -> None:
        super().__init__(logger, {})
        self._follow = follow

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        self.logger.log(level, msg, *args)
        if self._follow is None:
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            return
        extra_line = self._follow(text)
        if extra_line is not None:
            self.logger.log(logging.INFO, "%s", extra_line)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args)

    def __call__(self, line: str) -> None:
        """Log one job output line at INFO (the ``log(line)`` form)."""
        self.log(logging.INFO, "%s", line)
