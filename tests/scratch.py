"""One scratch folder per test process for everything temporary: removed when the session passes.

The conftest calls :func:`make` at import, before anything else runs: the process's ``TMPDIR``
becomes ``<scratch>/tmp``, so its own temporary files (pytest's ``tmp_path``, the moto server's log
and recording) and those of every process it starts (a GraphStorm launcher's ``torchelastic_*``
folders, podman builds) land in the scratch folder, beside the session's Airflow home. Only what
another user must reach goes elsewhere (:func:`system_tmpdir`: the deployment test's PostgreSQL
data, which its own clean-up removes), since the scratch folder is private (0700). At the end
of the session :func:`finish` removes the folder if every test passed, and otherwise keeps it and
says where it is. Under pytest-xdist the workers inherit the controller's ``TMPDIR``, so their
scratch folders are inside the controller's, and the controller's message names them all.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "gs-tests-"
TMP_DIR = "tmp"
AIRFLOW_HOME_DIR = "airflow-home"  # the session's Airflow home, made by the conftest
# The scratch folder of this process, for its tests to check.
ROOT_ENV = "GS_TEST_SCRATCH"
# The temporary folder the session started with (the controller's, under pytest-xdist).
SYSTEM_TMPDIR_ENV = "GS_TEST_SYSTEM_TMPDIR"

log = logging.getLogger(__name__)


def make() -> Path:
    """Make this process's scratch folder and point ``TMPDIR`` (and ``tempfile``) into it; return it."""
    os.environ.setdefault(SYSTEM_TMPDIR_ENV, tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / TMP_DIR).mkdir()
    os.environ["TMPDIR"] = str(root / TMP_DIR)
    os.environ[ROOT_ENV] = str(root)
    tempfile.tempdir = None  # tempfile caches the folder it chose first; it chooses again from TMPDIR
    return root


def system_tmpdir() -> Path:
    """The temporary folder the session started with: for what another user must reach (the scratch is 0700)."""
    return Path(os.environ.get(SYSTEM_TMPDIR_ENV) or tempfile.gettempdir())


def finish(root: Path, passed: bool) -> str | None:
    """Remove ``root`` if the session passed; otherwise keep it and return the line that says where it is."""
    if not passed:
        return f"test scratch folder kept: {root}"
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():  # a file a process still writes, or one it may not delete
        log.warning("test scratch folder %s could not be removed whole", root)
    return None
