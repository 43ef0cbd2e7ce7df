"""
Render a multi-host job as a compose file: the emulated SageMaker cluster.

One :class:`~graphstorm_provider.jobs.request.JobRequest` becomes one compose project
with one service per host, ``algo-1`` .. ``algo-N``, exactly as SageMaker names its
hosts. Every service runs the request's image with the request's entry point and
arguments, and gets the SageMaker container contract as environment variables
(``SM_TRAINING_ENV`` with ``hosts``/``current_host``, ``SM_CHANNEL_TRAIN``,
``SM_NUM_GPUS``, ...) plus the torch-style ``WORLD_SIZE``/``RANK``/``MASTER_ADDR``.

Two rules shape the output:

* Credentials are passed **by name only** (an ``environment`` entry whose value is
  null: the compose tool copies the variable from its own environment at ``up``), so
  a rendered file never holds a secret and can be shared or committed.
* ``file://`` URIs in the arguments are bind-mounted at the same path inside every
  container, so a local path means the same thing on the host and in the "cluster".

Everything here is pure (no engine, no subprocess), so tests call it directly.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from graphstorm_provider.aws_env import CREDENTIAL_VARIABLES, looks_secret
from graphstorm_provider.jobs.request import CONTAINER_CODE_DIR, JobRequest
from graphstorm_provider.jobs.validation import system_folder
from graphstorm_provider.uris import UriError, parse_uri

log = logging.getLogger(__name__)

# Non-secret AWS settings that are worth forwarding by name too when the host has them
# (endpoint overrides for S3-compatible stores, profiles, ...).
PASSTHROUGH_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
)

NETWORK_KEY = "gsf"
TRAIN_CHANNEL_DIR = "/opt/ml/input/data/train"
DEFAULT_SHM_SIZE = "4gb"
_PROJECT_CHARS = re.compile(r"[^a-z0-9_-]+")


class ComposeSpecError(ValueError):
    """A job that cannot run as a compose cluster; the message names the parameter."""


def compose_file_name(action: str, name: str, instance_count: int, *details: str) -> str:
    """
    ``docker-compose-<action>-<name>-<N>workers[-<detail>...].yaml``.

    GraphStorm's compose generator's naming (``gs-sagemaker compose`` passes the generator's details; the compose runner
    the step and the job's project name).
    """
    return "-".join(["docker-compose", action, name, f"{instance_count}workers", *details]) + ".yaml"


def host_names(count: int) -> list[str]:
    """SageMaker's host names for ``count`` instances: ``algo-1`` .. ``algo-N``."""
    return [f"algo-{i}" for i in range(1, count + 1)]


def project_name(job_name: str) -> str:
    """
    Return a compose project name derived from the job name (unique per run).

    Compose project names must be lowercase letters, digits, ``-`` and ``_`` and start
    with a letter or digit; SageMaker job names are close to that already.
    """
    name = _PROJECT_CHARS.sub("-", job_name.lower()).strip("-_")
    if not name:
        raise ComposeSpecError(f"job name {job_name!r} gives an empty compose project name")
    return name[:63]


def container_name(project: str, host: str) -> str:
    """Container names carry the project so two runs never clash on names."""
    return f"{project}-{host}"


def network_name(project: str, run_tag: str = "") -> str:
    """
    ``<project>[-<run tag>]-gsf-network``.

    The runner adds a tag per run, so a run never joins a network that an earlier run with
    the same job name left behind or is still removing.
    """
    return f"{project}-{run_tag}-gsf-network" if run_tag else f"{project}-gsf-network"


@dataclass(frozen=True)
class Mount:
    """A host path bind-mounted at the same path inside every container."""

    path: str
    read_only: bool

    def volume(self) -> dict[str, Any]:
        return {"type": "bind", "source": self.path, "target": self.path, "read_only": self.read_only}


@dataclass(frozen=True)
class ComposeOptions:
    """
    How to run the cluster, beyond what the job request says.

    ``credential_names``: variables passed into the containers by name (never value).
    ``gpus``: GPUs to reserve per container (0: none, and ``SM_NUM_GPUS=0``).
    ``project``: compose project; default derived from the job name.
    ``network_tag``: part of the network name that makes it unique per run (set by the runner).
    """

    shm_size: str = DEFAULT_SHM_SIZE
    gpus: int = 0
    credential_names: tuple[str, ...] = CREDENTIAL_VARIABLES + PASSTHROUGH_VARIABLES
    project: str | None = None
    network_tag: str = ""

    def __post_init__(self) -> None:
        if self.gpus < 0:
            raise ComposeSpecError(f"gpus must be 0 or more, got {self.gpus}")
        # A unit is required: compose reads a bare "4" as 4 bytes, a /dev/shm no DistDGL job fits in.
        if not re.fullmatch(r"\d+(\.\d+)?\s*[bkmg]b?", self.shm_size.strip().lower()) or not shm_bytes(self.shm_size):
            raise ComposeSpecError(
                f"shm_size must be a size above 0 with a unit, such as '4gb' or '512m', got {self.shm_size!r}"
            )
        for name in self.credential_names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ComposeSpecError(f"credential_names has an invalid variable name {name!r}")


def shm_bytes(size: str) -> int:
    """``'4gb'`` -> bytes, for the /dev/shm tmpfs (compose wants a number or a size string)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", size.strip().lower())
    if not match:
        raise ComposeSpecError(f"shm_size must look like '4gb' or '512m', got {size!r}")
    number, unit = match.groups()
    scale = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    return int(float(number) * scale)


def file_uri_path(uri: str) -> str | None:
    """
    Return the absolute local path of a ``file://`` URI, or None for anything else.

    Parsed by the one URI parser (``uris.parse_uri``: percent-decoded, no ``..`` segment, ``%2e%2e``
    included); a malformed one raises :class:`ComposeSpecError`.
    """
    if not uri.startswith("file://"):
        return None
    try:
        parsed = parse_uri(uri)
    except UriError as err:
        raise ComposeSpecError(f"file URI {err}") from err
    return str(PurePosixPath(parsed.path))


def _refuse_system_mount(path: str, param: str, uri: str) -> None:
    """Refuse a bind mount of ``/`` or a system folder: it would hand the host to every container."""
    folder = system_folder(path)
    if folder is not None:
        raise ComposeSpecError(
            f"{param} {uri!r} would bind-mount {folder} (the root or a system folder) into "
            f"every container; use a folder of its own, like file:///data/graphstorm/..."
        )


def _uri_params(job: JobRequest) -> list[tuple[str, str]]:
    """
    ``(parameter, value)`` for every argument and environment value.

    The flag before an argument (``--graph-data-s3``), else ``ContainerArguments``; the variable's name for environment
    values.
    """
    out = []
    args = job.container_arguments
    for i, value in enumerate(args):
        before = args[i - 1] if i > 0 else ""
        out.append((before if before.startswith("--") else "ContainerArguments", value))
    out += [(f"Environment {name}", value) for name, value in job.environment.items()]
    return out


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def plan_mounts(job: JobRequest) -> list[Mount]:
    """
    Bind mounts that make every ``file://`` URI of the job work inside the containers.

    Each URI's path is mounted at the same path. Inputs that are files (a YAML config)
    are mounted through their parent directory, so the entry point can read siblings
    and a missing file still gives the entry point's own clear error. Paths nested in
    another mounted path collapse into the outer one; a mount is writable when it
    holds one of the job's outputs, read-only otherwise.
    """
    output_paths = set()
    for name, out_uri in job.outputs.items():
        out_path = file_uri_path(out_uri)
        if out_path:
            _refuse_system_mount(out_path, name, out_uri)
            output_paths.add(out_path)
    candidates: dict[str, bool] = {}  # path -> writable
    for param, value in _uri_params(job):
        path = file_uri_path(value) if isinstance(value, str) else None
        if path is None:
            continue
        _refuse_system_mount(path, param, value)
        writable = any(_is_within(path, out) or _is_within(out, path) for out in output_paths)
        local = Path(path)
        if not writable and local.is_file():
            path = str(PurePosixPath(path).parent)
        elif not writable and not local.exists() and PurePosixPath(path).suffix:
            # A file input that does not exist yet: mount its folder (the entry point
            # reports the missing file itself).
            path = str(PurePosixPath(path).parent)
        _refuse_system_mount(path, param, value)  # a file's folder may be one (file:///etc/x.yaml)
        candidates[path] = candidates.get(path, False) or writable
    for out in output_paths:
        candidates[out] = True
    # Collapse nested paths into the outermost one; writable if any member is.
    roots: list[str] = []
    for path in sorted(candidates, key=lambda p: (p.count("/"), p)):
        if not any(_is_within(path, root) for root in roots):
            roots.append(path)
    mounts = []
    for root in sorted(roots):
        writable = any(w for p, w in candidates.items() if _is_within(p, root))
        mounts.append(Mount(path=root, read_only=not writable))
    return mounts


def prepare_mount_sources(mounts: list[Mount]) -> None:
    """
    Create missing host directories so the engine can bind-mount them.

    Outputs usually do not exist before the job; engines refuse (podman) or create
    root-owned dirs (docker) for missing bind sources, so we create them ourselves.
    """
    for mount in mounts:
        Path(mount.path).mkdir(parents=True, exist_ok=True)


def secret_environment(job: JobRequest) -> dict[str, str]:
    """
    Return the request's secret-looking variables, which a compose file names without their values.

    Their values must come from the environment of whoever runs the file (the compose runner
    supplies the request's own).
    """
    return {name: str(value) for name, value in job.environment.items() if looks_secret(name, value)}


def _environment(job: JobRequest, hosts: list[str], host: str, options: ComposeOptions) -> dict[str, Any]:
    secrets = secret_environment(job)
    env: dict[str, Any] = {name: None if name in secrets else str(value) for name, value in job.environment.items()}
    env.update(
        {
            "SM_TRAINING_ENV": json.dumps({"hosts": hosts, "current_host": host}),
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": host,
            "SM_CHANNEL_TRAIN": TRAIN_CHANNEL_DIR,
            "SM_NUM_GPUS": str(options.gpus),
            "SM_MODEL_DIR": "/opt/ml/model",
            "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
            "WORLD_SIZE": str(len(hosts)),
            "RANK": str(hosts.index(host)),
            "MASTER_ADDR": hosts[0],
            "AWS_REGION": job.region,
            "TRAINING_JOB_NAME": job.job_name,
        }
    )
    for name in options.credential_names:
        env.setdefault(name, None)
    return env


def render_compose(job: JobRequest, options: ComposeOptions | None = None) -> dict[str, Any]:
    """Return the compose document (a plain dict) for ``job``: one service per host."""
    options = options or ComposeOptions()
    if job.kind != "training":
        raise ComposeSpecError(
            f"step {job.step!r} is a {job.kind} job; only training-style jobs "
            "(partition, train, infer) run on several hosts"
        )
    count = job.instance_count
    if count < 1:
        raise ComposeSpecError(f"instance_count must be at least 1, got {count}")
    project = options.project or project_name(job.job_name)
    hosts = host_names(count)
    command = [*job.container_entrypoint, *job.container_arguments]
    volumes = [m.volume() for m in plan_mounts(job)]
    volumes.append({"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": shm_bytes(options.shm_size)}})

    services: dict[str, Any] = {}
    for host in hosts:
        service: dict[str, Any] = {
            "image": job.image_uri,
            "container_name": container_name(project, host),
            "hostname": host,
            "networks": {NETWORK_KEY: {"aliases": [host]}},
            "command": command,
            "working_dir": CONTAINER_CODE_DIR,
            # An init as PID 1 forwards SIGTERM to the entry point (a bare PID 1 ignores it),
            # so `down`/stop ends a host at once instead of after the kill grace period.
            "init": True,
            "environment": _environment(job, hosts, host, options),
            "shm_size": options.shm_size,
            "volumes": volumes,
            "labels": {"graphstorm.job-name": job.job_name, "graphstorm.host": host},
        }
        if options.gpus:
            service["deploy"] = {
                "resources": {
                    "reservations": {"devices": [{"driver": "nvidia", "count": options.gpus, "capabilities": ["gpu"]}]}
                }
            }
        services[host] = service
    return {
        "networks": {NETWORK_KEY: {"name": network_name(project, options.network_tag)}},
        "services": services,
    }


class _ComposeDumper(yaml.SafeDumper):
    """Safe YAML without anchors/aliases (the shared volume list would otherwise be aliased)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_compose(document: dict[str, Any]) -> str:
    """YAML text of a compose document; key order kept as rendered for readability."""
    header = (
        "# Emulated SageMaker cluster generated by graphstorm-airflow.\n"
        "# Credentials are passed by name: set AWS_* in the environment that runs compose.\n"
    )
    return header + yaml.dump(document, Dumper=_ComposeDumper, sort_keys=False, default_flow_style=False)


def write_compose(job: JobRequest, path: Path, options: ComposeOptions | None = None) -> dict[str, Any]:
    """Render ``job`` and write it to ``path``; returns the document."""
    document = render_compose(job, options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_compose(document))
    log.info("Wrote compose file %s (%d hosts)", path, len(document["services"]))
    return document
