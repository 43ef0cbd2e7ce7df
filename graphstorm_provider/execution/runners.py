"""Which local backend runs a ``instance_type="local"`` job (shared by the operators and the CLI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest


def local_runner_class(job: JobRequest) -> type:
    """One host: the local backend (a process here); several: the compose backend (algo-1..N).

    Both take ``(job, *, env=<full process environment>, log=<callable taking one line>)`` and
    have ``run()`` (raises when the job fails) and ``stop()`` (safe from another thread).
    Imported lazily: neither is needed to parse a DAG or to launch on SageMaker.
    """
    if job.instance_count == 1:
        from graphstorm_provider.execution.local import LocalJobRunner

        return LocalJobRunner
    try:
        from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    except ImportError:  # the compose backend's module layout may still move
        from graphstorm_provider.execution.compose import ComposeJobRunner  # type: ignore[attr-defined,no-redef]
    return ComposeJobRunner
