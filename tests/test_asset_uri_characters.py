"""Output URIs with '#' or '?' cannot be Airflow Assets: the step operators refuse them at task start.

Airflow's asset URI sanitizing drops a ``#fragment`` and sorts (or drops) a ``?query``, so
``model_artifact_s3="s3://bucket-a/models/run#1/"`` would become the asset
``s3://bucket-a/models/run`` (another prefix, shared by ``run#1`` and ``run#2``). The job layer
(and the ``gs-sagemaker`` CLI, which has no Assets) keeps accepting these legal keys; the step
operators, whose outputs become Assets (``operators/assets.py``), refuse them before anything is
launched, in one sentence naming the parameter and the character, without retry.
"""

from __future__ import annotations

import subprocess
import warnings

import pytest

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
LOCAL = dict(instance_type="local", role="local", image_url="local", aws_conn_id=None)


def sanitized(uri: str) -> str:
    """The URI Airflow keeps for ``Asset(uri)``."""
    from airflow.sdk import Asset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Asset(uri).uri


# --- the Airflow behaviour the check guards against -------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("s3://bucket-a/models/run#1", "s3://bucket-a/models/run"),
        ("s3://bucket-a/models/run#2", "s3://bucket-a/models/run"),  # the same asset as run#1
        ("s3://bucket-a/models/run?1", "s3://bucket-a/models/run"),  # a query without '=' is dropped
        ("s3://bucket-a/models/p?b=1&a=2", "s3://bucket-a/models/p?a=2&b=1"),  # a query is re-sorted
        ("file:///data/run#1/model", "file:///data/run"),
    ],
)
def test_an_airflow_asset_does_not_keep_a_fragment_or_query(given, kept):
    assert sanitized(given) == kept


@pytest.mark.parametrize(
    "uri",
    ["s3://bucket-a/models/run-1/", "s3://bucket-a/a%23b/c=d;e&f/", "file:///data/run_1/model/", "s3://bucket-a/k+v@x"],
)
def test_an_output_without_hash_or_question_mark_is_its_own_asset(uri):
    from graphstorm_provider.operators.assets import asset_uri, asset_uri_problem

    assert asset_uri_problem(uri) is None
    assert sanitized(asset_uri(uri)) == asset_uri(uri)


@pytest.mark.parametrize("character", ["#", "?"])
def test_asset_uri_problem_names_the_character_and_why(character):
    from graphstorm_provider.operators.assets import asset_uri_problem

    problem = asset_uri_problem(f"s3://bucket-a/models/run{character}1/")
    assert problem is not None
    assert repr(character) in problem
    assert "Airflow Asset URI cannot keep" in problem


# --- preflight: the check on a rendered request ------------------------------------------------


def test_check_asset_outputs_refuses_only_the_outputs_that_become_assets():
    from graphstorm_provider.jobs.request import JobRequest
    from graphstorm_provider.operators.preflight import OutputNotAnAsset, check_asset_outputs

    def job(step: str, outputs: dict[str, str]) -> JobRequest:
        return JobRequest(kind="training", step=step, request={"TrainingJobName": "j"}, outputs=outputs)

    with pytest.raises(OutputNotAnAsset, match=r"^output_prediction_s3 s3://bucket-a/pred\?v=1/ contains '\?'"):
        check_asset_outputs(
            job("infer", {"output_emb_s3": "s3://bucket-a/emb/", "output_prediction_s3": "s3://bucket-a/pred?v=1/"})
        )
    assert issubclass(OutputNotAnAsset, ValueError)  # a refusal, not a retryable error
    check_asset_outputs(job("train", {"model_artifact_s3": "s3://bucket-a/models/run-1/"}))
    check_asset_outputs(job("train", {"not_an_asset": "s3://bucket-a/x#1/"}))  # no alias: not an Asset
    check_asset_outputs(job("graphstorm_job", {"model_artifact_s3": "s3://bucket-a/x#1/"}))  # no step aliases


