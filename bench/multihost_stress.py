"""Stress: 2-host training then inference, back to back, on a heterogeneous graph with a featureless type.

The graph is the synthetic user/movie/genre one (``graphstorm_provider.data.synthetic_movies``):
edge classification on ``user,rates,movie``, ``genre`` without features, 2 partitions built by
GConstruct. Every run trains 1 epoch on 2 emulated hosts (compose), runs 2-host inference saving
embeddings and predictions, and checks that every test edge has a prediction and every user and
movie an embedding, keyed by raw ID, that every host ran GraphStorm with the same hash seed, and
that none of the run's containers or networks is left. This is the run that failed one time in two before the
launch pinned one string-hash seed for the whole job (issue 9; docs/ARCHITECTURE.md).

    .venv/bin/python bench/multihost_stress.py [--runs 20] [--image graphstorm:sm] [--infer-only]

Prints one line per run (pass/FAIL, train and infer seconds, the failure's first line) and the
pass count; exits 0 only if every run passed. ``--infer-only`` trains once and repeats only the
inference. Needs a container engine and the job image (``docker/build_image.sh``);
``tests/test_compose_heterograph.py`` runs it with 2 runs (marked ``e2e``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq

from graphstorm_provider.data import storage
from graphstorm_provider.data.synthetic_movies import (
    FEATURED_NTYPES,
    TARGET_ETYPE,
    SyntheticMoviesSpec,
    build_graph,
    edge_classification_yaml,
    generate_synthetic_movies,
    raw_test_edges,
)

# What each host's entry point logs of the hash seed its GraphStorm processes run with; a run
# whose hosts name different seeds has the cause of issue 9's race back.
HASH_SEED_LINE = re.compile(r"^\[(algo-\d+)\].*GraphStorm processes run with PYTHONHASHSEED=(\S+)")
GRAPH = "movies"
TASK = "edge_classification"
NUM_CLASSES = 3
DEFAULT_RUNS = 20
JOB_TIMEOUT_S = 1200
HYPERPARAMETERS = (
    "--num-epochs",
    "1",
    "--hidden-size",
    "16",
    "--num-layers",
    "2",
    "--fanout",
    "10,10",
    "--batch-size",
    "128",
    "--lr",
    "0.01",
)


@dataclass(frozen=True)
class PreparedGraph:
    base: Path
    test_edges: frozenset[tuple[str, str]]
    node_ids: dict[str, frozenset[str]]

    @property
    def graph_uri(self) -> str:
        return f"file://{self.base}/graph"

    @property
    def yaml_uri(self) -> str:
        return f"file://{self.base}/config/movies_ec.yaml"


@dataclass
class RunResult:
    index: int
    train_s: float = 0.0
    infer_s: float = 0.0
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.error is None and not self.problems


def prepare_graph(
    base: Path, image: str, log: Callable[[str], None] = lambda line: None, *, num_parts: int = 2
) -> PreparedGraph:
    """Raw graph -> GConstruct (one host, ``--num-parts 2``) -> 2 partitions, plus the YAML."""
    from graphstorm_provider.execution.local import LocalJobRunner
    from graphstorm_provider.jobs.gconstruct import GConstructSpec

    spec = SyntheticMoviesSpec()
    if (base / "graph" / f"{GRAPH}.json").is_file() and len(list((base / "graph").glob("part*"))) == num_parts:
        # Built by an earlier run (--data): the generator is deterministic, so the expected
        # IDs come from the spec without rewriting anything.
        graph = build_graph(spec)
        return PreparedGraph(
            base, frozenset(raw_test_edges(graph)), {nt: frozenset(graph.node_ids[nt]) for nt in FEATURED_NTYPES}
        )
    graph = generate_synthetic_movies(f"file://{base}/raw", spec)
    storage.write_bytes(f"file://{base}/config/movies_ec.yaml", edge_classification_yaml(NUM_CLASSES).encode())
    job = GConstructSpec(
        image_url=image,
        role="local",
        instance_type="local",
        input_graph_s3=f"file://{base}/raw",
        output_graph_s3=f"file://{base}/graph",
        graph_name=GRAPH,
        graph_config_file="config.json",
        graphstorm_args=("--num-parts", str(num_parts)),
    ).build()
    LocalJobRunner(job, log=log).run()
    parts = sorted(p.name for p in (base / "graph").glob("part*"))
    if parts != [f"part{i}" for i in range(num_parts)]:
        raise RuntimeError(f"GConstruct wrote {parts}, expected {num_parts} partition(s)")
    return PreparedGraph(
        base, frozenset(raw_test_edges(graph)), {nt: frozenset(graph.node_ids[nt]) for nt in FEATURED_NTYPES}
    )


def _runner(job, hosts: int, work: Path, log: Callable[[str], None]):
    if hosts == 1:
        from graphstorm_provider.execution.local import LocalJobRunner

        return LocalJobRunner(job, log=log)
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner

    return ComposeJobRunner(job, log=log, work_dir=work, timeout_s=JOB_TIMEOUT_S)


def _job_params(prepared: PreparedGraph, image: str, model_uri: str, hosts: int) -> dict:
    """What the training and the inference job of a run have in common: local hosts, graph, model."""
    return {
        "image_url": image,
        "role": "local",
        "instance_type": "local",
        "instance_count": hosts,
        "region": "us-east-1",
        "graph_data_s3": prepared.graph_uri,
        "yaml_s3": prepared.yaml_uri,
        "model_artifact_s3": model_uri,
        "graph_name": GRAPH,
        "task_type": TASK,
        "graphstorm_args": HYPERPARAMETERS,
    }


def train(
    prepared: PreparedGraph,
    image: str,
    model_uri: str,
    work: Path,
    *,
    hosts: int = 2,
    log: Callable[[str], None] = lambda line: None,
):
    """Run the training job; returns its (finished) runner."""
    from graphstorm_provider.jobs.train import TrainSpec

    job = TrainSpec(
        **_job_params(prepared, image, model_uri, hosts), task_name=f"gs-stress-train-{uuid.uuid4().hex[:6]}"
    ).build()
    runner = _runner(job, hosts, work, log)
    runner.run()
    return runner


def infer(
    prepared: PreparedGraph,
    image: str,
    model_uri: str,
    out: Path,
    work: Path,
    *,
    hosts: int = 2,
    log: Callable[[str], None] = lambda line: None,
):
    """Run the inference job; returns its (finished) runner."""
    from graphstorm_provider.jobs.infer import InferSpec

    job = InferSpec(
        **_job_params(prepared, image, model_uri, hosts),
        output_emb_s3=f"file://{out}/embeddings/",
        output_prediction_s3=f"file://{out}/predictions/",
        task_name=f"gs-stress-infer-{uuid.uuid4().hex[:6]}",
    ).build()
    runner = _runner(job, hosts, work, log)
    runner.run()
    return runner


def _rows(folder: Path, columns: list[str]) -> list[tuple]:
    rows: list[tuple] = []
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path, columns=columns)
        rows += list(zip(*(table.column(c).to_pylist() for c in columns)))
    return rows


def check_outputs(prepared: PreparedGraph, out: Path) -> list[str]:
    """What is missing or wrong in the inference output (empty: all there, keyed by raw IDs)."""
    problems = []
    pred_dir = out / "predictions" / "_".join(TARGET_ETYPE)
    pairs = [(s, d) for s, d, _ in _rows(pred_dir, ["src_nid", "dst_nid", "pred"])]
    if set(pairs) != prepared.test_edges or len(pairs) != len(prepared.test_edges):
        missing = len(prepared.test_edges - set(pairs))
        problems.append(
            f"predictions: {len(pairs)} rows in {pred_dir}, {missing} of "
            f"{len(prepared.test_edges)} test edges missing, {len(set(pairs) - prepared.test_edges)} unknown"
        )
    for ntype, ids in prepared.node_ids.items():
        emb_dir = out / "embeddings" / ntype
        nids = [nid for nid, _ in _rows(emb_dir, ["nid", "emb"])]
        if set(nids) != ids or len(nids) != len(ids):
            problems.append(
                f"embeddings of {ntype}: {len(nids)} rows in {emb_dir} for {len(ids)} nodes, "
                f"{len(ids - set(nids))} missing"
            )
    return problems


def hash_seeds(lines: list[str]) -> dict[str, str]:
    """The PYTHONHASHSEED each host reported in ``lines``, by host name (``algo-1``, ...)."""
    return dict(m.groups() for m in map(HASH_SEED_LINE.match, lines) if m)


def host_problems(lines: list[str], runners: list, hosts: int) -> list[str]:
    """What is wrong with a finished multi-host run's hosts: different hash seeds, containers or networks left."""
    if hosts == 1:
        return []  # the local backend: one process tree, no containers
    problems = []
    seeds = hash_seeds(lines)
    if len(seeds) != hosts or len(set(seeds.values())) != 1:
        problems.append(f"hosts reported hash seeds {seeds}, expected one seed from each of {hosts} hosts")
    left = [name for runner in runners for name in runner.leftovers()]
    if left:
        problems.append(f"left behind: {', '.join(left)}")
    return problems


