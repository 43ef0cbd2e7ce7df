"""
Which local backend runs an ``instance_type="local"`` job (shared by the operators and the CLI).

Also :class:`JobRunner`, what every run-here backend implements.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from graphstorm_provider.execution.compose import ComposeOptions
    from graphstorm_provider.jobs.request import JobRequest


class JobRunner(Protocol):
    """
    One job run on this machine: ``LocalJobRunner`` (one host) or ``ComposeJobRunner`` (N hosts).

    ``run()`` runs the job to its end and raises when it fails (what it returns on success is the
    backend's own result object; callers need not look at it). ``stop()`` ends the run and is safe
    from another thread or a signal handler (the operators' ``on_kill``).
    """

    def run(self) -> object: ...

    def stop(self) -> None: ...


def make_local_runner(
    job: JobRequest,
    *,
    extra_env: Mapping[str, str],
    log: Callable[[str], None] | logging.Logger | logging.LoggerAdapter[Any],
    compose_command: str | None = None,
    compose_options: ComposeOptions | None = None,
    timeout_s: float | None = None,
    timeout_name: str = "timeout_s",
) -> JobRunner:
    """
    One host: the local backend (a process here); several: the compose backend (algo-1..N).

    ``extra_env`` is what the caller adds to the job's environment (the Airflow connection's
    ``AWS_*`` values); each backend takes the rest of the environment its own way (the local
    backend inherits a safe subset of ``os.environ``, the compose backend hands the variables it
    needs to the compose process by name). ``compose_command`` and ``compose_options`` apply to
    the compose backend only. ``timeout_s`` bounds the run on both: the compose backend takes it
    instead of ``StoppingCondition.MaxRuntimeInSeconds``, the local backend besides it (the sooner
    ends the run; its error names the limit, ``timeout_name``). Imported lazily: neither backend
    is needed to parse a DAG or to launch on SageMaker.
    """
    if job.instance_count == 1:
        from graphstorm_provider.execution.local import LocalJobRunner

        return LocalJobRunner(job, env=dict(extra_env), log=log, timeout_s=timeout_s, timeout_name=timeout_name)
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    from graphstorm_provider.execution.local import with_caller_credentials

    emit = cast("Callable[[str], None]", log)
    # A logger (stdlib, adapter, or Airflow 3's structlog ``operator.log``, which is neither a
    # logging.Logger nor callable): each container line at its level, as the local backend does.
    if hasattr(log, "log"):
        from graphstorm_provider.execution.log_levels import PerHostLevels

        levels = PerHostLevels()
        logger = log

        def emit(line: str) -> None:
            logger.log(levels.level(line), "%s", line)

    return ComposeJobRunner(
        job,
        env=with_caller_credentials(os.environ, extra_env),  # the connection's credentials as a whole
        log=emit,
        compose_command=compose_command,
        options=compose_options,
        timeout_s=timeout_s,
    )
