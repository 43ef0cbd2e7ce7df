"""
The SageMaker container contract, read once into a typed value.

SageMaker (and our local and compose backends, which emulate it) tell a container who it is
through environment variables and files under ``/opt/ml``:

- ``SM_TRAINING_ENV`` (JSON with ``hosts`` and ``current_host``), else
  ``<opt_ml>/input/config/resourceconfig.json`` (training jobs) or
  ``<opt_ml>/config/resourceconfig.json`` (processing jobs); neither means one host, ``algo-1``;
- ``SM_CHANNEL_<NAME>``, ``SM_NUM_GPUS``, ``SM_MODEL_DIR``, ``MASTER_ADDR``, ``AWS_REGION``.

``<opt_ml>`` is ``$GRAPHSTORM_OPT_ML`` (default ``/opt/ml``) so that the local backend can point
it at a work directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsentry.errors import InputError

OPT_ML_ENV = "GRAPHSTORM_OPT_ML"
DEFAULT_OPT_ML = "/opt/ml"
DEFAULT_REGION = "us-west-2"
LEADER_HOST = "algo-1"


@dataclass(frozen=True)
class ContainerEnv:
    """Everything an entry point needs to know about the container it runs in."""

    opt_ml: Path
    hosts: tuple[str, ...]
    current_host: str
    num_gpus: int = 0
    master_addr: str = ""
    region: str = DEFAULT_REGION
    job_name: str = ""
    channels: Mapping[str, Path] = field(default_factory=dict)
    model_dir_override: str = ""

    @property
    def host_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def num_hosts(self) -> int:
        return len(self.hosts)

    @property
    def leader(self) -> str:
        """The host that leads the rendezvous: ``MASTER_ADDR`` if it names a host, else the first."""
        return self.master_addr if self.master_addr in self.hosts else self.hosts[0]

    @property
    def is_leader(self) -> bool:
        return self.current_host == self.leader

    @property
    def model_dir(self) -> Path:
        if not self.model_dir_override:
            return self.opt_ml / "model"
        override = Path(self.model_dir_override)
        # A container path under /opt/ml means "under <opt_ml>" when the root is emulated elsewhere.
        if self.opt_ml != Path(DEFAULT_OPT_ML) and override.is_relative_to(DEFAULT_OPT_ML):
            return self.opt_ml / override.relative_to(DEFAULT_OPT_ML)
        return override

    @property
    def processing_input(self) -> Path:
        return self.opt_ml / "processing" / "input"

    @property
    def processing_output(self) -> Path:
        return self.opt_ml / "processing" / "output"

    @property
    def work_dir(self) -> Path:
        """Scratch space for downloads and GraphStorm outputs (never uploaded by SageMaker)."""
        return self.opt_ml / "gsentry"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not valid JSON: {err}") from err
    return value if isinstance(value, dict) else None


def _cluster_info(env: Mapping[str, str], opt_ml: Path) -> dict[str, Any]:
    raw = env.get("SM_TRAINING_ENV")
    if raw:
        try:
            info = json.loads(raw)
        except json.JSONDecodeError as err:
            raise InputError(f"SM_TRAINING_ENV is not valid JSON: {err}") from err
        if not isinstance(info, dict):
            raise InputError("SM_TRAINING_ENV must be a JSON object with hosts and current_host.")
        return info
    for path in (opt_ml / "input" / "config" / "resourceconfig.json", opt_ml / "config" / "resourceconfig.json"):
        info = _read_json(path)
        if info is not None:
            return info
    return {"hosts": [LEADER_HOST], "current_host": LEADER_HOST}


def read_container_env(env: Mapping[str, str] | None = None) -> ContainerEnv:
    """Build a :class:`ContainerEnv` from an environment mapping (default ``os.environ``)."""
    env = os.environ if env is None else env
    opt_ml = Path(env.get(OPT_ML_ENV) or DEFAULT_OPT_ML)
    info = _cluster_info(env, opt_ml)

    hosts = info.get("hosts")
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
        raise InputError("hosts in SM_TRAINING_ENV/resourceconfig.json must be a non-empty list of host names.")
    if len(set(hosts)) != len(hosts):
        raise InputError(f"hosts in SM_TRAINING_ENV/resourceconfig.json has duplicates: {hosts}.")
    current_host = info.get("current_host")
    if not isinstance(current_host, str) or current_host not in hosts:
        raise InputError(f"current_host {current_host!r} is not one of hosts {hosts}.")

    num_gpus_raw = env.get("SM_NUM_GPUS", str(info.get("num_gpus", 0)))
    try:
        num_gpus = int(num_gpus_raw)
    except ValueError as err:
        raise InputError(f"SM_NUM_GPUS must be an integer, got {num_gpus_raw!r}.") from err

    channels = {
        key[len("SM_CHANNEL_") :].lower(): Path(value)
        for key, value in env.items()
        if key.startswith("SM_CHANNEL_") and value
    }
    return ContainerEnv(
        opt_ml=opt_ml,
        # SageMaker lists hosts in order algo-1..N; sorting keeps every host's view identical.
        hosts=tuple(sorted(hosts, key=_host_sort_key)),
        current_host=current_host,
        num_gpus=max(num_gpus, 0),
        master_addr=env.get("MASTER_ADDR", ""),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        job_name=str(
            info.get("job_name")
            or env.get("TRAINING_JOB_NAME")
            or env.get("PROCESSING_JOB_NAME")
            or (_read_json(opt_ml / "config" / "processingjobconfig.json") or {}).get("ProcessingJobName")
            or ""
        ),
        channels=channels,
        model_dir_override=env.get("SM_MODEL_DIR", ""),
    )


def _host_sort_key(host: str) -> tuple[str, int]:
    """``algo-10`` sorts after ``algo-9``: compare the numeric suffix as a number."""
    prefix, _, suffix = host.rpartition("-")
    return (prefix, int(suffix)) if suffix.isdigit() else (host, -1)
