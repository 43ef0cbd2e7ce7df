"""
What the four GraphStorm operators share: spec building at task start, backend dispatch, kill.

An operator keeps its parameters as plain attributes named like the flags of GraphStorm's SageMaker
launch scripts (so Airflow can template them), turns them into the step's job spec when the task
starts (after templating, before any request), and hands the rendered :class:`JobRequest` to a
backend:

* ``instance_type="local"``, one instance: ``execution.local.LocalJobRunner`` (this machine);
* ``instance_type="local"``, several instances: the compose runner (hosts ``algo-1..N``);
* anything else: the SageMaker backend ``execution.sagemaker.SageMakerBackend`` (create, wait with
  status and CloudWatch log lines, stop), over the boto3 clients of the Amazon provider's
  ``SageMakerHook`` and ``AwsLogsHook`` (which own the AWS connection); deferral uses the
  provider's ``SageMakerTrigger``.

Module level imports only ``airflow.sdk``: boto3, the Amazon provider and the job specs are
imported inside ``execute`` so DAG files that use these operators parse fast.
"""

from __future__ import annotations

import datetime
import importlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf

from graphstorm_provider.operators import assets as _assets
from graphstorm_provider.operators.init_defaults import fills_default_args, init_base_operator, refuse_argument
from graphstorm_provider.operators.links import OPERATOR_LINKS

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from graphstorm_provider.execution.runners import JobRunner
    from graphstorm_provider.execution.sagemaker import SageMakerBackend
    from graphstorm_provider.jobs.common import JobSpec
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
# Upper bound of ``aws_max_attempts`` (attempts per AWS API call; more would defeat the time bound).
MAX_AWS_ATTEMPTS = 20
# Seconds between status checks of a SageMaker job when neither the operator nor
# ``[graphstorm] check_interval`` says.
DEFAULT_CHECK_INTERVAL_S = 30
# Upper bound of ``waiter_max_attempts``: more checks than the longest SageMaker job (28 days)
# needs at one check a second (2.4 million); a larger number is a typo, not a wait.
MAX_WAITER_ATTEMPTS = 10_000_000
# Upper bound of ``max_ingestion_time`` in seconds (30 days): no SageMaker job may run longer
# (``MaxRuntimeInSeconds`` is at most 28 days), and it keeps the deferral's timeout a valid date.
MAX_INGESTION_TIME_S = 30 * 24 * 3600


def _shown(value: object) -> str:
    """``value`` as an error message shows it: its repr (a string in quotes), at most 100 characters."""
    return repr(value)[:100]


