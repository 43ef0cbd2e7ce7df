"""The example DAGs as a person uses them: their params, a bad or unknown conf, per-date outputs,
and the SageMaker example end to end against the moto server (``dag.test()``, no GraphStorm run).
"""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graphstorm_provider.dags_support import (
    base_uri_problem,
    check_run_conf,
    run_key,
    run_prefix,
    run_values_message,
    unknown_conf_message,
)

DAGS = Path(__file__).resolve().parents[1] / "dags"
EXAMPLES = ("graphstorm_local_e2e", "graphstorm_weekly_retrain", "graphstorm_sagemaker_e2e", "graphstorm_chunked_e2e")
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
SMALL = {"num_papers": 200, "num_epochs": 1, "region": "us-east-1"}


def parse(dag_id: str):
    spec = importlib.util.spec_from_file_location(f"{dag_id}_under_test", DAGS / f"{dag_id}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


# --- parse time ------------------------------------------------------------------------------
# What parsing a file imports once the DAG processor has pre-imported its top-level airflow.*
# imports ([dag_processor] parsing_pre_import_modules) and the preload line ran: nothing, so a
# forked parse pays for no module (airflow.sdk loads ``task`` lazily: a @task would import the
# TaskFlow modules in every parse unless the file names them).
NEW_MODULES_PROBE = """
import importlib, importlib.util, json, sys
from datetime import datetime
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.utils.file import iter_airflow_imports
import graphstorm_provider.preload

with DAG("warm_up", schedule=None, start_date=datetime(2024, 1, 1)):  # what a running DAG processor has done
    EmptyOperator(task_id="t")
found = {}
for path in sys.argv[1:]:
    for name in iter_airflow_imports(path):
        importlib.import_module(name)
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location("example_under_test", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    found[path] = sorted(set(sys.modules) - before - {"example_under_test"})
print(json.dumps(found))
"""


def test_parsing_an_example_imports_no_module_the_dag_processor_has_not_imported_before_the_fork(tmp_path):
    import os
    import subprocess
    import sys

    files = [str(p) for p in sorted(DAGS.glob("*.py"))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", NEW_MODULES_PROBE, *files], env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(found) == set(files)
    assert found == dict.fromkeys(files, [])


def _graphstorm_imports(dag_file: Path) -> set[str]:
    """The graphstorm_provider modules a DAG file imports at its top level (not the package itself)."""
    import ast

    names = set()
    for node in ast.parse(dag_file.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("graphstorm_provider.")}


def test_the_preload_module_imports_what_every_example_dag_file_imports():
    from graphstorm_provider import preload

    wanted = set().union(*(_graphstorm_imports(f) for f in DAGS.glob("*.py")))
    assert wanted, "the examples import GraphStorm operators"
    assert wanted <= set(preload.MODULES), sorted(wanted - set(preload.MODULES))


def test_airflow_local_settings_with_the_preload_line_imports_the_operators_and_nothing_heavy(tmp_path):
    # What a DAG processor started with that line has imported before it forks a parser.
    import os
    import subprocess
    import sys

    from graphstorm_provider import preload

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "airflow_local_settings.py").write_text("import graphstorm_provider.preload  # noqa: F401\n")
    probe = (
        "import json, sys, airflow.settings; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('graphstorm_provider.', 'boto3', 'torch')))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert set(preload.MODULES) <= loaded
    assert not {m for m in loaded if m.startswith(("boto3", "torch"))}


def _graphstorm_operator_classes(modules) -> set[type]:
    import sys

    from airflow.sdk import BaseOperator

    return {
        value
        for name in modules
        for value in vars(sys.modules[name]).values()
        if isinstance(value, type) and issubclass(value, BaseOperator) and value.__module__ == name
    }


def test_the_preload_warm_up_creates_a_task_of_every_preloaded_operator_and_fills_its_class_caches():
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from graphstorm_provider import preload

    dag = preload.warm_up()
    classes = _graphstorm_operator_classes(preload.MODULES)
    assert len(classes) == 4, classes  # gconstruct, partition, train, infer
    assert {type(task) for task in dag.tasks} == classes
    assert all("_BaseOperator__serialized_fields" in vars(cls) for cls in classes)  # per class, not inherited
    assert dag.get_task("infer").upstream_task_ids == {"partition", "train"}  # wired through XCom
    assert DagContext.get_current() is None


def test_a_dag_file_that_imports_the_preload_module_holds_its_own_dags_only(tmp_path):
    # In a fresh interpreter the warm-up runs during the DagBag's import of the file: its DAG
    # must not be registered as one of the file's.
    import os
    import subprocess
    import sys

    (tmp_path / "with_preload.py").write_text(
        "import graphstorm_provider.preload  # noqa: F401\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "from airflow.sdk import DAG\n"
        "with DAG('mine', schedule=None):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    probe = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        "bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=sys.argv[2], bundle_name='b', load_op_links=False)\n"
        "print(json.dumps({'dags': sorted(bag.dag_ids), 'errors': list(bag.import_errors)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "with_preload.py"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"dags": ["mine"], "errors": []}


def test_a_failed_preload_warm_up_logs_one_warning_and_raises_nothing(monkeypatch, caplog):
    import logging

    from graphstorm_provider import preload

    def broken() -> None:
        raise TypeError("GConstructOperator.__init__() got an unexpected keyword argument 'graph_name'")

    monkeypatch.setattr(preload, "warm_up", broken)
    with caplog.at_level(logging.WARNING, logger=preload.__name__):
        preload._warm_up_or_warn()
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "warm-up failed" in caplog.records[0].getMessage()
    assert "unexpected keyword argument 'graph_name'" in caplog.records[0].getMessage()


# --- params ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_every_param_has_a_title_a_description_and_integers_a_range(dag_id):
    dag = parse(dag_id)
    for name, param in dag.params.items():
        schema = param.schema
        assert schema.get("title"), name
        assert param.description, name
        if schema.get("type") == "integer":
            # Shown in words, enforced with exclusive bounds (the form clamps minimum/maximum).
            assert " to " in param.description, name
            assert "exclusiveMinimum" in schema, name
            assert "exclusiveMaximum" in schema, name
            assert "minimum" not in schema, name
            assert "maximum" not in schema, name
    assert dag.params.get_param("task_type").schema["enum"] == ["node_classification"]
    dag.params.validate()  # the defaults are valid


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("num_layers", 4, True),
        ("num_layers", 99, False),
        ("num_layers", 0, False),
        ("num_epochs", 100, True),
        ("num_epochs", 101, False),
        ("lr", 0.5, True),
        ("lr", 0, False),
        ("instance_type", "local", True),
        ("instance_type", "ml.g4dn.xlarge", True),
        ("instance_type", "gpu-box", False),
        ("instance_type", "ml.m5", False),
        ("task_type", "link_prediction", False),
        ("role", "my-role", False),
        ("graph_name", "a b", False),
    ],
)
def test_the_params_json_schema_refuses_bad_values(name, value, ok):
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(parse("graphstorm_local_e2e").params)
    params[name] = value if ok else params.get_param(name).value
    if ok:
        params.validate()
    else:
        param = params.get_param(name)
        with pytest.raises(ParamValidationError):
            param.resolve(value)


