"""GraphStorm's processes race over a missing ``--save-model-path``; the train entry point makes it first.

Seen once in the 2-host stress run: algo-2's training died at start with ``FileExistsError:
[Errno 17] File exists: '/opt/ml/gsentry/train/model_checkpoints'``. Every GraphStorm process of
a host (DistDGL servers and trainers) builds a ``GSConfig``, which probes a missing
``save_model_path`` by creating and removing it (``GSConfig._is_path_writable``) and then runs
``os.makedirs(save_model_path, exist_ok=True)``. One process's probe can remove the folder between
another's ``mkdir`` and its ``isdir`` check. Here three processes run GraphStorm's own code for
that step side by side, in the GraphStorm runtime, on many fresh paths: with the folder missing
some die of ``FileExistsError`` (the reported failure, reproduced); with the folder made first by
``gsentry.model.make_save_model_path``, as ``train_entry.py`` now does, none does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
sys.path.insert(0, str(ENTRYPOINTS))

from gsentry.model import SAVE_MODEL_DIR, make_save_model_path  # noqa: E402

PROCESSES = 3  # a host's DistDGL server and trainers
PATHS = 300  # about one path in five loses the race: a missing folder fails here every time
RACE = """
import multiprocessing, os, sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from graphstorm.config.argument import GSConfig
from gsentry.model import SAVE_MODEL_DIR, make_save_model_path

def start_like_graphstorm(barrier, works, failures):
    lost = 0
    for work in works:
        barrier.wait()  # every process at the same path at once, as a host's processes start
        path = str(Path(work) / SAVE_MODEL_DIR)
        try:  # what GSConfig.__init__ does with save_model_path
            if GSConfig._is_path_writable(path):
                os.makedirs(path, exist_ok=True)
        except FileExistsError:
            lost += 1
    failures.put(lost)

root, count, made_first = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "made-first"
works = [str(root / f"work{i}") for i in range(count)]
if made_first:
    for work in works:
        make_save_model_path(Path(work))
context = multiprocessing.get_context("fork")
barrier, failures = context.Barrier(int(sys.argv[5])), context.Queue()
processes = [context.Process(target=start_like_graphstorm, args=(barrier, works, failures)) for _ in range(int(sys.argv[5]))]
for process in processes:
    process.start()
print(sum(failures.get() for _ in processes))
for process in processes:
    process.join()
"""


def _failures(tmp_path: Path, mode: str) -> int:
    from graphstorm_provider.config import runtime_python

    proc = subprocess.run(
        [runtime_python(), "-c", RACE, str(ENTRYPOINTS), str(tmp_path / mode), str(PATHS), mode, str(PROCESSES)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


def test_make_save_model_path_makes_the_folder_and_keeps_an_existing_one(tmp_path):
    path = make_save_model_path(tmp_path / "work")
    assert path == tmp_path / "work" / SAVE_MODEL_DIR
    assert path.is_dir()
    (path / "epoch-0").mkdir()
    assert make_save_model_path(tmp_path / "work") == path
    assert (path / "epoch-0").is_dir()  # what was there stays


def test_graphstorm_processes_lose_the_race_over_a_missing_folder_and_not_over_one_made_first(tmp_path):
    assert _failures(tmp_path, "missing") > 0  # the reported FileExistsError
    assert _failures(tmp_path, "made-first") == 0
