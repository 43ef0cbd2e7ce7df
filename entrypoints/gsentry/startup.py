"""
How every entry point starts: parse our flags, read the container contract, set up logging.

Also what train and infer share before their hosts meet (flags, URI checks, the GraphStorm
script and launcher options, the private /dev/shm).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gsentry import cli
from gsentry.contract import ContainerEnv, read_container_env
from gsentry.isolation import reexec_with_private_shm
from gsentry.launcher import LaunchOptions, split_launch_args, task_script
from gsentry.logs import setup_logging
from gsentry.manifest import ALLOW_UNMANIFESTED_ENV, ALLOW_UNMANIFESTED_FLAG
from gsentry.transfer import parse_uri


def start(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str], ContainerEnv]:
    """``(our flags, GraphStorm's flags, this host's container environment)``, logging set up."""
    args, forwarded = cli.parse(parser, argv)
    env = read_container_env()
    setup_logging(args.log_level, env.current_host)
    return args, forwarded, env


def gsf_parser(prog: str, *, yaml_flag: str, task_types: Sequence[str]) -> argparse.ArgumentParser:
    """Build the flags train and infer share (``--train-yaml-s3`` / ``--infer-yaml-s3`` is ``yaml_flag``)."""
    parser = cli.new_parser(prog)
    parser.add_argument("--graph-data-s3", required=True)
    parser.add_argument(yaml_flag, required=True)
    parser.add_argument("--model-artifact-s3", required=True)
    parser.add_argument("--graph-name", required=True)
    parser.add_argument("--task-type", required=True, choices=task_types)
    parser.add_argument("--custom-script")
    parser.add_argument(
        ALLOW_UNMANIFESTED_FLAG,
        dest="allow_unmanifested_input",
        action="store_true",
        help="take input prefixes without a manifest (data made outside the pipeline); "
        f"also ${ALLOW_UNMANIFESTED_ENV}=1",
    )
    return parser


def check_uris(args: argparse.Namespace, dests: Sequence[str]) -> None:
    """Every given URI flag among ``dests`` (argparse names) is an s3:// or file:// URI."""
    for dest in dests:
        if getattr(args, dest):
            parse_uri(getattr(args, dest), "--" + dest.replace("_", "-"))


@dataclass(frozen=True)
class GsfLaunch:
    """What a train or infer host runs: the GraphStorm script, its arguments, launcher options."""

    script: Path
    script_args: list[str]
    options: LaunchOptions


def prepare_gsf(
    args: argparse.Namespace, forwarded: list[str], env: ContainerEnv, *, inference: bool, log: logging.Logger
) -> GsfLaunch:
    """
    Split the forwarded flags, pick the task's script, then isolate this job's /dev/shm.

    Call once every flag is valid: the private /dev/shm re-executes the entry point.
    """
    options, script_args = split_launch_args(forwarded, env.num_gpus)
    script = task_script(
        args.task_type, inference=inference, lm_encoder_only=options.lm_encoder_only, custom_script=args.custom_script
    )
    reexec_with_private_shm()  # every flag is valid: now isolate from other jobs here
    log.info(
        "host %s (%d of %d), task %s, script %s",
        env.current_host,
        env.host_rank + 1,
        env.num_hosts,
        args.task_type,
        script,
    )
    return GsfLaunch(script=script, script_args=script_args, options=options)