def test_the_sagemaker_example_accepts_only_sagemaker_settings():
    from airflow.sdk.exceptions import ParamValidationError

    params = parse("graphstorm_sagemaker_e2e").params
    for name, bad in (("instance_type", "local"), ("base_uri", "file:///tmp/x"), ("image_url", "graphstorm:local")):
        with pytest.raises(ParamValidationError):
            params.get_param(name).resolve(bad)


def test_an_unknown_conf_key_is_named_with_a_suggestion():
    params = parse("graphstorm_local_e2e").params
    message = unknown_conf_message({"num_epoch": 5, "zzz": 1, "seed": 3}, params.keys())
    assert message.startswith("the run conf has unknown keys 'num_epoch' (did you mean 'num_epochs'?), 'zzz';")
    assert unknown_conf_message({"seed": 3}, params.keys()) is None
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="did you mean 'num_epochs'"):
        check_run_conf({"num_epoch": 5}, params)


def test_a_run_with_an_unknown_key_fails_in_its_first_task_and_runs_nothing_else(load_dag, tmp_path):
    dag = load_dag((DAGS / "graphstorm_local_e2e.py").read_text(), "graphstorm_local_e2e")
    run = dag.test(run_conf={"num_epoch": 5, "base_uri": f"file://{tmp_path}"})
    states = task_states(run)
    assert states["prepare"] == "failed"
    assert {states[t] for t in ("gconstruct", "train", "infer", "report")} == {"upstream_failed"}
    assert not any(tmp_path.iterdir())  # prepare wrote nothing


@pytest.mark.parametrize(
    ("conf", "named"),
    [
        ({"base_uri": "file://{tmp}/a%00b"}, "NUL character"),
        ({"base_uri": "file://{tmp}/" + "x" * 300}, "longer than 255 bytes"),
        ({"base_uri": "file://{tmp}/a/%2e%2e/b"}, "base_uri: .*'..' segment"),
        ({"num_layers": 2.0}, r"num_layers must be a whole number .*\(2, not 2.0\)"),
    ],
)
def test_what_the_schemas_let_through_fails_the_first_task_and_writes_nothing(load_dag, tmp_path, capsys, conf, named):
    dag = load_dag((DAGS / "graphstorm_local_e2e.py").read_text(), "graphstorm_local_e2e")
    out = tmp_path / "out"
    out.mkdir()
    conf = {"base_uri": out.as_uri(), **{k: v.format(tmp=out) if isinstance(v, str) else v for k, v in conf.items()}}
    run = dag.test(run_conf=conf)
    states = task_states(run)
    assert states["prepare"] == "failed"
    assert {states[t] for t in ("gconstruct", "train", "infer", "report")} == {"upstream_failed"}
    assert not any(out.iterdir())  # prepare wrote nothing
    assert re.search(named, capsys.readouterr().out)  # the task log (dag.test prints it) names it


