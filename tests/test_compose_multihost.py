"""Multi-host GraphStorm in real containers: the emulated SageMaker cluster end to end.

* 2-instance training and inference of the synthetic ACM graph (2 partitions, built by
  GConstruct with ``--num-parts 2``) through ``LocalComposeOperator`` in an Airflow DAG run,
  then the model, the embeddings and the predictions are checked;
* a host killed mid-training fails the job, naming the host, and leaves nothing behind.

Needs the job image (``docker/build_image.sh``, a no-op when it is up to date) and an engine:
skipped, with the reason, only where no engine can run.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from graphstorm_provider.data import storage
from graphstorm_provider.data.train_config import hyperparameter_args
from tests.compose_engine import JOB_IMAGE

IMAGE = JOB_IMAGE
GRAPH = "acm"
NUM_CLASSES = 5
HIDDEN = 16
HYPERPARAMETERS = hyperparameter_args(
    num_epochs=2, hidden_size=HIDDEN, num_layers=2, fanout=10, batch_size=128, lr=0.01
)


@pytest.fixture(scope="module")
def partitioned_graph(tmp_path_factory) -> Path:
    """Synthetic ACM raw graph -> GConstruct (one host) -> 2 partitions, plus the training YAML."""
    from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm
    from graphstorm_provider.data.train_config import node_classification_yaml
    from graphstorm_provider.execution.local import LocalJobRunner
    from graphstorm_provider.jobs.gconstruct import GConstructSpec

    base = tmp_path_factory.mktemp("multihost")
    spec = SyntheticAcmSpec(num_papers=1500, num_classes=NUM_CLASSES, seed=1)
    summary = generate_synthetic_acm(f"file://{base}/raw", spec)
    storage.write_bytes(f"file://{base}/config/acm_nc.yaml", node_classification_yaml(NUM_CLASSES).encode())
    job = GConstructSpec(
        image_url=IMAGE,
        role="local",
        instance_type="local",
        input_graph_s3=f"file://{base}/raw",
        output_graph_s3=f"file://{base}/graph",
        graph_name=GRAPH,
        graph_config_file=summary.graph_config_file,
        graphstorm_args=("--num-parts", "2"),
    ).build()
    LocalJobRunner(job, log=lambda line: None).run()
    assert sorted(p.name for p in (base / "graph").glob("part*")) == ["part0", "part1"]
    return base


DAG_TEMPLATE = """
from datetime import datetime
from airflow.sdk import DAG
from graphstorm_provider.operators.local_compose import LocalComposeOperator

BASE = "file://{base}"
COMMON = dict(image_url="{image}", instance_count=2, graph_name="{graph}", task_type="node_classification",
              graph_data_s3=BASE + "/graph", yaml_s3=BASE + "/config/acm_nc.yaml",
              graphstorm_args={hyperparameters!r}, region="us-east-1", aws_conn_id=None)

with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    train = LocalComposeOperator(task_id="train", step="training",
                                 model_artifact_s3=BASE + "/{{{{ run_id | replace(':', '-') | replace('+', '-') }}}}/model",
                                 **COMMON)
    infer = LocalComposeOperator(task_id="infer", step="inference",
                                 model_artifact_s3=train.output["model_artifact_s3"],
                                 output_emb_s3=BASE + "/out/embeddings", output_prediction_s3=BASE + "/out/predictions",
                                 **COMMON)
    train >> infer
