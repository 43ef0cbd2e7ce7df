"""A test session keeps its temporary files in one scratch folder: gone when it passes, kept when it fails.

The suite used to leave every session's Airflow home, moto server log and recording behind in
``$TMPDIR``, and each GraphStorm launcher a test started directly (not through the local backend,
which gives each job a ``TMPDIR`` of its own) left a ``torchelastic_*`` folder: about 100 folders
per run of the test command (tests/scratch.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests import scratch

ROOT = Path(__file__).resolve().parents[1]
# Set by the outer test: the probe below then fails on purpose.
FAIL_ON_PURPOSE_ENV = "GS_SCRATCH_PROBE_FAIL"


def test_probe_a_child_process_writes_its_temporary_files_into_the_session_scratch_folder(airflow_home):
    # Also the inner session of the two tests below: it leaves a folder as torchelastic does.
    root = Path(os.environ[scratch.ROOT_ENV])
    assert Path(os.environ["TMPDIR"]) == root / scratch.TMP_DIR
    assert airflow_home.parent == root
    made = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.mkdtemp(prefix='torchelastic_'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(made).parent == root / scratch.TMP_DIR
    assert Path(tempfile.mkdtemp()).parent == root / scratch.TMP_DIR  # this process's own, too
    assert os.environ.get(FAIL_ON_PURPOSE_ENV) != "1", "failing on purpose"


def _inner_session(tmp_path: Path, *, fail: bool) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the probe in a pytest session of its own, one worker, with ``tmp_path/tmp`` as its ``TMPDIR``."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != scratch.ROOT_ENV and not k.startswith("AIRFLOW")}
    env.update({"TMPDIR": str(tmpdir), FAIL_ON_PURPOSE_ENV: "1" if fail else "0"})
    probe = test_probe_a_child_process_writes_its_temporary_files_into_the_session_scratch_folder
    test_id = f"{Path(__file__).relative_to(ROOT)}::{probe.__name__}"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", test_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc, tmpdir


def test_a_session_that_passes_leaves_nothing_in_tmpdir(tmp_path):
    proc, tmpdir = _inner_session(tmp_path, fail=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmpdir.iterdir()) == []


def test_a_session_that_fails_keeps_its_scratch_folder_and_says_where(tmp_path):
    proc, tmpdir = _inner_session(tmp_path, fail=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (kept,) = tmpdir.iterdir()
    assert kept.name.startswith(scratch.PREFIX)
    assert f"test scratch folder kept: {kept}" in proc.stdout
    assert [p.name for p in (kept / scratch.TMP_DIR).iterdir() if p.name.startswith("torchelastic_")]
    assert (kept / scratch.AIRFLOW_HOME_DIR / "airflow.db").is_file()
