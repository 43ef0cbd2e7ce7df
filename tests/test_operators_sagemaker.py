"""The four operators against a real endpoint: a moto server over HTTP, reached through the
Airflow AWS connection (``endpoint_url`` in its extra), each task run by ``dag.test()``.

Checks what the server received: ``describe_*`` field by field, the recorded request bodies
(for the fields moto's describe answers drop) and the XComs that chain the steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
REGION = "us-east-1"
DATA = "s3://graphstorm-examples/acm"

PIPELINE_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.infer import GSInferOperator
from graphstorm_provider.operators.partition import DistPartitionOperator
from graphstorm_provider.operators.train import GSTrainOperator

common = dict(image_url="{IMAGE}", role="{ROLE}", region="{REGION}", check_interval=1)
with DAG("gs_pipeline", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         params={{"hidden": "128", "parts": "2"}}) as dag:
    gconstruct = GConstructOperator(
        task_id="gconstruct", input_graph_s3="{DATA}/acm_raw/",
        output_graph_s3="{DATA}/{{{{ ds_nodash }}}}/acm_gconstruct/", graph_name="acm",
        graph_config_file="config.json", sm_estimator_parameters="volume_size_in_gb=20",
        task_name="gc-{{{{ ds_nodash }}}}", **common)
    partition = DistPartitionOperator(
        task_id="partition", graph_data_s3=gconstruct.output["output_graph_s3"],
        num_parts="{{{{ params.parts }}}}", instance_count="{{{{ params.parts }}}}",
        output_data_s3="{DATA}/{{{{ ds_nodash }}}}/acm_2p/", metadata_filename="metadata.json", **common)
    train = GSTrainOperator(
        task_id="train", graph_data_s3=partition.output["output_data_s3"], yaml_s3="{DATA}/train.yaml",
        model_artifact_s3="{DATA}/{{{{ ds_nodash }}}}/model/", graph_name="acm",
        task_type="node_classification", instance_type="ml.g5.2xlarge", instance_count=2,
        require_input_manifests=False,  # moto runs no job: the partition output has no manifest
        graphstorm_args=["--num-epochs", "2", "--hidden-size", "{{{{ params.hidden }}}}", "--fanout", "10,10"],
        sm_estimator_parameters={{"max_run": 7200, "subnets": ["subnet-1"], "security_group_ids": ["sg-1"]}},
        **common)
    infer = GSInferOperator(
        task_id="infer", graph_data_s3=partition.output["output_data_s3"], yaml_s3="{DATA}/train.yaml",
        model_artifact_s3=train.output["model_artifact_s3"], graph_name="acm", task_type="node_classification",
        require_input_manifests=False,
        output_emb_s3="{DATA}/{{{{ ds_nodash }}}}/emb/", output_prediction_s3="{DATA}/{{{{ ds_nodash }}}}/pred/",
        graphstorm_args="--hidden-size {{{{ params.hidden }}}} --save-embed-path None", **common)
    gconstruct >> partition >> train >> infer
'''


def xcoms(dag_run, task_id: str) -> dict:
    """Every XCom the task pushed, by key, read from the metadata database."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id)
        ).all()
        return {row.key: XComModel.deserialize_value(row) for row in rows}


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def args_after(arguments: list[str], flag: str) -> str:
    return arguments[arguments.index(flag) + 1]


