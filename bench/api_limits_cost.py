"""What checking a request against SageMaker's API model (jobs/api_limits.py) costs at spec construction.

Three figures, each a median:

* the one-off model read (botocore's SageMaker model file, once per process; the module already
  imported), over fresh interpreters;
* one spec construction with the check and without it (``check_request`` replaced by a no-op),
  after the model is loaded and the patterns compiled, alternating, in this process;
* the walk of one rendered request alone.

    .venv/bin/python bench/api_limits_cost.py [--runs 7] [--number 2000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import timeit
from typing import Any
from unittest import mock

from graphstorm_provider.jobs import TrainSpec, api_limits, common

TRAIN: dict[str, Any] = {
    "image_url": "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker",
    "role": "arn:aws:iam::123456789012:role/SageMakerExecutionRole",
    "graph_data_s3": "s3://bucket-a/graph/",
    "yaml_s3": "s3://bucket-a/t.yaml",
    "model_artifact_s3": "s3://bucket-a/model/",
    "graph_name": "g",
    "task_type": "node_classification",
    "graphstorm_args": "--num-layers 1 --hidden-size 128 --backend gloo --batch-size 128",
    # Every kind of member the walk meets: tags, environment, lists, KMS patterns, integers.
    "sm_estimator_parameters": (
        "max_run=3600 volume_size=100 volume_kms_key='alias/gs' subnets=['subnet-1','subnet-2'] "
        "security_group_ids=['sg-1'] keep_alive_period_in_seconds=600 "
        "metric_definitions=[{'Name':'loss','Regex':'loss=([0-9.]+)'}] "
        "environment={'GS_DEBUG':'1'} tags={'team':'graphs','cost-centre':'gs-42'}"
    ),
}
LOAD = """
import time
from graphstorm_provider.jobs import api_limits
t = time.perf_counter()
assert api_limits.service_shapes() is not None
print(time.perf_counter() - t)
"""


def model_load_seconds(runs: int) -> float:
    """Median of the first model read (the module already imported), each in a fresh interpreter."""
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def per_call_us(statement: Any, number: int) -> float:
    """The mean time of ``number`` calls, in microseconds."""
    return timeit.timeit(statement, number=number) / number * 1e6


def construction_us(number: int, runs: int) -> tuple[list[float], list[float]]:
    """Spec construction with and without the check, alternating (the machine's load hits both alike)."""
    checked, unchecked = [], []
    for _ in range(runs):
        checked.append(per_call_us(lambda: TrainSpec(**TRAIN), number))
        with mock.patch.object(common, "check_request", return_value=None):
            unchecked.append(per_call_us(lambda: TrainSpec(**TRAIN), number))
    return checked, unchecked


def figures(samples: list[float]) -> str:
    return f"median {statistics.median(samples):7.1f} us, min {min(samples):7.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--number", type=int, default=1000)
    args = parser.parse_args()
    print(f"model read (first service_shapes(), fresh interpreter): {model_load_seconds(args.runs) * 1000:.1f} ms")
    request = TrainSpec(**TRAIN).build().request  # loads the model, compiles the patterns it meets
    model = api_limits.service_shapes()
    assert model is not None
    shape = model.inputs[api_limits.OPERATIONS["training"]]
    checked, unchecked = construction_us(args.number, args.runs)
    walk = [
        per_call_us(lambda: next(api_limits.violations(request, shape, model.shapes), None), args.number)
        for _ in range(args.runs)
    ]
    print(f"spec construction with the check:    {figures(checked)}")
    print(f"spec construction without the check: {figures(unchecked)}")
    print(f"the walk of one request alone:       {figures(walk)}")


if __name__ == "__main__":
    main()
