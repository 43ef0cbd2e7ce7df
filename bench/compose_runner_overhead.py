"""What the compose backend itself costs per multi-host job, apart from GraphStorm.

With N hosts of a minimal image (no GraphStorm), through ``ComposeJobRunner``:

* ``ok``: start to end of a job whose hosts exit 0 at once (write file, ``up -d``, watch, ``down``),
  and the teardown part of it;
* ``kill``: one host killed (``<engine> kill``) while all sleep, until the job has failed and
  everything is removed (detection + teardown);
* ``stop``: ``stop()`` (what ``on_kill`` calls) on a running job until everything is removed.

    .venv/bin/python bench/compose_runner_overhead.py [--runs 3] [--hosts 2]

Needs a container engine and the base image (``scripts/setup_container_engine.sh``).
Figures are medians over ``--runs``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphstorm_provider.execution.compose_runner import ComposeJobError, ComposeJobRunner
from graphstorm_provider.execution.compose_tool import find_compose_tool
from graphstorm_provider.jobs.request import JobRequest

IMAGE = "localhost/gs-compose-probe:latest"
BASE = "localhost/graphstorm-base:bookworm"
SCRIPT = "import sys, time\nprint('up', flush=True)\nif sys.argv[1] == 'sleep':\n    time.sleep(3600)\n"


def job(name: str, hosts: int, action: str) -> JobRequest:
    return JobRequest(
        kind="training",
        step="bench",
        request={
            "TrainingJobName": name,
            "AlgorithmSpecification": {
                "TrainingImage": IMAGE,
                "ContainerEntrypoint": ["python3", "-c", SCRIPT],
                "ContainerArguments": [action],
            },
            "ResourceConfig": {"InstanceType": "local", "InstanceCount": hosts},
        },
    )


def build_image(engine: str) -> None:
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Containerfile").write_text(f"FROM {BASE}\nRUN mkdir -p /opt/ml/code\n")
        subprocess.run([engine, "build", "-q", "-t", IMAGE, context], check=True, capture_output=True)


def run_ok(hosts: int, work: Path) -> tuple[float, float]:
    runner = ComposeJobRunner(job(f"bench-ok-{uuid.uuid4().hex[:8]}", hosts, "exit"), log=lambda _: None, work_dir=work)
    started = time.monotonic()
    result = runner.run()
    return time.monotonic() - started, result.teardown_s


def run_interrupted(hosts: int, work: Path, engine: str, how: str) -> float:
    runner = ComposeJobRunner(
        job(f"bench-{how}-{uuid.uuid4().hex[:8]}", hosts, "sleep"), log=lambda _: None, work_dir=work
    )
    hit: list[float] = []

    def interrupt() -> None:
        while True:  # wait until every host is running
            if all(runner._state(h)[0] == "running" for h in runner.hosts) if runner.tool else False:
                break
            time.sleep(0.2)
        hit.append(time.monotonic())
        if how == "kill":
            subprocess.run([engine, "kill", runner.containers[runner.hosts[-1]]], capture_output=True, check=False)
        else:
            runner.stop()

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    with contextlib.suppress(ComposeJobError):
        runner.run()
    ended = time.monotonic()
    thread.join()
    assert not runner.leftovers(), runner.leftovers()
    return ended - hit[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=2)
    args = parser.parse_args()
    tool = find_compose_tool()
    build_image(tool.engine)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        oks = [run_ok(args.hosts, work / f"ok{i}") for i in range(args.runs)]
        kills = [run_interrupted(args.hosts, work / f"kill{i}", tool.engine, "kill") for i in range(args.runs)]
        stops = [run_interrupted(args.hosts, work / f"stop{i}", tool.engine, "stop") for i in range(args.runs)]
    median = statistics.median
    print(f"compose tool: {tool.name} (engine {tool.engine}), {args.hosts} hosts, median of {args.runs} runs")
    print(
        f"ok job, start to end:        {median(t for t, _ in oks):6.1f} s (teardown {median(d for _, d in oks):.1f} s)"
    )
    print(f"kill one host -> failed+gone: {median(kills):6.1f} s")
    print(f"stop() -> everything gone:    {median(stops):6.1f} s")


if __name__ == "__main__":
    main()
