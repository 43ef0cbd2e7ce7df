"""
The shuffled ID layout every host derives from the assignment (identical on all hosts).

DGL's partition format numbers nodes partition-major, then by node type (type ID order),
then by original per-type ID; edges likewise, an edge belonging to its destination's
partition. ``node_map`` / ``edge_map`` in the partition config are these ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gsentry.partition.metadata import ChunkedGraph


@dataclass(frozen=True)
class NodeLayout:
    """How many nodes of each type each partition owns, and where its shuffled IDs start."""

    ntypes: tuple[str, ...]  # in type-ID order
    num_parts: int
    counts: np.ndarray  # [part, type] owned nodes
    starts: np.ndarray  # [part, type] first shuffled (homogeneous) ID
    homog: dict[str, np.ndarray]  # per type: original per-type ID -> shuffled ID
    owned: dict[str, list[np.ndarray]]  # per type, per part: original IDs in shuffled order

    @property
    def total(self) -> int:
        """Nodes of every type in every partition (the shuffled ID space)."""
        return int(self.counts.sum())

    def part_range(self, part: int) -> tuple[int, int]:
        lo = int(self.starts[part, 0])
        return lo, lo + int(self.counts[part].sum())

    def type_of(self, homog_ids: np.ndarray) -> np.ndarray:
        """Type ID of shuffled node IDs."""
        flat = self.starts.reshape(-1)
        index = np.searchsorted(flat, homog_ids, side="right") - 1
        return (index % len(self.ntypes)).astype(np.int32)  # DGL saves _TYPE as int32

    def node_map(self) -> dict[str, list[list[int]]]:
        return {
            t: [[int(self.starts[p, i]), int(self.starts[p, i] + self.counts[p, i])] for p in range(self.num_parts)]
            for i, t in enumerate(self.ntypes)
        }


def node_layout(graph: ChunkedGraph, assignment: dict[str, np.ndarray], num_parts: int) -> NodeLayout:
    ntypes = tuple(sorted(graph.ntypes))
    counts = np.stack([np.bincount(assignment[t], minlength=num_parts) for t in ntypes], axis=1).astype(np.int64)
    starts = (np.cumsum(counts.reshape(-1)) - counts.reshape(-1)).reshape(counts.shape)
    homog, owned = {}, {}
    for i, t in enumerate(ntypes):
        parts = assignment[t]
        order = np.argsort(parts, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts[:, i])])
        owned[t] = [order[bounds[p] : bounds[p + 1]] for p in range(num_parts)]
        rank = np.empty(len(parts), dtype=np.int64)
        rank[order] = np.arange(len(parts), dtype=np.int64) - np.repeat(bounds[:-1], counts[:, i])
        homog[t] = starts[parts.astype(np.int64), i] + rank
    return NodeLayout(ntypes, num_parts, counts, starts, homog, owned)


@dataclass(frozen=True)
class EdgeLayout:
    """How many edges of each type each partition owns, and where its shuffled IDs start."""

    etypes: tuple[str, ...]  # "src:rel:dst", in type-ID order
    counts: np.ndarray  # [part, type] owned edges
    starts: np.ndarray  # [part, type] first shuffled edge ID

    def edge_map(self) -> dict[str, list[list[int]]]:
        return {
            e: [
                [int(self.starts[p, i]), int(self.starts[p, i] + self.counts[p, i])]
                for p in range(self.counts.shape[0])
            ]
            for i, e in enumerate(self.etypes)
        }


def edge_type_order(graph: ChunkedGraph) -> tuple[str, ...]:
    return tuple(et.name for et in sorted(graph.etypes, key=lambda et: et.canonical))


def edge_layout(etypes: tuple[str, ...], counts: dict[str, np.ndarray]) -> EdgeLayout:
    matrix = np.stack([counts[e] for e in etypes], axis=1).astype(np.int64)
    starts = (np.cumsum(matrix.reshape(-1)) - matrix.reshape(-1)).reshape(matrix.shape)
    return EdgeLayout(etypes, matrix, starts)