def _first_line(err: BaseException, lines: list[str]) -> str:
    """The failing host's own one-line error (the entry points print ``ERROR: <reason>``)."""
    for line in lines:
        if "] ERROR: " in line:
            return line.strip()[:300]
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def stress(
    runs: int,
    image: str,
    workdir: Path,
    *,
    hosts: int = 2,
    infer_only: bool = False,
    data_dir: Path | None = None,
    report: Callable[[RunResult], None] = lambda result: None,
    log: Callable[[str], None] = lambda line: None,
) -> list[RunResult]:
    """``runs`` back-to-back train + infer runs (inference only after the first with ``infer_only``)."""
    prepared = prepare_graph(data_dir or workdir / "data", image, log, num_parts=hosts)
    results = []
    model_uri = None
    for index in range(1, runs + 1):
        result = RunResult(index)
        run_dir = workdir / f"run{index:02d}"
        lines: list[str] = []
        runners: list = []

        def keep(line: str, lines: list[str] = lines) -> None:  # bound now: this run's lines
            lines.append(line)
            log(line)

        try:
            if model_uri is None or not infer_only:
                started = time.monotonic()
                candidate = f"file://{run_dir}/model/"
                try:
                    runners.append(train(prepared, image, candidate, run_dir / "train-work", hosts=hosts, log=keep))
                finally:
                    result.train_s = time.monotonic() - started
                model_uri = candidate
            started = time.monotonic()
            try:
                runners.append(
                    infer(prepared, image, model_uri, run_dir / "out", run_dir / "infer-work", hosts=hosts, log=keep)
                )
            finally:
                result.infer_s = time.monotonic() - started
            result.problems = check_outputs(prepared, run_dir / "out") + host_problems(lines, runners, hosts)
        except Exception as err:
            result.error = _first_line(err, lines)
        report(result)
        results.append(result)
    return results


