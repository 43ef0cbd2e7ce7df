"""The acceptance check with real GraphStorm: stopping a local training job mid-training (as
``on_kill`` does) leaves no process behind: not the entry point, not GraphStorm's launcher, not
the DistDGL server or the torch trainer workers.

Needs the GraphStorm runtime (``bash scripts/setup_runtime.sh``); takes about a minute.
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
import uuid
from pathlib import Path

import pytest

from graphstorm_provider import config
from graphstorm_provider.execution import proctree
from graphstorm_provider.execution.local import LocalJobError, LocalJobRunner

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime_python() -> str:
    try:
        return config.runtime_python()
    except config.RuntimeSetupError as exc:
        pytest.skip(str(exc))


def _processes_mentioning(text: str) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline and proctree.alive(int(name)):
            found.add(int(name))
    return found


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


def test_stopping_real_training_mid_run_leaves_no_process(runtime_python, tmp_path):
    from graphstorm_provider.data import storage
    from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm
    from graphstorm_provider.data.train_config import hyperparameter_args, node_classification_yaml
    from graphstorm_provider.operators.gconstruct import GConstructOperator
    from graphstorm_provider.operators.train import GSTrainOperator

    base = f"file://{tmp_path}/run-{uuid.uuid4().hex[:8]}"
    graph_name = f"killtest{uuid.uuid4().hex[:6]}"  # DistDGL names shared memory after the graph
    spec = SyntheticAcmSpec(num_papers=600, num_classes=3, seed=0)
    summary = generate_synthetic_acm(f"{base}/raw", spec)
    storage.write_bytes(f"{base}/config/nc.yaml", node_classification_yaml(spec.num_classes).encode())
    common = {"image_url": "graphstorm:local", "role": "arn:aws:iam::000000000000:role/Local",
              "instance_type": "local", "region": "us-west-2", "graph_name": graph_name}

    gconstruct = GConstructOperator(task_id="gconstruct", input_graph_s3=f"{base}/raw",
                                    output_graph_s3=f"{base}/graph", graph_config_file=summary.graph_config_file,
                                    **common).build_job()
    LocalJobRunner(gconstruct, runtime_python=runtime_python).run()

    # Many epochs: the job must still be training when it is stopped.
    args = hyperparameter_args(num_epochs=500, hidden_size=16, num_layers=1, fanout=5, batch_size=64, lr=0.01)
    train = GSTrainOperator(task_id="train", graph_data_s3=f"{base}/graph", yaml_s3=f"{base}/config/nc.yaml",
                            model_artifact_s3=f"{base}/model", task_type="node_classification",
                            graphstorm_args=shlex.join(args), **common).build_job()
    log = logging.getLogger(f"test.graphstorm.kill.{graph_name}")
    log.setLevel(logging.INFO)
    watch = _Watch()
    log.addHandler(watch)
    runner = LocalJobRunner(train, runtime_python=runtime_python, log=log, stop_grace_seconds=5)
    errors: list[BaseException] = []

    def run():
        try:
            runner.run()
        except BaseException as exc:  # noqa: BLE001 - inspected below
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
    assert _processes_mentioning(graph_name) == set()
    assert _processes_mentioning(str(runner.work_dir)) == set()
    assert len(errors) == 1 and isinstance(errors[0], LocalJobError) and "stopped" in str(errors[0])
