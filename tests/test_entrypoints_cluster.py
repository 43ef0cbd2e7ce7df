"""Multi-host rendezvous and watchdog of the entry points, with real processes and sockets.

Two DistDGL hosts cannot share one OS (shared memory names clash), so GraphStorm itself runs
on N=2 only in containers (the compose tests); here each "host" is a process on 127.0.0.1
running the real rendezvous code (``gsentry.cluster``) or the real entry point, and the tests
check that every failure mode ends the job with the culprit host named, without hanging.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINTS = ROOT / "entrypoints"
PY = sys.executable  # the entry points' shared package needs only the standard library here

DRIVER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from gsentry.cluster import Cluster
    from gsentry.contract import read_container_env
    from gsentry.errors import EntryError

    env = read_container_env()
    cluster = Cluster(env)
    mode = os.environ.get("DRIVER_MODE", "ok")
    try:
        layout = cluster.rendezvous()
        print(json.dumps({"layout": layout.to_json()}), flush=True)
        cluster.barrier("inputs")
        print("past-barrier", flush=True)
        if mode == "fail":
            raise EntryError("boom: GraphStorm exploded")
        if mode == "child":  # run DRIVER_CHILD as the host's GraphStorm process, as the entry points do
            from pathlib import Path
            from gsentry.job import HostJob
            from gsentry.launcher import Command
            from gsentry.transfer import Transfer

            job = HostJob(env, Transfer(env.region), cluster, Path(os.environ["DRIVER_WORK"]))
            job.run_command(Command("trainer", [sys.executable, "-c", os.environ["DRIVER_CHILD"]]))
        deadline = time.monotonic() + float(os.environ.get("DRIVER_WAIT", "0"))
        while time.monotonic() < deadline:
            error = cluster.failure()
            if error is not None:
                raise error
            time.sleep(0.2)
    except BaseException as err:
        cluster.finish(err)
        print(f"ERROR: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    cluster.finish()
    print("done", flush=True)
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    """Whatever a test started is killed when it ends, passed or failed."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def cluster_env(tmp_path):
    port = _free_port()

    def env_for(host: str, hosts=("algo-1", "algo-2"), **extra) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "GSENTRY_"))}
        env.update(
            {
                "GRAPHSTORM_OPT_ML": str(tmp_path / host / "opt" / "ml"),
                "SM_TRAINING_ENV": json.dumps({"hosts": list(hosts), "current_host": host}),
                "GSENTRY_RDZV_PORT": str(port),
                "GSENTRY_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1"}),
                "GSENTRY_RDZV_TIMEOUT": "20",
                "GSENTRY_PEER_TIMEOUT": "20",
                "GSENTRY_HEARTBEAT": "0.5",
            }
        )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    return env_for


