"""Training progress on the operator side: the entry point's epoch lines read as they come (local
stream and CloudWatch on the moto server), metrics.json into the XCom, the learning curve PNG."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import sys
import time
import zlib
from pathlib import Path

import pytest

from tests.test_operators_sagemaker import _operators


@pytest.fixture(autouse=True)
def _no_input_manifests(monkeypatch):
    """moto runs no job, so the inputs these jobs name carry no manifest (operators/preflight.py)."""
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")


REPO = Path(__file__).resolve().parents[1]
EPOCHS = [
    {
        "epoch": 0,
        "loss": 1.25,
        "last_loss": 1.1,
        "steps": 4,
        "epoch_time": 0.52,
        "validation": {"accuracy": 0.4},
        "test": {"accuracy": 0.38},
    },
    {
        "epoch": 1,
        "loss": 0.75,
        "last_loss": 0.7,
        "steps": 4,
        "epoch_time": 0.47,
        "validation": {"accuracy": 0.66},
        "test": {"accuracy": 0.64},
    },
]


def entry_point_lines(tmp_path: Path, epochs=EPOCHS) -> list[str]:
    """What the train entry point's collector prints for ``epochs`` (its own code, not a copy)."""
    sys.path.insert(0, str(REPO / "entrypoints"))
    try:
        from gsentry.metrics import EpochMetricsCollector
    finally:
        sys.path.remove(str(REPO / "entrypoints"))
    collector = EpochMetricsCollector(path=tmp_path / "metrics.json", seed=3)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for record in epochs:
            for _ in range(record["steps"] - 1):
                collector.on_train_loss(record["loss"])
            collector.on_train_loss(record["loss"])
            collector.on_epoch_end(record["epoch"], record["epoch_time"])
            collector.on_evaluation(record["validation"], record["test"])
    return [f"[algo-1] [trainer-0] {line}" for line in out.getvalue().splitlines()]


def test_the_entry_points_epoch_lines_become_one_readable_line_each(tmp_path):
    from graphstorm_provider.operators.metrics import epoch_summary

    lines = entry_point_lines(tmp_path)
    assert [epoch_summary(line) for line in lines] == [
        "epoch 0: loss 1.25, validation accuracy 0.4, test accuracy 0.38, 0.52 s",
        "epoch 1: loss 0.75, validation accuracy 0.66, test accuracy 0.64, 0.47 s",
    ]
    for other in (
        "[algo-1] Epoch 1 take 0.47 seconds",
        "GSENTRY_EPOCH_METRICS {not json",
        "GSENTRY_EPOCH_METRICS [1, 2]",
        "GSENTRY_EPOCH_METRICS",
    ):
        assert epoch_summary(other) is None


def test_an_epoch_without_evaluation_still_reads_well():
    from graphstorm_provider.operators.metrics import describe_epoch

    assert describe_epoch({"epoch": 4, "loss": None, "validation": None, "test": None}) == "epoch 4: loss n/a"


