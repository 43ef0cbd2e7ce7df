r"""
``gs-sagemaker compose``: write (and optionally run) an emulated SageMaker cluster.

The flags are those of GraphStorm's ``generate_sagemaker_docker_compose.py``::

    gs-sagemaker compose --image graphstorm:sm --graph-name acm --num-instances 2 \\
        --graph-data-s3 s3://bucket/acm_2p/ --region us-east-1 \\
        training --task-type node_classification --train-yaml-s3 s3://bucket/train.yaml \\
        --model-artifact-s3 s3://bucket/model/ --num-epochs 2

Common flags may come before or after the action; flags this command does not know
are forwarded to GraphStorm unchanged. The job is built by the same step specs as
every other backend, then rendered by :mod:`graphstorm_provider.execution.compose`.
The file is named as GraphStorm's compose generator names it:

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
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from graphstorm_provider.argparsing import RaisingArgumentParser, long_options, mistyped_flag
from graphstorm_provider.aws_env import CREDENTIAL_VARIABLES
from graphstorm_provider.execution.compose import (
    DEFAULT_SHM_SIZE,
    ComposeOptions,
    ComposeSpecError,
    compose_file_name,
)
from graphstorm_provider.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from graphstorm_provider.jobs import COMPOSE_ACTIONS, STEP_SPECS, JobSpec
from graphstorm_provider.jobs.errors import JobSpecError, flag, flag_spellings

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

log = logging.getLogger(__name__)

CREDENTIAL_FLAGS = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
}
if set(CREDENTIAL_FLAGS.values()) != set(CREDENTIAL_VARIABLES):  # the renderer references exactly these
    raise RuntimeError("CREDENTIAL_FLAGS and aws_env.CREDENTIAL_VARIABLES name different variables")
DEFAULT_IMAGE_URL = "graphstorm:sm"
# Common flags of this command that are step-spec fields: the spec's own step arguments for them
# are left out of the action parsers (they are declared once, here, so they may precede the action).
COMMON_SPEC_FIELDS = ("graph_data_s3", "graph_name")
# Spec fields this command spells like GraphStorm's compose generator, for the specs' messages.
FLAG_SPELLINGS = {"instance_count": "--num-instances", "image_url": "--image"}
YAML_FLAGS = {"training": "--train-yaml-s3", "inference": "--infer-yaml-s3"}


class ComposeCliError(ValueError):
    """A bad ``gs-sagemaker compose`` argument; printed as one sentence, exit code 2."""


def _common_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """
    Return the flags shared by every action.

    They are registered on the top parser (with defaults) and again on each action's
    parser with ``SUPPRESS`` defaults, so they can come before or after the action
    without the action parser resetting what was given before it. Each has its
    generator's spelling first and the launch scripts' spelling as an alias.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("common arguments")
    group.add_argument(
        "--image",
        "--image-url",
        dest="image_url",
        default=default(DEFAULT_IMAGE_URL),
        help=f"Local image to run. Default {DEFAULT_IMAGE_URL}.",
    )
    group.add_argument("--graph-name", default=default(None), help="Name of the input graph (required).")
    group.add_argument(
        "--num-instances",
        "--instance-count",
        dest="instance_count",
        type=int,
        default=default(None),
        help="Number of hosts algo-1..N (required).",
    )
    group.add_argument(
        "--graph-data-s3",
        "--input-graph-s3",
        dest="graph_data_s3",
        default=default(None),
        help="S3 (or file://) location of the input graph (required).",
    )
    group.add_argument("--region", default=default(None), help="Region of the S3 buckets (required).")
    group.add_argument("--log-level", default=default("INFO"), help="Log level of the entry points. Default INFO.")
    group.add_argument(
        "--aws-access-key-id", default=default(None), help="Temporary AWS access key ID (never written to the file)."
    )
    group.add_argument(
        "--aws-secret-access-key",
        default=default(None),
        help="Temporary AWS secret access key (never written to the file).",
    )
    group.add_argument(
        "--aws-session-token", default=default(None), help="Temporary AWS session token (never written to the file)."
    )
    # Ours, beyond GraphStorm's compose generator: where the file goes, container resources, and running it.
    group.add_argument(
        "--output-dir", default=default("."), help="Folder for the compose file. Default: the current folder."
    )
    group.add_argument("--gpus", type=int, default=default(0), help="GPUs reserved per container. Default 0 (CPU).")
    group.add_argument(
        "--shm-size",
        default=default(DEFAULT_SHM_SIZE),
        help=f"Shared memory per container. Default {DEFAULT_SHM_SIZE}.",
    )
    group.add_argument(
        "--run", action="store_true", default=default(False), help="Also run the file now (and tear it down after)."
    )
    group.add_argument(
        "--compose-command",
        default=default(None),
        help="Compose tool for --run: 'docker compose', 'docker-compose' or 'podman-compose'.",
    )