def waiter_max_attempts_error(value: object) -> str | None:
    """Return the one sentence that refuses ``value`` as ``waiter_max_attempts``, or ``None`` if it is valid."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_WAITER_ATTEMPTS):
        return None
    return f"waiter_max_attempts must be a whole number from 1 to {MAX_WAITER_ATTEMPTS}, got {_shown(value)}."


def max_ingestion_time_error(value: object) -> str | None:
    """Return the one sentence that refuses ``value`` as ``max_ingestion_time``, or ``None`` if it is valid."""
    if value is None or (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 1 <= value <= MAX_INGESTION_TIME_S
    ):
        return None
    return (
        f"max_ingestion_time must be None (no limit) or a number of seconds from 1 to {MAX_INGESTION_TIME_S}, "
        f"got {_shown(value)}."
    )


def wait_limits_error(waiter_max_attempts: object, max_ingestion_time: object) -> str | None:
    """Return the sentence refusing the first bad one of the two wait limits, or ``None`` if both are valid."""
    return waiter_max_attempts_error(waiter_max_attempts) or max_ingestion_time_error(max_ingestion_time)


def compose_options_error(
    gpus: object, shm_size: object, compose_timeout: object, *, timeout_name: str = "compose_timeout"
) -> str | None:
    """
    Return the sentence refusing the first bad compose option, or ``None`` if all three are valid.

    ``gpus``: a whole number from 0 (a string of digits too: a template renders to ``str``).
    ``shm_size``: a size the compose backend takes (``execution/compose.py``: ``"4gb"``, ``"512m"``),
    never a bare number (compose would read ``4`` as 4 bytes). ``compose_timeout``: ``None`` or a
    positive number of seconds (``int`` or ``float``, as ``max_ingestion_time``), named
    ``timeout_name``. Imports the compose module: called at task start, not when a DAG is parsed.
    """
    if not (
        (isinstance(gpus, int) and not isinstance(gpus, bool) and gpus >= 0)
        or (isinstance(gpus, str) and gpus.strip().isascii() and gpus.strip().isdecimal())
    ):
        return f"gpus must be a whole number from 0 (GPUs per container), got {_shown(gpus)}."
    if isinstance(shm_size, (int, float)) and not isinstance(shm_size, bool):
        return (
            f"shm_size must be a size with a unit such as '4gb' or '512m', got {_shown(shm_size)} "
            "(a bare number would mean bytes)."
        )
    if not isinstance(shm_size, str) or not _compose_takes_shm_size(shm_size):
        return f"shm_size must be a size above 0 with a unit, such as '4gb' or '512m', got {_shown(shm_size)}."
    if compose_timeout is not None and not (
        isinstance(compose_timeout, (int, float))
        and not isinstance(compose_timeout, bool)
        and math.isfinite(compose_timeout)
        and compose_timeout > 0
    ):
        return (
            f"{timeout_name} must be None (the job's max_run) or a positive number of seconds, "
            f"got {_shown(compose_timeout)}."
        )
    return None


def _compose_takes_shm_size(size: str) -> bool:
    """Tell whether the compose backend takes ``size`` as ``shm_size`` (its own rule, ``ComposeOptions``)."""
    from graphstorm_provider.execution.compose import ComposeOptions, ComposeSpecError

    try:
        ComposeOptions(shm_size=size)
    except ComposeSpecError:
        return False
    return True


@fills_default_args  # one default_args pass per task, not one per class (operators/init_defaults.py)
class GraphStormBaseOperator(BaseOperator):
    """
    Base class of the GraphStorm step operators. Not used directly.

    Parameters shared by every step (the common flags of GraphStorm's SageMaker launch scripts, in snake_case):

    :param image_url: URI of the GraphStorm SageMaker image on ECR (templated).
    :param role: ARN of the SageMaker execution role the job runs as (templated).
    :param instance_type: SageMaker instance type, or ``"local"`` to run on this machine
        (templated).
    :param instance_count: Number of instances (hosts) of the job (templated).
    :param region: AWS region the job runs in (templated). Default: the ``region_name`` of the AWS
        connection, else ``us-west-2`` (GraphStorm's default).
    :param task_name: Readable prefix of the job name (templated). The name is
        ``<task_name>-<hash of dag_id, task_id, run_id, map_index>``, the same in every attempt of
        the task instance, so a retry finds the job by name: still running, it re-attaches;
        completed, it takes its outputs without launching; failed or stopped, it launches
        ``<name>-a2`` (then ``-a3``, ...). Default prefix: the step's (``gs-train``, ...).
    :param sm_estimator_parameters: Extra SageMaker Estimator/Processor arguments, either the
        launch scripts' ``"max_run=3600 volume_size=100"`` string or a dict (templated).
    :param graphstorm_args: Arguments forwarded verbatim to GraphStorm, as a list of strings or
        one string split like a shell would (``"--num-layers 1 --hidden-size 128"``) (templated).
    :param log_level: Log level of the entry point inside the job (templated).
    :param async_execution: The launch scripts' ``--async-execution``: start the job and succeed at once.
        Same as ``wait_for_completion=False``.
    :param aws_conn_id: The Airflow connection used for AWS credentials and, when its extra has
        ``endpoint_url``, the endpoint. If this is ``None`` or empty the default boto3 behaviour
        is used. Local runs get the connection's credentials as ``AWS_*`` environment variables.
    :param wait_for_completion: Whether to wait for the job to end. If ``False`` the task
        succeeds as soon as the job is created.
    :param print_log: Whether to stream the job's CloudWatch log lines into the task log while
        waiting (status changes are always logged).
    :param check_interval: Seconds between status checks of a SageMaker job while waiting (in
        the worker, or in the triggerer when deferred), a whole number from 1. Default: the
        Airflow config ``[graphstorm] check_interval``, else 30. Checked at task start: a bad
        value fails the task without retries, naming where it came from.
    :param max_ingestion_time: If set, the task fails - and stops the job - when the job runs
        longer than this many seconds: a number (``int`` or ``float``, not a string) from 1 to
        2592000 (30 days, ``MAX_INGESTION_TIME_S``). ``None`` means no limit. A bad value fails
        when the operator is created (a mapped task: at task start, without retries), naming it.
        A local run (``instance_type="local"``) is bounded by it too (see ``compose_timeout``).
    :param deferrable: Wait in the triggerer (``SageMakerTrigger``) instead of a worker slot.
        Only effective with ``wait_for_completion=True``.
    :param waiter_max_attempts: In deferrable mode, how many status checks before giving up (the
        task then fails and stops the job), a whole number from 1 to 10000000
        (``MAX_WAITER_ATTEMPTS``); a bad value fails when the operator is created (a mapped task:
        at task start, without retries), naming it. Default: enough checks, one per ``check_interval``, to
        cover the job's ``max_run`` (``StoppingCondition``; 24 hours when none is set) plus one hour
        (see ``operators/deferral.py``). A ``max_ingestion_time`` in deferrable mode becomes the
        deferral timeout: the task fails and stops the job, found by the task instance's name
        (:meth:`resume_execution`). The job is checked once before deferring: a job that
        already ended finishes the task without deferring.
    :param aws_max_attempts: Attempts per AWS API call (botocore's adaptive retry mode, for
        throttling, 5xx and connection errors). Default: ``retries.max_attempts`` of the
        connection extra's ``config_kwargs``, else 5. Connect and read timeouts (5 s, 7 s; the
        connection's ``config_kwargs`` may change them) bound how long an unreachable or silent
        endpoint takes to fail: under 60 s by default.
    :param compose_command: With ``instance_type="local"`` and several instances (the compose
        backend): the compose tool, ``"docker compose"``, ``"docker-compose"`` or
        ``"podman-compose"``. Default: ``[graphstorm] compose_command``, else the first found.
    :param gpus: Compose backend: GPUs reserved per container (0: CPU only), a whole number from
        0 (a string of digits too).
    :param shm_size: Compose backend: shared memory of each container, a size such as ``"4gb"``
        or ``"512m"``; a bare number is refused (compose would read it as bytes).
    :param compose_timeout: ``instance_type="local"``: seconds (a positive number) before the
        job is failed and stopped (one host: its process tree ended; several: the compose project
        torn down), the error naming the limit. With ``max_ingestion_time`` too, the sooner
        applies. Default: the job's ``max_run`` (``StoppingCondition``; a one-host run is also
        stopped at its ``max_run`` whatever this says, as SageMaker would), else, for the
        compose backend, 24 hours. ``gpus``, ``shm_size`` and ``compose_timeout`` are checked at
        task start: a bad value fails the task without retries, naming it.
    :param require_input_manifests: Refuse, at task start, an input prefix (the graph for train
        and infer, the model for infer, ``model_checkpoint_to_load``) without a complete
        ``_manifest.json``, failing without retry in one sentence naming the parameter and the
        prefix. ``False`` takes data made outside the pipeline; the entry points then skip their
        own check too (``GSENTRY_ALLOW_UNMANIFESTED_INPUT=1`` in the job's environment). Default:
        the Airflow config ``[graphstorm] require_input_manifests``, else ``True``.
    :param skip_if_complete: The step cache: when every output prefix already holds a complete
        manifest written by a job of an identical request (same request but the job name), the
        task succeeds at once with that job's XCom instead of launching, logged as a cache hit
        naming the job. Default ``False``.
    :return: ``{"job_name": ..., <output name>: <URI>, ...}``, e.g. ``model_artifact_s3`` for
        training. Each key is also pushed as its own XCom (``multiple_outputs=True`` by
        default), so ``train.output["model_artifact_s3"]`` can feed the inference operator.

    Each output is also an Airflow Asset: the operator's outlets include one ``AssetAlias`` per
    kind of output (``graphstorm-graph``, ``graphstorm-partitioned-graph``, ``graphstorm-model``,
    ``graphstorm-embeddings``, ``graphstorm-predictions``; see ``operators/assets.py``) and a
    completed job attaches its output URIs to them. A SageMaker job gets two extra links, its
    console page and its CloudWatch logs (``operators/links.py``); a local run links to nothing.
    """

    # Subclasses name their spec; imported lazily (see module docstring).
    spec_module: ClassVar[str]
    spec_class_name: ClassVar[str]
    template_fields: Sequence[str] = COMMON_TEMPLATE_FIELDS
    ui_color = "#d5e8f7"
    operator_extra_links = OPERATOR_LINKS

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
        check_interval: int | None = None,
        max_ingestion_time: float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        waiter_max_attempts: int | None = None,
        aws_max_attempts: int | None = None,
        compose_command: str | None = None,
        gpus: int = 0,
        shm_size: str = "4gb",
        compose_timeout: float | None = None,
        require_input_manifests: bool | None = None,
        skip_if_complete: bool = False,
        **kwargs: Any,
    ) -> None:
        # Each output is also its own XCom, so ``train.output["model_artifact_s3"]`` resolves.
        kwargs.setdefault("multiple_outputs", True)
        # --- assets: the step's AssetAlias outlets (operators/assets.py)
        step = getattr(type(self), "spec_module", "").rsplit(".", 1)[-1]
        kwargs["outlets"] = _assets.with_step_outlets(step, kwargs.get("outlets"))
        init_base_operator(self, GraphStormBaseOperator, kwargs)  # without a second params copy
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
        self._check_interval_s = DEFAULT_CHECK_INTERVAL_S  # what execute resolves check_interval to
        # Checked here, before any job: after the launch a bad one failed, or gave up at once (and was retried).
        if error := wait_limits_error(waiter_max_attempts, max_ingestion_time):
            refuse_argument(self, error)
        self.max_ingestion_time = max_ingestion_time
        self.deferrable = deferrable
        self.waiter_max_attempts = waiter_max_attempts
        if aws_max_attempts is not None and (
            isinstance(aws_max_attempts, bool)
            or not isinstance(aws_max_attempts, int)
            or not 1 <= aws_max_attempts <= MAX_AWS_ATTEMPTS
        ):
            refuse_argument(
                self,
                f"aws_max_attempts must be a whole number from 1 to {MAX_AWS_ATTEMPTS}, "
                f"got {str(aws_max_attempts)[:100]!r}.",
            )
        self.aws_max_attempts = aws_max_attempts
        self.compose_command = compose_command
        self.gpus = gpus
        self.shm_size = shm_size
        self.compose_timeout = compose_timeout
        self.require_input_manifests = require_input_manifests
        self.skip_if_complete = skip_if_complete
        self._job: JobRequest | None = None
        self._sagemaker: SageMakerBackend | None = None
        self._runner: JobRunner | None = None

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        """
        Render as Airflow does, then register the environment's secret-looking values with the masker.

        Airflow stores the rendered fields (the UI's rendered-template view) right after this, and
        calls this method for a mapped task too (``render_template_fields`` it does not). A number
        under a secret-looking name becomes text first: the masker hides text only.
        """
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self:
            from graphstorm_provider.operators.connection import masked_sm_parameters

            self.sm_estimator_parameters = masked_sm_parameters(self.sm_estimator_parameters)

    # ------------------------------------------------------------------ spec
    @classmethod
    def spec_class(cls) -> type[JobSpec]:
        # A subclass names a JobSpec subclass (spec_module, spec_class_name); getattr cannot say so.
        return cast("type[JobSpec]", getattr(importlib.import_module(cls.spec_module), cls.spec_class_name))

    def spec_kwargs(self) -> dict[str, Any]:
        """
        Return the spec's keyword arguments from this operator's (rendered) attributes.

        Parameters left at ``None`` are omitted so the spec's own defaults apply (GraphStorm's).
        """
        kwargs: dict[str, Any] = {}
        for spec_field in fields(self.spec_class()):
            name = spec_field.name
            if name == "async_execution":
                # The spec validates async_execution (a rendered "perhaps" fails, not bool("perhaps")).
                kwargs[name] = self.async_execution if self.wait_for_completion else True
                continue
            attribute = SPEC_ATTRIBUTE_ALIASES.get(name, name)
            if not hasattr(self, attribute):
                continue
            value = getattr(self, attribute)
            if value is None:
                continue
            kwargs[name] = value
        # --- the entry points' manifest opt-out (operators/preflight.py) ---
        from graphstorm_provider.operators.preflight import with_manifest_opt_out

        return with_manifest_opt_out(kwargs, self.require_input_manifests, self.spec_class().kind)  # --- end ---

    def build_job(self, job_name: str | None = None, context: Context | None = None) -> JobRequest:
        """
        Validate the (rendered) parameters and render the request; raises ``JobSpecError``.

        ``job_name`` defaults to the task instance's deterministic name (``jobs.naming``: ``task_name``
        or the step's default, plus a hash of dag_id, task_id, run_id, map_index); without a task
        instance in ``context``, to that prefix plus a UTC timestamp. The one place an operator builds
        its spec: parsed and rendered once per call (see ``jobs.common``), and called once per
        ``execute`` and once per ``execute_complete``.
        """
        kwargs = self.spec_kwargs()
        spec = self.spec_class()(**kwargs)
        if job_name is None:  # the task instance's, the same in every try (jobs/naming.py)
            from graphstorm_provider.jobs import naming

            job_name = naming.job_name_for(spec.task_name or spec.default_job_base(), context)
        job = spec.build(job_name)
        # [quiet-logs] Only a job that reaches AWS looks the connection up (its region, if any).
        from graphstorm_provider.operators.connection import touches_aws

        if "region" not in kwargs and touches_aws(job) and (region := self._connection_region()):
            job = self.spec_class()(**kwargs, region=region).build(job.job_name)
        return job

    def _build_or_fail(self, context: Context) -> JobRequest:
        """
        Run :meth:`build_job` at task start; bad input fails the task without retries.

        The failure is an ``AirflowFailException`` with the spec error's one sentence: the same input would fail again.
        """
        from graphstorm_provider.jobs.errors import JobSpecError

        try:
            job = self.build_job(context=context)
        except JobSpecError as err:
            from airflow.providers.common.compat.sdk import AirflowFailException

            raise AirflowFailException(str(err)) from err
        from graphstorm_provider.jobs.request import warn_secret_environment

        # In the task log, once per task start, not per build (execute_complete builds too).
        warn_secret_environment(job, self.log)
        return job

    def _check_interval_or_fail(self) -> int:
        """``check_interval``, else ``[graphstorm] check_interval``, else the default; a bad value fails without retries."""
        from airflow.providers.common.compat.sdk import AirflowFailException

        value: Any = self.check_interval
        source = "check_interval"
        if value is None:
            from airflow.sdk.configuration import conf

            value = conf.get("graphstorm", "check_interval", fallback=None) or DEFAULT_CHECK_INTERVAL_S
            source = "[graphstorm] check_interval"
        try:
            seconds = int(str(value).strip())
        except ValueError:
            seconds = 0
        if isinstance(value, bool) or seconds < 1:
            raise AirflowFailException(f"{source} must be a whole number of seconds from 1, got {str(value)[:100]!r}.")
        return seconds

    def _wait_limits_or_fail(self) -> None:
        """Check ``waiter_max_attempts`` and ``max_ingestion_time`` again at task start (a subclass may template them)."""
        if error := wait_limits_error(self.waiter_max_attempts, self.max_ingestion_time):
            from airflow.providers.common.compat.sdk import AirflowFailException

            raise AirflowFailException(error)

    def _compose_options_or_fail(self) -> None:
        """Check ``gpus``, ``shm_size`` and ``compose_timeout`` at task start, before anything runs."""
        if error := compose_options_error(self.gpus, self.shm_size, self.compose_timeout):
            from airflow.providers.common.compat.sdk import AirflowFailException

            raise AirflowFailException(error)

    def _connection_region(self) -> str | None:
        """``region_name`` of the AWS connection's extra, if the connection exists and has one."""
        if not self.aws_conn_id:
            return None
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        try:
            return AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="sagemaker").conn_config.region_name
        except Exception:
            return None

    @property
    def waits(self) -> bool:
        return self.wait_for_completion and not self.async_execution

    # ------------------------------------------------------------------ execute
    def execute(self, context: Context) -> dict[str, str]:
        self._wait_limits_or_fail()
        self._compose_options_or_fail()
        job = self._build_or_fail(context)
        self._check_interval_s = self._check_interval_or_fail()
        self._job = job
        self.log.info("GraphStorm %s job %s (%s x %s).", job.step, job.job_name, job.instance_count, job.instance_type)
        # --- guards before any launch: input manifests, step cache (operators/guards.py) ---
        from graphstorm_provider.jobs import naming
        from graphstorm_provider.operators.guards import before_launch
        from graphstorm_provider.operators.preflight import refuse_unkept_asset_outputs

        refuse_unkept_asset_outputs(job)  # outputs that become Assets: no '#' or '?' (operators/assets.py)
        if (cached := before_launch(self, job)) is not None:
            # A hit completes the task as the producing job did (its link and results). Its outputs
            # are announced as asset events only when that job was this task instance's own (a retry
            # after the job completed but the task did not): another run's output landed before.
            own = naming.is_attempt_of(cached["job_name"], job.job_name)
            return self._completed_by(context, naming.renamed(job, cached["job_name"]), announce=own)
        # --- end guards ---
        if job.is_local:
            self._run_local(job)
        else:
            job = self._run_sagemaker(job, context)  # the job that produced the outputs (maybe <name>-a2)
        if not job.is_local and not self.waits:
            return job.xcom_value()  # the job is still running: no outputs have landed yet
        return self.job_completed(context, job)

    def _completed_by(self, context: Context, job: JobRequest, *, announce: bool) -> dict[str, Any]:
        """Complete the task with the outputs ``job`` (named as the job that produced them) already wrote."""
        if not job.is_local and context:
            self._persist_job_link(context, job)
        return self.job_completed(context, job, announce=announce)

    # --- completion hooks (links, job log, assets, results; operators/links.py, job_log.py, assets.py)
    def _persist_job_link(self, context: Context, job: JobRequest) -> None:
        from graphstorm_provider.operators.links import SageMakerJobRef, persist

        persist(context, self, SageMakerJobRef(kind=job.kind, job_name=job.job_name, region=job.region))

    def job_log(self) -> Any:
        """
        Return the task's logger for the job's output (``operators/job_log.py``).

        It is callable with a line and logger-like, so every backend can take it.
        """
        from graphstorm_provider.operators.job_log import JobLog

        return JobLog(self.log, follow=self.follow_job_line)

    def follow_job_line(self, line: str) -> str | None:
        """Return a line to log after one of the job's output lines (train: the epoch summary)."""
        return None

    def job_results(self, job: JobRequest) -> dict[str, Any]:
        """Return what a completed job adds to the XCom beyond its outputs (train: metrics)."""
        return {}

    def job_completed(self, context: Context, job: JobRequest, *, announce: bool = True) -> dict[str, Any]:
        """
        Return the XCom value of a completed job.

        With ``announce`` (a job that completed for this task instance) its outputs are attached to
        their asset aliases: one asset event per output and job.
        """
        result: dict[str, Any] = {**job.xcom_value(), **self.job_results(job)}
        if announce:
            _assets.emit_completed(context, job, result, graph_name=getattr(self, "graph_name", None))
        return result

    # --- end of completion hooks ----------------------------------------------------------

    def _run_local(self, job: JobRequest) -> None:
        if not self.waits:
            self.log.info("wait_for_completion=False has no effect on a local run: it runs here, to the end.")
        timeout_s, timeout_name = self._local_time_limit(job)
        run_here(
            self,
            job,
            aws_conn_id=self.aws_conn_id,
            compose_command=self.compose_command,
            gpus=self.gpus,
            shm_size=self.shm_size,
            timeout_s=timeout_s,
            timeout_name=timeout_name,
        )

    def _local_time_limit(self, job: JobRequest) -> tuple[float | None, str]:
        """
        Return the time limit of a local run and the parameter that set it.

        The sooner of ``compose_timeout`` (default: the job's ``max_run``) and
        ``max_ingestion_time``; ``(None, "")`` when that is the job's ``max_run`` or there is
        none: the backends apply ``max_run`` themselves.
        """
        limits: list[tuple[float, str]] = []
        if self.compose_timeout is not None:
            limits.append((float(self.compose_timeout), "compose_timeout"))
        if self.max_ingestion_time is not None:
            limits.append((float(self.max_ingestion_time), "max_ingestion_time"))
        max_run = (job.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        if self.compose_timeout is None and max_run:
            limits.append((float(max_run), ""))  # compose_timeout's default
        if not limits:
            return None, ""
        seconds, name = min(limits, key=lambda limit: limit[0])
        return (seconds, name) if name else (None, "")

    def botocore_config(self) -> dict[str, Any]:
        """
        Return the botocore ``Config`` kwargs of every AWS client of this task (hooks and trigger).

        Bounded adaptive retries and timeouts (``execution.sagemaker.botocore_config``) under the
        connection extra's own ``config_kwargs``.
        """
        from graphstorm_provider.execution.sagemaker import botocore_config

        base: dict[str, Any] = {}
        if self.aws_conn_id:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

            try:
                extra = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="sagemaker").conn_config.extra_config
                base = dict(extra.get("config_kwargs") or {})
            except Exception:
                base = {}
        return botocore_config(self.aws_max_attempts, base)

    def _sagemaker_backend(self, region: str) -> Any:
        """
        Return the SageMaker backend over the Amazon provider's hooks (they own the AWS connection).

        The hooks get :meth:`botocore_config` as their ``config``.
        """
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        from graphstorm_provider.execution.sagemaker import SageMakerBackend

        config = self.botocore_config()
        # The Amazon provider's SageMakerHook.__init__(self, *args, **kwargs) has no annotations.
        client = SageMakerHook(  # type: ignore[no-untyped-call]
            aws_conn_id=self.aws_conn_id, region_name=region, config=config
        ).conn
        logs = (
            AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=region, config=config).conn
            if self.print_log
            else None
        )
        return SageMakerBackend(client, logs)

    def _run_sagemaker(self, job: JobRequest, context: Context | None = None) -> JobRequest:
        """
        Start (or re-attach to) the job and follow it.

        Return the request under the name of the job that produced the outputs.
        """
        backend = self._sagemaker_backend(job.region)
        self._sagemaker = backend
        defer = self.deferrable and self.waits

        def started(found: Any) -> None:  # from here on, on_kill stops the job actually followed
            self._job = found.job
            if context is not None:  # the extra links name the job actually followed
                self._persist_job_link(context, found.job)

        # The backend describes the name first (re-attach, take a completed result, or launch
        # <name>-aN) and stops the job when the wait ends in an error (failure, timeout, API error).
        result = backend.run(
            job,
            wait=self.waits and not defer,
            poll_seconds=self._check_interval_s,
            timeout_seconds=self.max_ingestion_time,
            on_status=lambda status: self.log.info("%s", status),
            on_log=self.job_log(),
            on_started=started,
        )
        job = result.job
        self.log.info("SageMaker %s job %s: %s.", job.kind, job.job_name, result.outcome)
        if not self.waits:
            self.log.info("Not waiting for SageMaker job %s.", job.job_name)
        if defer and result.outcome != "completed":
            self._defer(job, backend)
        self._sagemaker = None
        return job

    def _defer(self, job: JobRequest, backend: Any) -> None:
        from graphstorm_provider.execution.sagemaker import job_type
        from graphstorm_provider.operators.deferral import ended_before_deferring, waiter_max_attempts
        from graphstorm_provider.triggers.sagemaker import GraphStormSageMakerTrigger as SageMakerTrigger

        if ended_before_deferring(backend, job, self.log):  # checked once; ended: no deferral
            return
        timeout = self.execution_timeout
        if self.max_ingestion_time:
            timeout = datetime.timedelta(seconds=self.max_ingestion_time)
        self.defer(
            trigger=SageMakerTrigger(
                job_name=job.job_name,
                job_type=job_type(job.kind),
                waiter_delay=self._check_interval_s,
                waiter_max_attempts=waiter_max_attempts(job, self._check_interval_s, self.waiter_max_attempts),
                aws_conn_id=self.aws_conn_id,
                region_name=job.region,
                botocore_config=self.botocore_config(),
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, str]:
        """
        Resume after deferral: fail unless the trigger reports success; return the XCom value.

        Any other ending stops the job the trigger followed before the task fails, as the
        non-deferred wait does: ``timeout`` (``waiter_max_attempts`` ran out), ``error`` (an AWS
        error while describing, e.g. AccessDenied or an expired token), anything unexpected.
        ``failed`` and ``stopped`` say the job has ended: nothing to stop. A stop that fails is
        logged; the task still fails with the event's reason (:meth:`_stop_after_deferral`).

        The outputs are rendered again from the (re-rendered, hence identical) parameters under
        the job's name, rather than carried through the deferral: ``dag.test()`` drops a
        deferral's kwargs, the triggerer keeps them, this works with both.
        """
        from airflow.providers.common.compat.sdk import AirflowException

        if not event or event.get("status") != "success":
            status = (event or {}).get("status")
            if status not in ("failed", "stopped"):  # nobody will wait for the job any more
                ending = f"The deferred wait ended in {status}" if status else "The deferred wait ended with no event"
                self._stop_after_deferral(context, (event or {}).get("job_name"), ending)
            raise AirflowException(f"SageMaker job did not complete: {event}")
        self.log.info("SageMaker job %s completed.", event["job_name"])
        return self.job_completed(context, self.build_job(job_name=event["job_name"]))

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """
        Resume after deferral; a deferral resumed only to fail stops its SageMaker job first.

        When the deferral's timeout (``max_ingestion_time``, else ``execution_timeout``) expires
        (``TRIGGER_TIMEOUT``), or the trigger itself raised (``TRIGGER_FAILURE``), the task is
        resumed only to fail (``__fail__``), without the trigger's job name, and the trigger's
        ``on_kill`` is not called. The job is found again by the task instance's deterministic
        name (and its ``-aN`` attempts) and stopped; then the task fails as Airflow fails it
        (``TaskDeferralTimeout``, ``TaskDeferralError``), also when the stop fails (logged).
        """
        from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

        if next_method == TRIGGER_FAIL_REPR:
            timed_out = (next_kwargs or {}).get("error") == TriggerFailureReason.TRIGGER_TIMEOUT
            self._stop_after_deferral(context, None, "The deferral timed out" if timed_out else "The trigger failed")
        return super().resume_execution(next_method, next_kwargs, context)

    def _stop_after_deferral(self, context: Context | None, job_name: str | None, ending: str) -> None:
        """
        Stop the SageMaker job of a deferred wait that ended without success; ``ending`` says how.

        ``job_name`` is the job the trigger followed; without it, every running attempt of the
        task instance's name is stopped. Raises nothing, so the task fails with its own reason: a
        stop that fails is logged (the backend logs ``SageMakerStopFailed``, which names the
        ``aws sagemaker stop-...`` command).
        """
        from graphstorm_provider.execution.sagemaker import SageMakerStopFailed

        name = job_name
        try:
            job = self.build_job(job_name=job_name, context=context)
            name = job.job_name
            if job.is_local:  # a local run never defers
                return
            backend = self._sagemaker_backend(job.region)
            if job_name:
                stopped = [job_name] if backend.stop(job.kind, job_name, job.region) else []
            else:
                stopped = backend.stop_attempts(job)
        except SageMakerStopFailed:
            return  # logged by the backend, with the command that stops the job
        except Exception as err:
            self.log.error("%s; SageMaker job %s could not be stopped: %s", ending, name, err)
            return
        if stopped:
            self.log.error("%s: stop requested for SageMaker job %s.", ending, ", ".join(stopped))
        else:
            self.log.error("%s; no running SageMaker job is named %s.", ending, name)

    # ------------------------------------------------------------------ kill
    def on_kill(self) -> None:
        """
        Stop what this task started: the SageMaker job, or the local run.

        The Amazon provider's SageMaker operators leave the job running when the task is
        killed; a killed GraphStorm task stops its job. A stop that fails raises
        (``SageMakerStopFailed``, naming the ``aws sagemaker stop-...`` command). A deferred task
        is stopped by its trigger (``triggers/sagemaker.py``).
        """
        if self._runner is not None:
            self.log.info("Stopping local run of %s.", self._job.job_name if self._job else "job")
            self._runner.stop()
        elif self._job is not None and self._sagemaker is not None:
            self._sagemaker.stop(self._job.kind, self._job.job_name, self._job.region)


def run_here(
    operator: BaseOperator,
    job: JobRequest,
    *,
    aws_conn_id: str | None,
    compose_command: str | None,
    gpus: int,
    shm_size: str,
    timeout_s: float | None,
    timeout_name: str = "timeout",
) -> JobRunner:
    """
    Run an ``instance_type="local"`` job on this machine.

    This is the one path of every operator (the step operators and ``LocalComposeOperator``).

    One host: the local backend; several: the compose backend with ``compose_command``,
    ``gpus`` and ``shm_size``. ``timeout_s`` bounds the run on either (the local backend's error
    names it ``timeout_name``, the caller's parameter). The runner gets the job's region and the AWS
    connection's credentials as ``AWS_*`` variables (see ``connection_env``). It is stored on the
    operator (``_runner``) before it runs, so ``on_kill`` can stop it.
    """
    from graphstorm_provider.execution.compose import ComposeOptions
    from graphstorm_provider.execution.runners import make_local_runner
    from graphstorm_provider.operators.connection import connection_env, touches_aws

    aws_conn_id = aws_conn_id if touches_aws(job) else None  # a file:// job needs no AWS (and logs no warning)
    env = {"AWS_REGION": job.region, "AWS_DEFAULT_REGION": job.region, **connection_env(aws_conn_id, job.region)}
    try:
        runner = make_local_runner(
            job,
            extra_env=env,
            # a logger-like callable (operators/job_log.py): each line at its level, plus epoch lines
            log=operator.job_log() if hasattr(operator, "job_log") else (lambda line: operator.log.info("%s", line)),
            compose_command=compose_command,
            compose_options=ComposeOptions(gpus=int(gpus), shm_size=str(shm_size)) if job.instance_count > 1 else None,
            timeout_s=timeout_s,
            timeout_name=timeout_name,
        )
    except ValueError as err:  # the request cannot run here (LocalSpecError, RuntimeSetupError): bad input
        from airflow.providers.common.compat.sdk import AirflowFailException

        raise AirflowFailException(str(err)) from err
    operator._runner = runner  # what on_kill stops
    runner.run()
    return runner
