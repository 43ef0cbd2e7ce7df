"""Fixtures for tests that run real containers through a compose tool.

A test that needs an engine is skipped, with the reason, only where no engine can run
(``scripts/setup_container_engine.sh --check`` says why, or the test command exported
``GRAPHSTORM_CONTAINER_ENGINE_UNAVAILABLE``). Anywhere else a broken engine fails the test.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from graphstorm_provider.execution.compose_tool import ComposeTool, ComposeToolError, find_compose_tool

ROOT = Path(__file__).resolve().parent.parent
# A small image with what the compose contract needs (/opt/ml/code as working dir): the
# engine setup's base image plus one folder. Built in seconds, no registry needed.
PROBE_IMAGE = "localhost/gs-compose-probe:latest"
BASE_IMAGE = os.environ.get("GRAPHSTORM_BASE_IMAGE", "localhost/graphstorm-base:bookworm")
# The job image the container tests run (docker/build_image.sh builds it under the same variable).
JOB_IMAGE = os.environ.get("GRAPHSTORM_IMAGE", "graphstorm:sm")
IMAGE_BUILD_TIMEOUT_S = 3600  # a cold build of the wheel layer


def engine_unavailable_reason() -> str | None:
    reason = os.environ.get("GRAPHSTORM_CONTAINER_ENGINE_UNAVAILABLE")
    if reason:
        return reason
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup_container_engine.sh"), "--check", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 3:
        return proc.stdout.strip().splitlines()[-1]
    if proc.returncode != 0:
        pytest.fail(f"setup_container_engine.sh --check failed (exit {proc.returncode}): {proc.stderr[-500:]}")
    return None


@pytest.fixture(scope="session")
def compose_tool() -> ComposeTool:
    reason = engine_unavailable_reason()
    if reason:
        pytest.skip(f"no container engine can run here: {reason}")
    try:
        return find_compose_tool()
    except ComposeToolError as err:
        pytest.fail(f"a container engine runs but no compose tool is usable: {err}")


@pytest.fixture(scope="session")
def probe_image(compose_tool: ComposeTool, tmp_path_factory) -> str:
    context = tmp_path_factory.mktemp("probe-image")
    (context / "Containerfile").write_text(
        textwrap.dedent(
            f"""\
            FROM {BASE_IMAGE}
            RUN mkdir -p /opt/ml/code
            """
        )
    )
    proc = subprocess.run(
        [compose_tool.engine, "build", "-q", "-t", PROBE_IMAGE, "-f", str(context / "Containerfile"), str(context)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return PROBE_IMAGE


@pytest.fixture(scope="session")
def job_image(compose_tool: ComposeTool) -> str:
    """Build the job image ``JOB_IMAGE`` once per session (idempotent: about a second when its inputs
    did not change)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "docker" / "build_image.sh"), "--tag", JOB_IMAGE],
        check=False,
        capture_output=True,
        text=True,
        timeout=IMAGE_BUILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return JOB_IMAGE
