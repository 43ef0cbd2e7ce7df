"""
GraphStorm offline inference as a SageMaker Training job.

Embeddings to --output-emb-s3, predictions to --output-prediction-s3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.errors import JobSpecError, flag
from graphstorm_provider.jobs.graphstorm_job import GRAPHSTORM_JOB_RESERVED_FLAGS, NO_SHARED_FS, GraphStormJobSpec

if TYPE_CHECKING:
    from graphstorm_provider.jobs.common import ArgumentAdder


@dataclass(frozen=True, kw_only=True)
class InferSpec(GraphStormJobSpec):
    """Run GraphStorm inference with a trained model (SageMaker Training job)."""

    step: ClassVar[str] = "infer"
    step_tag: ClassVar[str] = "Inference"
    yaml_flag: ClassVar[str] = "--infer-yaml-s3"
    task_types: ClassVar[tuple[str, ...]] = v.INFER_TASK_TYPES
    reserved_graphstorm_flags: ClassVar[dict[str, str]] = {
        **GRAPHSTORM_JOB_RESERVED_FLAGS,
        "restore-model-path": "the model is loaded from --model-artifact-s3 (see also --model-sub-path)",
        "save-embed-path": f"{NO_SHARED_FS}; use --output-emb-s3",
        "save-prediction-path": f"{NO_SHARED_FS}; use --output-prediction-s3",
    }

    output_emb_s3: str | None = None
    output_prediction_s3: str | None = None
    raw_node_mappings_s3: str | None = None
    model_sub_path: str | None = None

    @classmethod
    def _parse_step(cls, values: dict[str, Any]) -> None:
        super()._parse_step(values)
        for name in ("output_emb_s3", "output_prediction_s3", "raw_node_mappings_s3"):
            cls._parse_uri(values, name, required=False)
        if values.get("model_sub_path"):
            values["model_sub_path"] = v.relative_path(
                "model_sub_path", values["model_sub_path"], base="model_artifact_s3"
            )
        if values["task_type"] == "compute_emb" and not values["output_emb_s3"]:
            raise JobSpecError(f"{flag('output_emb_s3')} is required with {flag('task_type')} compute_emb.")
        if (
            values["output_prediction_s3"]
            and values["task_type"] not in v.PREDICTION_TASK_TYPES
            and not values.get("custom_script")
        ):
            raise JobSpecError(
                f"{flag('output_prediction_s3')} is not available for {flag('task_type')} {values['task_type']} "
                f"(it makes no predictions); use {flag('output_emb_s3')}."
            )
        if not (values["output_emb_s3"] or values["output_prediction_s3"]):
            raise JobSpecError(
                f"{flag('output_emb_s3')} or {flag('output_prediction_s3')} is required: "
                "otherwise the inference results are not saved."
            )

    @classmethod
    def _add_step_arguments(cls, group: ArgumentAdder) -> None:
        super()._add_step_arguments(group)
        group.add_argument("--model-artifact-s3", required=True, help="S3 prefix of the trained model")
        group.add_argument("--model-sub-path", help="folder of one checkpoint under --model-artifact-s3")
        group.add_argument("--output-emb-s3", help="S3 prefix for the node embeddings")
        group.add_argument("--output-prediction-s3", help="S3 prefix for the predictions")
        group.add_argument(
            "--raw-node-mappings-s3",
            help="S3 prefix of GConstruct's raw node ID mappings, to write predictions with the original node IDs",
        )

    def model_uri(self) -> str:
        """Return the model folder the job loads: --model-artifact-s3 joined with --model-sub-path."""
        if not self.model_sub_path:
            return self.model_artifact_s3
        return f"{self.model_artifact_s3}{self.model_sub_path}/"

    def entry_arguments(self) -> list[str]:
        args = self.graphstorm_job_arguments()
        for flag_name, value in (
            ("--output-emb-s3", self.output_emb_s3),
            ("--output-prediction-s3", self.output_prediction_s3),
            ("--raw-node-mappings-s3", self.raw_node_mappings_s3),
            ("--custom-script", self.custom_script),
        ):
            if value:
                args += [flag_name, value]
        return args + ["--log-level", self.log_level]

    def outputs(self) -> dict[str, str]:
        found = {"output_emb_s3": self.output_emb_s3, "output_prediction_s3": self.output_prediction_s3}
        return {key: uri for key, uri in found.items() if uri}

    def _main_output(self) -> str:
        main = self.output_emb_s3 or self.output_prediction_s3
        if main is None:  # parse() requires one of them
            raise JobSpecError(f"{flag('output_emb_s3')} or {flag('output_prediction_s3')} is required.")
        return main