def _driver(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    if not script.exists():  # written once per test: rewriting it truncated it under a host still reading it
        script.write_text(DRIVER)
    proc = subprocess.Popen(
        [PY, str(script), str(ENTRYPOINTS)], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _STARTED.append(proc)
    return proc


def _train_entry_argv(tmp_path: Path) -> list[str]:
    """The real train entry point with a placeholder YAML, up to (not including) ``--``."""
    from graphstorm_provider.config import runtime_python

    (tmp_path / "train.yaml").write_text("---\nversion: 1.0\n")
    return [
        runtime_python(),
        str(ENTRYPOINTS / "train_entry.py"),
        "--graph-data-s3",
        f"file://{tmp_path}/graph",
        "--train-yaml-s3",
        f"file://{tmp_path}/train.yaml",
        "--model-artifact-s3",
        f"file://{tmp_path}/model",
        "--graph-name",
        "g",
        "--task-type",
        "node_classification",
    ]


def _read_until(proc: subprocess.Popen, marker: str) -> list[str]:
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if marker in line:
            return lines
    raise AssertionError(f"process ended before {marker!r}: {lines} / {proc.stderr.read()}")


def test_two_hosts_meet_and_agree_on_one_layout(tmp_path, cluster_env):
    leader = _driver(tmp_path, cluster_env("algo-1"))
    worker = _driver(tmp_path, cluster_env("algo-2"))
    out1, err1 = leader.communicate(timeout=60)
    out2, err2 = worker.communicate(timeout=60)
    assert (leader.returncode, worker.returncode) == (0, 0), (err1, err2)
    layout1 = json.loads(out1.splitlines()[0])["layout"]
    layout2 = json.loads(out2.splitlines()[0])["layout"]
    assert layout1 == layout2
    assert layout1["hosts"] == ["algo-1", "algo-2"]
    assert layout1["addresses"] == ["127.0.0.1", "127.0.0.1"]
    assert len(set(layout1["server_ports"])) == 2
    assert "past-barrier" in out1
    assert "past-barrier" in out2


def test_worker_that_never_arrives_fails_the_leader_naming_it(tmp_path, cluster_env):
    leader = _driver(tmp_path, cluster_env("algo-1", GSENTRY_RDZV_TIMEOUT=2))
    _, err = leader.communicate(timeout=60)
    assert leader.returncode == 1
    assert "host algo-2: never arrived within 2 s" in err


def test_leader_that_never_arrives_fails_the_worker_naming_it(tmp_path, cluster_env):
    worker = _driver(tmp_path, cluster_env("algo-2", GSENTRY_RDZV_TIMEOUT=2))
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 1
    assert "host algo-1: never accepted the rendezvous within 2 s" in err


def test_worker_killed_mid_job_fails_the_leader_naming_it(tmp_path, cluster_env):
    leader = _driver(tmp_path, cluster_env("algo-1", DRIVER_WAIT=120))
    worker = _driver(tmp_path, cluster_env("algo-2", DRIVER_WAIT=120))
    _read_until(worker, "past-barrier")
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    _, err = leader.communicate(timeout=60)
    assert leader.returncode == 1
    # "connection closed before the host finished" or "connection lost (... reset by peer)": the kernel's choice.
    assert err.strip().splitlines()[-1].startswith("ERROR: host algo-2: connection "), err[-2000:]


def test_unresponsive_worker_is_detected_by_heartbeat_timeout(tmp_path, cluster_env):
    leader = _driver(tmp_path, cluster_env("algo-1", DRIVER_WAIT=120, GSENTRY_PEER_TIMEOUT=3))
    # The worker's own watchdog is long: a slow heartbeat of the leader must not end the worker before it is stopped.
    worker = _driver(tmp_path, cluster_env("algo-2", DRIVER_WAIT=120, GSENTRY_PEER_TIMEOUT=60))
    _read_until(worker, "past-barrier")
    worker.send_signal(signal.SIGSTOP)  # alive but silent, like a host cut off the network
    try:
        _, err = leader.communicate(timeout=60)
    finally:
        worker.kill()
        worker.wait(timeout=10)
    assert leader.returncode == 1
    assert "host algo-2: sent nothing for 3 s" in err


def test_failing_worker_reports_its_error_to_the_leader(tmp_path, cluster_env):
    leader = _driver(tmp_path, cluster_env("algo-1", DRIVER_WAIT=120))
    worker = _driver(tmp_path, cluster_env("algo-2", DRIVER_MODE="fail"))
    _, werr = worker.communicate(timeout=60)
    _, lerr = leader.communicate(timeout=60)
    assert worker.returncode == 1
    assert "boom: GraphStorm exploded" in werr
    assert leader.returncode == 1
    assert "host algo-2: failed: boom: GraphStorm exploded" in lerr


# algo-2's trainer group dies, leaving a worker that holds its output open (torch's workers
# outlive a SIGKILLed launcher); algo-1's own trainer fails 4 s later, because of it (as its
# collectives break). algo-2 must tell algo-1 before it waits for that output or stops anything,
# so that algo-1 reports the lost peer, not its own failure: the host named is the cause.
# 4 s leaves a loaded machine time to pass the news yet stays below the 5 s a host would lose first
# waiting for that output (Child.finish_output's timeout in gsentry/process.py), so that bug still fails.
FAILING_GROUP = """
import pathlib, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
pathlib.Path({mark!r}).write_text("failed")
sys.exit(1)
"""
BROKEN_BY_IT = """
import os, sys, time
while not os.path.exists({mark!r}):
    time.sleep(0.05)
time.sleep(4)
sys.exit(1)
"""


def test_a_host_whose_process_fails_tells_its_peers_before_their_processes_fail_too(tmp_path, cluster_env):
    mark = str(tmp_path / "algo-2-failed")
    work = {h: tmp_path / h / "work" for h in ("algo-1", "algo-2")}
    for folder in work.values():
        folder.mkdir(parents=True)
    leader = _driver(
        tmp_path,
        cluster_env(
            "algo-1", DRIVER_MODE="child", DRIVER_WORK=work["algo-1"], DRIVER_CHILD=BROKEN_BY_IT.format(mark=mark)
        ),
    )
    worker = _driver(
        tmp_path,
        cluster_env(
            "algo-2", DRIVER_MODE="child", DRIVER_WORK=work["algo-2"], DRIVER_CHILD=FAILING_GROUP.format(mark=mark)
        ),
    )
    _, werr = worker.communicate(timeout=60)
    _, lerr = leader.communicate(timeout=60)
    assert worker.returncode == 1
    assert "ERROR: trainer failed (exit code 1)" in werr, werr
    assert leader.returncode == 1
    assert "ERROR: host algo-2: failed: trainer exited with code 1" in lerr, lerr


def test_failing_leader_fails_the_workers_naming_it(tmp_path, cluster_env):
    hosts = ("algo-1", "algo-2", "algo-3")
    leader = _driver(tmp_path, cluster_env("algo-1", hosts, DRIVER_MODE="fail"))
    workers = [_driver(tmp_path, cluster_env(h, hosts, DRIVER_WAIT=120)) for h in hosts[1:]]
    leader.communicate(timeout=60)
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 1
        assert "host algo-1: failed: boom: GraphStorm exploded" in err


def test_train_entry_point_with_a_missing_host_exits_nonzero_naming_it(tmp_path, cluster_env):
    """The real entry point: algo-1 of a 2-host job whose algo-2 never comes."""
    env = cluster_env("algo-1", GSENTRY_RDZV_TIMEOUT=2)
    proc = subprocess.run(
        [*_train_entry_argv(tmp_path), "--log-level", "INFO", "--", "--num-epochs", "1"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "host algo-2: never arrived within 2 s" in proc.stderr
    failure = Path(env["GRAPHSTORM_OPT_ML"]) / "output" / "failure"
    assert "algo-2" in failure.read_text()


def test_sigterm_stops_an_entry_point_waiting_for_its_peers(tmp_path, cluster_env):
    """SageMaker's StopTrainingJob (and compose down) send SIGTERM: the host stops at once."""
    env = cluster_env("algo-1", GSENTRY_RDZV_TIMEOUT=600)
    proc = subprocess.Popen(
        [*_train_entry_argv(tmp_path), "--"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _STARTED.append(proc)
    _read_until(proc, "waiting for")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "stopped by signal SIGTERM" in err
