"""
A synthetic ACM-like heterogeneous graph, written for GConstruct or in DGL's chunked format.

The ``gconstruct`` format is parquet plus a GConstruct config; ``chunked`` is DGL's chunked
graph format (see :mod:`graphstorm_provider.data.chunked`).

It mirrors what GraphStorm's ``examples/acm_data.py`` produces for the real ACM data set
(node types ``paper``/``author``/``subject``, the same six relations, a ``feat`` feature on every
node type, a ``label`` on papers), so the example pipeline looks exactly like the documented
one, but needs no download and scales with a knob:

* string node IDs (``p00001``, ``a0042``, ``s007``) so GConstruct's ID remapping, and the
  mapping back to raw IDs at inference, are exercised;
* a learnable signal: paper features are a class centroid plus noise, and every relation is
  homophilous (a paper mostly cites, is written by and is about nodes of its own class), so a
  GNN beats a feature-only model and both beat chance;
* explicit train/val/test split files (GConstruct's ``custom_split_filenames``), because
  GConstruct's own random split is not seeded and results would not be reproducible.

Everything is deterministic for a given :class:`SyntheticAcmSpec` (seeded ``numpy`` Generator).

The same spec gives the same graph, labels and splits in both formats, so results on the two
are comparable. Layout written under the output path in the ``gconstruct`` format
(``config.json`` uses paths relative to it, which is what the GConstruct job's working
directory is)::

    config.json
    nodes/paper.parquet      nid: string, feat: list<float32>, label: int32
    nodes/author.parquet     nid, feat
    nodes/subject.parquet    nid, feat
    edges/<src>_<rel>_<dst>.parquet   src_id: string, dst_id: string
    splits/{train,val,test}.parquet   nid: string (paper IDs)
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graphstorm_provider.data import chunked, storage
from graphstorm_provider.uris import split_s3

log = logging.getLogger(__name__)

GRAPH_CONFIG_FILE = "config.json"
TARGET_NTYPE = "paper"
LABEL_COL = "label"
FEATURE_NAME = "feat"
ID_COL = "nid"
SPLIT_FILES = {"train": "splits/train.parquet", "valid": "splits/val.parquet", "test": "splits/test.parquet"}
GCONSTRUCT_FORMAT = "gconstruct"
CHUNKED_FORMAT = "chunked"
GRAPH_FORMATS = (GCONSTRUCT_FORMAT, CHUNKED_FORMAT)
DEFAULT_GRAPH_NAME = "acm"

# The six relations of GraphStorm's ACM example (forward and reverse of each).
RELATIONS: tuple[tuple[str, str, str], ...] = (
    ("paper", "citing", "paper"),
    ("paper", "cited", "paper"),
    ("paper", "written-by", "author"),
    ("author", "writing", "paper"),
    ("paper", "is-about", "subject"),
    ("subject", "has", "paper"),
)


class SyntheticAcmError(ValueError):
    """An invalid generator parameter; the message names it."""


@dataclass(frozen=True)
class SyntheticAcmSpec:
    """What to generate. ``num_papers`` is the size knob; the rest default from it."""

    num_papers: int = 2500
    num_authors: int | None = None  # default: 4/5 of num_papers
    num_subjects: int | None = None  # default: 4 per class
    num_classes: int = 5
    feat_dim: int = 32
    # Distance of class centroids relative to unit feature noise: low enough that features
    # alone are clearly imperfect, so the graph matters.
    signal: float = 0.25
    # Probability that an edge endpoint is drawn from the paper's own class.
    homophily: float = 0.6
    citations_per_paper: float = 4.0
    train_frac: float = 0.6
    val_frac: float = 0.2
    seed: int = 0

    @property
    def authors(self) -> int:
        return self.num_authors if self.num_authors is not None else max(self.num_classes, self.num_papers * 4 // 5)

    @property
    def subjects(self) -> int:
        return self.num_subjects if self.num_subjects is not None else 4 * self.num_classes

    def validate(self) -> None:
        """Raise :class:`SyntheticAcmError` naming the first bad parameter."""

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise SyntheticAcmError(message)

        for name in ("num_papers", "num_classes", "feat_dim", "seed"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an integer, got {value!r}")
        need(self.num_classes >= 2, f"num_classes must be at least 2, got {self.num_classes}")
        need(
            self.num_papers >= 10 * self.num_classes,
            f"num_papers must be at least 10 x num_classes ({10 * self.num_classes}) so every split "
            f"holds every class, got {self.num_papers}",
        )
        need(
            self.authors >= self.num_classes,
            f"num_authors must be at least num_classes ({self.num_classes}), got {self.authors}",
        )
        need(
            self.subjects >= self.num_classes,
            f"num_subjects must be at least num_classes ({self.num_classes}), got {self.subjects}",
        )
        need(self.feat_dim >= 1, f"feat_dim must be at least 1, got {self.feat_dim}")
        need(self.seed >= 0, f"seed must be non-negative, got {self.seed}")
        need(self.signal >= 0, f"signal must be non-negative, got {self.signal}")
        need(0.0 <= self.homophily <= 1.0, f"homophily must be within [0, 1], got {self.homophily}")
        need(self.citations_per_paper >= 0, f"citations_per_paper must be non-negative, got {self.citations_per_paper}")
        need(0 < self.train_frac < 1, f"train_frac must be within (0, 1), got {self.train_frac}")
        need(0 < self.val_frac < 1, f"val_frac must be within (0, 1), got {self.val_frac}")
        need(
            self.train_frac + self.val_frac < 1,
            f"train_frac + val_frac must leave room for a test split, got {self.train_frac + self.val_frac}",
        )


@dataclass
class SyntheticGraph:
    """The generated graph in memory (indices are positions in the ``*_ids`` arrays)."""

    node_ids: dict[str, list[str]]
    features: dict[str, np.ndarray]
    labels: np.ndarray
    edges: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]
    splits: dict[str, np.ndarray]  # "train"/"valid"/"test" -> paper indices


@dataclass(frozen=True)
class SyntheticAcmSummary:
    """What was written: returned by :func:`generate_synthetic_acm` and printed by the CLI."""

    output_path: str
    graph_config_file: str  # config.json (gconstruct) or metadata.json (chunked), under output_path
    num_classes: int
    num_nodes: dict[str, int]
    num_edges: dict[str, int]
    split_sizes: dict[str, int]
    feat_dim: int
    seed: int
    graph_format: str = GCONSTRUCT_FORMAT
    graph_name: str | None = None  # the chunked metadata's graph_name
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _string_ids(prefix: str, count: int) -> list[str]:
    width = max(4, len(str(count)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def _balanced_classes(rng: np.random.Generator, count: int, num_classes: int) -> np.ndarray:
    """Every class appears (count >= num_classes), in a seeded random order."""
    return rng.permutation(np.arange(count) % num_classes).astype(np.int32)


def _draw_homophilous(
    rng: np.random.Generator, own_class: np.ndarray, target_class: np.ndarray, homophily: float, num_classes: int
) -> np.ndarray:
    """For each entry of ``own_class`` draw a target node, of the same class with prob. ``homophily``."""
    order = np.argsort(target_class, kind="stable")
    counts = np.bincount(target_class, minlength=num_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    same = rng.random(own_class.shape[0]) < homophily
    cls = np.where(same, own_class, rng.integers(0, num_classes, own_class.shape[0]))
    pick = starts[cls] + np.floor(rng.random(own_class.shape[0]) * counts[cls]).astype(np.int64)
    return cast("np.ndarray", order[pick])


def _dedupe(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.unique(np.stack([src, dst], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def build_graph(spec: SyntheticAcmSpec) -> SyntheticGraph:
    """Generate the graph in memory, deterministically from ``spec.seed``."""
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    k, dim = spec.num_classes, spec.feat_dim
    n_pap, n_auth, n_subj = spec.num_papers, spec.authors, spec.subjects

    labels = _balanced_classes(rng, n_pap, k)
    author_class = _balanced_classes(rng, n_auth, k)
    subject_class = (np.arange(n_subj) % k).astype(np.int32)  # a few subjects per class

    # Class centroids are random directions scaled to norm signal * sqrt(dim); with unit noise
    # per dimension this keeps the separability independent of feat_dim.
    centroids = rng.normal(size=(k, dim))
    centroids *= spec.signal * np.sqrt(dim) / np.linalg.norm(centroids, axis=1, keepdims=True)
    feats = {
        "paper": centroids[labels] + rng.normal(size=(n_pap, dim)),
        # Authors and subjects carry a weaker hint of their class: informative neighbours.
        "author": 0.5 * centroids[author_class] + rng.normal(size=(n_auth, dim)),
        "subject": centroids[subject_class] + 0.5 * rng.normal(size=(n_subj, dim)),
    }
    feats = {nt: f.astype(np.float32) for nt, f in feats.items()}

    # paper -> author: 1..4 authors per paper.
    n_written = np.minimum(1 + rng.poisson(1.0, n_pap), 4)
    wp = np.repeat(np.arange(n_pap), n_written)
    wa = _draw_homophilous(rng, labels[wp], author_class, spec.homophily, k)
    wp, wa = _dedupe(wp, wa)
    # paper -> subject: 1..2 subjects per paper.
    n_about = 1 + (rng.random(n_pap) < 0.3).astype(np.int64)
    sp = np.repeat(np.arange(n_pap), n_about)
    ss = _draw_homophilous(rng, labels[sp], subject_class, spec.homophily, k)
    sp, ss = _dedupe(sp, ss)
    # paper -> paper citations, no self loops.
    n_cites = rng.poisson(spec.citations_per_paper, n_pap)
    cs = np.repeat(np.arange(n_pap), n_cites)
    cd = _draw_homophilous(rng, labels[cs], labels, spec.homophily, k)
    keep = cs != cd
    cs, cd = _dedupe(cs[keep], cd[keep])

    edges = {
        ("paper", "citing", "paper"): (cs, cd),
        ("paper", "cited", "paper"): (cd, cs),
        ("paper", "written-by", "author"): (wp, wa),
        ("author", "writing", "paper"): (wa, wp),
        ("paper", "is-about", "subject"): (sp, ss),
        ("subject", "has", "paper"): (ss, sp),
    }

    perm = rng.permutation(n_pap)
    n_train = int(round(spec.train_frac * n_pap))
    n_val = int(round(spec.val_frac * n_pap))
    splits = {
        "train": np.sort(perm[:n_train]),
        "valid": np.sort(perm[n_train : n_train + n_val]),
        "test": np.sort(perm[n_train + n_val :]),
    }
    node_ids = {
        "paper": _string_ids("p", n_pap),
        "author": _string_ids("a", n_auth),
        "subject": _string_ids("s", n_subj),
    }
    return SyntheticGraph(node_ids=node_ids, features=feats, labels=labels, edges=edges, splits=splits)


def edge_file(relation: tuple[str, str, str]) -> str:
    return f"edges/{'_'.join(relation)}.parquet"


def gconstruct_config() -> dict[str, Any]:
    """Return the GConstruct input config for the files :func:`write_graph` writes (paths relative)."""
    nodes: list[dict[str, Any]] = []
    for ntype in ("paper", "author", "subject"):
        node: dict[str, Any] = {
            "node_type": ntype,
            "format": {"name": "parquet"},
            "files": [f"nodes/{ntype}.parquet"],
            "node_id_col": ID_COL,
            "features": [{"feature_col": FEATURE_NAME, "feature_name": FEATURE_NAME}],
        }
        if ntype == TARGET_NTYPE:
            node["labels"] = [
                {
                    "label_col": LABEL_COL,
                    "task_type": "classification",
                    "custom_split_filenames": {**SPLIT_FILES, "column": [ID_COL]},
                    "label_stats_type": "frequency_cnt",
                }
            ]
        nodes.append(node)
    edges = [
        {
            "relation": list(rel),
            "format": {"name": "parquet"},
            "files": [edge_file(rel)],
            "source_id_col": "src_id",
            "dest_id_col": "dst_id",
        }
        for rel in RELATIONS
    ]
    return {"version": "gconstruct-v0.1", "nodes": nodes, "edges": edges}


def _feature_array(feat: np.ndarray) -> pa.Array[Any]:
    # A fixed-size list column reads back (via pandas) as one ndarray per row, which is how
    # GConstruct's parquet reader expects multi-dimensional features.
    return pa.FixedSizeListArray.from_arrays(pa.array(feat.reshape(-1), type=pa.float32()), feat.shape[1])


def write_graph(graph: SyntheticGraph, out_dir: Path) -> list[Path]:
    """Write parquet files and ``config.json`` into a local directory; returns the files."""
    written: list[Path] = []

    def put(table: pa.Table, rel: str) -> None:
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        written.append(path)

    for ntype, ids in graph.node_ids.items():
        columns: dict[str, pa.Array[Any]] = {
            ID_COL: pa.array(ids, type=pa.string()),
            FEATURE_NAME: _feature_array(graph.features[ntype]),
        }
        if ntype == TARGET_NTYPE:
            columns[LABEL_COL] = pa.array(graph.labels, type=pa.int32())
        put(pa.table(columns), f"nodes/{ntype}.parquet")
    for rel, (src, dst) in graph.edges.items():
        src_ids = np.asarray(graph.node_ids[rel[0]], dtype=object)[src]
        dst_ids = np.asarray(graph.node_ids[rel[2]], dtype=object)[dst]
        put(
            pa.table({"src_id": pa.array(src_ids, type=pa.string()), "dst_id": pa.array(dst_ids, type=pa.string())}),
            edge_file(rel),
        )
    paper_ids = np.asarray(graph.node_ids[TARGET_NTYPE], dtype=object)
    for split, split_rel in SPLIT_FILES.items():
        put(pa.table({ID_COL: pa.array(paper_ids[graph.splits[split]], type=pa.string())}), split_rel)
    config_path = out_dir / GRAPH_CONFIG_FILE
    config_path.write_text(json.dumps(gconstruct_config(), indent=2) + "\n", encoding="utf-8")
    written.append(config_path)
    return written


def write_chunked(graph: SyntheticGraph, out_dir: Path, *, graph_name: str, num_chunks: int, seed: int) -> list[Path]:
    """Write the graph in DGL's chunked format: features, label and split masks as node data."""
    n_pap = len(graph.node_ids[TARGET_NTYPE])
    node_data: dict[str, dict[str, np.ndarray]] = {nt: {FEATURE_NAME: feat} for nt, feat in graph.features.items()}
    node_data[TARGET_NTYPE][chunked.LABEL_FEATURE] = graph.labels
    for split, feature in chunked.MASK_FEATURES.items():
        mask = np.zeros(n_pap, dtype=np.int8)  # GConstruct stores its masks as int8 too
        mask[graph.splits[split]] = 1
        node_data[TARGET_NTYPE][feature] = mask
    return chunked.write_chunked_graph(
        graph.node_ids, node_data, graph.edges, out_dir, graph_name=graph_name, num_chunks=num_chunks, seed=seed
    ).files


