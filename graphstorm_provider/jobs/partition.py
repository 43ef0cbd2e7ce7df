"""
Distributed partitioning of a DGL chunked-format graph as a SageMaker Training job.

Each instance builds ``num_parts / instance_count`` partitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.common import CPU_INSTANCE_TYPE, ArgumentAdder, JobSpec, or_default
from graphstorm_provider.jobs.errors import JobSpecError, flag
from graphstorm_provider.jobs.request import LOCAL_INSTANCE_TYPE, JobKind
from graphstorm_provider.jobs.skeletons import sagemaker_output_path, training_request

PARTITION_ALGORITHMS = ("random",)
# Partitions of one graph: each host holds num_parts / instance_count of them (a sanity bound).
MAX_NUM_PARTS = 1024
DEFAULT_PARTITION_ALGORITHM = "random"
DEFAULT_METADATA_FILENAME = "updated_row_counts_metadata.json"


@dataclass(frozen=True, kw_only=True)
class PartitionSpec(JobSpec):
    """Partition a chunked-format graph into DistDGL partitions (SageMaker Training job)."""

    step: ClassVar[str] = "partition"
    kind: ClassVar[JobKind] = "training"
    step_tag: ClassVar[str] = "Partition"
    default_instance_type: ClassVar[str] = CPU_INSTANCE_TYPE
    forwards_graphstorm_args: ClassVar[bool] = False

    graph_data_s3: str  # required: parse() always sets it (or fails naming the flag)
    num_parts: int | None = None
    output_data_s3: str  # required: parse() always sets it (or fails naming the flag)
    metadata_filename: str = DEFAULT_METADATA_FILENAME
    partition_algorithm: str = DEFAULT_PARTITION_ALGORITHM
    skip_partitioning: bool = False

    @classmethod
    def _parse_step(cls, values: dict[str, Any]) -> None:
        cls._parse_uri(values, "graph_data_s3")
        cls._parse_uri(values, "output_data_s3")
        if values.get("num_parts") in (None, ""):
            raise JobSpecError(f"{flag('num_parts')} is required.")
        parts = v.positive_int("num_parts", values["num_parts"], maximum=MAX_NUM_PARTS)
        values["num_parts"] = parts
        values["metadata_filename"] = v.relative_path(
            "metadata_filename",
            or_default(values.get("metadata_filename"), DEFAULT_METADATA_FILENAME),
            base="graph_data_s3",
        )
        values["partition_algorithm"] = v.choice(
            "partition_algorithm",
            or_default(values.get("partition_algorithm"), DEFAULT_PARTITION_ALGORITHM),
            PARTITION_ALGORITHMS,
        )
        values["skip_partitioning"] = v.boolean("skip_partitioning", values.get("skip_partitioning", False))
        # One local host builds every partition; elsewhere one partition per instance by default.
        count = cls._parse_count(values, 1 if values["instance_type"] == LOCAL_INSTANCE_TYPE else parts)
        if parts % count:
            raise JobSpecError(
                f"{flag('num_parts')} ({parts}) must be a multiple of {flag('instance_count')} ({count}): "
                f"each instance builds the same number of partitions."
            )

    @classmethod
    def _add_step_arguments(cls, group: ArgumentAdder) -> None:
        group.add_argument(
            "--graph-data-s3",
            "--input-graph-s3",
            dest="graph_data_s3",
            required=True,
            help="S3 prefix of the chunked-format graph",
        )
        group.add_argument("--num-parts", type=int, required=True, help="number of partitions")
        group.add_argument(
            "--output-data-s3",
            "--output-graph-s3",
            dest="output_data_s3",
            required=True,
            help="S3 prefix for the partitioned graph",
        )
        group.add_argument(
            "--metadata-filename",
            default=DEFAULT_METADATA_FILENAME,
            help=f"chunked-format metadata JSON under --graph-data-s3 (default {DEFAULT_METADATA_FILENAME})",
        )
        group.add_argument("--partition-algorithm", default=DEFAULT_PARTITION_ALGORITHM, choices=PARTITION_ALGORITHMS)
        group.add_argument(
            "--skip-partitioning",
            action="store_true",
            help="partition assignments already exist under --output-data-s3",
        )

    def entry_arguments(self) -> list[str]:
        args = [
            "--graph-data-s3",
            self.graph_data_s3,
            "--num-parts",
            str(self.num_parts),
            "--output-data-s3",
            self.output_data_s3,
            "--metadata-filename",
            self.metadata_filename,
            "--partition-algorithm",
            self.partition_algorithm,
        ]
        if self.skip_partitioning:
            args.append("--skip-partitioning")
        return args + ["--log-level", self.log_level]

    def outputs(self) -> dict[str, str]:
        return {"output_data_s3": self.output_data_s3}

    def _render(self, name: str, arguments: list[str]) -> dict[str, Any]:
        return training_request(
            name=name,
            image_url=self.image_url,
            role=self.role,
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            step=self.step,
            arguments=arguments,
            output_path=sagemaker_output_path(self.output_data_s3, inside=False),
            region=self.region,
            step_tag=self.step_tag,
        )
