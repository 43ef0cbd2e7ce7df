"""
The example DAGs' last step: score the predictions, write ``summary.json``, log where things are.

``write_report`` is the ``report`` step of the DAGs whose runs produce predictions here to score;
``write_summary`` of :func:`run_summary` is the SageMaker example's ``summary`` step, which only
names what the run used.

The summary names exactly the folders the run used (the graph, model, embeddings and
predictions of the attempts whose XComs it was given) and the jobs that wrote them, so it stays
true when a step is cleared and re-run later into a new attempt folder.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from graphstorm_provider.data import storage
from graphstorm_provider.data.evaluate import evaluate_node_classification
from graphstorm_provider.data.synthetic_acm import GCONSTRUCT_FORMAT

log = logging.getLogger("airflow.task")
SUMMARY_NAME = "summary.json"
# scripts/run_local_pipeline.sh looks for this line.
SUMMARY_LOG_LINE = "GraphStorm e2e summary: %s"


def run_summary(
    prepared: dict[str, Any],
    graph: dict[str, Any],
    trained: dict[str, Any],
    inferred: dict[str, Any],
    *,
    graph_step: str = "gconstruct",
) -> dict[str, Any]:
    """
    Return what ``summary.json`` says of a run: its prefix, the folders each step used, the jobs.

    Each argument is a step's XCom: ``prepare``'s, the graph step's, ``train``'s and ``infer``'s.

    :param graph: the XCom of the step that built the graph: GConstruct (``output_graph_s3``) or
        the partition step (``output_data_s3``).
    :param graph_step: that step's name in the summary's ``jobs``.
    """
    return {
        "run_prefix": prepared["run_prefix"],
        "raw_graph": prepared["raw_graph_s3"],
        "graph_format": prepared.get("graph_format", GCONSTRUCT_FORMAT),
        "graph": graph.get("output_graph_s3") or graph["output_data_s3"],
        "model": trained["model_artifact_s3"],
        "embeddings": inferred.get("output_emb_s3"),
        "predictions": inferred["output_prediction_s3"],
        "jobs": {graph_step: graph["job_name"], "train": trained["job_name"], "infer": inferred["job_name"]},
    }


def write_summary(summary: dict[str, Any], *, s3_client: Any = None) -> dict[str, Any]:
    """
    Write ``summary`` (see :func:`run_summary`) as ``<run prefix>/summary.json``, log where things are.

    :param s3_client: the client for an ``s3://`` run prefix (the Airflow connection's).
    :returns: ``summary`` with the URI of ``summary.json`` added as ``summary``: one XCom.
    """
    summary_uri = f"{summary['run_prefix'].rstrip('/')}/{SUMMARY_NAME}"
    with storage.using_s3_client(s3_client):
        storage.write_bytes(summary_uri, json.dumps(summary, indent=2).encode())
    log.info(SUMMARY_LOG_LINE, summary_uri)
    for name in ("model", "embeddings", "predictions"):
        log.info("%-12s %s", name.capitalize() + ":", summary[name])
    return {**summary, "summary": summary_uri}


def write_report(
    prepared: dict[str, Any],
    graph: dict[str, Any],
    trained: dict[str, Any],
    inferred: dict[str, Any],
    *,
    s3_client: Any = None,
    graph_step: str = "gconstruct",
) -> dict[str, Any]:
    """
    Evaluate, write ``<run prefix>/summary.json`` (:func:`write_summary`) and return the summary (one dict).

    Predictions are joined to the raw graph's labels by raw node ID, in whichever format
    ``prepare`` wrote the raw graph (``prepared["graph_format"]``, default ``gconstruct``).
    The arguments are those of :func:`run_summary`.

    :raises ValueError: when inference left test nodes without a prediction or an embedding.
    """
    graph_format = prepared.get("graph_format", GCONSTRUCT_FORMAT)
    with storage.using_s3_client(s3_client):
        evaluation = evaluate_node_classification(
            prepared["raw_graph_s3"],
            inferred["output_prediction_s3"],
            inferred.get("output_emb_s3"),
            graph_format=graph_format,
        )
    log.info(
        "Test accuracy: %.4f on %d test papers (chance %.2f)",
        evaluation.test_accuracy,
        evaluation.num_test,
        evaluation.chance,
    )
    summary = write_summary(
        {**evaluation.to_dict(), **run_summary(prepared, graph, trained, inferred, graph_step=graph_step)},
        s3_client=s3_client,
    )
    if evaluation.missing_predictions or evaluation.missing_embeddings:
        raise ValueError(
            f"inference left test nodes without results: predictions missing for "
            f"{evaluation.num_test - evaluation.num_test_predicted}, embeddings missing for "
            f"{evaluation.num_test - evaluation.num_test_embedded} (e.g. "
            f"{(evaluation.missing_predictions or evaluation.missing_embeddings)[:3]})"
        )
    return summary