def test_the_job_layer_still_accepts_the_characters():
    """Validation (shared with the gs-sagemaker CLI) is unchanged: the request writes the key exactly."""
    from graphstorm_provider.operators import GSTrainOperator

    job = GSTrainOperator(
        task_id="train",
        image_url=IMAGE,
        role=ROLE,
        region="us-east-1",
        aws_conn_id=None,
        graph_data_s3="s3://bucket-a/graph/",
        yaml_s3="s3://bucket-a/train.yaml",
        model_artifact_s3="s3://bucket-a/models/run#1/",
        graph_name="acm",
        task_type="node_classification",
    ).build_job()
    assert job.outputs == {"model_artifact_s3": "s3://bucket-a/models/run#1/"}


# --- the operators: refused at task start, nothing launched ------------------------------------


class NoProcess(subprocess.Popen):
    started: list = []

    def __init__(self, *args, **kwargs):
        NoProcess.started.append(args)
        raise AssertionError("a process was started")


@pytest.mark.parametrize("character", ["#", "?"])
def test_local_train_refuses_a_model_uri_with_the_character_and_starts_nothing(tmp_path, monkeypatch, character):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import GSTrainOperator

    NoProcess.started = []
    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    (tmp_path / "graph").mkdir()
    model = f"file://{tmp_path}/models/run{character}1/"
    with pytest.raises(AirflowFailException) as error:
        GSTrainOperator(
            task_id="train",
            graph_data_s3=f"file://{tmp_path}/graph/",
            yaml_s3=f"file://{tmp_path}/t.yaml",
            model_artifact_s3=model,
            graph_name="acm",
            task_type="node_classification",
            require_input_manifests=False,  # nothing else stops the launch
            **LOCAL,
        ).execute(context={})
    message = str(error.value)
    assert message.startswith(f"model_artifact_s3 {model} contains {character!r}")
    assert "Airflow Asset URI cannot keep" in message
    assert message.count(". ") == 0  # one sentence
    assert message.endswith(".")
    assert NoProcess.started == []
    assert not (tmp_path / "models").exists()


def test_local_gconstruct_refuses_a_graph_uri_with_a_query(tmp_path, monkeypatch):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import GConstructOperator

    NoProcess.started = []
    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "config.json").write_text("{}")
    output = f"file://{tmp_path}/graph?v=2/"
    with pytest.raises(AirflowFailException, match=r"^output_graph_s3 file://.*/graph\?v=2/ contains '\?'"):
        GConstructOperator(
            task_id="gconstruct",
            input_graph_s3=f"file://{tmp_path}/raw/",
            output_graph_s3=output,
            graph_name="acm",
            graph_config_file="config.json",
            **LOCAL,
        ).execute(context={})
    assert NoProcess.started == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_sagemaker_train_and_infer_refuse_before_any_request(aws_env):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import GSInferOperator, GSTrainOperator

    bucket = aws_env.bucket("gs-asset-chars")
    common = dict(
        image_url=IMAGE,
        role=ROLE,
        region="us-east-1",
        graph_data_s3=f"{bucket}/graph/",
        yaml_s3=f"{bucket}/train.yaml",
        graph_name="acm",
        task_type="node_classification",
        wait_for_completion=False,
    )
    with pytest.raises(
        AirflowFailException, match=r"^model_artifact_s3 s3://gs-asset-chars/models/run#1/ contains '#'"
    ):
        GSTrainOperator(
            task_id="train", model_artifact_s3=f"{bucket}/models/run#1/", require_input_manifests=False, **common
        ).execute(context={})
    # No input manifests either: the output check comes first (it reads nothing).
    with pytest.raises(
        AirflowFailException, match=r"^output_prediction_s3 s3://gs-asset-chars/pred\?x=1/ contains '\?'"
    ):
        GSInferOperator(
            task_id="infer",
            model_artifact_s3=f"{bucket}/models/run-1/",
            output_emb_s3=f"{bucket}/emb/",
            output_prediction_s3=f"{bucket}/pred?x=1/",
            **common,
        ).execute(context={})
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    assert aws_env.received("SageMaker.CreateProcessingJob") == []