@pytest.fixture
def connection_only(aws_env, monkeypatch):
    """Only the Airflow connection knows the endpoint: proves the operators use it."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    return aws_env


@dataclass(frozen=True)
class PipelineRun:
    """One ``dag.test()`` of the four-operator pipeline and what the moto server saw."""

    aws_env: object
    dag_run: object
    day: str
    client: object


def test_pipeline_of_four_operators_through_dag_test(connection_only, load_dag, subtests):
    """One ``dag.test()`` of the pipeline, then one subtest per step: a failure names its step."""
    dag_run = load_dag(PIPELINE_DAG, "gs_pipeline").test()
    assert dag_run.state == "success", task_states(dag_run)
    pipeline = PipelineRun(
        connection_only, dag_run, dag_run.logical_date.strftime("%Y%m%d"), connection_only.client("sagemaker")
    )
    for step, check in PIPELINE_CHECKS.items():
        with subtests.test(step=step):
            check(pipeline)


def _check_gconstruct_is_a_processing_job_with_templated_names_and_paths(pipeline: PipelineRun) -> None:
    aws_env, dag_run, day, client = pipeline.aws_env, pipeline.dag_run, pipeline.day, pipeline.client
    gc_xcom = xcoms(dag_run, "gconstruct")
    gc_name = gc_xcom["job_name"]
    assert gc_name.startswith(f"gc-{day}-")
    assert gc_xcom["return_value"] == {"job_name": gc_name, "output_graph_s3": f"{DATA}/{day}/acm_gconstruct/"}
    assert gc_xcom["output_graph_s3"] == f"{DATA}/{day}/acm_gconstruct/"
    gc_job = client.describe_processing_job(ProcessingJobName=gc_name)
    assert gc_job["AppSpecification"]["ImageUri"] == IMAGE
    assert gc_job["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/code/gconstruct_entry.py"]
    assert gc_job["AppSpecification"]["ContainerArguments"] == [
        "--graph-name",
        "acm",
        "--graph-config-file",
        "config.json",
        "--log-level",
        "INFO",
        "--",
    ]
    assert gc_job["RoleArn"] == ROLE
    assert gc_job["ProcessingInputs"][0]["S3Input"]["S3Uri"] == f"{DATA}/acm_raw/"
    assert gc_job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == f"{DATA}/{day}/acm_gconstruct/"
    [gc_sent] = aws_env.received("SageMaker.CreateProcessingJob")
    assert gc_sent["ProcessingResources"]["ClusterConfig"] == {
        "InstanceType": "ml.m5.12xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 20,
    }
    assert len(gc_sent["Environment"].pop("GRAPHSTORM_REQUEST_DIGEST")) == 64  # the step cache's key
    assert gc_sent["Environment"] == {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


def _check_partition_reads_gconstruct_xcom_and_templated_counts(pipeline: PipelineRun) -> None:
    dag_run, day, client = pipeline.dag_run, pipeline.day, pipeline.client
    part_xcom = xcoms(dag_run, "partition")
    part_job = client.describe_training_job(TrainingJobName=part_xcom["job_name"])
    part_args = part_job["AlgorithmSpecification"]["ContainerArguments"]
    assert part_job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/code/partition_entry.py"]
    assert args_after(part_args, "--graph-data-s3") == f"{DATA}/{day}/acm_gconstruct/"
    assert args_after(part_args, "--num-parts") == "2"
    assert args_after(part_args, "--output-data-s3") == f"{DATA}/{day}/acm_2p/"
    assert args_after(part_args, "--metadata-filename") == "metadata.json"
    assert part_job["ResourceConfig"]["InstanceCount"] == 2
    assert part_xcom["output_data_s3"] == f"{DATA}/{day}/acm_2p/"


def _check_train_forwards_flags_resources_stopping_condition_and_vpc(pipeline: PipelineRun) -> None:
    dag_run, day, client = pipeline.dag_run, pipeline.day, pipeline.client
    train_xcom = xcoms(dag_run, "train")
    train_job = client.describe_training_job(TrainingJobName=train_xcom["job_name"])
    algorithm = train_job["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    assert algorithm["ContainerEntrypoint"] == ["python3", "/opt/ml/code/train_entry.py"]
    assert algorithm["ContainerArguments"] == [
        "--graph-data-s3",
        f"{DATA}/{day}/acm_2p/",
        "--train-yaml-s3",
        f"{DATA}/train.yaml",
        "--model-artifact-s3",
        f"{DATA}/{day}/model/",
        "--graph-name",
        "acm",
        "--task-type",
        "node_classification",
        "--log-level",
        "INFO",
        "--",
        "--num-epochs",
        "2",
        "--hidden-size",
        "128",
        "--fanout",
        "10,10",
    ]
    assert train_job["RoleArn"] == ROLE
    assert train_job["ResourceConfig"] == {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30}
    assert train_job["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert train_job["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert train_xcom["model_artifact_s3"] == f"{DATA}/{day}/model/"


def _check_infer_reads_the_model_from_train_xcom(pipeline: PipelineRun) -> None:
    dag_run, day, client = pipeline.dag_run, pipeline.day, pipeline.client
    train_xcom = xcoms(dag_run, "train")
    infer_xcom = xcoms(dag_run, "infer")
    infer_job = client.describe_training_job(TrainingJobName=infer_xcom["job_name"])
    infer_args = infer_job["AlgorithmSpecification"]["ContainerArguments"]
    assert args_after(infer_args, "--model-artifact-s3") == train_xcom["model_artifact_s3"]
    assert args_after(infer_args, "--infer-yaml-s3") == f"{DATA}/train.yaml"
    assert args_after(infer_args, "--output-emb-s3") == f"{DATA}/{day}/emb/"
    assert infer_args[infer_args.index("--") + 1 :] == ["--hidden-size", "128", "--save-embed-path", "None"]
    assert infer_xcom["return_value"] == {
        "job_name": infer_xcom["job_name"],
        "output_emb_s3": f"{DATA}/{day}/emb/",
        "output_prediction_s3": f"{DATA}/{day}/pred/",
    }


def _check_one_job_per_task_and_secrets_out_of_xcom(pipeline: PipelineRun) -> None:
    aws_env, dag_run = pipeline.aws_env, pipeline.dag_run
    # Exactly one job per task: nothing was created twice.
    assert len(aws_env.received("SageMaker.CreateTrainingJob")) == 3
    # Secrets stay out of XCom.
    assert "testing" not in json.dumps([xcoms(dag_run, t) for t in ("gconstruct", "partition", "train", "infer")])


PIPELINE_CHECKS = {
    "gconstruct": _check_gconstruct_is_a_processing_job_with_templated_names_and_paths,
    "partition": _check_partition_reads_gconstruct_xcom_and_templated_counts,
    "train": _check_train_forwards_flags_resources_stopping_condition_and_vpc,
    "infer": _check_infer_reads_the_model_from_train_xcom,
    "jobs and xcom": _check_one_job_per_task_and_secrets_out_of_xcom,
}


DEFERRABLE_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("gs_deferrable", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GConstructOperator(
        task_id="gconstruct", image_url="{IMAGE}", role="{ROLE}", region="{REGION}",
        input_graph_s3="{DATA}/acm_raw/", output_graph_s3="{DATA}/out/", graph_name="acm",
        graph_config_file="config.json", deferrable=True, check_interval=1)
    GSTrainOperator(
        task_id="train", image_url="{IMAGE}", role="{ROLE}", region="{REGION}",
        graph_data_s3="{DATA}/acm_2p/", yaml_s3="{DATA}/train.yaml", model_artifact_s3="{DATA}/model/",
        graph_name="acm", task_type="node_classification", deferrable=True, check_interval=1,
        require_input_manifests=False)
'''


def test_deferrable_operators_wait_in_the_trigger(aws_env, load_dag):
    dag_run = load_dag(DEFERRABLE_DAG, "gs_deferrable").test()
    assert dag_run.state == "success", task_states(dag_run)
    train = xcoms(dag_run, "train")
    assert train["return_value"] == {"job_name": train["job_name"], "model_artifact_s3": f"{DATA}/model/"}
    gconstruct = xcoms(dag_run, "gconstruct")
    assert gconstruct["return_value"]["output_graph_s3"] == f"{DATA}/out/"
    # The worker described each name once before the create (re-attach check), then once more before
    # deferring: moto completes jobs at once, so that check found the job ended and the task finished
    # without deferring (tests/test_operator_deferral.py covers a job still running).
    assert [r["TrainingJobName"] for r in aws_env.received("SageMaker.DescribeTrainingJob")] == [train["job_name"]] * 2
    assert [r["ProcessingJobName"] for r in aws_env.received("SageMaker.DescribeProcessingJob")] == [
        gconstruct["job_name"]
    ] * 2


NO_WAIT_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("gs_no_wait", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    kw = dict(image_url="{IMAGE}", role="{ROLE}", region="{REGION}", graph_data_s3="{DATA}/acm_2p/",
              yaml_s3="{DATA}/train.yaml", model_artifact_s3="{DATA}/model/", graph_name="acm",
              task_type="node_classification", require_input_manifests=False)
    GSTrainOperator(task_id="no_wait", wait_for_completion=False, **kw)
    GSTrainOperator(task_id="async_execution", async_execution=True, **kw)
'''


def test_not_waiting_returns_once_the_job_exists(aws_env, load_dag):
    dag_run = load_dag(NO_WAIT_DAG, "gs_no_wait").test()
    assert dag_run.state == "success", task_states(dag_run)
    names = {xcoms(dag_run, t)["job_name"] for t in ("no_wait", "async_execution")}
    summaries = aws_env.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert {s["TrainingJobName"] for s in summaries} == names
    # Nobody polled: one describe per job, the name check before its create.
    assert sorted(r["TrainingJobName"] for r in aws_env.received("SageMaker.DescribeTrainingJob")) == sorted(names)


BAD_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("gs_bad", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         params={{"task": "node_clasification"}}) as dag:
    GSTrainOperator(
        task_id="train", image_url="{IMAGE}", role="{ROLE}", region="{REGION}",
        graph_data_s3="{DATA}/acm_2p/", yaml_s3="{DATA}/train.yaml", model_artifact_s3="{DATA}/model/",
        graph_name="acm", task_type="{{{{ params.task }}}}")
'''


def test_bad_rendered_parameter_fails_the_task_before_any_request(aws_env, load_dag):
    dag_run = load_dag(BAD_DAG, "gs_bad").test()
    assert dag_run.state == "failed"
    assert task_states(dag_run) == {"train": "failed"}
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    assert aws_env.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def _operators():
    from graphstorm_provider.operators.gconstruct import GConstructOperator
    from graphstorm_provider.operators.infer import GSInferOperator
    from graphstorm_provider.operators.partition import DistPartitionOperator
    from graphstorm_provider.operators.train import GSTrainOperator

    common = dict(image_url=IMAGE, role=ROLE, region=REGION)
    gsf = dict(
        graph_data_s3=f"{DATA}/g/",
        yaml_s3=f"{DATA}/t.yaml",
        model_artifact_s3=f"{DATA}/m/",
        graph_name="acm",
        task_type="node_classification",
        require_input_manifests=False,
        **common,
    )
    return {
        "gconstruct": (
            GConstructOperator,
            dict(
                input_graph_s3=f"{DATA}/raw/",
                output_graph_s3=f"{DATA}/out/",
                graph_name="acm",
                graph_config_file="config.json",
                **common,
            ),
        ),
        "partition": (
            DistPartitionOperator,
            dict(graph_data_s3=f"{DATA}/c/", num_parts=2, output_data_s3=f"{DATA}/p/", **common),
        ),
        "train": (GSTrainOperator, gsf),
        "infer": (GSInferOperator, dict(output_emb_s3=f"{DATA}/e/", **gsf)),
    }


BAD_PARAMETERS = {
    "gconstruct": ("graph_config_file", "/abs/config.json", "--graph-config-file"),
    "partition": ("num_parts", "two", "--num-parts"),
    "train": ("role", "not-an-arn", "--role"),
    "infer": ("output_emb_s3", "s3://Bad_Bucket/e/", "--output-emb-s3"),
}


@pytest.mark.parametrize("step", BAD_PARAMETERS)
def test_bad_parameter_is_one_sentence_naming_it_and_sends_nothing(aws_env, step):
    from airflow.providers.common.compat.sdk import AirflowFailException

    operator_class, kwargs = _operators()[step]
    name, value, flag = BAD_PARAMETERS[step]
    operator = operator_class(task_id=step, **{**kwargs, name: value})
    with pytest.raises(AirflowFailException) as error:  # fails without retries
        operator.execute(context={})
    message = str(error.value)
    assert flag in message
    assert "\n" not in message
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    assert aws_env.received("SageMaker.CreateProcessingJob") == []


@pytest.mark.parametrize("step", ["gconstruct", "partition", "train", "infer"])
def test_operator_parameters_are_the_cli_flags(step):
    """Every flag of the step's CLI is an operator parameter of the same (snake_case) name."""
    import inspect

    from graphstorm_provider.jobs import STEP_SPECS
    from graphstorm_provider.operators.base import GraphStormBaseOperator

    operator_class, _ = _operators()[step]
    # The operator's own parameters and those of its GraphStorm base classes (GraphStormJobOperator too).
    parameters = set().union(
        *(
            inspect.signature(cls.__init__).parameters
            for cls in operator_class.__mro__
            if issubclass(cls, GraphStormBaseOperator)
        )
    )
    parser = STEP_SPECS[step].argument_parser()
    destinations = {a.dest for a in parser._actions if a.dest not in ("help", "entry_point")}
    assert destinations <= parameters, destinations - parameters


