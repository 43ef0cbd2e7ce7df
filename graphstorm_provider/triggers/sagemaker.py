"""
The trigger a deferred GraphStorm task waits in: ``SageMakerTrigger`` plus "kill means stop".

It is the Amazon provider's ``SageMakerTrigger`` with an ``on_kill``.

When a user fails, clears or marks a deferred task, Airflow 3's triggerer cancels its trigger
(``asyncio.CancelledError`` with its user-action message) and awaits the trigger's ``on_kill``
(bounded by ``[triggerer] on_kill_timeout``); it does not call it on a triggerer restart, a
redistribution, a trigger timeout or a normal end. ``SageMakerTrigger`` has no ``on_kill``, so its
job would keep running with nobody watching; this one stops it through the hook's aiobotocore
client (the same AWS connection and botocore config as the wait). A stop that fails raises
``SageMakerStopFailed`` (the triggerer logs it) after logging the ``aws sagemaker stop-...``
command. The next attempt of the task then finds the job stopping or stopped by its name and
launches ``<name>-a2`` (``SageMakerBackend.start``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

from graphstorm_provider.execution.sagemaker import NON_TERMINAL_STATES, SageMakerStopFailed, kind_stop_command

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobKind

log = logging.getLogger(__name__)


class GraphStormSageMakerTrigger(SageMakerTrigger):
    """
    ``SageMakerTrigger`` whose ``on_kill`` stops the training or processing job it waits on.

    Same parameters (and serialization) as ``SageMakerTrigger``; ``job_type`` is ``"Training"``
    or ``"Processing"``.
    """

    async def on_kill(self) -> None:
        training = self.job_type.lower() == "training"
        kind: JobKind = "training" if training else "processing"
        command = kind_stop_command(kind, self.job_name, self.region_name)
        try:
            hook = self.hook()
            async with await hook.get_async_conn() as client:  # type: ignore[no-untyped-call]
                if training:
                    described = await client.describe_training_job(TrainingJobName=self.job_name)
                    status = described["TrainingJobStatus"]
                else:
                    described = await client.describe_processing_job(ProcessingJobName=self.job_name)
                    status = described["ProcessingJobStatus"]
                if status not in NON_TERMINAL_STATES or status == "Stopping":
                    self.log.info("SageMaker job %s is %s; nothing to stop.", self.job_name, status)
                    return
                if training:
                    await client.stop_training_job(TrainingJobName=self.job_name)
                else:
                    await client.stop_processing_job(ProcessingJobName=self.job_name)
        except Exception as err:
            failure = SageMakerStopFailed(self.job_name, command, err)
            self.log.error("%s", failure)
            raise failure from err
        self.log.info("The task was killed while deferred: stop requested for SageMaker job %s.", self.job_name)
