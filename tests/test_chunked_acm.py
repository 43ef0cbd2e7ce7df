"""The synthetic ACM graph in DGL's chunked format: valid metadata, counts, formats, raw IDs.

Checked against DGL's specification of the format (``metadata.json`` keys, ``src:rel:dst``
edge types, per-chunk counts, csv/numpy/parquet chunk files), against the gconstruct format of
the same spec (the same graph, labels and splits, joined by raw ID), and against GraphStorm's
own reader of the raw ID mappings (``IdReverseMap``, in the GraphStorm runtime).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from graphstorm_provider.data import chunked
from graphstorm_provider.data.evaluate import chunked_truth, gconstruct_truth
from graphstorm_provider.data.synthetic_acm import (
    RELATIONS,
    SyntheticAcmError,
    SyntheticAcmSpec,
    edge_file,
    generate_synthetic_acm,
)

SMALL = SyntheticAcmSpec(num_papers=400, num_classes=4, feat_dim=16, seed=7)
SPEC_KEYS = {
    "graph_name",
    "node_type",
    "num_nodes_per_chunk",
    "edge_type",
    "num_edges_per_chunk",
    "edges",
    "node_data",
    "edge_data",
}
ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path]:
    """The same spec in both formats: (chunked dir, gconstruct dir)."""
    base = tmp_path_factory.mktemp("formats")
    generate_synthetic_acm(str(base / "chunked"), SMALL, graph_format="chunked", graph_name="acm_small")
    generate_synthetic_acm(str(base / "gconstruct"), SMALL)
    return base / "chunked", base / "gconstruct"


def _meta(root: Path) -> dict:
    return json.loads((root / chunked.METADATA_FILE).read_text())


def _rows(path: Path, fmt: dict) -> np.ndarray:
    return chunked.read_array(path.read_bytes(), fmt)


def test_metadata_follows_dgls_specification(both):
    root, _ = both
    meta = _meta(root)
    assert set(meta) == SPEC_KEYS
    assert meta["graph_name"] == "acm_small"
    ntypes = meta["node_type"]
    assert ntypes == ["paper", "author", "subject"]
    assert len(meta["num_nodes_per_chunk"]) == len(ntypes)
    assert [sum(c) for c in meta["num_nodes_per_chunk"]] == [400, SMALL.authors, SMALL.subjects]
    assert meta["edge_type"] == [":".join(rel) for rel in RELATIONS]
    assert len(meta["num_edges_per_chunk"]) == len(meta["edge_type"])
    assert set(meta["edges"]) == set(meta["edge_type"])
    for etype, counts in zip(meta["edge_type"], meta["num_edges_per_chunk"]):
        src, rel, dst = etype.split(":")
        assert src in ntypes
        assert dst in ntypes
        assert rel
        spec = meta["edges"][etype]
        assert spec["format"]["name"] in ("csv", "parquet")
        if spec["format"]["name"] == "csv":
            assert len(spec["format"]["delimiter"]) == 1
        assert len(spec["data"]) == len(counts) > 1
        assert all(n > 0 for n in counts)
    assert set(meta["node_data"]) <= set(ntypes)
    assert set(meta["node_data"]["paper"]) == {"feat", "label", "train_mask", "val_mask", "test_mask"}
    assert {nt: set(f) for nt, f in meta["node_data"].items() if nt != "paper"} == {
        "author": {"feat"},
        "subject": {"feat"},
    }
    assert meta["edge_data"] == {}
    for feats in meta["node_data"].values():
        for spec in feats.values():
            assert spec["format"]["name"] in ("numpy", "parquet")
    # Every path is relative to the metadata's folder and exists; nothing else is in the folder
    # but the raw ID mappings.
    named = {rel for spec in meta["edges"].values() for rel in spec["data"]}
    named |= {rel for feats in meta["node_data"].values() for spec in feats.values() for rel in spec["data"]}
    assert all(not rel.startswith("/") and ".." not in rel for rel in named)
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk - named == {chunked.METADATA_FILE} | {r for r in on_disk if r.startswith("raw_id_mappings/")}


def test_counts_match_the_rows_of_every_file(both):
    root, _ = both
    meta = _meta(root)
    for etype, counts in zip(meta["edge_type"], meta["num_edges_per_chunk"]):
        spec = meta["edges"][etype]
        for rel, count in zip(spec["data"], counts):
            rows = _rows(root / rel, spec["format"])
            assert rows.shape == (count, 2), (rel, rows.shape, count)
    for ntype, counts in zip(meta["node_type"], meta["num_nodes_per_chunk"]):
        for spec in meta["node_data"].get(ntype, {}).values():
            assert len(spec["data"]) == len(counts)
            for rel, count in zip(spec["data"], counts):
                assert _rows(root / rel, spec["format"]).shape[0] == count, rel
    # Edge endpoints are per-type IDs inside 0..n-1.
    num_nodes = dict(zip(meta["node_type"], (sum(c) for c in meta["num_nodes_per_chunk"])))
    for etype in meta["edge_type"]:
        src_t, _, dst_t = etype.split(":")
        pairs = chunked.read_chunks(str(root), meta["edges"][etype])
        assert pairs.min() >= 0
        assert pairs[:, 0].max() < num_nodes[src_t]
        assert pairs[:, 1].max() < num_nodes[dst_t]


def test_both_formats_of_edges_and_node_data_are_written_as_dgl_reads_them(both):
    root, _ = both
    meta = _meta(root)
    edge_formats = {spec["format"]["name"] for spec in meta["edges"].values()}
    feat_formats = {spec["format"]["name"] for feats in meta["node_data"].values() for spec in feats.values()}
    assert edge_formats == {"csv", "parquet"}
    assert feat_formats == {"numpy", "parquet"}
    # csv: "src dst" lines, no header; parquet edges: two integer columns.
    csv_spec = meta["edges"]["paper:citing:paper"]
    first = (root / csv_spec["data"][0]).read_text().splitlines()[0]
    assert re.fullmatch(r"\d+ \d+", first), first
    parquet_spec = meta["edges"]["paper:is-about:subject"]
    table = pq.read_table(root / parquet_spec["data"][0])
    assert table.num_columns == 2
    assert all(str(t).startswith("int") for t in table.schema.types)
    # parquet features: one column per dimension, the shape in the schema metadata (DGL's writer).
    author = meta["node_data"]["author"]["feat"]
    assert author["format"] == {"name": "parquet"}
    schema = pq.read_schema(root / author["data"][0])
    assert schema.names == [str(i) for i in range(SMALL.feat_dim)]
    rows = meta["num_nodes_per_chunk"][meta["node_type"].index("author")][0]
    assert schema.metadata[b"shape"] == str((rows, SMALL.feat_dim)).encode()
    # numpy: numpy.save arrays with the GConstruct dtypes (float32 features, int32 label, int8 masks).
    paper = meta["node_data"]["paper"]
    assert np.load(root / paper["feat"]["data"][0]).dtype == np.float32
    assert np.load(root / paper["label"]["data"][0]).dtype == np.int32
    assert chunked.read_node_feature(str(root), meta, "paper", "test_mask").dtype == np.int8
    # Chunks are unequal, so no reader gets away with assuming equal sizes.
    assert all(len(set(c)) > 1 for c in meta["num_nodes_per_chunk"] + meta["num_edges_per_chunk"])


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    def files(name: str, seed: int) -> dict[str, bytes]:
        spec = SyntheticAcmSpec(num_papers=400, num_classes=4, feat_dim=16, seed=seed)
        generate_synthetic_acm(str(tmp_path / name), spec, graph_format="chunked")
        root = tmp_path / name
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a, b, c = files("a", 7), files("b", 7), files("c", 8)
    assert a == b
    assert a.keys() == c.keys()
    assert a["node_data/paper-feat-part0.npy"] != c["node_data/paper-feat-part0.npy"]


def test_raw_ids_round_trip_to_the_gconstruct_graph_of_the_same_spec(both):
    """Through raw_id_mappings every chunked row is the gconstruct row of the same raw ID."""
    root, gdir = both
    meta = _meta(root)
    for ntype in meta["node_type"]:
        raw = chunked.read_raw_ids(str(root), ntype)
        table = pq.read_table(gdir / f"nodes/{ntype}.parquet").to_pydict()
        assert sorted(raw.tolist()) == sorted(table["nid"])  # every raw ID exactly once
        row_of = {nid: i for i, nid in enumerate(table["nid"])}
        rows = [row_of[nid] for nid in raw]
        # The chunked IDs are not the raw-ID order: a reader must use the mapping.
        assert rows != sorted(rows)
        feat = chunked.read_node_feature(str(root), meta, ntype, "feat")
        np.testing.assert_array_equal(feat, np.asarray(table["feat"], dtype=np.float32)[rows])
        if ntype == "paper":
            label = chunked.read_node_feature(str(root), meta, ntype, "label")
            np.testing.assert_array_equal(label, np.asarray(table["label"])[rows])
    for rel in RELATIONS:
        pairs = chunked.read_chunks(str(root), meta["edges"][":".join(rel)])
        src_raw, dst_raw = chunked.read_raw_ids(str(root), rel[0]), chunked.read_raw_ids(str(root), rel[2])
        as_raw = set(zip(src_raw[pairs[:, 0]].tolist(), dst_raw[pairs[:, 1]].tolist()))
        table = pq.read_table(gdir / edge_file(rel)).to_pydict()
        assert as_raw == set(zip(table["src_id"], table["dst_id"])), rel
        assert len(as_raw) == pairs.shape[0], rel
    # The labels and the test split, joined by raw ID, are those of the gconstruct split files.
    a, b = chunked_truth(str(root)), gconstruct_truth(str(gdir))
    assert a.label_of == b.label_of
    assert a.test_ids == b.test_ids
    for split, feature in chunked.MASK_FEATURES.items():
        mask = chunked.read_node_feature(str(root), meta, "paper", feature).astype(bool)
        split_file = {"train": "train", "valid": "val", "test": "test"}[split]
        expected = pq.read_table(gdir / f"splits/{split_file}.parquet").column("nid").to_pylist()
        assert sorted(chunked.read_raw_ids(str(root), "paper")[mask].tolist()) == sorted(expected)


def test_raw_id_mappings_have_gsprocessings_layout(both):
    root, _ = both
    sys.path.insert(0, str(ENTRYPOINTS))
    try:
        from gsentry.graphdata import raw_mapping_target
    finally:
        sys.path.remove(str(ENTRYPOINTS))
    for ntype in ("paper", "author", "subject"):
        files = sorted((root / "raw_id_mappings" / ntype).rglob("*"))
        files = [f for f in files if f.is_file()]
        assert len(files) == 3
        for path in files:
            rel = path.relative_to(root / "raw_id_mappings").as_posix()
            assert re.fullmatch(rf"{ntype}/parquet/part-\d{{5}}\.parquet", rel)
            # Our infer entry point's --raw-node-mappings-s3 reads it as GSProcessing output.
            assert raw_mapping_target(rel) == f"{ntype}/{path.name}"
            schema = pq.read_schema(path)
            assert schema.names == ["orig", "new"]
            assert str(schema.field("orig").type) == "string"
            assert str(schema.field("new").type) == "int64"


def test_graphstorms_id_reverse_map_reads_the_raw_id_mappings(both):
    """GraphStorm's remap step (``IdReverseMap``) maps chunked IDs back to the raw IDs."""
    from graphstorm_provider.config import runtime_python

    root, _ = both
    code = (
        "import sys, numpy as np\n"
        "from graphstorm.gconstruct.id_map import IdReverseMap\n"
        "m = IdReverseMap(sys.argv[1])\n"
        "print(' '.join(m.map_id(np.arange(len(m))).tolist()))\n"
    )
    proc = subprocess.run(
        [runtime_python(), "-c", code, str(root / "raw_id_mappings" / "paper")],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == chunked.read_raw_ids(str(root), "paper").tolist()


def test_chunked_graph_on_s3_reads_back(aws_env):
    prefix = aws_env.bucket("chunked") + "/acm/raw"
    summary = generate_synthetic_acm(prefix, SMALL, graph_format="chunked", num_chunks=2)
    assert summary.graph_config_file == chunked.METADATA_FILE
    assert summary.graph_format == "chunked"
    assert f"{prefix}/{chunked.METADATA_FILE}" in summary.files
    meta = chunked.read_metadata(prefix)
    assert [len(c) for c in meta["num_nodes_per_chunk"]] == [2, 2, 2]
    truth = chunked_truth(prefix)
    assert len(truth.label_of) == 400
    assert len(truth.test_ids) == 80


def test_cli_writes_the_chunked_format_and_rejects_bad_flags(tmp_path, capsys):
    from graphstorm_provider.cli.main import main

    out = tmp_path / "chunked"
    assert (
        main(
            [
                "synthetic-acm",
                "--output-path",
                str(out),
                "--format",
                "chunked",
                "--graph-name",
                "acm_c",
                "--num-papers",
                "120",
                "--num-chunks",
                "4",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["graph_format"] == "chunked"
    assert report["graph_config_file"] == "metadata.json"
    meta = _meta(out)
    assert meta["graph_name"] == "acm_c"
    assert all(len(c) == 4 for c in meta["num_nodes_per_chunk"])
    # The default is still the GConstruct input.
    assert main(["synthetic-acm", "--output-path", str(tmp_path / "g"), "--num-papers", "120"]) == 0
    capsys.readouterr()
    assert (tmp_path / "g" / "config.json").is_file()
    assert not (tmp_path / "g" / "metadata.json").exists()

    for flags, message in (
        (["--num-chunks", "21"], "--num-chunks (21) must not exceed the rows of the smallest type (subject: 20)"),
        (["--num-chunks", "0"], "--num-chunks must be an integer of at least 1"),
        (["--graph-name", "a/b"], "--graph-name must be letters, digits"),
        (["--format", "dgl"], "argument --format: invalid choice: 'dgl'"),
    ):
        bad = tmp_path / "bad"
        assert (
            main(["synthetic-acm", "--output-path", str(bad), "--format", "chunked", "--num-papers", "120", *flags])
            == 2
        )
        err = capsys.readouterr().err.strip()
        assert message in err, err
        assert "\n" not in err, err
        assert "Traceback" not in err, err
        assert not bad.exists()


def test_chunk_sizes_grow_and_never_leave_a_chunk_empty():
    assert chunked.chunk_sizes(600, 3) == [100, 200, 300]
    for total in range(1, 40):
        for k in range(1, total + 1):
            sizes = chunked.chunk_sizes(total, k)
            assert sum(sizes) == total
            assert len(sizes) == k
            assert min(sizes) >= 1
    with pytest.raises(chunked.ChunkedFormatError):
        chunked.chunk_sizes(2, 3)


def test_readers_accept_each_format():
    arr = np.arange(12, dtype=np.float32).reshape(6, 2)
    buf = io.BytesIO()
    np.save(buf, arr)
    np.testing.assert_array_equal(chunked.read_array(buf.getvalue(), {"name": "numpy"}), arr)
    assert chunked.read_array(b"1 2\n3 4\n", {"name": "csv", "delimiter": " "}).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(chunked.ChunkedFormatError, match="unknown chunk format 'hdf5'"):
        chunked.read_array(b"", {"name": "hdf5"})


def test_bad_format_fails_naming_it(tmp_path):
    with pytest.raises(SyntheticAcmError, match="graph_format must be one of gconstruct, chunked"):
        generate_synthetic_acm(str(tmp_path / "x"), SMALL, graph_format="csv")
    assert not (tmp_path / "x").exists()