# --------------------------------------------------------------------------- on_kill
def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


def _point_connection_at(url: str, monkeypatch) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    connection["extra"]["endpoint_url"] = url
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))


def _execute_in_thread(operator) -> tuple[threading.Thread, list[BaseException]]:
    failure: list[BaseException] = []

    def run():
        try:
            operator.execute(context={})
        except BaseException as err:  # handed to the test thread
            failure.append(err)

    task = threading.Thread(target=run)
    task.start()
    return task, failure


def test_on_kill_stops_the_running_processing_job(aws_env, running_jobs_proxy, monkeypatch):
    """moto completes jobs at once; the proxy fixture keeps them InProgress until stopped."""
    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    operator = operator_class(task_id="gconstruct", check_interval=1, **kwargs)
    task, failure = _execute_in_thread(operator)
    # The task is waiting on a running job (the hook polls describe) ...
    _wait_for(lambda: running_jobs_proxy.targets.count("SageMaker.DescribeProcessingJob") >= 2)
    assert task.is_alive()
    # ... when Airflow kills it.
    operator.on_kill()
    task.join(timeout=120)
    assert not task.is_alive()

    [created] = aws_env.received("SageMaker.CreateProcessingJob")
    assert [r["ProcessingJobName"] for r in aws_env.received("SageMaker.StopProcessingJob")] == [
        created["ProcessingJobName"]
    ]
    job = aws_env.client("sagemaker").describe_processing_job(ProcessingJobName=created["ProcessingJobName"])
    assert job["ProcessingJobStatus"] == "Stopped"
    # A stopped job wrote no outputs: the task fails rather than passing them on.
    assert len(failure) == 1, failure
    assert "Stopped" in str(failure[0]), failure


