"""What the GraphStorm operators add to a DAG file's parse time, and what gs-sagemaker --dry-run costs.

Each figure is the median over fresh interpreters (the import cache is per process), measured
inside the process after ``airflow.sdk`` is already imported (every DAG file imports it anyway):

    .venv/bin/python bench/operator_import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "graphstorm operators (all four)": "import graphstorm_provider.operators.gconstruct, "
    "graphstorm_provider.operators.partition, graphstorm_provider.operators.train, "
    "graphstorm_provider.operators.infer",
    "amazon provider sagemaker operators module": "import airflow.providers.amazon.aws.operators.sagemaker",
    "amazon provider sagemaker hook + trigger": "import airflow.providers.amazon.aws.hooks.sagemaker, "
    "airflow.providers.amazon.aws.triggers.sagemaker",
}
PROBE = """
import time, sys
import airflow.sdk
t = time.perf_counter()
{stmt}
print(time.perf_counter() - t)
"""


def median_seconds(stmt: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(stmt=stmt)], capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def median_wall(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    for name, stmt in CASES.items():
        print(f"{name:45s} {median_seconds(stmt, runs) * 1000:8.1f} ms over airflow.sdk (median of {runs})")
    sdk = median_wall([sys.executable, "-c", "import airflow.sdk"], runs)
    label = 'python -c "import airflow.sdk" (process)'
    print(f"{label:45s} {sdk * 1000:8.1f} ms wall")
    cli = str(Path(sys.executable).parent / "gs-sagemaker")
    dry = [
        cli,
        "train",
        "--dry-run",
        "--image-url",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/gs:sm",
        "--role",
        "arn:aws:iam::123456789012:role/SM",
        "--graph-data-s3",
        "s3://bucket/g/",
        "--yaml-s3",
        "s3://bucket/t.yaml",
        "--model-artifact-s3",
        "s3://bucket/m/",
        "--graph-name",
        "g",
        "--task-type",
        "node_classification",
    ]
    print(f"{'gs-sagemaker train --dry-run (process)':45s} {median_wall(dry, runs) * 1000:8.1f} ms wall")


if __name__ == "__main__":
    main()
