"""
What each host downloads of a partitioned graph, and where it puts it.

A GConstruct / DistPartition output folder looks like::

    <graph>.json or metadata.json    partition config (num_parts, part-K paths)
    part0/ part1/ ...                one folder per partition
    node_mapping.pt edge_mapping.pt  GraphStorm's shuffled-ID mappings
    raw_id_mappings/<ntype>/*.parquet  raw (string) node IDs, for remapping results
    data_transform_new.json ...      other shared metadata

Host K of N downloads ``part<K>/`` plus every top-level file and ``raw_id_mappings/``; the
leader also takes the other partitions' ``orig_nids.dgl``/``orig_eids.dgl`` (DGL's
distributed-partition ID maps), as GraphStorm's own SageMaker scripts do.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from gsentry.errors import EntryError, InputError
from gsentry.manifest import InputPrefix, InputRef, read_input

if TYPE_CHECKING:
    from gsentry.transfer import Transfer

log = logging.getLogger(__name__)

RAW_ID_MAPPINGS = "raw_id_mappings"
_PART_DIR = re.compile(r"^part(\d+)$")
_ORIG_ID_FILES = ("orig_nids.dgl", "orig_eids.dgl")


@dataclass(frozen=True)
class LocalGraph:
    """The downloaded graph on this host, and the input manifests it was checked against."""

    root: Path
    part_config: Path
    num_parts: int
    inputs: tuple[InputRef, ...] = ()


def wanted_for_host(rel: str, rank: int, is_leader: bool) -> bool:
    """Whether host ``rank`` needs the file at relative path ``rel`` of the graph folder."""
    parts = PurePosixPath(rel).parts
    if len(parts) == 1:
        return True  # shared metadata: partition config, ID mappings, transform config
    top = parts[0]
    if top == RAW_ID_MAPPINGS:
        return True
    match = _PART_DIR.match(top)
    if match:
        if int(match.group(1)) == rank:
            return True
        return is_leader and len(parts) == 2 and parts[1] in _ORIG_ID_FILES
    return False


def choose_part_config(top_level_files: list[str], graph_name: str) -> str | None:
    """GraphStorm's rule: ``<graph_name>.json``, else ``metadata.json``."""
    for name in (f"{graph_name}.json", "metadata.json"):
        if name in top_level_files:
            return name
    return None


def raw_mapping_target(rel: str) -> str | None:
    """
    Where a file under a raw-ID-mappings prefix goes: ``<ntype>/<file>``.

    GConstruct writes ``<ntype>/part-*.parquet``, GSProcessing ``<ntype>/parquet/part-*.parquet``.
    """
    parts = PurePosixPath(rel).parts
    if len(parts) < 2 or not parts[-1].endswith(".parquet"):
        return None
    return f"{parts[0]}/{parts[-1]}"


def download_graph(
    transfer: Transfer,
    graph_uri: str,
    graph_name: str,
    rank: int,
    num_hosts: int,
    dest: Path,
    raw_mappings_uri: str | None = None,
    allow_unmanifested: bool = False,
) -> LocalGraph:
    """
    Download this host's share of the graph under ``dest`` and check it fits the cluster.

    The graph prefix must carry a complete manifest (see :mod:`.manifest`) unless
    ``allow_unmanifested``; only the files it lists are read, each checked against its SHA-256.
    """
    graph = read_input(transfer, graph_uri, "--graph-data-s3", allow_unmanifested=allow_unmanifested)
    files = sorted(graph.sizes)
    top_level = [rel for rel in files if "/" not in rel]
    config_name = choose_part_config(top_level, graph_name)
    if config_name is None:
        raise InputError(
            f"--graph-data-s3 {graph_uri} has no partition config named {graph_name}.json or "
            f"metadata.json (is --graph-name right, and is this a partitioned graph?)."
        )
    transfer.fetch(graph.prefix, dest, [config_name], graph.check)
    num_parts = read_num_parts(dest / config_name)
    if num_parts != num_hosts:
        raise InputError(
            f"the graph at --graph-data-s3 has {num_parts} partition(s) but the job has "
            f"{num_hosts} host(s); GraphStorm needs one partition per host (set the instance count to {num_parts})."
        )
    if not any(rel.startswith(f"part{rank}/") for rel in files):
        raise InputError(f"--graph-data-s3 {graph_uri} has no part{rank}/ folder for this host.")

    is_leader = rank == 0
    wanted = [rel for rel in files if rel != config_name and wanted_for_host(rel, rank, is_leader)]
    if raw_mappings_uri:
        wanted = [rel for rel in wanted if not rel.startswith(f"{RAW_ID_MAPPINGS}/")]
    transfer.fetch(graph.prefix, dest, wanted, graph.check)

    inputs = [graph.ref] if graph.ref else []
    if raw_mappings_uri:
        mappings = download_raw_mappings(transfer, raw_mappings_uri, dest / RAW_ID_MAPPINGS)
        if mappings.ref and mappings.ref.sha256:
            inputs.append(mappings.ref)
    return LocalGraph(root=dest, part_config=dest / config_name, num_parts=num_parts, inputs=tuple(inputs))


def download_raw_mappings(transfer: Transfer, uri: str, dest: Path) -> InputPrefix:
    """
    Download ``<ntype>/*.parquet`` raw-ID mappings.

    They are checked against a manifest when there is one (its own, or the graph's when ``uri`` is a
    graph's ``raw_id_mappings/``).
    """
    mappings = read_input(transfer, uri, "--raw-node-mappings-s3", nested=RAW_ID_MAPPINGS, required=False)
    targets = {rel: target for rel in sorted(mappings.sizes) if (target := raw_mapping_target(rel))}
    if not targets:
        raise InputError(f"--raw-node-mappings-s3 {uri} holds no <node type>/*.parquet files.")
    transfer.fetch(mappings.prefix, dest, targets, mappings.check)
    return mappings


def read_num_parts(part_config: Path) -> int:
    try:
        meta = json.loads(part_config.read_text(encoding="utf-8"))
        return int(meta["num_parts"])
    except (ValueError, KeyError, TypeError) as err:
        raise EntryError(f"partition config {part_config.name} has no valid num_parts: {err}") from err