def test_max_ingestion_time_fails_the_task_and_stops_the_job(aws_env, running_jobs_proxy, monkeypatch):
    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    operator = operator_class(task_id="gconstruct", check_interval=1, max_ingestion_time=2, **kwargs)
    task, failure = _execute_in_thread(operator)
    task.join(timeout=120)
    assert len(failure) == 1, failure
    assert "more than 2 seconds" in str(failure[0]), failure
    [created] = aws_env.received("SageMaker.CreateProcessingJob")
    assert [r["ProcessingJobName"] for r in aws_env.received("SageMaker.StopProcessingJob")] == [
        created["ProcessingJobName"]
    ]


def test_execute_complete_fails_unless_the_trigger_reports_success(aws_env):
    from airflow.providers.common.compat.sdk import AirflowException

    operator_class, kwargs = _operators()["train"]
    operator = operator_class(task_id="train", **kwargs)
    with pytest.raises(AirflowException, match="Failed"):
        operator.execute_complete({}, {"status": "failed", "job_name": "j", "message": "Failed: out of memory"})
    assert operator.execute_complete({}, {"status": "success", "job_name": "gs-train-x"}) == {
        "job_name": "gs-train-x",
        "model_artifact_s3": f"{DATA}/m/",
    }


def test_on_kill_after_the_job_ended_sends_no_stop(aws_env):
    operator_class, kwargs = _operators()["train"]
    operator = operator_class(task_id="train", wait_for_completion=False, **kwargs)
    result = operator.execute(context={})
    operator.on_kill()
    assert aws_env.received("SageMaker.StopTrainingJob") == []
    assert result["job_name"] == aws_env.received("SageMaker.CreateTrainingJob")[0]["TrainingJobName"]


