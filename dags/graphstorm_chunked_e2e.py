"""GraphStorm's scale-out path end to end: a chunked graph -> distributed partitioning -> train -> infer.

The synthetic ACM graph (the same graph, labels and splits as ``graphstorm_local_e2e`` for the
same ``seed``) is written in DGL's chunked graph format, with its raw string node IDs as
``raw_id_mappings/`` (GSProcessing's layout); ``DistPartitionOperator`` splits it into
``instance_count`` DistDGL partitions, one per host, and GraphStorm trains and infers on them.

Where it runs
-------------
``instance_type="local"`` with ``instance_count=2`` (the default) runs every step as an emulated
two-host SageMaker cluster in containers of the job image ``image_url`` (the compose backend;
``bash docker/build_image.sh`` builds ``graphstorm:sm``). ``instance_count=1`` runs each step here
as one local process (SageMaker local mode) on a 1-partition graph. An ``ml.*`` instance type, a
real ``image_url``, ``role`` and an ``s3://`` ``base_uri`` run the same DAG on SageMaker.

Tasks
-----
``prepare``    writes the chunked graph (``metadata.json``, edge chunks in csv and parquet, node
               data in numpy and parquet, ``raw_id_mappings/``) and the GraphStorm YAML.
``partition``  partitions it into ``instance_count`` parts (SageMaker Training job).
``train``      trains an RGCN node classifier on ``paper``.
``infer``      writes embeddings and predictions keyed by the raw string node IDs.
``report``     joins the predictions to the raw IDs' labels and test mask, scores the test papers,
               writes ``summary.json`` and logs where everything is.

Every path lives under one per-run prefix ``<base_uri>/<run key>/``: the run's logical date, or
its run id when it has none. Each GraphStorm step writes into a folder of its own run
(``graph/1/``, ``model/2/`` after a clear, ...; its retries share it: ``gs_first_try``) and hands that folder on through XCom. A run conf
key that is not a param fails ``prepare`` at once (no retry), naming it. What this DAG shares with
``graphstorm_local_e2e`` lives in :mod:`graphstorm_provider.dags_support`.
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
    int_param,
    prepare_inputs,
    run_prefix,
    s3_client_for,
)
from graphstorm_provider.operators.infer import GSInferOperator
from graphstorm_provider.operators.partition import DistPartitionOperator
from graphstorm_provider.operators.train import GSTrainOperator

DAG_ID = "graphstorm_chunked_e2e"
GRAPH_FORMAT = "chunked"  # graphstorm_provider.data.synthetic_acm.CHUNKED_FORMAT
# The metadata file the chunked writer names as DGL's specification does
# (graphstorm_provider.data.chunked.METADATA_FILE). The partition job's own default is
# GSProcessing's name, so it is passed explicitly.
METADATA_FILENAME = "metadata.json"
# The default base can be moved without editing the DAG (as for graphstorm_local_e2e).
DEFAULT_BASE_URI = os.environ.get("GRAPHSTORM_E2E_BASE_URI", "file:///tmp/graphstorm-airflow/runs")
MAX_INSTANCES = 16  # hosts per step (= partitions) the params accept
MAX_CHUNKS = 64

PREFIX = "{{ gs_run_prefix(params.base_uri, dag_run.logical_date, run_id) }}"
ATTEMPT = "{{ gs_first_try(ti) }}"  # a folder per run of a step: its retries share it, a clear starts a new one
# Hosts per step = partitions: GraphStorm trains and infers on one partition per host.
INSTANCE_COUNT = "{{ params.instance_count }}"
# What the three GraphStorm operators share.
JOB_ARGS = {
    "image_url": "{{ params.image_url }}",
    "role": "{{ params.role }}",
    "instance_type": "{{ params.instance_type }}",
    "region": "{{ params.region }}",
    "instance_count": INSTANCE_COUNT,
}
GSF_ARGS = {**JOB_ARGS, "graph_name": "{{ params.graph_name }}", "task_type": "{{ params.task_type }}"}


def prepare(params: dict, dag_run, dag, run_id: str) -> dict[str, str]:
    """Refuse what the params do not allow (check_run_conf); write the chunked graph and the GraphStorm YAML under the run prefix."""
    check_run_conf(dag_run.conf, dag.params, params)
    return prepare_inputs(
        params,
        run_prefix(params["base_uri"], dag_run.logical_date, run_id),
        graph_format=GRAPH_FORMAT,
        num_chunks=int(params["num_chunks"]),
    )


def report(prepared: dict, partitioned: dict, trained: dict, inferred: dict) -> dict:
    """Score the test papers by raw ID; write ``summary.json`` naming exactly the outputs it used."""
    from graphstorm_provider.data.report import write_report

    return write_report(
        prepared,
        partitioned,
        trained,
        inferred,
        graph_step="partition",
        s3_client=s3_client_for(prepared["run_prefix"]),
    )


with DAG(
    dag_id=DAG_ID,
    description="GraphStorm chunked graph -> distributed partition -> train -> infer (containers or SageMaker)",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,  # two emulated hosts per step already fill a laptop
    tags=["graphstorm", "example"],
    user_defined_macros={"gs_run_prefix": run_prefix, "gs_hyperparameters": hyperparameters, "gs_first_try": first_try},
    params={
        **graphstorm_params(
            base_uri=DEFAULT_BASE_URI,
            base_description="Every output goes under <base_uri>/<logical date or run id>/: file:///<path> "
            "or s3://<bucket>/<prefix>.",
            instance_type="local",
            image_url="graphstorm:sm",
            role="arn:aws:iam::000000000000:role/GraphStormLocal",
            region="us-west-2",
        ),
        "instance_count": int_param(
            2,
            1,
            MAX_INSTANCES,
            "Hosts and partitions",
            "Hosts of every step and partitions of the graph (locally, 2 or more: "
            "that many containers of image_url; 1: one local process).",
        ),
        "num_chunks": int_param(
            3, 1, MAX_CHUNKS, "Chunks", "Chunks per node and edge type of the chunked input graph."
        ),
    },
    doc_md=__doc__,
) as dag:
    # The Python steps are classic PythonOperators, not TaskFlow @task functions: a @task costs
    # every parse of this file about 2 ms more than an operator (bench/dag_parse_time.py).
    prepared = PythonOperator(task_id="prepare", python_callable=prepare, multiple_outputs=True).output

    partition = DistPartitionOperator(
        task_id="partition",
        graph_data_s3=prepared["raw_graph_s3"],
        metadata_filename=METADATA_FILENAME,
        num_parts=INSTANCE_COUNT,
        output_data_s3=f"{PREFIX}/graph/{ATTEMPT}",
        **JOB_ARGS,
    )

    train = GSTrainOperator(
        task_id="train",
        graph_data_s3=partition.output["output_data_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=f"{PREFIX}/model/{ATTEMPT}",
        graphstorm_args="{{ gs_hyperparameters(params, seed=True) }}",
        **GSF_ARGS,
    )

    infer = GSInferOperator(
        task_id="infer",
        graph_data_s3=partition.output["output_data_s3"],
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
        op_kwargs={
            "prepared": prepared,
            "partitioned": partition.output,
            "trained": train.output,
            "inferred": infer.output,
        },
    )
