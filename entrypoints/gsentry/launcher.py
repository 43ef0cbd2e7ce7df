"""
This host's share of GraphStorm's distributed job, without ssh.

GraphStorm's launcher (``graphstorm.run.launch.submit_jobs``) builds, for every host, the DGL
server processes and one ``torch.distributed.launch`` trainer command, then runs them over ssh.
Here every host builds the same commands for itself only, from the shared
:class:`~gsentry.cluster.ClusterLayout`, and runs them locally. The env vars, the script
GraphStorm would choose per task type and the launcher flags mirror GraphStorm 0.5's
``graphstorm/run/launch.py`` and ``gs_*.py``; the ports come from the layout instead of
GraphStorm's fixed 30050/1234 search, so concurrent jobs on one machine do not collide.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from gsentry.errors import InputError

if TYPE_CHECKING:
    from gsentry.cluster import ClusterLayout

# task type -> (GraphStorm's wrapper module, training script, inference script), relative to graphstorm/run
TASK_SCRIPTS: dict[str, tuple[str, str | None, str | None]] = {
    "node_classification": ("gs_node_classification", "gsgnn_np/gsgnn_np.py", "gsgnn_np/np_infer_gnn.py"),
    "node_regression": ("gs_node_regression", "gsgnn_np/gsgnn_np.py", "gsgnn_np/np_infer_gnn.py"),
    "edge_classification": ("gs_edge_classification", "gsgnn_ep/gsgnn_ep.py", "gsgnn_ep/ep_infer_gnn.py"),
    "edge_regression": ("gs_edge_regression", "gsgnn_ep/gsgnn_ep.py", "gsgnn_ep/ep_infer_gnn.py"),
    "link_prediction": ("gs_link_prediction", "gsgnn_lp/gsgnn_lp.py", "gsgnn_lp/lp_infer_gnn.py"),
    "multi_task": ("gs_multi_task_learning", "gsgnn_mt/gsgnn_mt.py", "gsgnn_mt/mt_infer_gnn.py"),
    "compute_emb": ("gs_gen_node_embedding", None, "gsgnn_emb/gsgnn_node_emb.py"),
}
# Language-model-only variants (GraphStorm's --lm-encoder-only launcher flag).
LM_ONLY_SCRIPTS = {
    "edge_classification": ("gsgnn_ep/gsgnn_lm_ep.py", "gsgnn_ep/ep_infer_lm.py"),
    "edge_regression": ("gsgnn_ep/gsgnn_lm_ep.py", "gsgnn_ep/ep_infer_lm.py"),
    "link_prediction": ("gsgnn_lp/gsgnn_lm_lp.py", "gsgnn_lp/lp_infer_lm.py"),
}
TRAIN_TASK_TYPES = tuple(t for t, (_, train, _) in TASK_SCRIPTS.items() if train)
INFER_TASK_TYPES = tuple(TASK_SCRIPTS)
PREDICTION_TASK_TYPES = (
    "node_classification",
    "node_regression",
    "edge_classification",
    "edge_regression",
    "multi_task",
)

# One string-hash seed for every GraphStorm process of a job, on every host. DistDGL's
# DistTensor creation is collective and its barriers carry no name: every client must create
# the same tensors in the same order. GraphStorm 0.5 creates its ``mapping-<ntype>`` tensors
# for the prediction remap (``NodeIDShuffler(g, ..., list(target_ntypes))`` in ep_infer.py and
# mt_infer.py) in the iteration order of a *set* of node-type names, which depends on the
# process's randomised string hash. With different orders, each host initialises a different
# tensor on its own server and rank 0's push to the other host's server fails
# (``KVServer cannot find partition policy with name: node~movie~mapping-movie_0``).
# GraphStorm's own launcher does not pin it either; one seed for all makes the order agree.
HASH_SEED_ENV = "PYTHONHASHSEED"
DEFAULT_HASH_SEED = "0"
_MAX_HASH_SEED = 4294967295


def _true(value: str) -> bool:
    """``true``/``1`` or ``false``/``0`` (any case); anything else is refused, not taken for false."""
    text = str(value).lower()
    if text not in ("true", "1", "false", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return text in ("true", "1")


class _LauncherFlagParser(argparse.ArgumentParser):
    """argparse that raises :class:`InputError` (one sentence, the job's failure reason) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"GraphStorm launcher flags: {message}.")


def launcher_parser() -> argparse.ArgumentParser:
    """Return the flags GraphStorm's launcher consumes (graphstorm.run.launch.get_argument_parser)."""
    p = _LauncherFlagParser(add_help=False, allow_abbrev=False)
    p.add_argument("--num-trainers", type=int)
    p.add_argument("--num-servers", type=int, default=1)
    p.add_argument("--num-samplers", type=int, default=0)
    p.add_argument("--num-omp-threads", type=int)
    p.add_argument("--num-server-threads", type=int)
    p.add_argument("--graph-format", default="csc")
    p.add_argument("--extra-envs", nargs="+", default=[])
    p.add_argument("--lm-encoder-only", action="store_true")
    p.add_argument("--inference", action="store_true")
    p.add_argument("--do-nid-remap", type=_true, default=True)
    p.add_argument("--output-chunk-size", type=int, default=100000)
    p.add_argument("--preserve-input", type=_true, default=False)
    # Accepted and ignored: this launcher builds them itself (no ssh, no shared file system).
    for ignored in (
        "--ip-config",
        "--part-config",
        "--workspace",
        "--ssh-port",
        "--ssh-username",
        "--verbose",
        "--with-shared-fs",
    ):
        p.add_argument(ignored)
    return p


@dataclass(frozen=True)
class LaunchOptions:
    """The process counts and launcher options GraphStorm's launcher takes (trainers, servers, ...)."""

    num_trainers: int = 1
    num_servers: int = 1
    num_samplers: int = 0
    num_omp_threads: int = 1
    num_server_threads: int = 1
    graph_format: str = "csc"
    extra_envs: tuple[str, ...] = ()
    lm_encoder_only: bool = False
    do_nid_remap: bool = True
    output_chunk_size: int = 100000
    preserve_input: bool = False


def split_launch_args(
    forwarded: Sequence[str], num_gpus: int = 0, cpu_count: int | None = None
) -> tuple[LaunchOptions, list[str]]:
    """Separate GraphStorm's launcher flags from the flags its training script receives."""
    args, rest = launcher_parser().parse_known_args(list(forwarded))
    cpus = cpu_count or os.cpu_count() or 1
    trainers = args.num_trainers if args.num_trainers is not None else max(num_gpus, 1)
    for name, value, low in (
        ("--num-trainers", trainers, 1),
        ("--num-servers", args.num_servers, 1),
        ("--num-samplers", args.num_samplers, 0),
    ):
        if value < low:
            raise InputError(f"{name} must be at least {low}, got {value}.")
    for env_pair in args.extra_envs:
        if "=" not in env_pair:
            raise InputError(f"--extra-envs takes KEY=VALUE pairs, got {env_pair!r}.")
    # GraphStorm's defaults (launch.check_input_arguments): half the cores for trainers,
    # a quarter for servers.
    omp = args.num_omp_threads or max(cpus // 2 // trainers // (args.num_samplers if args.num_samplers > 1 else 1), 1)
    server_threads = args.num_server_threads or max(cpus // 4 // args.num_servers, 1)
    options = LaunchOptions(
        num_trainers=trainers,
        num_servers=args.num_servers,
        num_samplers=args.num_samplers,
        num_omp_threads=omp,
        num_server_threads=server_threads,
        graph_format=args.graph_format,
        extra_envs=tuple(e.strip() for e in args.extra_envs if e.strip()),
        lm_encoder_only=args.lm_encoder_only,
        do_nid_remap=args.do_nid_remap,
        output_chunk_size=args.output_chunk_size,
        preserve_input=args.preserve_input,
    )
    return options, rest


def job_hash_seed(env: Mapping[str, str] | None = None) -> str:
    """
    Return the ``PYTHONHASHSEED`` of every GraphStorm process.

    The job's own when it set a fixed one (the job's ``Environment`` is the same on every host), else
    :data:`DEFAULT_HASH_SEED`. ``random`` or anything that is not a seed is replaced: per-process hashing is the bug.
    """
    raw = (os.environ if env is None else env).get(HASH_SEED_ENV, "").strip()
    if raw.isdigit() and int(raw) <= _MAX_HASH_SEED:
        return str(int(raw))
    return DEFAULT_HASH_SEED


def graphstorm_run_dir() -> Path:
    """``graphstorm/run`` of the installed GraphStorm, found without importing it (no torch)."""
    spec = importlib.util.find_spec("graphstorm")
    if spec is None or not spec.origin:
        raise InputError("GraphStorm is not installed in this Python environment.")
    return Path(spec.origin).parent / "run"


def task_script(
    task_type: str,
    inference: bool,
    lm_encoder_only: bool = False,
    custom_script: str | None = None,
    run_dir: Path | None = None,
) -> Path:
    """Return the script GraphStorm's ``gs_<task>`` launcher would run for this task."""
    if custom_script:
        return Path(custom_script)
    if task_type not in TASK_SCRIPTS:
        raise InputError(f"--task-type must be one of {', '.join(TASK_SCRIPTS)}, got {task_type!r}.")
    _, train, infer = TASK_SCRIPTS[task_type]
    if lm_encoder_only and task_type in LM_ONLY_SCRIPTS:
        train, infer = LM_ONLY_SCRIPTS[task_type]
    script = infer if inference else train
    if script is None:
        raise InputError(f"--task-type {task_type} is inference-only; it cannot be trained.")
    return (run_dir or graphstorm_run_dir()) / script


@dataclass(frozen=True)
class Command:
    """One process to start on this host: a name for logs, its argv and extra environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostPlan:
    """Everything this host runs: its DGL servers and its trainer group."""

    servers: list[Command]
    trainer: Command


def build_host_plan(
    *,
    layout: ClusterLayout,
    host_rank: int,
    script: Path,
    script_args: Sequence[str],
    part_config: Path,
    ip_config: Path,
    options: LaunchOptions,
    python: str,
    hash_seed: str | None = None,
) -> HostPlan:
    """
    Return the commands GraphStorm's ``submit_jobs`` would send to host ``host_rank`` over ssh.

    Every process gets ``PYTHONHASHSEED=hash_seed`` (default :func:`job_hash_seed`; see
    :data:`HASH_SEED_ENV`), after any ``--extra-envs``: the same value on every host is what
    keeps DistDGL's collectives in step.
    """
    hash_seed = hash_seed if hash_seed is not None else job_hash_seed()
    num_hosts = len(layout.hosts)
    udf = [str(script), *script_args, "--ip-config", str(ip_config), "--part-config", str(part_config)]
    tot_num_clients = options.num_trainers * (1 + options.num_samplers) * num_hosts
    shared = {
        "DGL_NUM_SAMPLER": str(options.num_samplers),
        "DGL_NUM_CLIENT": str(tot_num_clients),
        "DGL_CONF_PATH": str(part_config),
        "DGL_IP_CONFIG": str(ip_config),
        "DGL_NUM_SERVER": str(options.num_servers),
        "DGL_GRAPH_FORMAT": options.graph_format,
    }
    extra = dict(pair.split("=", 1) for pair in options.extra_envs)
    servers = []
    for local_id in range(options.num_servers):
        server_id = host_rank * options.num_servers + local_id
        env = {
            **shared,
            "DGL_ROLE": "server",
            "OMP_NUM_THREADS": str(options.num_server_threads),
            "DGL_SERVER_ID": str(server_id),
            **extra,
            HASH_SEED_ENV: hash_seed,
        }
        servers.append(Command(f"server-{server_id}", [python, "-u", *udf], env))
    trainer_env = {
        **shared,
        "DGL_DIST_MODE": "distributed",
        "DGL_ROLE": "client",
        "OMP_NUM_THREADS": str(options.num_omp_threads),
        "DGL_GROUP_ID": "0",
        **extra,
        HASH_SEED_ENV: hash_seed,
    }
    trainer_argv = [
        python,
        "-u",
        "-m",
        "torch.distributed.launch",
        f"--nproc_per_node={options.num_trainers}",
        f"--nnodes={num_hosts}",
        f"--node_rank={host_rank}",
        f"--master_addr={layout.master_addr}",
        f"--master_port={layout.master_port}",
        *udf,
    ]
    return HostPlan(servers, Command(f"trainer-{host_rank}", trainer_argv, trainer_env))


def remap_command(
    *,
    python: str,
    script_args: Sequence[str],
    part_config: Path,
    ip_config: Path,
    host_rank: int,
    num_hosts: int,
    options: LaunchOptions,
    hash_seed: str | None = None,
) -> Command:
    """GraphStorm's remap step for this host (launch.wrap_dist_remap_command), no shared FS."""
    hash_seed = hash_seed if hash_seed is not None else job_hash_seed()
    argv = [
        python,
        "-m",
        "graphstorm.gconstruct.remap_result",
        *script_args,
        "--ip-config",
        str(ip_config),
        "--part-config",
        str(part_config),
        "--rank",
        str(host_rank),
        "--world-size",
        str(num_hosts),
        "--with-shared-fs",
        "False",
        "--num-processes",
        str(options.num_trainers),
        "--output-chunk-size",
        str(options.output_chunk_size),
        "--preserve-input",
        "True" if options.preserve_input else "False",
    ]
    env = {**dict(pair.split("=", 1) for pair in options.extra_envs), HASH_SEED_ENV: hash_seed}
    return Command(f"remap-{host_rank}", argv, env)
