"""Checks a partitioned graph against its chunked input (runs in the runtime python, with DGL).

``python partition_checks.py INPUT_DIR METADATA PART_CONFIG`` loads every partition with
``dgl.distributed.load_partition`` (``DGL_DIST_DEBUG=1``: DGL's own consistency checks) and
asserts the exact cover: every input node and edge is owned by exactly one partition, each owned
edge's destination is owned by the same partition and its endpoints are the input's, and every
feature row equals the input row (through ``orig_nids.dgl`` / ``orig_eids.dgl``). Prints a JSON
summary (a digest of every output file too, see :func:`digest`) on success; fails with an AssertionError otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ["DGL_DIST_DEBUG"] = "1"

import dgl
import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from dgl.data.utils import load_tensors
from dgl.distributed import load_partition


def read_feature(root: Path, spec: dict) -> np.ndarray:
    pieces = []
    for rel in spec["data"]:
        if spec["format"]["name"] == "numpy":
            pieces.append(np.load(root / rel))
        else:
            table = pq.read_table(root / rel)
            cols = [np.array(c.to_pylist()) for c in table.columns]  # scalars or vectors (list column)
            pieces.append(cols[0] if len(cols) == 1 else np.column_stack(cols))
    return np.concatenate(pieces)


def read_edges(root: Path, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    src, dst = [], []
    for rel in spec["data"]:
        if spec["format"]["name"] == "csv":
            table = pa_csv.read_csv(
                root / rel,
                read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
                parse_options=pa_csv.ParseOptions(delimiter=spec["format"].get("delimiter", " ")),
            )
        else:
            table = pq.read_table(root / rel)
        src.append(table.column(0).to_numpy())
        dst.append(table.column(1).to_numpy())
    return np.concatenate(src), np.concatenate(dst)


def digest(path: Path) -> str:
    """A file's SHA-256; for a ``graph.dgl``, of its content (``dgl.save_graphs`` itself does not
    write the same bytes twice for one graph)."""
    if path.name != "graph.dgl":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    g = dgl.load_graphs(str(path))[0][0]
    sha = hashlib.sha256()
    for tensor in (*g.edges(), *(g.ndata[k] for k in sorted(g.ndata)), *(g.edata[k] for k in sorted(g.edata))):
        sha.update(tensor.numpy().tobytes())
    sha.update(repr((sorted(g.ndata), sorted(g.edata), g.num_nodes())).encode())
    return "content:" + sha.hexdigest()


def main(root: Path, metadata: str, part_config: Path) -> dict:
    meta = json.loads((root / metadata).read_text())
    config = json.loads(part_config.read_text())
    num_parts = config["num_parts"]
    num_nodes = {t: sum(c) for t, c in zip(meta["node_type"], meta["num_nodes_per_chunk"])}
    owner = {t: np.full(n, -1) for t, n in num_nodes.items()}
    edge_owner = {e: np.full(sum(c), -1) for e, c in zip(meta["edge_type"], meta["num_edges_per_chunk"])}
    input_edges = {e: read_edges(root, meta["edges"][e]) for e in meta["edge_type"]}
    node_feats = {(t, f): read_feature(root, s) for t, fs in meta.get("node_data", {}).items() for f, s in fs.items()}
    edge_feats = {(e, f): read_feature(root, s) for e, fs in meta.get("edge_data", {}).items() for f, s in fs.items()}
    folder = part_config.parent
    for part in range(num_parts):
        g, nfeat, efeat, gpb, name, ntypes, etypes = load_partition(str(part_config), part)
        assert name == meta["graph_name"]
        orig_nids = load_tensors(str(folder / f"part{part}" / "orig_nids.dgl"))
        orig_eids = load_tensors(str(folder / f"part{part}" / "orig_eids.dgl"))
        for t in num_nodes:
            ids = orig_nids[t].numpy()
            assert np.all(owner[t][ids] == -1), f"{t} nodes owned twice"
            owner[t][ids] = part
            lo, hi = config["node_map"][t][part]
            assert hi - lo == len(ids), f"node_map of {t} part {part} does not match orig_nids"
        for (t, f), data in node_feats.items():
            got = nfeat[f"{t}/{f}"].numpy()
            assert np.array_equal(got, data[orig_nids[t].numpy()]), f"node feature {t}/{f} differs in part {part}"
        inner = g.ndata["inner_node"].numpy() == 1
        assert np.all(gpb.nid2partid(g.ndata[dgl.NID][inner]).numpy() == part)
        src, dst = (x.numpy() for x in g.edges())
        assert np.all(inner[dst]), "an owned edge's destination is not an owned node"
        _, per_type = (x.numpy() for x in gpb.map_to_per_ntype(g.ndata[dgl.NID]))
        etype_of = g.edata[dgl.ETYPE].numpy()
        eids_g = g.edata[dgl.EID].numpy()
        for e in meta["edge_type"]:
            ids = orig_eids[e].numpy()
            assert np.all(edge_owner[e][ids] == -1), f"{e} edges owned twice"
            edge_owner[e][ids] = part
            s_t, _, d_t = e.split(":")
            d_owner = owner[d_t][input_edges[e][1][ids]]
            assert np.all(d_owner == part), f"{e} edge owned by a partition that does not own its destination"
        for (e, f), data in edge_feats.items():
            got = efeat[f"{e}/{f}"].numpy()
            assert np.array_equal(got, data[orig_eids[e].numpy()]), f"edge feature {e}/{f} differs in part {part}"
        # Endpoint check: local edge -> per-type shuffled IDs -> original IDs via every part's orig_nids.
        for e in meta["edge_type"]:
            mask = etype_of == config["etypes"][e]
            assert mask.sum() == len(orig_eids[e])
            order = np.argsort(eids_g[mask], kind="stable")
            s_local, d_local = src[mask][order], dst[mask][order]
            s_t, _, d_t = e.split(":")
            for local, t, col in ((s_local, s_t, 0), (d_local, d_t, 1)):
                all_orig = np.concatenate(
                    [load_tensors(str(folder / f"part{p}" / "orig_nids.dgl"))[t].numpy() for p in range(num_parts)]
                )
                orig = all_orig[per_type[local]]
                assert np.array_equal(orig, input_edges[e][col][orig_eids[e].numpy()]), f"{e} endpoints differ"
    for t, o in owner.items():
        assert np.all(o >= 0), f"{t} nodes not owned by any partition"
    for e, o in edge_owner.items():
        assert np.all(o >= 0), f"{e} edges not owned by any partition"
    # The manifest names its job and the time it was written: the rest of the output is what must repeat.
    digests = {
        str(p.relative_to(folder)): digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "_manifest.json"
    }
    return {
        "num_parts": num_parts,
        "nodes": {t: int(len(o)) for t, o in owner.items()},
        "edges": {e: int(len(o)) for e, o in edge_owner.items()},
        "digests": digests,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))))
