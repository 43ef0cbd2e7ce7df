"""The train entry point with real GraphStorm: ``--seed`` makes training reproducible, and
``metrics.json`` (plus one ``GSENTRY_EPOCH_METRICS`` line per epoch) reports every epoch.

Reuses the small graph GConstruct builds in tests/test_entrypoints_e2e.py (its module fixtures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_entrypoints_e2e import GRAPH_NAME, GS_FLAGS, constructed, raw_graph, run_entry, work  # noqa: F401

pytestmark = pytest.mark.e2e
SEED = 7
NUM_EPOCHS = 2


def train(work_dir: Path, graph_dir: Path, name: str, seed: int):
    opt_ml = work_dir / name / "opt" / "ml"
    model = work_dir / f"{name}-model"
    proc = run_entry(
        "train",
        opt_ml,
        [
            "--graph-data-s3",
            f"file://{graph_dir}",
            "--train-yaml-s3",
            f"file://{work_dir / 'nc.yaml'}",
            "--model-artifact-s3",
            f"file://{model}",
            "--graph-name",
            GRAPH_NAME,
            "--task-type",
            "node_classification",
        ],
        [*GS_FLAGS, "--seed", str(seed)],
    )
    return model, proc


# `work` and `constructed` are the e2e module's fixtures, imported above: pytest passes them by name.
@pytest.fixture(scope="module")
def seeded_twice(work, constructed):  # noqa: F811  fixture parameters, not redefinitions (see above)
    return [train(work, constructed, f"seeded-{i}", SEED) for i in range(2)]


def scores(metrics: dict) -> list:
    return [(e["epoch"], e["loss"], e["validation"], e["test"]) for e in metrics["epochs"]]


def test_metrics_json_lies_next_to_the_model_with_one_record_per_epoch(seeded_twice):
    model, proc = seeded_twice[0]
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["seed"] == SEED
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(NUM_EPOCHS))
    for epoch in metrics["epochs"]:
        assert epoch["loss"] > 0
        assert epoch["steps"] > 0
        assert epoch["epoch_time"] > 0
        assert set(epoch["validation"]) == {"accuracy"}
        assert 0 <= epoch["validation"]["accuracy"] <= 1
        assert 0 <= epoch["test"]["accuracy"] <= 1
    # One summary line per epoch in the job's log, carrying the same record.
    lines = [line for line in proc.stdout.splitlines() if "GSENTRY_EPOCH_METRICS {" in line]
    assert len(lines) == NUM_EPOCHS
    assert json.loads(lines[-1].split("GSENTRY_EPOCH_METRICS ", 1)[1]) == metrics["epochs"][-1]
    # The checkpoints and the metrics next to the model; no temporary file left behind, no archive.
    names = sorted(p.name for p in model.iterdir())
    assert {"epoch-0", "epoch-1", "metrics.json"} <= set(names)
    assert not [n for n in names if n.startswith(".") or n.endswith(".tar.gz")], names


def test_the_same_seed_trains_the_same_model(seeded_twice):
    (model_a, _), (model_b, _) = seeded_twice
    a = json.loads((model_a / "metrics.json").read_text())
    b = json.loads((model_b / "metrics.json").read_text())
    assert scores(a) == scores(b)
    assert (model_a / "epoch-1" / "model.bin").read_bytes() == (model_b / "epoch-1" / "model.bin").read_bytes()
