"""The suite runs in pytest-xdist workers (scripts/run_tests.sh): what must not run side by side doesn't.

``tests/parallel_groups.py`` (through ``tests/conftest.py``) puts each module's tests in one group
(its module-scoped fixtures are made once) and every module that reaches podman in the
``containers`` group (containers, networks and image tags are machine-wide). These checks collect the whole suite in a subprocess, as a worker
does, and read each test's group.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.parallel_groups import CONTAINER_FIXTURES, CONTAINER_GROUP

ROOT = Path(__file__).resolve().parents[1]
# A module that starts the engine names it as an argv element, probes it, or takes a container
# fixture as a test's or fixture's parameter.
_REACHES_PODMAN = re.compile(
    r"""\[\s*["']podman["']|engine_unavailable_reason\(|which\(["']podman["']\)"""
    rf"""|def \w+\([^)]*\b(?:{"|".join(sorted(CONTAINER_FIXTURES))})\b"""
)
_DUMP_PLUGIN = """
import json, os
def pytest_collection_finish(session):
    groups = [(item.path.stem, [m.args[0] for m in item.iter_markers("xdist_group")]) for item in session.items]
    with open(os.environ["GROUPS_OUT"], "w") as out:
        json.dump(groups, out)
"""


def _collected_groups(tmp_path: Path) -> dict[str, set[str]]:
    (tmp_path / "groups_dump.py").write_text(_DUMP_PLUGIN)
    out = tmp_path / "groups.json"
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "GROUPS_OUT": str(out),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "groups_dump", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    by_module: dict[str, set[str]] = defaultdict(set)
    for module, marks in json.loads(out.read_text()):
        assert len(marks) == 1, (module, marks)
        by_module[module].add(marks[0])
    return by_module


def test_each_module_runs_whole_in_one_group_and_every_module_that_reaches_podman_in_the_containers_group(tmp_path):
    groups = _collected_groups(tmp_path)
    assert len(groups) > 50
    assert {m: g for m, g in groups.items() if len(g) != 1} == {}
    assert groups["test_e2e_local"] == {"test_e2e_local"}

    reaching = {m for m in groups if _REACHES_PODMAN.search((ROOT / "tests" / f"{m}.py").read_text())}
    assert {
        "test_compose_multihost",
        "test_container_image",
        "test_e2e_chunked",
        "test_compose_credentials",
    } <= reaching
    assert {m for m, g in groups.items() if g == {CONTAINER_GROUP}} == reaching


def test_the_worker_uses_the_airflow_home_its_fixture_names(airflow_home):
    # Importing tests/conftest.py a second time (``from tests.conftest import ...``: pytest loads it
    # as ``conftest``) re-ran its module code and pointed the whole process at a second, empty
    # Airflow home: 26 tests failed with "no such table: dag" and ``airflow tasks test`` looked in
    # the wrong DAGs folder.
    assert "tests.conftest" not in sys.modules
    assert os.environ["AIRFLOW_HOME"] == str(airflow_home)
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(airflow_home / "dags")
