"""The partition entry point on real chunked graphs, with 1 and 2 host processes on this machine.

Each "host" is a process running the real ``partition_entry.py`` in the GraphStorm runtime's
python, meeting the others through the real rendezvous on 127.0.0.1 (as in
test_entrypoints_cluster.py). The output is checked in the runtime python
(``partition_checks.py``: DGL's ``load_partition`` with its debug checks, exact cover, features
row for row), since this venv has no DGL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from graphstorm_provider.config import runtime_python

TESTS = Path(__file__).resolve().parent
ENTRY = TESTS.parent / "entrypoints" / "partition_entry.py"
GRAPH_NAME = "chunky"
TIMEOUT = 300

_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chunked") / "graph"
    subprocess.run(
        [runtime_python(), str(TESTS / "chunked_graphs.py"), str(root), "--name", GRAPH_NAME],
        check=True,
        timeout=TIMEOUT,
    )
    return root


def entry_argv(graph: Path, out: Path, num_parts: int, *extra: str, metadata: str = "metadata.json") -> list[str]:
    return [
        runtime_python(),
        str(ENTRY),
        "--graph-data-s3",
        f"file://{graph}",
        "--num-parts",
        str(num_parts),
        "--output-data-s3",
        f"file://{out}",
        "--metadata-filename",
        metadata,
        "--partition-algorithm",
        "random",
        *extra,
        "--log-level",
        "INFO",
        "--",
    ]


def start_hosts(work: Path, argv: list[str], num_hosts: int, per_host_env=None) -> list[subprocess.Popen]:
    port = _free_port()
    hosts = [f"algo-{i + 1}" for i in range(num_hosts)]
    procs = []
    for host in hosts:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "GSENTRY_"))}
        env.update(
            {
                "GRAPHSTORM_OPT_ML": str(work / host / "opt" / "ml"),
                "SM_TRAINING_ENV": json.dumps({"hosts": hosts, "current_host": host}),
                "GSENTRY_RDZV_PORT": str(port),
                "GSENTRY_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1"}),
                "GSENTRY_RDZV_TIMEOUT": "60",
                "GSENTRY_PEER_TIMEOUT": "20",
                "GSENTRY_HEARTBEAT": "0.5",
            }
        )
        env.update((per_host_env or {}).get(host, {}))
        proc = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _STARTED.append(proc)
        procs.append(proc)
    return procs


def run_hosts(work: Path, argv: list[str], num_hosts: int) -> list[tuple[int, str]]:
    procs = start_hosts(work, argv, num_hosts)
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=TIMEOUT)
        results.append((proc.returncode, err))
    return results


def partition(work: Path, graph: Path, out: Path, num_parts: int, num_hosts: int = 1, *extra: str) -> None:
    for rc, err in run_hosts(work, entry_argv(graph, out, num_parts, *extra), num_hosts):
        assert rc == 0, err[-4000:]


def check(graph: Path, out: Path, metadata: str = "metadata.json") -> dict:
    proc = subprocess.run(
        [runtime_python(), str(TESTS / "partition_checks.py"), str(graph), metadata, str(out / f"{GRAPH_NAME}.json")],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assignment_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "partition_assignment").iterdir())}


@pytest.mark.parametrize(("num_parts", "num_hosts"), [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)])
def test_every_node_and_edge_is_owned_once_with_its_features(tmp_path, graph, num_parts, num_hosts):
    out = tmp_path / "out"
    partition(tmp_path, graph, out, num_parts, num_hosts)
    summary = check(graph, out)
    assert summary["num_parts"] == num_parts
    assert summary["nodes"] == {"author": 40, "paper": 60, "venue": 7}
    assert sum(summary["edges"].values()) == 150 * 2 + 200 + 60 * 2
    for part in range(num_parts):
        for name in ("graph.dgl", "node_feat.dgl", "edge_feat.dgl", "orig_nids.dgl", "orig_eids.dgl"):
            assert (out / f"part{part}" / name).is_file()
    raw = "raw_id_mappings/paper/parquet/part-00000.parquet"
    assert (out / raw).read_bytes() == (graph / raw).read_bytes()
    meta = json.loads((out / "partition_assignment" / "partition_meta.json").read_text())
    assert meta == {"algo_name": "random", "num_parts": num_parts, "version": "1.0.0"}


def test_same_input_gives_byte_identical_assignment_and_partitions(tmp_path, graph):
    one, two = tmp_path / "one", tmp_path / "two"
    partition(tmp_path / "a", graph, one, 2, 2)
    partition(tmp_path / "b", graph, two, 2, 1)
    assert assignment_bytes(one) == assignment_bytes(two)
    assert check(graph, one)["digests"] == check(graph, two)["digests"]
    # Both outputs are complete: a manifest listing every other file of the output, written last.
    for out in (one, two):
        listed = {f["path"] for f in json.loads((out / "_manifest.json").read_text())["files"]}
        on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "_manifest.json"}
        assert listed == on_disk


def test_chunk_paths_are_relative_to_a_metadata_file_in_a_subfolder(tmp_path, graph):
    # DGL's format: a chunk path is relative to the metadata file's folder, and --metadata-filename
    # may name a file in a subfolder of --graph-data-s3.
    nested = tmp_path / "input"
    shutil.copytree(graph, nested / "sub")
    out = tmp_path / "out"
    for rc, err in run_hosts(tmp_path / "run", entry_argv(nested, out, 2, metadata="sub/metadata.json"), 1):
        assert rc == 0, err[-4000:]
    flat = tmp_path / "flat"  # the same graph with its metadata at the top
    partition(tmp_path / "flat-run", graph, flat, 2)
    assert assignment_bytes(out) == assignment_bytes(flat)
    assert check(graph, out)["digests"] == check(graph, flat)["digests"]


def test_skip_partitioning_reuses_the_assignment_it_finds(tmp_path, graph):
    out = tmp_path / "out"
    partition(tmp_path / "a", graph, out, 2)
    before = check(graph, out)["digests"]
    partition(tmp_path / "b", graph, out, 2, 1, "--skip-partitioning")
    assert check(graph, out)["digests"] == before
    # An assignment that the seed would never produce: every paper with an even ID in part 1.
    papers = out / "partition_assignment" / "paper.txt"
    papers.write_text("".join(f"{1 - i % 2}\n" for i in range(60)))
    partition(tmp_path / "c", graph, out, 2, 2, "--skip-partitioning")
    check(graph, out)
    nids = subprocess.run(
        [
            runtime_python(),
            "-c",
            "import sys; from dgl.data.utils import load_tensors; print(load_tensors(sys.argv[1])['paper'].tolist())",
            str(out / "part1" / "orig_nids.dgl"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout
    assert json.loads(nids) == list(range(0, 60, 2))


def _mutate(graph: Path, name: str, change) -> str:
    meta = json.loads((graph / "metadata.json").read_text())
    change(meta)
    (graph / name).write_text(json.dumps(meta))
    return name


def _set(path: list, value):
    def change(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


BAD_METADATA = {
    "missing chunk file": (
        _set(["edges", "author:writes:paper", "data", 1], "edge_index/gone.csv"),
        "field edges.author:writes:paper.data[1] names edge_index/gone.csv, which does not exist",
    ),
    "counts do not match the rows": (
        _set(["num_edges_per_chunk", 1, 0], 68),
        "field num_edges_per_chunk[1] (paper:cites:paper) says 68 row(s) for chunk 0",
    ),
    "feature counts do not match the rows": (
        _set(["num_nodes_per_chunk", 2], [6]),
        "field num_nodes_per_chunk (venue) says 6 row(s) for chunk 0",
    ),
    "unknown edge format": (
        _set(["edges", "paper:cites:paper", "format", "name"], "tsv"),
        "field edges.paper:cites:paper.format.name is 'tsv', not one of csv, parquet",
    ),
    "unknown feature format": (
        _set(["node_data", "paper", "feat", "format", "name"], "hdf5"),
        "field node_data.paper.feat.format.name is 'hdf5', not one of numpy, parquet",
    ),
    "edge type not src:rel:dst": (
        _set(["edge_type", 0], "author-writes-paper"),
        "field edge_type[0] must be 'src:rel:dst', got 'author-writes-paper'",
    ),
    "edge type names an unknown node type": (
        _set(["edge_type", 0], "author:writes:book"),
        "field edge_type[0] (author:writes:book) names node type 'book', which node_type does not list",
    ),
    "features for an unlisted node type": (
        lambda meta: meta["node_data"].update(book=meta["node_data"]["venue"]),
        "field node_data.book has feature chunks for 'book', which node_type does not list",
    ),
    # Both name files the job writes (<graph_name>.json in the output, <node type>.txt in the assignment).
    "graph name that leads out of the output folder": (
        _set(["graph_name"], "../../victim"),
        "field graph_name is '../../victim', not a GraphStorm graph name (ASCII letters, digits, '_' and '-')",
    ),
    "node type that leads out of the work folder": (
        _set(["node_type", 2], "../../../../outside"),
        (
            "field node_type[2] is '../../../../outside', which cannot name a file (no '/', '\\', "
            "control characters, '.' or '..')"
        ),
    ),
}


@pytest.mark.parametrize(("change", "message"), BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_bad_metadata_fails_naming_file_and_field_before_writing_anything(tmp_path, graph, change, message):
    name = _mutate(graph, f"bad-{abs(hash(message))}.json", change)
    out = tmp_path / "out"
    results = run_hosts(tmp_path, entry_argv(graph, out, 2, metadata=name), 2)
    for rc, err in results:
        assert rc == 1
        assert "Traceback" not in err
    leader_error = results[0][1].strip().splitlines()[-1]
    assert leader_error.startswith(f"ERROR: {name}: {message}"), results[0][1][-2000:]
    assert not out.exists()
    failure = (tmp_path / "algo-1" / "opt" / "ml" / "output" / "failure").read_text()
    assert failure.startswith(f"{name}: {message}")


def test_skip_partitioning_without_an_assignment_fails_naming_it(tmp_path, graph):
    out = tmp_path / "out"
    ((rc, err),) = run_hosts(tmp_path, entry_argv(graph, out, 2, "--skip-partitioning"), 1)
    assert rc == 1
    assert err.strip().splitlines()[-1] == (
        f"ERROR: --skip-partitioning: file://{out}/partition_assignment/partition_meta.json does not exist "
        "(no complete partition assignment to reuse)."
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / "venue.txt").unlink(), "venue.txt does not exist (partial assignment)"),
        (
            lambda folder: (folder / "paper.txt").write_text("0\n1\n"),
            "paper.txt has 2 line(s) but node type paper has 60 node(s) (partial assignment)",
        ),
        (
            lambda folder: (folder / "partition_meta.json").write_text('{"num_parts": 4}'),
            "partition_meta.json field num_parts is 4, not --num-parts 2",
        ),
    ],
)
def test_skip_partitioning_with_a_partial_assignment_fails_naming_the_file(tmp_path, graph, damage, message):
    out = tmp_path / "out"
    partition(tmp_path / "a", graph, out, 2)
    damage(out / "partition_assignment")
    config = out / f"{GRAPH_NAME}.json"
    stamp = config.stat().st_mtime_ns
    ((rc, err),) = run_hosts(tmp_path / "b", entry_argv(graph, out, 2, "--skip-partitioning"), 1)
    assert rc == 1
    assert err.strip().splitlines()[-1].endswith(message + "."), err[-2000:]
    assert config.stat().st_mtime_ns == stamp  # failed before touching the output


def test_a_host_killed_mid_build_fails_the_job_naming_it_and_writes_no_config(tmp_path, graph):
    out = tmp_path / "out"
    hold = {"GSENTRY_PARTITION_HOLD_SECONDS": "120"}  # the worker pauses after building, before uploading
    leader, worker = start_hosts(tmp_path, entry_argv(graph, out, 4), 2, {"algo-2": hold})
    for line in worker.stdout:  # the entry points log to stdout
        if "holding" in line:
            break
    else:
        raise AssertionError("the worker never reached its build")
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    _, err = leader.communicate(timeout=TIMEOUT)
    assert leader.returncode == 1
    # "connection closed before the host finished" or "connection lost (... reset by peer)": the kernel's choice.
    assert err.strip().splitlines()[-1].startswith("ERROR: host algo-2: connection "), err[-2000:]
    assert not (out / f"{GRAPH_NAME}.json").exists()
    assert not (out / "part2").exists()
    assert not (out / "part3").exists()


def test_flags_after_the_separator_are_refused(tmp_path, graph):
    argv = entry_argv(graph, tmp_path / "out", 2) + ["--num-trainers", "2"]
    proc = subprocess.run(
        argv,
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "GRAPHSTORM_OPT_ML": str(tmp_path / "optml")},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "ERROR: partition_entry.py takes no flags after '--', got --num-trainers 2."
    )


def test_num_parts_not_a_multiple_of_the_hosts_fails_naming_it(tmp_path, graph):
    results = run_hosts(tmp_path, entry_argv(graph, tmp_path / "out", 3), 2)
    for rc, err in results:
        assert rc == 1
        assert err.strip().splitlines()[-1] == (
            "ERROR: --num-parts (3) must be a multiple of the number of hosts (2): "
            "each host builds the same number of partitions."
        )
