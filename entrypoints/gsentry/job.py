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
from gsentry.model import CHECKPOINT_DIR, ModelDirPlan, choose_checkpoint, describe_incomplete, plan_model_dir
from gsentry.process import Child, install_stop_handler, supervise
from gsentry.transfer import Location, Transfer, local_target, parse_uri

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


@dataclass(frozen=True)
class UploadedOutput:
    """
    What :meth:`HostJob.upload_output` uploaded.

    ``own``: this host's files; ``every_host``: on the leader, every host's, as the manifest lists
    them (None on the other hosts).
    """

    own: tuple[FileEntry, ...]
    every_host: tuple[FileEntry, ...] | None


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

    def upload_output(self, src: Path, uri: str, param: str, extra: Mapping[str, Path] | None = None) -> UploadedOutput:
        """
        Upload this host's share of ``src`` to ``uri``; call on every host.

        Once all hosts have uploaded, the leader writes the manifest (every host's files, this job's
        input manifests) last. Returns what was uploaded (every host's files on the leader).

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
        if per_host is None:
            return UploadedOutput(tuple(entries), None)
        # The leader, once every host's upload is in.
        files = merge_entries([entries_from_json(items) for items in per_host])
        write_manifest(self.transfer, uri, job_name=self.env.job_name, step=self.step, files=files, inputs=self.inputs)
        return UploadedOutput(tuple(entries), tuple(files))

    def upload_model(
        self, save_model_path: Path, uri: str, param: str, extra: Mapping[str, Path] | None = None
    ) -> str | None:
        """
        Upload this host's checkpoints (:meth:`upload_output`); the leader then fills SageMaker's model dir.

        Every host uploads what its trainers saved (rank 0 the dense model, each rank its slice of
        every learnable embedding), then the leader writes the manifest. Hosts share no filesystem,
        so only the model prefix holds every host's share: the leader fills ``/opt/ml/model`` (what
        SageMaker packs as ``model.tar.gz``, from the leader only) with the newest complete
        checkpoint among the files the manifest lists (:func:`~gsentry.model.plan_model_dir`), its
        own from its disk, the other hosts' from the prefix. ``extra`` (e.g. ``metrics.json``) is
        uploaded but no part of the model dir. Returns the checkpoint chosen (the leader), else None.
        """
        uploaded = self.upload_output(save_model_path, uri, param, extra=extra)
        if uploaded.every_host is None:
            return None
        plan = plan_model_dir(uploaded.every_host, uploaded.own, exclude=set(extra or {}))
        if plan is None:
            log.warning("%s %s holds no complete checkpoint: %s stays empty", param, uri, self.env.model_dir)
            return None
        self._fill_model_dir(plan, save_model_path, parse_uri(uri, param), param)
        return plan.checkpoint

    def _fill_model_dir(self, plan: ModelDirPlan, save_model_path: Path, prefix: Location, param: str) -> None:
        """Copy the plan's own files from ``save_model_path``, download the others' (checked) into the model dir."""
        model_dir = self.env.model_dir
        model_dir.mkdir(parents=True, exist_ok=True)
        for target, path in sorted(plan.own.items()):
            dest = local_target(model_dir, target, prefix)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(save_model_path / path, dest)
        digests = {entry.path: entry.sha256 for entry in plan.others.values()}

        def check(path: str, local: Path) -> None:
            if sha256_file(local) != digests[path]:
                raise EntryError(
                    f"{param} {prefix.child(path).uri()} does not match the SHA-256 its host uploaded "
                    "(something wrote to the model folder during the job)."
                )

        if plan.others:
            self.transfer.fetch(prefix, model_dir, {entry.path: target for target, entry in plan.others.items()}, check)
        log.info(
            "model %s in %s: %d file(s) of this host, %d of the other hosts from %s",
            plan.checkpoint,
            model_dir,
            len(plan.own),
            len(plan.others),
            prefix.uri(),
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
