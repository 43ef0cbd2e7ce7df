"""
Where the local backend finds the GraphStorm runtime and the entry points.

The GraphStorm runtime is a second Python environment (locally ``.venv-runtime``, in
containers the job image) built from ``docker/requirements-runtime.txt``. The Airflow side
never imports torch/dgl/graphstorm: it only needs the path of that interpreter.

Lookup order for the interpreter:

1. ``$GRAPHSTORM_RUNTIME_PYTHON``
2. Airflow config ``[graphstorm] runtime_python`` (also ``$AIRFLOW__GRAPHSTORM__RUNTIME_PYTHON``)
3. ``<checkout>/.venv-runtime/bin/python`` (what ``scripts/setup_runtime.sh`` creates)
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

RUNTIME_PYTHON_ENV = "GRAPHSTORM_RUNTIME_PYTHON"
ENTRYPOINTS_DIR_ENV = "GRAPHSTORM_ENTRYPOINTS_DIR"
CONFIG_SECTION = "graphstorm"

# The checkout this package lives in (editable install): <checkout>/graphstorm_provider/config.py
CHECKOUT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_RUNTIME_PYTHON = CHECKOUT_DIR / ".venv-runtime" / "bin" / "python"
DEFAULT_ENTRYPOINTS_DIR = CHECKOUT_DIR / "entrypoints"

SETUP_HINT = (
    "Create it with `bash scripts/setup_runtime.sh` (run from the graphstorm-airflow checkout), "
    f"or point ${RUNTIME_PYTHON_ENV} (or `[{CONFIG_SECTION}] runtime_python` in airflow.cfg) "
    "at a python that has graphstorm installed."
)

# Runs in the candidate interpreter: exit 0 if graphstorm is importable, without importing it
# (importing torch costs seconds; find_spec costs milliseconds).
_HAS_GRAPHSTORM = "import importlib.util,sys; sys.exit(importlib.util.find_spec('graphstorm') is None)"


class RuntimeSetupError(ValueError):
    """The GraphStorm runtime (or the entry points) cannot be found; the message says how to fix it."""


def airflow_config_value(key: str) -> str | None:
    """
    ``[graphstorm] <key>`` from Airflow's config, or None.

    Importing ``airflow.configuration`` writes a default ``airflow.cfg`` into an absent Airflow
    home, so the CLI (which may run without one) only consults it when Airflow is already loaded
    or a config clearly exists.
    """
    env_key = f"AIRFLOW__{CONFIG_SECTION.upper()}__{key.upper()}"
    if os.environ.get(env_key):
        return os.environ[env_key]
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    config_file = Path(os.environ.get("AIRFLOW_CONFIG", home / "airflow.cfg"))
    if "airflow.configuration" not in sys.modules and not config_file.is_file():
        return None
    try:
        from airflow.configuration import conf

        value = conf.get(CONFIG_SECTION, key, fallback=None)
    except Exception as exc:  # a broken Airflow install must not hide the other lookups
        log.debug("cannot read [%s] %s from the Airflow config: %s", CONFIG_SECTION, key, exc)
        return None
    return value or None


_PROBE_TIMEOUT_S = 60  # importing graphstorm (torch, dgl) in a cold runtime venv


@functools.lru_cache(maxsize=16)
def _has_graphstorm(python: str) -> bool:
    try:
        proc = subprocess.run(
            [python, "-c", _HAS_GRAPHSTORM], capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def runtime_python(*, check: bool = True) -> str:
    """
    Path of the GraphStorm runtime's interpreter.

    With ``check`` (the default) the interpreter must exist and have graphstorm installed;
    the check runs once per path and process. Raises :class:`RuntimeSetupError` otherwise.
    """
    if os.environ.get(RUNTIME_PYTHON_ENV):
        python, source = os.environ[RUNTIME_PYTHON_ENV], f"${RUNTIME_PYTHON_ENV}"
    elif value := airflow_config_value("runtime_python"):
        python, source = value, f"[{CONFIG_SECTION}] runtime_python"
    else:
        python, source = str(DEFAULT_RUNTIME_PYTHON), "the default location"
    if not check:
        return python
    path = Path(python).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeSetupError(
            f"GraphStorm runtime not found: {python} (from {source}) is not an executable file. {SETUP_HINT}"
        )
    if not _has_graphstorm(str(path)):
        raise RuntimeSetupError(f"GraphStorm runtime {python} (from {source}) cannot import graphstorm. {SETUP_HINT}")
    return str(path)


def entrypoints_dir() -> Path:
    """
    Folder holding the entry points (``/opt/ml/code`` in the image).

    ``$GRAPHSTORM_ENTRYPOINTS_DIR``, else ``<checkout>/entrypoints``.
    """
    value = os.environ.get(ENTRYPOINTS_DIR_ENV)
    path = Path(value).expanduser() if value else DEFAULT_ENTRYPOINTS_DIR
    if not path.is_dir():
        source = f"${ENTRYPOINTS_DIR_ENV}" if value else "the checkout"
        raise RuntimeSetupError(
            f"entry points folder {path} (from {source}) does not exist; set ${ENTRYPOINTS_DIR_ENV} "
            "to the graphstorm-airflow checkout's entrypoints/ folder."
        )
    return path.resolve()
