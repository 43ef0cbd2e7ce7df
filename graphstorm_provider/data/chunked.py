"""
The synthetic ACM graph in DGL's chunked graph format, and a small reader for it.

DGL's specification ("Chunked Graph Format" in DGL's distributed preprocessing guide) is a
``metadata.json`` plus data files::

    graph_name           the graph's name (DistDGL loads it by this name)
    node_type            ["paper", "author", "subject"]
    num_nodes_per_chunk  one list of per-chunk node counts per node type
    edge_type            ["src:rel:dst", ...]
    num_edges_per_chunk  one list of per-chunk edge counts per edge type
    edges                {etype: {"format": {"name": "csv", "delimiter": " "} | {"name": "parquet"},
                                  "data": [one file per chunk]}}
    node_data            {ntype: {feature: {"format": {"name": "numpy" | "parquet"}, "data": [...]}}}
    edge_data            {} (the synthetic graph has no edge features)

Node IDs in the files are per-type integers ``0..n-1`` in chunk order; edges are ``src dst`` ID
pairs (csv: no header; parquet: two columns). numpy files are ``numpy.save`` arrays; parquet
feature files hold one column per dimension, with the array's shape in the schema metadata
(``shape``), as DGL's own parquet writer stores them. The labels and the train/val/test masks
are node features of ``paper`` (``label``, ``train_mask``, ``val_mask``, ``test_mask``).

The raw string IDs travel beside it as GraphStorm's GSProcessing writes them, so GraphStorm maps
results back to them::

    raw_id_mappings/<ntype>/parquet/part-<k>.parquet    orig: string (raw ID), new: int64 (chunked ID)

What is written (paths relative to the output folder)::

    metadata.json
    edges/<src>_<rel>_<dst>-part<k>.csv|.parquet
    node_data/<ntype>-<feature>-part<k>.npy|.parquet
    raw_id_mappings/<ntype>/parquet/part-<k>.parquet

Both formats are exercised on purpose: some edge types are csv, others parquet; ``paper`` and
``subject`` features are numpy, ``author`` features parquet; the label is numpy, the masks
parquet. Chunks have deliberately unequal sizes (1:2:3...), and the chunked ID of a node is a
seeded permutation of its position, so nothing downstream can get the right answer by assuming
equal chunks or IDs that follow the raw ID order.

Everything is numpy + pyarrow (the Airflow side never imports torch, dgl or graphstorm).
"""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graphstorm_provider.data import storage

log = logging.getLogger(__name__)

# The file name DGL's specification uses. The partition job's own default (GraphStorm's
# launch_partition.py, i.e. GSProcessing's name) differs: pass --metadata-filename metadata.json.
METADATA_FILE = "metadata.json"
RAW_ID_MAPPINGS = "raw_id_mappings"
# GraphStorm's ID-map columns (graphstorm.data.constants MAPPING_INPUT_ID / MAPPING_OUTPUT_ID),
# which GSProcessing writes and GraphStorm's remap_result reads.
MAPPING_ORIG_COL = "orig"
MAPPING_NEW_COL = "new"
SHAPE_METADATA_KEY = b"shape"  # DGL's parquet array reader/writer keeps the array shape here
CSV_DELIMITER = " "
DEFAULT_NUM_CHUNKS = 3
MASK_FEATURES = {"train": "train_mask", "valid": "val_mask", "test": "test_mask"}
LABEL_FEATURE = "label"

# Which files get which format (the rest of the edge types are parquet).
CSV_RELATIONS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("paper", "citing", "paper"),
        ("author", "writing", "paper"),
        ("subject", "has", "paper"),
    }
)
PARQUET_FEATURE_NTYPES: frozenset[str] = frozenset({"author"})
# A second, independent random stream for the chunked ID order: the graph itself is drawn from
# the spec's seed alone, so both formats hold the same graph.
_ID_ORDER_STREAM = 8


class ChunkedFormatError(ValueError):
    """A chunked graph that cannot be written or read as asked; the message names why."""


def etype_name(relation: tuple[str, str, str]) -> str:
    return ":".join(relation)


def chunk_sizes(total: int, num_chunks: int) -> list[int]:
    """``total`` rows in ``num_chunks`` non-empty chunks of growing size (weights 1, 2, 3, ...)."""
    weights = np.arange(1, num_chunks + 1, dtype=np.float64)
    bounds = np.floor(np.cumsum(weights) / weights.sum() * total).astype(np.int64)
    sizes = np.diff(np.concatenate([[0], bounds])).tolist()
    if total < num_chunks or min(sizes) < 1:
        # Too few rows for growing chunks: as even as possible, still none empty.
        if total < num_chunks:
            raise ChunkedFormatError(f"cannot split {total} rows into {num_chunks} non-empty chunks")
        sizes = [len(part) for part in np.array_split(np.arange(total), num_chunks)]
    return [int(s) for s in sizes]


def _offsets(sizes: list[int]) -> list[tuple[int, int]]:
    ends = np.cumsum(sizes).tolist()
    return list(zip([0, *ends[:-1]], ends))


