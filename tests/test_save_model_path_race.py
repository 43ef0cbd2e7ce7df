"""GraphStorm's processes race over a missing ``--save-model-path``; the train entry point makes it first.

Seen once in the 2-host stress run: algo-2's training died at start with ``FileExistsError:
[Errno 17] File exists: '/opt/ml/gsentry/train/model_checkpoints'``. Every GraphStorm process of
a host (DistDGL servers and trainers) builds a ``GSConfig``, which probes a missing
``save_model_path`` by creating and removing it (``GSConfig._is_path_writable``) and then runs
``os.makedirs(save_model_path, exist_ok=True)``. One process's probe can remove the folder between
another's ``mkdir`` and its ``isdir`` check.

Left to the scheduler, that window is hit about once in five tries on an idle machine and not at
all on a loaded one (a CI run saw 0 in 300), so the test does not wait for luck: two processes run
GraphStorm's own code for that step, in the GraphStorm runtime, and the interleaving that failed is
forced at the two standard-library calls it is made of (the prober's ``os.rmdir`` waits until the
other process's ``mkdir`` has failed; that process's ``isdir`` waits until the folder is removed,
and the prober's own ``makedirs`` until that ``isdir`` has looked).
With the folder missing the second process dies of ``FileExistsError`` (the reported failure);
with the folder made first by ``gsentry.model.make_save_model_path``, as ``train_entry.py`` does,
the same schedule harms neither.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
sys.path.insert(0, str(ENTRYPOINTS))

from gsentry.model import SAVE_MODEL_DIR, make_save_model_path  # noqa: E402

RACE = """
import multiprocessing, os, sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from graphstorm.config.argument import GSConfig
from gsentry.model import SAVE_MODEL_DIR, make_save_model_path

WAIT = 60  # seconds; only a broken schedule waits this long

work, made_first = Path(sys.argv[2]), sys.argv[3] == "made-first"
path = str(work / SAVE_MODEL_DIR)
if made_first:
    make_save_model_path(work)
else:
    work.mkdir(parents=True)
context = multiprocessing.get_context("fork")
probe_made, mkdir_failed, removed, checked = (context.Event() for _ in range(4))

def start_like_graphstorm():  # what GSConfig.__init__ does with save_model_path
    if GSConfig._is_path_writable(path):
        os.makedirs(path, exist_ok=True)

def prober():  # its probe makes the folder, removes it once the other's mkdir has failed, then
    rmdir = os.rmdir  # goes on (to its own makedirs) once the other has checked
    def held_rmdir(target, *args, **kwargs):
        if str(target) != path:
            return rmdir(target, *args, **kwargs)
        probe_made.set()
        mkdir_failed.wait(WAIT)
        rmdir(target, *args, **kwargs)
        removed.set()
        checked.wait(WAIT)
    os.rmdir = held_rmdir
    try:
        start_like_graphstorm()
    finally:
        probe_made.set()
        removed.set()

def loser(failures):  # starts while the probe's folder exists; checks it once the probe removed it
    probe_made.wait(WAIT)
    isdir = os.path.isdir
    def held_isdir(target):
        if str(target) != path:
            return isdir(target)
        mkdir_failed.set()
        removed.wait(WAIT)
        found = isdir(target)
        checked.set()
        return found
    os.path.isdir = held_isdir
    try:
        start_like_graphstorm()
    except FileExistsError as error:
        failures.put(f"{type(error).__name__}: {error}")
        return
    failures.put("")

failures = context.Queue()
processes = [context.Process(target=prober), context.Process(target=loser, args=(failures,))]
for process in processes:
    process.start()
print(failures.get(timeout=3 * WAIT) or "started")
for process in processes:
    process.join()
print("folder", "present" if os.path.isdir(path) else "missing")
"""


def _start_two(tmp_path: Path, mode: str) -> str:
    from graphstorm_provider.config import runtime_python

    proc = subprocess.run(
        [runtime_python(), "-c", RACE, str(ENTRYPOINTS), str(tmp_path / mode), mode],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_make_save_model_path_makes_the_folder_and_keeps_an_existing_one(tmp_path):
    path = make_save_model_path(tmp_path / "work")
    assert path == tmp_path / "work" / SAVE_MODEL_DIR
    assert path.is_dir()
    (path / "epoch-0").mkdir()
    assert make_save_model_path(tmp_path / "work") == path
    assert (path / "epoch-0").is_dir()  # what was there stays


def test_a_probe_that_removes_a_missing_folder_kills_the_other_graphstorm_process(tmp_path):
    out = _start_two(tmp_path, "missing")
    assert out.startswith("FileExistsError: "), out  # the reported failure
    assert SAVE_MODEL_DIR in out.split("\n")[0], out


def test_the_same_schedule_harms_no_process_when_the_folder_was_made_first(tmp_path):
    out = _start_two(tmp_path, "made-first")
    assert out.split("\n")[:2] == ["started", "folder present"], out
