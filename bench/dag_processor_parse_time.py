"""The DAG processor's own parse time of each example DAG next to its EmptyOperator twin.

``bench/dag_parse_time.py`` times the parse itself in a forked child and splits where the time
goes; this one asks the real thing. It starts ``airflow dag-processor`` (one parsing process,
every file re-parsed as soon as it is done) over a temporary DAGs folder holding the example
DAG files and their twins (written by ``dag_parse_time.write_twin``: same tasks, edges, schedule,
params, description, tags and ``doc_md``, every task an ``EmptyOperator``), with a temporary
``AIRFLOW_HOME`` and SQLite database. After each parse the DAG processor stores the duration it measured for the file
(from starting the parsing process to having its result) in ``dag.last_parse_duration``: what
the UI shows as the DAG's "Last parse duration". The bench samples that column until every file
was parsed ``--runs`` times and prints, per example, the medians and their ratio (goal: <= 1.05).
The DAG processor parses the files in rounds (each file once per round), so the i-th parse of an
example and the i-th of its twin are neighbours in time: the bench also prints the median of these
per-round ratios with a 90% bootstrap interval, and says "meets" only when the whole interval is at
or below the goal, "misses" when it is all above, "undecided" otherwise.

One DAG processor's figures are not the whole story: from one run to the next the per-round ratio
of a file moved by up to 0.07 on these machines, much more than the interval of either run. A run
keeps its bias throughout (the DAG processor parses the files in the same order every round,
newest modification time first, and the parent it forks from keeps its memory layout). So
``--sessions K`` runs K DAG processors one after the other, each a fresh ``AIRFLOW_HOME`` and
database over the same files, given modification times in a new random order (``--seed``, printed);
the bench prints each session's median per-round ratio, and its verdict rests on those K medians:
their mean with a 90% Student t interval (K - 1 degrees of freedom), as wide as the sessions
disagree. With one session, the interval is the bootstrap's over its rounds, as above.

Bytecode is cached as in a deployment (``PYTHONPYCACHEPREFIX`` in the temporary folder: these
machines set ``PYTHONDONTWRITEBYTECODE``), and the first parse of every file is not counted.
With ``--pre-import`` the temporary ``airflow_local_settings.py`` holds the line a deployment adds
to import the GraphStorm operators once per DAG processor (``graphstorm_provider/preload.py``).

    .venv/bin/python bench/dag_processor_parse_time.py [--runs 15] [--sessions 1] [--seed N] [--pre-import] [--dags-folder dags]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dag_parse_time  # the twin writer and the in-process parse that finds each DAG's shape

REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = dag_parse_time.GOAL_RATIO
POLL_SECONDS = 0.05
# How long the DAG processor may take to parse every file --runs times (+1 warm-up parse).
TIMEOUT_SECONDS = 900
BOOTSTRAP_RESAMPLES = 2000
INTERVAL = (0.05, 0.95)  # a 90% interval
# Student's t, 0.95 quantile, by degrees of freedom (a two-sided 90% interval); beyond the table, 1.70.
T_95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753)
T_95_BEYOND = 1.70


def airflow_env(home: Path, dags: Path) -> dict[str, str]:
    """Environment of a DAG processor that re-parses every file at once, one file at a time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        {
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
            "AIRFLOW_HOME": str(home),
            "PYTHONPYCACHEPREFIX": str(home / "pycache"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "0",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3600",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "3600",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return env


def write_folder(examples: list[Path], dags: Path) -> dict[str, tuple[str, str]]:
    """Copy the examples and write their twins into ``dags``; map each example file to (its dag_id, the twin's)."""
    dags.mkdir(parents=True)
    pairs = {}
    for example in examples:
        report = dag_parse_time.parse_in_child(example)
        shutil.copy(example, dags / example.name)
        dag_parse_time.write_twin(report["shapes"], dags, example.stem)
        dag_id = sorted(report["shapes"])[0]  # one DAG per example file
        pairs[example.name] = (dag_id, dag_id + dag_parse_time.TWIN_SUFFIX)
    return pairs


# The line a deployment adds to its airflow_local_settings.py (imported by every Airflow process at
# start, the DAG processor's manager included) so that its parsing processes, forked from it, find
# the GraphStorm modules imported, as they find the airflow.* modules a DAG file names.
PRE_IMPORT_SETTINGS = "import graphstorm_provider.preload  # noqa: F401\n"


def write_local_settings(home: Path) -> None:
    """``$AIRFLOW_HOME/config/airflow_local_settings.py`` pre-importing the GraphStorm modules."""
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "airflow_local_settings.py").write_text(PRE_IMPORT_SETTINGS)


def sample(db: Path, dag_ids: set[str], runs: int, proc: subprocess.Popen) -> dict[str, list[float]]:
    """Each DAG's parse durations as the DAG processor stored them, one per parse, until ``runs`` each."""
    seen: dict[str, set] = {d: set() for d in dag_ids}
    durations: dict[str, list[float]] = {d: [] for d in dag_ids}
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while min(len(v) for v in durations.values()) < runs + 1:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow dag-processor exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every file was parsed {runs + 1} times in {TIMEOUT_SECONDS} s: {durations}")
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                rows = con.execute("SELECT dag_id, last_parsed_time, last_parse_duration FROM dag").fetchall()
        except sqlite3.OperationalError:  # locked or not migrated yet
            rows = []
        for dag_id, parsed_at, duration in rows:
            if dag_id in seen and duration is not None and parsed_at not in seen[dag_id]:
                seen[dag_id].add(parsed_at)
                durations[dag_id].append(duration)
        time.sleep(POLL_SECONDS)
    # The first parse compiles and caches bytecode; every file keeps as many parses as the others.
    return {d: v[1 : runs + 1] for d, v in durations.items()}


def round_ratios(ours: list[float], theirs: list[float]) -> list[float]:
    """Per-round ratios ``ours[i] / theirs[i]`` of one session."""
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def paired_ratio(ours: list[list[float]], theirs: list[list[float]], seed: int = 0) -> tuple[float, float, float]:
    """
    The per-round ratio of an example over its twin, pooled over sessions: (low, estimate, high) of a 90% interval.

    One session: the median of its per-round ratios, with a bootstrap interval over its rounds. K
    sessions: the mean of the K sessions' medians, with a Student t interval over those K values (a
    session's bias is shared by all its rounds, so the sessions, not the rounds, are the samples).
    """
    sessions = [round_ratios(o, t) for o, t in zip(ours, theirs, strict=True)]
    if len(sessions) > 1:
        medians = [statistics.median(ratios) for ratios in sessions]
        mean = statistics.mean(medians)
        df = len(medians) - 1
        t = T_95[df - 1] if df <= len(T_95) else T_95_BEYOND
        half = t * statistics.stdev(medians) / math.sqrt(len(medians))
        return mean - half, mean, mean + half
    [ratios] = sessions
    rng = random.Random(seed)  # the same samples always print the same interval
    resampled = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(BOOTSTRAP_RESAMPLES))
    low = resampled[int(INTERVAL[0] * (BOOTSTRAP_RESAMPLES - 1))]
    high = resampled[int(INTERVAL[1] * (BOOTSTRAP_RESAMPLES - 1))]
    return low, statistics.median(ratios), high


