"""
Find the compose tool and the container engine behind it.

Choice, in order: ``$GRAPHSTORM_COMPOSE_COMMAND``, Airflow config ``[graphstorm]
compose_command``, else the first of ``docker compose``, ``docker-compose``,
``podman-compose`` that is installed *and* whose engine answers. The engine
(``docker`` or ``podman``) is used directly for what compose tools disagree on:
per-container logs, state and exit codes, and the by-name fallback teardown.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from graphstorm_provider.config import airflow_config_value

log = logging.getLogger(__name__)

COMPOSE_COMMAND_ENV = "GRAPHSTORM_COMPOSE_COMMAND"
KNOWN_TOOLS: tuple[tuple[str, ...], ...] = (("docker", "compose"), ("docker-compose",), ("podman-compose",))
_PROBE_TIMEOUT_S = 120


class ComposeToolError(ValueError):
    """No usable compose tool; the message says what was tried and how to fix it."""


@dataclass(frozen=True)
class ComposeTool:
    """A compose command (argv prefix) and the engine CLI that runs its containers."""

    command: tuple[str, ...]
    engine: str

    @property
    def name(self) -> str:
        return " ".join(self.command)


# Tools that passed the probe in this process (probing costs a few subprocesses per job).
_WORKING: set[ComposeTool] = set()


def _engine_for(command: tuple[str, ...]) -> str:
    if os.path.basename(command[0]) == "podman-compose":
        return "podman"
    # docker compose / docker-compose talk to a Docker API (Docker, or podman's socket);
    # the docker CLI reads the same DOCKER_HOST.
    return "docker" if shutil.which("docker") else "podman"


def _answers(argv: list[str]) -> tuple[bool, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    last = (proc.stderr or proc.stdout).strip().splitlines()
    return proc.returncode == 0, last[-1] if last else f"exit code {proc.returncode}"


def probe(tool: ComposeTool) -> str | None:
    """None when ``tool`` and its engine work, else one sentence saying why not."""
    if tool in _WORKING:
        return None
    problem = _probe(tool)
    if problem is None:
        _WORKING.add(tool)
    return problem


def _probe(tool: ComposeTool) -> str | None:
    if shutil.which(tool.command[0]) is None:
        return f"{tool.command[0]} is not installed"
    ok, why = _answers([*tool.command, "version"])
    if not ok:
        return f"`{tool.name} version` failed: {why}"
    if shutil.which(tool.engine) is None:
        return f"its engine CLI {tool.engine} is not installed"
    # `docker version` needs the daemon (Server part); podman has no daemon, and `podman info`
    # waits for the storage lock, which an image build holds for minutes: `version` suffices.
    argv = [tool.engine, "version"]
    if tool.engine == "docker":
        argv += ["--format", "{{.Server.Version}}"]
    ok, why = _answers(argv)
    if not ok:
        return f"its engine does not answer (`{' '.join(argv)}`: {why})"
    return None


def configured_command() -> tuple[str, ...] | None:
    value = os.environ.get(COMPOSE_COMMAND_ENV) or airflow_config_value("compose_command")
    if not value:
        return None
    command = tuple(shlex.split(value))
    if not command:
        raise ComposeToolError(f"compose_command {value!r} is empty")
    return command


def find_compose_tool(command: tuple[str, ...] | list[str] | str | None = None) -> ComposeTool:
    """Choose the compose tool to use; raises :class:`ComposeToolError` naming what failed."""
    if isinstance(command, str):
        command = tuple(shlex.split(command))
    chosen = tuple(command) if command else configured_command()
    if chosen:
        tool = ComposeTool(chosen, _engine_for(chosen))
        problem = probe(tool)
        if problem:
            raise ComposeToolError(f"compose_command {tool.name!r} cannot run: {problem}")
        return tool
    problems = []
    for candidate in KNOWN_TOOLS:
        tool = ComposeTool(candidate, _engine_for(candidate))
        problem = probe(tool)
        if problem is None:
            log.info("Using compose tool %r (engine %s)", tool.name, tool.engine)
            return tool
        problems.append(f"{tool.name}: {problem}")
    raise ComposeToolError(
        "no compose tool can run here (" + "; ".join(problems) + "). Install one, e.g. "
        "`bash scripts/setup_container_engine.sh` (podman + podman-compose), or set "
        f"${COMPOSE_COMMAND_ENV} / [graphstorm] compose_command."
    )
