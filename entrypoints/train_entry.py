"""Training job entry point: ``python3 /opt/ml/code/train_entry.py <our flags> -- <GraphStorm flags>``.

Each host downloads its partition, runs its share of GraphStorm's distributed training and
uploads the checkpoints it wrote to ``--model-artifact-s3``; the leader also copies the latest
checkpoint into ``/opt/ml/model`` (SageMaker's model directory).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsentry import cli  # noqa: E402
from gsentry.job import HostJob, set_flag  # noqa: E402
from gsentry.launcher import TRAIN_TASK_TYPES  # noqa: E402
from gsentry.model import copy_latest_to  # noqa: E402
from gsentry.startup import check_uris, gsf_parser, prepare_gsf, start  # noqa: E402
from gsentry.transfer import parse_uri  # noqa: E402

log = logging.getLogger("train_entry")


def build_parser():
    parser = gsf_parser("train_entry.py", yaml_flag="--train-yaml-s3", task_types=TRAIN_TASK_TYPES)
    parser.add_argument("--model-checkpoint-to-load")
    return parser


def main(argv: list[str]) -> None:
    args, forwarded, env = start(build_parser(), argv)
    check_uris(args, ("graph_data_s3", "train_yaml_s3", "model_artifact_s3", "model_checkpoint_to_load"))
    launch = prepare_gsf(args, forwarded, env, inference=False, log=log)

    def body(job: HostJob) -> None:
        job.cluster.rendezvous(launch.options.num_servers)
        graph = job.download_graph(args.graph_data_s3, args.graph_name)
        yaml_path = job.download_file(args.train_yaml_s3, "--train-yaml-s3", job.work / "config")
        gs_args = set_flag(launch.script_args, "--cf", str(yaml_path))
        save_model_path = job.work / "model_checkpoints"
        gs_args = set_flag(gs_args, "--save-model-path", str(save_model_path))
        if args.model_checkpoint_to_load:
            # A checkpoint folder (``.../epoch-2/``) or a whole artifact prefix (its latest checkpoint).
            model = job.find_model(args.model_checkpoint_to_load, "--model-checkpoint-to-load")
            restore = job.download_model(model, job.work / "restore_model")
            gs_args = set_flag(gs_args, "--restore-model-path", str(restore))
        job.cluster.barrier("inputs")

        job.run_graphstorm(script=launch.script, script_args=gs_args, graph=graph, options=launch.options)

        # Every host uploads what it wrote: rank 0 the dense model, each rank its sparse embeddings.
        job.transfer.upload_tree(save_model_path, parse_uri(args.model_artifact_s3, "--model-artifact-s3"))
        if env.is_leader:
            chosen = copy_latest_to(save_model_path, env.model_dir)
            log.info("model %s copied to %s", chosen, env.model_dir)

    HostJob.create(env, "train").run(body)
    log.info("training finished; model artifacts under %s", args.model_artifact_s3)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
