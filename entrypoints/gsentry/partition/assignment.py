"""
The random node-to-partition assignment, as GraphStorm's ``RandomPartitionAlgorithm`` writes it.

``<dir>/<ntype>.txt`` holds one partition ID per line for the nodes of that type in ID order,
and ``<dir>/partition_meta.json`` (written last, so a half-written assignment never looks
complete) ``{"algo_name": "random", "num_parts": N, "version": "1.0.0"}``. Unlike GraphStorm's,
this one is seeded: the same graph and seed give byte-identical files, so every host can
compute it and a rerun reproduces it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gsentry.errors import InputError

if TYPE_CHECKING:
    from gsentry.partition.metadata import ChunkedGraph

ASSIGNMENT_DIR = "partition_assignment"
META_FILE = "partition_meta.json"
ALGORITHM = "random"
FORMAT_VERSION = "1.0.0"
SEED = 8
MAX_PARTS = 2**16


def random_assignment(graph: ChunkedGraph, num_parts: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """
    Partition ID per node, per type.

    Every partition gets one node of each type first (when there are enough), the rest are uniform.
    """
    if not 0 < num_parts < MAX_PARTS:
        raise InputError(f"--num-parts must be between 1 and {MAX_PARTS - 1}, got {num_parts}.")
    dtype = np.uint8 if num_parts < 256 else np.uint16
    rng = np.random.default_rng(seed)
    out = {}
    for ntype in graph.ntypes:
        n = graph.num_nodes[ntype]
        parts = np.empty(n, dtype=dtype)
        head = min(n, num_parts)
        parts[:head] = rng.permutation(num_parts)[:head]
        parts[head:] = rng.integers(0, num_parts, n - head, dtype=dtype)
        out[ntype] = parts
    return out


def write_assignment(folder: Path, assignment: dict[str, np.ndarray], num_parts: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for ntype, parts in assignment.items():
        (folder / f"{ntype}.txt").write_bytes(assignment_text(parts))
    meta = {"algo_name": ALGORITHM, "num_parts": num_parts, "version": FORMAT_VERSION}
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")


def assignment_text(parts: np.ndarray) -> bytes:
    """
    Return the file's bytes: every partition ID in decimal, each followed by a newline.

    Built from a table of each ID's digits instead of a Python string per node (a million nodes: 10 ms, not 150).
    """
    if not len(parts):
        return b""
    labels = [f"{p}\n".encode("ascii") for p in range(int(parts.max()) + 1)]
    width = max(map(len, labels))
    table = np.zeros((len(labels), width), dtype=np.uint8)
    for i, label in enumerate(labels):
        table[i, : len(label)] = np.frombuffer(label, dtype=np.uint8)
    rows: np.ndarray = table[parts]
    lengths = np.array([len(label) for label in labels])
    if not (lengths == width).all():
        rows = rows[np.arange(width) < lengths[parts][:, None]]
    return rows.tobytes()


def assignment_files(graph: ChunkedGraph) -> list[str]:
    return [f"{ntype}.txt" for ntype in graph.ntypes] + [META_FILE]


def read_assignment(folder: Path, graph: ChunkedGraph, num_parts: int, where: str) -> dict[str, np.ndarray]:
    """Return a complete assignment for ``graph`` and ``num_parts``, else one sentence naming the file."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise InputError(
            f"--skip-partitioning: {where}/{META_FILE} does not exist (no complete partition assignment to reuse)."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"--skip-partitioning: {where}/{META_FILE} is not valid JSON ({err}).") from err
    if not isinstance(meta, dict) or meta.get("num_parts") != num_parts:
        raise InputError(
            f"--skip-partitioning: {where}/{META_FILE} field num_parts is "
            f"{meta.get('num_parts') if isinstance(meta, dict) else None}, not --num-parts {num_parts}."
        )
    out = {}
    for ntype in graph.ntypes:
        path = folder / f"{ntype}.txt"
        if not path.is_file():
            raise InputError(f"--skip-partitioning: {where}/{ntype}.txt does not exist (partial assignment).")
        text = path.read_bytes()
        parts = np.array(text.split(), dtype=np.int64) if text.strip() else np.zeros(0, dtype=np.int64)
        if len(parts) != graph.num_nodes[ntype]:
            raise InputError(
                f"--skip-partitioning: {where}/{ntype}.txt has {len(parts)} line(s) but node type "
                f"{ntype} has {graph.num_nodes[ntype]} node(s) (partial assignment)."
            )
        if len(parts) and (parts.min() < 0 or parts.max() >= num_parts):
            raise InputError(f"--skip-partitioning: {where}/{ntype}.txt has partition IDs outside 0..{num_parts - 1}.")
        out[ntype] = parts.astype(np.uint8 if num_parts < 256 else np.uint16)
    return out
