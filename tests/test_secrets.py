"""Secrets (issue 9): the AWS connection's values are registered with Airflow's secrets masker,
and the container engine setup takes its Debian mirror from the machine's apt sources (no host
name in the code)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT / "scripts" / "debian_mirror.sh"


def test_connection_credentials_are_registered_with_the_secrets_masker(monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    from graphstorm_provider.operators.connection import connection_env

    monkeypatch.setenv(
        "AIRFLOW_CONN_GS_MASK_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIAMASKCANARY0001",
                "password": "mask-canary-secret-0001",
                "extra": {"aws_session_token": "mask-canary-token-0001"},
            }
        ),
    )
    env = connection_env("gs_mask_test", "us-east-1")
    assert env["AWS_SESSION_TOKEN"] == "mask-canary-token-0001"
    line = "key AKIAMASKCANARY0001 secret mask-canary-secret-0001 token mask-canary-token-0001"
    assert redact(line) == "key *** secret *** token ***"


def mirror(tmp_path: Path, sources_list: str | None, deb822: dict[str, str], **env: str):
    listing = tmp_path / "sources.list"
    if sources_list is not None:
        listing.write_text(sources_list)
    folder = tmp_path / "sources.list.d"
    folder.mkdir(exist_ok=True)
    for name, text in deb822.items():
        (folder / name).write_text(text)
    run_env = {k: v for k, v in os.environ.items() if k != "DEBIAN_MIRROR"}
    run_env.update(APT_SOURCES_LIST=str(listing), APT_SOURCES_DIR=str(folder), **env)
    return subprocess.run(["bash", str(MIRROR)], check=False, capture_output=True, text=True, env=run_env, timeout=30)


DEB822 = """Types: deb
URIs: http://mirror.example.test/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example.test/debian/ http://second.example.test/debian
Suites: bookworm bookworm-updates
Components: main
"""


@pytest.mark.parametrize(
    ("sources_list", "deb822", "expected"),
    [
        ("deb http://one.example.test/debian bookworm main\n", {}, "http://one.example.test/debian"),
        (
            "# comment\ndeb [arch=amd64 signed-by=/x.gpg] http://two.example.test/debian/ bookworm main\n",
            {},
            "http://two.example.test/debian",
        ),
        (
            "deb http://sec.example.test/debian-security bookworm-security main\n",
            {"debian.sources": DEB822},
            "http://mirror.example.test/debian",
        ),
        (None, {"debian.sources": DEB822}, "http://mirror.example.test/debian"),
        (
            None,
            {
                "a.sources": "Types: deb\nURIs: http://off.example.test/d\nSuites: bookworm\nEnabled: no\n",
                "b.sources": DEB822,
            },
            "http://mirror.example.test/debian",
        ),
    ],
)
def test_the_debootstrap_mirror_comes_from_the_apt_sources(tmp_path, sources_list, deb822, expected):
    result = mirror(tmp_path, sources_list, deb822)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_debian_mirror_variable_wins_and_no_source_is_one_clear_error(tmp_path):
    assert (
        mirror(
            tmp_path, None, {"debian.sources": DEB822}, DEBIAN_MIRROR="http://given.example.test/debian"
        ).stdout.strip()
        == "http://given.example.test/debian"
    )
    empty = mirror(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, None, {})
    assert empty.returncode == 1
    assert "set DEBIAN_MIRROR" in empty.stderr


def test_no_debian_host_name_in_the_setup_code():
    for script in ("setup_container_engine.sh", "debian_mirror.sh"):
        text = (ROOT / "scripts" / script).read_text()
        assert "deb.debian.org" not in text, script
        assert "debian.org" not in text, script


def test_a_local_processing_job_writes_no_secret_looking_environment_value_into_its_config_files(tmp_path):
    """SageMaker's processingjobconfig.json holds the whole request, its Environment included; the
    emulation wrote it as is into the work directory (kept after a failure). The job gets its
    environment as variables; the file now shows secret-looking values as ***."""
    from graphstorm_provider.execution.opt_ml import OptMl, write_config_files
    from graphstorm_provider.jobs import GConstructSpec

    job = GConstructSpec(
        image_url="local",
        role="local",
        instance_type="local",
        input_graph_s3=f"file://{tmp_path}/raw/",
        output_graph_s3=f"file://{tmp_path}/graph/",
        graph_name="acm",
        graph_config_file="config.json",
        sm_estimator_parameters={"env": {"DB_PASSWORD": "canary-pw-1", "API_TOKEN": "canary-tok-1", "LEVEL": "2"}},
    ).build("gs-gconstruct-secret")
    opt_ml = OptMl(tmp_path / "opt" / "ml")
    for folder in (opt_ml.input_config, opt_ml.processing_config):
        folder.mkdir(parents=True)
    write_config_files(job, opt_ml)
    written = "".join(path.read_text() for path in (tmp_path / "opt").rglob("*.json"))
    assert "canary-" not in written
    config = json.loads((opt_ml.processing_config / "processingjobconfig.json").read_text())
    assert config["Environment"]["LEVEL"] == "2"
    assert config["Environment"]["DB_PASSWORD"] == "***"
    assert config["ProcessingJobName"] == "gs-gconstruct-secret"  # what the entry points read there
