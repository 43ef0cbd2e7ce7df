"""
Job specs.

One per GraphStorm step, each validating its parameters and rendering a
:class:`~graphstorm_provider.jobs.request.JobRequest` that every backend consumes.
"""

from __future__ import annotations

from graphstorm_provider.jobs.common import JobSpec
from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.gconstruct import GConstructSpec
from graphstorm_provider.jobs.infer import InferSpec
from graphstorm_provider.jobs.partition import PartitionSpec
from graphstorm_provider.jobs.request import JobRequest
from graphstorm_provider.jobs.sm_params import apply_sm_parameters, parse_sm_parameters
from graphstorm_provider.jobs.train import TrainSpec

STEP_SPECS: dict[str, type[JobSpec]] = {
    "gconstruct": GConstructSpec,
    "partition": PartitionSpec,
    "train": TrainSpec,
    "infer": InferSpec,
}
# GraphStorm's compose generator's action names -> step (graph construction runs on one host,
# so it has no action there).
COMPOSE_ACTIONS = {
    "partitioning": "partition",
    "training": "train",
    "inference": "infer",
}


def compose_step(name: str) -> type[JobSpec]:
    """Return the spec of a multi-host step, by step name or compose action name; ``ValueError`` otherwise."""
    key = str(name).strip().lower()
    step = COMPOSE_ACTIONS.get(key, key)
    if step not in COMPOSE_ACTIONS.values():
        raise ValueError(
            f"step must be one of {', '.join([*COMPOSE_ACTIONS.values(), *COMPOSE_ACTIONS])}, got {name!r} "
            "(graph construction runs on one host: use GConstructOperator with instance_type='local')."
        )
    return STEP_SPECS[step]


__all__ = [
    "COMPOSE_ACTIONS",
    "STEP_SPECS",
    "JobSpec",
    "compose_step",
    "GConstructSpec",
    "InferSpec",
    "JobRequest",
    "JobSpecError",
    "PartitionSpec",
    "TrainSpec",
    "apply_sm_parameters",
    "parse_sm_parameters",
]