"""


def test_two_host_training_and_inference_through_the_operator(
    compose_tool, job_image, partitioned_graph, load_dag, monkeypatch
):
    from airflow.utils.state import DagRunState

    from graphstorm_provider.data.evaluate import evaluate_node_classification

    for name in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    base = partitioned_graph
    dag = load_dag(
        DAG_TEMPLATE.format(
            base=base, image=job_image, graph=GRAPH, dag_id="gs_compose_multihost", hyperparameters=HYPERPARAMETERS
        ),
        "gs_compose_multihost",
    )
    started = time.monotonic()
    run = dag.test()
    print(f"2-host train + infer DAG run: {time.monotonic() - started:.0f} s")
    assert run.state == DagRunState.SUCCESS, f"DAG run ended {run.state}"

    # The model: written once per checkpoint, with GraphStorm's layout.
    models = list(base.glob("*/model/epoch-*/model.bin"))
    assert models, f"no model.bin under {base}/*/model"

    # Embeddings and predictions: both hosts wrote their partition's share, keyed by raw IDs.
    predictions = sorted(p.name for p in (base / "out" / "predictions" / "paper").glob("*.parquet"))
    embeddings = sorted(p.name for p in (base / "out" / "embeddings" / "paper").glob("*.parquet"))
    assert [name.split("-")[1][:5] for name in predictions] == ["00000", "00001"], predictions
    assert [name.split("-")[1][:5] for name in embeddings] == ["00000", "00001"], embeddings
    evaluation = evaluate_node_classification(
        f"file://{base}/raw", f"file://{base}/out/predictions", f"file://{base}/out/embeddings"
    )
    assert evaluation.num_test_predicted == evaluation.num_test_embedded == evaluation.num_test > 0
    assert evaluation.embedding_dim == HIDDEN
    assert evaluation.test_accuracy > 2 * evaluation.chance, evaluation.to_dict()

    # Nothing is left running or defined.
    leftovers = subprocess.run(
        [compose_tool.engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    )
    assert not [n for n in leftovers.stdout.split() if n.startswith("gs-train-acm") or n.startswith("gs-infer-acm")]


# Kill -> the runner's "host algo-2 exited" line: detection is immediate by design, and the slack is
# for a loaded machine; the job's peer timeout (PEER_TIMEOUT_S) is far above it, so a detection
# that waits out a rendezvous or peer timeout still fails the test.
FAILURE_BOUND_S = 120
# GSENTRY_PEER_TIMEOUT of the kill test's job: longer than the runner's timeout, so no path through it passes.
PEER_TIMEOUT_S = 3600
# Run inside algo-2: SIGKILL its torch.distributed.launch (the host's trainer group).
KILL_TRAINER = (
    "import os, signal\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    if int(pid) == os.getpid():\n"
    "        continue  # this script's own command line names the launcher too\n"
    "    try:\n"
    "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "    except OSError:\n"
    "        continue\n"
    "    if b'torch.distributed.launch' in cmd:\n"
    "        print(pid, flush=True); os.kill(int(pid), signal.SIGKILL)\n"
)


@pytest.mark.parametrize("target", ["host container", "trainer process"])
def test_host_killed_mid_training_fails_the_job_and_tears_down(
    compose_tool, job_image, partitioned_graph, tmp_path, target
):
    from graphstorm_provider.execution.compose_runner import ComposeJobError, ComposeJobRunner
    from graphstorm_provider.jobs.train import TrainSpec

    base = partitioned_graph
    long_run = hyperparameter_args(num_epochs=200, hidden_size=HIDDEN, num_layers=2, fanout=10, batch_size=32, lr=0.01)
    job = TrainSpec(
        image_url=job_image,
        role="local",
        instance_type="local",
        instance_count=2,
        region="us-east-1",
        graph_data_s3=f"file://{base}/graph",
        yaml_s3=f"file://{base}/config/acm_nc.yaml",
        model_artifact_s3=f"file://{tmp_path}/model",
        graph_name=GRAPH,
        task_type="node_classification",
        graphstorm_args=tuple(long_run),
        task_name="gs-kill-test",
        sm_estimator_parameters={"environment": {"GSENTRY_PEER_TIMEOUT": str(PEER_TIMEOUT_S)}},
    ).build()
    training = threading.Event()
    lines: list[str] = []
    exited_at: list[float] = []

    def log(line: str) -> None:
        lines.append(line)
        # The runner's own line (compose_runner._exited) that it saw the killed host's container exit.
        if line.startswith("host algo-2 exited with code"):
            exited_at.append(time.monotonic())
        # GraphStorm logs batches on rank 0 only: once algo-1 reports an epoch's batch,
        # both hosts are training.
        if "| Epoch" in line and "| Batch" in line:
            training.set()

    runner = ComposeJobRunner(job, log=log, work_dir=tmp_path / "work", timeout_s=1200)
    killed_at: list[float] = []

    def kill_when_training() -> None:
        if not training.wait(900):
            return
        container = runner.containers["algo-2"]
        if target == "host container":
            argv = [compose_tool.engine, "kill", container]
        else:
            argv = [compose_tool.engine, "exec", container, "python3", "-c", KILL_TRAINER]
        sent = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        # The killed host may fail and its container exit before ``exec`` returns: then the engine
        # ends the exec (exit 255) and its output may be lost. The assertions below (which host
        # failed, how, how soon) show whether the kill took effect.
        if target == "host container" or proc.stdout.strip() or proc.returncode != 0:
            killed_at.append(sent)

    killer = threading.Thread(target=kill_when_training, daemon=True)
    killer.start()
    try:
        with pytest.raises(ComposeJobError) as failed:
            runner.run()
        ended = time.monotonic()
    finally:
        runner.stop()
        killer.join(timeout=30)
    assert killed_at, "training never started on algo-2:\n" + "\n".join(lines[-40:])
    assert failed.value.host == "algo-2", str(failed.value)
    assert failed.value.exit_code == (137 if target == "host container" else 1)
    assert "algo-2" in str(failed.value)
    assert exited_at, "the runner never saw algo-2 exit:\n" + "\n".join(lines[-40:])
    detected = exited_at[0] - killed_at[0]
    assert detected < FAILURE_BOUND_S, f"algo-2's exit was seen {detected:.0f} s after the kill"
    # Nothing remains: no container or network of the job, no job process on this machine.
    assert runner.leftovers() == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in ps.splitlines() if runner.project in line], ps
    print(f"{target} killed -> exit seen: {detected:.1f} s, failed job + teardown: {ended - killed_at[0]:.1f} s")
