"""``gs-sagemaker compose``: write (and optionally run) an emulated SageMaker cluster.

The flags are those of GraphStorm's ``generate_sagemaker_docker_compose.py``::

    gs-sagemaker compose --image graphstorm:sm --graph-name acm --num-instances 2 \\
        --graph-data-s3 s3://bucket/acm_2p/ --region us-east-1 \\
        training --task-type node_classification --train-yaml-s3 s3://bucket/train.yaml \\
        --model-artifact-s3 s3://bucket/model/ --num-epochs 2

Common flags may come before or after the action; flags this command does not know
are forwarded to GraphStorm unchanged. The job is built by the same step specs as
every other backend, then rendered by :mod:`graphstorm_provider.execution.compose`.
The file is named as the seed names it:

* ``docker-compose-partitioning-<graph>-<N>workers-<algorithm>-<parts>parts.yaml``
* ``docker-compose-training-<graph>-<N>workers-<task type>.yaml``
* ``docker-compose-inference-<graph>-<N>workers-<task type>.yaml``

AWS credentials given with ``--aws-access-key-id`` & co. are never written into the
file: it references them by name, and ``--run`` hands the values to the compose
process through its environment only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from graphstorm_provider.execution.compose import CREDENTIAL_VARIABLES, ComposeOptions, ComposeSpecError

log = logging.getLogger(__name__)

ACTIONS = ("partitioning", "training", "inference")
CREDENTIAL_FLAGS = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
}
assert set(CREDENTIAL_FLAGS.values()) == set(CREDENTIAL_VARIABLES)
# Spec (launch script) flag -> the compose generator's flag for the same thing.
SPEC_FLAG_NAMES = {"--instance-count": "--num-instances", "--image-url": "--image"}


class ComposeCliError(ValueError):
    """A bad ``gs-sagemaker compose`` argument; printed as one sentence, exit code 2."""


def _common_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The flags shared by every action.

    They are registered on the top parser (with defaults) and again on each action's
    parser with ``SUPPRESS`` defaults, so they can come before or after the action
    without the action parser resetting what was given before it.
    """

    def default(value):
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("common arguments")
    group.add_argument("--image", default=default("graphstorm:sm"), help="Local image to run. Default graphstorm:sm.")
    group.add_argument("--graph-name", default=default(None), help="Name of the input graph (required).")
    group.add_argument("--num-instances", type=int, default=default(None), help="Number of hosts algo-1..N (required).")
    group.add_argument("--graph-data-s3", default=default(None), help="S3 (or file://) location of the input graph (required).")
    group.add_argument("--region", default=default(None), help="Region of the S3 buckets (required).")
    group.add_argument("--log-level", default=default("INFO"), help="Log level of the entry points. Default INFO.")
    group.add_argument("--aws-access-key-id", default=default(None), help="Temporary AWS access key ID (never written to the file).")
    group.add_argument("--aws-secret-access-key", default=default(None), help="Temporary AWS secret access key (never written to the file).")
    group.add_argument("--aws-session-token", default=default(None), help="Temporary AWS session token (never written to the file).")
    # Ours, beyond the seed: where the file goes, container resources, and running it.
    group.add_argument("--output-dir", default=default("."), help="Folder for the compose file. Default: the current folder.")
    group.add_argument("--gpus", type=int, default=default(0), help="GPUs reserved per container. Default 0 (CPU).")
    group.add_argument("--shm-size", default=default("4gb"), help="Shared memory per container. Default 4gb.")
    group.add_argument("--run", action="store_true", default=default(False), help="Also run the file now (and tear it down after).")
    group.add_argument("--compose-command", default=default(None), help="Compose tool for --run: 'docker compose', 'docker-compose' or 'podman-compose'.")


