"""Per-host wall time and peak RSS of distributed partitioning, next to DGL's in-memory
``dgl.distributed.partition_graph`` (random) on the same graph. Prints figures; asserts nothing.

    GRAPHSTORM_RUNTIME_PYTHON=... nice python bench/partition_scaling.py [--nodes 1000000] [--edges 10000000]
        [--parts 2 [--parts 4]] [--no-dgl] [--work DIR]

``--parts`` runs only those partition counts, ``--no-dgl`` skips DGL's partition_graph (faster
iterations), and a ``--work`` folder keeps the generated graph, which a later run with the same
folder, nodes and edges reuses.

The graph: one node type with a 16-float feature (numpy, 4 chunks) and one edge type
(parquet, 10 chunks), in DGL's chunked format. For P partitions the entry point runs as P hosts
(P processes on this machine meeting through the rendezvous, one partition each), so "per host"
is one process's wall time, CPU time and peak RSS (``wait4``); "host" columns are the
maximum over the hosts. DGL's partition_graph runs once, on
one machine, over the whole graph.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "entrypoints" / "partition_entry.py"
FEAT_DIM = 16
NODE_CHUNKS = 4
EDGE_CHUNKS = 10
PARTS = (2, 4)

GENERATE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    root, n, m, dim, nc, ec = Path(sys.argv[1]), *map(int, sys.argv[2:7])
    rng = np.random.default_rng(0)
    (root / "edges").mkdir(parents=True); (root / "feat").mkdir()
    def split(total, k):
        rows = [total // k] * k
        rows[-1] += total - sum(rows)
        return rows
    erows, nrows = split(m, ec), split(n, nc)
    efiles, nfiles = [], []
    for i, r in enumerate(erows):
        rel = f"edges/e-{i}.parquet"
        pq.write_table(pa.table({"src": rng.integers(0, n, r), "dst": rng.integers(0, n, r)}), root / rel)
        efiles.append(rel)
    for i, r in enumerate(nrows):
        rel = f"feat/f-{i}.npy"
        np.save(root / rel, rng.standard_normal((r, dim)).astype(np.float32))
        nfiles.append(rel)
    meta = {"graph_name": "bench", "node_type": ["node"], "num_nodes_per_chunk": [nrows],
            "edge_type": ["node:link:node"], "num_edges_per_chunk": [erows],
            "edges": {"node:link:node": {"format": {"name": "parquet"}, "data": efiles}},
            "node_data": {"node": {"feat": {"format": {"name": "numpy"}, "data": nfiles}}}}
    (root / "metadata.json").write_text(json.dumps(meta))
""")

DGL_PARTITION = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np, pyarrow.parquet as pq, torch, dgl
    root, out, parts = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    meta = json.loads((root / "metadata.json").read_text())
    spec = meta["edges"]["node:link:node"]["data"]
    tables = [pq.read_table(root / rel) for rel in spec]
    src = np.concatenate([t.column(0).to_numpy() for t in tables])
    dst = np.concatenate([t.column(1).to_numpy() for t in tables])
    del tables
    g = dgl.graph((torch.from_numpy(src), torch.from_numpy(dst)), num_nodes=sum(meta["num_nodes_per_chunk"][0]))
    del src, dst
    feats = meta["node_data"]["node"]["feat"]["data"]
    g.ndata["feat"] = torch.from_numpy(np.concatenate([np.load(root / rel) for rel in feats]))
    dgl.distributed.partition_graph(g, "bench", parts, out, part_method="random")
