"""Credentials reach the containers by name only: no value is ever written to a compose file."""

from __future__ import annotations

import yaml

from graphstorm_provider.execution.compose import CREDENTIAL_VARIABLES, dump_compose, render_compose
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
        assert name in env and env[name] is None


def test_secrets_in_the_request_environment_are_forwarded_by_name():
    job = training_request(environment={**SECRETS, "DB_PASSWORD": "hunter2hunter2", "GS_MODE": "debug"})
    text = dump_compose(render_compose(job))
    for value in [*SECRETS.values(), "hunter2hunter2"]:
        assert value not in text
    env = yaml.safe_load(text)["services"]["algo-1"]["environment"]
    assert env["DB_PASSWORD"] is None
    assert env["GS_MODE"] == "debug"
