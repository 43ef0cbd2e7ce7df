"""The train entry point's seed flag, the trainer wrapper's argv and the metrics collector (no GraphStorm)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
sys.path.insert(0, str(ENTRYPOINTS))

from gsentry.errors import InputError  # noqa: E402
from gsentry.metrics import (  # noqa: E402
    EPOCH_TIME_MESSAGE,
    EpochMetricsCollector,
    _EpochLogFilter,
    parse_epoch_line,
    write_json_atomic,
)
from gsentry.trainer_wrap import split_argv  # noqa: E402
from train_entry import pop_seed  # noqa: E402


@pytest.mark.parametrize(
    ("args", "rest", "seed"),
    [
        (["--num-epochs", "2", "--seed", "7", "--lr", "0.1"], ["--num-epochs", "2", "--lr", "0.1"], 7),
        (["--seed=3", "--num-epochs", "2"], ["--num-epochs", "2"], 3),
        (["--num-epochs", "2"], ["--num-epochs", "2"], None),
        (["--seed", "1", "--seed", "2"], [], 2),
    ],
)
def test_the_seed_flag_is_taken_out_of_the_graphstorm_flags(args, rest, seed):
    assert pop_seed(args) == (rest, seed)


@pytest.mark.parametrize("args", [["--seed"], ["--seed", "x"], ["--seed", "-1"]])
def test_a_bad_seed_is_refused_naming_the_flag(args):
    with pytest.raises(InputError, match="--seed"):
        pop_seed(args)


def test_the_wrapper_finds_the_script_after_torchs_local_rank():
    assert split_argv(["--local-rank=0", "/gs/np.py", "--cf", "x.yaml"]) == (
        ["--local-rank=0"],
        "/gs/np.py",
        ["--cf", "x.yaml"],
    )
    assert split_argv(["/gs/np.py", "--cf", "x.yaml"]) == ([], "/gs/np.py", ["--cf", "x.yaml"])
    with pytest.raises(SystemExit):
        split_argv(["--local-rank=0"])


def test_the_collector_makes_one_record_per_epoch_and_rewrites_the_file(tmp_path, capsys):
    path = tmp_path / "metrics.json"
    collector = EpochMetricsCollector(path=path, seed=5)
    log_filter = _EpochLogFilter(collector)
    for loss in (1.0, 0.5):
        collector.on_train_loss(loss)
    # GraphStorm's own per-epoch log record, as logging.info(...) creates it.
    record = logging.LogRecord("root", logging.INFO, __file__, 1, EPOCH_TIME_MESSAGE, (0, 1.5), None)
    assert log_filter.filter(record) is True  # never drops GraphStorm's lines
    collector.on_evaluation({"accuracy": 0.6}, {"accuracy": 0.55})
    collector.on_evaluation({"accuracy": 0.7}, {"accuracy": 0.65})  # mid-epoch: no new record
    collector.on_train_loss(0.25)
    collector.on_epoch_end(1, 1.25)
    collector.finish()  # an epoch without evaluation is still written
    doc = json.loads(path.read_text())
    assert doc["seed"] == 5
    assert doc["format_version"] == 1
    assert doc["epochs"] == [
        {
            "epoch": 0,
            "loss": 0.75,
            "last_loss": 0.5,
            "steps": 2,
            "epoch_time": 1.5,
            "validation": {"accuracy": 0.6},
            "test": {"accuracy": 0.55},
        },
        {"epoch": 1, "loss": 0.25, "last_loss": 0.25, "steps": 1, "epoch_time": 1.25, "validation": None, "test": None},
    ]
    lines = [parse_epoch_line("[algo-1] [trainer-0] " + line) for line in capsys.readouterr().out.splitlines()]
    assert lines == doc["epochs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temporary file left


def test_unrelated_lines_are_no_epoch_lines(tmp_path):
    assert parse_epoch_line("Step 3 | Train loss: 0.5") is None
    assert parse_epoch_line("GSENTRY_EPOCH_METRICS {not json") is None
    write_json_atomic(tmp_path / "a" / "m.json", {"x": 1})
    assert json.loads((tmp_path / "a" / "m.json").read_text()) == {"x": 1}