""")


def runtime_python() -> str:
    return os.environ.get("GRAPHSTORM_RUNTIME_PYTHON") or str(ROOT / ".venv-runtime" / "bin" / "python")


def measured(procs: list[subprocess.Popen]) -> list[tuple[float, float, float]]:
    """``(wall seconds, peak RSS GB, CPU seconds)`` of each process, from its start to its exit.

    CPU seconds (user + system) say more than wall time on a machine shared with other work."""
    started = time.monotonic()
    results: dict[int, tuple[float, float, float]] = {}
    pending = {p.pid: p for p in procs}
    while pending:
        pid, status, usage = os.wait4(-1, 0)
        if pid not in pending:
            continue
        proc = pending.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"process {proc.args[:3]} failed with exit code {proc.returncode}")
        results[pid] = (time.monotonic() - started, usage.ru_maxrss / 1024 / 1024, usage.ru_utime + usage.ru_stime)
    return [results[p.pid] for p in procs]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_entry(work: Path, graph: Path, parts: int, log_level: str = "WARNING") -> list[tuple[float, float, float]]:
    hosts = [f"algo-{i + 1}" for i in range(parts)]
    port = free_port()
    procs = []
    for host in hosts:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "GSENTRY_"))}
        env.update(
            {
                "GRAPHSTORM_OPT_ML": str(work / f"opt-{parts}" / host),
                "SM_TRAINING_ENV": json.dumps({"hosts": hosts, "current_host": host}),
                "GSENTRY_RDZV_PORT": str(port),
                "GSENTRY_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1"}),
            }
        )
        argv = [
            runtime_python(),
            str(ENTRY),
            "--graph-data-s3",
            f"file://{graph}",
            "--num-parts",
            str(parts),
            "--output-data-s3",
            f"file://{work / f'out-{parts}'}",
            "--metadata-filename",
            "metadata.json",
            "--partition-algorithm",
            "random",
            "--log-level",
            log_level,
            "--",
        ]
        procs.append(subprocess.Popen(argv, env=env))
    return measured(procs)


def run_dgl(work: Path, graph: Path, parts: int) -> tuple[float, float, float]:
    script = work / "dgl_partition.py"
    script.write_text(DGL_PARTITION)
    proc = subprocess.Popen(
        [runtime_python(), str(script), str(graph), str(work / f"dgl-{parts}"), str(parts)], stdout=subprocess.DEVNULL
    )
    return measured([proc])[0]


def generate(work: Path, graph: Path, nodes: int, edges: int) -> None:
    """Write the chunked graph, unless ``graph`` already holds one of this size (a kept ``--work``)."""
    stamp = graph / "size.json"
    size = json.dumps({"nodes": nodes, "edges": edges})
    if stamp.is_file() and stamp.read_text() == size:
        return
    shutil.rmtree(graph, ignore_errors=True)
    script = work / "generate.py"
    script.write_text(GENERATE)
    subprocess.run(
        [
            runtime_python(),
            str(script),
            str(graph),
            str(nodes),
            str(edges),
            str(FEAT_DIM),
            str(NODE_CHUNKS),
            str(EDGE_CHUNKS),
        ],
        check=True,
    )
    stamp.write_text(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--work", help="scratch folder, kept with its graph (default: a temporary one, removed after)")
    parser.add_argument("--parts", type=int, action="append", help=f"partition counts to run (default {PARTS})")
    parser.add_argument("--no-dgl", action="store_true", help="skip DGL's partition_graph")
    parser.add_argument("--log-level", default="WARNING", help="the entry point's (INFO: its per-step times)")
    parser.add_argument("--keep-output", action="store_true", help="keep <work>/out-<parts> (to compare runs)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="partition-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        graph = work / "graph"
        generate(work, graph, args.nodes, args.edges)
        print(f"graph: {args.nodes:,} nodes, {args.edges:,} edges, {FEAT_DIM}-float node feature")
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} core(s)")
        print(
            f"{'parts':>5} {'host wall s':>11} {'host CPU s':>10} {'host GB':>8} {'DGL wall s':>10} "
            f"{'DGL CPU s':>9} {'DGL GB':>7} {'wall ratio':>10} {'CPU ratio':>9} {'GB ratio':>8}"
        )
        for parts in args.parts or PARTS:
            shutil.rmtree(work / f"out-{parts}", ignore_errors=True)
            hosts = run_entry(work, graph, parts, args.log_level)
            wall, rss, cpu = (max(h[i] for h in hosts) for i in range(3))
            dgl_wall, dgl_rss, dgl_cpu = (float("nan"),) * 3 if args.no_dgl else run_dgl(work, graph, parts)
            print(
                f"{parts:>5} {wall:>11.1f} {cpu:>10.1f} {rss:>8.2f} {dgl_wall:>10.1f} {dgl_cpu:>9.1f} "
                f"{dgl_rss:>7.2f} {wall / dgl_wall:>10.2f} {cpu / dgl_cpu:>9.2f} {rss / dgl_rss:>8.2f}",
                flush=True,
            )
            for i, (w, r, c) in enumerate(hosts):
                print(f"      host algo-{i + 1}: {w:.1f} s wall, {c:.1f} s CPU, {r:.2f} GB")
            if not args.keep_output:
                shutil.rmtree(work / f"out-{parts}", ignore_errors=True)
            shutil.rmtree(work / f"dgl-{parts}", ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
