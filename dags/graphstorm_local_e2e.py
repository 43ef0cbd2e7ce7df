"""GraphStorm end to end on one machine: synthetic ACM graph -> GConstruct -> train -> infer.

No AWS account and no Docker needed: with ``instance_type="local"`` (the default) every step runs
the same container entry points SageMaker runs, in the local GraphStorm runtime, against an
emulated SageMaker environment. Switch ``instance_type`` to an ``ml.*`` type (and set a real
``image_url``, ``role`` and an ``s3://`` ``base_uri``) to run the same DAG on SageMaker.

Tasks
-----
``prepare``     writes the synthetic raw graph (parquet + GConstruct ``config.json``) and the
                GraphStorm YAML under the run's prefix.
``gconstruct``  builds the partitioned graph (SageMaker Processing job).
``train``       trains an RGCN node classifier on ``paper`` (SageMaker Training job).
``infer``       writes embeddings and predictions keyed by the raw string node IDs.
``report``      scores the predictions on the test papers, writes ``summary.json`` and logs where
                the model, embeddings and predictions are.

Every path lives under one per-run prefix ``<base_uri>/<run id>/`` (``file://`` or ``s3://``), so
runs never overwrite each other. Steps are wired through XCom (``train.output[...]``).
"""

from __future__ import annotations

import os
import re
import shlex
from datetime import datetime

from airflow.sdk import DAG, Param, task

from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.infer import GSInferOperator
from graphstorm_provider.operators.train import GSTrainOperator

DAG_ID = "graphstorm_local_e2e"
TASK_TYPE = "node_classification"
AWS_CONN_ID = "aws_default"  # the operators' default too
# The default base can be moved without editing the DAG (e.g. by the README's main script).
DEFAULT_BASE_URI = os.environ.get("GRAPHSTORM_E2E_BASE_URI", "file:///tmp/graphstorm-airflow/runs")


def run_prefix(base_uri: str, run_id: str) -> str:
    """``<base_uri>/<run id made safe>``: run ids hold ':' and '+', unwelcome in paths and keys."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.") or "run"
    return f"{base_uri.rstrip('/')}/{safe}"


def s3_client_for(uri: str):
    """The Airflow connection's S3 client for an ``s3://`` base (credentials, region, endpoint)."""
    if not uri.startswith("s3://"):
        return None
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def hyperparameters(params: dict) -> str:
    """The exposed hyperparameters as GraphStorm flags (one string; the operators split it)."""
    from graphstorm_provider.data.train_config import hyperparameter_args

    return shlex.join(
        hyperparameter_args(
            num_epochs=int(params["num_epochs"]),
            hidden_size=int(params["hidden_size"]),
            num_layers=int(params["num_layers"]),
            fanout=int(params["fanout"]),
            batch_size=int(params["batch_size"]),
            lr=float(params["lr"]),
        )
    )


PREFIX = "{{ run_prefix(params.base_uri, run_id) }}"
# What the three GraphStorm operators share.
JOB_ARGS = {
    "image_url": "{{ params.image_url }}",
    "role": "{{ params.role }}",
    "instance_type": "{{ params.instance_type }}",
    "region": "{{ params.region }}",
}

