"""Which local backend runs an ``instance_type="local"`` job (shared by the operators and the CLI)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest


def make_local_runner(job: JobRequest, *, extra_env: Mapping[str, str], log: Callable[[str], None]) -> Any:
    """One host: the local backend (a process here); several: the compose backend (algo-1..N).

    ``extra_env`` is what the caller adds to the job's environment (the Airflow connection's
    ``AWS_*`` values); each backend takes the rest of the environment its own way (the local
    backend inherits a safe subset of ``os.environ``, the compose backend hands the variables it
    needs to the compose process by name). Both runners have ``run()`` (raises when the job
    fails) and ``stop()`` (safe from another thread). Imported lazily: neither is needed to
    parse a DAG or to launch on SageMaker.
    """
    if job.instance_count == 1:
        from graphstorm_provider.execution.local import LocalJobRunner

        return LocalJobRunner(job, env=dict(extra_env), log=log)
    try:
        from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    except ImportError:  # the compose backend's module layout may still move
        from graphstorm_provider.execution.compose import ComposeJobRunner  # type: ignore[attr-defined,no-redef]
    return ComposeJobRunner(job, env={**os.environ, **extra_env}, log=log)