def _action_arguments(sub: argparse.ArgumentParser, action: str) -> None:
    group = sub.add_argument_group(f"{action} arguments")
    if action == "partitioning":
        group.add_argument("--num-parts", type=int, required=True, help="Number of partitions to generate.")
        group.add_argument("--output-data-s3", required=True, help="Prefix under which the partitions are written.")
        group.add_argument("--skip-partitioning", action="store_true", help="Reuse partition assignments under the output.")
        group.add_argument("--metadata-filename", default="metadata.json", help="Chunked-format metadata JSON. Default metadata.json.")
        group.add_argument("--partition-algorithm", default="random", help="Partition algorithm. Only 'random'.")
        return
    group.add_argument("--task-type", required=True, help="node_classification, node_regression, edge_classification, edge_regression or link_prediction.")
    group.add_argument("--model-artifact-s3", required=True, help="Prefix of the model artifacts (written by training, read by inference).")
    group.add_argument("--custom-script", default=None, help="Custom script inside the image to run instead of GraphStorm's.")
    if action == "training":
        group.add_argument("--train-yaml-s3", required=True, help="S3 location of the training YAML.")
        group.add_argument("--model-checkpoint-to-load", default=None, help="Checkpoint to start from.")
    else:
        group.add_argument("--infer-yaml-s3", required=True, help="S3 location of the inference YAML.")
        group.add_argument("--output-emb-s3", default=None, help="Where to store node embeddings.")
        group.add_argument("--output-prediction-s3", default=None, help="Where to store predictions.")
        group.add_argument("--raw-node-mappings-s3", default=None, help="Raw node ID mappings (GConstruct output).")
        group.add_argument("--model-sub-path", default=None, help="Folder of one checkpoint under --model-artifact-s3.")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so errors print as one sentence."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ComposeCliError(message)


def build_parser(prog: str = "gs-sagemaker compose") -> argparse.ArgumentParser:
    # allow_abbrev=False: a GraphStorm flag such as --output must be forwarded, not taken
    # for an abbreviation of our --output-dir.
    parser = _Parser(
        prog=prog,
        allow_abbrev=False,
        description="Generate a Docker compose file that emulates a SageMaker cluster (hosts algo-1..N) "
        "for a GraphStorm partitioning, training or inference job. Unknown flags go to GraphStorm.",
    )
    _common_arguments(parser, defaults=True)
    actions = parser.add_subparsers(dest="action", metavar="{partitioning,training,inference}", parser_class=_Parser)
    for action in ACTIONS:
        sub = actions.add_parser(action, help=f"compose file for a {action} job", allow_abbrev=False)
        _common_arguments(sub, defaults=False)
        _action_arguments(sub, action)
    return parser


@dataclass(frozen=True)
class ComposeArgs:
    namespace: argparse.Namespace
    forwarded: tuple[str, ...]

    @property
    def action(self) -> str:
        return self.namespace.action

    def credentials(self) -> dict[str, str]:
        return {
            var: getattr(self.namespace, attr)
            for attr, var in CREDENTIAL_FLAGS.items()
            if getattr(self.namespace, attr)
        }


def parse_args(argv: list[str]) -> ComposeArgs:
    """Parse and check the flags; unknown flags are kept, in order, for GraphStorm."""
    parser = build_parser()
    namespace, forwarded = parser.parse_known_args(argv)
    if forwarded and forwarded[0] == "--":
        forwarded = forwarded[1:]
    if namespace.action is None:
        raise ComposeCliError(f"an action is required: one of {', '.join(ACTIONS)}.")
    for name in ("graph_name", "num_instances", "graph_data_s3", "region"):
        if getattr(namespace, name) in (None, ""):
            raise ComposeCliError(f"--{name.replace('_', '-')} is required.")
    if namespace.num_instances < 1:
        raise ComposeCliError(f"--num-instances must be at least 1, got {namespace.num_instances}.")
    given = [attr for attr in CREDENTIAL_FLAGS if getattr(namespace, attr)]
    if given and len(given) != len(CREDENTIAL_FLAGS):
        missing = [f"--{a.replace('_', '-')}" for a in CREDENTIAL_FLAGS if a not in given]
        raise ComposeCliError(
            "--aws-access-key-id, --aws-secret-access-key and --aws-session-token go together; "
            f"missing {', '.join(missing)}."
        )
    if namespace.action == "partitioning" and namespace.partition_algorithm != "random":
        raise ComposeCliError(
            f"--partition-algorithm must be 'random' (the only one supported), got {namespace.partition_algorithm!r}."
        )
    return ComposeArgs(namespace, tuple(forwarded))


def compose_file_name(args: ComposeArgs) -> str:
    """The seed's file name for the action."""
    ns = args.namespace
    prefix = f"docker-compose-{ns.action}-{ns.graph_name}-{ns.num_instances}workers"
    if ns.action == "partitioning":
        return f"{prefix}-{ns.partition_algorithm}-{ns.num_parts}parts.yaml"
    return f"{prefix}-{ns.task_type}.yaml"


