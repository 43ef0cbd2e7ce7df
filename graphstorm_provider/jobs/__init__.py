"""Job specs: one per GraphStorm step, each validating its parameters and rendering a
:class:`~graphstorm_provider.jobs.request.JobRequest` that every backend consumes."""

from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.gconstruct import GConstructSpec
from graphstorm_provider.jobs.infer import InferSpec
from graphstorm_provider.jobs.partition import PartitionSpec
from graphstorm_provider.jobs.request import JobRequest
from graphstorm_provider.jobs.sm_params import apply_sm_parameters, parse_sm_parameters
from graphstorm_provider.jobs.train import TrainSpec

STEP_SPECS = {
    "gconstruct": GConstructSpec,
    "partition": PartitionSpec,
    "train": TrainSpec,
    "infer": InferSpec,
}

__all__ = [
    "STEP_SPECS",
    "GConstructSpec",
    "InferSpec",
    "JobRequest",
    "JobSpecError",
    "PartitionSpec",
    "TrainSpec",
    "apply_sm_parameters",
    "parse_sm_parameters",
]
