"""
``file://`` writes of the local backends' staging are atomic: a file appears at its path whole or not at all.

``staging.Stager`` copies each file to a temporary name in the destination folder
(``.<name>.partial-<random>``) and renames it into place, removing the temporary when the copy fails or
is stopped. So an attempt killed mid-copy never truncates what an earlier attempt of the same task
completed (job names, and so ``<S3OutputPath>/<job>/output/model.tar.gz``, are the same in every
attempt). The copy is interrupted here by a stand-in ``shutil.copyfile`` that writes half the file and
then fails, as a full disk or a stop in mid-write would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphstorm_provider.execution.staging import Stager

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINTS = REPO / "entrypoints"
OLD = b"the archive an earlier attempt completed" * 100
NEW = b"N" * 10_000


class Interrupted(Exception):
    """Stands for whatever ends a copy in mid-write (a full disk, a stop)."""


@pytest.fixture
def half_copies(monkeypatch):
    """Make every ``shutil.copyfile`` write half of its source, then raise ``error`` (OSError by default)."""
    state: dict[str, BaseException] = {"error": OSError(28, "No space left on device")}

    def copyfile(src, dst, *, follow_symlinks=True):
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])
        raise state["error"]

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    return state


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_interrupted_upload_keeps_the_file_an_earlier_attempt_completed(tmp_path, half_copies, error):
    half_copies["error"] = error
    (tmp_path / "model.tar.gz").write_bytes(NEW)
    dest = tmp_path / "out" / "job" / "output" / "model.tar.gz"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(OLD)
    with pytest.raises(type(error)):
        Stager({}).upload_file(tmp_path / "model.tar.gz", dest.as_uri())
    assert dest.read_bytes() == OLD
    assert leftovers(dest.parent) == []


def test_an_interrupted_first_upload_leaves_nothing_at_the_path(tmp_path, half_copies):
    (tmp_path / "model.tar.gz").write_bytes(NEW)
    dest = tmp_path / "out" / "model.tar.gz"
    with pytest.raises(OSError, match="No space left"):
        Stager({}).upload_file(tmp_path / "model.tar.gz", dest.as_uri())
    assert list(dest.parent.iterdir()) == []


def test_an_interrupted_folder_upload_leaves_no_partial_file(tmp_path, half_copies):
    src = tmp_path / "processing-output"
    (src / "part0").mkdir(parents=True)
    (src / "part0" / "graph.dgl").write_bytes(NEW)
    dest = tmp_path / "published"
    with pytest.raises(OSError, match="No space left"):
        Stager({}).upload_dir(src, dest.as_uri())
    assert [p for p in dest.rglob("*") if p.is_file()] == []


def test_an_interrupted_file_input_leaves_no_partial_file(tmp_path, half_copies):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "big.bin").write_bytes(NEW)
    for uri in (data.as_uri(), (data / "sub" / "big.bin").as_uri()):
        dest = tmp_path / "in"
        with pytest.raises(OSError, match="No space left"):
            Stager({}).download(uri, dest)
        assert [p for p in dest.rglob("*") if p.is_file()] == []
        shutil.rmtree(dest)


def test_a_completed_copy_replaces_the_file_keeps_its_metadata_and_leaves_no_temporary(tmp_path):
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "nested" / "a.bin").write_bytes(NEW)
    os.utime(src / "nested" / "a.bin", (1_000_000_000, 1_000_000_000))
    dest = tmp_path / "dest"
    (dest / "nested").mkdir(parents=True)
    (dest / "nested" / "a.bin").write_bytes(OLD)
    stager = Stager({})
    assert stager.upload_dir(src, dest.as_uri()) == 1
    assert (dest / "nested" / "a.bin").read_bytes() == NEW
    assert (dest / "nested" / "a.bin").stat().st_mtime == 1_000_000_000
    assert stager.download(src.as_uri(), tmp_path / "in") == 1
    assert stager.download((src / "nested" / "a.bin").as_uri(), tmp_path / "one") == 1
    assert (tmp_path / "in" / "nested" / "a.bin").read_bytes() == (tmp_path / "one" / "a.bin").read_bytes() == NEW
    for folder in (dest / "nested", tmp_path / "in" / "nested", tmp_path / "one"):
        assert leftovers(folder) == []


# A copy that writes half of the new archive, says so on stdout, and waits to be killed.
KILLED_COPY = """
import shutil, sys, time
from pathlib import Path
from graphstorm_provider.execution.staging import Stager

def copyfile(src, dst, *, follow_symlinks=True):
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: len(data) // 2])
    print("half written", flush=True)
    time.sleep(600)

shutil.copyfile = copyfile
Stager({}).upload_file(Path(sys.argv[1]), sys.argv[2])
"""


def test_a_copy_killed_mid_write_leaves_a_temporary_that_reads_skip_and_the_next_upload_removes(tmp_path):
    """SIGKILL is the one stop a copy cannot clean up after: what it leaves is never read, and goes next time."""
    sys.path.insert(0, str(ENTRYPOINTS))
    from graphstorm_provider.execution.staging import PARTIAL_MARK
    from gsentry.transfer import Transfer, parse_uri

    (tmp_path / "model.tar.gz").write_bytes(NEW)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "model.tar.gz"
    dest.write_bytes(OLD)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_COPY, str(tmp_path / "model.tar.gz"), dest.as_uri()],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout.readline() == "half written\n"
    finally:
        proc.kill()
        proc.wait()
    [dead] = leftovers(out)
    assert f"~{proc.pid}-" in dead
    assert dest.read_bytes() == OLD
    # Temporaries whose writer may be alive: this process's, and one from another host.
    host_tag = dead[len(f".model.tar.gz{PARTIAL_MARK}") :].rpartition("~")[0]
    alive = out / f".model.tar.gz{PARTIAL_MARK}{host_tag}~{os.getpid()}-0000beef"
    elsewhere = out / f".model.tar.gz{PARTIAL_MARK}other-host~{proc.pid}-0000cafe"
    for path in (alive, elsewhere):
        path.write_bytes(NEW[:10])

    # Reading the folder (a staged file:// input, an entry point's listing) skips every temporary.
    assert Stager({}).download(out.as_uri(), tmp_path / "in") == 1
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["model.tar.gz"]
    assert Transfer().list_files(parse_uri(out.as_uri())) == ["model.tar.gz"]

    # The next upload into the folder removes the dead writer's temporary only.
    Stager({}).upload_file(tmp_path / "model.tar.gz", dest.as_uri())
    assert dest.read_bytes() == NEW
    assert leftovers(out) == sorted([alive.name, elsewhere.name])

    # A folder upload too, in every folder it writes into (here a dead writer's temporary of another name).
    (tmp_path / "graph" / "part0").mkdir(parents=True)
    (tmp_path / "graph" / "part0" / "graph.dgl").write_bytes(NEW)
    (out / "part0").mkdir()
    stale = out / "part0" / f".old.bin{PARTIAL_MARK}{host_tag}~{proc.pid}-0000dead"
    stale.write_bytes(NEW[:10])
    assert Stager({}).upload_dir(tmp_path / "graph", out.as_uri()) == 1
    assert sorted(p.name for p in (out / "part0").iterdir()) == ["graph.dgl"]
