"""
Graph construction entry point (SageMaker Processing job).

``python3 /opt/ml/code/gconstruct_entry.py --graph-name N --graph-config-file REL --log-level L -- <GConstruct flags>``

SageMaker puts ``--input-graph-s3`` in ``/opt/ml/processing/input`` and uploads
``/opt/ml/processing/output``; this runs ``python -m graphstorm.gconstruct.construct_graph`` with
the input folder as working directory (config file paths are relative to it), then writes the
output folder's manifest (``_manifest.json``) into it, last.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsentry import cli
from gsentry.errors import InputError
from gsentry.job import has_flag, set_flag
from gsentry.manifest import write_manifest_file
from gsentry.process import install_stop_handler, run
from gsentry.startup import start

log = logging.getLogger("gconstruct_entry")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.new_parser("gconstruct_entry.py")
    parser.add_argument("--graph-name", required=True)
    parser.add_argument("--graph-config-file", required=True)
    return parser


def gconstruct_argv(
    python: str, config_file: str, output_dir: Path, graph_name: str, forwarded: list[str], log_level: str = "INFO"
) -> list[str]:
    """Build the GConstruct command; our paths win over any copy of them in the forwarded flags."""
    rest = set_flag(forwarded, "--conf-file", None)
    rest = set_flag(rest, "--output-dir", None)
    rest = set_flag(rest, "--graph-name", None)
    if not has_flag(rest, "--logging-level"):
        rest += ["--logging-level", "error" if log_level.upper() in ("CRITICAL", "FATAL") else log_level.lower()]
    return [
        python,
        "-m",
        "graphstorm.gconstruct.construct_graph",
        "--conf-file",
        config_file,
        "--output-dir",
        str(output_dir),
        "--graph-name",
        graph_name,
        *rest,
    ]


def main(argv: list[str]) -> None:
    args, forwarded, env = start(build_parser(), argv)
    rel = PurePosixPath(args.graph_config_file)
    if rel.is_absolute() or ".." in rel.parts:
        raise InputError(
            f"--graph-config-file must be a path relative to the input graph folder, got {args.graph_config_file!r}."
        )
    input_dir, output_dir = env.processing_input, env.processing_output
    if not (input_dir / rel).is_file():
        raise InputError(
            f"--graph-config-file {args.graph_config_file} does not exist under the input graph ({input_dir})."
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    argv_gc = gconstruct_argv(sys.executable, str(rel), output_dir, args.graph_name, forwarded, args.log_level)
    install_stop_handler()
    run("gconstruct", argv_gc, cwd=input_dir)
    # Last: the manifest of the finished output folder (SageMaker uploads the folder afterwards;
    # the local backend uploads the manifest after every other file).
    write_manifest_file(output_dir, job_name=env.job_name, step="gconstruct")
    log.info("graph %s constructed in %s", args.graph_name, output_dir)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
