"""Hostile input through the operators (issue 9), table-driven: each case fails at task start,
before any request or process, in one short sentence naming the parameter; nothing is written.

Each operator gets the values as Airflow hands them over after templating (strings, wrong types,
None) and runs ``execute`` against the moto server (the AWS connection of ``aws_env``). Checked for
every case: the error names the parameter, quotes at most ~100 characters of the value, no
SageMaker create request reached moto, no process was started, no file appeared under the test's
folder.
"""

from __future__ import annotations

import subprocess

import pytest

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
S3 = "s3://hostile-bucket/run"
LONG = "x" * 5000
MAX_MESSAGE = 400  # one sentence; a bad value is quoted to ~100 characters


def base(step: str, root: str) -> tuple[str, dict]:
    """A valid operator call of ``step``: SageMaker (s3://) or, for keys starting 'local', file://."""
    common = dict(image_url=IMAGE, role=ROLE, region="us-east-1", require_input_manifests=False)
    gsf = dict(
        graph_data_s3=f"{S3}/g/",
        yaml_s3=f"{S3}/t.yaml",
        model_artifact_s3=f"{S3}/m/",
        graph_name="acm",
        task_type="node_classification",
        **common,
    )
    local = dict(instance_type="local", role="local", image_url="local")
    table = {
        "gconstruct": (
            "GConstructOperator",
            dict(
                input_graph_s3=f"{S3}/raw/",
                output_graph_s3=f"{S3}/out/",
                graph_name="acm",
                graph_config_file="config.json",
                **common,
            ),
        ),
        "partition": (
            "DistPartitionOperator",
            dict(graph_data_s3=f"{S3}/c/", num_parts=2, output_data_s3=f"{S3}/p/", **common),
        ),
        "train": ("GSTrainOperator", gsf),
        "infer": ("GSInferOperator", dict(output_emb_s3=f"{S3}/e/", **gsf)),
        "local_train": (
            "GSTrainOperator",
            {
                **gsf,
                **local,
                "graph_data_s3": f"file://{root}/g/",
                "yaml_s3": f"file://{root}/t.yaml",
                "model_artifact_s3": f"file://{root}/m/",
            },
        ),
        "local_gconstruct": (
            "GConstructOperator",
            dict(
                input_graph_s3=f"file://{root}/raw/",
                output_graph_s3=f"file://{root}/out/",
                graph_name="acm",
                graph_config_file="config.json",
                **{**common, **local},
            ),
        ),
    }
    return table[step]