def test_task_params_are_checked_like_a_run_conf():
    """``airflow tasks test -t`` hands params to the task, not a run conf: a typo there is refused too."""
    params = parse("graphstorm_local_e2e").params
    values = {name: params[name] for name in params}
    assert run_values_message(values, params) is None
    message = run_values_message({**values, "num_epoch": 5}, params)
    assert message.startswith("the task's params have unknown key 'num_epoch' (did you mean 'num_epochs'?)")
    chunked = parse("graphstorm_chunked_e2e").params
    assert "instance_count must be a whole number" in run_values_message(
        {**{n: chunked[n] for n in chunked}, "instance_count": 2.0}, chunked
    )


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("file:///tmp/runs", None),
        ("s3://bucket/prefix", None),
        ("file:///", "must name a folder below /"),
        ("file:///.", "must name a folder below /"),
        ("file:///%2e/", "must name a folder below /"),
        ("file:///a/../b", "'..' segment"),
        ("file://relative/x", "not an absolute file URI"),
        ("file:///" + "a/" * 1600, "path is longer than 3072 bytes"),
        ("s3://bucket/" + "k" * 800, "key is longer than 768 bytes"),
    ],
)
def test_a_base_uri_no_run_can_write_under_is_named(uri, problem):
    message = base_uri_problem(uri)
    assert (message is None) if problem is None else (problem in message and "base_uri" in message)


def test_the_base_uri_param_refuses_the_root_at_trigger_and_the_prefix_keeps_the_scheme():
    from airflow.sdk.exceptions import ParamValidationError

    param = parse("graphstorm_local_e2e").params.get_param("base_uri")
    for root in ("file:///", "file:////tmp/x"):
        with pytest.raises(ParamValidationError):
            param.resolve(root)
    assert param.resolve("file:///tmp/x") == "file:///tmp/x"
    date = datetime(2026, 3, 1, tzinfo=UTC)
    assert run_prefix("file:///", date, "r") == "file:///20260301"
    assert run_prefix("file:///tmp/x//", date, "r") == "file:///tmp/x/20260301"
    assert run_prefix("s3://b/p/", date, "r") == "s3://b/p/20260301"


def test_a_dag_without_params_says_so_when_refusing_a_key():
    assert unknown_conf_message({"x": 1}, []) == "the run conf has unknown key 'x'; this DAG takes no params"


def test_the_downstream_example_refuses_a_run_conf_too(load_dag):
    """It declares no params, so any conf key is unknown: refused as in the other examples, not ignored."""
    dag = load_dag((DAGS / "graphstorm_on_new_model.py").read_text(), "graphstorm_on_new_model")
    assert task_states(dag.test(run_conf={"model": "s3://b/m/1"})) == {"report": "failed"}
    assert task_states(dag.test()) == {"report": "success"}


def test_a_run_with_an_out_of_range_value_is_refused_not_clamped(load_dag):
    from airflow.sdk.exceptions import ParamValidationError

    dag = load_dag((DAGS / "graphstorm_local_e2e.py").read_text(), "graphstorm_local_e2e")
    with pytest.raises(ParamValidationError, match="num_layers"):
        dag.test(run_conf={"num_layers": 99})


# --- run keys --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("logical_date", "run_id", "expected"),
    [
        (datetime(2026, 1, 5, tzinfo=UTC), "backfill__2026-01-05T00:00:00+00:00", "20260105"),
        (datetime(2026, 11, 28, 12, 46, 0, 577, tzinfo=UTC), "manual__x", "20261128T124600"),
        (None, "manual__2026-11-28T12:46:00.577380+00:00", "manual__2026-11-28T12-46-00.577380-00-00"),
        (None, "my run/../x", "my-run-..-x"),
    ],
)
def test_outputs_are_named_by_the_logical_date_else_the_run_id(logical_date, run_id, expected):
    assert run_key(logical_date, run_id) == expected
    assert run_prefix("s3://b/runs/", logical_date, run_id) == f"s3://b/runs/{expected}"


def test_the_weekly_example_is_scheduled_and_backfillable():
    from airflow.serialization.serialized_objects import DagSerialization

    dag = parse("graphstorm_weekly_retrain")
    # What the scheduler sees; `airflow backfill create` refuses a DAG whose timetable is not periodic.
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert serialized.timetable.periodic
    assert dag.catchup is False
    assert dag.start_date < datetime.now(UTC)


