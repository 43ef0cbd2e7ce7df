"""
Score node-classification results against the synthetic ACM labels (numpy + pyarrow only).

The inference job writes predictions and embeddings as parquet keyed by the raw string node IDs
(``<prefix>/<ntype>/*.parquet`` with columns ``nid`` and ``pred`` / ``emb``, as GraphStorm's
remapping writes them). This reads them back from ``file://`` or ``s3://``, joins on the raw IDs
with the generator's labels and test split, and reports accuracy and coverage. The labels and the
test split come from the raw graph in either format the generator writes: ``gconstruct``
(``nodes/<ntype>.parquet`` + ``splits/test.parquet``) or ``chunked`` (the ``label`` and
``test_mask`` node data of ``metadata.json``, keyed through ``raw_id_mappings/``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graphstorm_provider.data import chunked, storage
from graphstorm_provider.data.synthetic_acm import (
    CHUNKED_FORMAT,
    GCONSTRUCT_FORMAT,
    GRAPH_FORMATS,
    ID_COL,
    LABEL_COL,
    SPLIT_FILES,
    TARGET_NTYPE,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """Test-set accuracy and coverage of one inference run."""

    test_accuracy: float
    num_classes: int
    num_test: int
    num_test_predicted: int
    num_test_embedded: int
    embedding_dim: int
    missing_predictions: list[str] = field(default_factory=list)  # first few only
    missing_embeddings: list[str] = field(default_factory=list)

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chance": self.chance}


def read_parquet_dir(uri: str) -> pa.Table:
    """All ``*.parquet`` files under a prefix (or one file), concatenated."""
    files = [f for f in storage.list_files(uri) if f.endswith(".parquet")]
    if not files:
        raise FileNotFoundError(f"no parquet files under {uri}")
    tables = [pq.read_table(pa.BufferReader(storage.read_bytes(f))) for f in files]
    return pa.concat_tables(tables)


def _predicted_classes(column: pa.ChunkedArray[Any]) -> np.ndarray:
    """Class per row: argmax of a probability/logit list, or the value of an integer column."""
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
        rows = cast("list[Any]", column.to_pylist())
        return np.asarray([int(np.argmax(r)) for r in rows], dtype=np.int64)
    return np.asarray(column.to_pylist(), dtype=np.int64)


@dataclass(frozen=True)
class GroundTruth:
    """The raw graph's labels and test nodes of one node type, keyed by raw ID."""

    label_of: dict[str, int]
    test_ids: list[str]


def gconstruct_truth(raw_graph_uri: str, ntype: str = TARGET_NTYPE) -> GroundTruth:
    papers = read_parquet_dir(storage.join(raw_graph_uri, f"nodes/{ntype}.parquet"))
    label_of = cast(
        "dict[str, int]", dict(zip(papers.column(ID_COL).to_pylist(), papers.column(LABEL_COL).to_pylist()))
    )
    test_ids = cast(
        "list[str]", read_parquet_dir(storage.join(raw_graph_uri, SPLIT_FILES["test"])).column(ID_COL).to_pylist()
    )
    return GroundTruth(label_of=label_of, test_ids=test_ids)


def chunked_truth(
    raw_graph_uri: str, ntype: str = TARGET_NTYPE, metadata_file: str = chunked.METADATA_FILE
) -> GroundTruth:
    metadata = chunked.read_metadata(raw_graph_uri, metadata_file)
    raw_ids = chunked.read_raw_ids(raw_graph_uri, ntype)
    labels = chunked.read_node_feature(raw_graph_uri, metadata, ntype, chunked.LABEL_FEATURE)
    test_mask = chunked.read_node_feature(raw_graph_uri, metadata, ntype, chunked.MASK_FEATURES["test"])
    if not labels.shape[0] == test_mask.shape[0] == raw_ids.shape[0]:
        raise ValueError(
            f"{raw_graph_uri}: {ntype} has {raw_ids.shape[0]} raw IDs, {labels.shape[0]} labels "
            f"and {test_mask.shape[0]} test-mask rows"
        )
    label_of = dict(zip(raw_ids.tolist(), labels.astype(np.int64).tolist()))
    # In raw-ID order, as the gconstruct format's split file lists them.
    test_ids = sorted(raw_ids[test_mask.astype(bool)].tolist())
    return GroundTruth(label_of=label_of, test_ids=test_ids)


def evaluate_node_classification(
    raw_graph_uri: str,
    predictions_uri: str,
    embeddings_uri: str | None = None,
    ntype: str = TARGET_NTYPE,
    *,
    graph_format: str = GCONSTRUCT_FORMAT,
) -> Evaluation:
    """
    Accuracy on the generator's test papers, from the inference job's raw-ID-keyed outputs.

    :param graph_format: the format ``raw_graph_uri`` was generated in (``gconstruct`` or ``chunked``).
    """
    if graph_format not in GRAPH_FORMATS:
        raise ValueError(f"graph_format must be one of {', '.join(GRAPH_FORMATS)}, got {graph_format!r}")
    truth = (chunked_truth if graph_format == CHUNKED_FORMAT else gconstruct_truth)(raw_graph_uri, ntype)
    label_of, test_ids = truth.label_of, truth.test_ids
    num_classes = len(set(label_of.values()))

    preds = read_parquet_dir(storage.join(predictions_uri, ntype))
    predicted = dict(zip(preds.column("nid").to_pylist(), _predicted_classes(preds.column("pred")).tolist()))
    covered = [nid for nid in test_ids if nid in predicted]
    correct = sum(predicted[nid] == label_of[nid] for nid in covered)
    accuracy = correct / len(test_ids) if test_ids else 0.0  # a missing prediction counts as wrong

    embedded: set[str] = set()
    dim = 0
    if embeddings_uri:
        embs = read_parquet_dir(storage.join(embeddings_uri, ntype))
        embedded = set(cast("list[str]", embs.column("nid").to_pylist()))
        if embs.num_rows:
            dim = len(embs.column("emb")[0].as_py())
    result = Evaluation(
        test_accuracy=accuracy,
        num_classes=num_classes,
        num_test=len(test_ids),
        num_test_predicted=len(covered),
        num_test_embedded=sum(nid in embedded for nid in test_ids),
        embedding_dim=dim,
        missing_predictions=[nid for nid in test_ids if nid not in predicted][:10],
        missing_embeddings=[nid for nid in test_ids if nid not in embedded][:10] if embeddings_uri else [],
    )
    log.info(
        "test accuracy %.4f on %d test %s nodes (chance %.2f); %d predicted, %d embedded",
        result.test_accuracy,
        result.num_test,
        ntype,
        result.chance,
        result.num_test_predicted,
        result.num_test_embedded,
    )
    return result
