"""
What train and infer share.

A partitioned graph, a YAML config, a model folder, a task type, and GraphStorm flags forwarded verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.common import GPU_INSTANCE_TYPE, ArgumentAdder, JobSpec
from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.skeletons import sagemaker_output_path, training_request

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobKind

# GraphStorm's SageMaker README: "save_embed_path and save_prediction_path must be disabled, i.e., set to
# 'None' when using SageMaker. They only work with shared file system while SageMaker
# solution does not support using shared file system now."
NO_SHARED_FS = "it only works with a shared file system, which SageMaker does not provide"

GRAPHSTORM_JOB_RESERVED_FLAGS = {
    "part-config": "the job sets it from --graph-data-s3",
    "cf": "the job sets it from the YAML config (--yaml-s3)",
    "ip-config": "the job writes it from the SageMaker hosts",
}

# GraphStorm's launcher flags with a numeric value (the job's launcher, entrypoints/gsentry/launcher.py,
# reads them): flag -> the smallest value it takes. Checked here, before launch, not once the
# instances have started.
LAUNCHER_INT_FLAGS = {
    "--num-trainers": 1,
    "--num-servers": 1,
    "--num-samplers": 0,
    "--num-omp-threads": 1,
    "--num-server-threads": 1,
    "--output-chunk-size": 1,
}
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")


def launcher_flag_problem(args: Sequence[str]) -> str | None:
    """Return one sentence about the first launcher flag in ``args`` with a bad value, else None."""
    for index, arg in enumerate(args):
        name, eq, inline = arg.partition("=")
        if name not in LAUNCHER_INT_FLAGS:
            continue
        value = inline if eq else (args[index + 1] if index + 1 < len(args) else None)
        low = LAUNCHER_INT_FLAGS[name]
        if value is None or value.startswith("--"):
            return f"{name} needs a value (a whole number of at least {low})."
        if not _WHOLE_NUMBER.fullmatch(value) or int(value) < low:
            return f"{name} must be a whole number of at least {low}, got {v.quoted(value)}."
    return None


@dataclass(frozen=True, kw_only=True)
class GraphStormJobSpec(JobSpec):
    """Common fields of train and infer (SageMaker Training jobs)."""

    kind: ClassVar[JobKind] = "training"
    default_instance_type: ClassVar[str] = GPU_INSTANCE_TYPE
    task_types: ClassVar[tuple[str, ...]] = v.TRAIN_TASK_TYPES
    yaml_flag: ClassVar[str] = "--train-yaml-s3"  # entry point's flag for yaml_s3

    graph_data_s3: str  # required: parse() always sets it (or fails naming the flag)
    yaml_s3: str  # required: parse() always sets it (or fails naming the flag)
    model_artifact_s3: str  # required: parse() always sets it (or fails naming the flag)
    graph_name: str  # required: parse() always sets it (or fails naming the flag)
    task_type: str  # required: parse() always sets it (or fails naming the flag)
    custom_script: str | None = None

    @classmethod
    def _parse_step(cls, values: dict[str, Any]) -> None:
        cls._parse_count(values, 1)
        cls._parse_uri(values, "graph_data_s3")
        cls._parse_uri(values, "yaml_s3", folder=False)
        cls._parse_uri(values, "model_artifact_s3")
        values["graph_name"] = v.graph_name("graph_name", values.get("graph_name"))
        values["task_type"] = v.choice("task_type", values.get("task_type"), cls.task_types)
        values["custom_script"] = v.optional_str("custom_script", values.get("custom_script"))
        if problem := launcher_flag_problem(values["graphstorm_args"]):  # already parsed (JobSpec.parse)
            raise JobSpecError(problem)

    @classmethod
    def _add_step_arguments(cls, group: ArgumentAdder) -> None:
        group.add_argument(
            "--graph-data-s3",
            "--input-graph-s3",
            dest="graph_data_s3",
            required=True,
            help="S3 prefix of the partitioned graph",
        )
        group.add_argument(
            "--yaml-s3",
            cls.yaml_flag,
            dest="yaml_s3",
            required=True,
            help="S3 URI of the GraphStorm YAML config (not stored with the graph)",
        )
        group.add_argument("--graph-name", required=True, help="graph name")
        group.add_argument("--task-type", required=True, help="one of " + ", ".join(cls.task_types))
        group.add_argument("--custom-script", help="path inside the image of a custom GraphStorm script")

    def default_job_base(self) -> str:
        return f"gs-{self.step}-{self.graph_name}"

    def model_uri(self) -> str:
        """Return the model folder the entry point gets as --model-artifact-s3."""
        return self.model_artifact_s3

    def graphstorm_job_arguments(self) -> list[str]:
        """Return the flags train and infer entry points share, in docs/ARCHITECTURE.md order."""
        return [
            "--graph-data-s3",
            self.graph_data_s3,
            self.yaml_flag,
            self.yaml_s3,
            "--model-artifact-s3",
            self.model_uri(),
            "--graph-name",
            self.graph_name,
            "--task-type",
            self.task_type,
        ]

    def _main_output(self) -> str:
        raise NotImplementedError

    def _render(self, name: str, arguments: list[str]) -> dict[str, Any]:
        return training_request(
            name=name,
            image_url=self.image_url,
            role=self.role,
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            step=self.step,
            arguments=arguments,
            output_path=sagemaker_output_path(self._main_output(), inside=self.step == "train"),
            region=self.region,
            step_tag=self.step_tag,
        )