# (case id, step, {parameter: value}, text the message must contain)
CASES = [
    # wrong types after templating
    ("count-list", "train", {"instance_count": [2]}, "--instance-count"),
    ("count-float-str", "train", {"instance_count": "2.5"}, "--instance-count"),
    ("count-bool", "train", {"instance_count": True}, "--instance-count"),
    ("parts-dict", "partition", {"num_parts": {"n": 2}}, "--num-parts"),
    ("graph-name-int", "train", {"graph_name": 7}, "--graph-name"),
    ("uri-list", "train", {"graph_data_s3": [f"{S3}/g/"]}, "--graph-data-s3"),
    ("args-dict", "train", {"graphstorm_args": {"--num-epochs": 1}}, "graphstorm_args"),
    ("args-bool-items", "train", {"graphstorm_args": [True, False]}, "graphstorm_args"),
    ("sm-params-list", "train", {"sm_estimator_parameters": ["max_run=1"]}, "--sm-estimator-parameters"),
    ("async-word", "train", {"async_execution": "perhaps"}, "--async-execution"),
    ("skip-word", "train", {"skip_if_complete": "maybe"}, "--skip-if-complete"),
    ("require-word", "infer", {"require_input_manifests": "sometimes"}, "--require-input-manifests"),
    # None / empty where a value is required
    ("graph-none", "train", {"graph_data_s3": None}, "--graph-data-s3"),
    ("yaml-empty", "train", {"yaml_s3": "  "}, "--yaml-s3"),
    ("task-type-none", "infer", {"task_type": None}, "--task-type"),
    ("graph-name-empty", "gconstruct", {"graph_name": ""}, "--graph-name"),
    ("outputs-none", "infer", {"output_emb_s3": None}, "--output-emb-s3"),
    ("parts-none", "partition", {"num_parts": None}, "--num-parts"),
    # shell metacharacters, newlines and NUL
    ("graph-name-shell", "train", {"graph_name": "acm;rm -rf /"}, "--graph-name"),
    ("task-name-subshell", "train", {"task_name": "$(reboot)"}, "--task-name"),
    ("uri-backtick", "train", {"graph_data_s3": f"{S3}/`id`/ x"}, "--graph-data-s3"),
    ("uri-newline", "train", {"model_artifact_s3": f"{S3}/m/\nrm"}, "--model-artifact-s3"),
    ("uri-nul", "infer", {"output_emb_s3": f"{S3}/e\x00/"}, "--output-emb-s3"),
    ("region-newline", "train", {"region": "us-east\n-1"}, "--region"),
    ("log-level-shell", "train", {"log_level": "INFO;id"}, "--log-level"),
    ("image-space", "train", {"image_url": "img; id"}, "--image-url"),
    ("config-file-nul", "gconstruct", {"graph_config_file": "conf\x00ig.json"}, "--graph-config-file"),
    # traversal in file:// URIs (raw and percent-encoded) and relative paths
    ("file-dotdot", "local_train", {"graph_data_s3": "file:///tmp/a/../../etc/"}, "--graph-data-s3"),
    (
        "file-pct-dotdot",
        "local_train",
        {"model_artifact_s3": "file:///tmp/a/%2e%2e/%2E%2E/etc/"},
        "--model-artifact-s3",
    ),
    ("file-root", "local_gconstruct", {"output_graph_s3": "file:///"}, "--output-graph-s3"),
    ("file-etc", "local_train", {"yaml_s3": "file:///etc/passwd"}, "--yaml-s3"),
    ("file-relative", "local_train", {"graph_data_s3": "file://relative/g/"}, "--graph-data-s3"),
    ("file-on-sagemaker", "train", {"graph_data_s3": "file:///data/g/"}, "--graph-data-s3"),
    ("config-dotdot", "gconstruct", {"graph_config_file": "../../secrets.json"}, "--graph-config-file"),
    ("config-absolute", "gconstruct", {"graph_config_file": "/etc/passwd"}, "--graph-config-file"),
    ("sub-path-pct", "infer", {"model_sub_path": "../other-model"}, "--model-sub-path"),
    ("metadata-dotdot", "partition", {"metadata_filename": "../../x.json"}, "--metadata-filename"),
    # output equal to or inside its input; outputs sharing a folder
    ("gc-output-is-input", "gconstruct", {"output_graph_s3": f"{S3}/raw/"}, "--output-graph-s3"),
    ("gc-output-inside-input", "gconstruct", {"output_graph_s3": f"{S3}/raw/graph/"}, "--output-graph-s3"),
    ("part-output-is-input", "partition", {"output_data_s3": f"{S3}/c"}, "--output-data-s3"),
    ("train-model-inside-graph", "train", {"model_artifact_s3": f"{S3}/g/model/"}, "--model-artifact-s3"),
    ("infer-emb-is-model", "infer", {"output_emb_s3": f"{S3}/m/"}, "--output-emb-s3"),
    ("infer-pred-is-emb", "infer", {"output_prediction_s3": f"{S3}/e/"}, "--output-"),
    # checkpoint_local_path outside /opt/ml, absurd counts, duplicate keys
    (
        "checkpoint-etc",
        "train",
        {"sm_estimator_parameters": {"checkpoint_local_path": "/etc/ckpt", "checkpoint_s3_uri": f"{S3}/ck/"}},
        "checkpoint_local_path",
    ),
    (
        "checkpoint-dotdot",
        "train",
        {"sm_estimator_parameters": f"checkpoint_local_path='/opt/ml/../../etc' checkpoint_s3_uri='{S3}/ck/'"},
        "checkpoint_local_path",
    ),
    ("count-zero", "train", {"instance_count": "0"}, "--instance-count"),
    ("count-negative", "train", {"instance_count": -3}, "--instance-count"),
    ("count-absurd", "train", {"instance_count": "100000"}, "--instance-count"),
    ("parts-absurd", "partition", {"num_parts": 10**9, "instance_count": 2}, "--num-parts"),
    ("dup-sm-key", "train", {"sm_estimator_parameters": "max_run=10 max_run=20"}, "max_run"),
    ("dup-sm-alias", "train", {"sm_estimator_parameters": {"max_run": 10, "max_runtime_in_seconds": 20}}, "max_run"),
    ("dup-gs-arg", "train", {"graphstorm_args": "--num-epochs 1 --num-epochs 2"}, "--num-epochs"),
    # oversized values
    ("long-uri", "train", {"graph_data_s3": f"{S3}/{LONG}/"}, "--graph-data-s3"),
    ("long-graph-name", "train", {"graph_name": "a b" + LONG}, "--graph-name"),
    ("long-task-name", "train", {"task_name": "-" + LONG}, "--task-name"),
    ("long-region", "train", {"region": LONG}, "--region"),
]


@pytest.mark.parametrize(("case_id", "step", "changes", "named"), CASES, ids=[c[0] for c in CASES])
def test_hostile_value_fails_at_task_start(aws_env, tmp_path, monkeypatch, case_id, step, changes, named):
    from airflow.providers.common.compat.sdk import AirflowFailException

    import graphstorm_provider.operators as operators
    from graphstorm_provider.jobs.errors import JobSpecError

    started: list[object] = []

    class NoProcess(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            started.append(args)
            raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.chdir(tmp_path)
    class_name, kwargs = base(step, str(root))
    operator = getattr(operators, class_name)(task_id=f"t_{case_id.replace('-', '_')}", **{**kwargs, **changes})
    with pytest.raises((JobSpecError, AirflowFailException)) as error:
        operator.execute(context={})
    message = str(error.value)
    assert named in message, message
    assert len(message) <= MAX_MESSAGE, message
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message
    assert started == []
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    assert aws_env.received("SageMaker.CreateProcessingJob") == []
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["data"]


def test_the_table_has_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)
