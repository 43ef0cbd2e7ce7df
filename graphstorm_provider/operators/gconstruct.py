"""``GConstructOperator``: GraphStorm graph construction as a SageMaker Processing job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphstorm_provider.operators.base import COMMON_TEMPLATE_FIELDS, GraphStormBaseOperator


class GConstructOperator(GraphStormBaseOperator):
    """
    Construct a GraphStorm graph from raw tables with GConstruct, on SageMaker Processing.

    Same job as GraphStorm's SageMaker launch script ``launch_gconstruct.py``: ``input_graph_s3`` is mounted at
    ``/opt/ml/processing/input`` and used as the working directory, and what the job writes to
    ``/opt/ml/processing/output`` is uploaded to ``output_graph_s3``.

    .. code-block:: python

        gconstruct = GConstructOperator(
            task_id="gconstruct",
            image_url="123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu",
            role="arn:aws:iam::123456789012:role/SageMakerRole",
            region="us-east-1",
            input_graph_s3="s3://my-bucket/acm/",
            output_graph_s3="s3://my-bucket/acm_output/{{ ds_nodash }}/",
            graph_name="acm",
            graph_config_file="acm_raw/config.json",
            sm_estimator_parameters="volume_size_in_gb=10",
        )

    :param input_graph_s3: S3 prefix of the raw graph data, config file included (templated).
    :param output_graph_s3: S3 prefix the constructed graph is written to (templated).
    :param graph_name: Name of the graph (templated).
    :param graph_config_file: Path of the GConstruct JSON config, relative to
        ``input_graph_s3`` (templated).

    The other parameters (``image_url``, ``role``, ``instance_type``, ..., ``aws_conn_id``,
    ``wait_for_completion``, ``deferrable``) are described in
    :class:`~graphstorm_provider.operators.base.GraphStormBaseOperator`. ``sm_estimator_parameters``
    takes the SageMaker ``Processor`` argument names (``volume_size_in_gb``,
    ``max_runtime_in_seconds``, ...).

    :return: ``{"job_name": ..., "output_graph_s3": ...}``
    """

    spec_module = "graphstorm_provider.jobs.gconstruct"
    spec_class_name = "GConstructSpec"
    template_fields: Sequence[str] = (
        *COMMON_TEMPLATE_FIELDS,
        "input_graph_s3",
        "output_graph_s3",
        "graph_name",
        "graph_config_file",
    )

    def __init__(
        self,
        *,
        input_graph_s3: str,
        output_graph_s3: str,
        graph_name: str,
        graph_config_file: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_graph_s3 = input_graph_s3
        self.output_graph_s3 = output_graph_s3
        self.graph_name = graph_name
        self.graph_config_file = graph_config_file
