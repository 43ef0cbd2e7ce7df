"""2-host training in real containers: SageMaker's ``model.tar.gz`` holds the whole chosen checkpoint.

SageMaker packs the leader's ``/opt/ml/model`` (algo-1's) into ``model.tar.gz``. On a graph with a
featureless node type (``genre`` of the synthetic user/movie/genre graph: GraphStorm gives it
learnable sparse embeddings) every trainer rank saves its slice as ``genre/sparse_emb_<rank>.pt``
on its own host. The model folder under ``--model-artifact-s3`` held every host's; the leader's
``/opt/ml/model`` held only its own (it copied its local checkpoint folder), so the archive lacked
algo-2's share. The leader now fills it from the model folder once every host's upload is in.

The compose emulation packs no ``model.tar.gz`` (our entry points upload the model themselves), so
the test takes algo-1's ``/opt/ml/model`` out of its exited container before teardown and packs it
as SageMaker does (the folder's contents at the archive's top). The faster test of the same with
two entry-point processes: ``tests/test_train_model_dir.py``.

Needs the job image (``docker/build_image.sh``; ``GRAPHSTORM_IMAGE`` picks the tag) and an
engine: skipped, with the reason, only where no engine can run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from bench import multihost_stress as stress

LEADER = "algo-1"
CONTAINER_MODEL_DIR = "/opt/ml/model"
MANIFEST = "_manifest.json"
METRICS = "metrics.json"  # uploaded beside the model by the leader, not part of the model dir
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
FEATURELESS_NTYPE = "genre"
NUM_EPOCHS = 2
COPY_TIMEOUT_S = 120


def _leader_model_runner(job, work: Path, model_copy: Path, log):
    """A compose runner that copies the leader's ``/opt/ml/model`` out of its container before teardown."""
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner

    class LeaderModelRunner(ComposeJobRunner):
        def teardown(self) -> float:
            if self.tool is not None and not model_copy.exists():
                source = f"{self.containers[LEADER]}:{CONTAINER_MODEL_DIR}"
                subprocess.run(
                    [self.tool.engine, "cp", source, str(model_copy)],
                    env=self.env,
                    check=False,  # a missing folder fails the test's own assertion
                    capture_output=True,
                    timeout=COPY_TIMEOUT_S,
                )
            return super().teardown()

    return LeaderModelRunner(job, log=log, work_dir=work, timeout_s=stress.JOB_TIMEOUT_S)


def pack_like_sagemaker(folder: Path, archive: Path) -> Path:
    """``model.tar.gz`` of ``folder``: its entries at the archive's top."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def archive_digests(archive: Path) -> dict[str, str]:
    """``{member path: SHA-256}`` of every file in a ``.tar.gz``."""
    out = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                out[member.name] = hashlib.sha256(handle.read()).hexdigest()
    return out


def chosen_checkpoint_files(model_folder: Path) -> tuple[str, dict[str, str]]:
    """
    The newest checkpoint of a model folder, from its manifest, and ``{path in the model dir: SHA-256}``.

    What GraphStorm's own SageMaker script puts in ``/opt/ml/model`` on one shared filesystem:
    the checkpoint's files at the top, the folder's top-level config files beside them.
    """
    manifest = json.loads((model_folder / MANIFEST).read_text())
    files = {f["path"]: f["sha256"] for f in manifest["files"]}
    epochs = {path.split("/", 1)[0] for path in files if path.startswith("epoch-") and path.endswith("/model.bin")}
    newest = max(epochs, key=lambda name: int(name.split("-")[1]))
    inside = {path[len(newest) + 1 :]: sha for path, sha in files.items() if path.startswith(newest + "/")}
    configs = {
        path: sha
        for path, sha in files.items()
        if "/" not in path and path.endswith(CONFIG_SUFFIXES) and path != METRICS
    }
    return newest, {**inside, **configs}


@pytest.mark.e2e
def test_two_host_model_tar_holds_every_hosts_sparse_embeddings(compose_tool, job_image, tmp_path):
    from graphstorm_provider.jobs.train import TrainSpec

    prepared = stress.prepare_graph(tmp_path / "data", job_image)
    model_folder = tmp_path / "model"
    hyperparameters = list(stress.HYPERPARAMETERS)
    hyperparameters[hyperparameters.index("--num-epochs") + 1] = str(NUM_EPOCHS)
    job = TrainSpec(
        image_url=job_image,
        role="local",
        instance_type="local",
        instance_count=2,
        region="us-east-1",
        graph_data_s3=prepared.graph_uri,
        yaml_s3=prepared.yaml_uri,
        model_artifact_s3=f"file://{model_folder}/",
        graph_name=stress.GRAPH,
        task_type=stress.TASK,
        graphstorm_args=tuple(hyperparameters),
        task_name=f"gs-model-tar-{uuid.uuid4().hex[:6]}",
    ).build()
    lines: list[str] = []
    model_copy = tmp_path / "algo-1-model"
    runner = _leader_model_runner(job, tmp_path / "train-work", model_copy, lines.append)
    started = time.monotonic()
    try:
        runner.run()
    finally:
        runner.stop()
    print(f"2-host training: {time.monotonic() - started:.0f} s")
    assert runner.leftovers() == []

    checkpoint, expected = chosen_checkpoint_files(model_folder)
    assert checkpoint == f"epoch-{NUM_EPOCHS - 1}"
    # The model folder holds one sparse embedding file per trainer rank: one per host here.
    sparse = sorted(path for path in expected if path.startswith(f"{FEATURELESS_NTYPE}/sparse_emb_"))
    assert sparse == [f"{FEATURELESS_NTYPE}/sparse_emb_{rank:05d}.pt" for rank in range(2)], sorted(expected)

    assert model_copy.is_dir(), f"no {CONTAINER_MODEL_DIR} copied out of {LEADER}:\n" + "\n".join(lines[-40:])
    archive = pack_like_sagemaker(model_copy, tmp_path / "model.tar.gz")
    packed = archive_digests(archive)
    assert sorted(packed) == sorted(expected)
    assert packed == expected  # byte for byte what the model folder's manifest lists
