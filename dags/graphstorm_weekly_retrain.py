"""Weekly GraphStorm retraining over a date-partitioned input; backfillable.

Each weekly run reads that week's raw graph from ``<base_uri>/input/<ds_nodash>/`` and writes
everything under ``<base_uri>/<ds_nodash>/`` - named by the run's logical date, never by when it
was triggered - so ``airflow backfill create --dag-id graphstorm_weekly_retrain --from-date ...
--to-date ...`` writes one prefix per week, and job names carry the date as well
(``gs-weekly-train-20260104-<hash of the task instance>``): backfilled weeks never collide.

Tasks
-----
``prepare``     refuses unknown conf keys; makes sure the week's input exists (this example writes
                a synthetic ACM graph there when it is missing, standing in for the upstream
                export) and writes the GraphStorm YAML under the week's prefix.
``gconstruct``  builds the week's graph into ``graph/<run>/``.
``train``       trains into ``model/<run>/`` (seeded by the ``seed`` param).
``infer``       writes ``embeddings/<run>/`` and ``predictions/<run>/`` from that model.
``report``      scores the week's test papers and writes ``summary.json`` naming the folders used.

Re-running a week (clearing its tasks) writes new folders and leaves the old ones unchanged
(a retry writes its first try's folder); the XComs, ``summary.json`` and the report always name the folders they used.
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
    s3_client_for,
)
from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.infer import GSInferOperator
from graphstorm_provider.operators.train import GSTrainOperator

DAG_ID = "graphstorm_weekly_retrain"
DEFAULT_BASE_URI = os.environ.get("GRAPHSTORM_WEEKLY_BASE_URI", "file:///tmp/graphstorm-airflow/weekly")


INPUT_COMPLETE_MARKER = "_SUCCESS"  # a week's input is complete once this exists
PREFIX = "{{ params.base_uri.rstrip('/') }}/{{ ds_nodash }}"
ATTEMPT = "{{ gs_first_try(ti) }}"  # a folder per run of a step: its retries share it, a clear starts a new one
JOB_ARGS = {
    "image_url": "{{ params.image_url }}",
    "role": "{{ params.role }}",
    "instance_type": "{{ params.instance_type }}",
    "region": "{{ params.region }}",
    "graph_name": "{{ params.graph_name }}",
}
GSF_ARGS = {**JOB_ARGS, "task_type": "{{ params.task_type }}"}


def prepare(params: dict, dag_run, dag, ds_nodash: str) -> dict[str, str]:
    """Refuse what the params do not allow (check_run_conf); find (or, in this example, create) the week's input."""
    check_run_conf(dag_run.conf, dag.params, params)
    import logging

    from graphstorm_provider.data import storage
    from graphstorm_provider.data.synthetic_acm import (
        GRAPH_CONFIG_FILE,
        SyntheticAcmSpec,
        generate_synthetic_acm,
    )
    from graphstorm_provider.data.train_config import node_classification_yaml

    base = params["base_uri"].rstrip("/")
    prefix = f"{base}/{ds_nodash}"
    raw = f"{base}/input/{ds_nodash}"
    yaml_uri = f"{prefix}/config/{params['graph_name']}_nc.yaml"
    with storage.using_s3_client(s3_client_for(base)):
        # The marker is written last: a week whose export was cut short is written again.
        if not storage.list_files(f"{raw}/{INPUT_COMPLETE_MARKER}"):
            # Stand-in for the upstream export: a different graph each week, same for a re-run.
            week_seed = (int(params["seed"]) * 1_000_003 + int(ds_nodash)) % 2**31
            spec = SyntheticAcmSpec(
                num_papers=int(params["num_papers"]), num_classes=int(params["num_classes"]), seed=week_seed
            )
            generate_synthetic_acm(raw, spec)
            storage.write_bytes(f"{raw}/{INPUT_COMPLETE_MARKER}", b"")
            logging.getLogger("airflow.task").info("wrote the week's synthetic input under %s", raw)
        storage.write_bytes(yaml_uri, node_classification_yaml(int(params["num_classes"])).encode())
    return {
        "run_prefix": prefix,
        "raw_graph_s3": raw,
        "graph_config_file": GRAPH_CONFIG_FILE,
        "train_yaml_s3": yaml_uri,
    }


def report(prepared: dict, graph: dict, trained: dict, inferred: dict) -> dict:
    """Score the week's test papers; write ``summary.json`` naming exactly the outputs it used."""
    from graphstorm_provider.data.report import write_report

    return write_report(prepared, graph, trained, inferred, s3_client=s3_client_for(prepared["run_prefix"]))


with DAG(
    dag_id=DAG_ID,
    description="Weekly GraphStorm retraining on that week's graph (backfillable; outputs per logical date)",
    schedule="@weekly",
    start_date=datetime(2026, 1, 4),
    catchup=False,
    max_active_runs=1,
    tags=["graphstorm", "example"],
    user_defined_macros={"gs_hyperparameters": hyperparameters, "gs_first_try": first_try},
    params=graphstorm_params(
        base_uri=DEFAULT_BASE_URI,
        base_description="Input under <base_uri>/input/<YYYYMMDD>/, outputs under <base_uri>/<YYYYMMDD>/ "
        "(the run's logical date): file:///<path> or s3://<bucket>/<prefix>.",
        instance_type="local",
        image_url="graphstorm:local",
        role="arn:aws:iam::000000000000:role/GraphStormLocal",
        region="us-west-2",
    ),
    doc_md=__doc__,
) as dag:
    # The Python steps are classic PythonOperators, not TaskFlow @task functions: a @task costs
    # every parse of this file about 2 ms more than an operator (bench/dag_parse_time.py).
    prepared = PythonOperator(task_id="prepare", python_callable=prepare, multiple_outputs=True).output

    gconstruct = GConstructOperator(
        task_id="gconstruct",
        task_name="gs-weekly-gconstruct-{{ ds_nodash }}",
        input_graph_s3=prepared["raw_graph_s3"],
        output_graph_s3=f"{PREFIX}/graph/{ATTEMPT}",
        graph_config_file=prepared["graph_config_file"],
        **JOB_ARGS,
    )

    train = GSTrainOperator(
        task_id="train",
        task_name="gs-weekly-train-{{ ds_nodash }}",
        graph_data_s3=gconstruct.output["output_graph_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=f"{PREFIX}/model/{ATTEMPT}",
        graphstorm_args="{{ gs_hyperparameters(params, seed=True) }}",
        **GSF_ARGS,
    )

    infer = GSInferOperator(
        task_id="infer",
        task_name="gs-weekly-infer-{{ ds_nodash }}",
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
