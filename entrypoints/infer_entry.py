"""
Inference job entry point: ``python3 /opt/ml/code/infer_entry.py <our flags> -- <GraphStorm flags>``.

Each host downloads its partition, the raw node ID mappings and the model, runs its share of
GraphStorm's distributed inference, remaps its embeddings and predictions to the raw node IDs
with GraphStorm's remap step (parquet, one folder per node type) and uploads them to
``--output-emb-s3`` / ``--output-prediction-s3``, each with its manifest last. The graph and the
model must carry a manifest unless ``--allow-unmanifested-input``; the model is the newest
complete checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsentry import cli
from gsentry.errors import InputError
from gsentry.job import HostJob, has_flag, set_flag
from gsentry.launcher import INFER_TASK_TYPES, PREDICTION_TASK_TYPES, remap_command
from gsentry.startup import check_uris, gsf_parser, prepare_gsf, start

log = logging.getLogger("infer_entry")


def build_parser() -> argparse.ArgumentParser:
    parser = gsf_parser("infer_entry.py", yaml_flag="--infer-yaml-s3", task_types=INFER_TASK_TYPES)
    parser.add_argument("--output-emb-s3")
    parser.add_argument("--output-prediction-s3")
    parser.add_argument("--raw-node-mappings-s3")
    return parser


def validate(args: argparse.Namespace) -> None:
    check_uris(
        args,
        (
            "graph_data_s3",
            "infer_yaml_s3",
            "model_artifact_s3",
            "output_emb_s3",
            "output_prediction_s3",
            "raw_node_mappings_s3",
        ),
    )
    if not args.output_emb_s3 and not args.output_prediction_s3:
        raise InputError("give --output-emb-s3 and/or --output-prediction-s3: inference would produce nothing.")
    if args.output_prediction_s3 and args.task_type not in PREDICTION_TASK_TYPES and not args.custom_script:
        raise InputError(
            f"--output-prediction-s3 is not available for --task-type {args.task_type} "
            "(it makes no predictions); use --output-emb-s3."
        )
    if args.task_type == "compute_emb" and not args.output_emb_s3:
        raise InputError("--task-type compute_emb needs --output-emb-s3.")


def main(argv: list[str]) -> None:
    args, forwarded, env = start(build_parser(), argv)
    validate(args)
    launch = prepare_gsf(args, forwarded, env, inference=True, log=log)

    def body(job: HostJob) -> None:
        job.cluster.rendezvous(launch.options.num_servers)
        model = job.find_model(args.model_artifact_s3, "--model-artifact-s3")  # before the graph: fail fast
        graph = job.download_graph(args.graph_data_s3, args.graph_name, args.raw_node_mappings_s3)
        yaml_path = job.download_file(args.infer_yaml_s3, "--infer-yaml-s3", job.work / "config")

        restore = job.download_model(model, job.work / "model")
        log.info(
            "restoring model from %s%s", args.model_artifact_s3, f" ({model.checkpoint})" if model.checkpoint else ""
        )

        out = job.work / "infer_output"
        emb_dir, pred_dir = out / "embs", out / "predict"
        gs_args = set_flag(launch.script_args, "--cf", str(yaml_path))
        gs_args = set_flag(gs_args, "--restore-model-path", str(restore))
        gs_args = set_flag(gs_args, "--save-embed-path", str(emb_dir) if args.output_emb_s3 else None)
        gs_args = set_flag(gs_args, "--save-prediction-path", str(pred_dir) if args.output_prediction_s3 else None)
        if args.output_emb_s3 and not has_flag(gs_args, "--use-mini-batch-infer"):
            # GraphStorm saves node embeddings at inference only with full-graph inference.
            gs_args += ["--use-mini-batch-infer", "false"]
        if args.output_emb_s3:
            job.clear_output(args.output_emb_s3, "--output-emb-s3")
        if args.output_prediction_s3:
            job.clear_output(args.output_prediction_s3, "--output-prediction-s3")
        job.cluster.barrier("inputs")

        ip_config, _ = job.run_graphstorm(
            script=launch.script, script_args=gs_args, graph=graph, options=launch.options
        )

        if launch.options.do_nid_remap:
            job.run_command(
                remap_command(
                    python=sys.executable,
                    script_args=gs_args,
                    part_config=graph.part_config,
                    ip_config=ip_config,
                    host_rank=env.host_rank,
                    num_hosts=env.num_hosts,
                    options=launch.options,
                )
            )
        # Each output: every host's share, then its manifest (written last, by the leader).
        if args.output_emb_s3:
            job.upload_output(emb_dir, args.output_emb_s3, "--output-emb-s3")
        if args.output_prediction_s3:
            job.upload_output(pred_dir, args.output_prediction_s3, "--output-prediction-s3")

    HostJob.create(env, "infer", args.allow_unmanifested_input).run(body)
    log.info("inference finished")


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
