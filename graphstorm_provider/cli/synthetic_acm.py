"""``gs-sagemaker synthetic-acm``: write the synthetic ACM-like raw graph (parquet + GConstruct config).

The counterpart of GraphStorm's ``python3 acm_data.py --output-path acm_raw``: the output path then
feeds ``gs-sagemaker gconstruct --input-graph-s3 <output-path> --graph-config-file config.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Sequence
from typing import NoReturn

from graphstorm_provider.data.synthetic_acm import SyntheticAcmError, SyntheticAcmSpec, generate_synthetic_acm

PROG = "gs-sagemaker synthetic-acm"


class _Parser(argparse.ArgumentParser):
    """argparse errors become ValueError, which ``main`` prints as one line with exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise SyntheticAcmError(message)


def build_parser() -> argparse.ArgumentParser:
    defaults = SyntheticAcmSpec()
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description="Generate a synthetic ACM-like heterogeneous graph (paper/author/subject) as parquet "
        "files plus the GConstruct config (config.json), deterministic for a seed.",
    )
    parser.add_argument("--output-path", required=True, help="directory, file:///dir or s3://bucket/prefix to write to")
    parser.add_argument("--num-papers", type=int, default=defaults.num_papers,
                        help=f"size knob: number of papers (default {defaults.num_papers}; authors default to 4/5 of it)")
    parser.add_argument("--num-authors", type=int, help="number of authors (default: 4/5 of --num-papers)")
    parser.add_argument("--num-subjects", type=int, help="number of subjects (default: 4 per class)")
    parser.add_argument("--num-classes", type=int, default=defaults.num_classes,
                        help=f"paper classes (default {defaults.num_classes})")
    parser.add_argument("--feat-dim", type=int, default=defaults.feat_dim,
                        help=f"feature dimension of every node type (default {defaults.feat_dim})")
    parser.add_argument("--signal", type=float, default=defaults.signal,
                        help=f"class-centroid strength in paper features (default {defaults.signal})")
    parser.add_argument("--homophily", type=float, default=defaults.homophily,
                        help=f"share of edges drawn within a paper's own class (default {defaults.homophily})")
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
        summary = generate_synthetic_acm(args.output_path, spec)
    except SyntheticAcmError as err:
        # Name the flag the user typed, not the dataclass field.
        raise SyntheticAcmError(re.sub(r"\b(num_\w+|feat_dim|signal|homophily|seed|output_path)\b",
                                       lambda m: "--" + m.group(1).replace("_", "-"), str(err))) from None
    if not args.quiet:
        report = summary.to_dict()
        report["files"] = len(report["files"])
        print(json.dumps(report, indent=2))
    return 0
