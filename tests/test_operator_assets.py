"""The steps' outputs as Airflow Assets through their aliases, the train task's metrics and
learning curve, and the example DAG scheduled on new models - against the moto server, run by
``dag.test()``, reading what Airflow recorded in its metadata database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_operators_sagemaker import IMAGE, REGION, ROLE, task_states, xcoms

REPO = Path(__file__).resolve().parents[1]
DOWNSTREAM_DAG_FILE = REPO / "dags" / "graphstorm_on_new_model.py"
BUCKET = "gs-assets"
RUN = f"s3://{BUCKET}/runs/20260105"
METRICS = {
    "format_version": 1,
    "seed": 7,
    "epochs": [
        {
            "epoch": 0,
            "loss": 1.2,
            "last_loss": 1.1,
            "steps": 3,
            "epoch_time": 0.5,
            "validation": {"accuracy": 0.41},
            "test": {"accuracy": 0.40},
        },
        {
            "epoch": 1,
            "loss": 0.8,
            "last_loss": 0.7,
            "steps": 3,
            "epoch_time": 0.4,
            "validation": {"accuracy": 0.63},
            "test": {"accuracy": 0.61},
        },
        {
            "epoch": 2,
            "loss": 0.5,
            "last_loss": 0.45,
            "steps": 3,
            "epoch_time": 0.4,
            "validation": {"accuracy": 0.72},
            "test": {"accuracy": 0.70},
        },
    ],
}

ASSETS_DAG = f'''
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.infer import GSInferOperator
from graphstorm_provider.operators.partition import DistPartitionOperator
from graphstorm_provider.operators.train import GSTrainOperator

common = dict(image_url="{IMAGE}", role="{ROLE}", region="{REGION}", check_interval=1)
with DAG("gs_assets", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    gconstruct = GConstructOperator(
        task_id="gconstruct", input_graph_s3="{RUN}/raw/", output_graph_s3="{RUN}/graph/1/", graph_name="acm",
        graph_config_file="config.json", **common)
    partition = DistPartitionOperator(
        task_id="partition", graph_data_s3="{RUN}/chunked/", num_parts=2, instance_count=2,
        output_data_s3="{RUN}/parts/1/", **common)
    train = GSTrainOperator(
        task_id="train", graph_data_s3=gconstruct.output["output_graph_s3"], yaml_s3="{RUN}/train.yaml",
        model_artifact_s3="{RUN}/model/1/", graph_name="acm", task_type="node_classification", **common)
    infer = GSInferOperator(
        task_id="infer", graph_data_s3=gconstruct.output["output_graph_s3"], yaml_s3="{RUN}/train.yaml",
        model_artifact_s3=train.output["model_artifact_s3"], graph_name="acm", task_type="node_classification",
        output_emb_s3="{RUN}/emb/1/", output_prediction_s3="{RUN}/pred/1/", **common)
    no_wait = GSTrainOperator(
        task_id="no_wait", graph_data_s3="{RUN}/graph/1/", yaml_s3="{RUN}/train.yaml",
        model_artifact_s3="{RUN}/model-no-wait/", graph_name="acm", task_type="node_classification",
        wait_for_completion=False, **common)
    partition >> gconstruct >> train >> infer
'''


@pytest.fixture(autouse=True)
def _no_input_manifests(monkeypatch):
    """moto runs no job, so the inputs these jobs name carry no manifest (operators/preflight.py)."""
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")


def asset_events() -> list[dict]:
    """Every asset event in the metadata database: its asset URI, aliases, source task, extra."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    with create_session() as session:
        events = (
            session.scalars(
                select(AssetEvent).options(joinedload(AssetEvent.asset), joinedload(AssetEvent.source_aliases))
            )
            .unique()
            .all()
        )
        return [
            {
                "uri": e.asset.uri,
                "aliases": sorted(a.name for a in e.source_aliases),
                "task_id": e.source_task_id,
                "run_id": e.source_run_id,
                "extra": e.extra,
            }
            for e in events
        ]


