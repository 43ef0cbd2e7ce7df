"""Job requests for the compose tests.

``training_request`` builds a JobRequest the way the step specs render one (the
SageMaker ``create_training_job`` kwargs); tests that need the real specs use them
directly. Kept tiny so the pure rendering tests need nothing but the contract.
"""

from __future__ import annotations

from graphstorm_provider.jobs.request import JobRequest


def training_request(
    *,
    job_name: str = "gs-train-acm-20261128-120000",
    instance_count: int = 2,
    graph: str = "file:///tmp/gs-compose-test/graph",
    yaml_uri: str = "file:///tmp/gs-compose-test/conf/train.yaml",
    model: str = "file:///tmp/gs-compose-test/out/model",
    environment: dict[str, str] | None = None,
    image_url: str = "graphstorm:sm",
    region: str = "us-east-1",
    extra_args: tuple[str, ...] = ("--num-epochs", "2"),
) -> JobRequest:
    request = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image_url,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "/opt/ml/code/train_entry.py"],
            "ContainerArguments": [
                "--graph-data-s3",
                graph,
                "--train-yaml-s3",
                yaml_uri,
                "--model-artifact-s3",
                model,
                "--graph-name",
                "acm",
                "--task-type",
                "node_classification",
                "--log-level",
                "INFO",
                "--",
                *extra_args,
            ],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/local",
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": instance_count, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Environment": dict(environment or {}),
    }
    return JobRequest(
        kind="training", step="train", request=request, outputs={"model_artifact_s3": model}, region=region
    )
