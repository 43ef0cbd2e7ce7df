"""Arguments of a valid SageMaker job, shared by the spec tests (each test changes one thing)."""

from __future__ import annotations

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"

TRAIN = dict(
    image_url=IMAGE,
    role=ROLE,
    graph_data_s3="s3://bucket-a/graph/",
    yaml_s3="s3://bucket-a/t.yaml",
    model_artifact_s3="s3://bucket-a/model/",
    graph_name="g",
    task_type="node_classification",
)
GCONSTRUCT = dict(
    image_url=IMAGE,
    role=ROLE,
    input_graph_s3="s3://bucket-a/raw/",
    output_graph_s3="s3://bucket-a/graph/",
    graph_name="g",
    graph_config_file="config.json",
)
# TRAIN in the launch scripts' grammar.
TRAIN_ARGV = [
    "--image-url", IMAGE, "--role", ROLE, "--graph-data-s3", "s3://bucket-a/graph/",
    "--yaml-s3", "s3://bucket-a/t.yaml", "--model-artifact-s3", "s3://bucket-a/model/",
    "--graph-name", "g", "--task-type", "node_classification",
]  # fmt: skip
