"""
Training job entry point: ``python3 /opt/ml/code/train_entry.py <our flags> -- <GraphStorm flags>``.

Each host downloads its partition, runs its share of GraphStorm's distributed training and
uploads the checkpoints it wrote to ``--model-artifact-s3``; the leader then writes the prefix's
manifest (``_manifest.json``, last) and fills ``/opt/ml/model`` (SageMaker's model directory,
packed as ``model.tar.gz`` from the leader only) with the newest complete checkpoint as the
manifest lists it: every host's files of it (each trainer rank's ``sparse_emb_*.pt``), its own
from its disk, the other hosts' from the model folder (:meth:`gsentry.job.HostJob.upload_model`).
The graph (and ``--model-checkpoint-to-load``) must carry a manifest unless
``--allow-unmanifested-input``.

``--seed N`` among the GraphStorm flags (GraphStorm 0.5 has no such option) is taken out and
seeds every GraphStorm process (:mod:`gsentry.trainer_wrap`). The leader writes ``metrics.json``
(per epoch: mean training loss, validation and test scores, epoch time; :mod:`gsentry.metrics`)
and uploads it next to the model, listed in the manifest: ``<--model-artifact-s3>/metrics.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsentry import (
    cli,
    trainer_wrap,
)
from gsentry.errors import InputError
from gsentry.job import HostJob, set_flag
from gsentry.launcher import TRAIN_TASK_TYPES
from gsentry.metrics import METRICS_FILE_NAME
from gsentry.model import make_save_model_path
from gsentry.startup import check_uris, gsf_parser, prepare_gsf, start

log = logging.getLogger("train_entry")
SEED_FLAG = "--seed"
WRAPPER = Path(trainer_wrap.__file__).resolve()


def pop_seed(args: list[str]) -> tuple[list[str], int | None]:
    """``args`` without ``--seed N`` / ``--seed=N``, and N (the last one given wins)."""
    rest: list[str] = []
    seed: str | None = None
    i = 0
    while i < len(args):
        token = args[i]
        if token == SEED_FLAG:
            if i + 1 >= len(args):
                raise InputError(f"{SEED_FLAG} needs a value")
            seed = args[i + 1]
            i += 2
            continue
        if token.startswith(SEED_FLAG + "="):
            seed = token.split("=", 1)[1]
        else:
            rest.append(token)
        i += 1
    if seed is None:
        return rest, None
    try:
        value = int(seed)
    except ValueError:
        raise InputError(f"{SEED_FLAG} must be an integer, got {seed!r}") from None
    if value < 0:
        raise InputError(f"{SEED_FLAG} must be 0 or more, got {value}")
    return rest, value


def build_parser() -> argparse.ArgumentParser:
    parser = gsf_parser("train_entry.py", yaml_flag="--train-yaml-s3", task_types=TRAIN_TASK_TYPES)
    parser.add_argument("--model-checkpoint-to-load")
    return parser


def main(argv: list[str]) -> None:
    args, forwarded, env = start(build_parser(), argv)
    check_uris(args, ("graph_data_s3", "train_yaml_s3", "model_artifact_s3", "model_checkpoint_to_load"))
    forwarded, seed = pop_seed(list(forwarded))
    launch = prepare_gsf(args, forwarded, env, inference=False, log=log)

    def body(job: HostJob) -> None:
        job.cluster.rendezvous(launch.options.num_servers)
        graph = job.download_graph(args.graph_data_s3, args.graph_name)
        yaml_path = job.download_file(args.train_yaml_s3, "--train-yaml-s3", job.work / "config")
        gs_args = set_flag(launch.script_args, "--cf", str(yaml_path))
        save_model_path = make_save_model_path(job.work)  # made now: GraphStorm's processes race to make it
        gs_args = set_flag(gs_args, "--save-model-path", str(save_model_path))
        if args.model_checkpoint_to_load:
            # A checkpoint folder (``.../epoch-2/``) or a whole artifact prefix (its latest checkpoint).
            model = job.find_model(args.model_checkpoint_to_load, "--model-checkpoint-to-load")
            restore = job.download_model(model, job.work / "restore_model")
            gs_args = set_flag(gs_args, "--restore-model-path", str(restore))
        job.clear_output(args.model_artifact_s3, "--model-artifact-s3")
        job.cluster.barrier("inputs")

        metrics_path = job.work / METRICS_FILE_NAME
        metrics_path.unlink(missing_ok=True)  # never upload an earlier run's
        os.environ[trainer_wrap.METRICS_FILE_ENV] = str(metrics_path)
        if seed is not None:
            os.environ[trainer_wrap.SEED_ENV] = str(seed)
            log.info("seeding GraphStorm's processes with %d", seed)
        job.run_graphstorm(
            script=WRAPPER, script_args=[str(launch.script), *gs_args], graph=graph, options=launch.options
        )

        metrics = {METRICS_FILE_NAME: metrics_path} if env.is_leader and metrics_path.is_file() else None
        job.upload_model(save_model_path, args.model_artifact_s3, "--model-artifact-s3", extra=metrics)
        if metrics:
            log.info("training metrics: %s%s", args.model_artifact_s3, METRICS_FILE_NAME)

    HostJob.create(env, "train", args.allow_unmanifested_input).run(body)
    log.info("training finished; model artifacts under %s", args.model_artifact_s3)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