with DAG(
    dag_id=DAG_ID,
    description="GraphStorm gconstruct -> train -> infer on a synthetic ACM graph (local or SageMaker)",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,  # GraphStorm steps are heavy: one run at a time on a laptop
    tags=["graphstorm", "example"],
    user_defined_macros={"run_prefix": run_prefix, "gs_hyperparameters": hyperparameters},
    params={
        "base_uri": Param(DEFAULT_BASE_URI, type="string", pattern=r"^(file:///|s3://[a-z0-9.-]{3,63}(/|$))",
                          description="Every output goes under <base_uri>/<run id>/ (file:///... or s3://bucket/...)"),
        "instance_type": Param("local", type="string",
                               description="'local' runs here; an ml.* type runs on SageMaker"),
        "image_url": Param("graphstorm:local", type="string", minLength=1,
                           description="GraphStorm SageMaker image (unused by local runs without containers)"),
        "role": Param("arn:aws:iam::000000000000:role/GraphStormLocal", type="string", minLength=1,
                      description="SageMaker execution role ARN (any value works locally)"),
        "region": Param("us-west-2", type="string", minLength=1),
        "graph_name": Param("acm", type="string", pattern=r"^[A-Za-z0-9_-]+$",
                            description="GraphStorm graph name (two runs on one host at once need different names)"),
        "num_papers": Param(2500, type="integer", minimum=50, description="size of the synthetic graph"),
        "num_classes": Param(5, type="integer", minimum=2, maximum=50),
        "seed": Param(0, type="integer", minimum=0),
        "num_epochs": Param(3, type="integer", minimum=1),
        "hidden_size": Param(64, type="integer", minimum=1),
        "num_layers": Param(2, type="integer", minimum=1, maximum=4),
        "fanout": Param(10, type="integer", minimum=1, description="neighbours sampled per layer"),
        "batch_size": Param(128, type="integer", minimum=1),
        "lr": Param(0.01, type="number", exclusiveMinimum=0),
    },
    doc_md=__doc__,
) as dag:

    @task
    def prepare(params: dict | None = None, run_id: str | None = None) -> dict[str, str]:
        """Write the raw graph and the GraphStorm YAML under the run prefix."""
        from graphstorm_provider.data import storage
        from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm
        from graphstorm_provider.data.train_config import node_classification_yaml

        prefix = run_prefix(params["base_uri"], run_id)
        raw = f"{prefix}/raw"
        spec = SyntheticAcmSpec(num_papers=int(params["num_papers"]), num_classes=int(params["num_classes"]),
                                seed=int(params["seed"]))
        yaml_uri = f"{prefix}/config/{params['graph_name']}_nc.yaml"
        with storage.using_s3_client(s3_client_for(prefix)):
            summary = generate_synthetic_acm(raw, spec)
            storage.write_bytes(yaml_uri, node_classification_yaml(spec.num_classes).encode())
        return {"run_prefix": prefix, "raw_graph_s3": raw, "graph_config_file": summary.graph_config_file,
                "train_yaml_s3": yaml_uri}

    prepared = prepare()

    gconstruct = GConstructOperator(
        task_id="gconstruct",
        input_graph_s3=prepared["raw_graph_s3"],
        output_graph_s3=f"{PREFIX}/graph",
        graph_name="{{ params.graph_name }}",
        graph_config_file=prepared["graph_config_file"],
        **JOB_ARGS,
    )

    train = GSTrainOperator(
        task_id="train",
        graph_data_s3=gconstruct.output["output_graph_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=f"{PREFIX}/model",
        graph_name="{{ params.graph_name }}",
        task_type=TASK_TYPE,
        graphstorm_args="{{ gs_hyperparameters(params) }}",
        **JOB_ARGS,
    )

    infer = GSInferOperator(
        task_id="infer",
        graph_data_s3=gconstruct.output["output_graph_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=train.output["model_artifact_s3"],
        output_emb_s3=f"{PREFIX}/embeddings",
        output_prediction_s3=f"{PREFIX}/predictions",
        graph_name="{{ params.graph_name }}",
        task_type=TASK_TYPE,
        graphstorm_args="{{ gs_hyperparameters(params) }}",
        **JOB_ARGS,
    )

    @task
    def report(prepared: dict, trained: dict, inferred: dict) -> dict:
        """Score the test papers and say where everything is; fail if a test node has no result."""
        import json
        import logging

        from graphstorm_provider.data import storage
        from graphstorm_provider.data.evaluate import evaluate_node_classification

        log = logging.getLogger("airflow.task")
        client = s3_client_for(prepared["run_prefix"])
        with storage.using_s3_client(client):
            evaluation = evaluate_node_classification(
                prepared["raw_graph_s3"], inferred["output_prediction_s3"], inferred.get("output_emb_s3")
            )
        summary = {
            **evaluation.to_dict(),
            "run_prefix": prepared["run_prefix"],
            "raw_graph": prepared["raw_graph_s3"],
            "model": trained["model_artifact_s3"],
            "embeddings": inferred.get("output_emb_s3"),
            "predictions": inferred["output_prediction_s3"],
            "jobs": {"train": trained["job_name"], "infer": inferred["job_name"]},
        }
        summary_uri = f"{prepared['run_prefix']}/summary.json"
        with storage.using_s3_client(client):
            storage.write_bytes(summary_uri, json.dumps(summary, indent=2).encode())
        log.info("GraphStorm e2e summary: %s", summary_uri)  # scripts/run_local_pipeline.sh looks for this line
        log.info("Test accuracy: %.4f on %d test papers (chance %.2f)", evaluation.test_accuracy,
                 evaluation.num_test, evaluation.chance)
        for name in ("model", "embeddings", "predictions"):
            log.info("%-12s %s", name.capitalize() + ":", summary[name])
        if evaluation.missing_predictions or evaluation.missing_embeddings:
            raise ValueError(
                f"inference left test nodes without results: predictions missing for "
                f"{evaluation.num_test - evaluation.num_test_predicted}, embeddings missing for "
                f"{evaluation.num_test - evaluation.num_test_embedded} (e.g. "
                f"{(evaluation.missing_predictions or evaluation.missing_embeddings)[:3]})"
            )
        return summary

    report(prepared, train.output, infer.output)