# ----------------------------------------------------------------------------------- writers
def _parquet_array(arr: np.ndarray) -> pa.Table:
    """One column per dimension (named "0", "1", ...), the shape in the schema metadata (DGL's way)."""
    columns = arr.reshape(arr.shape[0], -1)
    table = pa.table({str(i): pa.array(columns[:, i]) for i in range(columns.shape[1])})
    return table.replace_schema_metadata({SHAPE_METADATA_KEY: str(tuple(arr.shape)).encode()})


def _write_array(arr: np.ndarray, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "numpy":
        np.save(path, arr, allow_pickle=False)
    elif fmt == "parquet":
        pq.write_table(_parquet_array(arr), path)
    elif fmt == "csv":
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            np.savetxt(handle, arr, fmt="%d", delimiter=CSV_DELIMITER)
    else:  # pragma: no cover - the writer only asks for the three formats above
        raise ChunkedFormatError(f"unknown chunk format {fmt!r}")


def _format_spec(fmt: str) -> dict[str, str]:
    return {"name": "csv", "delimiter": CSV_DELIMITER} if fmt == "csv" else {"name": fmt}


_EXTENSIONS = {"numpy": "npy", "parquet": "parquet", "csv": "csv"}


@dataclass(frozen=True)
class ChunkedGraphFiles:
    """What :func:`write_chunked_graph` wrote: the metadata (as a dict) and every file."""

    metadata: dict[str, Any]
    files: list[Path]


def write_chunked_graph(
    node_ids: Mapping[str, list[str]],
    node_data: Mapping[str, Mapping[str, np.ndarray]],
    edges: Mapping[tuple[str, str, str], tuple[np.ndarray, np.ndarray]],
    out_dir: Path,
    *,
    graph_name: str,
    num_chunks: int = DEFAULT_NUM_CHUNKS,
    seed: int = 0,
) -> ChunkedGraphFiles:
    """
    Write a heterogeneous graph in DGL's chunked format plus GSProcessing-style raw ID mappings.

    :param node_ids: raw (string) IDs per node type; a node's position is its index in the arrays.
    :param node_data: per node type, feature name -> array with one row per node (by position).
    :param edges: per ``(src, rel, dst)``, the source and destination positions.
    :param graph_name: ``graph_name`` of the metadata (the partitioned graph's name).
    :param num_chunks: chunks per node type and per edge type.
    :param seed: seeds the order of the chunked integer IDs (a permutation of the positions).
    """
    if not isinstance(num_chunks, int) or isinstance(num_chunks, bool) or num_chunks < 1:
        raise ChunkedFormatError(f"num_chunks must be an integer of at least 1, got {num_chunks!r}")
    rng = np.random.default_rng([seed, _ID_ORDER_STREAM])
    written: list[Path] = []

    def put(arr: np.ndarray, rel: str, fmt: str) -> None:
        _write_array(arr, out_dir / rel, fmt)
        written.append(out_dir / rel)

    ntypes = list(node_ids)
    # order[nt][new ID] = position; new_of[nt][position] = new ID.
    order = {nt: rng.permutation(len(node_ids[nt])) for nt in ntypes}
    new_of = {nt: np.argsort(order[nt], kind="stable") for nt in ntypes}
    node_chunks: dict[str, list[int]] = {}
    for nt in ntypes:
        try:
            node_chunks[nt] = chunk_sizes(len(node_ids[nt]), num_chunks)
        except ChunkedFormatError:
            raise ChunkedFormatError(
                f"num_chunks ({num_chunks}) is more than node type {nt!r} has nodes ({len(node_ids[nt])})"
            ) from None

    meta_node_data: dict[str, dict[str, Any]] = {}
    for nt, feats in node_data.items():
        meta_node_data[nt] = {}
        for feat, values in feats.items():
            if values.shape[0] != len(node_ids[nt]):
                raise ChunkedFormatError(
                    f"feature {nt}:{feat} has {values.shape[0]} rows for {len(node_ids[nt])} nodes"
                )
            fmt = _feature_format(nt, feat)
            ordered = values[order[nt]]
            files = []
            for k, (lo, hi) in enumerate(_offsets(node_chunks[nt])):
                feat_rel = f"node_data/{nt}-{feat}-part{k}.{_EXTENSIONS[fmt]}"
                put(ordered[lo:hi], feat_rel, fmt)
                files.append(feat_rel)
            meta_node_data[nt][feat] = {"format": _format_spec(fmt), "data": files}

    etypes, edge_chunks, meta_edges = [], [], {}
    for rel, (src, dst) in edges.items():
        name = etype_name(rel)
        fmt = "csv" if rel in CSV_RELATIONS else "parquet"
        pairs = np.stack([new_of[rel[0]][src], new_of[rel[2]][dst]], axis=1).astype(np.int64)
        try:
            sizes = chunk_sizes(pairs.shape[0], num_chunks)
        except ChunkedFormatError:
            raise ChunkedFormatError(
                f"num_chunks ({num_chunks}) is more than edge type {name} has edges ({pairs.shape[0]})"
            ) from None
        files = []
        for k, (lo, hi) in enumerate(_offsets(sizes)):
            edge_rel = f"edges/{'_'.join(rel)}-part{k}.{_EXTENSIONS[fmt]}"
            put(pairs[lo:hi], edge_rel, fmt)
            files.append(edge_rel)
        etypes.append(name)
        edge_chunks.append(sizes)
        meta_edges[name] = {"format": _format_spec(fmt), "data": files}

    for nt in ntypes:
        raw = np.asarray(node_ids[nt], dtype=object)[order[nt]]
        for k, (lo, hi) in enumerate(_offsets(node_chunks[nt])):
            table = pa.table(
                {
                    MAPPING_ORIG_COL: pa.array(raw[lo:hi].tolist(), type=pa.string()),
                    MAPPING_NEW_COL: pa.array(np.arange(lo, hi, dtype=np.int64)),
                }
            )
            path = out_dir / RAW_ID_MAPPINGS / nt / "parquet" / f"part-{k:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            written.append(path)

    metadata = {
        "graph_name": graph_name,
        "node_type": ntypes,
        "num_nodes_per_chunk": [node_chunks[nt] for nt in ntypes],
        "edge_type": etypes,
        "num_edges_per_chunk": edge_chunks,
        "edges": meta_edges,
        "node_data": meta_node_data,
        "edge_data": {},
    }
    meta_path = out_dir / METADATA_FILE
    meta_path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    written.append(meta_path)
    return ChunkedGraphFiles(metadata=metadata, files=written)


def _feature_format(ntype: str, feat: str) -> str:
    if feat in MASK_FEATURES.values():
        return "parquet"
    if feat == LABEL_FEATURE:
        return "numpy"
    return "parquet" if ntype in PARQUET_FEATURE_NTYPES else "numpy"


# ----------------------------------------------------------------------------------- readers
def read_metadata(root_uri: str, metadata_file: str = METADATA_FILE) -> dict[str, Any]:
    return cast("dict[str, Any]", json.loads(storage.read_bytes(storage.join(root_uri, metadata_file))))


def read_array(data: bytes, fmt: Mapping[str, Any]) -> np.ndarray:
    """One chunk file's array, in any of the specification's three formats."""
    name = fmt.get("name")
    if name == "numpy":
        return cast("np.ndarray", np.load(io.BytesIO(data), allow_pickle=False))
    if name == "parquet":
        table = pq.read_table(pa.BufferReader(data))
        arr = np.stack([table.column(i).to_numpy() for i in range(table.num_columns)], axis=1)
        shape = (table.schema.metadata or {}).get(SHAPE_METADATA_KEY)
        return arr.reshape(ast.literal_eval(shape.decode())) if shape else arr
    if name == "csv":
        text = data.decode("utf-8")
        return np.loadtxt(io.StringIO(text), delimiter=fmt.get("delimiter", CSV_DELIMITER), dtype=np.int64, ndmin=2)
    raise ChunkedFormatError(f"unknown chunk format {name!r}")


def read_chunks(root_uri: str, spec: Mapping[str, Any]) -> np.ndarray:
    """All chunks of one ``{"format": ..., "data": [...]}`` entry, concatenated in order."""
    return np.concatenate(
        [read_array(storage.read_bytes(storage.join(root_uri, rel)), spec["format"]) for rel in spec["data"]]
    )


def read_node_feature(root_uri: str, metadata: Mapping[str, Any], ntype: str, feature: str) -> np.ndarray:
    """Return a node feature by chunked ID."""
    try:
        spec = metadata["node_data"][ntype][feature]
    except KeyError:
        raise ChunkedFormatError(f"the chunked graph has no node feature {ntype}:{feature}") from None
    return read_chunks(root_uri, spec)


def read_raw_ids(root_uri: str, ntype: str) -> np.ndarray:
    """Return the raw string ID of every node of ``ntype``, indexed by chunked ID (from ``raw_id_mappings``)."""
    files = [f for f in storage.list_files(storage.join(root_uri, RAW_ID_MAPPINGS, ntype)) if f.endswith(".parquet")]
    if not files:
        raise ChunkedFormatError(f"no {RAW_ID_MAPPINGS}/{ntype}/ parquet files under {root_uri}")
    table = pa.concat_tables(pq.read_table(pa.BufferReader(storage.read_bytes(f))) for f in files)
    new = table.column(MAPPING_NEW_COL).to_numpy()
    raw = np.asarray(table.column(MAPPING_ORIG_COL).to_pylist(), dtype=object)
    if sorted(new.tolist()) != list(range(len(new))):
        raise ChunkedFormatError(f"{RAW_ID_MAPPINGS}/{ntype} does not map every ID 0..{len(new) - 1} exactly once")
    out = np.empty(len(new), dtype=object)
    out[new] = raw
    return out
