"""
Deterministic, re-attachable job names for tasks.

A task's job name must be the same in every attempt of that task instance, so a retry (after a
worker died, a task was cleared, ...) can find the job it started by name and re-attach instead
of launching a second one. It derives from what identifies the task instance - ``(dag_id,
task_id, run_id, map_index)``, never the try number - as ``<readable prefix>-<stable hash>``; the
prefix is ``task_name`` (or the step's default) and only there for people reading the console.

When the job under that name ended without its outputs (``Failed``, ``Stopped``), the next one
is ``<name>-a2``, then ``-a3``, ...: :func:`attempt_name`. Room for that suffix is kept inside
SageMaker's 63 characters. Pure functions; no AWS, no Airflow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from graphstorm_provider.jobs import validation as v

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

# Hex characters of the sha256 of the task instance identity (32 bits: collisions between the
# task instances that share one readable prefix are negligible).
HASH_CHARS = 8
# Highest attempt suffix a name may get (``-a99``); SageMaker's budget keeps room for it.
MAX_JOB_ATTEMPTS = 99
_SUFFIX_ROOM = len(f"-a{MAX_JOB_ATTEMPTS}")
_NOT_NAME_CHARS = re.compile(r"[^a-zA-Z0-9-]+")
FALLBACK_PREFIX = "graphstorm"


@dataclasses.dataclass(frozen=True)
class TaskIdentity:
    """What identifies one task instance, the same in each of its attempts."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1

    def digest(self) -> str:
        text = json.dumps([self.dag_id, self.task_id, self.run_id, int(self.map_index)])
        return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def task_identity(context: Any) -> TaskIdentity | None:
    """
    Return the identity of the running task instance from an Airflow context (``context["ti"]``).

    ``None`` when there is none (an operator executed by hand).
    """
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is None or not getattr(ti, "run_id", None):
        return None
    map_index = getattr(ti, "map_index", -1)
    return TaskIdentity(
        dag_id=str(ti.dag_id),
        task_id=str(ti.task_id),
        run_id=str(ti.run_id),
        map_index=-1 if map_index is None else int(map_index),
    )


def task_job_name(prefix: str, identity: TaskIdentity) -> str:
    """``<prefix>-<hash of the task instance>``, a valid SageMaker name with room for ``-a99``."""
    digest = identity.digest()
    clean = _NOT_NAME_CHARS.sub("-", prefix).strip("-")
    clean = clean[: v.JOB_NAME_MAX - _SUFFIX_ROOM - len(digest) - 1].strip("-") or FALLBACK_PREFIX
    return f"{clean}-{digest}"


def job_name_for(prefix: str, context: Any) -> str | None:
    """Return the task instance's job name under ``prefix`` (:func:`task_job_name`); ``None`` without one in ``context``."""
    identity = task_identity(context) if context is not None else None
    return None if identity is None else task_job_name(prefix, identity)


def attempt_name(base: str, attempt: int) -> str:
    """Return the job name of the ``attempt``-th job under ``base``: ``base``, ``base-a2``, ``base-a3``..."""
    if not 1 <= attempt <= MAX_JOB_ATTEMPTS:
        raise ValueError(f"attempt must be between 1 and {MAX_JOB_ATTEMPTS}, got {attempt}")
    if attempt == 1:
        return base
    suffix = f"-a{attempt}"
    return base[: v.JOB_NAME_MAX - len(suffix)].rstrip("-") + suffix


def is_attempt_of(name: str, base: str) -> bool:
    """Whether ``name`` is one of the attempts under ``base`` (``base``, ``base-a2``, ...: :func:`attempt_name`)."""
    return any(name == attempt_name(base, attempt) for attempt in range(1, MAX_JOB_ATTEMPTS + 1))


def renamed(job: JobRequest, name: str) -> JobRequest:
    """Return the same request under another job name (the name appears nowhere else in a request)."""
    key = "TrainingJobName" if job.kind == "training" else "ProcessingJobName"
    return dataclasses.replace(job, request={**job.request, key: v.job_name("job_name", name)})
