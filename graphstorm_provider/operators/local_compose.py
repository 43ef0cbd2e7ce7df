"""
``LocalComposeOperator``: run a GraphStorm step on an emulated SageMaker cluster.

The step is described exactly as for the step operators (``GSTrainOperator`` & co.):
the same parameters feed the same job spec, which renders the same ``JobRequest``.
Instead of SageMaker, the request runs as a compose project with one container per
host (``algo-1..N``) of the job image, through ``docker compose``, ``docker-compose``
or ``podman-compose`` (see :mod:`graphstorm_provider.execution.compose_runner`).

Module level imports only ``airflow.sdk`` (and this package's light operator modules); specs
and runners are imported when the task runs, not when the operator is created, so DAG files
that use this operator parse fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from graphstorm_provider.operators import assets as _assets
from graphstorm_provider.operators.init_defaults import PARAM_NAMES_ATTRIBUTE, refuse_argument

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from graphstorm_provider.execution.runners import JobRunner
    from graphstorm_provider.jobs.common import JobSpec
    from graphstorm_provider.jobs.request import JobRequest

# No role is assumed locally; the specs still want a non-empty value.
LOCAL_ROLE = "local"
# Hosts when neither instance_count nor a spec says (partition's own rule applies to it).
DEFAULT_INSTANCE_COUNT = 2
# The names ``step`` takes (the steps, GraphStorm's compose generator's actions) -> the step: the names of
# ``jobs.COMPOSE_ACTIONS``, restated so that creating the operator (DAG parse time) imports no spec. Only
# a fast path: any other literal name is judged by ``jobs.compose_step`` (tests check that they agree).
COMPOSE_STEP_NAMES: dict[str, str] = {
    "partition": "partition",
    "partitioning": "partition",
    "train": "train",
    "training": "train",
    "infer": "infer",
    "inference": "infer",
}
# BaseOperator's own arguments: every other keyword argument is a parameter of the step.
BASE_OPERATOR_ARGUMENTS: frozenset[str] = frozenset(getattr(BaseOperator.__init__, PARAM_NAMES_ATTRIBUTE))


def spec_class(step: str) -> type[JobSpec]:
    """Return the step's spec from ``jobs.STEP_SPECS`` (GraphStorm's compose generator's action names too)."""
    from graphstorm_provider.jobs import compose_step

    return compose_step(step)


def literal_step(step: object) -> str | None:
    """
    Return the step a literal ``step`` names (``ValueError`` if none); ``None`` for a template.

    A template (a string with ``{``, or a value Airflow resolves, such as an ``XComArg``) is
    judged at task start, once rendered.
    """
    if not isinstance(step, str) or "{" in step:
        return None
    return COMPOSE_STEP_NAMES.get(step.strip().lower()) or spec_class(step).step


