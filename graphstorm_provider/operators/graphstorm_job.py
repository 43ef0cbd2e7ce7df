"""
What ``GSTrainOperator`` and ``GSInferOperator`` share.

The parameters of a GraphStorm job on a partitioned graph (``jobs.graphstorm_job.GraphStormJobSpec``
on the spec side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphstorm_provider.operators.base import COMMON_TEMPLATE_FIELDS, GraphStormBaseOperator
from graphstorm_provider.operators.init_defaults import fills_default_args

GRAPHSTORM_JOB_TEMPLATE_FIELDS: tuple[str, ...] = (
    "graph_data_s3",
    "yaml_s3",
    "model_artifact_s3",
    "graph_name",
    "gs_task_type",
    "custom_script",
)


@fills_default_args  # one default_args pass per task, not one per class (operators/init_defaults.py)
class GraphStormJobOperator(GraphStormBaseOperator):
    """
    Base class of the training and inference operators. Not used directly.

    :param graph_data_s3: S3 prefix of the partitioned graph (templated).
    :param yaml_s3: S3 URI of the GraphStorm YAML config (templated).
    :param model_artifact_s3: S3 prefix of the model (templated).
    :param graph_name: Name of the graph (templated).
    :param task_type: GraphStorm task type (templated).
    :param custom_script: Path, inside the image, of a custom GraphStorm script (templated).
    """

    template_fields: Sequence[str] = (*COMMON_TEMPLATE_FIELDS, *GRAPHSTORM_JOB_TEMPLATE_FIELDS)

    def __init__(
        self,
        *,
        graph_data_s3: str,
        yaml_s3: str,
        model_artifact_s3: str,
        graph_name: str,
        task_type: str,
        custom_script: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.graph_data_s3 = graph_data_s3
        self.yaml_s3 = yaml_s3
        self.model_artifact_s3 = model_artifact_s3
        self.graph_name = graph_name
        self.gs_task_type = task_type  # BaseOperator.task_type is taken, see base.py
        self.custom_script = custom_script
