"""
Builds this host's partitions.

Stream the edge chunks keeping the edges whose destination one of our partitions owns (DGL's rule), add the halo
(source) nodes, read our feature rows.

Only public DGL APIs: ``dgl.graph`` for the partition structure and the reserved field names
``dgl.NID``/``dgl.EID``/``dgl.NTYPE``/``dgl.ETYPE``, ``inner_node``/``inner_edge`` of DGL's
documented partition format.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gsentry.errors import InputError
from gsentry.partition.layout import EdgeLayout, NodeLayout, edge_layout, edge_type_order
from gsentry.partition.readers import read_edges, read_rows

if TYPE_CHECKING:
    from gsentry.partition.metadata import ChunkedGraph

log = logging.getLogger(__name__)

Resolve = Callable[[str], Path]
Check = Callable[[], None]


class BackgroundImport:
    """
    ``import dgl`` (and torch) in a thread, started while the edges stream.

    The import takes 2-3 s of CPU and, in a container just started, reads about a gigabyte of
    shared libraries from disk: that waiting overlaps the edge chunks' reading instead of
    following it. :meth:`wait` re-raises what the import raised.
    """

    def __init__(self) -> None:
        # The readers' modules are imported here, in the main thread, first: the two threads then
        # never import the same module at once (dgl imports pandas, which may import pyarrow), which
        # Python resolves by handing one of them a partly initialised module.
        import pyarrow.csv
        import pyarrow.parquet  # noqa: F401

        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="import-dgl", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            import dgl  # noqa: F401
            import torch  # noqa: F401
        except BaseException as err:  # handed to the main thread by wait()
            self._error = err

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


@dataclass
class OwnedEdges:
    """One partition's edges of one type, in original edge-ID order."""

    src: list[np.ndarray] = field(default_factory=list)
    dst: list[np.ndarray] = field(default_factory=list)
    eids: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def cat(items: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(items) if items else np.zeros(0, dtype=np.int64)

        return cat(self.src), cat(self.dst), cat(self.eids)


def stream_edges(
    graph: ChunkedGraph,
    assignment: dict[str, np.ndarray],
    num_parts: int,
    my_parts: list[int],
    resolve: Resolve,
    check: Check,
) -> tuple[EdgeLayout, dict[int, dict[str, OwnedEdges]]]:
    """Read every edge chunk once: count every partition's edges (for the edge map) and keep ours."""
    kept = {p: {et.name: OwnedEdges() for et in graph.etypes} for p in my_parts}
    counts: dict[str, np.ndarray] = {}
    for et in graph.etypes:
        total = np.zeros(num_parts, dtype=np.int64)
        offset = 0
        for rel in et.edges.files:
            check()
            src, dst = read_edges(resolve(rel), et.edges)
            _check_ids(graph, et.edges.field, rel, src, et.src)
            _check_ids(graph, et.edges.field, rel, dst, et.dst)
            dparts = assignment[et.dst][dst]
            total += np.bincount(dparts, minlength=num_parts)
            for part in my_parts:  # a compare of one byte per edge and partition (few per host)
                idx = np.flatnonzero(dparts == part)
                owned = kept[part][et.name]
                owned.src.append(src[idx])
                owned.dst.append(dst[idx])
                owned.eids.append(idx + offset)
            offset += len(src)
        counts[et.name] = total
    return edge_layout(edge_type_order(graph), counts), kept


def _check_ids(graph: ChunkedGraph, field_name: str, rel: str, ids: np.ndarray, ntype: str) -> None:
    if len(ids) and (ids.min() < 0 or ids.max() >= graph.num_nodes[ntype]):
        raise InputError(
            f"{graph.path}: {rel} ({field_name}) has {ntype} node IDs outside 0..{graph.num_nodes[ntype] - 1}."
        )


def halo_nodes(src: np.ndarray, lo: int, hi: int, num_nodes: int) -> np.ndarray:
    """
    Return the sources outside the partition's own range ``lo..hi``, sorted and unique (its halo).

    A mark per node of the graph instead of ``np.unique``: one pass over the edges, no sort of them.
    """
    seen = np.zeros(num_nodes, dtype=bool)
    seen[src] = True
    seen[lo:hi] = False
    return np.flatnonzero(seen)


def local_ids(src: np.ndarray, lo: int, hi: int, halo: np.ndarray, num_nodes: int) -> np.ndarray:
    """
    Return partition-local IDs of shuffled node IDs: own nodes ``0..hi-lo-1``, then the halo in its order.

    A lookup table over the graph's nodes instead of a ``searchsorted`` of every edge in the halo.
    """
    table = np.empty(num_nodes, dtype=np.int64)
    table[lo:hi] = np.arange(hi - lo, dtype=np.int64)
    table[halo] = np.arange(hi - lo, hi - lo + len(halo), dtype=np.int64)
    out: np.ndarray = table[src]
    return out


@dataclass
class BuiltPartition:
    """One partition this host built: its DGL graph and the feature rows of its nodes and edges."""

    part: int
    graph: object  # dgl.DGLGraph
    node_feats: dict[str, np.ndarray]
    edge_feats: dict[str, np.ndarray]
    orig_nids: dict[str, np.ndarray]
    orig_eids: dict[str, np.ndarray]


def build_partition(
    graph: ChunkedGraph,
    part: int,
    nodes: NodeLayout,
    edges: EdgeLayout,
    owned: dict[str, OwnedEdges],
    resolve: Resolve,
    check: Check,
) -> BuiltPartition:
    import dgl
    import torch

    lo, hi = nodes.part_range(part)
    srcs, dsts, etype_ids, orig_eids = [], [], [], {}
    for tid, name in enumerate(edges.etypes):
        et = graph.etype(name)
        src, dst, eids = owned[name].arrays()
        srcs.append(nodes.homog[et.src][src])
        dsts.append(nodes.homog[et.dst][dst])
        etype_ids.append(np.full(len(src), tid, dtype=np.int32))
        orig_eids[name] = eids
    src_h = np.concatenate(srcs) if srcs else np.zeros(0, dtype=np.int64)
    dst_h = np.concatenate(dsts) if dsts else np.zeros(0, dtype=np.int64)
    del srcs, dsts
    num_inner = hi - lo
    num_edges = len(src_h)
    halo = halo_nodes(src_h, lo, hi, nodes.total)
    local_src = local_ids(src_h, lo, hi, halo, nodes.total)
    del src_h
    local_dst = dst_h - lo
    del dst_h
    node_ids = np.concatenate([np.arange(lo, hi, dtype=np.int64), halo])
    g = dgl.graph(
        (torch.from_numpy(local_src), torch.from_numpy(local_dst)), num_nodes=len(node_ids), idtype=torch.int64
    )
    g.ndata[dgl.NID] = torch.from_numpy(node_ids)
    g.ndata[dgl.NTYPE] = torch.from_numpy(nodes.type_of(node_ids))
    inner = np.zeros(len(node_ids), dtype=np.uint8)
    inner[:num_inner] = 1
    g.ndata["inner_node"] = torch.from_numpy(inner)
    g.edata[dgl.EID] = torch.arange(edges.starts[part, 0], edges.starts[part, 0] + num_edges, dtype=torch.int64)
    g.edata[dgl.ETYPE] = torch.from_numpy(np.concatenate(etype_ids) if etype_ids else np.zeros(0, np.int32))
    g.edata["inner_edge"] = torch.ones(num_edges, dtype=torch.uint8)

    orig_nids = {t: nodes.owned[t][part] for t in nodes.ntypes}
    node_feats = {}
    for ntype, feats in graph.node_data.items():
        for feat, chunks in feats.items():
            check()
            node_feats[f"{ntype}/{feat}"] = read_rows(chunks, graph.node_chunk_rows[ntype], orig_nids[ntype], resolve)
    edge_feats = {}
    for name, feats in graph.edge_data.items():
        for feat, chunks in feats.items():
            check()
            edge_feats[f"{name}/{feat}"] = read_rows(chunks, graph.etype(name).chunk_rows, orig_eids[name], resolve)
    log.info("part %d: %d inner node(s), %d halo node(s), %d edge(s)", part, num_inner, len(halo), num_edges)
    return BuiltPartition(part, g, node_feats, edge_feats, orig_nids, orig_eids)
