"""``GSTrainOperator``: GraphStorm model training as a SageMaker Training job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graphstorm_provider.operators.base import COMMON_TEMPLATE_FIELDS
from graphstorm_provider.operators.graphstorm_job import GRAPHSTORM_JOB_TEMPLATE_FIELDS, GraphStormJobOperator

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest


class GSTrainOperator(GraphStormJobOperator):
    """
    Train a GraphStorm model on a partitioned graph, on SageMaker (Training job).

    Same job as GraphStorm's SageMaker launch script ``launch_train.py``. Flags of GraphStorm itself go in
    ``graphstorm_args`` and are forwarded verbatim.

    .. code-block:: python

        train = GSTrainOperator(
            task_id="train",
            image_url="123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-gpu",
            role="arn:aws:iam::123456789012:role/SageMakerRole",
            region="us-east-1",
            graph_data_s3="s3://my-bucket/ogbn_arxiv_nc_2p/",
            yaml_s3="s3://my-bucket/config/arxiv_nc.yaml",
            model_artifact_s3="s3://my-bucket/models/{{ ds_nodash }}/",
            graph_name="ogbn-arxiv",
            task_type="node_classification",
            graphstorm_args=["--num-layers", "1", "--hidden-size", "128", "--backend", "gloo"],
        )
        infer = GSInferOperator(..., model_artifact_s3=train.output["model_artifact_s3"])

    :param graph_data_s3: S3 prefix of the partitioned graph (templated).
    :param yaml_s3: S3 URI of the GraphStorm training YAML config (templated).
    :param model_artifact_s3: S3 prefix the trained model is saved to (templated).
    :param graph_name: Name of the graph (templated).
    :param task_type: ``node_classification``, ``node_regression``, ``edge_classification``,
        ``edge_regression``, ``link_prediction`` or ``multi_task`` (templated).
    :param custom_script: Path, inside the image, of a custom GraphStorm training script
        (templated).
    :param model_checkpoint_to_load: S3 prefix of a saved model checkpoint to start from, for
        fine-tuning (templated).

    The other parameters are described in
    :class:`~graphstorm_provider.operators.base.GraphStormBaseOperator`.

    Training progress: each epoch's line of the job's log (``GSENTRY_EPOCH_METRICS``, from the
    local/compose stream or CloudWatch) is also logged as one readable line as it happens
    (``epoch 2: loss 0.91, validation accuracy 0.62, ...``). When the job has completed, the
    operator reads the ``metrics.json`` the job wrote beside the model and writes
    ``learning_curve.png`` there (``operators/metrics.py``).

    :return: ``{"job_name": ..., "model_artifact_s3": ..., "metrics": <metrics.json>,
        "learning_curve_s3": ...}`` (``metrics`` and ``learning_curve_s3`` only when the job wrote
        metrics, i.e. not with ``wait_for_completion=False``)
    """

    spec_module = "graphstorm_provider.jobs.train"
    spec_class_name = "TrainSpec"
    template_fields: Sequence[str] = (
        *COMMON_TEMPLATE_FIELDS,
        *GRAPHSTORM_JOB_TEMPLATE_FIELDS,
        "model_checkpoint_to_load",
    )

    def __init__(self, *, model_checkpoint_to_load: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_checkpoint_to_load = model_checkpoint_to_load

    # --- training progress (operators/metrics.py) ------------------------------------------
    def follow_job_line(self, line: str) -> str | None:
        from graphstorm_provider.operators.metrics import epoch_summary

        return epoch_summary(line)

    def job_results(self, job: JobRequest) -> dict[str, Any]:
        from graphstorm_provider.operators.metrics import training_results

        return training_results(job.outputs["model_artifact_s3"], aws_conn_id=self.aws_conn_id)
