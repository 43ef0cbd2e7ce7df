"""Writes small heterogeneous graphs in DGL's chunked graph format (runs in the runtime python).

``python chunked_graphs.py OUT_DIR [--seed S] [--scale K]`` writes ``OUT_DIR/metadata.json`` and
its chunks: csv edges (two delimiters) and parquet edges, numpy and parquet node and edge
features in several chunks (parquet as columns and as a list column), labels and masks as features, and ``raw_id_mappings/``. Also
importable: :func:`write_graph` returns the metadata dict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NUM_CLASSES = 3


def _split(n: int, chunks: int) -> list[int]:
    base = [n // chunks] * chunks
    for i in range(n - sum(base)):
        base[i] += 1
    return base


def _numpy_chunks(root: Path, name: str, array: np.ndarray, rows: list[int]) -> dict:
    files, start = [], 0
    for i, n in enumerate(rows):
        rel = f"node_data/{name}-{i}.npy" if not name.startswith("e-") else f"edge_data/{name}-{i}.npy"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / rel, array[start : start + n])
        files.append(rel)
        start += n
    return {"format": {"name": "numpy"}, "data": files}


def _parquet_chunks(root: Path, name: str, array: np.ndarray, rows: list[int], lists: bool = False) -> dict:
    """One column per vector component, or with ``lists`` one column of vectors (as GSProcessing writes)."""
    files, start = [], 0
    for i, n in enumerate(rows):
        rel = f"parquet_data/{name}-{i}.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        part = array[start : start + n]
        if part.ndim == 1:
            table = pa.table({name: part})
        elif lists:
            table = pa.table({name: pa.array(list(part), type=pa.list_(pa.from_numpy_dtype(part.dtype)))})
        else:
            table = pa.table({f"{name}_{j}": part[:, j] for j in range(part.shape[1])})
        pq.write_table(table, root / rel)
        files.append(rel)
        start += n
    return {"format": {"name": "parquet"}, "data": files}


def _edge_chunks(
    root: Path, etype: str, src: np.ndarray, dst: np.ndarray, rows: list[int], fmt: str, delimiter: str = " "
) -> dict:
    files, start = [], 0
    tag = etype.replace(":", "-")
    for i, n in enumerate(rows):
        s, d = src[start : start + n], dst[start : start + n]
        if fmt == "csv":
            rel = f"edge_index/{tag}-{i}.csv"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("".join(f"{a}{delimiter}{b}\n" for a, b in zip(s, d)))
        else:
            rel = f"edge_index/{tag}-{i}.parquet"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({"src_id": s, "dst_id": d}), root / rel)
        files.append(rel)
        start += n
    spec = {"format": {"name": fmt}, "data": files}
    if fmt == "csv":
        spec["format"]["delimiter"] = delimiter
    return spec


def write_graph(root: Path, seed: int = 0, scale: int = 1, name: str = "chunky") -> dict:
    """A graph of authors, papers and venues; papers have labels and train/val/test masks."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    n = {"author": 40 * scale, "paper": 60 * scale, "venue": 7 * scale}
    node_rows = {"author": _split(n["author"], 2), "paper": _split(n["paper"], 3), "venue": [n["venue"]]}
    labels = rng.integers(0, NUM_CLASSES, n["paper"])
    paper_feat = (np.eye(NUM_CLASSES)[labels] + 0.3 * rng.standard_normal((n["paper"], NUM_CLASSES))).astype(np.float32)
    paper_feat = np.concatenate([paper_feat, rng.standard_normal((n["paper"], 2)).astype(np.float32)], axis=1)
    split = rng.random(n["paper"])
    masks = {"train_mask": split < 0.6, "val_mask": (split >= 0.6) & (split < 0.8), "test_mask": split >= 0.8}

    ne = {"author:writes:paper": 150 * scale, "paper:cites:paper": 200 * scale, "paper:in:venue": n["paper"]}
    src_dst = {
        "author:writes:paper": (
            rng.integers(0, n["author"], ne["author:writes:paper"]),
            rng.integers(0, n["paper"], ne["author:writes:paper"]),
        ),
        "paper:cites:paper": (
            rng.integers(0, n["paper"], ne["paper:cites:paper"]),
            rng.integers(0, n["paper"], ne["paper:cites:paper"]),
        ),
        "paper:in:venue": (np.arange(n["paper"]), rng.integers(0, n["venue"], n["paper"])),
    }
    # Reverse edges so that every node type receives messages.
    for fwd, rev in (("author:writes:paper", "paper:written_by:author"), ("paper:in:venue", "venue:has:paper")):
        s, d = src_dst[fwd]
        src_dst[rev] = (d.copy(), s.copy())
        ne[rev] = ne[fwd]
    edge_rows = {e: _split(c, 3 if e == "paper:cites:paper" else 2) for e, c in ne.items()}
    formats = {
        "author:writes:paper": ("csv", ","),
        "paper:cites:paper": ("parquet", None),
        "paper:in:venue": ("csv", " "),
        "paper:written_by:author": ("parquet", None),
        "venue:has:paper": ("csv", "\t"),
    }
    edges = {}
    for etype, (fmt, delim) in formats.items():
        s, d = src_dst[etype]
        edges[etype] = _edge_chunks(root, etype, s, d, edge_rows[etype], fmt, delim or " ")

    node_data = {
        "author": {
            "feat": _parquet_chunks(
                root, "author-feat", rng.standard_normal((n["author"], 4)).astype(np.float32), node_rows["author"]
            )
        },
        "paper": {
            "feat": _numpy_chunks(root, "paper-feat", paper_feat, node_rows["paper"]),
            "label": _parquet_chunks(root, "paper-label", labels.astype(np.int64), node_rows["paper"]),
            **{m: _numpy_chunks(root, f"paper-{m}", v.astype(np.int8), node_rows["paper"]) for m, v in masks.items()},
        },
        "venue": {
            "feat": _numpy_chunks(
                root, "venue-feat", rng.standard_normal((n["venue"], 4)).astype(np.float32), node_rows["venue"]
            )
        },
    }
    edge_data = {
        "author:writes:paper": {
            "weight": _numpy_chunks(
                root,
                "e-writes-weight",
                rng.random(ne["author:writes:paper"]).astype(np.float32),
                edge_rows["author:writes:paper"],
            )
        },
        "paper:cites:paper": {
            "feat": _parquet_chunks(
                root,
                "e-cites-feat",
                rng.standard_normal((ne["paper:cites:paper"], 2)).astype(np.float32),
                edge_rows["paper:cites:paper"],
                lists=True,
            )
        },
    }
    raw = root / "raw_id_mappings" / "paper" / "parquet"
    raw.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"orig": [f"p{i}" for i in range(n["paper"])], "new": np.arange(n["paper"])}),
        raw / "part-00000.parquet",
    )
    ntypes = list(n)
    etypes = list(formats)
    metadata = {
        "graph_name": name,
        "node_type": ntypes,
        "num_nodes_per_chunk": [node_rows[t] for t in ntypes],
        "edge_type": etypes,
        "num_edges_per_chunk": [edge_rows[e] for e in etypes],
        "edges": edges,
        "node_data": node_data,
        "edge_data": edge_data,
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return metadata


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--name", default="chunky")
    args = parser.parse_args()
    write_graph(Path(args.out), args.seed, args.scale, args.name)


if __name__ == "__main__":
    main()
