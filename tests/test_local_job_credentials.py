"""A local job's AWS credentials come from one source: the Airflow connection's when it supplies
some, otherwise the worker's as they are.

The worker running the task may hold an identity of its own (temporary credentials, a profile, a
web identity, ...). When the operator's connection supplies credentials, none of the worker's
credential variables may reach the job: a worker's session token next to the connection's long-term
key signs requests AWS rejects, and hands the worker's token to a job that was told to run as
another identity. Each job here runs through the operators' path (``run_here``: connection lookup,
local backend) with a stand-in entry point that reports the job's ``AWS_*`` variables and the
identity boto3 resolves from them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from graphstorm_provider import config
from graphstorm_provider.jobs.request import JobRequest

# Temporary credentials of the worker itself (what an instance role or `aws sso login` exports).
WORKER = {
    "AWS_ACCESS_KEY_ID": "ASIAWORKERTEMPORARY1",
    "AWS_SECRET_ACCESS_KEY": "worker-secret-0001",
    "AWS_SESSION_TOKEN": "worker-session-token-0001",
    "AWS_SECURITY_TOKEN": "worker-security-token-0001",
    "AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00Z",
    "AWS_ROLE_ARN": "arn:aws:iam::111111111111:role/worker",
    "AWS_ROLE_SESSION_NAME": "worker-session",
    "AWS_ACCOUNT_ID": "111111111111",
}
# Worker settings that select no identity: they reach the job as before.
SETTINGS = {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "7", "AWS_EC2_METADATA_DISABLED": "true"}
CONNECTION_KEY = "AKIACONNECTIONLONGTERM"
CONNECTION_SECRET = "connection-secret-0001"
CONNECTION_TOKEN = "connection-session-token-0001"

REPORT_ENTRY = """
    import json, os, sys
    import boto3

    credentials = boto3.session.Session().get_credentials()
    resolved = None
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        resolved = {"access_key": frozen.access_key, "secret_key": frozen.secret_key, "token": frozen.token,
                    "method": credentials.method}
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    with open(sys.argv[1], "w") as out:
        json.dump({"env": aws, "resolved": resolved}, out)
"""


@pytest.fixture
def worker(tmp_path, monkeypatch) -> Path:
    """The worker's environment: temporary credentials, a profile that exists, a web identity."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "config").write_text("[profile worker-profile]\nregion = eu-west-1\n\n[profile no-credentials]\n")
    (aws / "credentials").write_text(
        "[worker-profile]\naws_access_key_id = AKIAWORKERPROFILE\naws_secret_access_key = worker-profile-secret\n"
    )
    token_file = aws / "web-identity-token"
    token_file.write_text("worker-web-identity-token")
    for name, value in {**WORKER, **SETTINGS}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_PROFILE", "worker-profile")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    # The entry point is a stand-in; the runtime is this interpreter (it has boto3).
    entrypoints = tmp_path / "entrypoints"
    entrypoints.mkdir()
    (entrypoints / "report_entry.py").write_text(textwrap.dedent(REPORT_ENTRY))
    monkeypatch.setenv(config.ENTRYPOINTS_DIR_ENV, str(entrypoints))
    monkeypatch.setattr(config, "runtime_python", lambda check=True: sys.executable)
    return aws


def set_connection(monkeypatch, conn_id: str, *, token: str | None = None, keys: bool = True) -> None:
    """An Airflow AWS connection as ``AIRFLOW_CONN_<ID>`` (JSON), as the other tests create it."""
    connection: dict[str, object] = {"conn_type": "aws", "extra": {"region_name": "us-east-1"}}
    if keys:
        connection.update(login=CONNECTION_KEY, password=CONNECTION_SECRET)
    if token:
        connection["extra"] = {"region_name": "us-east-1", "aws_session_token": token}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


def run_job(tmp_path: Path, aws_conn_id: str | None) -> dict:
    """Run a one-host local job the way every operator does; return what its entry point saw."""
    from graphstorm_provider.operators.base import run_here

    report = tmp_path / "report.json"
    request = {
        "TrainingJobName": "creds-1",
        "AlgorithmSpecification": {
            "TrainingImage": "graphstorm:sm",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "/opt/ml/code/report_entry.py"],
            # An s3:// URI in the request: the operators look the connection up (it is not read).
            "ContainerArguments": [str(report), "s3://not-read/graph/"],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": {},
    }
    job = JobRequest(kind="training", step="train", request=request, region="us-east-1")
    operator = SimpleNamespace(log=logging.getLogger("test_local_job_credentials"))
    run_here(operator, job, aws_conn_id=aws_conn_id, compose_command=None, gpus=0, shm_size="1gb", timeout_s=None)
    return json.loads(report.read_text())


def worker_values_in(env: dict[str, str]) -> list[str]:
    """Names of the job's variables whose value is one of the worker's credential values."""
    secrets = set(WORKER.values()) | {"worker-profile"}
    return sorted(name for name, value in env.items() if value in secrets or "web-identity-token" in value)


# ---- the mix (the bug) --------------------------------------------------------------------
def test_connection_long_term_keys_get_no_worker_session_token_or_profile(worker, tmp_path, monkeypatch):
    set_connection(monkeypatch, "gs_creds_long_term")
    seen = run_job(tmp_path, "gs_creds_long_term")
    env = seen["env"]
    assert env["AWS_ACCESS_KEY_ID"] == CONNECTION_KEY
    assert env["AWS_SECRET_ACCESS_KEY"] == CONNECTION_SECRET
    for name in (
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ACCOUNT_ID",
    ):
        assert name not in env, name
    assert worker_values_in(env) == []
    # boto3 in the job signs with exactly the connection's long-term key: no token, from the environment.
    assert seen["resolved"] == {
        "access_key": CONNECTION_KEY,
        "secret_key": CONNECTION_SECRET,
        "token": None,
        "method": "env",
    }


