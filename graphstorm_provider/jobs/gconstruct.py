"""
GConstruct: GraphStorm graph construction as a SageMaker Processing job.

``--input-graph-s3`` is mounted at /opt/ml/processing/input, the working directory;
``--graph-config-file`` is relative to it. /opt/ml/processing/output is uploaded to
``--output-graph-s3``. Unrecognised flags go to ``graphstorm.gconstruct.construct_graph``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.common import CPU_INSTANCE_TYPE, ArgumentAdder, JobSpec
from graphstorm_provider.jobs.errors import JobSpecError, flag
from graphstorm_provider.jobs.skeletons import processing_request

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobKind


@dataclass(frozen=True, kw_only=True)
class GConstructSpec(JobSpec):
    """Build a GraphStorm graph from raw tables (SageMaker Processing job)."""

    step: ClassVar[str] = "gconstruct"
    kind: ClassVar[JobKind] = "processing"
    step_tag: ClassVar[str] = "Processing"
    default_instance_type: ClassVar[str] = CPU_INSTANCE_TYPE
    reserved_graphstorm_flags: ClassVar[dict[str, str]] = {
        "conf-file": "the job passes --graph-config-file (relative to --input-graph-s3)",
        "output-dir": "the output folder is /opt/ml/processing/output, uploaded to --output-graph-s3",
        "graph-name": "use --graph-name",
    }

    input_graph_s3: str  # required: parse() always sets it (or fails naming the flag)
    output_graph_s3: str  # required: parse() always sets it (or fails naming the flag)
    graph_name: str  # required: parse() always sets it (or fails naming the flag)
    graph_config_file: str  # required: parse() always sets it (or fails naming the flag)

    @classmethod
    def _parse_step(cls, values: dict[str, Any]) -> None:
        cls._parse_uri(values, "input_graph_s3")
        cls._parse_uri(values, "output_graph_s3")
        values["graph_name"] = v.graph_name("graph_name", values.get("graph_name"))
        values["graph_config_file"] = v.relative_path(
            "graph_config_file", values.get("graph_config_file"), base="input_graph_s3"
        )
        count = cls._parse_count(values, 1)
        if count != 1:
            raise JobSpecError(
                f"{flag('instance_count')} must be 1 for gconstruct (graph construction runs on one instance), "
                f"got {count}."
            )

    @classmethod
    def _add_step_arguments(cls, group: ArgumentAdder) -> None:
        group.add_argument(
            "--input-graph-s3",
            "--graph-data-s3",
            dest="input_graph_s3",
            required=True,
            help="S3 prefix of the raw graph; mounted at /opt/ml/processing/input",
        )
        group.add_argument(
            "--output-graph-s3",
            "--output-data-s3",
            dest="output_graph_s3",
            required=True,
            help="S3 prefix for the constructed graph",
        )
        group.add_argument("--graph-name", required=True, help="graph name")
        group.add_argument(
            "--graph-config-file", required=True, help="graph configuration JSON, relative to --input-graph-s3"
        )

    def default_job_base(self) -> str:
        return f"gs-gconstruct-{self.graph_name}"

    def entry_arguments(self) -> list[str]:
        return [
            "--graph-name",
            self.graph_name,
            "--graph-config-file",
            self.graph_config_file,
            "--log-level",
            self.log_level,
        ]

    def outputs(self) -> dict[str, str]:
        return {"output_graph_s3": self.output_graph_s3}

    def _render(self, name: str, arguments: list[str]) -> dict[str, Any]:
        return processing_request(
            name=name,
            image_url=self.image_url,
            role=self.role,
            instance_type=self.instance_type,
            step=self.step,
            arguments=arguments,
            input_uri=self.input_graph_s3,
            output_uri=self.output_graph_s3,
            region=self.region,
            step_tag=self.step_tag,
        )