def build_parser(prog: str = "gs-sagemaker compose") -> argparse.ArgumentParser:
    # allow_abbrev=False: an abbreviation of one of our flags (--output for --output-dir) is not
    # silently taken as ours; it is refused with "did you mean" (_refuse_flags_not_for_graphstorm).
    # No flag of GraphStorm's step parsers is one (tests/test_cli_forwarding.py).
    parser = RaisingArgumentParser(
        prog=prog,
        error_type=ComposeCliError,
        allow_abbrev=False,
        description="Generate a Docker compose file that emulates a SageMaker cluster (hosts algo-1..N) "
        "for a GraphStorm partitioning, training or inference job. Unknown flags go to GraphStorm.",
    )
    _common_arguments(parser, defaults=True)
    actions = parser.add_subparsers(
        dest="action", metavar="{partitioning,training,inference}", parser_class=RaisingArgumentParser
    )
    for action, step in COMPOSE_ACTIONS.items():
        sub = actions.add_parser(
            action, help=f"compose file for a {action} job", allow_abbrev=False, error_type=ComposeCliError
        )
        _common_arguments(sub, defaults=False)
        # The step's own flags, from its spec (one parser per step).
        STEP_SPECS[step].add_step_arguments(sub.add_argument_group(f"{action} arguments"), omit=COMMON_SPEC_FIELDS)
    return parser


@dataclass(frozen=True)
class ComposeArgs:
    """The parsed compose command line: our flags and the GraphStorm flags forwarded verbatim."""

    namespace: argparse.Namespace
    forwarded: tuple[str, ...]

    @property
    def action(self) -> str:
        return str(self.namespace.action)

    @property
    def spec_class(self) -> type[JobSpec]:
        return STEP_SPECS[COMPOSE_ACTIONS[self.action]]

    def credentials(self) -> dict[str, str]:
        return {
            var: getattr(self.namespace, attr)
            for attr, var in CREDENTIAL_FLAGS.items()
            if getattr(self.namespace, attr)
        }


def _refuse_flags_not_for_graphstorm(forwarded: list[str], parser: argparse.ArgumentParser, action: str) -> None:
    """
    Refuse an unknown flag before ``--`` that is ``gs-sagemaker``'s step commands' or a typo of ours.

    Anything else is GraphStorm's, forwarded; after ``--`` everything is.
    """
    from graphstorm_provider.cli.launch import OWN_FLAGS

    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    known = [*long_options(parser), *long_options(subparsers.choices[action])]
    step = COMPOSE_ACTIONS[action]
    # The SageMaker job's flags compose has no use for (--role, --sm-estimator-parameters, ...): forwarded,
    # GraphStorm would ignore them, and the compose file would hold their values.
    ours = {known_action.dest for p in (parser, subparsers.choices[action]) for known_action in p._actions}
    sagemaker_only = {
        option
        for job_action in STEP_SPECS[step].argument_parser()._actions
        if job_action.dest not in ours
        for option in job_action.option_strings
        if option.startswith("--")
    }
    for arg in forwarded[: forwarded.index("--")] if "--" in forwarded else forwarded:
        name = arg.partition("=")[0]
        if name in OWN_FLAGS:
            raise ComposeCliError(
                f"{name} is a flag of gs-sagemaker's step commands (gs-sagemaker train, ...), not of compose."
            )
        if name in sagemaker_only:
            raise ComposeCliError(
                f"{name} is a flag of the SageMaker job (gs-sagemaker {step}), not of compose {action}, "
                "which runs the containers here."
            )
        if meant := mistyped_flag(arg, known):
            raise ComposeCliError(
                f"{name} is not a flag of gs-sagemaker compose {action} (did you mean {meant}?); "
                "to pass it to GraphStorm as it is, put it after --."
            )


