"""GraphStorm on Amazon SageMaker: synthetic ACM graph -> GConstruct -> train -> infer, deferrable.

Every step is a SageMaker job (GConstruct a Processing job, training and inference Training
jobs) on ``ml.*`` instances with your GraphStorm image (``image_url``, on ECR) and execution role
(``role``). While a job runs the task waits in the triggerer (``deferrable=True``), holding no
worker slot. The AWS connection ``aws_default`` supplies credentials, region and (in its extra)
an optional ``endpoint_url``.

Everything lives under ``<base_uri>/<run key>/``: the run's logical date (``YYYYMMDD`` at
midnight, else ``YYYYMMDDTHHMMSS``; its run id when it has none). Each step writes into a folder
of its own run (``model/1/``, ``model/2/`` after a clear; a retry renders the same folder, so it
re-attaches to the job still running), handed on through XCom. Job names carry the run key too
(``gs-sm-train-20260105T103000-<hash of the task instance>``, the same in every try, so a retry
finds its job).

Tasks
-----
``prepare``     refuses unknown conf keys; uploads the synthetic raw graph (parquet + GConstruct
                ``config.json``) and the GraphStorm YAML through the connection.
``gconstruct``  builds the partitioned graph into ``graph/<run>/``.
``train``       trains an RGCN node classifier into ``model/<run>/`` (seeded).
``infer``       writes ``embeddings/<run>/`` and ``predictions/<run>/`` from that model.
``summary``     writes ``summary.json`` naming the jobs and the folders each step used (one XCom).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

from graphstorm_provider.dags_support import (
    AWS_CONN_ID,
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

DAG_ID = "graphstorm_sagemaker_e2e"
DEFAULT_BASE_URI = os.environ.get("GRAPHSTORM_SAGEMAKER_BASE_URI", "s3://my-graphstorm-bucket/airflow-runs")
SAGEMAKER_INSTANCE_PATTERN = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
ECR_IMAGE_PATTERN = r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?$"

PREFIX = "{{ gs_run_prefix(params.base_uri, dag_run.logical_date, run_id) }}"
ATTEMPT = "{{ gs_first_try(ti) }}"  # a folder per run of a step: its retries share it, a clear starts a new one
RUN_KEY = "{{ gs_run_prefix('', dag_run.logical_date, run_id).lstrip('/') }}"
JOB_ARGS = {
    "image_url": "{{ params.image_url }}",
    "role": "{{ params.role }}",
    "instance_type": "{{ params.instance_type }}",
    "region": "{{ params.region }}",
    "graph_name": "{{ params.graph_name }}",
    "aws_conn_id": AWS_CONN_ID,
    "deferrable": True,  # status checks every [graphstorm] check_interval seconds (default 30)
}
GSF_ARGS = {**JOB_ARGS, "task_type": "{{ params.task_type }}"}

PARAMS = graphstorm_params(
    base_uri=DEFAULT_BASE_URI,
    base_description="Every output goes under <base_uri>/<logical date>/: s3://<bucket>/<prefix>.",
    instance_type="ml.m5.xlarge",
    image_url="123456789012.dkr.ecr.us-west-2.amazonaws.com/graphstorm:sagemaker-cpu",
    role="arn:aws:iam::123456789012:role/SageMakerRole",
    region="us-west-2",
)
PARAMS["base_uri"] = Param(
    DEFAULT_BASE_URI,
    type="string",
    pattern=r"^s3://[a-z0-9.-]{3,63}(/|$)",
    title="Output base URI (S3)",
    description="Every input and output goes under <base_uri>/<logical date>/: s3://<bucket>/<prefix>.",
)
PARAMS["instance_type"] = Param(
    "ml.m5.xlarge",
    type="string",
    pattern=SAGEMAKER_INSTANCE_PATTERN,
    title="SageMaker instance type",
    description="ml.<family>.<size>, e.g. ml.m5.xlarge (CPU) or ml.g4dn.xlarge.",
)
PARAMS["image_url"] = Param(
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/graphstorm:sagemaker-cpu",
    type="string",
    pattern=ECR_IMAGE_PATTERN,
    title="GraphStorm image (ECR)",
    description="<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag], the "
    "GraphStorm SageMaker image built by docker/build_image.sh and pushed.",
)


def prepare(params: dict, dag_run, dag, run_id: str) -> dict[str, str]:
    """Refuse what the params do not allow (check_run_conf); upload the raw graph and the YAML under the run prefix."""
    check_run_conf(dag_run.conf, dag.params, params)
    return prepare_inputs(params, run_prefix(params["base_uri"], dag_run.logical_date, run_id))


def summary(prepared: dict, graph: dict, trained: dict, inferred: dict) -> dict:
    """Write ``summary.json``: the jobs and exactly the folders each step used."""
    from graphstorm_provider.data.report import run_summary, write_summary

    return write_summary(
        run_summary(prepared, graph, trained, inferred), s3_client=s3_client_for(prepared["run_prefix"])
    )


with DAG(
    dag_id=DAG_ID,
    description="GraphStorm gconstruct -> train -> infer as SageMaker jobs (deferrable), outputs per date",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["graphstorm", "example", "sagemaker"],
    user_defined_macros={"gs_run_prefix": run_prefix, "gs_hyperparameters": hyperparameters, "gs_first_try": first_try},
    params=PARAMS,
    doc_md=__doc__,
) as dag:
    # The Python steps are classic PythonOperators, not TaskFlow @task functions: a @task costs
    # every parse of this file about 2 ms more than an operator (bench/dag_parse_time.py).
    prepared = PythonOperator(task_id="prepare", python_callable=prepare, multiple_outputs=True).output

    gconstruct = GConstructOperator(
        task_id="gconstruct",
        task_name=f"gs-sm-gconstruct-{RUN_KEY}",
        input_graph_s3=prepared["raw_graph_s3"],
        output_graph_s3=f"{PREFIX}/graph/{ATTEMPT}",
        graph_config_file=prepared["graph_config_file"],
        **JOB_ARGS,
    )

    train = GSTrainOperator(
        task_id="train",
        task_name=f"gs-sm-train-{RUN_KEY}",
        graph_data_s3=gconstruct.output["output_graph_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=f"{PREFIX}/model/{ATTEMPT}",
        graphstorm_args="{{ gs_hyperparameters(params, seed=True) }}",
        **GSF_ARGS,
    )

    infer = GSInferOperator(
        task_id="infer",
        task_name=f"gs-sm-infer-{RUN_KEY}",
        graph_data_s3=gconstruct.output["output_graph_s3"],
        yaml_s3=prepared["train_yaml_s3"],
        model_artifact_s3=train.output["model_artifact_s3"],
        output_emb_s3=f"{PREFIX}/embeddings/{ATTEMPT}",
        output_prediction_s3=f"{PREFIX}/predictions/{ATTEMPT}",
        graphstorm_args="{{ gs_hyperparameters(params) }}",
        **GSF_ARGS,
    )

    PythonOperator(
        task_id="summary",
        python_callable=summary,  # one XCom
        op_kwargs={"prepared": prepared, "graph": gconstruct.output, "trained": train.output, "inferred": infer.output},
    )
