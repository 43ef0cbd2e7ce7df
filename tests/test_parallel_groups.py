"""The suite runs in pytest-xdist workers (scripts/run_tests.sh): what must not run side by side doesn't.

``tests/parallel_groups.py`` (its scheduler, chosen by ``tests/conftest.py``) sends each module's
tests to one worker (its module-scoped fixtures are made once) and every module that reaches podman
to the same worker (containers, networks and image tags are machine-wide). These checks collect the
whole suite in a subprocess, as a worker does, and read each test's group; and run the README's test
command with a plugin that records which worker got each test instead of running it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.parallel_groups import CONTAINER_FIXTURES, CONTAINER_GROUP, CONTAINER_MODULES, group_of

ROOT = Path(__file__).resolve().parents[1]
# A module that starts the engine names it (or docker, or a compose tool) as an argv element,
# probes it, runs the compose runner, or takes a container fixture as a test's or fixture's parameter.
_REACHES_PODMAN = re.compile(
    r"""\[\s*["'](?:podman|docker)[-\w]*["']|engine_unavailable_reason\(|which\(["']podman["']\)"""
    r"""|ComposeJobRunner\("""
    rf"""|def \w+\([^)]*\b(?:{"|".join(sorted(CONTAINER_FIXTURES))})\b"""
)
_DUMP_PLUGIN = """
import json, os
def pytest_collection_finish(session):
    tests = [(item.nodeid, sorted(item.fixturenames)) for item in session.items]
    with open(os.environ["TESTS_OUT"], "w") as out:
        json.dump(tests, out)
"""


def _collected_tests(tmp_path: Path) -> list[tuple[str, list[str]]]:
    (tmp_path / "tests_dump.py").write_text(_DUMP_PLUGIN)
    out = tmp_path / "tests.json"
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "TESTS_OUT": str(out),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tests_dump", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [(nodeid, fixtures) for nodeid, fixtures in json.loads(out.read_text())]


def test_each_module_is_one_group_and_every_module_that_reaches_podman_is_in_the_containers_group(tmp_path):
    tests = _collected_tests(tmp_path)
    groups: dict[str, set[str]] = defaultdict(set)
    taking_container_fixtures = set()
    for nodeid, fixtures in tests:
        module = Path(nodeid.split("::", 1)[0]).stem
        groups[module].add(group_of(nodeid))
        if CONTAINER_FIXTURES & set(fixtures):
            taking_container_fixtures.add(module)
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
    assert taking_container_fixtures <= reaching
    assert {m for m, g in groups.items() if g == {CONTAINER_GROUP}} == reaching == CONTAINER_MODULES


def test_the_worker_uses_the_airflow_home_its_fixture_names(airflow_home):
    # Importing tests/conftest.py a second time (``from tests.conftest import ...``: pytest loads it
    # as ``conftest``) re-ran its module code and pointed the whole process at a second, empty
    # Airflow home: 26 tests failed with "no such table: dag" and ``airflow tasks test`` looked in
    # the wrong DAGs folder.
    assert "tests.conftest" not in sys.modules
    assert os.environ["AIRFLOW_HOME"] == str(airflow_home)
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(airflow_home / "dags")


_RECORD_PLUGIN = """
import os
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # Record which worker got the test, and run nothing of it (no fixture, no test).
    with open(os.path.join(os.environ["RECORD_DIR"], os.environ["PYTEST_XDIST_WORKER"]), "a") as out:
        out.write(item.path.stem + "\\n")
    return True
"""


@pytest.mark.parametrize(
    "dist",
    [["--dist", "loadgroup"], [], ["--dist", "load"]],
    ids=["the test command's --dist loadgroup", "-n alone", "--dist load"],
)
def test_the_workers_run_each_module_whole_and_every_container_module_on_one_worker(tmp_path, dist):
    # The README's test command (and a plain ``pytest -n 2``), with a plugin that records where each
    # test went instead of running it.
    assert "--dist loadgroup" in (ROOT / "scripts" / "run_tests.sh").read_text()
    (tmp_path / "record_plugin.py").write_text(_RECORD_PLUGIN)
    record = tmp_path / "record"
    record.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "RECORD_DIR": str(record),
    }
    argv = [sys.executable, "-m", "pytest", "-n", "2", *dist, "-p", "record_plugin", "-p", "no:cacheprovider"]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    workers_of: dict[str, set[str]] = defaultdict(set)
    for worker_file in record.iterdir():
        for module in worker_file.read_text().split():
            workers_of[module].add(worker_file.name)
    assert len(workers_of) > 50, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {m: w for m, w in workers_of.items() if len(w) != 1} == {}
    container_workers = {w for m in CONTAINER_MODULES for w in workers_of.get(m, set())}
    assert len(container_workers) == 1, {m: workers_of.get(m) for m in CONTAINER_MODULES}
    # Both workers had work: the groups are not one unit.
    assert len({w for ws in workers_of.values() for w in ws}) == 2
