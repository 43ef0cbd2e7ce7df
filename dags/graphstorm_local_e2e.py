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

Every path lives under one per-run prefix ``<base_uri>/<run key>/`` (``file://`` or ``s3://``): the
run's logical date (``YYYYMMDDTHHMMSS``), or its run id when it has none. Each GraphStorm step
writes into a folder of its own run (``model/1/``, ``model/2/`` after a clear, ...: the number of
the run's first try, which its retries share, so a retry re-attaches to its job) and hands
that folder on through XCom (``train.output[...]``), so clearing one task never leaves a
downstream output, ``summary.json`` or the report's XCom naming a model that was replaced.
A run conf key that is not a param fails ``prepare`` at once (no retry), naming it.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from graphstorm_provider.dags_support import (
    check_run_conf,
    first_try,
    graphstorm_params,
    hyperparameters,
    prepare_inputs,
    run_prefix,
    s3_client_for,
)
from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.infer import GSInferOperator
from graphstorm_provider.operators.train import GSTrainOperator

DAG_ID = "graphstorm_local_e2e"
# The default base can be moved without editing the DAG (e.g. by the README's main script).
DEFAULT_BASE_URI = os.environ.get("GRAPHSTORM_E2E_BASE_URI", "file:///tmp/graphstorm-airflow/runs")


PREFIX = "{{ gs_run_prefix(params.base_uri, dag_run.logical_date, run_id) }}"
ATTEMPT = "{{ gs_first_try(ti) }}"  # a folder per run of a step: its retries share it, a clear starts a new one
# What the three GraphStorm operators share.
JOB_ARGS = {
    "image_url": "{{ params.image_url }}",
    "role": "{{ params.role }}",
    "instance_type": "{{ params.instance_type }}",
    "region": "{{ params.region }}",
    "graph_name": "{{ params.graph_name }}",
}
GSF_ARGS = {**JOB_ARGS, "task_type": "{{ params.task_type }}"}


def prepare(params: dict, dag_run, dag, run_id: str) -> dict[str, str]:
    """Refuse what the params do not allow (check_run_conf); write the raw graph and the GraphStorm YAML under the run prefix."""
    check_run_conf(dag_run.conf, dag.params, params)
    return prepare_inputs(params, run_prefix(params["base_uri"], dag_run.logical_date, run_id))


def report(prepared: dict, graph: dict, trained: dict, inferred: dict) -> dict:
    """Score the test papers; write ``summary.json`` naming exactly the outputs it used."""
    from graphstorm_provider.data.report import write_report

    return write_report(prepared, graph, trained, inferred, s3_client=s3_client_for(prepared["run_prefix"]))


with DAG(
    dag_id=DAG_ID,
    description="GraphStorm gconstruct -> train -> infer on a synthetic ACM graph (local or SageMaker)",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,  # GraphStorm steps are heavy: one run at a time on a laptop
    tags=["graphstorm", "example"],
    user_defined_macros={"gs_run_prefix": run_prefix, "gs_hyperparameters": hyperparameters, "gs_first_try": first_try},
    params=graphstorm_params(
        base_uri=DEFAULT_BASE_URI,
        base_description="Every output goes under <base_uri>/<logical date or run id>/: file:///<path> "
        "or s3://<bucket>/<prefix>.",
        instance_type="local",
        image_url="graphstorm:local",
        role="arn:aws:iam::000000000000:role/GraphStormLocal",
        region="us-west-2",
    ),
    doc_md=__doc__,
) as dag:
    # The two Python steps are classic PythonOperators, not TaskFlow @task functions: a @task
    # costs every parse of this file about 2 ms more than an operator (bench/dag_parse_time.py).
    prepared = PythonOperator(task_id="prepare", python_callable=prepare, multiple_outputs=True).output

    gconstruct = GConstructOperator(
        task_id="gconstruct",
        input_graph_s3=prepared["raw_graph_s3"],
        output_graph_s3=f"{PREFIX}/graph/{ATTEMPT}",
        graph_config_file=prepared["graph_config_file"],
        **JOB_ARGS,
    )

    train = GSTrainOperator(
        task_id="train",
        graph_data_s3=gconstruct.output["output_graph_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=f"{PREFIX}/model/{ATTEMPT}",
        graphstorm_args="{{ gs_hyperparameters(params, seed=True) }}",
        **GSF_ARGS,
    )

    infer = GSInferOperator(
        task_id="infer",
        graph_data_s3=gconstruct.output["output_graph_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=train.output["model_artifact_s3"],
        output_emb_s3=f"{PREFIX}/embeddings/{ATTEMPT}",
        output_prediction_s3=f"{PREFIX}/predictions/{ATTEMPT}",
        graphstorm_args="{{ gs_hyperparameters(params) }}",
        **GSF_ARGS,
    )

    PythonOperator(
        task_id="report",
        python_callable=report,  # one XCom: the summary dict
        op_kwargs={"prepared": prepared, "graph": gconstruct.output, "trained": train.output, "inferred": infer.output},
    )