class _Lines:
    """Collects what the operator logs (its ``log.info`` calls)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, level: int, message: str, *args) -> None:
        self.lines.append(message % args)


def _train_operator(monkeypatch):
    operator_class, kwargs = _operators()["train"]
    operator = operator_class(task_id="train", **kwargs)
    lines = _Lines()
    monkeypatch.setattr(type(operator), "log", property(lambda self: lines))
    return operator, lines


def test_the_train_operator_logs_each_epoch_of_the_local_stream(monkeypatch, tmp_path):
    operator, logged = _train_operator(monkeypatch)
    stream = ["[algo-1] starting", *entry_point_lines(tmp_path), "[algo-1] done"]
    job_log = operator.job_log()
    for line in stream:
        job_log(line)
    # Every job line as it came, and after each epoch line its readable summary.
    assert logged.lines == [
        stream[0],
        stream[1],
        "epoch 0: loss 1.25, validation accuracy 0.4, test accuracy 0.38, 0.52 s",
        stream[2],
        "epoch 1: loss 0.75, validation accuracy 0.66, test accuracy 0.64, 0.47 s",
        stream[3],
    ]


def test_the_train_operator_logs_each_epoch_of_the_cloudwatch_streams(aws_env, monkeypatch, tmp_path):
    """SageMaker: the backend's CloudWatch tail hands the operator the job's lines (moto's logs)."""
    from graphstorm_provider.execution.sagemaker import CloudWatchTail

    logs = aws_env.client("logs")
    job = "gs-train-acm-2026-01-05-00-00-00-000"
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    now_ms = int(time.time() * 1000)  # CloudWatch drops events older than 14 days
    stream = f"{job}/algo-1-{now_ms // 1000}"
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
    lines = [line.removeprefix("[algo-1] ") for line in entry_point_lines(tmp_path)]
    logs.put_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms + i, "message": m} for i, m in enumerate(lines)],
    )
    operator, logged = _train_operator(monkeypatch)
    assert CloudWatchTail(logs, "training", job).poll(operator.job_log()) == 2
    assert [line for line in logged.lines if line.startswith("epoch ")] == [
        "epoch 0: loss 1.25, validation accuracy 0.4, test accuracy 0.38, 0.52 s",
        "epoch 1: loss 0.75, validation accuracy 0.66, test accuracy 0.64, 0.47 s",
    ]


def test_the_job_log_also_works_as_a_leveled_logger(monkeypatch, tmp_path):
    """Runners that log each line at its own level (``log(level, "[%s] %s", host, line)``) get
    the same follow-up lines; other steps' operators add none."""
    import logging

    operator, logged = _train_operator(monkeypatch)
    job_log = operator.job_log()
    assert isinstance(job_log, logging.LoggerAdapter)
    line = entry_point_lines(tmp_path)[0].removeprefix("[algo-1] ")
    job_log.log(logging.WARNING, "[%s] %s", "algo-1", line)
    job_log.info("local job %s completed in %.1f s", "j", 1.0)
    assert logged.lines == [
        f"[algo-1] {line}",
        "epoch 0: loss 1.25, validation accuracy 0.4, test accuracy 0.38, 0.52 s",
        "local job j completed in 1.0 s",
    ]

    operator_class, kwargs = _operators()["infer"]
    assert operator_class(task_id="infer", **kwargs).follow_job_line(line) is None


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12 : 16 + length]) == struct.unpack(">I", data[16 + length : 20 + length])[0]
    return width, height


def test_training_results_read_metrics_json_and_write_the_curve_beside_the_model(tmp_path, monkeypatch):
    from graphstorm_provider.operators.metrics import training_results

    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    model = tmp_path / "model" / "1"
    entry_point_lines(model)  # the entry point's collector writes metrics.json there
    document = json.loads((model / "metrics.json").read_text())
    assert [e["epoch"] for e in document["epochs"]] == [0, 1]

    result = training_results(f"file://{model}/", aws_conn_id="aws_default")
    assert result == {"metrics": document, "learning_curve_s3": f"file://{model}/learning_curve.png"}
    assert _png_size((model / "learning_curve.png").read_bytes()) == (700, 400)
    assert sorted(p.name for p in model.iterdir()) == ["learning_curve.png", "metrics.json"]


def test_no_metrics_json_means_no_metrics_keys_and_no_file(tmp_path, caplog):
    from graphstorm_provider.operators.metrics import training_results

    model = tmp_path / "model"
    model.mkdir()
    with caplog.at_level("WARNING", logger="graphstorm_provider.operators.metrics"):
        assert training_results(f"file://{model}/", aws_conn_id=None) == {}
    assert "No training metrics" in caplog.text
    assert list(model.iterdir()) == []


@pytest.mark.parametrize("epochs", [EPOCHS[:1], [{"epoch": 0, "loss": 0.9, "validation": None, "test": None}]])
def test_the_curve_renders_one_epoch_and_epochs_without_scores(epochs):
    from graphstorm_provider.operators.learning_curve import render_learning_curve

    assert _png_size(render_learning_curve(epochs)) == (700, 400)
