"""What the four GraphStorm operators share: spec building at task start, backend dispatch, kill.

An operator keeps its parameters as plain attributes named like the seed's CLI flags (so Airflow
can template them), turns them into the step's job spec when the task starts (after templating,
before any request), and hands the rendered :class:`JobRequest` to a backend:

* ``instance_type="local"``, one instance: ``execution.local.LocalJobRunner`` (this machine);
* ``instance_type="local"``, several instances: the compose runner (hosts ``algo-1..N``);
* anything else: SageMaker through the Amazon provider's ``SageMakerHook`` (waiting, CloudWatch
  log streaming, deferral with ``SageMakerTrigger``, the AWS connection all come from there).

Module level imports only ``airflow.sdk``: boto3, the Amazon provider and the job specs are
imported inside ``execute`` so DAG files that use these operators parse fast.
"""

from __future__ import annotations

import datetime
import importlib
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf

if TYPE_CHECKING:
    from airflow.sdk import Context

    from graphstorm_provider.jobs.request import JobRequest

# Fields every step shares, templated because they are names/URIs a DAG computes.
COMMON_TEMPLATE_FIELDS: tuple[str, ...] = (
    "image_url",
    "role",
    "instance_type",
    "instance_count",
    "region",
    "task_name",
    "sm_estimator_parameters",
    "graphstorm_args",
    "log_level",
)
# Spec fields stored under another attribute name because BaseOperator already uses the name
# (``task_type`` is BaseOperator's read-only class-name property).
SPEC_ATTRIBUTE_ALIASES: dict[str, str] = {"task_type": "gs_task_type"}