# --- against the moto server -------------------------------------------------------------------
def requests(aws_env) -> dict[str, list[dict]]:
    return {kind: aws_env.received(f"SageMaker.Create{kind}Job") for kind in ("Processing", "Training")}


def test_the_sagemaker_example_runs_end_to_end_each_step_reading_the_previous_outputs(aws_env, load_dag, monkeypatch):
    # moto runs no job, so no step writes its manifest: the site-wide opt-out.
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    base = aws_env.bucket("gs-sagemaker-example") + "/runs"
    dag = load_dag((DAGS / "graphstorm_sagemaker_e2e.py").read_text(), "graphstorm_sagemaker_e2e")
    run = dag.test(
        logical_date=datetime(2026, 1, 5, tzinfo=UTC),
        run_conf={**SMALL, "base_uri": base, "image_url": IMAGE, "role": ROLE},
    )
    assert set(task_states(run).values()) == {"success"}, task_states(run)

    prefix = f"{base}/20260105"
    sent = requests(aws_env)
    [gconstruct] = sent["Processing"]
    train, infer = sent["Training"]
    text = {name: json.dumps(body) for name, body in (("gc", gconstruct), ("train", train), ("infer", infer))}
    assert gconstruct["ProcessingJobName"].startswith("gs-sm-gconstruct-20260105-")
    assert train["TrainingJobName"].startswith("gs-sm-train-20260105-")
    assert infer["TrainingJobName"].startswith("gs-sm-infer-20260105-")
    assert all(body["AppSpecification"]["ImageUri"] == IMAGE for body in [gconstruct])
    assert train["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert train["RoleArn"] == ROLE
    # gconstruct reads what prepare uploaded and writes graph/1; train reads that graph and writes
    # model/1; infer reads that graph and that model.
    assert f"{prefix}/raw" in text["gc"]
    assert f"{prefix}/graph/1" in text["gc"]
    assert f"{prefix}/graph/1" in text["train"]
    assert f"{prefix}/model/1" in text["train"]
    assert f"{prefix}/graph/1" in text["infer"]
    assert f"{prefix}/model/1" in text["infer"]
    assert f"{prefix}/predictions/1" in text["infer"]
    assert f"{prefix}/embeddings/1" in text["infer"]
    assert '"--seed"' in text["train"]
    assert '"--seed"' not in text["infer"]
    # prepare uploaded through the connection; summary names every job and folder, in one XCom.
    s3 = aws_env.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="gs-sagemaker-example")["Contents"]}
    assert "runs/20260105/raw/config.json" in keys
    assert "runs/20260105/summary.json" in keys
    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids="summary")).all()
        assert [row.key for row in rows] == ["return_value"]
        summary = XComModel.deserialize_value(rows[0])
    assert summary["model"].rstrip("/") == f"{prefix}/model/1"
    assert summary["jobs"]["train"] == train["TrainingJobName"]


def test_two_weekly_dates_write_separate_prefixes_and_job_names(aws_env, load_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS", "False")  # moto writes no manifests
    base = aws_env.bucket("gs-weekly-example") + "/weekly"
    dag = load_dag((DAGS / "graphstorm_weekly_retrain.py").read_text(), "graphstorm_weekly_retrain")
    conf = {**SMALL, "base_uri": base, "image_url": IMAGE, "role": ROLE, "instance_type": "ml.m5.xlarge"}
    for day in (4, 11):
        # moto runs no GraphStorm, so there are no predictions to score: the report is skipped.
        run = dag.test(logical_date=datetime(2026, 1, day, tzinfo=UTC), run_conf=conf, mark_success_pattern="report")
        assert set(task_states(run).values()) == {"success"}, task_states(run)
    train_jobs = [body["TrainingJobName"] for body in requests(aws_env)["Training"]]
    assert len(train_jobs) == 4
    assert len(set(train_jobs)) == 4
    assert [name.split("-")[3] for name in train_jobs] == ["20260104", "20260104", "20260111", "20260111"]
    trains = [json.dumps(body) for body in requests(aws_env)["Training"] if "-train-" in body["TrainingJobName"]]
    assert f"{base}/20260104/model/1" in trains[0]
    assert f"{base}/input/20260104" not in trains[0]
    assert f"{base}/20260111/model/1" in trains[1]
    [gc_a, gc_b] = [json.dumps(body) for body in requests(aws_env)["Processing"]]
    assert f"{base}/input/20260104" in gc_a
    assert f"{base}/20260104/graph/1" in gc_a
    assert f"{base}/input/20260111" in gc_b
    assert f"{base}/20260111/graph/1" in gc_b