def format_result(result: RunResult) -> str:
    status = "pass" if result.passed else "FAIL"
    line = f"run {result.index:2d}: {status}  train {result.train_s:6.1f} s  infer {result.infer_s:6.1f} s"
    if result.error:
        line += f"  {result.error}"
    if result.problems:
        line += "  " + "; ".join(result.problems)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="back-to-back runs (default 20)")
    parser.add_argument("--image", default=os.environ.get("GRAPHSTORM_IMAGE", "graphstorm:sm"))
    parser.add_argument("--hosts", type=int, default=2, choices=(1, 2), help="1: the local backend (a check)")
    parser.add_argument("--infer-only", action="store_true", help="train once, then repeat inference only")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir, removed)")
    parser.add_argument("--data", type=Path, help="the graph's folder: reused when it holds a built graph")
    parser.add_argument("--verbose", action="store_true", help="print the jobs' output lines too")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    def report(result: RunResult) -> None:
        print(format_result(result), flush=True)

    with tempfile.TemporaryDirectory(prefix="gs-stress-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        results = stress(
            args.runs,
            args.image,
            workdir,
            hosts=args.hosts,
            infer_only=args.infer_only,
            data_dir=args.data,
            report=report,
            log=print if args.verbose else (lambda line: None),
        )
    passed = sum(r.passed for r in results)
    trains = [r.train_s for r in results if r.train_s]
    infers = [r.infer_s for r in results if r.infer_s]
    print(
        f"passed {passed}/{len(results)} ({args.hosts}-host {'inference' if args.infer_only else 'train + infer'}, "
        f"image {args.image}) in {time.monotonic() - started:.0f} s; "
        f"train {min(trains, default=0):.0f}-{max(trains, default=0):.0f} s, "
        f"infer {min(infers, default=0):.0f}-{max(infers, default=0):.0f} s"
    )
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
