"""
The SageMaker container contract, laid out under a local work directory.

SageMaker gives a training container ``/opt/ml/input/config/{resourceconfig,hyperparameters,
inputdataconfig}.json``, ``/opt/ml/input/data/<channel>``, ``/opt/ml/model``, ``/opt/ml/output``
and the ``SM_*`` variables; a processing container gets ``/opt/ml/config/{resourceconfig,
processingjobconfig}.json`` and its ``/opt/ml/processing/...`` paths. The local backend builds the
same tree under ``<work dir>/opt/ml`` and tells the entry points where it is with
``GRAPHSTORM_OPT_ML``; every container path in the request (``/opt/ml/...``) is remapped under it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from graphstorm_provider.jobs.request import printable_request

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

CONTAINER_OPT_ML = PurePosixPath("/opt/ml")
# One host, named as SageMaker names the first host of a cluster.
LOCAL_HOST = "algo-1"
# algo-1 does not resolve outside a container network: the one host is this machine's loopback.
LOCAL_HOST_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class OptMl:
    """Paths of the emulated ``/opt/ml`` tree of one job."""

    root: Path

    @property
    def input_config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def input_data(self) -> Path:
        return self.root / "input" / "data"

    def channel(self, name: str) -> Path:
        return self.input_data / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.output / "data"

    @property
    def failure_file(self) -> Path:
        """Where a container writes its failure reason (SageMaker's ``FailureReason``)."""
        return self.output / "failure"

    @property
    def processing_config(self) -> Path:
        return self.root / "config"

    @property
    def processing_input(self) -> Path:
        return self.root / "processing" / "input"

    def local(self, container_path: str, work_dir: Path) -> Path:
        """
        Map a container path to a local one: ``/opt/ml/x`` -> ``<root>/x``.

        Other absolute paths go under ``<work_dir>/container``, so a job never writes outside its
        work dir.
        """
        path = PurePosixPath(container_path)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError(f"container path {container_path!r} must be absolute and without '..'")
        if path == CONTAINER_OPT_ML or CONTAINER_OPT_ML in path.parents:
            return self.root.joinpath(*path.relative_to(CONTAINER_OPT_ML).parts)
        return work_dir.joinpath("container", *path.parts[1:])

    def create(self) -> None:
        for path in (
            self.input_config,
            self.input_data,
            self.model,
            self.output_data,
            self.processing_config,
            self.processing_input,
        ):
            path.mkdir(parents=True, exist_ok=True)


def training_channels(job: JobRequest) -> list[tuple[str, str]]:
    """``(channel name, S3Uri)`` of each ``InputDataConfig`` channel of a training job."""
    channels = []
    for channel in job.request.get("InputDataConfig", []) or []:
        source = channel["DataSource"].get("S3DataSource")
        if source is None:
            raise ValueError(f"channel {channel['ChannelName']!r}: only S3DataSource channels run locally")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise ValueError(
                f"channel {channel['ChannelName']!r}: S3DataType {source['S3DataType']!r} "
                "is not supported locally (use S3Prefix)"
            )
        channels.append((channel["ChannelName"], source["S3Uri"]))
    return channels


def resource_config(job: JobRequest) -> dict[str, Any]:
    return {
        "current_host": LOCAL_HOST,
        "current_instance_type": job.instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [LOCAL_HOST],
        "instance_groups": [
            {"instance_group_name": "homogeneousCluster", "instance_type": job.instance_type, "hosts": [LOCAL_HOST]}
        ],
        "network_interface_name": "lo",
    }


def write_config_files(job: JobRequest, opt_ml: OptMl) -> None:
    """Write the JSON files SageMaker puts in the container before the entry point starts."""
    resources = json.dumps(resource_config(job), indent=2)
    # Both kinds get input/config/resourceconfig.json so the entry points read one place; processing
    # jobs also get SageMaker's own processing location and processingjobconfig.json.
    (opt_ml.input_config / "resourceconfig.json").write_text(resources)
    hyperparameters = job.request.get("HyperParameters", {}) if job.kind == "training" else {}
    (opt_ml.input_config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
    if job.kind == "training":
        data_config = {
            c["ChannelName"]: {k: v for k, v in c.items() if k not in ("ChannelName", "DataSource")}
            for c in job.request.get("InputDataConfig", []) or []
        }
        (opt_ml.input_config / "inputdataconfig.json").write_text(json.dumps(data_config, indent=2))
    else:
        (opt_ml.processing_config / "resourceconfig.json").write_text(resources)
        # SageMaker's file holds the whole request; a secret-looking Environment value stays out of
        # the file (the job has it as a variable): the work directory is kept after a failure.
        (opt_ml.processing_config / "processingjobconfig.json").write_text(
            json.dumps(printable_request(job.request), indent=2, default=str)
        )


def sagemaker_environment(job: JobRequest, opt_ml: OptMl) -> dict[str, str]:
    """Return the variables SageMaker (and its training toolkit) set in the container, for one host."""
    channels = {name: str(opt_ml.channel(name)) for name, _ in training_channels(job)} if job.kind == "training" else {}
    hyperparameters = job.request.get("HyperParameters", {}) if job.kind == "training" else {}
    num_cpus = os.cpu_count() or 1
    training_env: dict[str, Any] = {
        "job_name": job.job_name,
        "hosts": [LOCAL_HOST],
        "current_host": LOCAL_HOST,
        "master_hostname": LOCAL_HOST,
        "current_instance_type": job.instance_type,
        "num_gpus": 0,
        "num_cpus": num_cpus,
        "network_interface_name": "lo",
        "model_dir": str(opt_ml.model),
        "input_dir": str(opt_ml.root / "input"),
        "input_config_dir": str(opt_ml.input_config),
        "input_data_config": {name: {} for name in channels},
        "channel_input_dirs": channels,
        "output_dir": str(opt_ml.output),
        "output_data_dir": str(opt_ml.output_data),
        "output_intermediate_dir": str(opt_ml.output / "intermediate"),
        "hyperparameters": hyperparameters,
        "resource_config": resource_config(job),
    }
    env = {
        "GRAPHSTORM_OPT_ML": str(opt_ml.root),
        "SM_TRAINING_ENV": json.dumps(training_env),
        "SM_HOSTS": json.dumps([LOCAL_HOST]),
        "SM_CURRENT_HOST": LOCAL_HOST,
        "SM_CURRENT_INSTANCE_TYPE": job.instance_type,
        "SM_NUM_GPUS": "0",
        "SM_NUM_CPUS": str(num_cpus),
        "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_MODEL_DIR": str(opt_ml.model),
        "SM_INPUT_DIR": str(opt_ml.root / "input"),
        "SM_INPUT_CONFIG_DIR": str(opt_ml.input_config),
        "SM_OUTPUT_DIR": str(opt_ml.output),
        "SM_OUTPUT_DATA_DIR": str(opt_ml.output_data),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_RESOURCE_CONFIG": json.dumps(resource_config(job)),
        # "algo-1" does not resolve outside a container network. MASTER_ADDR is an address anything
        # can bind/connect to (the entry points treat a MASTER_ADDR that is not a host name as "the
        # first host leads"), and GSENTRY_HOST_ADDRESSES maps the host name for the entry points'
        # rendezvous (unused with one host, which binds loopback on free ports).
        "MASTER_ADDR": LOCAL_HOST_ADDRESS,
        "GSENTRY_HOST_ADDRESSES": json.dumps({LOCAL_HOST: LOCAL_HOST_ADDRESS}),
        "AWS_REGION": job.region,
        "AWS_DEFAULT_REGION": job.region,
    }
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = path
    if job.kind == "training":
        env["TRAINING_JOB_NAME"] = job.job_name
    else:
        env["PROCESSING_JOB_NAME"] = job.job_name
    return env
