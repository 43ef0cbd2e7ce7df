"""GraphStorm offline inference as a SageMaker Training job: embeddings to
--output-emb-s3, predictions to --output-prediction-s3."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import ClassVar

from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.gsf import GSF_RESERVED_FLAGS, NO_SHARED_FS, GsfJobSpec


@dataclass(frozen=True, kw_only=True)
class InferSpec(GsfJobSpec):
    """Run GraphStorm inference with a trained model (SageMaker Training job)."""

    step: ClassVar[str] = "infer"
    step_tag: ClassVar[str] = "Inference"
    yaml_flag: ClassVar[str] = "--infer-yaml-s3"
    task_types: ClassVar[tuple[str, ...]] = v.INFER_TASK_TYPES
    reserved_graphstorm_flags: ClassVar[dict[str, str]] = {
        **GSF_RESERVED_FLAGS,
        "restore-model-path": "the model is loaded from --model-artifact-s3 (see also --model-sub-path)",
        "save-embed-path": f"{NO_SHARED_FS}; use --output-emb-s3",
        "save-prediction-path": f"{NO_SHARED_FS}; use --output-prediction-s3",
    }

    output_emb_s3: str | None = None
    output_prediction_s3: str | None = None
    raw_node_mappings_s3: str | None = None
    model_sub_path: str | None = None

    def _validate_step(self) -> None:
        super()._validate_step()
        for name in ("output_emb_s3", "output_prediction_s3", "raw_node_mappings_s3"):
            self._uri(name, required=False)
        if self.model_sub_path:
            self._set("model_sub_path", v.relative_path("model_sub_path", self.model_sub_path, base="model_artifact_s3"))
        if self.task_type == "compute_emb" and not self.output_emb_s3:
            raise JobSpecError("--output-emb-s3 is required with --task-type compute_emb.")
        if not (self.output_emb_s3 or self.output_prediction_s3):
            raise JobSpecError("--output-emb-s3 or --output-prediction-s3 is required: "
                               "otherwise the inference results are not saved.")

    @classmethod
    def _add_step_arguments(cls, group: argparse._ArgumentGroup) -> None:
        super()._add_step_arguments(group)
        group.add_argument("--model-artifact-s3", required=True, help="S3 prefix of the trained model")
        group.add_argument("--model-sub-path", help="folder of one checkpoint under --model-artifact-s3")
        group.add_argument("--output-emb-s3", help="S3 prefix for the node embeddings")
        group.add_argument("--output-prediction-s3", help="S3 prefix for the predictions")
        group.add_argument("--raw-node-mappings-s3",
                           help="S3 prefix of GConstruct's raw node ID mappings, to write predictions "
                                "with the original node IDs")

    def model_uri(self) -> str:
        """The model folder the job loads: --model-artifact-s3 joined with --model-sub-path."""
        if not self.model_sub_path:
            return self.model_artifact_s3
        return f"{self.model_artifact_s3}{self.model_sub_path}/"

    def entry_arguments(self) -> list[str]:
        args = self.gsf_arguments()
        for flag_name, value in (("--output-emb-s3", self.output_emb_s3),
                                 ("--output-prediction-s3", self.output_prediction_s3),
                                 ("--raw-node-mappings-s3", self.raw_node_mappings_s3),
                                 ("--custom-script", self.custom_script)):
            if value:
                args += [flag_name, value]
        return args + ["--log-level", self.log_level]

    def outputs(self) -> dict[str, str]:
        found = {"output_emb_s3": self.output_emb_s3, "output_prediction_s3": self.output_prediction_s3}
        return {key: uri for key, uri in found.items() if uri}

    def _main_output(self) -> str:
        return self.output_emb_s3 or self.output_prediction_s3
