"""Score node-classification results against the synthetic ACM labels (numpy + pyarrow only).

The inference job writes predictions and embeddings as parquet keyed by the raw string node IDs
(``<prefix>/<ntype>/*.parquet`` with columns ``nid`` and ``pred`` / ``emb``, as GraphStorm's
remapping writes them). This reads them back from ``file://`` or ``s3://``, joins on the raw IDs
with the generator's labels and test split, and reports accuracy and coverage.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graphstorm_provider.data import storage
from graphstorm_provider.data.synthetic_acm import ID_COL, LABEL_COL, SPLIT_FILES, TARGET_NTYPE

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


def _predicted_classes(column: pa.ChunkedArray) -> np.ndarray:
    """Class per row: argmax of a probability/logit list, or the value of an integer column."""
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
        rows = column.to_pylist()
        return np.asarray([int(np.argmax(r)) for r in rows], dtype=np.int64)
    return np.asarray(column.to_pylist(), dtype=np.int64)


def evaluate_node_classification(
    raw_graph_uri: str, predictions_uri: str, embeddings_uri: str | None = None, ntype: str = TARGET_NTYPE
) -> Evaluation:
    """Accuracy on the generator's test papers, from the inference job's raw-ID-keyed outputs."""
    papers = read_parquet_dir(storage.join(raw_graph_uri, f"nodes/{ntype}.parquet"))
    label_of = dict(zip(papers.column(ID_COL).to_pylist(), papers.column(LABEL_COL).to_pylist()))
    num_classes = len(set(label_of.values()))
    test_ids = read_parquet_dir(storage.join(raw_graph_uri, SPLIT_FILES["test"])).column(ID_COL).to_pylist()

    preds = read_parquet_dir(storage.join(predictions_uri, ntype))
    predicted = dict(zip(preds.column("nid").to_pylist(), _predicted_classes(preds.column("pred")).tolist()))
    covered = [nid for nid in test_ids if nid in predicted]
    correct = sum(predicted[nid] == label_of[nid] for nid in covered)
    accuracy = correct / len(test_ids) if test_ids else 0.0  # a missing prediction counts as wrong

    embedded: set[str] = set()
    dim = 0
    if embeddings_uri:
        embs = read_parquet_dir(storage.join(embeddings_uri, ntype))
        embedded = set(embs.column("nid").to_pylist())
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
        result.test_accuracy, result.num_test, ntype, result.chance, result.num_test_predicted, result.num_test_embedded,
    )
    return result
