"""``GSInferOperator``: GraphStorm offline inference as a SageMaker Training job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphstorm_provider.operators.base import COMMON_TEMPLATE_FIELDS
from graphstorm_provider.operators.graphstorm_job import GRAPHSTORM_JOB_TEMPLATE_FIELDS, GraphStormJobOperator


class GSInferOperator(GraphStormJobOperator):
    """
    Run GraphStorm inference with a trained model, on SageMaker (Training job).

    Same job as GraphStorm's SageMaker launch script ``launch_infer.py``. ``model_artifact_s3`` usually comes from the
    training task: ``model_artifact_s3=train.output["model_artifact_s3"]``.

    .. code-block:: python

        infer = GSInferOperator(
            task_id="infer",
            image_url="123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-gpu",
            role="arn:aws:iam::123456789012:role/SageMakerRole",
            region="us-east-1",
            graph_data_s3="s3://my-bucket/ogbn_arxiv_nc_2p/",
            yaml_s3="s3://my-bucket/config/arxiv_nc.yaml",
            model_artifact_s3=train.output["model_artifact_s3"],
            output_emb_s3="s3://my-bucket/embeddings/{{ ds_nodash }}/",
            output_prediction_s3="s3://my-bucket/predictions/{{ ds_nodash }}/",
            graph_name="ogbn-arxiv",
            task_type="node_classification",
            graphstorm_args="--num-layers 1 --hidden-size 128 --backend gloo",
        )

    :param graph_data_s3: S3 prefix of the partitioned graph (templated).
    :param yaml_s3: S3 URI of the GraphStorm inference YAML config (templated).
    :param model_artifact_s3: S3 prefix of the trained model (templated).
    :param graph_name: Name of the graph (templated).
    :param task_type: The model's task type, or ``compute_emb`` for embeddings only (templated).
    :param custom_script: Path, inside the image, of a custom GraphStorm inference script
        (templated).
    :param output_emb_s3: S3 prefix the node embeddings are written to (templated).
    :param output_prediction_s3: S3 prefix the predictions are written to (templated).
    :param raw_node_mappings_s3: S3 prefix of GConstruct's raw node ID mappings, to report
        results with the original node IDs (templated).
    :param model_sub_path: Sub-folder of ``model_artifact_s3`` holding the model to use, e.g.
        ``epoch-1`` (templated).

    The other parameters are described in
    :class:`~graphstorm_provider.operators.base.GraphStormBaseOperator`.

    :return: ``{"job_name": ..., "output_emb_s3": ..., "output_prediction_s3": ...}`` (the
        outputs the job writes)
    """

    spec_module = "graphstorm_provider.jobs.infer"
    spec_class_name = "InferSpec"
    template_fields: Sequence[str] = (
        *COMMON_TEMPLATE_FIELDS,
        *GRAPHSTORM_JOB_TEMPLATE_FIELDS,
        "output_emb_s3",
        "output_prediction_s3",
        "raw_node_mappings_s3",
        "model_sub_path",
    )

    def __init__(
        self,
        *,
        output_emb_s3: str | None = None,
        output_prediction_s3: str | None = None,
        raw_node_mappings_s3: str | None = None,
        model_sub_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_emb_s3 = output_emb_s3
        self.output_prediction_s3 = output_prediction_s3
        self.raw_node_mappings_s3 = raw_node_mappings_s3
        self.model_sub_path = model_sub_path
