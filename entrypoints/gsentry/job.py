"""
The distributed part shared by training and inference: meet, fetch, run, hand back.

Every host runs the same sequence (one host is the N=1 case of it):

1. rendezvous with the other hosts (``cluster``), so a missing host fails the job early;
2. download this host's partition, the shared metadata and the step's other inputs;
3. barrier: every host has its inputs;
4. start this host's DGL servers and trainer group (``launcher``) and watch them and the peers;
5. the step's own post-processing (remap, uploads), then tell the peers ``done``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gsentry.cluster import Cluster
from gsentry.errors import EntryError, InputError
from gsentry.graphdata import LocalGraph, download_graph
from gsentry.launcher import HASH_SEED_ENV, Command, HostPlan, LaunchOptions, build_host_plan
from gsentry.manifest import (
    FileEntry,
    InputPrefix,
    InputRef,
    allow_unmanifested,
    clear_manifest,
    entries_from_json,
    entries_to_json,
    file_entries,
    merge_entries,
    read_input,
    sha256_file,
    write_manifest,
)
from gsentry.model import CHECKPOINT_DIR, choose_checkpoint, describe_incomplete
from gsentry.process import Child, install_stop_handler, supervise
from gsentry.transfer import Location, Transfer, parse_uri

if TYPE_CHECKING:
    from gsentry.contract import ContainerEnv

log = logging.getLogger(__name__)


def set_flag(args: Sequence[str], flag: str, value: str | None) -> list[str]:
    """
    ``args`` with every ``flag [value]`` occurrence removed and ``flag value`` appended.

    Used for the paths the entry point owns (``--save-model-path`` ...): GraphStorm's own
    SageMaker scripts overwrite them the same way (``update_gs_params``).
    """
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = i + 1 < len(args) and not args[i + 1].startswith("--")
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    if value is not None:
        out += [flag, value]
    return out


def has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


@dataclass(frozen=True)
class ModelFiles:
    """
    A saved GraphStorm model found under a URI.

    It names the checkpoint folder (``""`` when the URI is the checkpoint itself), the files to
    download (relative to the prefix) and the checked input.
    """

    source: InputPrefix
    checkpoint: str
    files: list[str]

    @property
    def prefix(self) -> Location:
        return self.source.prefix


@dataclass
class HostJob:
    """One host's run of a distributed GraphStorm step."""

    env: ContainerEnv
    transfer: Transfer
    cluster: Cluster
    work: Path
    step: str = ""
    allow_unmanifested: bool = False
    inputs: list[InputRef] = field(default_factory=list)  # the input manifests read, for ours

    @classmethod
    def create(cls, env: ContainerEnv, step: str, allow_unmanifested_input: bool = False) -> HostJob:
        work = env.work_dir / step
        if work.exists():
            shutil.rmtree(work)  # a rerun in the same local work dir must not see old outputs
        work.mkdir(parents=True)
        return cls(env, Transfer(env.region), Cluster(env), work, step, allow_unmanifested(allow_unmanifested_input))

    def run(self, body: Callable[[HostJob], None]) -> None:
        """Run ``body`` inside the cluster membership; report failure to peers and re-raise."""
        install_stop_handler()
        try:
            body(self)
        except BaseException as err:
            self.cluster.finish(err)
            raise
        self.cluster.finish()

    def abort_reason(self) -> Exception | None:
        return self.cluster.failure()

    # --- inputs ----------------------------------------------------------------------------
    def download_graph(self, graph_uri: str, graph_name: str, raw_mappings_uri: str | None = None) -> LocalGraph:
        graph = download_graph(
            self.transfer,
            graph_uri,
            graph_name,
            self.env.host_rank,
            self.env.num_hosts,
            self.work / "graph",
            raw_mappings_uri,
            self.allow_unmanifested,
        )
        self.inputs.extend(graph.inputs)
        return graph

    def download_file(self, uri: str, param: str, dest_dir: Path) -> Path:
        loc = parse_uri(uri, param)
        name = Path(loc.key.rstrip("/")).name
        if not name or not self.transfer.exists(loc):
            raise EntryError(f"{param} {uri} is not a file that exists.")
        return self.transfer.download_file(loc, dest_dir)

    def find_model(self, uri: str, param: str) -> ModelFiles:
        """
        Find the model under ``uri``, checked against the prefix's manifest.

        It is a checkpoint folder, or the newest complete ``epoch-*`` under an artifact prefix (see
        :mod:`.model`). Only lists and reads the manifest; fails naming ``param`` when there is no
        complete model.
        """
        name = parse_uri(uri, param).key.rstrip("/").rsplit("/", 1)[-1]
        nested = name if CHECKPOINT_DIR.match(name) else None
        source = read_input(self.transfer, uri, param, allow_unmanifested=self.allow_unmanifested, nested=nested)
        choice = choose_checkpoint(source.sizes)
        if choice is None:
            raise InputError(f"{param} {uri} holds no complete GraphStorm model: {describe_incomplete(source.sizes)}.")
        for skipped, reason in choice.skipped.items():
            log.warning("%s %s: skipping the newer checkpoint %s (%s)", param, uri, skipped, reason)
        if source.ref:
            self.inputs.append(source.ref)
        return ModelFiles(source, choice.checkpoint, choice.files)

    def download_model(self, model: ModelFiles, dest: Path) -> Path:
        """Download ``model`` into ``dest``; return the folder for ``--restore-model-path``."""
        self.transfer.fetch(model.prefix, dest, model.files, model.source.check)
        return dest / model.checkpoint if model.checkpoint else dest

    # --- outputs ---------------------------------------------------------------------------
    def clear_output(self, uri: str, param: str) -> None:
        """Before the first upload to ``uri``: the leader removes an earlier run's manifest."""
        if self.env.is_leader:
            clear_manifest(self.transfer, uri, param)

    def upload_output(self, src: Path, uri: str, param: str, extra: Mapping[str, Path] | None = None) -> None:
        """
        Upload this host's share of ``src`` to ``uri``; call on every host.

        Once all hosts have uploaded, the leader writes the manifest (every host's files, this job's
        input manifests) last.

        ``extra``: ``{relative path under uri: local file}`` this host also uploads (e.g. the
        leader's ``metrics.json``), listed in the manifest like the rest.
        """
        entries = file_entries(src)
        prefix = parse_uri(uri, param)
        self.transfer.upload_tree(src, prefix)
        for rel, local in sorted((extra or {}).items()):
            self.transfer.upload_file(local, prefix.child(rel))
            entries.append(FileEntry(rel, local.stat().st_size, sha256_file(local)))
        per_host = self.cluster.gather(f"uploaded {param}", entries_to_json(entries))
        if per_host is not None:  # the leader
            files = merge_entries([entries_from_json(items) for items in per_host])
            write_manifest(
                self.transfer, uri, job_name=self.env.job_name, step=self.step, files=files, inputs=self.inputs
            )

    # --- GraphStorm ------------------------------------------------------------------------
    def run_graphstorm(
        self, *, script: Path, script_args: list[str], graph: LocalGraph, options: LaunchOptions
    ) -> tuple[Path, HostPlan]:
        """Start this host's servers and trainers; return when they all exited 0."""
        layout = self.cluster.launch_layout(options.num_servers)
        ip_config = self.work / "ip_config.txt"
        ip_config.write_text(layout.ip_config_text(), encoding="utf-8")
        plan = build_host_plan(
            layout=layout,
            host_rank=self.env.host_rank,
            script=script,
            script_args=script_args,
            part_config=graph.part_config,
            ip_config=ip_config,
            options=options,
            python=sys.executable,
        )
        # Same on every host, or DistDGL's collectives go out of step (launcher.HASH_SEED_ENV).
        log.info("GraphStorm processes run with %s=%s", HASH_SEED_ENV, plan.trainer.env[HASH_SEED_ENV])
        children = [self._child(cmd) for cmd in [*plan.servers, plan.trainer]]
        # Servers first: DGL clients retry until their servers listen, not the other way round.
        for child in children:
            child.start()
        supervise(children, self.abort_reason, self.cluster.report_failure)
        return ip_config, plan

    def run_command(self, command: Command) -> None:
        child = self._child(command).start()
        supervise([child], self.abort_reason, self.cluster.report_failure)

    def _child(self, command: Command) -> Child:
        return Child(command.name, command.argv, {**os.environ, **command.env}, cwd=self.work)
