"""Credentials reach the containers by name only: no value is ever written to a compose file."""

from __future__ import annotations

import pytest
import yaml

from graphstorm_provider.aws_env import CREDENTIAL_VARIABLES
from graphstorm_provider.execution.compose import dump_compose, render_compose
from tests.compose_jobs import training_request

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAQWERTYSECRETKEY1",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzSECRET",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzSESSIONTOKENVALUE",
}


def test_credentials_are_forwarded_by_name(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    text = dump_compose(render_compose(training_request()))
    for value in SECRETS.values():
        assert value not in text
    env = yaml.safe_load(text)["services"]["algo-2"]["environment"]
    for name in CREDENTIAL_VARIABLES:
        assert name in env
        assert env[name] is None


def test_secrets_in_the_request_environment_are_forwarded_by_name():
    job = training_request(environment={**SECRETS, "DB_PASSWORD": "hunter2hunter2", "GS_MODE": "debug"})
    text = dump_compose(render_compose(job))
    for value in [*SECRETS.values(), "hunter2hunter2"]:
        assert value not in text
    env = yaml.safe_load(text)["services"]["algo-1"]["environment"]
    assert env["DB_PASSWORD"] is None
    assert env["GS_MODE"] == "debug"


def test_the_compose_process_gives_the_containers_the_request_s_secret_values_not_the_worker_s(tmp_path):
    """The file names them only, so the compose process's environment supplies them: the request's must win."""
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner

    proxy = "http://svc:proxyPASSWORDvalue@proxy.internal:3128"
    job = training_request(environment={"HTTPS_PROXY": proxy, "DB_PASSWORD": "from-the-request", "LEVEL": "2"})
    assert yaml.safe_load(dump_compose(render_compose(job)))["services"]["algo-1"]["environment"]["HTTPS_PROXY"] is None
    worker = {"HTTPS_PROXY": "http://corp-proxy:8080", "DB_PASSWORD": "the-worker-s", "LEVEL": "9", "PATH": "/bin"}
    env = ComposeJobRunner(job, work_dir=tmp_path / "work")._compose_env(worker)
    assert env["HTTPS_PROXY"] == proxy
    assert env["DB_PASSWORD"] == "from-the-request"
    assert env["LEVEL"] == "9"  # written into the file with the request's value; the process's does not matter
    assert env["PATH"] == "/bin"


# --- real credentials where the renderer could leak them -----------------------------------------
# An Airflow connection that holds them, used by a step operator with instance_count=2 and by
# LocalComposeOperator. The compose "tool" is a stand-in that answers `version`, records the
# environment it is started with (so the test knows the values reached the compose step) and
# fails `up`; the runner keeps its project folder after a failure, so the written file can be read.

CONNECTION_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIACONNECTIONSECRET1",
    "AWS_SECRET_ACCESS_KEY": "connectionSECRETaccessKEYvalue/xyz",
    "AWS_SESSION_TOKEN": "connectionSESSIONtokenVALUE123",
}
IMAGE = "graphstorm:sm"
TRAIN = dict(
    image_url=IMAGE,
    graph_data_s3="s3://bucket-a/g/",
    yaml_s3="s3://bucket-a/t.yaml",
    model_artifact_s3="s3://bucket-a/m/",
    graph_name="acm",
    task_type="node_classification",
    require_input_manifests=False,
)  # a stand-in compose tool: no job runs, no manifest exists


def _stand_in_compose(tmp_path):
    """A ``podman-compose`` that records its environment and fails everything but ``version``."""
    import stat

    folder = tmp_path / "bin"
    folder.mkdir()
    tool = folder / "podman-compose"
    record = tmp_path / "compose-env.txt"
    tool.write_text(f'#!/bin/sh\n[ "$1" = version ] && exit 0\nenv >> "{record}"\nexit 1\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool, record


@pytest.fixture
def secret_connection(monkeypatch, tmp_path):
    import json
    import shutil

    if shutil.which("podman") is None:
        pytest.skip("the stand-in compose tool's engine, podman, is not installed")
    connection = {
        "conn_type": "aws",
        "login": CONNECTION_SECRETS["AWS_ACCESS_KEY_ID"],
        "password": CONNECTION_SECRETS["AWS_SECRET_ACCESS_KEY"],
        "extra": {"aws_session_token": CONNECTION_SECRETS["AWS_SESSION_TOKEN"], "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_SECRETS", json.dumps(connection))
    for name in CONNECTION_SECRETS:
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    monkeypatch.setenv("GRAPHSTORM_COMPOSE_WORK_DIR", str(work))
    tool, record = _stand_in_compose(tmp_path)
    return tool, record, work


def _written_file_has_no_secret(work, record) -> None:
    [path] = work.glob("*/docker-compose-*.yaml")
    text = path.read_text()
    recorded = record.read_text()
    for name, value in CONNECTION_SECRETS.items():
        assert f"{name}={value}" in recorded  # the value was there to leak ...
        assert value not in text  # ... and the file does not have it
    env = yaml.safe_load(text)["services"]["algo-1"]["environment"]
    assert all(env[name] is None for name in CREDENTIAL_VARIABLES)


def test_step_operator_on_two_local_hosts_writes_no_connection_secret(secret_connection):
    from graphstorm_provider.operators import GSTrainOperator

    tool, record, work = secret_connection
    operator = GSTrainOperator(
        task_id="train",
        role="local",
        instance_type="local",
        instance_count=2,
        aws_conn_id="aws_secrets",
        compose_command=str(tool),
        **TRAIN,
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - the stand-in tool fails `up`
        operator.execute(context={})
    _written_file_has_no_secret(work, record)


def test_local_compose_operator_writes_no_connection_secret(secret_connection):
    from graphstorm_provider.operators import LocalComposeOperator

    tool, record, work = secret_connection
    operator = LocalComposeOperator(
        task_id="train",
        step="training",
        instance_count=2,
        aws_conn_id="aws_secrets",
        compose_command=str(tool),
        **TRAIN,
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - the stand-in tool fails `up`
        operator.execute(context={})
    _written_file_has_no_secret(work, record)
