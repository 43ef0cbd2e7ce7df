"""
The trigger a deferred GraphStorm task waits in: ``SageMakerTrigger`` plus "kill means stop".

It is the Amazon provider's ``SageMakerTrigger`` with an ``on_kill``.

When a user fails, clears or marks a deferred task, Airflow 3's triggerer cancels its trigger
(``asyncio.CancelledError`` with its user-action message) and awaits the trigger's ``on_kill``
(bounded by ``[triggerer] on_kill_timeout``); it does not call it on a triggerer restart, a
redistribution, a trigger timeout or a normal end. ``SageMakerTrigger`` has no ``on_kill``, so its
job would keep running with nobody watching; this one stops it through the one SageMaker
backend (``execution/sagemaker.py``) over its hook's client (the same AWS connection and botocore
config as the wait), in a thread off the event loop. A stop that fails raises
``SageMakerStopFailed`` (the triggerer logs it) after logging the ``aws sagemaker stop-...``
command. The next attempt of the task then finds the job stopping or stopped by its name and
launches ``<name>-a2`` (``SageMakerBackend.start``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

from graphstorm_provider.execution.sagemaker import SageMakerBackend

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobKind


class GraphStormSageMakerTrigger(SageMakerTrigger):
    """
    ``SageMakerTrigger`` whose ``on_kill`` stops the training or processing job it waits on.

    Same parameters (and serialization) as ``SageMakerTrigger``; ``job_type`` is ``"Training"``
    or ``"Processing"``.
    """

    async def on_kill(self) -> None:
        kind: JobKind = "training" if self.job_type.lower() == "training" else "processing"
        # The one SageMaker backend stops it, over the client of the trigger's own hook (same AWS
        # connection and botocore config as the wait); its calls block, so they run in a thread,
        # off the triggerer's event loop. A failed stop raises SageMakerStopFailed (logged first).
        backend = SageMakerBackend(self.hook().conn)
        if await asyncio.to_thread(backend.stop, kind, self.job_name, self.region_name):
            self.log.info("The task was killed while deferred: stop requested for SageMaker job %s.", self.job_name)
