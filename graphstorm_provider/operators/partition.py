"""``DistPartitionOperator``: distributed partitioning of a chunked graph as a SageMaker Training job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphstorm_provider.operators.base import COMMON_TEMPLATE_FIELDS, GraphStormBaseOperator


class DistPartitionOperator(GraphStormBaseOperator):
    """
    Partition a graph in DGL's chunked format into a DistDGL graph, on SageMaker (Training job).

    Same job as GraphStorm's SageMaker launch script ``launch_partition.py``. ``num_parts`` must be a multiple of
    ``instance_count`` (default: ``num_parts``, or 1 with ``instance_type="local"``); each instance
    builds ``num_parts / instance_count`` partitions.

    .. code-block:: python

        partition = DistPartitionOperator(
            task_id="partition",
            image_url="123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu",
            role="arn:aws:iam::123456789012:role/SageMakerRole",
            region="us-east-1",
            graph_data_s3="s3://my-bucket/acm-chunked/",
            num_parts=2,
            instance_count=2,
            output_data_s3="s3://my-bucket/acm-2p/",
            metadata_filename="metadata.json",
        )

    :param graph_data_s3: S3 prefix of the chunked graph (templated).
    :param num_parts: Number of partitions to create (templated).
    :param output_data_s3: S3 prefix the partitioned graph is written to (templated).
    :param metadata_filename: Name of the chunked format's metadata JSON file under
        ``graph_data_s3`` (templated).
    :param partition_algorithm: Partition algorithm; only ``random`` is supported (templated).
    :param skip_partitioning: Reuse partition assignments that already exist under the output
        and only build the DistDGL objects (templated: ``true``/``false``, checked at task start).

    The other parameters are described in
    :class:`~graphstorm_provider.operators.base.GraphStormBaseOperator`.

    :return: ``{"job_name": ..., "output_data_s3": ...}``
    """

    spec_module = "graphstorm_provider.jobs.partition"
    spec_class_name = "PartitionSpec"
    template_fields: Sequence[str] = (
        *COMMON_TEMPLATE_FIELDS,
        "graph_data_s3",
        "num_parts",
        "output_data_s3",
        "metadata_filename",
        "partition_algorithm",
        "skip_partitioning",
    )

    def __init__(
        self,
        *,
        graph_data_s3: str,
        num_parts: int | str,
        output_data_s3: str,
        metadata_filename: str | None = None,
        partition_algorithm: str | None = None,
        skip_partitioning: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.graph_data_s3 = graph_data_s3
        self.num_parts = num_parts
        self.output_data_s3 = output_data_s3
        self.metadata_filename = metadata_filename
        self.partition_algorithm = partition_algorithm
        self.skip_partitioning = skip_partitioning
