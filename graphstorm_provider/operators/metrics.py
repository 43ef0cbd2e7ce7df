"""
Training progress on the Airflow side: per-epoch lines, XCom metrics, ``learning_curve.png``.

That is: per-epoch lines as they happen, the metrics in the train task's XCom and
``learning_curve.png`` beside the model.

The train entry point prints one line per epoch, ``GSENTRY_EPOCH_METRICS {json}`` (anywhere in the
line, after the host/process prefixes), and uploads ``metrics.json`` to the model folder
(``{"format_version": 1, "seed": ..., "epochs": [{"epoch", "loss", "epoch_time", "validation",
"test", ...}]}``; the format is documented in entrypoints/README.md). The entry points are a
separate program (they never import this package and this package never imports them), so the
marker and the record's keys are restated here.

* :func:`epoch_summary`: one readable log line for an epoch line (``None`` for other lines), used
  on the local/compose log stream and on the CloudWatch lines of a SageMaker job.
* :func:`training_results`: after the job, read ``metrics.json``, write the learning curve and
  return ``{"metrics": <metrics.json>, "learning_curve_s3": <URI>}`` for the XCom (empty when the
  job wrote no metrics).

Cheap to import (DAG parse time): the storage helpers, boto3 and matplotlib only inside functions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

EPOCH_LINE_MARKER = "GSENTRY_EPOCH_METRICS"  # entrypoints/gsentry/metrics.py, entrypoints/README.md
METRICS_FILE_NAME = "metrics.json"
LEARNING_CURVE_FILE_NAME = "learning_curve.png"


def parse_epoch_line(line: str) -> dict[str, Any] | None:
    """Return the epoch record of a ``GSENTRY_EPOCH_METRICS {json}`` line, else ``None``."""
    at = line.find(EPOCH_LINE_MARKER + " ")
    if at < 0:
        return None
    try:
        record = json.loads(line[at + len(EPOCH_LINE_MARKER) + 1 :])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "epoch" in record else None


def _number(value: Any) -> str:
    return "n/a" if not isinstance(value, (int, float)) else f"{value:.4g}"


def _scores(label: str, scores: Any) -> list[str]:
    if not isinstance(scores, Mapping):
        return []
    return [f"{label} {name} {_number(value)}" for name, value in sorted(scores.items())]


def describe_epoch(record: Mapping[str, Any]) -> str:
    """``epoch 2: loss 0.912, validation accuracy 0.62, test accuracy 0.6, 0.41 s``."""
    parts = [
        f"loss {_number(record.get('loss'))}",
        *_scores("validation", record.get("validation")),
        *_scores("test", record.get("test")),
    ]
    if isinstance(record.get("epoch_time"), (int, float)):
        parts.append(f"{record['epoch_time']:.3g} s")
    return f"epoch {record.get('epoch')}: " + ", ".join(parts)


def epoch_summary(line: str) -> str | None:
    """Return the readable line for a job log line that carries an epoch record, else ``None``."""
    record = parse_epoch_line(line)
    return describe_epoch(record) if record is not None else None


def final_metrics(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return a compact summary (the asset event's extra): epochs, and the last epoch's loss and scores."""
    epochs = list((document or {}).get("epochs") or [])
    if not epochs:
        return None
    last = epochs[-1]
    return {
        "epochs": len(epochs),
        "final_epoch": last.get("epoch"),
        "loss": last.get("loss"),
        "validation": last.get("validation"),
        "test": last.get("test"),
    }


def _s3_client(aws_conn_id: str | None, uri: str) -> Any:
    if not uri.startswith("s3://"):
        return None  # file:// touches no AWS (and logs no AWS warning)
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id).get_conn()


def training_results(model_uri: str, *, aws_conn_id: str | None) -> dict[str, Any]:
    """
    Read ``<model>/metrics.json``, write ``<model>/learning_curve.png``; the XCom additions.

    :return: ``{"metrics": <the metrics.json document>, "learning_curve_s3": <URI>}``, or ``{}``
        when the job wrote no metrics (a warning says so; the task still succeeds).
    """
    from graphstorm_provider.data import storage
    from graphstorm_provider.operators.learning_curve import render_learning_curve

    metrics_uri = storage.join(model_uri, METRICS_FILE_NAME)
    curve_uri = storage.join(model_uri, LEARNING_CURVE_FILE_NAME)
    with storage.using_s3_client(_s3_client(aws_conn_id, model_uri)):
        try:
            document = json.loads(storage.read_bytes(metrics_uri))
        except Exception as err:
            log.warning("No training metrics at %s (%s); no learning curve.", metrics_uri, type(err).__name__)
            return {}
        if not isinstance(document, dict) or not document.get("epochs"):
            log.warning("%s holds no epochs; no learning curve.", metrics_uri)
            return {"metrics": document} if isinstance(document, dict) else {}
        storage.write_bytes(curve_uri, render_learning_curve(document["epochs"]))
    log.info("Learning curve: %s", curve_uri)
    return {"metrics": document, "learning_curve_s3": curve_uri}
