"""The compose backend logs through an Airflow operator's logger (no containers started).

Airflow 3's ``operator.log`` is a structlog proxy: not a ``logging.Logger``, and not callable.
``make_local_runner`` must still route each container line through its ``log(level, ...)``
(each line at its own level); before the fix it handed the proxy on as a line callback and the
first line of every multi-host operator run raised ``TypeError: 'BoundLoggerLazyProxy' object is
not callable``.
"""

from __future__ import annotations

import logging

from graphstorm_provider.execution.runners import make_local_runner
from tests.test_compose_runner import probe_job


class RecordingLogger:
    """A logger with the stdlib ``log(level, msg, *args)`` method that is neither a Logger nor callable."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def log(self, level: int, msg: str, *args: object) -> None:
        self.records.append((level, msg % args))

    def info(self, msg: str, *args: object) -> None:
        self.log(logging.INFO, msg, *args)


def test_an_airflow_operator_logger_receives_every_compose_line(tmp_path):
    from airflow.sdk import BaseOperator

    job = probe_job("graphstorm:unused", tmp_path / "out", "gs-log-probe")
    operator_log = BaseOperator(task_id="probe").log
    assert not callable(operator_log)
    assert not isinstance(operator_log, logging.Logger)
    runner = make_local_runner(job, extra_env={}, log=operator_log)
    runner._emit("[algo-1] a line from a host")  # raised TypeError before the fix


def test_each_compose_line_is_logged_at_its_level(tmp_path):
    job = probe_job("graphstorm:unused", tmp_path / "out", "gs-log-levels")
    logger = RecordingLogger()
    runner = make_local_runner(job, extra_env={}, log=logger)
    runner._emit("[algo-1] plain progress")
    runner._emit("[algo-2] Traceback (most recent call last):")
    levels = [level for level, _ in logger.records]
    assert [text for _, text in logger.records] == [
        "[algo-1] plain progress",
        "[algo-2] Traceback (most recent call last):",
    ]
    assert levels[0] == logging.INFO
    assert levels[1] > logging.INFO