def shuffle_parse_order(dags: Path, rng: random.Random) -> list[str]:
    """Give the files of ``dags`` distinct modification times in a random order; return that parse order."""
    files = sorted(dags.glob("*.py"))
    rng.shuffle(files)
    newest = time.time() - 60
    for age, path in enumerate(files):  # the DAG processor parses the newest first
        os.utime(path, (newest - age, newest - age))
    return [path.name for path in files]


def run_session(home: Path, dags: Path, dag_ids: set[str], runs: int, pre_import: bool) -> dict[str, list[float]]:
    """One DAG processor over ``dags`` with its own ``AIRFLOW_HOME``: each DAG's ``runs`` parse durations."""
    home.mkdir()
    env = airflow_env(home, dags)
    if pre_import:
        write_local_settings(home)
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    with open(home / "dag-processor.log", "wb") as log:
        proc = subprocess.Popen(
            ["airflow", "dag-processor"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return sample(home / "airflow.db", dag_ids, runs, proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def verdict(low: float, high: float) -> str:
    if high <= GOAL_RATIO:
        return "meets"
    return "misses" if low > GOAL_RATIO else "undecided"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="parses per file and session (after one warm-up parse)")
    parser.add_argument(
        "--sessions", type=int, default=1, help="DAG processors run one after the other, each in a new parse order"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the sessions' parse orders (default: random)")
    parser.add_argument("--dags-folder", type=Path, default=REPO / "dags")
    parser.add_argument(
        "--pre-import",
        action="store_true",
        help="import the GraphStorm operators in the DAG processor before it forks (airflow_local_settings.py)",
    )
    args = parser.parse_args(argv)
    examples = sorted(p for p in args.dags_folder.glob("*.py") if not p.name.startswith("_"))

    home = Path(tempfile.mkdtemp(prefix="gs-bench-processor-"))
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    print(f"parse orders from --seed {seed}", flush=True)
    rng = random.Random(seed)
    sessions: list[dict[str, list[float]]] = []
    try:
        os.environ.setdefault("AIRFLOW_HOME", str(home / "shapes"))
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        pairs = write_folder(examples, home / "dags")
        dag_ids = {d for pair in pairs.values() for d in pair}
        for number in range(1, args.sessions + 1):
            order = shuffle_parse_order(home / "dags", rng)
            print(f"session {number}/{args.sessions}: parse order {', '.join(order)}", flush=True)
            sessions.append(run_session(home / f"session-{number}", home / "dags", dag_ids, args.runs, args.pre_import))
    finally:
        shutil.rmtree(home, ignore_errors=True)

    print(
        f"airflow dag-processor's last_parse_duration, median of {args.runs} parses per file and session, "
        f"{args.sessions} session(s) (one parsing process)"
    )
    print(
        f"{'example DAG file':<34} {'example ms':>10} {'twin ms':>8} {'ratio':>6}   "
        f"{'per-round ratio' if len(sessions) == 1 else 'mean of sessions per-round ratios'} [90% interval]  "
        f"goal <= {GOAL_RATIO}"
    )
    worst = 0.0
    for name, (dag_id, twin_id) in pairs.items():
        ours = [session[dag_id] for session in sessions]
        theirs = [session[twin_id] for session in sessions]
        ours_ms = statistics.median([d for run in ours for d in run])
        theirs_ms = statistics.median([d for run in theirs for d in run])
        worst = max(worst, ours_ms / theirs_ms)
        low, mid, high = paired_ratio(ours, theirs)
        print(
            f"{name:<34} {ours_ms * 1000:>10.1f} {theirs_ms * 1000:>8.1f} {ours_ms / theirs_ms:>6.2f}   "
            f"{mid:.3f} [{low:.3f}, {high:.3f}]  {verdict(low, high)}"
        )
        if len(sessions) > 1:
            each = [statistics.median(round_ratios(o, t)) for o, t in zip(ours, theirs, strict=True)]
            print(f"{'':<34} per session: {', '.join(f'{r:.3f}' for r in each)}")
    print(
        f"worst ratio of medians {worst:.2f}: {'meets' if worst <= GOAL_RATIO else 'MISSES'} the goal <= {GOAL_RATIO}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
