"""Extra links of the step operators: the SageMaker console page and the CloudWatch logs of the
task's job, built from the region and job name only; nothing for a local run."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.test_operators_sagemaker import DATA, IMAGE, REGION, ROLE, xcoms

LINK_NAMES = {"SageMaker job", "SageMaker job logs"}


@pytest.mark.parametrize(
    ("kind", "region", "expected"),
    [
        (
            "training",
            "us-east-1",
            "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/gs-train-20260105-1",
        ),
        (
            "processing",
            "eu-west-1",
            "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/processing-jobs/gs-train-20260105-1",
        ),
        (
            "training",
            "cn-north-1",
            "https://console.amazonaws.cn/sagemaker/home?region=cn-north-1#/jobs/gs-train-20260105-1",
        ),
        (
            "processing",
            "us-gov-west-1",
            (
                "https://console.amazonaws-us-gov.com/sagemaker/home?region=us-gov-west-1#/processing-jobs/"
                "gs-train-20260105-1"
            ),
        ),
    ],
)
def test_console_url_for_each_kind_and_region(kind, region, expected):
    from graphstorm_provider.operators.links import SageMakerJobRef, job_console_url

    assert job_console_url(SageMakerJobRef(kind=kind, job_name="gs-train-20260105-1", region=region)) == expected


@pytest.mark.parametrize(
    ("kind", "region", "group"),
    [
        ("training", "us-west-2", "/aws/sagemaker/TrainingJobs"),
        ("processing", "ap-southeast-2", "/aws/sagemaker/ProcessingJobs"),
    ],
)
def test_logs_url_opens_the_job_streams_of_its_log_group(kind, region, group):
    from graphstorm_provider.operators.links import SageMakerJobRef, job_logs_url

    url = job_logs_url(SageMakerJobRef(kind=kind, job_name="gs-gc-1", region=region))
    head, fragment = url.split("#", 1)
    assert head == f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
    # CloudWatch's logsV2 fragment: '$' stands for '%', and the parts are URL-encoded twice.
    decoded = unquote(unquote(fragment.replace("$", "%")))
    assert decoded == f"logsV2:log-groups/log-group/{group}?logStreamNameFilter=gs-gc-1/"
    assert "/" not in fragment.removeprefix("logsV2:log-groups/log-group/")  # one path segment each


def test_links_are_registered_in_provider_info_and_importable():
    import importlib

    from graphstorm_provider import get_provider_info
    from graphstorm_provider.operators.links import EXTRA_LINK_CLASSES

    registered = get_provider_info()["extra-links"]
    assert sorted(registered) == sorted(EXTRA_LINK_CLASSES)
    for path in registered:
        module, name = path.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name)().name in LINK_NAMES


@pytest.mark.parametrize("step", ["gconstruct", "partition", "train", "infer"])
def test_every_step_operator_declares_both_links(step):
    from tests.test_operators_sagemaker import _operators

    operator_class, _ = _operators()[step]
    assert {link.name for link in operator_class.operator_extra_links} == LINK_NAMES


@pytest.fixture(autouse=True)
def _no_input_manifests(monkeypatch):
    """moto runs no job, so the inputs these jobs name carry no manifest (operators/preflight.py)."""
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")


LINKS_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("gs_links", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GConstructOperator(
        task_id="gconstruct", image_url="{IMAGE}", role="{ROLE}", region="{REGION}", check_interval=1,
        input_graph_s3="{DATA}/acm_raw/", output_graph_s3="{DATA}/out/", graph_name="acm",
        graph_config_file="config.json")
    GSTrainOperator(
        task_id="train", image_url="{IMAGE}", role="{ROLE}", region="{REGION}", check_interval=1,
        graph_data_s3="{DATA}/acm_2p/", yaml_s3="{DATA}/train.yaml", model_artifact_s3="{DATA}/model/",
        graph_name="acm", task_type="node_classification", deferrable=True)
'''


def test_a_sagemaker_task_stores_both_links_for_the_ui(aws_env, load_dag):
    """Airflow 3 renders the links on the worker when the task ends and keeps them in XCom."""
    from graphstorm_provider.operators.links import SageMakerJobRef, job_console_url, job_logs_url

    dag_run = load_dag(LINKS_DAG, "gs_links").test()
    assert dag_run.state == "success"
    for task_id, kind in (("gconstruct", "processing"), ("train", "training")):
        pushed = xcoms(dag_run, task_id)
        ref = SageMakerJobRef(kind=kind, job_name=pushed["job_name"], region=REGION)
        assert pushed["graphstorm_sagemaker_job"] == ref.to_xcom()
        assert pushed["_link_SageMakerJobConsoleLink"] == job_console_url(ref)
        assert pushed["_link_SageMakerJobLogsLink"] == job_logs_url(ref)
    # Rendering needs no AWS call: the server saw no request for them beyond the jobs' own.
    assert aws_env.received("SageMaker.ListTrainingJobs") == []


LOCAL_LINKS_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.gconstruct import GConstructOperator


with DAG("gs_local_links", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GConstructOperator(
        task_id="gconstruct", image_url="graphstorm:sm", role="{ROLE}", region="{REGION}",
        instance_type="local", input_graph_s3="INPUT", output_graph_s3="OUTPUT",
        graph_name="acm_local_links", graph_config_file="config.json")
'''


def test_a_local_run_links_to_nothing_sagemaker(load_dag, tmp_path, monkeypatch, capfd):
    """Even a local run that fails at once (missing input) must not leave a SageMaker link, nor
    look one up: Airflow's client logs every XCom it does not find at ERROR, two lines per task."""
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    dag_file = LOCAL_LINKS_DAG.replace("INPUT", f"file://{tmp_path}/missing/").replace(
        "OUTPUT", f"file://{tmp_path}/out/"
    )
    dag_run = load_dag(dag_file, "gs_local_links").test()
    pushed = xcoms(dag_run, "gconstruct")
    assert "graphstorm_sagemaker_job" not in pushed
    assert pushed.get("_link_SageMakerJobConsoleLink", "") == ""
    assert pushed.get("_link_SageMakerJobLogsLink", "") == ""
    logged = "".join(capfd.readouterr())
    assert "XCom not found" not in logged