class LocalComposeOperator(BaseOperator):
    """
    Run a GraphStorm partition, train or infer step on hosts ``algo-1..N`` in containers.

    Give either ``step`` and the step's parameters (the same keyword arguments as the
    step operator, e.g. ``graph_data_s3``, ``yaml_s3``, ``model_artifact_s3``,
    ``graph_name``, ``task_type``, ``image_url``, ``instance_count``,
    ``graphstorm_args``), or ``spec``, an already built job spec. ``instance_type`` is
    always ``"local"``.

    :param step: ``partition``, ``train`` or ``infer`` (or GraphStorm's compose generator's
        actions ``partitioning``, ``training``, ``inference``) (templated). A literal name is
        checked when the operator is created; a template, once rendered, at task start (a bad
        one fails the task without retries).
    :param spec: A job spec (``TrainSpec``, ...) to run instead of keyword parameters.
    :param instance_count: Number of hosts (containers) (templated). Default 2.
    :param compose_command: Compose tool: ``"docker compose"``, ``"docker-compose"`` or
        ``"podman-compose"``. Default: ``[graphstorm] compose_command``, else the first found
        (templated).
    :param gpus: GPUs reserved per container (0: CPU only).
    :param shm_size: Shared memory of each container, e.g. ``"4gb"`` (templated).
    :param timeout: Seconds before the job is failed and torn down. Default: the job's
        ``max_run`` (``StoppingCondition``), else 24 hours.
    :param aws_conn_id: Airflow connection whose credentials are handed to the containers
        (by name, through the compose process environment; never written to a file).
        ``None`` uses whatever the environment has.
    :param require_input_manifests: As the step operators: refuse, at task start, an input prefix
        without a complete ``_manifest.json``; ``False`` takes data made outside the pipeline.
    :param skip_if_complete: As the step operators: the step cache (outputs of an identical
        request taken instead of running). Default ``False``.
    :return: The same XCom as the step operators: ``{"job_name": ..., <output>: <URI>}`` (a train
        job also ``metrics`` and ``learning_curve_s3``, as ``GSTrainOperator``), each key also
        pushed as its own XCom.

    Keyword arguments other than ``BaseOperator``'s are the step's parameters; a name the
    (rendered) step does not have fails the task at task start, without retries. As the step
    operators, the outlets include the ``AssetAlias`` of each kind of output the step writes (a
    templated step: those of every step), and a completed job attaches its outputs to them
    (``operators/assets.py``); an output URI with ``#`` or ``?`` is refused at task start.
    """

    template_fields = ("step", "job_params", "instance_count", "compose_command", "shm_size")
    template_fields_renderers = {"job_params": "json"}
    ui_color = "#e8f0d5"

    def __init__(
        self,
        *,
        step: str | None = None,
        spec: JobSpec | None = None,
        instance_count: int | str | None = None,
        compose_command: str | None = None,
        gpus: int = 0,
        shm_size: str = "4gb",
        timeout: float | None = None,
        aws_conn_id: str | None = "aws_default",
        job_params: Mapping[str, Any] | None = None,
        require_input_manifests: bool | None = None,
        skip_if_complete: bool = False,
        **kwargs: Any,
    ) -> None:
        if step is None:
            if spec is None:
                refuse_argument(self, "LocalComposeOperator needs step= (with the step's parameters) or spec=.")
            step = spec.step
        try:  # a literal step now (the DAG does not parse); a template once rendered, at task start
            known_step = literal_step(step)
        except ValueError as err:
            refuse_argument(self, str(err))
        # BaseOperator's arguments (and Airflow's private ones) are its own; all others are the step's
        # parameters, checked against the (rendered) step at task start: no spec is imported here.
        params = dict(job_params or {})
        for name in list(kwargs):
            if name not in BASE_OPERATOR_ARGUMENTS and not name.startswith("_"):
                params[name] = kwargs.pop(name)
        # As the step operators: each output is also its own XCom, so
        # ``train.output["model_artifact_s3"]`` can feed the next step.
        kwargs.setdefault("multiple_outputs", True)
        # ... and each kind of output the step may write is an AssetAlias outlet (operators/assets.py).
        for outlet_step in [known_step] if known_step else dict.fromkeys(COMPOSE_STEP_NAMES.values()):
            kwargs["outlets"] = _assets.with_step_outlets(outlet_step, kwargs.get("outlets"))
        super().__init__(**kwargs)
        self.step = step
        self.spec = spec
        self.job_params = params
        self.instance_count = instance_count
        self.compose_command = compose_command
        self.gpus = gpus
        self.shm_size = shm_size
        self.timeout = timeout
        self.aws_conn_id = aws_conn_id
        self.require_input_manifests = require_input_manifests
        self.skip_if_complete = skip_if_complete
        self._runner: JobRunner | None = None
        self._job: JobRequest | None = None

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        """Render as Airflow does, then register the environment's secret-looking values (as the step operators)."""
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self and isinstance(self.job_params, Mapping):
            from graphstorm_provider.operators.connection import masked_sm_parameters

            params = self.job_params.get("sm_estimator_parameters")
            if (as_text := masked_sm_parameters(params)) is not params:
                self.job_params = {**self.job_params, "sm_estimator_parameters": as_text}

    def build_job(self, context: Context | None = None) -> JobRequest:
        """
        Return the job request, rendered by the step's spec with ``instance_type='local'``.

        Its name is the task instance's, as a step operator's (``jobs.naming``: ``task_name`` or the
        step's default, plus a hash of dag_id, task_id, run_id, map_index), the same in every attempt;
        without a task instance in ``context``, that prefix plus a UTC timestamp. Raises
        ``ValueError`` for a step that names no compose step, ``JobSpecError`` for a bad or unknown
        parameter of the step.
        """
        from graphstorm_provider.jobs import naming

        spec = self._local_spec()
        return spec.build(naming.job_name_for(spec.task_name or spec.default_job_base(), context))

    def _local_spec(self) -> JobSpec:
        """Return the job spec: ``spec`` made local, or the (rendered) step's spec of the step's parameters."""
        if self.spec is not None:
            spec = self.spec
            changes: dict[str, Any] = {}
            if spec.instance_type != "local":
                changes["instance_type"] = "local"
            if self.instance_count is not None:
                changes["instance_count"] = self.instance_count
            return dataclasses.replace(spec, **changes) if changes else spec
        step_spec = spec_class(self.step)
        names = [f.name for f in dataclasses.fields(step_spec)]
        if unknown := sorted(set(self.job_params) - set(names)):
            from graphstorm_provider.argparsing import closest
            from graphstorm_provider.jobs.errors import JobSpecError

            described = [
                f"{name} (did you mean {guess}?)" if (guess := closest(name, names)) else name for name in unknown
            ]
            raise JobSpecError(f"LocalComposeOperator step {step_spec.step} has no parameter {', '.join(described)}.")
        params = {k: v for k, v in self.job_params.items() if v is not None}
        params["instance_type"] = "local"
        params.setdefault("role", LOCAL_ROLE)
        if self.instance_count is not None:
            params["instance_count"] = self.instance_count
        elif step_spec.step != "partition":
            params.setdefault("instance_count", DEFAULT_INSTANCE_COUNT)
        from graphstorm_provider.operators.preflight import with_manifest_opt_out

        params = with_manifest_opt_out(params, self.require_input_manifests, step_spec.kind)
        return step_spec(**params)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import AirflowFailException

        from graphstorm_provider.operators.base import compose_options_error, run_here

        if error := compose_options_error(self.gpus, self.shm_size, self.timeout, timeout_name="timeout"):
            raise AirflowFailException(error)
        try:
            job = self.build_job(context)
        except ValueError as err:  # bad input (JobSpecError, no such step) fails without retries: it would fail again
            raise AirflowFailException(str(err)) from err
        self._job = job
        self.log.info("GraphStorm %s job %s on %s local hosts (compose).", job.step, job.job_name, job.instance_count)
        from graphstorm_provider.operators.guards import before_launch
        from graphstorm_provider.operators.preflight import refuse_unkept_asset_outputs

        refuse_unkept_asset_outputs(job)  # outputs that become Assets: no '#' or '?' (operators/assets.py)
        if (cached := before_launch(self, job)) is not None:  # input manifests, step cache
            from graphstorm_provider.jobs import naming

            # A hit completes the task as the producing job did (its results). Its outputs are announced
            # only when that job was this task instance's own (a retry after the job completed), as
            # GraphStormBaseOperator does: another run's output was announced when it landed.
            own = naming.is_attempt_of(cached["job_name"], job.job_name)
            return self.job_completed(context, naming.renamed(job, cached["job_name"]), announce=own)
        run_here(
            self,
            job,
            aws_conn_id=self.aws_conn_id,
            compose_command=self.compose_command,
            gpus=self.gpus,
            shm_size=self.shm_size,
            timeout_s=self.timeout,
        )
        return self.job_completed(context, job)

    def job_results(self, job: JobRequest) -> dict[str, Any]:
        """Return what a completed job adds to the XCom beyond its outputs: ``GSTrainOperator``'s for training."""
        if job.step != "train":
            return {}
        from graphstorm_provider.operators.metrics import training_results

        return training_results(job.outputs["model_artifact_s3"], aws_conn_id=self.aws_conn_id)

    def job_completed(self, context: Context, job: JobRequest, *, announce: bool = True) -> dict[str, Any]:
        """
        Return the XCom value of a completed job, as the step operators do.

        With ``announce`` (a job that ran for this task) its outputs are attached to their asset aliases.
        """
        result: dict[str, Any] = {**job.xcom_value(), **self.job_results(job)}
        if announce:
            graph_name = getattr(self.spec, "graph_name", None) if self.spec else self.job_params.get("graph_name")
            _assets.emit_completed(context, job, result, graph_name=graph_name)
        return result

    def on_kill(self) -> None:
        """Stop the containers and remove them and their network."""
        if self._runner is not None:
            self.log.info("Stopping compose run of %s.", self._job.job_name if self._job else "job")
            self._runner.stop()
