"""Distributed partitioning on 2 containers (compose backend), and GraphStorm training on the
2-partition result in 2 containers.

Needs the job image with this checkout's entry points (``GRAPHSTORM_IMAGE``, built by
``docker/build_image.sh``) and an engine: skipped, with the reason, only where no engine can run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from graphstorm_provider.config import runtime_python

TESTS = Path(__file__).resolve().parent
GRAPH = "chunkyc"
TIMEOUT = 1800


@pytest.fixture(scope="module")
def chunked(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("partition-compose")
    subprocess.run(
        [runtime_python(), str(TESTS / "chunked_graphs.py"), str(base / "chunked"), "--name", GRAPH, "--scale", "10"],
        check=True,
        timeout=TIMEOUT,
    )
    return base


def _partition(job_image: str, base: Path, num_parts: int, out: str) -> Path:
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    from graphstorm_provider.jobs.partition import PartitionSpec

    job = PartitionSpec(
        image_url=job_image,
        role="local",
        instance_type="local",
        instance_count=2,
        region="us-east-1",
        graph_data_s3=f"file://{base}/chunked",
        num_parts=num_parts,
        output_data_s3=f"file://{base}/{out}",
        metadata_filename="metadata.json",
    ).build()
    lines: list[str] = []
    ComposeJobRunner(job, log=lines.append, work_dir=base / f"work-{out}", timeout_s=TIMEOUT).run()
    return base / out


def _check(base: Path, out: Path) -> dict:
    proc = subprocess.run(
        [
            runtime_python(),
            str(TESTS / "partition_checks.py"),
            str(base / "chunked"),
            "metadata.json",
            str(out / f"{GRAPH}.json"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_containers_build_four_partitions(compose_tool, job_image, chunked):
    out = _partition(job_image, chunked, 4, "four")
    assert _check(chunked, out)["num_parts"] == 4


def test_graphstorm_trains_on_two_containers_on_the_two_partition_output(compose_tool, job_image, chunked):
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    from graphstorm_provider.jobs.train import TrainSpec

    out = _partition(job_image, chunked, 2, "two")
    assert _check(chunked, out)["num_parts"] == 2
    (chunked / "nc.yaml").write_text(
        "---\n"
        + yaml.safe_dump(
            {
                "version": 1.0,
                "gsf": {
                    "basic": {"model_encoder_type": "rgcn", "backend": "gloo", "verbose": False},
                    "gnn": {"use_mini_batch_infer": False},
                    "input": {
                        "restore_model_path": None,
                        "node_feat_name": ["author:feat", "paper:feat", "venue:feat"],
                    },
                    "output": {"save_model_path": None, "save_embed_path": None},
                    "hyperparam": {"dropout": 0.0, "wd_l2norm": 0, "eval_batch_size": 1024},
                    "rgcn": {"num_bases": -1, "use_self_loop": True, "use_node_embeddings": False},
                    "node_classification": {
                        "target_ntype": "paper",
                        "label_field": "label",
                        "multilabel": False,
                        "num_classes": 3,
                    },
                },
            },
            sort_keys=False,
        )
    )
    job = TrainSpec(
        image_url=job_image,
        role="local",
        instance_type="local",
        instance_count=2,
        region="us-east-1",
        graph_data_s3=f"file://{out}",
        yaml_s3=f"file://{chunked}/nc.yaml",
        model_artifact_s3=f"file://{chunked}/model",
        graph_name=GRAPH,
        task_type="node_classification",
        graphstorm_args=(
            "--num-epochs",
            "1",
            "--hidden-size",
            "8",
            "--num-layers",
            "1",
            "--fanout",
            "5",
            "--batch-size",
            "64",
            "--lr",
            "0.01",
        ),
    ).build()
    lines: list[str] = []
    ComposeJobRunner(job, log=lines.append, work_dir=chunked / "work-train", timeout_s=TIMEOUT).run()
    assert (chunked / "model" / "epoch-0" / "model.bin").is_file(), "\n".join(lines[-40:])
