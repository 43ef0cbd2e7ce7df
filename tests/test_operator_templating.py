"""Parameters a DAG author templates: accepted when the DAG is parsed, rendered, checked at task start.

``LocalComposeOperator``'s ``step`` and ``instance_count`` and ``DistPartitionOperator``'s
``skip_partitioning``; and ``LocalComposeOperator`` completing a job as the step operators do (the
train XCom's metrics and learning curve, the outputs' asset events).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import DAG, AssetAlias

from graphstorm_provider.operators.local_compose import LocalComposeOperator
from graphstorm_provider.operators.partition import DistPartitionOperator
from tests.test_compose_operator import TRAIN

PARTITION = dict(
    graph_data_s3="file:///tmp/gs/chunked",
    num_parts=2,
    output_data_s3="file:///tmp/gs/parts",
    image_url="graphstorm:sm",
    instance_type="local",
    role="local",
    region="us-east-1",
    aws_conn_id=None,
)


def rendered(op, **params):
    """``op`` with its template fields rendered as the task would render them with these DAG params."""
    op.render_template_fields({"params": params})
    return op


def in_dag(make):
    with DAG(f"gs_templating_{id(make)}", schedule=None, start_date=datetime(2024, 1, 1)):
        return make()


# --- LocalComposeOperator.step ---------------------------------------------------------------


def test_a_templated_step_is_accepted_when_the_dag_is_parsed_and_rendered_at_task_start():
    op = in_dag(lambda: LocalComposeOperator(task_id="t", step="{{ params.step }}", retries=3, **TRAIN))
    assert op.retries == 3  # still split from the step's parameters
    job = rendered(op, step="training").build_job()
    assert job.step == "train"
    assert job.outputs["model_artifact_s3"] == "file:///tmp/gs/model/"


def test_a_templated_step_that_renders_to_no_step_fails_at_task_start_without_retry():
    op = rendered(LocalComposeOperator(task_id="t", step="{{ params.step }}", **TRAIN), step="gconstruct")
    with pytest.raises(AirflowFailException, match=r"^step must be one of partition, .*got 'gconstruct'"):
        op.execute(context={})


def test_parameters_the_rendered_step_does_not_have_fail_at_task_start_naming_them():
    op = rendered(LocalComposeOperator(task_id="t", step="{{ params.step }}", **TRAIN), step="partition")
    with pytest.raises(AirflowFailException, match=r"^LocalComposeOperator step partition has no parameter .*yaml_s3"):
        op.execute(context={})


def test_a_mistyped_parameter_fails_at_task_start_with_a_suggestion():
    """Creating the operator imports no spec, so parameter names are checked when the task starts."""
    kwargs = {**TRAIN, "grph_name": TRAIN["graph_name"]}
    op = LocalComposeOperator(task_id="t", step="train", **kwargs)
    with pytest.raises(AirflowFailException, match=r"has no parameter grph_name \(did you mean graph_name\?\)\.$"):
        op.execute(context={})


def test_a_literal_bad_step_still_fails_when_the_operator_is_created():
    with pytest.raises(ValueError, match=r"^step must be one of .*got 'gconstruct'"):
        LocalComposeOperator(task_id="t", step="gconstruct", **TRAIN)
    with pytest.raises(ValueError, match=r"^step must be one of .*got 'trian'"):
        LocalComposeOperator(task_id="t", step="trian", **TRAIN)


def test_a_mapped_task_with_a_bad_step_fails_without_retry():
    """A mapped task is created when it starts: a bad step there fails it at once, not retried."""
    with pytest.raises(AirflowFailException, match=r"^step must be one of .*got 'trian'"):
        LocalComposeOperator(task_id="t", step="trian", _airflow_from_mapped=True, **TRAIN)


def test_the_fast_step_names_agree_with_the_job_specs():
    from graphstorm_provider.jobs import COMPOSE_ACTIONS, compose_step
    from graphstorm_provider.operators.local_compose import COMPOSE_STEP_NAMES

    assert set(COMPOSE_STEP_NAMES) == {*COMPOSE_ACTIONS, *COMPOSE_ACTIONS.values()}
    assert all(compose_step(name).step == step for name, step in COMPOSE_STEP_NAMES.items())


def test_creating_the_operator_imports_no_job_spec():
    """DAG parse time: creating the operator, literal or templated step, imports no spec (jobs/)."""
    code = f"""
import sys
import airflow.sdk
from graphstorm_provider.operators.local_compose import LocalComposeOperator
train = {TRAIN!r}
with airflow.sdk.DAG("gs_parse", schedule=None):
    LocalComposeOperator(task_id="a", step="train", instance_count=2, **train)
    LocalComposeOperator(task_id="b", step="{{{{ params.step }}}}", instance_count="{{{{ params.n }}}}", **train)
heavy = sorted(m for m in sys.modules if m.startswith("graphstorm_provider.jobs"))
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