def generate_synthetic_acm(
    output_path: str,
    spec: SyntheticAcmSpec | None = None,
    *,
    graph_format: str = GCONSTRUCT_FORMAT,
    graph_name: str = DEFAULT_GRAPH_NAME,
    num_chunks: int = chunked.DEFAULT_NUM_CHUNKS,
) -> SyntheticAcmSummary:
    """
    Generate the data set and write it to ``output_path`` (a directory, ``file://`` or ``s3://`` prefix).

    ``gconstruct``: the GConstruct config is ``<output_path>/config.json``; pass ``output_path``
    as the GConstruct job's input and ``config.json`` as its graph config file.
    ``chunked``: DGL's chunked format with ``<output_path>/metadata.json`` (``graph_name`` and
    ``num_chunks`` apply); pass ``output_path`` as the partition job's input and
    ``--metadata-filename metadata.json``.
    """
    spec = spec or SyntheticAcmSpec()
    spec.validate()
    if graph_format not in GRAPH_FORMATS:
        raise SyntheticAcmError(f"graph_format must be one of {', '.join(GRAPH_FORMATS)}, got {graph_format!r}")
    if not isinstance(graph_name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", graph_name):
        raise SyntheticAcmError(f"graph_name must be letters, digits, '_' or '-', got {graph_name!r}")
    if not isinstance(output_path, str) or not output_path.strip():
        raise SyntheticAcmError("output_path must be a non-empty directory, file:// or s3:// URI")
    output_path = output_path.strip()
    if storage.is_s3(output_path):
        try:
            split_s3(output_path)
        except ValueError as err:
            raise SyntheticAcmError(f"output_path: {err}") from None
    else:
        try:
            storage.local_path(output_path)
        except ValueError as err:
            raise SyntheticAcmError(f"output_path: {err}") from None

    graph = build_graph(spec)
    if graph_format == CHUNKED_FORMAT:
        _check_chunks(graph, num_chunks)

    def write(out_dir: Path) -> list[Path]:
        if graph_format == CHUNKED_FORMAT:
            return write_chunked(graph, out_dir, graph_name=graph_name, num_chunks=num_chunks, seed=spec.seed)
        return write_graph(graph, out_dir)

    if storage.is_s3(output_path):
        # Write locally, then upload: parquet writers want a seekable file.
        with tempfile.TemporaryDirectory(prefix="synthetic-acm-") as tmp:
            write(Path(tmp))
            files = storage.upload_dir(Path(tmp), output_path)
    else:
        out_dir = storage.local_path(output_path)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = [str(p) for p in write(out_dir)]

    summary = SyntheticAcmSummary(
        output_path=output_path,
        graph_config_file=chunked.METADATA_FILE if graph_format == CHUNKED_FORMAT else GRAPH_CONFIG_FILE,
        num_classes=spec.num_classes,
        num_nodes={nt: len(ids) for nt, ids in graph.node_ids.items()},
        num_edges={":".join(rel): int(src.shape[0]) for rel, (src, _) in graph.edges.items()},
        split_sizes={name: int(idx.shape[0]) for name, idx in graph.splits.items()},
        feat_dim=spec.feat_dim,
        seed=spec.seed,
        graph_format=graph_format,
        graph_name=graph_name if graph_format == CHUNKED_FORMAT else None,
        files=sorted(files),
    )
    log.info(
        "synthetic ACM graph (%s format) written to %s: %s nodes, %s edges",
        graph_format,
        output_path,
        sum(summary.num_nodes.values()),
        sum(summary.num_edges.values()),
    )
    return summary


def _check_chunks(graph: SyntheticGraph, num_chunks: int) -> None:
    """Fail before writing anything when the chunks cannot all be non-empty."""
    if not isinstance(num_chunks, int) or isinstance(num_chunks, bool) or num_chunks < 1:
        raise SyntheticAcmError(f"num_chunks must be an integer of at least 1, got {num_chunks!r}")
    counts = {nt: len(ids) for nt, ids in graph.node_ids.items()}
    counts.update({chunked.etype_name(rel): int(src.shape[0]) for rel, (src, _) in graph.edges.items()})
    name, smallest = min(counts.items(), key=lambda item: item[1])
    if num_chunks > smallest:
        raise SyntheticAcmError(
            f"num_chunks ({num_chunks}) must not exceed the rows of the smallest type ({name}: {smallest}): "
            f"every chunk needs a row"
        )
