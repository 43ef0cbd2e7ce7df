"""ComposeJobRunner with real containers: results, failures, kills, stop, timeout, teardown.

The hosts run small Python scripts in a minimal image (seconds per test), so every
path of the runner is exercised for real; the GraphStorm runs are in
test_compose_multihost.py.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from graphstorm_provider.execution.compose_runner import ComposeJobError, ComposeJobRunner, HostFailure, failure_cause
from tests.compose_jobs import script_job

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

# Every host: record who it is, wait until it can resolve every host name (the SageMaker
# cluster's DNS), then do what ACTION says. Outputs go to the bind-mounted file:// folder.
HOST_SCRIPT = r"""
import json, os, socket, sys, time
out = sys.argv[sys.argv.index("--out") + 1][len("file://"):]
env = json.loads(os.environ["SM_TRAINING_ENV"])
me = env["current_host"]
for _ in range(120):
    try:
        addrs = {h: socket.gethostbyname(h) for h in env["hosts"]}
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("cannot resolve " + ", ".join(env["hosts"]))
record = {
    "env": env, "rank": os.environ["RANK"], "world": os.environ["WORLD_SIZE"],
    "master": os.environ["MASTER_ADDR"], "region": os.environ["AWS_REGION"],
    "gpus": os.environ["SM_NUM_GPUS"], "cwd": os.getcwd(), "addrs": addrs,
    "secret": os.environ.get("AWS_SECRET_ACCESS_KEY"),
}
with open(f"{out}/{me}.json.tmp", "w") as f:
    json.dump(record, f)
os.rename(f"{out}/{me}.json.tmp", f"{out}/{me}.json")
# Barrier, as the entry points' rendezvous: no host leaves before every host has resolved
# its peers (a host that exits early takes its DNS name with it).
for _ in range(240):
    if all(os.path.exists(f"{out}/{h}.json") for h in env["hosts"]):
        break
    time.sleep(0.5)
print(f"hello from {me}", flush=True)
action = os.environ.get("ACTION_" + me.replace("-", "_"), "exit0")
if action.startswith("exit"):
    sys.exit(int(action[4:]))
def fail(reason):  # as the entry points fail: the reason in SageMaker's failure file, exit 1
    os.makedirs("/opt/ml/output", exist_ok=True)
    with open("/opt/ml/output/failure", "w") as f:
        f.write(reason)
    sys.exit(1)
if action.startswith("blame-"):  # "blame-algo-2": lost that peer (gsentry's PeerError), at once
    fail(f"host {action[len('blame-'):]}: connection closed before the host finished")
if action.startswith("fail-after-"):  # "fail-after-3": its own failure, after 3 s of clean-up
    time.sleep(float(action[len("fail-after-"):]))
    fail(f"GraphStorm failed on {me}\nTraceback: details")
