"""Fault injection 6 (issue 9): a canary secret in the AWS connection runs through the whole local
pipeline and a compose run; afterwards every file under the Airflow home, the run prefix and the
compose project folder, and the captured task logs, are searched: zero hits.

The local pipeline's canary run is the suite's one ``s3://`` run of the local example DAG
(``tests/test_e2e_local.py``, which imports the helpers below); the compose run is here.

The connection ``aws_default`` carries a unique access key, secret and session token. The moto
server accepts any credentials, so the pipeline really signs its S3 requests with them (the local
jobs get them as ``AWS_*`` variables); the compose hosts check that the secret reached their
environment and print only its SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

from tests.compose_jobs_canary import canary_compose_job


def canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12].upper()
    return {
        "AWS_ACCESS_KEY_ID": f"AKIACANARY{tag}",
        "AWS_SECRET_ACCESS_KEY": f"canary-secret-{tag.lower()}-x",
        "AWS_SESSION_TOKEN": f"canary-token-{tag.lower()}-y",
    }


def connection(values: dict[str, str], endpoint: str | None, region: str) -> str:
    extra = {"region_name": region, "aws_session_token": values["AWS_SESSION_TOKEN"]}
    if endpoint:
        extra["endpoint_url"] = endpoint
    return json.dumps(
        {
            "conn_type": "aws",
            "login": values["AWS_ACCESS_KEY_ID"],
            "password": values["AWS_SECRET_ACCESS_KEY"],
            "extra": extra,
        }
    )


def hits(values: dict[str, str], blobs: dict[str, bytes]) -> list[str]:
    """``"<where>: <which canary>"`` for every blob that holds a canary value."""
    return [
        f"{where}: {name}" for where, data in blobs.items() for name, value in values.items() if value.encode() in data
    ]


# Read in a child process: opening and closing the metadata database (or its -wal/-shm files)
# here would silently drop the POSIX locks this process's SQLite connections hold, and the next
# Airflow process to close the database would then take itself for the last user, checkpoint and
# delete the WAL under them: "database disk image is malformed" in every later test.
_READ_FILES = """
import base64, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
json.dump({str(p): base64.b64encode(p.read_bytes()).decode() for p in root.rglob("*")
           if p.is_file() and not p.is_symlink()}, sys.stdout)
"""


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (not following symlinks), read by a child process."""
    out = subprocess.run(
        [sys.executable, "-c", _READ_FILES, str(root)], check=True, capture_output=True, text=True
    ).stdout
    return {where: base64.b64decode(data) for where, data in json.loads(out).items()}


def test_reading_the_files_keeps_this_processes_sqlite_locks(tmp_path):
    """Regression: after ``files_under`` read a WAL database this process holds open, another
    process that opens and closes it must still see this process as a user (it keeps the WAL)."""
    db = tmp_path / "airflow.db"
    held = sqlite3.connect(db)
    held.execute("PRAGMA journal_mode=WAL")
    held.execute("CREATE TABLE t (x)")
    held.execute("INSERT INTO t VALUES (1)")
    held.commit()
    assert held.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert str(db) in files_under(tmp_path)
    other = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT x FROM t').fetchall(); c.close()"
    subprocess.run([sys.executable, "-c", other, str(db)], check=True)
    assert (tmp_path / "airflow.db-wal").exists()
    held.close()


def test_canary_connection_secret_leaves_no_trace_in_a_compose_run(
    compose_tool, probe_image, aws_env, tmp_path, monkeypatch
):
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    from graphstorm_provider.operators.connection import connection_env

    values = canaries()
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection(values, None, aws_env.region))
    out, project = tmp_path / "out", tmp_path / "project"
    out.mkdir()
    job = canary_compose_job(probe_image, out, f"gs-canary-{uuid.uuid4().hex[:8]}")
    lines: list[str] = []
    env = connection_env("aws_default", aws_env.region)  # what the operators add for the compose runner
    assert env["AWS_SECRET_ACCESS_KEY"] == values["AWS_SECRET_ACCESS_KEY"]
    env = {**os.environ, **env}
    runner = ComposeJobRunner(job, env=env, log=lines.append, work_dir=project, timeout_s=240)
    try:
        runner.run()
    finally:
        runner.stop()
    digest = hashlib.sha256(values["AWS_SECRET_ACCESS_KEY"].encode()).hexdigest()
    # Each host had the secret in its environment (it printed the value's digest, not the value).
    assert sum(f"secret sha256 {digest}" in line for line in lines) == 2, lines
    blobs = {**files_under(project), **files_under(out), "compose log": "\n".join(lines).encode()}
    assert any(name.endswith((".yaml", ".yml")) for name in blobs), list(blobs)
    assert hits(values, blobs) == []