# --- LocalComposeOperator.instance_count -----------------------------------------------------


def test_instance_count_is_templated_with_step_parameters_and_with_a_spec():
    from graphstorm_provider.jobs.train import TrainSpec

    op = LocalComposeOperator(task_id="t", step="train", instance_count="{{ params.hosts }}", **TRAIN)
    assert "instance_count" in op.template_fields
    assert rendered(op, hosts=3).build_job().instance_count == 3
    spec = TrainSpec(**TRAIN, instance_type="local", instance_count=2, role="local")
    op = LocalComposeOperator(task_id="t", spec=spec, instance_count="{{ params.hosts }}")
    assert rendered(op, hosts=4).build_job().instance_count == 4


def test_a_templated_instance_count_that_renders_bad_fails_at_task_start_naming_it():
    op = LocalComposeOperator(task_id="t", step="train", instance_count="{{ params.hosts }}", **TRAIN)
    with pytest.raises(AirflowFailException, match=r"^--instance-count must be an integer >= 1, got 'many'"):
        rendered(op, hosts="many").execute(context={})


# --- DistPartitionOperator.skip_partitioning -------------------------------------------------


@pytest.mark.parametrize(("value", "skips"), [(True, True), (False, False), ("true", True)])
def test_skip_partitioning_is_templated(value, skips):
    op = DistPartitionOperator(task_id="p", skip_partitioning="{{ params.skip }}", **PARTITION)
    assert "skip_partitioning" in op.template_fields
    job = rendered(op, skip=value).build_job()
    assert ("--skip-partitioning" in job.container_arguments) is skips


def test_a_templated_skip_partitioning_that_renders_bad_fails_at_task_start_naming_it():
    op = DistPartitionOperator(task_id="p", skip_partitioning="{{ params.skip }}", **PARTITION)
    with pytest.raises(AirflowFailException, match=r"^--skip-partitioning must be true or false, got 'perhaps'"):
        rendered(op, skip="perhaps").execute(context={})


# --- LocalComposeOperator completes a job as the step operators do ---------------------------


METRICS = {
    "format_version": 1,
    "seed": 7,
    "epochs": [
        {"epoch": 0, "loss": 1.2, "validation": {"accuracy": 0.41}, "test": {"accuracy": 0.40}},
        {"epoch": 1, "loss": 0.8, "validation": {"accuracy": 0.63}, "test": {"accuracy": 0.61}},
    ],
}


@pytest.fixture
def fake_run(monkeypatch):
    """``run_here`` that runs nothing: a train job's model folder gets ``metrics.json``; records the jobs."""
    from graphstorm_provider.data import storage

    ran = []

    def run_here(operator, job, **kwargs):
        ran.append(job)
        if "model_artifact_s3" in job.outputs:
            storage.write_bytes(
                storage.join(job.outputs["model_artifact_s3"], "metrics.json"), json.dumps(METRICS).encode()
            )

    monkeypatch.setattr("graphstorm_provider.operators.base.run_here", run_here)
    return ran


def local_train(tmp_path, **extra):
    return {
        **TRAIN,
        "graph_data_s3": f"file://{tmp_path}/graph/",
        "yaml_s3": f"file://{tmp_path}/train.yaml",
        "model_artifact_s3": f"file://{tmp_path}/model/",
        "aws_conn_id": None,
        "require_input_manifests": False,
        **extra,
    }