def parse_args(argv: list[str]) -> ComposeArgs:
    """Parse and check the flags; unknown flags are kept, in order, for GraphStorm."""
    parser = build_parser()
    namespace, forwarded = parser.parse_known_args(argv)
    if namespace.action is None:
        raise ComposeCliError(f"an action is required: one of {', '.join(COMPOSE_ACTIONS)}.")
    _refuse_flags_not_for_graphstorm(forwarded, parser, namespace.action)
    if forwarded and forwarded[0] == "--":
        forwarded = forwarded[1:]
    for name in ("graph_name", "instance_count", "graph_data_s3", "region"):
        if getattr(namespace, name) in (None, ""):
            raise ComposeCliError(f"{FLAG_SPELLINGS.get(name) or flag(name)} is required.")
    given = [attr for attr in CREDENTIAL_FLAGS if getattr(namespace, attr)]
    if given and len(given) != len(CREDENTIAL_FLAGS):
        missing = [flag(a) for a in CREDENTIAL_FLAGS if a not in given]
        raise ComposeCliError(
            "--aws-access-key-id, --aws-secret-access-key and --aws-session-token go together; "
            f"missing {', '.join(missing)}."
        )
    return ComposeArgs(namespace, tuple(forwarded))


def file_name(args: ComposeArgs) -> str:
    """GraphStorm's compose generator's file name for the action."""
    ns = args.namespace
    details: tuple[str, ...]
    if ns.action == "partitioning":
        details = (ns.partition_algorithm, f"{ns.num_parts}parts")
    else:
        details = (ns.task_type,)
    return compose_file_name(ns.action, ns.graph_name, ns.instance_count, *details)


# The runs of a graph name a SageMaker job name can hold (GraphStorm's also allow "_", "." and more).
_JOB_NAME_WORD = re.compile(r"[A-Za-z0-9]+")


def build_job(args: ComposeArgs) -> JobRequest:
    """
    Return the JobRequest for the action, built by the same step spec as every other backend.

    The spec's messages name this command's flags (``--num-instances``, ``--train-yaml-s3``, ...).
    """
    spec_class = args.spec_class
    given = vars(args.namespace)
    kwargs = {f.name: given[f.name] for f in fields(spec_class) if f.name in given}
    kwargs.update(
        role="local",  # no role is assumed locally; the specs want a non-empty value
        instance_type="local",
        graphstorm_args=args.forwarded,
    )
    if "graph_name" not in kwargs:  # partitioning: the graph name goes in the job (and container) names
        kwargs["task_name"] = "-".join(("gs-partition", *_JOB_NAME_WORD.findall(args.namespace.graph_name)))
    spellings = dict(FLAG_SPELLINGS)
    if args.action in YAML_FLAGS:
        spellings["yaml_s3"] = YAML_FLAGS[args.action]
    with flag_spellings(spellings):
        return spec_class(**kwargs).build()


def options_for(args: ComposeArgs) -> ComposeOptions:
    return ComposeOptions(gpus=args.namespace.gpus, shm_size=args.namespace.shm_size)


def run(argv: list[str]) -> int:
    """Entry of the subcommand: returns the process exit code."""
    from graphstorm_provider.execution.compose import plan_mounts, prepare_mount_sources, write_compose

    try:
        try:
            args = parse_args(argv)
        except SystemExit as done:  # -h/--help
            return int(done.code or 0)
        job = build_job(args)
        options = options_for(args)
        path = Path(args.namespace.output_dir) / file_name(args)
        write_compose(job, path, options)
        # Bind-mount sources (file:// outputs) must exist before `compose up`.
        prepare_mount_sources(plan_mounts(job))
    except (ComposeCliError, ComposeSpecError, JobSpecError) as err:
        print(f"gs-sagemaker compose: error: {err}", file=sys.stderr)
        return EXIT_USAGE
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
        return EXIT_OK
    return _run_file(args, job, options, path)


def _run_file(args: ComposeArgs, job: JobRequest, options: ComposeOptions, path: Path) -> int:
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
        return EXIT_USAGE
    except ComposeJobError as err:
        print(f"gs-sagemaker compose: {err}", file=sys.stderr)
        return err.exit_code or EXIT_FAILED
    except KeyboardInterrupt:
        runner.stop()
        return EXIT_INTERRUPTED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
