"""The distributed part shared by training and inference: meet, fetch, run, hand back.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .cluster import Cluster
from .contract import ContainerEnv
from .errors import EntryError, InputError
from .graphdata import LocalGraph, download_graph
from .launcher import Command, HostPlan, LaunchOptions, build_host_plan
from .model import files_to_restore
from .process import Child, install_stop_handler, supervise
from .transfer import Location, Transfer, parse_uri

log = logging.getLogger(__name__)


def set_flag(args: Sequence[str], flag: str, value: str | None) -> list[str]:
    """``args`` with every ``flag [value]`` occurrence removed and ``flag value`` appended.

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
    """A saved GraphStorm model found under a URI: the checkpoint folder (``""`` when the URI is
    the checkpoint itself) and the files to download (relative to ``prefix``)."""

    prefix: Location
    checkpoint: str
    files: list[str]


@dataclass
class HostJob:
    """One host's run of a distributed GraphStorm step."""

    env: ContainerEnv
    transfer: Transfer
    cluster: Cluster
    work: Path

    @classmethod
    def create(cls, env: ContainerEnv, step: str) -> "HostJob":
        work = env.work_dir / step
        if work.exists():
            shutil.rmtree(work)  # a rerun in the same local work dir must not see old outputs
        work.mkdir(parents=True)
        return cls(env, Transfer(env.region), Cluster(env), work)

    def run(self, body: Callable[["HostJob"], None]) -> None:
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
        return download_graph(self.transfer, graph_uri, graph_name, self.env.host_rank,
                              self.env.num_hosts, self.work / "graph", raw_mappings_uri)

    def download_file(self, uri: str, param: str, dest_dir: Path) -> Path:
        loc = parse_uri(uri, param)
        name = Path(loc.key.rstrip("/")).name
        if not name or not self.transfer.exists(loc):
            raise EntryError(f"{param} {uri} is not a file that exists.")
        return self.transfer.download_file(loc, dest_dir / name)

    def find_model(self, uri: str, param: str) -> ModelFiles:
        """The model under ``uri``: a checkpoint folder, or the latest ``epoch-*`` under an
        artifact prefix. Only lists; fails naming ``param`` when there is no model."""
        prefix = parse_uri(uri, param)
        checkpoint, files = files_to_restore(self.transfer.list_files(prefix))
        if not files:
            raise InputError(f"{param} {uri} holds no GraphStorm model (no model.bin and no epoch-* checkpoint).")
        return ModelFiles(prefix, checkpoint, files)

    def download_model(self, model: ModelFiles, dest: Path) -> Path:
        """Download ``model`` into ``dest``; return the folder for ``--restore-model-path``."""
        self.transfer.download_tree(model.prefix, dest, include=set(model.files).__contains__)
        return dest / model.checkpoint if model.checkpoint else dest

    # --- GraphStorm ------------------------------------------------------------------------
    def run_graphstorm(self, *, script: Path, script_args: list[str], graph: LocalGraph,
                       options: LaunchOptions) -> tuple[Path, HostPlan]:
        """Start this host's servers and trainers; return when they all exited 0."""
        layout = self.cluster.launch_layout(options.num_servers)
        ip_config = self.work / "ip_config.txt"
        ip_config.write_text(layout.ip_config_text(), encoding="utf-8")
        plan = build_host_plan(layout=layout, host_rank=self.env.host_rank, script=script,
                               script_args=script_args, part_config=graph.part_config,
                               ip_config=ip_config, options=options, python=sys.executable)
        children = [self._child(cmd) for cmd in [*plan.servers, plan.trainer]]
        # Servers first: DGL clients retry until their servers listen, not the other way round.
        for child in children:
            child.start()
        supervise(children, self.abort_reason)
        return ip_config, plan

    def run_command(self, command: Command) -> None:
        child = self._child(command).start()
        supervise([child], self.abort_reason)

    def _child(self, command: Command) -> Child:
        return Child(command.name, command.argv, {**os.environ, **command.env}, cwd=self.work)
