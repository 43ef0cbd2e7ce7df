"""Orchestration overhead of the local pipeline: Airflow DAG vs the same GraphStorm commands by hand.

Generates one synthetic ACM graph, then

* by hand: ``python -m graphstorm.gconstruct.construct_graph``, ``python -m
  graphstorm.run.gs_node_classification`` (train) and ``... --inference`` with the same settings,
  straight on local files (nothing is downloaded: every command reads the files in place);
* pipeline: ``airflow dags test graphstorm_local_e2e`` (throwaway AIRFLOW_HOME, ``file://`` run
  prefix), i.e. the operators, the local backend and the SageMaker entry points;

and prints the wall time of each step and in total, the ratio pipeline / by hand, the test accuracy
of both, and the bytes each host downloaded (the pipeline's from its task logs).

    .venv/bin/python bench/local_overhead.py [--num-papers 2500] [--num-epochs 3] [--work-dir DIR]

Runs one GraphStorm job at a time. The by-hand launcher uses GraphStorm's fixed ports, so do not
run another GraphStorm job on this machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphstorm_provider.data.evaluate import evaluate_node_classification  # noqa: E402
from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm  # noqa: E402
from graphstorm_provider.data.train_config import hyperparameter_args, node_classification_yaml  # noqa: E402

GRAPH_NAME = "acm"
STEPS = ("gconstruct", "train", "infer")


@dataclass
class Measurement:
    seconds: dict[str, float] = field(default_factory=dict)
    accuracy: float | None = None
    downloaded_bytes: int | None = None
    note: str = ""

    @property
    def total(self) -> float:
        return sum(self.seconds.get(s, 0.0) for s in STEPS)


def runtime_python() -> str:
    return os.environ.get("GRAPHSTORM_RUNTIME_PYTHON", str(ROOT / ".venv-runtime" / "bin" / "python"))


def _run(cmd: list[str], log_path: Path, cwd: Path | None = None, env: dict | None = None) -> float:
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = log_path.read_text().splitlines()[-30:]
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}); see {log_path}:\n" + "\n".join(tail))
    return elapsed


def by_hand(raw: Path, yaml_path: Path, out: Path, hyper: list[str], num_epochs: int) -> Measurement:
    py = runtime_python()
    out.mkdir(parents=True, exist_ok=True)
    m = Measurement()
    print("by hand: gconstruct ...", flush=True)
    m.seconds["gconstruct"] = _run(
        [
            py,
            "-m",
            "graphstorm.gconstruct.construct_graph",
            "--conf-file",
            "config.json",
            "--output-dir",
            str(out / "graph"),
            "--num-parts",
            "1",
            "--graph-name",
            GRAPH_NAME,
        ],
        out / "gconstruct.log",
        cwd=raw,
    )
    launch = [
        py,
        "-m",
        "graphstorm.run.gs_node_classification",
        "--workspace",
        str(out),
        "--part-config",
        str(out / "graph" / f"{GRAPH_NAME}.json"),
        "--num-trainers",
        "1",
        "--num-servers",
        "1",
        "--num-samplers",
        "0",
        "--cf",
        str(yaml_path),
    ]
    print("by hand: train ...", flush=True)
    m.seconds["train"] = _run([*launch, *hyper, "--save-model-path", str(out / "model")], out / "train.log", cwd=out)
    print("by hand: infer ...", flush=True)
    m.seconds["infer"] = _run(
        [
            *launch,
            "--inference",
            *hyper,
            "--restore-model-path",
            str(out / "model" / f"epoch-{num_epochs - 1}"),
            "--save-embed-path",
            str(out / "embeddings"),
            "--save-prediction-path",
            str(out / "predictions"),
        ],
        out / "infer.log",
        cwd=out,
    )
    m.accuracy = evaluate_node_classification(
        str(raw), f"file://{out}/predictions", f"file://{out}/embeddings"
    ).test_accuracy
    m.downloaded_bytes = 0  # every command reads the local files in place
    return m


_TS = r"^(\S+Z) .*\[DAG TEST\] (starting|end task) task_id=(\w+)"
# "downloaded 7 file(s), 123 bytes from ..." (entry points) and "input input: 13 file(s), 456 bytes
# downloaded from ..." (local backend staging), echoed into the task log by the operator's logger.
_BYTES = re.compile(r"\d+ file\(s\), (\d+) bytes")
_OPERATOR_STEP = {"GConstructOperator": "gconstruct", "GSTrainOperator": "train", "GSInferOperator": "infer"}


def downloaded_bytes(log_text: str) -> dict[str, int]:
    """Bytes downloaded per step (the one host algo-1), from the task log lines."""
    per_step: dict[str, int] = {}
    seen: set[str] = set()
    for line in log_text.splitlines():
        match = _BYTES.search(line)
        if not match or "download" not in line:
            continue
        message = line.split("]", 1)[-1]  # without Airflow's timestamp: a line echoed twice counts once
        if message in seen:
            continue
        seen.add(message)
        step = next((s for op, s in _OPERATOR_STEP.items() if op in line), "other")
        per_step[step] = per_step.get(step, 0) + int(match.group(1))
    return per_step


def pipeline(conf: dict, out: Path) -> Measurement:
    airflow_bin = Path(sys.executable).parent / "airflow"
    home = Path(tempfile.mkdtemp(prefix="gs-bench-airflow-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "GRAPHSTORM_RUNTIME_PYTHON": runtime_python(),
        "PATH": f"{airflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    out.mkdir(parents=True, exist_ok=True)
    m = Measurement()
    try:
        print("pipeline: airflow db migrate (not counted) ...", flush=True)
        migrate = _run([str(airflow_bin), "db", "migrate"], out / "db-migrate.log", env=env)
        print("pipeline: airflow dags test ...", flush=True)
        log_path = out / "dags-test.log"
        m.seconds["total_dags_test"] = _run(
            [str(airflow_bin), "dags", "test", "graphstorm_local_e2e", "-c", json.dumps(conf)], log_path, env=env
        )
        text = log_path.read_text()
        starts: dict[str, datetime] = {}
        for ts, kind, task_id in re.findall(_TS, text, re.MULTILINE):
            when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            if kind == "starting":
                starts[task_id] = when
            elif task_id in starts:
                m.seconds[task_id] = (when - starts[task_id]).total_seconds()
        per_step = downloaded_bytes(text)
        m.downloaded_bytes = sum(per_step.values()) if per_step else None
        m.note = "per step: " + ", ".join(f"{k} {v:,}" for k, v in per_step.items()) + "; " if per_step else ""
        summaries = sorted(Path(out / "runs").rglob("summary.json"))
        m.accuracy = json.loads(summaries[-1].read_text())["test_accuracy"] if summaries else None
        m.note += f"airflow db migrate took {migrate:.1f} s (not counted)"
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-papers", type=int, default=2500)
    parser.add_argument("--num-epochs", type=int, default=3)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--fanout", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, help="default: a new temporary directory (kept)")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-by-hand", action="store_true")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="gs-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = SyntheticAcmSpec(num_papers=args.num_papers, seed=args.seed)
    raw = work / "raw"
    generate_synthetic_acm(str(raw), spec)
    yaml_path = work / "config" / f"{GRAPH_NAME}_nc.yaml"
    yaml_path.parent.mkdir(parents=True, exist_ok=True)
    yaml_path.write_text(node_classification_yaml(spec.num_classes))
    hyper = hyperparameter_args(
        num_epochs=args.num_epochs,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        fanout=args.fanout,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    conf = {
        "base_uri": f"file://{work / 'pipeline' / 'runs'}",
        "num_papers": args.num_papers,
        "seed": args.seed,
        "num_epochs": args.num_epochs,
        "hidden_size": args.hidden_size,
        "num_layers": args.num_layers,
        "fanout": args.fanout,
        "batch_size": args.batch_size,
        "lr": args.lr,
    }

    hand = None if args.skip_by_hand else by_hand(raw, yaml_path, work / "by_hand", hyper, args.num_epochs)
    pipe = None if args.skip_pipeline else pipeline(conf, work / "pipeline")

    nodes = sum(len(v) for v in [range(spec.num_papers), range(spec.authors), range(spec.subjects)])
    print()
    print(f"graph: {nodes} nodes (num_papers={spec.num_papers}), GraphStorm flags: {' '.join(hyper)}")
    print(f"{'step':<16}{'by hand (s)':>14}{'pipeline (s)':>14}")
    for step in ("prepare", *STEPS, "report"):
        h = f"{hand.seconds[step]:.1f}" if hand and step in hand.seconds else "-"
        p = f"{pipe.seconds[step]:.1f}" if pipe and step in pipe.seconds else "-"
        print(f"{step:<16}{h:>14}{p:>14}")
    if hand:
        print(f"{'3 steps':<16}{hand.total:>14.1f}{(pipe.total if pipe else float('nan')):>14.1f}")
    if pipe:
        print(f"{'dags test wall':<16}{'':>14}{pipe.seconds['total_dags_test']:>14.1f}")
    if hand and pipe:
        print(
            f"ratio pipeline/by hand: {pipe.seconds['total_dags_test'] / hand.total:.2f} (whole `airflow dags test`), "
            f"{pipe.total / hand.total:.2f} (the three GraphStorm tasks only)"
        )
    for name, m in (("by hand", hand), ("pipeline", pipe)):
        if m:
            acc = f"{m.accuracy:.4f}" if m.accuracy is not None else "n/a"
            dl = f"{m.downloaded_bytes:,} bytes" if m.downloaded_bytes is not None else "n/a (not in the task logs)"
            print(f"{name:<9} test accuracy {acc}; downloaded {dl}. {m.note}")
    print(f"work dir: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
