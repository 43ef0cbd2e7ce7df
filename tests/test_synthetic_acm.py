"""The synthetic ACM-like generator: determinism, string IDs, splits, config, learnable signal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from graphstorm_provider.data.synthetic_acm import (
    RELATIONS,
    SPLIT_FILES,
    SyntheticAcmError,
    SyntheticAcmSpec,
    build_graph,
    edge_file,
    generate_synthetic_acm,
)

SMALL = SyntheticAcmSpec(num_papers=400, num_classes=4, feat_dim=16, seed=7)


def _read_dir(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    generate_synthetic_acm(str(tmp_path / "a"), SMALL)
    generate_synthetic_acm(f"file://{tmp_path / 'b'}", SMALL)
    generate_synthetic_acm(str(tmp_path / "c"), SyntheticAcmSpec(num_papers=400, num_classes=4, feat_dim=16, seed=8))
    a, b, c = (_read_dir(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["nodes/paper.parquet"] != c["nodes/paper.parquet"]


def test_string_ids_are_unique_and_edges_reference_existing_nodes(tmp_path):
    generate_synthetic_acm(str(tmp_path), SMALL)
    ids = {}
    for ntype, prefix in (("paper", "p"), ("author", "a"), ("subject", "s")):
        table = pq.read_table(tmp_path / f"nodes/{ntype}.parquet")
        column = table.column("nid").to_pylist()
        assert all(isinstance(v, str) and v.startswith(prefix) and not v.isdigit() for v in column)
        assert len(set(column)) == len(column)
        ids[ntype] = set(column)
    assert len(ids["paper"]) == 400
    for rel in RELATIONS:
        table = pq.read_table(tmp_path / edge_file(rel))
        assert table.num_rows > 0, rel
        assert set(table.column("src_id").to_pylist()) <= ids[rel[0]]
        assert set(table.column("dst_id").to_pylist()) <= ids[rel[2]]
    cites = pq.read_table(tmp_path / edge_file(("paper", "citing", "paper")))
    assert all(s != d for s, d in zip(cites.column("src_id").to_pylist(), cites.column("dst_id").to_pylist()))


def test_splits_partition_the_papers_and_hold_every_class(tmp_path):
    generate_synthetic_acm(str(tmp_path), SMALL)
    papers = pq.read_table(tmp_path / "nodes/paper.parquet").to_pydict()
    label_of = dict(zip(papers["nid"], papers["label"]))
    splits = {name: pq.read_table(tmp_path / rel).column("nid").to_pylist() for name, rel in SPLIT_FILES.items()}
    seen = [nid for ids in splits.values() for nid in ids]
    assert len(seen) == len(set(seen)) == len(label_of)
    assert set(seen) == set(label_of)
    assert [len(splits[n]) for n in ("train", "valid", "test")] == [240, 80, 80]
    for ids in splits.values():
        assert {label_of[nid] for nid in ids} == set(range(SMALL.num_classes))


def test_config_json_points_at_the_written_files(tmp_path):
    summary = generate_synthetic_acm(str(tmp_path), SMALL)
    assert summary.graph_config_file == "config.json"
    config = json.loads((tmp_path / "config.json").read_text())
    assert {n["node_type"] for n in config["nodes"]} == {"paper", "author", "subject"}
    assert {tuple(e["relation"]) for e in config["edges"]} == set(RELATIONS)
    for entry in config["nodes"] + config["edges"]:
        for rel_path in entry["files"]:
            assert (tmp_path / rel_path).is_file(), rel_path
    (paper,) = [n for n in config["nodes"] if n["node_type"] == "paper"]
    (label,) = paper["labels"]
    assert label["label_col"] == "label"
    assert label["task_type"] == "classification"
    custom = label["custom_split_filenames"]
    assert custom["column"] == ["nid"]
    for key in ("train", "valid", "test"):
        assert (tmp_path / custom[key]).is_file()
    feat = pq.read_table(tmp_path / "nodes/paper.parquet").column("feat")
    assert len(feat[0].as_py()) == SMALL.feat_dim


def test_features_and_edges_carry_class_signal():
    graph = build_graph(SyntheticAcmSpec(num_papers=1000, num_classes=5, seed=3))
    x, y = graph.features["paper"], graph.labels
    means = np.stack([x[y == c].mean(axis=0) for c in range(5)])
    # Class-conditional means differ by far more than their sampling noise (~1/sqrt(200)).
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(5, 1)]
    assert gaps.min() > 0.5
    # Nearest-centroid on raw features beats chance (0.2) on held-out papers.
    train, test = graph.splits["train"], graph.splits["test"]
    centroids = np.stack([x[train][y[train] == c].mean(axis=0) for c in range(5)])
    pred = np.argmin(((x[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == y[test]).mean() > 0.4
    # Citations are homophilous: far more same-class pairs than the 1/5 of a random graph.
    src, dst = graph.edges[("paper", "citing", "paper")]
    assert (y[src] == y[dst]).mean() > 0.5


def test_size_knob_scales_the_graph():
    small = build_graph(SyntheticAcmSpec(num_papers=200, seed=1))
    large = build_graph(SyntheticAcmSpec(num_papers=2000, seed=1))
    assert len(large.node_ids["paper"]) == 10 * len(small.node_ids["paper"])
    assert len(large.node_ids["author"]) == 1600
    src, _ = large.edges[("paper", "citing", "paper")]
    assert src.shape[0] > 5 * small.edges[("paper", "citing", "paper")][0].shape[0]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"num_papers": 5}, "num_papers"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_subjects": 2}, "num_subjects"),
        ({"homophily": 1.5}, "homophily"),
        ({"train_frac": 0.7, "val_frac": 0.3}, "train_frac + val_frac"),
        ({"feat_dim": 0}, "feat_dim"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_fail_naming_the_parameter(tmp_path, kwargs, param):
    with pytest.raises(SyntheticAcmError, match=re.escape(param)):
        generate_synthetic_acm(str(tmp_path / "out"), SyntheticAcmSpec(**kwargs))
    assert not (tmp_path / "out").exists()


def test_writes_to_s3(aws_env):
    prefix = aws_env.bucket("synthetic") + "/acm/raw"
    summary = generate_synthetic_acm(prefix, SMALL)
    keys = {
        obj["Key"] for obj in aws_env.client("s3").list_objects_v2(Bucket="synthetic", Prefix="acm/raw/")["Contents"]
    }
    assert "acm/raw/config.json" in keys
    assert {f"acm/raw/{rel}" for rel in SPLIT_FILES.values()} <= keys
    assert set(summary.files) == {f"s3://synthetic/{key}" for key in keys}


def test_cli_writes_the_data_set_and_rejects_bad_flags(tmp_path, capsys):
    from graphstorm_provider.cli.main import main

    assert main(["synthetic-acm", "--output-path", str(tmp_path / "raw"), "--num-papers", "120", "--seed", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_nodes"]["paper"] == 120
    assert report["seed"] == 5
    assert (tmp_path / "raw" / "config.json").is_file()

    assert main(["synthetic-acm", "--output-path", str(tmp_path / "bad"), "--num-papers", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gs-sagemaker synthetic-acm: error: --num-papers must be at least")
    assert "\n" not in err
    assert "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_storage_lists_one_object_or_a_folder_but_not_siblings(aws_env, tmp_path):
    from graphstorm_provider.data import storage

    bucket = aws_env.bucket("listing")
    for key in ("runs/a/x.parquet", "runs/a/sub/y.parquet", "runs/ab/z.parquet"):
        storage.write_bytes(f"{bucket}/{key}", b"1")
    assert storage.list_files(f"{bucket}/runs/a") == [f"{bucket}/runs/a/sub/y.parquet", f"{bucket}/runs/a/x.parquet"]
    assert storage.list_files(f"{bucket}/runs/a/") == storage.list_files(f"{bucket}/runs/a")
    assert storage.list_files(f"{bucket}/runs/a/x.parquet") == [f"{bucket}/runs/a/x.parquet"]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.parquet").write_bytes(b"1")
    assert storage.list_files(f"file://{tmp_path}/a/x.parquet") == [str(tmp_path / "a" / "x.parquet")]