class GraphStormBaseOperator(BaseOperator):
    """
    Base class of the GraphStorm step operators. Not used directly.

    Parameters shared by every step (the seed's common flags, in snake_case):

    :param image_url: URI of the GraphStorm SageMaker image on ECR (templated).
    :param role: ARN of the SageMaker execution role the job runs as (templated).
    :param instance_type: SageMaker instance type, or ``"local"`` to run on this machine
        (templated).
    :param instance_count: Number of instances (hosts) of the job (templated).
    :param region: AWS region the job runs in (templated). Default: the ``region_name`` of the AWS
        connection, else ``us-west-2`` (the seed's default).
    :param task_name: Prefix of the job name; a timestamp is appended so retries never collide
        (templated).
    :param sm_estimator_parameters: Extra SageMaker Estimator/Processor arguments, either the
        seed's ``"max_run=3600 volume_size=100"`` string or a dict (templated).
    :param graphstorm_args: Arguments forwarded verbatim to GraphStorm, as a list of strings or
        one string split like a shell would (``"--num-layers 1 --hidden-size 128"``) (templated).
    :param log_level: Log level of the entry point inside the job (templated).
    :param async_execution: The seed's ``--async-execution``: start the job and succeed at once.
        Same as ``wait_for_completion=False``.
    :param aws_conn_id: The Airflow connection used for AWS credentials and, when its extra has
        ``endpoint_url``, the endpoint. If this is ``None`` or empty the default boto3 behaviour
        is used. Local runs get the connection's credentials as ``AWS_*`` environment variables.
    :param wait_for_completion: Whether to wait for the job to end. If ``False`` the task
        succeeds as soon as the job is created.
    :param print_log: Whether to stream the training job's CloudWatch logs into the task log
        while waiting (training jobs only; processing jobs report their status).
    :param check_interval: Seconds between status checks while waiting.
    :param max_ingestion_time: If set, the task fails - and stops the job - when the job runs
        longer than this many seconds. ``None`` means no limit.
    :param deferrable: Wait in the triggerer (``SageMakerTrigger``) instead of a worker slot.
        Only effective with ``wait_for_completion=True``.
    :param waiter_max_attempts: In deferrable mode, how many status checks before giving up (the
        task then fails and stops the job). A ``max_ingestion_time`` in deferrable mode becomes the
        deferral timeout: the task fails, but the job is not stopped (Airflow does not tell the
        operator which job timed out).
    :return: ``{"job_name": ..., <output name>: <URI>, ...}``, e.g. ``model_artifact_s3`` for
        training. Each key is also pushed as its own XCom (``multiple_outputs=True`` by
        default), so ``train.output["model_artifact_s3"]`` can feed the inference operator.
    """

    # Subclasses name their spec; imported lazily (see module docstring).
    spec_module: ClassVar[str]
    spec_class_name: ClassVar[str]
    template_fields: Sequence[str] = COMMON_TEMPLATE_FIELDS
    ui_color = "#d5e8f7"

    def __init__(
        self,
        *,
        image_url: str | None = None,
        role: str | None = None,
        instance_type: str | None = None,
        instance_count: int | str | None = None,
        region: str | None = None,
        task_name: str | None = None,
        sm_estimator_parameters: str | dict[str, Any] | None = None,
        graphstorm_args: Sequence[str] | str = (),
        log_level: str | None = None,
        async_execution: bool = False,
        aws_conn_id: str | None = "aws_default",
        wait_for_completion: bool = True,
        print_log: bool = True,
        check_interval: int = 30,
        max_ingestion_time: int | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        waiter_max_attempts: int = 480,
        **kwargs: Any,
    ) -> None:
        # Each output is also its own XCom, so ``train.output["model_artifact_s3"]`` resolves.
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.image_url = image_url
        self.role = role
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.region = region
        self.task_name = task_name
        self.sm_estimator_parameters = sm_estimator_parameters
        # Kept as given (string or list) so templates render; split into argv at task start.
        self.graphstorm_args = graphstorm_args
        self.log_level = log_level
        self.async_execution = async_execution
        self.aws_conn_id = aws_conn_id
        self.wait_for_completion = wait_for_completion
        self.print_log = print_log
        self.check_interval = check_interval
        self.max_ingestion_time = max_ingestion_time
        self.deferrable = deferrable
        self.waiter_max_attempts = waiter_max_attempts
        self._job: JobRequest | None = None
        self._sagemaker_client: Any = None
        self._runner: Any = None

    # ------------------------------------------------------------------ spec
    @classmethod
    def spec_class(cls) -> type:
        return getattr(importlib.import_module(cls.spec_module), cls.spec_class_name)

    def spec_kwargs(self) -> dict[str, Any]:
        """The spec's keyword arguments from this operator's (rendered) attributes.

        Parameters left at ``None`` are omitted so the spec's own defaults apply (the seed's).
        """
        kwargs: dict[str, Any] = {}
        for spec_field in fields(self.spec_class()):
            name = spec_field.name
            if name == "async_execution":
                kwargs[name] = bool(self.async_execution) or not self.wait_for_completion
                continue
            attribute = SPEC_ATTRIBUTE_ALIASES.get(name, name)
            if not hasattr(self, attribute):
                continue
            value = getattr(self, attribute)
            if value is None:
                continue
            kwargs[name] = value
        return kwargs

    def build_job(self, job_name: str | None = None) -> JobRequest:
        """Validate the (rendered) parameters and render the request; raises ``JobSpecError``.

        ``job_name`` defaults to ``task_name`` (or the step's default) plus a UTC timestamp.
        """
        kwargs = self.spec_kwargs()
        if "region" not in kwargs and (region := self._connection_region()):
            kwargs["region"] = region
        return self.spec_class()(**kwargs).build(job_name)

    def _connection_region(self) -> str | None:
        """``region_name`` of the AWS connection's extra, if the connection exists and has one."""
        if not self.aws_conn_id:
            return None
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        try:
            return AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="sagemaker").conn_config.region_name
        except Exception:  # noqa: BLE001 - no such connection: the spec's default region applies
            return None

    @property
    def waits(self) -> bool:
        return self.wait_for_completion and not self.async_execution

    # ------------------------------------------------------------------ execute
    def execute(self, context: Context) -> dict[str, str]:
        job = self.build_job()
        self._job = job
        self.log.info("GraphStorm %s job %s (%s x %s).", job.step, job.job_name, job.instance_count,
                      job.instance_type)
        if job.is_local:
            self._run_local(job)
        else:
            self._run_sagemaker(job)
        return job.xcom_value()

    def _run_local(self, job: JobRequest) -> None:
        from graphstorm_provider.execution.runners import make_local_runner

        self._runner = make_local_runner(
            job, extra_env=self._connection_env(job), log=lambda line: self.log.info("%s", line)
        )
        if not self.waits:
            self.log.info("wait_for_completion=False has no effect on a local run: it runs here, to the end.")
        self._runner.run()

    def _connection_env(self, job: JobRequest) -> dict[str, str]:
        """The job's region plus the Airflow connection's ``AWS_*`` variables (see ``connection_env``)."""
        from graphstorm_provider.operators.connection import connection_env

        return {"AWS_REGION": job.region, "AWS_DEFAULT_REGION": job.region,
                **connection_env(self.aws_conn_id, job.region)}

    def _run_sagemaker(self, job: JobRequest) -> None:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        from graphstorm_provider.execution import sagemaker as sm

        hook = SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=job.region)
        self._sagemaker_client = hook.conn
        defer = self.deferrable and self.waits
        hook_waits = self.waits and not defer
        self.log.info("Creating SageMaker %s job %s.", job.kind, job.job_name)
        try:
            if job.kind == "training":
                hook.create_training_job(
                    job.request,
                    wait_for_completion=hook_waits,
                    print_log=self.print_log and hook_waits,
                    check_interval=self.check_interval,
                    max_ingestion_time=self.max_ingestion_time,
                )
            else:
                hook.create_processing_job(
                    job.request,
                    wait_for_completion=hook_waits,
                    check_interval=self.check_interval,
                    max_ingestion_time=self.max_ingestion_time,
                )
            if hook_waits:
                # The hook's processing-job wait treats "Stopped" as done; a stopped job did not
                # write its outputs, so the task must fail.
                final = sm.job_status(hook.conn, job.kind, job.job_name)
                if final.status != sm.SUCCESS_STATE:
                    raise sm.SageMakerJobFailed(job.job_name, final.status, final.failure_reason)
        except Exception:
            # Whatever ended the wait (timeout, job failure, API error), do not leave a job
            # billing that nobody waits for. A job that already ended is left alone.
            if self._job_created(hook, job):
                sm.stop_job(hook.conn, job.kind, job.job_name)
            raise
        if not self.waits:
            self.log.info("Not waiting for SageMaker job %s.", job.job_name)
        if defer:
            self._defer(job)
        self._sagemaker_client = None

    @staticmethod
    def _job_created(hook: Any, job: JobRequest) -> bool:
        from graphstorm_provider.execution import sagemaker as sm

        try:
            sm.describe_job(hook.conn, job.kind, job.job_name)
        except Exception:  # noqa: BLE001 - not found (or unreachable): nothing we can stop
            return False
        return True

    def _defer(self, job: JobRequest) -> None:
        from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

        from graphstorm_provider.execution.sagemaker import job_type

        timeout = self.execution_timeout
        if self.max_ingestion_time:
            timeout = datetime.timedelta(seconds=self.max_ingestion_time)
        # Always defer, even if the job already ended: the trigger's first check returns at
        # once, and there is a single code path for the result.
        self.defer(
            trigger=SageMakerTrigger(
                job_name=job.job_name,
                job_type=job_type(job.kind),
                waiter_delay=self.check_interval,
                waiter_max_attempts=self.waiter_max_attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=job.region,
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, str]:
        """Resume after deferral: fail unless the trigger reports success; return the XCom value.

        The outputs are rendered again from the (re-rendered, hence identical) parameters under
        the job's name, rather than carried through the deferral: ``dag.test()`` drops a
        deferral's kwargs, the triggerer keeps them, this works with both.
        """
        from airflow.providers.common.compat.sdk import AirflowException

        if not event or event.get("status") != "success":
            if event and event.get("status") == "timeout" and event.get("job_name"):
                # The trigger gave up waiting (waiter_max_attempts); nobody will wait any more.
                self._stop_abandoned_job(event["job_name"])
            raise AirflowException(f"SageMaker job did not complete: {event}")
        self.log.info("SageMaker job %s completed.", event["job_name"])
        return self.build_job(job_name=event["job_name"]).xcom_value()

    def _stop_abandoned_job(self, job_name: str) -> None:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        from graphstorm_provider.execution.sagemaker import stop_job

        job = self.build_job(job_name=job_name)
        hook = SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=job.region)
        stop_job(hook.conn, job.kind, job_name)

    # ------------------------------------------------------------------ kill
    def on_kill(self) -> None:
        """Stop what this task started: the SageMaker job, or the local run.

        The Amazon provider's SageMaker operators leave the job running when the task is
        killed; a killed GraphStorm task stops its job.
        """
        if self._runner is not None:
            self.log.info("Stopping local run of %s.", self._job.job_name if self._job else "job")
            self._runner.stop()
        elif self._job is not None and self._sagemaker_client is not None:
            from graphstorm_provider.execution.sagemaker import stop_job

            stop_job(self._sagemaker_client, self._job.kind, self._job.job_name)

