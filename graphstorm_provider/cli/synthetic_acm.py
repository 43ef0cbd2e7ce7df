"""
``gs-sagemaker synthetic-acm``: write the synthetic ACM-like raw graph.

The counterpart of GraphStorm's ``python3 acm_data.py --output-path acm_raw``. With
``--format gconstruct`` (the default: parquet + GConstruct config) the output path then feeds
``gs-sagemaker gconstruct --input-graph-s3 <output-path> --graph-config-file config.json``; with
``--format chunked`` (DGL's chunked graph format, raw IDs as ``raw_id_mappings/``) it feeds
``gs-sagemaker partition --graph-data-s3 <output-path> --metadata-filename metadata.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Sequence

from graphstorm_provider.argparsing import RaisingArgumentParser
from graphstorm_provider.data.chunked import DEFAULT_NUM_CHUNKS, METADATA_FILE
from graphstorm_provider.data.synthetic_acm import (
    DEFAULT_GRAPH_NAME,
    GCONSTRUCT_FORMAT,
    GRAPH_FORMATS,
    SyntheticAcmError,
    SyntheticAcmSpec,
    generate_synthetic_acm,
)
from graphstorm_provider.exit_codes import EXIT_OK

PROG = "gs-sagemaker synthetic-acm"


def build_parser() -> argparse.ArgumentParser:
    defaults = SyntheticAcmSpec()
    parser = RaisingArgumentParser(  # errors: SyntheticAcmError, printed by ``main`` as one line, exit 2
        prog=PROG,
        error_type=SyntheticAcmError,
        allow_abbrev=False,
        description="Generate a synthetic ACM-like heterogeneous graph (paper/author/subject), deterministic "
        "for a seed: parquet files plus the GConstruct config (config.json), or DGL's chunked graph format "
        f"({METADATA_FILE}) with the raw node IDs as raw_id_mappings/.",
    )
    parser.add_argument("--output-path", required=True, help="directory, file:///dir or s3://bucket/prefix to write to")
    parser.add_argument(
        "--format",
        dest="graph_format",
        choices=GRAPH_FORMATS,
        default=GCONSTRUCT_FORMAT,
        help=f"gconstruct: input of the GConstruct job; chunked: input of the partition job "
        f"(pass --metadata-filename {METADATA_FILE}) (default {GCONSTRUCT_FORMAT})",
    )
    parser.add_argument(
        "--graph-name",
        default=DEFAULT_GRAPH_NAME,
        help=f"graph_name of the chunked metadata, which names the partitioned graph "
        f"(--format chunked; default {DEFAULT_GRAPH_NAME})",
    )
    parser.add_argument(
        "--num-chunks",
        type=int,
        default=DEFAULT_NUM_CHUNKS,
        help=f"chunks per node and edge type (--format chunked; default {DEFAULT_NUM_CHUNKS})",
    )
    parser.add_argument(
        "--num-papers",
        type=int,
        default=defaults.num_papers,
        help=f"size knob: number of papers (default {defaults.num_papers}; authors default to 4/5 of it)",
    )
    parser.add_argument("--num-authors", type=int, help="number of authors (default: 4/5 of --num-papers)")
    parser.add_argument("--num-subjects", type=int, help="number of subjects (default: 4 per class)")
    parser.add_argument(
        "--num-classes", type=int, default=defaults.num_classes, help=f"paper classes (default {defaults.num_classes})"
    )
    parser.add_argument(
        "--feat-dim",
        type=int,
        default=defaults.feat_dim,
        help=f"feature dimension of every node type (default {defaults.feat_dim})",
    )
    parser.add_argument(
        "--signal",
        type=float,
        default=defaults.signal,
        help=f"class-centroid strength in paper features (default {defaults.signal})",
    )
    parser.add_argument(
        "--homophily",
        type=float,
        default=defaults.homophily,
        help=f"share of edges drawn within a paper's own class (default {defaults.homophily})",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    spec = SyntheticAcmSpec(
        num_papers=args.num_papers,
        num_authors=args.num_authors,
        num_subjects=args.num_subjects,
        num_classes=args.num_classes,
        feat_dim=args.feat_dim,
        signal=args.signal,
        homophily=args.homophily,
        seed=args.seed,
    )
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = generate_synthetic_acm(
            args.output_path,
            spec,
            graph_format=args.graph_format,
            graph_name=args.graph_name,
            num_chunks=args.num_chunks,
        )
    except SyntheticAcmError as err:
        # Name the flag the user typed, not the dataclass field.
        raise SyntheticAcmError(
            re.sub(
                r"\b(num_\w+|feat_dim|signal|homophily|seed|output_path|graph_name)\b",
                lambda m: "--" + m.group(1).replace("_", "-"),
                str(err),
            )
        ) from None
    if not args.quiet:
        report = summary.to_dict()
        report["files"] = len(report["files"])
        print(json.dumps(report, indent=2))
    return EXIT_OK