def test_a_train_job_returns_the_step_operators_xcom_metrics_and_learning_curve(tmp_path, fake_run):
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from graphstorm_provider.operators.train import GSTrainOperator

    events = OutletEventAccessors()
    result = LocalComposeOperator(task_id="train", step="train", **local_train(tmp_path)).execute(
        context={"outlet_events": events}
    )
    [job] = fake_run
    assert result == {
        "job_name": job.job_name,
        "model_artifact_s3": f"file://{tmp_path}/model/",
        "metrics": METRICS,
        "learning_curve_s3": f"file://{tmp_path}/model/learning_curve.png",
    }
    assert (tmp_path / "model" / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    # The same keys as GSTrainOperator's XCom for the same job (one function: operators/metrics.py).
    step_op = GSTrainOperator(task_id="t2", instance_type="local", **local_train(tmp_path))
    assert step_op.job_results(job).keys() == result.keys() - {"job_name", "model_artifact_s3"}
    [event] = events[AssetAlias("graphstorm-model")].asset_alias_events
    assert event.dest_asset_key.uri == f"file://{tmp_path}/model"
    assert event.extra == {
        "job_name": job.job_name,
        "step": "train",
        "output": "model_artifact_s3",
        "graph_name": "acm",
        "metrics": {
            "epochs": 2,
            "final_epoch": 1,
            "loss": 0.8,
            "validation": {"accuracy": 0.63},
            "test": {"accuracy": 0.61},
        },
    }


def test_a_step_cache_hit_returns_the_producing_jobs_metrics_and_announces_nothing(tmp_path, fake_run, monkeypatch):
    """As a step operator's hit on another run's job: the same XCom; its outputs were announced when they landed."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "metrics.json").write_text(json.dumps(METRICS))
    model = f"file://{tmp_path}/model/"
    hit = {"job_name": "gs-train-earlier", "model_artifact_s3": model}
    monkeypatch.setattr("graphstorm_provider.operators.guards.before_launch", lambda operator, job: hit)
    events = OutletEventAccessors()
    op = LocalComposeOperator(task_id="train", step="train", skip_if_complete=True, **local_train(tmp_path))
    result = op.execute(context={"outlet_events": events})
    assert result == {**hit, "metrics": METRICS, "learning_curve_s3": model + "learning_curve.png"}
    assert fake_run == []
    assert events[AssetAlias("graphstorm-model")].asset_alias_events == []


def test_a_step_cache_hit_on_this_task_instances_own_job_announces_its_outputs(tmp_path, fake_run, monkeypatch):
    """A retry after its own job completed: the job's outputs are announced, as a step operator's are."""
    from types import SimpleNamespace

    from airflow.sdk.execution_time.context import OutletEventAccessors

    from graphstorm_provider.jobs import naming

    model = f"file://{tmp_path}/model/"
    ti = SimpleNamespace(dag_id="d", task_id="train", run_id="manual__1", map_index=-1)
    op = LocalComposeOperator(task_id="train", step="train", skip_if_complete=True, **local_train(tmp_path))
    own_name = op.build_job(context={"ti": ti}).job_name  # this task instance's, in every attempt
    hit = {"job_name": naming.attempt_name(own_name, 2), "model_artifact_s3": model}
    monkeypatch.setattr("graphstorm_provider.operators.guards.before_launch", lambda operator, job: hit)
    events = OutletEventAccessors()
    result = op.execute(context={"outlet_events": events, "ti": ti})
    assert result["job_name"] == hit["job_name"]
    assert fake_run == []
    [event] = events[AssetAlias("graphstorm-model")].asset_alias_events
    assert event.dest_asset_key.uri.rstrip("/") == model.rstrip("/")


def test_the_outlets_are_the_steps_aliases_all_compose_steps_when_the_step_is_templated():
    from graphstorm_provider.operators.assets import alias_names

    train = LocalComposeOperator(task_id="a", step="training", outlets=[AssetAlias("mine")], **TRAIN)
    assert alias_names(train.outlets) == ["mine", "graphstorm-model"]
    templated = LocalComposeOperator(task_id="b", step="{{ params.step }}", **TRAIN)
    assert alias_names(templated.outlets) == [
        "graphstorm-partitioned-graph",
        "graphstorm-model",
        "graphstorm-embeddings",
        "graphstorm-predictions",
    ]


def test_an_output_an_asset_cannot_name_is_refused_before_the_job_runs(tmp_path, fake_run):
    kwargs = local_train(tmp_path, model_artifact_s3=f"file://{tmp_path}/model#1/")
    with pytest.raises(AirflowFailException, match=r"^model_artifact_s3 .*model#1/ contains '#'"):
        LocalComposeOperator(task_id="train", step="train", **kwargs).execute(context={})
    assert fake_run == []


LOCAL_COMPOSE_DAG = """
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.local_compose import LocalComposeOperator

with DAG("gs_local_compose_assets", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         params={{"step": "training"}}) as dag:
    LocalComposeOperator(task_id="train", step="{{{{ params.step }}}}", **{kwargs!r})
"""


def test_in_a_dag_run_a_templated_train_step_records_its_model_event_and_metrics(
    tmp_path, fake_run, load_dag, monkeypatch
):
    """What Airflow keeps: the XCom with metrics, and the model's asset event (the alias is declared)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from tests.test_operators_sagemaker import task_states, xcoms

    for name in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    dag_run = load_dag(LOCAL_COMPOSE_DAG.format(kwargs=local_train(tmp_path)), "gs_local_compose_assets").test()
    assert dag_run.state == "success", task_states(dag_run)
    xcom = xcoms(dag_run, "train")
    assert xcom["metrics"] == METRICS
    assert xcom["learning_curve_s3"] == f"file://{tmp_path}/model/learning_curve.png"
    with create_session() as session:
        events = (
            session.scalars(
                select(AssetEvent)
                .options(joinedload(AssetEvent.asset))
                .where(AssetEvent.source_run_id == dag_run.run_id, AssetEvent.source_dag_id == dag_run.dag_id)
            )
            .unique()
            .all()
        )
        recorded = [(e.asset.uri, e.extra["step"], e.extra["metrics"]["final_epoch"]) for e in events]
    assert recorded == [(f"file://{tmp_path}/model", "train", 1)]
