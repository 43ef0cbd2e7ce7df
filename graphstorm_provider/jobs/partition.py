"""Distributed partitioning of a DGL chunked-format graph as a SageMaker Training job,
one partition per instance."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, ClassVar

from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.common import CPU_INSTANCE_TYPE, JobSpec
from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.skeletons import training_request

PARTITION_ALGORITHMS = ("random",)
DEFAULT_METADATA_FILENAME = "updated_row_counts_metadata.json"


@dataclass(frozen=True, kw_only=True)
class PartitionSpec(JobSpec):
    """Partition a chunked-format graph into DistDGL partitions (SageMaker Training job)."""

    step: ClassVar[str] = "partition"
    kind: ClassVar[str] = "training"
    step_tag: ClassVar[str] = "Partition"
    default_instance_type: ClassVar[str] = CPU_INSTANCE_TYPE
    forwards_graphstorm_args: ClassVar[bool] = False

    graph_data_s3: str | None = None
    num_parts: int | None = None
    output_data_s3: str | None = None
    metadata_filename: str = DEFAULT_METADATA_FILENAME
    partition_algorithm: str = "random"
    skip_partitioning: bool = False

    def _validate_step(self) -> None:
        self._uri("graph_data_s3")
        self._uri("output_data_s3")
        if self.num_parts in (None, ""):
            raise JobSpecError("--num-parts is required.")
        parts = v.positive_int("num_parts", self.num_parts)
        self._set("num_parts", parts)
        self._set("metadata_filename", v.relative_path(
            "metadata_filename", self.metadata_filename or DEFAULT_METADATA_FILENAME, base="graph_data_s3"))
        self._set("partition_algorithm", v.choice(
            "partition_algorithm", self.partition_algorithm or "random", PARTITION_ALGORITHMS))
        self._set("skip_partitioning", v.boolean("skip_partitioning", self.skip_partitioning))
        count = self._count(parts)
        if count != parts:
            raise JobSpecError(
                f"--instance-count ({count}) must equal --num-parts ({parts}): "
                f"distributed partitioning runs one partition per instance."
            )

    @classmethod
    def _add_step_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--graph-data-s3", "--input-graph-s3", dest="graph_data_s3", required=True,
                           help="S3 prefix of the chunked-format graph")
        group.add_argument("--num-parts", type=int, required=True, help="number of partitions")
        group.add_argument("--output-data-s3", "--output-graph-s3", dest="output_data_s3", required=True,
                           help="S3 prefix for the partitioned graph")
        group.add_argument("--metadata-filename", default=DEFAULT_METADATA_FILENAME,
                           help=f"chunked-format metadata JSON under --graph-data-s3 "
                                f"(default {DEFAULT_METADATA_FILENAME})")
        group.add_argument("--partition-algorithm", default="random", choices=PARTITION_ALGORITHMS)
        group.add_argument("--skip-partitioning", action="store_true",
                           help="partition assignments already exist under --output-data-s3")

    def entry_arguments(self) -> list[str]:
        args = ["--graph-data-s3", self.graph_data_s3, "--num-parts", str(self.num_parts),
                "--output-data-s3", self.output_data_s3, "--metadata-filename", self.metadata_filename,
                "--partition-algorithm", self.partition_algorithm]
        if self.skip_partitioning:
            args.append("--skip-partitioning")
        return args + ["--log-level", self.log_level]

    def outputs(self) -> dict[str, str]:
        return {"output_data_s3": self.output_data_s3}

    def _render(self, name: str, arguments: list[str]) -> dict[str, Any]:
        return training_request(
            name=name, image=self.image_url, role=self.role, instance_type=self.instance_type,
            instance_count=self.instance_count, step=self.step, arguments=arguments,
            output_path=self.output_data_s3, region=self.region, step_tag=self.step_tag,
        )
