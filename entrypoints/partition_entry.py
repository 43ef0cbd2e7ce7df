"""
Distributed partitioning entry point (SageMaker Training job, every host).

``python3 /opt/ml/code/partition_entry.py --graph-data-s3 URI --num-parts N --output-data-s3 URI
--metadata-filename NAME --partition-algorithm random [--skip-partitioning] --log-level L --``

Reads a graph in DGL's chunked graph format and writes DGL's partition layout that GraphStorm
trains on, with no ssh and no DGL tools: each of the job's hosts (met through the rendezvous
led by algo-1) builds ``N / hosts`` partitions itself; the leader writes the partition config
last, once every host finished. See ``gsentry/partition/run.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsentry import cli
from gsentry.errors import InputError
from gsentry.job import HostJob
from gsentry.startup import check_uris, start

log = logging.getLogger("partition_entry")

PARTITION_ALGORITHMS = ("random",)


def build_parser() -> argparse.ArgumentParser:
    parser = cli.new_parser("partition_entry.py")
    parser.add_argument("--graph-data-s3", required=True)
    parser.add_argument("--num-parts", type=int, required=True)
    parser.add_argument("--output-data-s3", required=True)
    parser.add_argument("--metadata-filename", required=True)
    parser.add_argument("--partition-algorithm", default="random", choices=PARTITION_ALGORITHMS)
    parser.add_argument("--skip-partitioning", action="store_true")
    return parser


def main(argv: list[str]) -> None:
    args, forwarded, env = start(build_parser(), argv)
    if forwarded:
        raise InputError(f"partition_entry.py takes no flags after '--', got {' '.join(forwarded)}.")
    check_uris(args, ("graph_data_s3", "output_data_s3"))
    if args.num_parts < 1:
        raise InputError(f"--num-parts must be at least 1, got {args.num_parts}.")
    if args.num_parts % env.num_hosts:
        raise InputError(
            f"--num-parts ({args.num_parts}) must be a multiple of the number of hosts "
            f"({env.num_hosts}): each host builds the same number of partitions."
        )
    rel = PurePosixPath(args.metadata_filename)
    if rel.is_absolute() or ".." in rel.parts or not rel.name:
        raise InputError(
            f"--metadata-filename must be a file name under --graph-data-s3, got {args.metadata_filename!r}."
        )

    from gsentry.partition.run import PartitionRequest, run_partition

    request = PartitionRequest(
        graph_data=args.graph_data_s3,
        output_data=args.output_data_s3,
        metadata_filename=args.metadata_filename,
        num_parts=args.num_parts,
        skip_partitioning=args.skip_partitioning,
    )

    def body(job: HostJob) -> None:
        job.cluster.rendezvous()
        run_partition(job, request)

    HostJob.create(env, "partition").run(body)
    log.info("host %s finished its partitions of %s", env.current_host, args.output_data_s3)


if __name__ == "__main__":
    cli.exit_now(cli.run_main(main))  # no wait for the version-check threads dgl's import starts