def build_job(args: ComposeArgs):
    """The JobRequest for the action, built by the same step spec as every other backend."""
    ns = args.namespace
    common = dict(
        image_url=ns.image,
        role="local",  # no role is assumed locally; the specs want a non-empty value
        instance_type="local",
        instance_count=ns.num_instances,
        region=ns.region,
        log_level=ns.log_level,
        graph_data_s3=ns.graph_data_s3,
        graphstorm_args=args.forwarded,
    )
    if ns.action == "partitioning":
        from graphstorm_provider.jobs.partition import PartitionSpec

        spec = PartitionSpec(
            num_parts=ns.num_parts,
            output_data_s3=ns.output_data_s3,
            metadata_filename=ns.metadata_filename,
            partition_algorithm=ns.partition_algorithm,
            skip_partitioning=ns.skip_partitioning,
            # The graph name in the job (and container) names; "_" is not allowed there.
            task_name="gs-partition-" + ns.graph_name.replace("_", "-").strip("-"),
            **common,
        )
    elif ns.action == "training":
        from graphstorm_provider.jobs.train import TrainSpec

        spec = TrainSpec(
            yaml_s3=ns.train_yaml_s3,
            model_artifact_s3=ns.model_artifact_s3,
            model_checkpoint_to_load=ns.model_checkpoint_to_load,
            graph_name=ns.graph_name,
            task_type=ns.task_type,
            custom_script=ns.custom_script,
            **common,
        )
    else:
        from graphstorm_provider.jobs.infer import InferSpec

        spec = InferSpec(
            yaml_s3=ns.infer_yaml_s3,
            model_artifact_s3=ns.model_artifact_s3,
            model_sub_path=ns.model_sub_path,
            output_emb_s3=ns.output_emb_s3,
            output_prediction_s3=ns.output_prediction_s3,
            raw_node_mappings_s3=ns.raw_node_mappings_s3,
            graph_name=ns.graph_name,
            task_type=ns.task_type,
            custom_script=ns.custom_script,
            **common,
        )
    return spec.build()


def options_for(args: ComposeArgs) -> ComposeOptions:
    return ComposeOptions(gpus=args.namespace.gpus, shm_size=args.namespace.shm_size)


def run(argv: list[str]) -> int:
    """Entry of the subcommand: returns the process exit code."""
    from graphstorm_provider.execution.compose import plan_mounts, prepare_mount_sources, write_compose
    from graphstorm_provider.jobs.errors import JobSpecError

    try:
        try:
            args = parse_args(argv)
        except SystemExit as done:  # -h/--help
            return int(done.code or 0)
        job = build_job(args)
        options = options_for(args)
        path = Path(args.namespace.output_dir) / compose_file_name(args)
        write_compose(job, path, options)
        # Bind-mount sources (file:// outputs) must exist before `compose up`.
        prepare_mount_sources(plan_mounts(job))
    except (ComposeCliError, ComposeSpecError, JobSpecError) as err:
        # The specs name the launch scripts' flags; say them as this command spells them.
        message = str(err)
        names = dict(SPEC_FLAG_NAMES)
        if "args" in locals():
            names["--yaml-s3"] = "--infer-yaml-s3" if args.action == "inference" else "--train-yaml-s3"
        for spec_flag, our_flag in names.items():
            message = message.replace(spec_flag, our_flag)
        print(f"gs-sagemaker compose: error: {message}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    if args.credentials():
        print(
            "The file passes AWS credentials by name: "
            + ", ".join(CREDENTIAL_VARIABLES)
            + " must be set in the environment that runs compose"
            + (" (done for you by --run)." if args.namespace.run else ".")
        )
    if not args.namespace.run:
        print(f"Run it with: docker compose -f {path} up   (then: docker compose -f {path} down)")
        return 0
    return _run_file(args, job, options, path)


def _run_file(args: ComposeArgs, job, options: ComposeOptions, path: Path) -> int:
    from graphstorm_provider.execution.compose_runner import ComposeJobError, ComposeJobRunner
    from graphstorm_provider.execution.compose_tool import ComposeToolError

    env = {**os.environ, **args.credentials()}
    runner = ComposeJobRunner(
        job,
        env=env,
        log=lambda line: print(line, flush=True),
        compose_command=args.namespace.compose_command,
        options=options,
        work_dir=path.parent,
    )
    runner.compose_file = path
    try:
        runner.run()
    except ComposeToolError as err:
        print(f"gs-sagemaker compose: error: {err}", file=sys.stderr)
        return 2
    except ComposeJobError as err:
        print(f"gs-sagemaker compose: {err}", file=sys.stderr)
        return err.exit_code or 1
    except KeyboardInterrupt:
        runner.stop()
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