def test_connection_session_token_goes_with_its_own_keys(worker, tmp_path, monkeypatch):
    set_connection(monkeypatch, "gs_creds_temporary", token=CONNECTION_TOKEN)
    seen = run_job(tmp_path, "gs_creds_temporary")
    env = seen["env"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]) == (
        CONNECTION_KEY,
        CONNECTION_SECRET,
        CONNECTION_TOKEN,
    )
    assert worker_values_in(env) == []
    assert "AWS_PROFILE" not in env
    assert seen["resolved"]["token"] == CONNECTION_TOKEN
    assert seen["resolved"]["access_key"] == CONNECTION_KEY


def test_settings_that_select_no_identity_still_reach_the_job(worker, tmp_path, monkeypatch):
    set_connection(monkeypatch, "gs_creds_settings")
    env = run_job(tmp_path, "gs_creds_settings")["env"]
    for name, value in SETTINGS.items():
        assert env[name] == value, name
    # Where the shared files are is a setting too (boto3 reads no credentials from them here).
    assert env["AWS_CONFIG_FILE"] == str(worker / "config")
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(worker / "credentials")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"  # the job's region


# ---- no credentials from a connection: the worker's, as before -------------------------------
def test_without_a_connection_the_worker_variables_pass_through(worker, tmp_path):
    env = run_job(tmp_path, None)["env"]
    for name, value in WORKER.items():
        assert env[name] == value, name
    assert env["AWS_PROFILE"] == "worker-profile"
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == str(worker / "web-identity-token")


def test_connection_without_credentials_leaves_the_worker_profile_in_place(worker, tmp_path, monkeypatch):
    # Nothing for boto3 to find: no keys in the connection or the environment, a profile without
    # credentials, no web identity, no instance metadata (AWS_EC2_METADATA_DISABLED).
    for name in [*WORKER, "AWS_WEB_IDENTITY_TOKEN_FILE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_PROFILE", "no-credentials")
    set_connection(monkeypatch, "gs_creds_none", keys=False)
    seen = run_job(tmp_path, "gs_creds_none")
    assert seen["env"]["AWS_PROFILE"] == "no-credentials"
    assert seen["env"]["AWS_RETRY_MODE"] == "standard"
    assert seen["resolved"] is None


# ---- the rule itself ------------------------------------------------------------------------
def test_caller_credentials_replace_the_whole_inherited_set():
    from graphstorm_provider.execution.local import IDENTITY_VARIABLES, with_caller_credentials

    inherited = {name: f"inherited-{name}" for name in IDENTITY_VARIABLES}
    inherited |= {"AWS_RETRY_MODE": "adaptive", "AWS_ENDPOINT_URL": "http://inherited", "PATH": "/bin"}
    caller = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    assert with_caller_credentials(inherited, caller) == {
        "AWS_RETRY_MODE": "adaptive",
        "AWS_ENDPOINT_URL": "http://inherited",
        "PATH": "/bin",
        **caller,
    }
    assert inherited["AWS_SESSION_TOKEN"] == "inherited-AWS_SESSION_TOKEN"  # the input is left alone


def test_caller_without_credentials_changes_nothing_inherited():
    from graphstorm_provider.execution.local import with_caller_credentials

    inherited = {**WORKER, "AWS_PROFILE": "worker-profile", "AWS_REGION": "eu-west-1"}
    caller = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    assert with_caller_credentials(inherited, caller) == {**inherited, **caller}
    assert with_caller_credentials(inherited, {}) == inherited


# ---- the compose backend (several local hosts) follows the same rule ---------------------------
def _compose_job(environment: dict[str, str]) -> JobRequest:
    request = {
        "TrainingJobName": "creds-compose-1",
        "AlgorithmSpecification": {"TrainingImage": "graphstorm:sm", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 2, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": environment,
    }
    return JobRequest(kind="training", step="train", request=request, region="us-east-1")


def test_compose_runner_gets_the_connection_credentials_without_the_worker_token(worker):
    from graphstorm_provider.execution.runners import make_local_runner

    connection = {"AWS_ACCESS_KEY_ID": CONNECTION_KEY, "AWS_SECRET_ACCESS_KEY": CONNECTION_SECRET}
    runner = make_local_runner(
        _compose_job({"AWS_SESSION_TOKEN": "request-token"}), extra_env=connection, log=lambda line: None
    )

    env = runner.env  # what the compose process (and so every container) is handed
    assert env["AWS_ACCESS_KEY_ID"] == CONNECTION_KEY
    assert env["AWS_SECRET_ACCESS_KEY"] == CONNECTION_SECRET
    assert "AWS_SESSION_TOKEN" not in env
    assert worker_values_in(env) == []
    assert env["AWS_RETRY_MODE"] == SETTINGS["AWS_RETRY_MODE"]


def test_compose_runner_without_connection_credentials_keeps_the_worker_identity(worker):
    from graphstorm_provider.execution.runners import make_local_runner

    runner = make_local_runner(_compose_job({}), extra_env={"AWS_REGION": "us-east-1"}, log=lambda line: None)

    assert runner.env["AWS_SESSION_TOKEN"] == WORKER["AWS_SESSION_TOKEN"]
    assert runner.env["AWS_PROFILE"] == "worker-profile"
    assert runner.env["AWS_REGION"] == "us-east-1"