# --------------------------------------------------------------------------- parse-time cost
OPERATOR_MODULES = [
    "graphstorm_provider.operators.gconstruct",
    "graphstorm_provider.operators.partition",
    "graphstorm_provider.operators.train",
    "graphstorm_provider.operators.infer",
    "graphstorm_provider.operators.local_compose",
]
# (``airflow.sdk`` itself imports ``airflow.providers.amazon``'s package and provider info, for
# configuration; the hooks, operators and boto3 live under ``.aws``.)
HEAVY_PREFIXES = (
    "boto3",
    "botocore",
    "aiobotocore",
    "airflow.providers.amazon.aws",
    "sagemaker",
    "torch",
    "dgl",
    "graphstorm.",
    "graphstorm_provider.jobs",
    "graphstorm_provider.execution",
)


@pytest.mark.parametrize("module", OPERATOR_MODULES)
def test_importing_an_operator_module_imports_nothing_heavy(module):
    code = (
        "import sys\n"
        f"import {module}\n"
        f"heavy = sorted(m for m in sys.modules if m.startswith({HEAVY_PREFIXES!r}) or m == 'graphstorm')\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --------------------------------------------------------------------------- local dispatch
LOCAL_GCONSTRUCT_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.gconstruct import GConstructOperator

with DAG("gs_local_gconstruct", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GConstructOperator(
        task_id="gconstruct", image_url="graphstorm:sm", role="{ROLE}", region="{REGION}",
        instance_type="local", input_graph_s3="s3://local-raw/acm/", output_graph_s3="s3://local-out/acm/",
        graph_name="acm_local_op", graph_config_file="config.json")
'''


def test_local_run_gets_credentials_and_endpoint_from_the_connection_only(aws_env, load_dag, monkeypatch, tmp_path):
    """instance_type="local": a real GConstruct run reading and writing S3 on the moto server,
    where only the Airflow connection knows the endpoint and the credentials."""
    from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm

    aws_env.bucket("local-raw")
    aws_env.bucket("local-out")
    generate_synthetic_acm("s3://local-raw/acm/", SyntheticAcmSpec(num_papers=300))
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    dag_run = load_dag(LOCAL_GCONSTRUCT_DAG, "gs_local_gconstruct").test()
    assert dag_run.state == "success", task_states(dag_run)
    assert xcoms(dag_run, "gconstruct")["output_graph_s3"] == "s3://local-out/acm/"
    keys = [o["Key"] for o in aws_env.client("s3").list_objects_v2(Bucket="local-out")["Contents"]]
    assert "acm/acm_local_op.json" in keys  # GConstruct's partition config, uploaded to the moto server
    assert aws_env.received("SageMaker.CreateProcessingJob") == []  # nothing went to SageMaker


def test_local_run_failure_fails_the_task(aws_env, load_dag, tmp_path):
    dag_file = LOCAL_GCONSTRUCT_DAG.replace("s3://local-raw/acm/", f"file://{tmp_path}/missing/").replace(
        "s3://local-out/acm/", f"file://{tmp_path}/out/"
    )
    dag_run = load_dag(dag_file, "gs_local_gconstruct").test()
    assert task_states(dag_run) == {"gconstruct": "failed"}
    assert aws_env.received("SageMaker.CreateProcessingJob") == []


def test_region_defaults_to_the_connection_region(aws_env):
    """No ``region``: the job goes where the AWS connection says (us-east-1 here), not us-west-2."""
    from graphstorm_provider.operators import GSTrainOperator

    _, kwargs = _operators()["train"]
    kwargs = {k: v for k, v in kwargs.items() if k != "region"}
    result = GSTrainOperator(task_id="train", wait_for_completion=False, **kwargs).execute(context={})
    job = aws_env.client("sagemaker").describe_training_job(TrainingJobName=result["job_name"])
    assert job["TrainingJobArn"].startswith(f"arn:aws:sagemaker:{REGION}:")
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    assert sent["Environment"]["AWS_REGION"] == REGION


def test_trigger_timeout_event_stops_the_job(aws_env, running_jobs_proxy, monkeypatch):
    """The trigger gave up (``waiter_max_attempts``): the task fails and stops the still running job."""
    from airflow.providers.common.compat.sdk import AirflowException

    _point_connection_at(running_jobs_proxy.url, monkeypatch)
    operator_class, kwargs = _operators()["gconstruct"]
    name = operator_class(task_id="gconstruct", wait_for_completion=False, **kwargs).execute(context={})["job_name"]
    operator = operator_class(task_id="gconstruct", deferrable=True, **kwargs)
    with pytest.raises(AirflowException, match="timeout"):
        operator.execute_complete({}, {"status": "timeout", "job_name": name, "message": "max attempts"})
    assert [r["ProcessingJobName"] for r in aws_env.received("SageMaker.StopProcessingJob")] == [name]
