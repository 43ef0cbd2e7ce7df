"""Job requests for the compose tests.

``training_request`` builds a JobRequest the way the step specs render one (the
SageMaker ``create_training_job`` kwargs); tests that need the real specs use them
directly. Kept tiny so the pure rendering tests need nothing but the contract.
``script_job`` is the request of the probe tests: every host runs a small Python script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphstorm_provider.jobs.request import JobRequest


def script_job(
    image: str,
    name: str,
    script: str,
    *,
    args: Sequence[str] = (),
    count: int = 2,
    actions: Mapping[str, str] | None = None,
    environment: Mapping[str, str] | None = None,
    max_runtime_s: int = 300,
    output_path: str | None = None,
    outputs: Mapping[str, str] | None = None,
) -> JobRequest:
    """
    A training request whose ``count`` hosts each run ``python3 -c script *args``.

    ``actions`` maps a host (``algo-2``) to what the script should do there, passed as
    ``ACTION_algo_2`` in the environment (beside ``environment``); ``output_path`` is SageMaker's
    ``S3OutputPath``, where ``model.tar.gz`` goes.
    """
    env = {f"ACTION_{host.replace('-', '_')}": action for host, action in (actions or {}).items()}
    env.update(environment or {})
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "-c", script],
            "ContainerArguments": list(args),
        },
        "RoleArn": "local",
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": count, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "Environment": env,
    }
    if output_path is not None:
        request["OutputDataConfig"] = {"S3OutputPath": output_path}
    return JobRequest(kind="training", step="train", request=request, outputs=dict(outputs or {}), region="us-east-1")


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
