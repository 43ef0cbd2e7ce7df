"""The acceptance check with real GraphStorm: stopping a local training job mid-training (as
``on_kill`` does) leaves no process behind: not the entry point, not GraphStorm's launcher, not
the DistDGL server or the torch trainer workers.

Needs the GraphStorm runtime (``bash scripts/setup_runtime.sh``); takes about a minute.
"""

from __future__ import annotations

import logging
import shlex
import signal
import tempfile
import threading
import uuid

import pytest

from graphstorm_provider import config
from graphstorm_provider.execution import proctree
from graphstorm_provider.execution.local import LocalJobError, LocalJobRunner
from tests.process_trees import airflow_tasks_test, end_tree, live_processes_with

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime_python() -> str:
    try:
        return config.runtime_python()
    except config.RuntimeSetupError as exc:
        pytest.skip(str(exc))


class _Watch(logging.Handler):
    """Sets ``training`` once GraphStorm reports a training step."""

    def __init__(self):
        super().__init__()
        self.training = threading.Event()
        self.lines: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        self.lines.append(message)
        if "Epoch" in message and ("Part 0" in message or "Train" in message or "loss" in message):
            self.training.set()


@pytest.fixture(autouse=True)
def _work_dirs_under_tmp_path(tmp_path, monkeypatch):
    """Stopped jobs keep their work dirs: keep this module's out of the real /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # for the Airflow task started in a subprocess


@pytest.fixture(scope="module")
def graph(runtime_python, tmp_path_factory) -> dict:
    """A small synthetic graph, GConstruct-ed by the local backend (real GraphStorm)."""
    from graphstorm_provider.data import storage
    from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm
    from graphstorm_provider.data.train_config import node_classification_yaml
    from graphstorm_provider.operators.gconstruct import GConstructOperator

    base = f"file://{tmp_path_factory.mktemp('gs-kill')}"
    graph_name = f"killtest{uuid.uuid4().hex[:6]}"  # DistDGL names shared memory after the graph
    spec = SyntheticAcmSpec(num_papers=600, num_classes=3, seed=0)
    summary = generate_synthetic_acm(f"{base}/raw", spec)
    storage.write_bytes(f"{base}/config/nc.yaml", node_classification_yaml(spec.num_classes).encode())
    common = {
        "image_url": "graphstorm:local",
        "role": "arn:aws:iam::000000000000:role/Local",
        "instance_type": "local",
        "region": "us-west-2",
        "graph_name": graph_name,
    }
    gconstruct = GConstructOperator(
        task_id="gconstruct",
        input_graph_s3=f"{base}/raw",
        output_graph_s3=f"{base}/graph",
        graph_config_file=summary.graph_config_file,
        **common,
    ).build_job()
    LocalJobRunner(gconstruct, runtime_python=runtime_python).run()
    return {"base": base, "graph_name": graph_name, "common": common}


def _long_training_args() -> str:
    """Many epochs: the job must still be training when it is stopped."""
    from graphstorm_provider.data.train_config import hyperparameter_args

    return shlex.join(
        hyperparameter_args(num_epochs=500, hidden_size=16, num_layers=1, fanout=5, batch_size=64, lr=0.01)
    )


def test_stopping_real_training_mid_run_leaves_no_process(runtime_python, graph):
    from graphstorm_provider.operators.train import GSTrainOperator

    base, graph_name = graph["base"], graph["graph_name"]
    train = GSTrainOperator(
        task_id="train",
        graph_data_s3=f"{base}/graph",
        yaml_s3=f"{base}/config/nc.yaml",
        model_artifact_s3=f"{base}/model",
        task_type="node_classification",
        graphstorm_args=_long_training_args(),
        **graph["common"],
    ).build_job()
    log = logging.getLogger(f"test.graphstorm.kill.{graph_name}")
    log.setLevel(logging.INFO)
    watch = _Watch()
    log.addHandler(watch)
    runner = LocalJobRunner(train, runtime_python=runtime_python, log=log, stop_grace_seconds=5)
    errors: list[BaseException] = []

    def run():
        try:
            runner.run()
        except BaseException as exc:  # inspected below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        started = watch.training.wait(600)
        job_processes = proctree.with_marker(runner.marker)
        assert started, "training never started:\n" + "\n".join(watch.lines[-40:])
        # entry point, GraphStorm launcher, DistDGL server, torch launcher, trainer (at least)
        assert len(job_processes) >= 4, job_processes
    finally:
        runner.stop()
        thread.join(120)

    assert proctree.with_marker(runner.marker) == set()
    assert live_processes_with(graph_name) == set()
    assert live_processes_with(str(runner.work_dir)) == set()
    assert len(errors) == 1
    assert isinstance(errors[0], LocalJobError)
    assert "stopped" in str(errors[0])


TRAIN_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("DAG_ID", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    GSTrainOperator(task_id="train", graph_data_s3="BASE/graph", yaml_s3="BASE/config/nc.yaml",
                    model_artifact_s3="BASE/model-airflow", task_type="node_classification",
                    graphstorm_args=ARGS, aws_conn_id=None, **COMMON)
"""


def test_killing_the_airflow_task_mid_training_leaves_no_process(runtime_python, graph, airflow_home):
    """The issue's acceptance: SIGTERM to a running GSTrainOperator task (`airflow tasks test`)."""
    dag_id = f"gs_kill_{uuid.uuid4().hex[:8]}"
    dag_file = airflow_home / "dags" / f"{dag_id}.py"
    dag_file.write_text(
        TRAIN_DAG.replace("DAG_ID", dag_id)
        .replace("BASE", graph["base"])
        .replace("ARGS", repr(_long_training_args()))
        .replace("COMMON", repr(graph["common"]))
    )
    task = airflow_tasks_test(dag_id, "train", watch_for="Epoch", env={config.RUNTIME_PYTHON_ENV: runtime_python})
    graph_data = graph["base"][len("file://") :] + "/graph"
    try:
        assert task.seen.wait(600), "training never started:\n" + task.tail()
        assert len(live_processes_with(graph_data)) >= 1  # the entry point is running
        task.proc.send_signal(signal.SIGTERM)
        task.proc.wait(180)
        task.reader.join(10)
        assert live_processes_with(graph_data) == set()
        assert live_processes_with(graph["graph_name"]) == set()
        assert any("was stopped" in line for line in task.lines), task.tail()
    finally:
        end_tree(task.proc)
        dag_file.unlink(missing_ok=True)
