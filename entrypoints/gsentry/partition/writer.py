"""
Writes partitions in DGL's partition layout and the partition config (``<graph_name>.json``).

Per partition ``part<i>/``: ``graph.dgl`` (``dgl.save_graphs``), ``node_feat.dgl`` and
``edge_feat.dgl`` (``dgl.data.utils.save_tensors``, keys ``<ntype>/<feat>`` and
``<src:rel:dst>/<feat>``), and ``orig_nids.dgl`` / ``orig_eids.dgl`` (original per-type IDs of
the partition's own nodes and edges in shuffled order), which GraphStorm's ID remapping reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gsentry.partition.builder import BuiltPartition
    from gsentry.partition.layout import EdgeLayout, NodeLayout
    from gsentry.partition.metadata import ChunkedGraph

PART_METHOD = "random"
HALO_HOPS = 1


def part_dir_name(part: int) -> str:
    return f"part{part}"


def save_partition(built: BuiltPartition, folder: Path) -> None:
    import dgl
    import torch
    from dgl.data.utils import save_tensors

    def tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}

    folder.mkdir(parents=True, exist_ok=True)
    dgl.save_graphs(str(folder / "graph.dgl"), [built.graph])
    save_tensors(str(folder / "node_feat.dgl"), tensors(built.node_feats))
    save_tensors(str(folder / "edge_feat.dgl"), tensors(built.edge_feats))
    save_tensors(str(folder / "orig_nids.dgl"), tensors({k: v.astype(np.int64) for k, v in built.orig_nids.items()}))
    save_tensors(str(folder / "orig_eids.dgl"), tensors({k: v.astype(np.int64) for k, v in built.orig_eids.items()}))


def partition_config(graph: ChunkedGraph, nodes: NodeLayout, edges: EdgeLayout) -> dict[str, Any]:
    """Return the partition config JSON that ``dgl.distributed.load_partition`` and GraphStorm read."""
    config = {
        "graph_name": graph.graph_name,
        "num_nodes": int(nodes.counts.sum()),
        "num_edges": int(edges.counts.sum()),
        "part_method": PART_METHOD,
        "num_parts": nodes.num_parts,
        "halo_hops": HALO_HOPS,
        "node_map": nodes.node_map(),
        "edge_map": edges.edge_map(),
        "ntypes": {t: i for i, t in enumerate(nodes.ntypes)},
        "etypes": {e: i for i, e in enumerate(edges.etypes)},
    }
    for part in range(nodes.num_parts):
        name = part_dir_name(part)
        config[f"part-{part}"] = {
            "node_feats": f"{name}/node_feat.dgl",
            "edge_feats": f"{name}/edge_feat.dgl",
            "part_graph": f"{name}/graph.dgl",
        }
    return config


def write_config(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=4), encoding="utf-8")
