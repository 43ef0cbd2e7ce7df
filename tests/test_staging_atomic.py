"""
``file://`` writes of the local backends' staging are atomic: a file appears at its path whole or not at all.

``staging.Stager`` copies each file to a temporary name in the destination folder
(``.<name>.partial-<random>``) and renames it into place, removing the temporary when the copy fails or
is stopped. So an attempt killed mid-copy never truncates what an earlier attempt of the same task
completed (job names, and so ``<S3OutputPath>/<job>/output/model.tar.gz``, are the same in every
attempt). The copy is interrupted here by a stand-in ``shutil.copyfile`` that writes half the file and
then fails, as a full disk or a stop in mid-write would. A SIGKILL leaves the temporary: reads skip it,
and the next upload into its folder removes it once no process holds its lock.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphstorm_provider.execution import staging
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
    """The copy temporaries in ``folder``: files named ``.<name>.partial-<8 hex digits>``."""
    return sorted(
        p.name for p in folder.iterdir() if re.fullmatch(r"\..+\.partial-[0-9a-f]{8}", p.name) and p.is_file()
    )


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
AN_HOUR_AGO = time.time() - 3600


# The writer in this process's pid namespace, or in one of its own (as a container's process is:
# another pid numbering, and any hostname), killed with it.
WRITER_PREFIXES = {"same namespace": [], "own pid namespace": ["unshare", "--pid", "--fork", "--kill-child"]}


def wait_for_lock_release(path: Path) -> None:
    """Wait until no process holds ``path``'s lock (a killed process's locks go when it is reaped)."""
    deadline = time.monotonic() + 10
    while not staging._writer_is_gone(path):
        assert time.monotonic() < deadline, f"{path} is still locked"
        time.sleep(0.05)


@pytest.mark.parametrize("namespace", list(WRITER_PREFIXES))
def test_a_copy_killed_mid_write_leaves_a_temporary_that_reads_skip_and_the_next_upload_removes(tmp_path, namespace):
    """SIGKILL is the one stop a copy cannot clean up after: what it leaves is never read, and goes next time."""
    prefix = WRITER_PREFIXES[namespace]
    if prefix and shutil.which(prefix[0]) is None:
        pytest.skip(f"{prefix[0]} is not installed")
    sys.path.insert(0, str(ENTRYPOINTS))
    from gsentry.transfer import Transfer, parse_uri

    (tmp_path / "model.tar.gz").write_bytes(NEW)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "model.tar.gz"
    dest.write_bytes(OLD)
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-c", KILLED_COPY, str(tmp_path / "model.tar.gz"), dest.as_uri()],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout.readline() == "half written\n"
        [killed] = leftovers(out)
        # A live writer's temporary stays, however old: the writer holds its lock.
        assert staging.remove_dead_partials(out, now=time.time() + 3600) == []
    finally:
        proc.kill()
        proc.wait()
    wait_for_lock_release(out / killed)
    assert dest.read_bytes() == OLD
    assert leftovers(out) == [killed]

    # Files that only look like temporaries are a user's; a folder is never one.
    (out / ".env.partial-backup").write_bytes(b"kept")
    (out / ".cache.partial-0000beef").mkdir()
    (out / ".cache.partial-0000beef" / "f").write_bytes(b"kept")
    # A temporary nobody holds, but just made: its writer may not have locked it yet.
    fresh = out / ".young.bin.partial-0000cafe"
    fresh.write_bytes(NEW[:10])

    # Reading the folder (a staged file:// input, an entry point's listing) skips the temporaries only.
    complete = [".cache.partial-0000beef/f", ".env.partial-backup", "model.tar.gz"]
    assert Stager({}).download(out.as_uri(), tmp_path / "in") == len(complete)
    assert (
        sorted(p.relative_to(tmp_path / "in").as_posix() for p in (tmp_path / "in").rglob("*") if p.is_file())
        == complete
    )
    assert Transfer().list_files(parse_uri(out.as_uri())) == complete

    # The next upload into the folder removes the dead writer's temporary once it is old enough.
    Stager({}).upload_file(tmp_path / "model.tar.gz", dest.as_uri())
    assert leftovers(out) == sorted([killed, fresh.name]), "removed a temporary changed within STALE_PARTIAL_AGE_S"
    os.utime(out / killed, (AN_HOUR_AGO, AN_HOUR_AGO))
    Stager({}).upload_file(tmp_path / "model.tar.gz", dest.as_uri())
    assert dest.read_bytes() == NEW
    assert leftovers(out) == [fresh.name]
    assert (out / ".env.partial-backup").read_bytes() == (out / ".cache.partial-0000beef" / "f").read_bytes() == b"kept"

    # A folder upload too, once in every folder it writes into.
    (tmp_path / "graph" / "part0").mkdir(parents=True)
    (tmp_path / "graph" / "part0" / "graph.dgl").write_bytes(NEW)
    (out / "part0").mkdir()
    stale = out / "part0" / ".old.bin.partial-0000dead"
    stale.write_bytes(NEW[:10])
    os.utime(stale, (AN_HOUR_AGO, AN_HOUR_AGO))
    assert Stager({}).upload_dir(tmp_path / "graph", out.as_uri()) == 1
    assert sorted(p.name for p in (out / "part0").iterdir()) == ["graph.dgl"]


def test_the_sweep_is_housekeeping_a_folder_it_cannot_read_or_clean_still_takes_the_upload(
    tmp_path, monkeypatch, caplog
):
    """A write-only drop folder, or another user's dead temporary: the upload goes ahead as before."""
    (tmp_path / "a.bin").write_bytes(NEW)
    drop = tmp_path / "drop"
    drop.mkdir()
    dead = drop / ".a.bin.partial-0000dead"
    dead.write_bytes(NEW[:10])
    os.utime(dead, (AN_HOUR_AGO, AN_HOUR_AGO))
    real_unlink = Path.unlink

    def refuse(path, missing_ok=False):
        if path == dead:
            raise PermissionError(1, "Operation not permitted", str(path))  # a sticky folder, another user's file
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    Stager({}).upload_file(tmp_path / "a.bin", (drop / "a.bin").as_uri())
    assert (drop / "a.bin").read_bytes() == NEW
    assert dead.exists()
    assert "could not remove" in caplog.text

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))  # mode 300: write and search, no read

    monkeypatch.setattr(Path, "iterdir", unreadable)
    Stager({}).upload_file(tmp_path / "a.bin", (drop / "b.bin").as_uri())
    assert (drop / "b.bin").read_bytes() == NEW
