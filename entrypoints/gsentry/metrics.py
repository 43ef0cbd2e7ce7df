"""
Per-epoch training metrics, collected inside GraphStorm's trainer process.

GraphStorm 0.5 reports progress through its task tracker (``GSSageMakerTaskTracker``: the
``"Train loss"`` of every step, and after each epoch's evaluation the validation and test scores
as dicts keyed by metric name) and one log call per epoch (``"Epoch %d take %.3f seconds"``).
:func:`install` hooks both - the tracker's two methods, and a filter on the root logger (which
GraphStorm's own ``basicConfig(force=True)`` leaves in place) - without changing what GraphStorm
prints. On rank 0, after each epoch's evaluation it

* prints one line ``GSENTRY_EPOCH_METRICS {json}`` (see :data:`EPOCH_LINE_MARKER`, documented in
  entrypoints/README.md) for whoever follows the job's log, and
* rewrites ``metrics.json`` atomically (temporary file + rename), so a reader never sees half.

This module imports nothing heavy at import time; GraphStorm's tracker only in :func:`install`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat, SupportsInt, cast

EPOCH_LINE_MARKER = "GSENTRY_EPOCH_METRICS"
METRICS_FILE_NAME = "metrics.json"
METRICS_FORMAT_VERSION = 1
TRAIN_LOSS_NAME = "Train loss"  # GraphStorm's tracker metric name for the training loss
EPOCH_TIME_MESSAGE = "Epoch %d take %.3f seconds"  # GraphStorm 0.5's per-epoch log call


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _scores(score: Any) -> dict[str, float | None] | None:
    if score is None:
        return None
    if isinstance(score, dict):
        return {str(k): _number(v) for k, v in score.items()}
    return {"score": _number(score)}


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class EpochMetricsCollector:
    """Turns GraphStorm's tracker calls and epoch log records into one record per epoch."""

    path: Path
    seed: int | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    _losses: list[float] = field(default_factory=list)
    _pending: dict[str, Any] | None = None  # the epoch that ended but was not evaluated yet

    def on_train_loss(self, value: Any) -> None:
        number = _number(value)
        if number is not None:
            self._losses.append(number)

    def on_epoch_end(self, epoch: int, seconds: float) -> None:
        if self._pending is not None:  # an epoch without evaluation (no validation set)
            self._publish(self._pending)
        losses, self._losses = self._losses, []
        self._pending = {
            "epoch": int(epoch),
            "loss": sum(losses) / len(losses) if losses else None,
            "last_loss": losses[-1] if losses else None,
            "steps": len(losses),
            "epoch_time": float(seconds),
            "validation": None,
            "test": None,
        }

    def on_evaluation(self, val_score: Any, test_score: Any) -> None:
        if self._pending is None:  # a mid-epoch evaluation (eval_frequency): not an epoch summary
            return
        record, self._pending = self._pending, None
        record["validation"] = _scores(val_score)
        record["test"] = _scores(test_score)
        self._publish(record)

    def finish(self) -> None:
        if self._pending is not None:
            record, self._pending = self._pending, None
            self._publish(record)

    def _publish(self, record: dict[str, Any]) -> None:
        self.epochs.append(record)
        print(f"{EPOCH_LINE_MARKER} {json.dumps(record, sort_keys=True)}", file=sys.stdout, flush=True)
        write_json_atomic(self.path, self.document())

    def document(self) -> dict[str, Any]:
        return {"format_version": METRICS_FORMAT_VERSION, "seed": self.seed, "epochs": self.epochs}


class _EpochLogFilter(logging.Filter):
    """Sees every root-logger record; reacts to GraphStorm's per-epoch time record, drops none."""

    def __init__(self, collector: EpochMetricsCollector) -> None:
        super().__init__()
        self.collector = collector

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == EPOCH_TIME_MESSAGE and isinstance(record.args, tuple) and len(record.args) == 2:
            epoch, seconds = record.args  # GraphStorm logs (epoch number, seconds) with this message
            self.collector.on_epoch_end(int(cast("SupportsInt", epoch)), float(cast("SupportsFloat", seconds)))
        return True


def install(path: Path, seed: int | None = None) -> EpochMetricsCollector:
    """Attach the collector to GraphStorm's tracker and root logger (call on rank 0 only)."""
    import atexit

    from graphstorm.tracker.sagemaker_tracker import GSSageMakerTaskTracker

    collector = EpochMetricsCollector(path=path, seed=seed)
    original_log_metric = GSSageMakerTaskTracker.log_metric
    original_log_iter = GSSageMakerTaskTracker.log_iter_metrics

    def log_metric(self: Any, metric_name: str, metric_value: Any, step: Any, force_report: bool = False) -> Any:
        if metric_name == TRAIN_LOSS_NAME:
            collector.on_train_loss(metric_value)
        return original_log_metric(self, metric_name, metric_value, step, force_report=force_report)

    def log_iter_metrics(
        self: Any, eval_metrics: Any, val_score: Any, test_score: Any, *args: Any, **kwargs: Any
    ) -> Any:
        result = original_log_iter(self, eval_metrics, val_score, test_score, *args, **kwargs)
        collector.on_evaluation(val_score, test_score)
        return result

    GSSageMakerTaskTracker.log_metric = log_metric
    GSSageMakerTaskTracker.log_iter_metrics = log_iter_metrics
    logging.getLogger().addFilter(_EpochLogFilter(collector))
    atexit.register(collector.finish)
    return collector


def parse_epoch_line(line: str) -> dict[str, Any] | None:
    """Parse a ``GSENTRY_EPOCH_METRICS {json}`` line (anywhere in ``line``) into its record, else ``None``."""
    at = line.find(EPOCH_LINE_MARKER + " ")
    if at < 0:
        return None
    try:
        record = json.loads(line[at + len(EPOCH_LINE_MARKER) + 1 :])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None
