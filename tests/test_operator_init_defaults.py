"""One default_args pass per GraphStorm task (operators/init_defaults.py), with Airflow's semantics kept."""

from __future__ import annotations

from datetime import datetime

import pytest
from airflow.sdk import DAG, Param
from airflow.sdk.bases import operator as sdk_operator

from graphstorm_provider.operators.base import GraphStormBaseOperator
from graphstorm_provider.operators.gconstruct import GConstructOperator
from graphstorm_provider.operators.graphstorm_job import GraphStormJobOperator
from graphstorm_provider.operators.infer import GSInferOperator
from graphstorm_provider.operators.train import GSTrainOperator

TRAIN_ARGS = {
    "graph_data_s3": "file:///tmp/g/",
    "yaml_s3": "file:///tmp/t.yaml",
    "model_artifact_s3": "file:///tmp/m/",
    "graph_name": "acm",
    "task_type": "node_classification",
}
PARAMS = {f"p{i}": Param(i, type="integer", minimum=0, description=f"param {i}") for i in range(5)}


def new_dag(**kwargs: object) -> DAG:
    return DAG(dag_id="init_defaults", schedule=None, start_date=datetime(2024, 1, 1), params=PARAMS, **kwargs)


def test_a_graphstorm_task_copies_the_dags_params_once_as_an_airflow_operator_does(monkeypatch):
    """Its own class's pass only: not one per class of the hierarchy (four for training), nor BaseOperator's."""
    from airflow.providers.standard.operators.empty import EmptyOperator

    calls = []
    real = sdk_operator._get_parent_defaults

    def counting(dag, task_group):
        calls.append(dag.dag_id)
        return real(dag, task_group)

    monkeypatch.setattr(sdk_operator, "_get_parent_defaults", counting)
    with new_dag() as dag:
        EmptyOperator(task_id="empty")
        assert len(calls) == 1
        calls.clear()
        train = GSTrainOperator(task_id="train", **TRAIN_ARGS)
        assert len(calls) == 1
        calls.clear()
        GConstructOperator(
            task_id="gconstruct",
            input_graph_s3="file:///tmp/raw/",
            output_graph_s3="file:///tmp/graph/",
            graph_config_file="config.json",
            graph_name="acm",
        )
        assert len(calls) == 1
    assert set(train.params) == set(PARAMS)  # the DAG's params still reach the task
    assert train.params.get_param("p0") is not dag.params.get_param("p0")  # its own copy, as Airflow makes


def test_base_operator_arguments_come_from_default_args_and_are_recorded():
    default_args = {"retries": 4, "owner": "graph-team", "params": {"extra": Param(1, type="integer")}}
    with new_dag(default_args=default_args):
        op = GSTrainOperator(task_id="train", **TRAIN_ARGS)
        mine = GSTrainOperator(task_id="mine", retries=0, **TRAIN_ARGS)
    assert (op.retries, op.owner, mine.retries) == (4, "graph-team", 0)
    assert set(op.params) == {*PARAMS, "extra"}
    init_kwargs = op._BaseOperator__init_kwargs
    assert (init_kwargs["retries"], init_kwargs["owner"]) == (4, "graph-team")
    assert "default_args" not in init_kwargs
    assert init_kwargs["multiple_outputs"] is True  # what GraphStormBaseOperator handed BaseOperator


def test_a_mixin_between_the_graphstorm_base_and_base_operator_still_runs():
    from airflow.sdk import BaseOperator

    class Tagging(BaseOperator):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.tagged = True

    class TaggedTrain(GSTrainOperator, Tagging):
        pass

    assert TaggedTrain.__mro__.index(Tagging) == TaggedTrain.__mro__.index(GraphStormBaseOperator) + 1
    with new_dag(default_args={"retries": 2}):
        op = TaggedTrain(task_id="train", **TRAIN_ARGS)
    assert op.tagged
    assert op.retries == 2


def test_default_args_reach_every_class_of_the_hierarchy_and_explicit_arguments_win():
    default_args = {
        "aws_conn_id": "from_defaults",  # GraphStormBaseOperator
        "check_interval": 7,  # GraphStormBaseOperator
        "custom_script": "/opt/custom.py",  # GraphStormJobOperator
        "model_checkpoint_to_load": "file:///tmp/ckpt/",  # GSTrainOperator
        "retries": 3,  # BaseOperator
    }
    with new_dag(default_args=default_args):
        filled = GSTrainOperator(task_id="filled", **TRAIN_ARGS)
        explicit = GSTrainOperator(
            task_id="explicit", aws_conn_id="mine", check_interval=1, custom_script="/opt/mine.py", **TRAIN_ARGS
        )
    assert (filled.aws_conn_id, filled.check_interval, filled.custom_script) == ("from_defaults", 7, "/opt/custom.py")
    assert filled.model_checkpoint_to_load == "file:///tmp/ckpt/"
    assert filled.retries == 3
    assert (explicit.aws_conn_id, explicit.check_interval, explicit.custom_script) == ("mine", 1, "/opt/mine.py")
    # Recorded with the operator's init kwargs, as Airflow's own pass records them.
    init_kwargs = filled._BaseOperator__init_kwargs
    assert init_kwargs["aws_conn_id"] == "from_defaults"
    assert init_kwargs["custom_script"] == "/opt/custom.py"


def test_task_default_args_fill_base_class_arguments():
    with new_dag():
        op = GSInferOperator(
            task_id="infer",
            default_args={"region": "eu-west-1", "print_log": False},
            output_emb_s3="file:///tmp/emb/",
            **TRAIN_ARGS,
        )
    assert (op.region, op.print_log) == ("eu-west-1", False)


def test_partial_accepts_base_class_arguments_and_refuses_unknown_ones():
    with new_dag():
        fixed = {k: v for k, v in TRAIN_ARGS.items() if k != "graph_name"}
        mapped = GSTrainOperator.partial(task_id="mapped", aws_conn_id="x", **fixed).expand(graph_name=["a", "b"])
        assert mapped.partial_kwargs["aws_conn_id"] == "x"
        with pytest.raises(TypeError, match="num_epoch"):
            GSTrainOperator.partial(task_id="bad", num_epoch=5, **TRAIN_ARGS)


def test_a_subclass_without_an_init_of_its_own_gets_airflows_full_pass():
    """Its ``__init__`` is the light one: it must still set XComArg dependencies and fill default_args."""

    class DirectJob(GraphStormJobOperator):
        spec_module = "graphstorm_provider.jobs.train"
        spec_class_name = "TrainSpec"

    with new_dag(default_args={"aws_conn_id": "from_defaults"}):
        upstream = GSTrainOperator(task_id="upstream", **TRAIN_ARGS)
        direct = DirectJob(task_id="direct", **{**TRAIN_ARGS, "graph_data_s3": upstream.output["model_artifact_s3"]})
    assert direct.upstream_task_ids == {"upstream"}
    assert direct.aws_conn_id == "from_defaults"
    assert isinstance(direct, GraphStormBaseOperator)
