"""
``LocalComposeOperator``: run a GraphStorm step on an emulated SageMaker cluster.

The step is described exactly as for the step operators (``GSTrainOperator`` & co.):
the same parameters feed the same job spec, which renders the same ``JobRequest``.
Instead of SageMaker, the request runs as a compose project with one container per
host (``algo-1..N``) of the job image, through ``docker compose``, ``docker-compose``
or ``podman-compose`` (see :mod:`graphstorm_provider.execution.compose_runner`).

Module level imports only ``airflow.sdk``; specs and runners are imported when the
task runs, so DAG files that use this operator parse fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from graphstorm_provider.execution.runners import JobRunner
    from graphstorm_provider.jobs.common import JobSpec
    from graphstorm_provider.jobs.request import JobRequest

# No role is assumed locally; the specs still want a non-empty value.
LOCAL_ROLE = "local"
# Hosts when neither instance_count nor a spec says (partition's own rule applies to it).
DEFAULT_INSTANCE_COUNT = 2


def spec_class(step: str) -> type[JobSpec]:
    """Return the step's spec from ``jobs.STEP_SPECS`` (GraphStorm's compose generator's action names too)."""
    from graphstorm_provider.jobs import compose_step

    return compose_step(step)


class LocalComposeOperator(BaseOperator):
    """
    Run a GraphStorm partition, train or infer step on hosts ``algo-1..N`` in containers.

    Give either ``step`` and the step's parameters (the same keyword arguments as the
    step operator, e.g. ``graph_data_s3``, ``yaml_s3``, ``model_artifact_s3``,
    ``graph_name``, ``task_type``, ``image_url``, ``instance_count``,
    ``graphstorm_args``), or ``spec``, an already built job spec. ``instance_type`` is
    always ``"local"``.

    :param step: ``partition``, ``train`` or ``infer`` (or GraphStorm's compose generator's
        actions ``partitioning``, ``training``, ``inference``) (templated).
    :param spec: A job spec (``TrainSpec``, ...) to run instead of keyword parameters.
    :param instance_count: Number of hosts (containers). Default 2.
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
    :return: The same XCom as the step operators: ``{"job_name": ..., <output>: <URI>}``, each
        key also pushed as its own XCom.
    """

    template_fields = ("step", "job_params", "compose_command", "shm_size")
    template_fields_renderers = {"job_params": "json"}
    ui_color = "#e8f0d5"

    def __init__(
        self,
        *,
        step: str | None = None,
        spec: JobSpec | None = None,
        instance_count: int | None = None,
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
                raise ValueError("LocalComposeOperator needs step= (with the step's parameters) or spec=.")
            step = spec.step
        # Step parameters are the spec's fields; everything else belongs to BaseOperator.
        field_names = {f.name for f in dataclasses.fields(spec_class(step))}
        params = dict(job_params or {})
        for name in list(kwargs):
            if name in field_names:
                params[name] = kwargs.pop(name)
        # As the step operators: each output is also its own XCom, so
        # ``train.output["model_artifact_s3"]`` can feed the next step.
        kwargs.setdefault("multiple_outputs", True)
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

    def build_job(self) -> JobRequest:
        """Return the job request, rendered by the step's spec with ``instance_type='local'``."""
        if self.spec is not None:
            spec = self.spec
            changes: dict[str, Any] = {}
            if spec.instance_type != "local":
                changes["instance_type"] = "local"
            if self.instance_count is not None:
                changes["instance_count"] = self.instance_count
            return (dataclasses.replace(spec, **changes) if changes else spec).build()
        params = {k: v for k, v in self.job_params.items() if v is not None}
        params["instance_type"] = "local"
        params.setdefault("role", LOCAL_ROLE)
        if self.instance_count is not None:
            params["instance_count"] = self.instance_count
        elif spec_class(self.step).step != "partition":
            params.setdefault("instance_count", DEFAULT_INSTANCE_COUNT)
        from graphstorm_provider.operators.preflight import with_manifest_opt_out

        params = with_manifest_opt_out(params, self.require_input_manifests, spec_class(self.step).kind)
        return spec_class(self.step)(**params).build()

    def execute(self, context: Context) -> dict[str, str]:
        from graphstorm_provider.jobs.errors import JobSpecError
        from graphstorm_provider.operators.base import run_here

        try:
            job = self.build_job()
        except JobSpecError as err:  # bad input fails without retries: it would fail again
            from airflow.providers.common.compat.sdk import AirflowFailException

            raise AirflowFailException(str(err)) from err
        self._job = job
        self.log.info("GraphStorm %s job %s on %s local hosts (compose).", job.step, job.job_name, job.instance_count)
        from graphstorm_provider.operators.guards import before_launch

        if (cached := before_launch(self, job)) is not None:  # input manifests, step cache
            return cached
        run_here(
            self,
            job,
            aws_conn_id=self.aws_conn_id,
            compose_command=self.compose_command,
            gpus=self.gpus,
            shm_size=self.shm_size,
            timeout_s=self.timeout,
        )
        return job.xcom_value()

    def on_kill(self) -> None:
        """Stop the containers and remove them and their network."""
        if self._runner is not None:
            self.log.info("Stopping compose run of %s.", self._job.job_name if self._job else "job")
            self._runner.stop()
