"""GraphStorm training as a SageMaker Training job; the model goes to --model-artifact-s3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from graphstorm_provider.jobs.graphstorm_job import GRAPHSTORM_JOB_RESERVED_FLAGS, NO_SHARED_FS, GraphStormJobSpec

if TYPE_CHECKING:
    from graphstorm_provider.jobs.common import ArgumentAdder


@dataclass(frozen=True, kw_only=True)
class TrainSpec(GraphStormJobSpec):
    """Train a GraphStorm model (SageMaker Training job)."""

    step: ClassVar[str] = "train"
    step_tag: ClassVar[str] = "Training"
    yaml_flag: ClassVar[str] = "--train-yaml-s3"
    reserved_graphstorm_flags: ClassVar[dict[str, str]] = {
        **GRAPHSTORM_JOB_RESERVED_FLAGS,
        "save-model-path": "the job saves the model and uploads it to --model-artifact-s3",
        "restore-model-path": "use --model-checkpoint-to-load with an S3 URI",
        "save-embed-path": f"{NO_SHARED_FS}; run an infer job with --output-emb-s3, or pass None",
        "save-prediction-path": f"{NO_SHARED_FS}; run an infer job with --output-prediction-s3, or pass None",
    }

    model_checkpoint_to_load: str | None = None

    @classmethod
    def _parse_step(cls, values: dict[str, Any]) -> None:
        super()._parse_step(values)
        cls._parse_uri(values, "model_checkpoint_to_load", required=False)

    @classmethod
    def _add_step_arguments(cls, group: ArgumentAdder) -> None:
        super()._add_step_arguments(group)
        group.add_argument("--model-artifact-s3", required=True, help="S3 prefix to save the model to")
        group.add_argument(
            "--model-checkpoint-to-load",
            help="S3 prefix of a saved checkpoint to resume from (e.g. s3://bucket/model/epoch-2/)",
        )

    def entry_arguments(self) -> list[str]:
        args = self.graphstorm_job_arguments()
        if self.model_checkpoint_to_load:
            args += ["--model-checkpoint-to-load", self.model_checkpoint_to_load]
        if self.custom_script:
            args += ["--custom-script", self.custom_script]
        return args + ["--log-level", self.log_level]

    def outputs(self) -> dict[str, str]:
        return {"model_artifact_s3": self.model_artifact_s3}

    def _main_output(self) -> str:
        return self.model_artifact_s3
