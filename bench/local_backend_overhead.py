"""What the local backend itself costs per job, apart from GraphStorm.

* start-to-exit of a no-op entry point through ``LocalJobRunner`` (work dir, /opt/ml layout,
  config files, guard process, log streaming, cleanup) vs running the same script directly;
* staging: a ``file://`` channel of N files of S bytes, copied into ``/opt/ml/input/data``;
* stop latency: ``stop()`` on a job whose tree (children, a ``setsid`` child ignoring SIGTERM, a
  double-forked daemon) is running, until nothing of it is left, with a 1 s grace period
  (the SIGTERM-ignoring process waits out the grace period, then is killed).

    .venv/bin/python bench/local_backend_overhead.py [--runs 5] [--files 200] [--file-kb 64]

Figures are medians over ``--runs``; the entry points run with this interpreter (no GraphStorm).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphstorm_provider.execution import proctree
from graphstorm_provider.execution.local import LocalJobError, LocalJobRunner
from graphstorm_provider.jobs.request import JobRequest
from tests.process_trees import TREE_ENTRY

NOOP = "print('ok')\n"


def job(name: str, script: str, args=(), channels: dict[str, str] | None = None) -> JobRequest:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "bench",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", f"/opt/ml/code/{script}"],
            "ContainerArguments": list(args),
        },
        "RoleArn": "arn:aws:iam::123456789012:role/Bench",
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    if channels:
        request["InputDataConfig"] = [
            {"ChannelName": ch, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
            for ch, uri in channels.items()
        ]
    return JobRequest(kind="training", step="train", request=request)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-kb", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quiet = logging.getLogger("bench.quiet")
    quiet.setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="gs-bench-local-") as tmp:
        root = Path(tmp)
        code = root / "code"
        code.mkdir()
        (code / "noop.py").write_text(NOOP)
        (code / "tree.py").write_text(TREE_ENTRY)
        os.environ["GRAPHSTORM_ENTRYPOINTS_DIR"] = str(code)
        tempfile.tempdir = str(root)  # work dirs of stopped jobs stay inside the bench's temp dir
        data = root / "data"
        data.mkdir()
        payload = os.urandom(args.file_kb * 1024)
        for i in range(args.files):
            (data / f"part-{i:05d}.bin").write_bytes(payload)

        direct = [
            timed(lambda: subprocess.run([sys.executable, str(code / "noop.py")], check=True, capture_output=True))
            for _ in range(args.runs)
        ]
        runner = [
            timed(
                lambda: LocalJobRunner(
                    job(f"noop-{uuid.uuid4().hex[:6]}", "noop.py"), runtime_python=sys.executable, log=quiet
                ).run()
            )
            for _ in range(args.runs)
        ]
        staged = [
            timed(
                lambda: LocalJobRunner(
                    job(f"stage-{uuid.uuid4().hex[:6]}", "noop.py", channels={"train": data.as_uri()}),
                    runtime_python=sys.executable,
                    log=quiet,
                ).run()
            )
            for _ in range(args.runs)
        ]

        stops = []
        for _ in range(args.runs):
            marker = f"gs-bench-{uuid.uuid4().hex}"
            ready = threading.Event()

            class Ready(logging.Handler):
                def emit(self, record, ready=ready):  # bound now: this iteration's event
                    if "READY" in record.getMessage():
                        ready.set()

            log = logging.getLogger(f"bench.tree.{marker}")
            log.setLevel(logging.INFO)
            log.propagate = False
            log.addHandler(Ready())
            run = LocalJobRunner(
                job("tree", "tree.py", [marker]), runtime_python=sys.executable, log=log, stop_grace_seconds=1
            )
            thread = threading.Thread(target=_swallow, args=(run.run,))
            thread.start()
            if not ready.wait(60):
                raise SystemExit("tree job never became ready")
            stops.append(timed(run.stop))
            thread.join()
            left = proctree.with_marker(run.marker)
            if left:
                raise SystemExit(f"processes left behind: {sorted(left)}")

    mb = args.files * args.file_kb / 1024
    print(f"no-op entry point, direct python        : {statistics.median(direct) * 1000:7.0f} ms")
    print(f"no-op entry point, LocalJobRunner.run() : {statistics.median(runner) * 1000:7.0f} ms")
    print(f"  + file:// channel {args.files} files / {mb:.1f} MiB : {statistics.median(staged) * 1000:7.0f} ms")
    print(
        f"stop() of a 5-process adversarial tree  : {statistics.median(stops) * 1000:7.0f} ms "
        "(grace 1 s; one process ignores SIGTERM)"
    )


def _swallow(fn) -> None:
    with contextlib.suppress(LocalJobError):
        fn()


if __name__ == "__main__":
    main()
