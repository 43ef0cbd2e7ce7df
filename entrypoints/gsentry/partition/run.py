"""
One host's run of distributed partitioning (every host runs this; algo-1 leads).

1. read and check the metadata and every chunk file it names (nothing written before);
2. the assignment (in memory): computed from a fixed seed (identical on every host; the leader writes it
   under ``<output>/partition_assignment/``), or with ``--skip-partitioning`` read back from there;
3. stream the edge chunks once (counting every partition's edges, keeping ours);
   then the leader removes an old partition config and writes the assignment; barrier ``assigned``;
4. each host builds and uploads its partitions ``rank*k .. rank*k+k-1`` (k = parts per host);
5. ``built``: a barrier that hands the leader every host's uploaded files (a host that died fails
   here, named); the leader copies ``raw_id_mappings/``, writes ``<graph_name>.json`` and then, last
   of all, the output's ``_manifest.json`` (the manifest contract, docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gsentry.errors import InputError
from gsentry.manifest import FileEntry, entries_from_json, entries_to_json, file_entries, merge_entries, write_manifest
from gsentry.partition.assignment import ASSIGNMENT_DIR, META_FILE, random_assignment, read_assignment, write_assignment
from gsentry.partition.builder import BackgroundImport, build_partition, stream_edges
from gsentry.partition.layout import node_layout
from gsentry.partition.metadata import ChunkedGraph, beside, check_files, parse_metadata
from gsentry.partition.writer import part_dir_name, partition_config, save_partition, write_config
from gsentry.transfer import Location, Transfer, parse_uri

if TYPE_CHECKING:
    import numpy as np

    from gsentry.job import HostJob

log = logging.getLogger(__name__)

RAW_ID_MAPPINGS = "raw_id_mappings"
HOLD_ENV = "GSENTRY_PARTITION_HOLD_SECONDS"


@dataclass(frozen=True)
class PartitionRequest:
    """What one partitioning job was asked for: input and output URIs, metadata file, parts."""

    graph_data: str
    output_data: str
    metadata_filename: str
    num_parts: int
    skip_partitioning: bool


def parts_of_host(num_parts: int, num_hosts: int, rank: int) -> list[int]:
    if num_parts % num_hosts:
        raise InputError(f"--num-parts ({num_parts}) must be a multiple of the number of hosts ({num_hosts}).")
    per_host = num_parts // num_hosts
    return list(range(rank * per_host, (rank + 1) * per_host))


class InputFiles:
    """The chunk files, read in place (``file://``) or downloaded once into ``cache`` (``s3://``)."""

    def __init__(self, transfer: Transfer, prefix: Location, cache: Path):
        self.transfer, self.prefix, self.cache = transfer, prefix, cache

    def local(self) -> bool:
        return self.prefix.scheme == "file"

    def path(self, rel: str) -> Path:
        return (self.prefix.path / rel) if self.local() else self.cache / rel

    def metadata(self, name: str) -> str:
        loc = self.prefix.child(name)
        if not self.transfer.exists(loc):
            raise InputError(f"--metadata-filename {name} does not exist under --graph-data-s3 {self.prefix.uri()}.")
        return (
            self.transfer.download_file(loc, self.cache / name).read_text(encoding="utf-8")
            if not self.local()
            else loc.path.read_text(encoding="utf-8")
        )

    def fetch(self, files: list[str]) -> None:
        if self.local():
            return
        listed = set(self.transfer.list_files(self.prefix))
        present = [rel for rel in files if rel in listed]
        self.transfer.download_tree(self.prefix, self.cache, include=set(present).__contains__)


def delete(transfer: Transfer, loc: Location) -> None:
    if loc.scheme == "file" or transfer.exists(loc):
        transfer.delete(loc)


@contextmanager
def timed(step: str) -> Iterator[None]:
    """
    Log the wall and CPU seconds of one step of this host's run.

    Where a host's time goes, for ``bench/partition_scaling.py --log-level INFO``: the hosts of
    that benchmark share two cores, so CPU seconds matter as much as wall time.
    """
    wall, cpu = time.monotonic(), time.process_time()
    yield
    log.info("%s: %.2f s wall, %.2f s CPU", step, time.monotonic() - wall, time.process_time() - cpu)


def run_partition(job: HostJob, req: PartitionRequest) -> None:
    env, transfer, cluster = job.env, job.transfer, job.cluster
    my_parts = parts_of_host(req.num_parts, env.num_hosts, env.host_rank)
    inputs = InputFiles(transfer, parse_uri(req.graph_data, "--graph-data-s3"), job.work / "input")
    output = parse_uri(req.output_data, "--output-data-s3")

    log.info("started: %.2f s CPU so far (interpreter, imports, rendezvous)", time.process_time())
    with timed("metadata and chunk checks"):
        graph = parse_metadata(req.metadata_filename, inputs.metadata(req.metadata_filename))
        inputs.fetch(graph.files())
        check_files(graph, inputs.path)
    dgl_import = BackgroundImport()  # the inputs are fine: overlap the import with the edge streaming
    with timed("assignment"):
        assignment = _assignment(job, graph, req, output)
    log.info(
        "graph %s: %d node type(s), %d edge type(s); building part(s) %s of %d",
        graph.graph_name,
        len(graph.ntypes),
        len(graph.etypes),
        my_parts,
        req.num_parts,
    )

    def check() -> None:
        error = job.abort_reason()
        if error is not None:
            raise error

    # Streaming the edges also checks their node IDs: still nothing written.
    with timed("node layout"):
        nodes = node_layout(graph, assignment, req.num_parts)
    with timed("edge streaming"):
        edges, kept = stream_edges(graph, assignment, req.num_parts, my_parts, inputs.path, check)

    config_loc = output.child(f"{graph.graph_name}.json")
    if env.is_leader:
        with timed("leader: old config removed, assignment written"):
            delete(transfer, config_loc)  # an old config must not make this run's output look complete
            job.clear_output(req.output_data, "--output-data-s3")  # nor an old manifest
            if not req.skip_partitioning:
                _upload_assignment(job, assignment, req.num_parts, output)
    with timed("barrier assigned"):
        cluster.barrier("assigned")

    uploaded: list[FileEntry] = []  # this host's share of the manifest
    with timed("waiting for the dgl import"):
        dgl_import.wait()
    for part in my_parts:
        with timed(f"part {part}: build"):
            built = build_partition(graph, part, nodes, edges, kept.pop(part), inputs.path, check)
        staged = job.work / "output" / part_dir_name(part)
        with timed(f"part {part}: save"):
            save_partition(built, staged)
            del built
        _hold(check)
        with timed(f"part {part}: sha256"):
            uploaded += _entries_under(part_dir_name(part), staged)
        with timed(f"part {part}: upload"):  # a rename into a file:// output where rename(2) reaches it
            transfer.move_tree(staged, output.child(part_dir_name(part)))
        shutil.rmtree(staged)
    # A barrier that also hands the leader every host's uploaded files (a host that died fails it, named).
    with timed("barrier built"):
        per_host = cluster.gather("built", entries_to_json(uploaded))

    if per_host is not None:  # the leader
        files = merge_entries([entries_from_json(items) for items in per_host])
        files += _entries_under(ASSIGNMENT_DIR, job.work / ASSIGNMENT_DIR)
        raw = _copy_raw_id_mappings(job, inputs, output, req.metadata_filename)
        if raw is not None:
            files += _entries_under(RAW_ID_MAPPINGS, raw)
        staged = job.work / "output" / config_loc.key.rsplit("/", 1)[-1]
        write_config(staged, partition_config(graph, nodes, edges))
        transfer.upload_file(staged, config_loc)
        log.info("partition config written: %s", config_loc.uri())
        files += _entries_under("", staged.parent, only=staged.name)
        # Last of all: the manifest that makes the output complete for the steps that read it.
        write_manifest(transfer, req.output_data, job_name=env.job_name, step="partition", files=files)


def _entries_under(prefix: str, root: Path, only: str | None = None) -> list[FileEntry]:
    """Manifest entries of the local folder ``root`` as uploaded under ``<output>/<prefix>/``."""
    entries = [e for e in file_entries(root) if only is None or e.path == only]
    return [FileEntry(f"{prefix}/{e.path}" if prefix else e.path, e.size, e.sha256) for e in entries]


def _hold(check: Callable[[], None]) -> None:
    """
    Test hook.

    ``GSENTRY_PARTITION_HOLD_SECONDS`` pauses a host between building and uploading a partition (still answering its
    peers), so that a test can kill it mid-build.
    """
    seconds = float(os.environ.get(HOLD_ENV) or 0)
    if seconds <= 0:
        return
    log.info("holding %.0f s before uploading (%s)", seconds, HOLD_ENV)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        time.sleep(0.2)


def _assignment(job: HostJob, graph: ChunkedGraph, req: PartitionRequest, output: Location) -> dict[str, np.ndarray]:
    folder = output.child(ASSIGNMENT_DIR)
    if not req.skip_partitioning:
        return random_assignment(graph, req.num_parts)
    local = job.work / ASSIGNMENT_DIR
    names = [f"{t}.txt" for t in graph.ntypes] + [META_FILE]
    job.transfer.download_tree(folder, local, include=set(names).__contains__)
    return read_assignment(local, graph, req.num_parts, folder.uri())


def _upload_assignment(job: HostJob, assignment: dict[str, np.ndarray], num_parts: int, output: Location) -> None:
    local = job.work / ASSIGNMENT_DIR
    write_assignment(local, assignment, num_parts)
    folder = output.child(ASSIGNMENT_DIR)
    delete(job.transfer, folder.child(META_FILE))  # incomplete until the new meta file lands
    for path in sorted(local.iterdir()):
        if path.name != META_FILE:
            job.transfer.upload_file(path, folder.child(path.name))
    job.transfer.upload_file(local / META_FILE, folder.child(META_FILE))


def _copy_raw_id_mappings(job: HostJob, inputs: InputFiles, output: Location, metadata: str) -> Path | None:
    """Copy the ``raw_id_mappings/`` beside the metadata file to the output unchanged; return the local copy (None: none)."""
    prefix = inputs.prefix.child(beside(metadata, RAW_ID_MAPPINGS))
    files = job.transfer.list_files(prefix)
    if not files:
        return None
    local = job.work / RAW_ID_MAPPINGS
    job.transfer.download_tree(prefix, local)
    job.transfer.upload_tree(local, output.child(RAW_ID_MAPPINGS))
    return local