@pytest.fixture
def sync_downstream_dag(load_dag):
    """Put the example downstream DAG into the metadata database, unpaused, as a DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    dag = load_dag(DOWNSTREAM_DAG_FILE.read_text(), "graphstorm_on_new_model")  # into the DAGs folder
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = DagBag(dag_folder=dag.fileloc)
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == "graphstorm_on_new_model").values(is_paused=False))
    return dag


def test_outputs_are_asset_events_with_job_graph_and_metrics(aws_env, load_dag, sync_downstream_dag):
    aws_env.bucket(BUCKET)
    s3 = aws_env.client("s3")
    s3.put_object(Bucket=BUCKET, Key="runs/20260105/model/1/metrics.json", Body=json.dumps(METRICS).encode())
    before = {(e["uri"], e["run_id"]) for e in asset_events()}

    dag_run = load_dag(ASSETS_DAG, "gs_assets").test()
    assert dag_run.state == "success", task_states(dag_run)
    events = [e for e in asset_events() if e["run_id"] == dag_run.run_id and (e["uri"], e["run_id"]) not in before]
    jobs = {task_id: xcoms(dag_run, task_id)["job_name"] for task_id in ("gconstruct", "partition", "train", "infer")}
    final = {"epochs": 3, "final_epoch": 2, "loss": 0.5, "validation": {"accuracy": 0.72}, "test": {"accuracy": 0.70}}

    def extra(task_id: str, output: str, graph_name: str | None = "acm", **more) -> dict:
        return {"job_name": jobs[task_id], "step": task_id, "output": output, "graph_name": graph_name, **more}

    assert sorted(events, key=lambda e: e["uri"]) == sorted(
        [
            {
                "uri": f"{RUN}/graph/1",
                "aliases": ["graphstorm-graph"],
                "task_id": "gconstruct",
                "run_id": dag_run.run_id,
                "extra": extra("gconstruct", "output_graph_s3"),
            },
            {
                "uri": f"{RUN}/parts/1",
                "aliases": ["graphstorm-partitioned-graph"],
                "task_id": "partition",
                "run_id": dag_run.run_id,
                "extra": extra("partition", "output_data_s3", graph_name=None),
            },
            {
                "uri": f"{RUN}/model/1",
                "aliases": ["graphstorm-model"],
                "task_id": "train",
                "run_id": dag_run.run_id,
                "extra": extra("train", "model_artifact_s3", metrics=final),
            },
            {
                "uri": f"{RUN}/emb/1",
                "aliases": ["graphstorm-embeddings"],
                "task_id": "infer",
                "run_id": dag_run.run_id,
                "extra": extra("infer", "output_emb_s3"),
            },
            {
                "uri": f"{RUN}/pred/1",
                "aliases": ["graphstorm-predictions"],
                "task_id": "infer",
                "run_id": dag_run.run_id,
                "extra": extra("infer", "output_prediction_s3"),
            },
        ],
        key=lambda e: e["uri"],
    )  # and nothing for the job nobody waited for (no_wait)

    # The train task's XCom: the metrics as the job wrote them, and the learning curve beside the model.
    train = xcoms(dag_run, "train")
    assert train["metrics"] == METRICS
    assert train["learning_curve_s3"] == f"{RUN}/model/1/learning_curve.png"
    png = s3.get_object(Bucket=BUCKET, Key="runs/20260105/model/1/learning_curve.png")["Body"].read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "metrics" not in xcoms(dag_run, "no_wait")

    # The downstream DAG, scheduled on the model alias, is queued by the new model.
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        queued = (
            session.execute(
                select(AssetModel.uri)
                .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
                .where(AssetDagRunQueue.target_dag_id == "graphstorm_on_new_model")
            )
            .scalars()
            .all()
        )
    assert f"{RUN}/model/1" in queued


def test_a_job_without_metrics_still_succeeds_with_no_metrics_keys(aws_env, load_dag):
    aws_env.bucket(BUCKET)  # no metrics.json under the model: moto's jobs write nothing
    dag_run = load_dag(ASSETS_DAG, "gs_assets").test()
    assert dag_run.state == "success", task_states(dag_run)
    train = xcoms(dag_run, "train")
    assert "metrics" not in train
    assert "learning_curve_s3" not in train
    model_events = [e for e in asset_events() if e["run_id"] == dag_run.run_id and e["task_id"] == "train"]
    assert [e["extra"].get("metrics") for e in model_events] == [None]


@pytest.mark.parametrize(
    ("step", "aliases"),
    [
        ("gconstruct", ["graphstorm-graph"]),
        ("partition", ["graphstorm-partitioned-graph"]),
        ("train", ["graphstorm-model"]),
        ("infer", ["graphstorm-embeddings", "graphstorm-predictions"]),
    ],
)
def test_each_operator_declares_its_aliases_besides_the_dags_own_outlets(step, aliases):
    from airflow.sdk import Asset

    from graphstorm_provider.operators.assets import alias_names
    from tests.test_operators_sagemaker import _operators

    operator_class, kwargs = _operators()[step]
    assert alias_names(operator_class(task_id=step, **kwargs).outlets) == aliases
    mine = Asset("s3://elsewhere/report")
    outlets = operator_class(task_id=step, outlets=[mine], **kwargs).outlets
    assert outlets[0] == mine
    assert alias_names(outlets) == aliases


def test_the_downstream_example_is_scheduled_on_the_model_alias(airflow_home):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetAlias

    bag = DagBag(dag_folder=str(DOWNSTREAM_DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("graphstorm_on_new_model")
    assert list(dag.timetable.asset_condition.objects) == [AssetAlias("graphstorm-model")]


def test_the_downstream_report_describes_each_triggering_model():
    """Its task body on events shaped like Airflow's (asset URI, extra, source run)."""
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("graphstorm_on_new_model", DOWNSTREAM_DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.dag.get_task("report").python_callable
    from airflow.sdk import Asset

    asset = Asset(f"{RUN}/model/1")
    event = SimpleNamespace(
        source_dag_id="gs_assets",
        source_run_id="manual__1",
        extra={"job_name": "gs-train-1", "graph_name": "acm", "metrics": {"epochs": 3, "test": {"accuracy": 0.7}}},
    )
    assert report(triggering_asset_events={asset: [event]}) == [
        {
            "model": f"{RUN}/model/1",
            "source_dag_id": "gs_assets",
            "source_run_id": "manual__1",
            "job_name": "gs-train-1",
            "graph_name": "acm",
            "metrics": {"epochs": 3, "test": {"accuracy": 0.7}},
            "learning_curve": f"{RUN}/model/1/learning_curve.png",
        }
    ]
    assert report(triggering_asset_events={}) == []
