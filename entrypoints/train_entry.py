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
from gsentry.contract import read_container_env  # noqa: E402
from gsentry.isolation import reexec_with_private_shm  # noqa: E402
from gsentry.job import HostJob, set_flag  # noqa: E402
from gsentry.launcher import TRAIN_TASK_TYPES, split_launch_args, task_script  # noqa: E402
from gsentry.logs import setup_logging  # noqa: E402
from gsentry.model import copy_latest_to, files_to_restore  # noqa: E402
from gsentry.transfer import parse_uri  # noqa: E402

log = logging.getLogger("train_entry")


def build_parser():
    parser = cli.new_parser("train_entry.py")
    parser.add_argument("--graph-data-s3", required=True)
    parser.add_argument("--train-yaml-s3", required=True)
    parser.add_argument("--model-artifact-s3", required=True)
    parser.add_argument("--graph-name", required=True)
    parser.add_argument("--task-type", required=True, choices=TRAIN_TASK_TYPES)
    parser.add_argument("--model-checkpoint-to-load")
    parser.add_argument("--custom-script")
    return parser


def main(argv: list[str]) -> None:
    args, forwarded = cli.parse(build_parser(), argv)
    env = read_container_env()
    setup_logging(args.log_level, env.current_host)
    for flag in ("graph_data_s3", "train_yaml_s3", "model_artifact_s3", "model_checkpoint_to_load"):
        if getattr(args, flag):
            parse_uri(getattr(args, flag), "--" + flag.replace("_", "-"))
    options, script_args = split_launch_args(forwarded, env.num_gpus)
    script = task_script(args.task_type, inference=False, lm_encoder_only=options.lm_encoder_only,
                         custom_script=args.custom_script)
    reexec_with_private_shm()  # every flag is valid: now isolate from other jobs here
    log.info("host %s (%d of %d), task %s, script %s", env.current_host, env.host_rank + 1,
             env.num_hosts, args.task_type, script)

    def body(job: HostJob) -> None:
        job.cluster.rendezvous(options.num_servers)
        graph = job.download_graph(args.graph_data_s3, args.graph_name)
        yaml_path = job.download_file(args.train_yaml_s3, "--train-yaml-s3", job.work / "config")
        gs_args = set_flag(script_args, "--cf", str(yaml_path))
        save_model_path = job.work / "model_checkpoints"
        gs_args = set_flag(gs_args, "--save-model-path", str(save_model_path))
        if args.model_checkpoint_to_load:
            # A checkpoint folder (``.../epoch-2/``) or a whole artifact prefix (its latest checkpoint).
            prefix = parse_uri(args.model_checkpoint_to_load, "--model-checkpoint-to-load")
            checkpoint, files = files_to_restore(job.transfer.list_files(prefix))
            if not files:
                raise cli.InputError(f"--model-checkpoint-to-load {args.model_checkpoint_to_load} holds no "
                                     "GraphStorm model (no model.bin and no epoch-* checkpoint).")
            restore = job.work / "restore_model"
            job.transfer.download_tree(prefix, restore, include=set(files).__contains__)
            gs_args = set_flag(gs_args, "--restore-model-path", str(restore / checkpoint if checkpoint else restore))
        job.cluster.barrier("inputs")

        job.run_graphstorm(script=script, script_args=gs_args, graph=graph, options=options)

        # Every host uploads what it wrote: rank 0 the dense model, each rank its sparse embeddings.
        job.transfer.upload_tree(save_model_path, parse_uri(args.model_artifact_s3, "--model-artifact-s3"))
        if env.is_leader:
            chosen = copy_latest_to(save_model_path, env.model_dir)
            log.info("model %s copied to %s", chosen, env.model_dir)

    HostJob.create(env, "train").run(body)
    log.info("training finished; model artifacts under %s", args.model_artifact_s3)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