time.sleep(600)  # "sleep": stay up until killed, stopped or timed out
"""


def probe_job(
    image: str,
    out: Path,
    name: str,
    *,
    count: int = 2,
    actions: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> JobRequest:
    return script_job(
        image,
        name,
        HOST_SCRIPT,
        args=("--out", f"file://{out}"),
        count=count,
        actions=actions,
        environment=environment,
        outputs={"out": f"file://{out}"},
    )


class Lines(list):
    def __call__(self, line: str) -> None:
        self.append(line)


def unique(prefix: str) -> str:
    return f"{prefix}-{int(time.time() * 1000) % 10**9}"


def assert_clean(runner: ComposeJobRunner) -> None:
    assert runner.leftovers() == []


def run_until_it_fails(job: JobRequest, work: Path, **runner_args) -> tuple[ComposeJobError, ComposeJobRunner, Lines]:
    """Run ``job``, which must fail: its error, the runner and the lines it logged."""
    lines = Lines()
    runner = ComposeJobRunner(job, log=lines, work_dir=work, **runner_args)
    with pytest.raises(ComposeJobError) as failed:
        runner.run()
    return failed.value, runner, lines


def wait_for(path: Path, limit_s: float = 120) -> None:
    end = time.monotonic() + limit_s
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.2)


HOSTS = ["algo-1", "algo-2", "algo-3"]


def test_the_cause_is_the_first_failed_host_that_blames_no_peer():
    lost = HostFailure("algo-1", 1, "host algo-3: connection closed before the host finished")
    own = HostFailure("algo-3", 1, "GraphStorm's exception")
    assert failure_cause([lost, own], HOSTS) == "algo-3"
    # A host without a failure file (killed: 137) blames no one.
    assert failure_cause([HostFailure("algo-2", 137, None), lost], HOSTS) == "algo-2"
    # Every failed host blames a peer: the one the first blames, exited or not.
    assert failure_cause([lost, HostFailure("algo-2", 1, "host algo-3: sent nothing for 60 s")], HOSTS) == "algo-3"
    # A host that is not a suspect (itself, one that exited 0, no host of the job) is no blame.
    assert failure_cause([lost, HostFailure("algo-2", 1, "its own")], ["algo-1", "algo-2"]) == "algo-1"
    assert failure_cause([HostFailure("algo-1", 1, "host algo-1: odd"), own], HOSTS) == "algo-1"
    assert failure_cause([HostFailure("algo-1", 1, "host algo-9: odd"), own], HOSTS) == "algo-1"


def test_two_hosts_run_with_the_sagemaker_contract(compose_tool, probe_image, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-in-any-file-0123")
    lines = Lines()
    runner = ComposeJobRunner(
        probe_job(probe_image, tmp_path / "out", unique("gs-probe-ok")), log=lines, work_dir=tmp_path / "work"
    )
    result = runner.run()
    assert result.exit_codes == {"algo-1": 0, "algo-2": 0}
    assert result.exit_code == 0
    import json

    for rank, host in enumerate(["algo-1", "algo-2"]):
        record = json.loads((tmp_path / "out" / f"{host}.json").read_text())
        assert record["env"] == {"hosts": ["algo-1", "algo-2"], "current_host": host}
        assert (record["rank"], record["world"], record["master"]) == (str(rank), "2", "algo-1")
        assert record["region"] == "us-east-1"
        assert record["gpus"] == "0"
        assert record["cwd"] == "/opt/ml/code"
        assert set(record["addrs"]) == {"algo-1", "algo-2"}
        # The credential arrived by name, from the compose process's environment ...
        assert record["secret"] == "not-in-any-file-0123"
    # ... and is in no file the run wrote.
    for path in (tmp_path / "work").rglob("*"):
        if path.is_file():
            assert "not-in-any-file-0123" not in path.read_text()
    assert "[algo-1] hello from algo-1" in lines
    assert "[algo-2] hello from algo-2" in lines
    assert_clean(runner)


def test_first_failing_host_fails_the_job_and_the_rest_are_stopped(compose_tool, probe_image, tmp_path):
    job = probe_job(
        probe_image, tmp_path / "out", unique("gs-probe-fail"), actions={"algo-1": "sleep", "algo-2": "exit3"}
    )
    runner = ComposeJobRunner(job, log=Lines(), work_dir=tmp_path / "work")
    with pytest.raises(ComposeJobError, match="host algo-2 .* exited with code 3") as failed:
        runner.run()
    assert (failed.value.host, failed.value.exit_code) == ("algo-2", 3)
    assert_clean(runner)


def test_the_host_its_peers_blame_fails_the_job_though_they_exit_first(compose_tool, probe_image, tmp_path):
    # algo-2 fails and takes 3 s to stop its processes; algo-1 learns of it at once, reports the
    # lost peer and exits first. The job failed because of algo-2, with algo-2's code and reason.
    job = probe_job(
        probe_image,
        tmp_path / "out",
        unique("gs-probe-blame"),
        actions={"algo-1": "blame-algo-2", "algo-2": "fail-after-3"},
    )
    error, runner, lines = run_until_it_fails(job, tmp_path / "work")
    assert (error.host, error.exit_code) == ("algo-2", 1), str(error)
    assert str(error).endswith("exited with code 1: GraphStorm failed on algo-2"), str(error)
    assert error.reason == "GraphStorm failed on algo-2"
    assert "host algo-1 exited with code 1" in lines  # it did exit first
    assert_clean(runner)
    assert not list((tmp_path / "work").glob("*failure*"))  # the reasons were read, not kept


def test_a_blamed_host_that_does_not_exit_is_named_with_its_peers_report(compose_tool, probe_image, tmp_path):
    job = probe_job(
        probe_image, tmp_path / "out", unique("gs-probe-silent"), actions={"algo-1": "blame-algo-2", "algo-2": "sleep"}
    )
    error, runner, _ = run_until_it_fails(job, tmp_path / "work", blamed_exit_grace_s=2)
    assert (error.host, error.exit_code) == ("algo-2", 1), str(error)
    assert "algo-2 (container {}), as reported by host algo-1 (exit code 1): host algo-2: connection closed".format(
        runner.containers["algo-2"]
    ) in str(error)
    assert_clean(runner)


def test_a_host_that_finished_is_not_blamed_by_one_that_failed(compose_tool, probe_image, tmp_path):
    job = probe_job(
        probe_image,
        tmp_path / "out",
        unique("gs-probe-ok-blamed"),
        actions={"algo-1": "blame-algo-2", "algo-2": "exit0"},
    )
    # Time for algo-2's exit 0 on a loaded machine; a host that never exits still stays blamed (after 15 s).
    error, runner, _ = run_until_it_fails(job, tmp_path / "work", blamed_exit_grace_s=15)
    assert (error.host, error.exit_code) == ("algo-1", 1), str(error)
    assert error.reason == "host algo-2: connection closed before the host finished"
    assert_clean(runner)


def test_killed_container_fails_the_job_with_the_host_named(compose_tool, probe_image, tmp_path):
    out = tmp_path / "out"
    job = probe_job(probe_image, out, unique("gs-probe-kill"), actions={"algo-1": "sleep", "algo-2": "sleep"})
    runner = ComposeJobRunner(job, log=Lines(), work_dir=tmp_path / "work")
    killed_at: list[float] = []

    def kill_algo_2() -> None:
        wait_for(out / "algo-2.json")
        subprocess.run([compose_tool.engine, "kill", runner.containers["algo-2"]], check=True, capture_output=True)
        killed_at.append(time.monotonic())

    killer = threading.Thread(target=kill_algo_2)
    killer.start()
    with pytest.raises(ComposeJobError, match="host algo-2") as failed:
        runner.run()
    ended = time.monotonic()
    killer.join()
    assert failed.value.host == "algo-2"
    assert failed.value.exit_code == 137
    assert_clean(runner)
    print(f"kill-to-failure+teardown: {ended - killed_at[0]:.1f} s")


def test_stop_tears_everything_down(compose_tool, probe_image, tmp_path):
    out = tmp_path / "out"
    job = probe_job(probe_image, out, unique("gs-probe-stop"), actions={"algo-1": "sleep", "algo-2": "sleep"})
    runner = ComposeJobRunner(job, log=Lines(), work_dir=tmp_path / "work")

    def stop_when_up() -> None:
        wait_for(out / "algo-1.json")
        wait_for(out / "algo-2.json")
        runner.stop()

    stopper = threading.Thread(target=stop_when_up)
    stopper.start()
    with pytest.raises(ComposeJobError, match="stopped") as failed:
        runner.run()
    stopper.join()
    assert failed.value.host is None
    assert_clean(runner)


def test_timeout_fails_and_tears_down(compose_tool, probe_image, tmp_path):
    job = probe_job(
        probe_image, tmp_path / "out", unique("gs-probe-timeout"), actions={"algo-1": "sleep", "algo-2": "exit0"}
    )
    runner = ComposeJobRunner(job, log=Lines(), work_dir=tmp_path / "work", timeout_s=15)
    with pytest.raises(ComposeJobError, match="timed out .* still running: algo-1") as failed:
        runner.run()
    assert failed.value.exit_code == 124
    assert_clean(runner)


def test_back_to_back_runs_with_the_same_name_do_not_clash(compose_tool, probe_image, tmp_path):
    name = unique("gs-probe-again")
    for attempt in range(2):
        runner = ComposeJobRunner(
            probe_job(probe_image, tmp_path / f"out{attempt}", name), log=Lines(), work_dir=tmp_path / f"work{attempt}"
        )
        runner.run()
        assert_clean(runner)


def test_a_live_run_with_the_same_name_is_left_alone(compose_tool, probe_image, tmp_path):
    name = unique("gs-probe-live")
    first_out = tmp_path / "first"
    first = ComposeJobRunner(
        probe_job(probe_image, first_out, name, actions={"algo-1": "sleep", "algo-2": "sleep"}),
        log=Lines(),
        work_dir=tmp_path / "w1",
        timeout_s=120,
    )
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            first.run()
        except ComposeJobError as err:
            errors.append(err)

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        wait_for(first_out / "algo-1.json")
        second = ComposeJobRunner(
            probe_job(probe_image, tmp_path / "second", name), log=Lines(), work_dir=tmp_path / "w2"
        )
        with pytest.raises(ComposeJobError, match="already running"):
            second.run()
        # The first run's containers were not touched by the refused second run.
        states = [first._state(h)[0] for h in first.hosts]
        assert states == ["running", "running"]
    finally:
        first.stop()
        thread.join()
    assert errors
    assert "stopped" in str(errors[0])
    assert_clean(first)
    assert first.network not in first.leftovers()


OWNER = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.test_compose_runner import probe_job
from graphstorm_provider.execution.compose_runner import ComposeJobRunner
job = probe_job(sys.argv[2], Path(sys.argv[3]), sys.argv[4], actions={"algo-1": "sleep", "algo-2": "sleep"})
ComposeJobRunner(job, log=print, work_dir=Path(sys.argv[3]).parent / "work").run()
"""


def test_a_sigkilled_owner_leaves_nothing_behind(compose_tool, probe_image, tmp_path):
    # The task process dies without running any cleanup (SIGKILL): the guard it started
    # removes the containers and the network.
    import os
    import signal
    import sys

    from tests.compose_engine import ROOT

    name = unique("gs-probe-orphan")
    out = tmp_path / "out"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(ROOT), probe_image, str(out), name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ours(kind: str) -> list[str]:
        listed = subprocess.run(
            [compose_tool.engine, *kind.split(), "--format", "{{.Names}}" if kind != "network ls" else "{{.Name}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return [n for n in listed if n.startswith(name)]

    wait_for(out / "algo-1.json")
    wait_for(out / "algo-2.json")
    # The containers (which only sleep) and the network are there when the owner dies. They are
    # checked before the kill: the guard sees its pipe close at once and may already be tearing
    # them down by the time a check after the kill would run.
    assert len(ours("ps -a")) == 2
    assert ours("network ls")
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    end = time.monotonic() + 120
    while (ours("ps -a") or ours("network ls")) and time.monotonic() < end:
        time.sleep(0.5)
    assert ours("ps -a") == []
    assert ours("network ls") == []
