"""
Moving a local job's inputs in and outputs out, as SageMaker does around a container.

Inputs are ``s3://`` prefixes (SageMaker's ``S3Prefix`` File mode) or ``file://`` paths; outputs go
back to ``s3://`` or ``file://``. S3 is reached with boto3 using the job's environment (the
credentials and endpoint the operator handed to the runner), so moto in tests and a real bucket in
use take the same code path. boto3 is imported inside :func:`s3_client` only: this module is imported
at DAG parse time through the operators.

A ``file://`` file is written whole or not at all (:func:`copy_atomic`: a temporary name in the
destination folder, then a rename), as an S3 put is: a copy that fails or is stopped in mid-write
leaves the path as it was, e.g. the ``model.tar.gz`` an earlier attempt of the same task completed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from graphstorm_provider import uris

log = logging.getLogger(__name__)


class StagingError(ValueError):
    """A URI the local backend cannot read from or write to (one sentence, names the URI)."""


class StagingCancelled(RuntimeError):
    """The job was stopped while its inputs or outputs were being moved."""


@dataclass(frozen=True)
class Location:
    """A parsed ``s3://bucket/key`` or ``file:///path``."""

    uri: str
    scheme: str  # "s3" or "file"
    bucket: str = ""
    key: str = ""
    path: Path | None = None

    @property
    def local_path(self) -> Path:
        """Return the local path of a ``file://`` location (a ``s3://`` one has none)."""
        if self.path is None:
            raise StagingError(f"{self.uri!r} is not a local file:// location")
        return self.path


def parse_uri(uri: str) -> Location:
    """``uri`` as a :class:`Location` (parsed by ``uris.parse_uri``); :class:`StagingError` otherwise."""
    try:
        parsed = uris.parse_uri(uri)
    except uris.UriError as err:
        raise StagingError(str(err).rstrip(".")) from err
    if parsed.scheme == uris.S3_SCHEME:
        return Location(uri, "s3", bucket=parsed.bucket, key=parsed.key)
    return Location(uri, "file", path=Path(parsed.path))


def s3_client(env: Mapping[str, str]) -> Any:
    """
    Create an S3 client for the job's credentials, region and endpoint (``AWS_ENDPOINT_URL[_S3]``).

    Values missing from ``env`` fall back to boto3's own chain (process environment, profile,
    instance role), like the AWS CLI would.
    """
    import boto3  # heavy: only when a job really touches S3

    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
    )
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    return session.client("s3", endpoint_url=endpoint)


def _inside(dest: Path, relative: str, uri: str) -> Path:
    """``dest/relative``, refusing keys such as ``../x`` that would escape ``dest``."""
    parts = PurePosixPath(relative).parts
    if not parts or any(part in ("..", "") for part in parts) or relative.startswith("/"):
        raise StagingError(f"object {uri!r} maps to an unsafe local path {relative!r}")
    return dest.joinpath(*parts)


PARTIAL_MARK = ".partial-"  # in the temporary name of a file being copied: ``.<name>.partial-<8 hex digits>``
# Exactly the names copy_atomic gives its temporaries (a user's ``.env.partial-backup`` is no such name).
_PARTIAL_NAME = re.compile(r"\..+" + re.escape(PARTIAL_MARK) + r"[0-9a-f]{8}")
# A temporary younger than this is left alone by the sweep: its writer may have created it and not yet
# locked it. A dead writer's temporary stops changing when it dies.
STALE_PARTIAL_AGE_S = 10.0


def is_partial(name: str) -> bool:
    """Whether the file name ``name`` is a :func:`copy_atomic` temporary (never a complete file)."""
    return _PARTIAL_NAME.fullmatch(name) is not None


def _writer_is_gone(path: Path) -> bool:
    """Whether no process holds the temporary's lock: the kernel drops a process's locks when it dies."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone already, a link, or not ours to read
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    finally:
        os.close(fd)
    return True


def remove_dead_partials(folder: Path, now: float | None = None) -> list[Path]:
    """
    Remove the temporaries in ``folder`` that :func:`copy_atomic` writers killed mid-copy (SIGKILL) left.

    A temporary goes when no process holds its lock (its writer died; this works across containers
    and pid namespaces, which share the kernel) and it has not changed for
    :data:`STALE_PARTIAL_AGE_S`. One a live process is writing stays. This is housekeeping: a folder
    that cannot be listed, or a temporary that cannot be removed, is logged and left. Returns what
    was removed.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        candidates = [p for p in folder.iterdir() if is_partial(p.name)]
    except OSError as err:  # absent, or write-only (a drop folder)
        log.debug("not sweeping %s for dead temporaries: %s", folder, err)
        return removed
    for path in candidates:
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_PARTIAL_AGE_S:
                continue
            if _writer_is_gone(path):
                path.unlink(missing_ok=True)
                removed.append(path)
                log.info("removed %s, left by a copy that was killed", path)
        except OSError as err:
            log.warning("could not remove %s, left by a copy that was killed: %s", path, err)
    return removed


def _lock(fd: int, path: Path) -> None:
    """Lock the temporary until ``fd`` is closed, so the sweep leaves it alone; a filesystem without locks goes unlocked."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as err:  # ENOLCK, EOPNOTSUPP: the sweep cannot lock it either, so it never removes it
        log.debug("copying to %s unlocked: %s", path, err)


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    """
    Copy the file ``src`` to ``dst`` (data and metadata, as ``shutil.copy2``) so that ``dst`` is never partial.

    The copy goes to ``.<name>.partial-<random>`` beside ``dst``, locked (``flock``) while it is written,
    and is renamed over ``dst`` when complete (``os.replace``, atomic within one filesystem); on any
    error or interruption the temporary is removed and ``dst`` is untouched. Only a SIGKILL mid-copy
    leaves the (hidden) temporary behind: reading a ``file://`` folder skips it (:func:`is_partial`),
    and the next upload into that folder removes it (:func:`remove_dead_partials`).
    """
    dst = Path(dst)
    partial = dst.with_name(f".{dst.name}{PARTIAL_MARK}{uuid.uuid4().hex[:8]}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _lock(fd, partial)
        shutil.copy2(src, partial)
        os.replace(partial, dst)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


class Stager:
    """Downloads and uploads for one job; creates its S3 client on first use."""

    def __init__(self, env: Mapping[str, str], cancelled: Callable[[], bool] = lambda: False):
        self._env = dict(env)
        self._client: Any = None
        # Checked before every file, so stopping a job mid-download does not wait for the rest.
        self._cancelled = cancelled

    def _check(self, uri: str) -> None:
        if self._cancelled():
            raise StagingCancelled(f"stopped while copying {uri}")

    @property
    def s3(self) -> Any:
        if self._client is None:
            self._client = s3_client(self._env)
        return self._client

    # ---- inputs -------------------------------------------------------------------------------
    def download(self, uri: str, dest: Path) -> int:
        """
        Copy ``uri`` into the folder ``dest``; returns the number of files.

        Like SageMaker's ``S3Prefix`` File mode: a prefix's objects keep their paths relative to
        the prefix; a URI naming one object (or one file) lands as ``dest/<basename>``.
        """
        dest.mkdir(parents=True, exist_ok=True)
        loc = parse_uri(uri)
        if loc.scheme == "file":
            return self._copy_in(loc, dest)
        return self._download_s3(loc, dest)

    def _copy_in(self, loc: Location, dest: Path) -> int:
        src = loc.local_path
        if src.is_file():
            copy_atomic(src, dest / src.name)
            return 1
        if not src.is_dir():
            raise StagingError(f"input {loc.uri!r} does not exist")

        def copy(src: str, dst: str) -> None:
            self._check(src)
            copy_atomic(src, dst)

        def skip_partials(folder: str, names: list[str]) -> list[str]:
            # A killed copy's temporary: never complete.
            return [name for name in names if is_partial(name) and os.path.isfile(os.path.join(folder, name))]

        shutil.copytree(src, dest, dirs_exist_ok=True, copy_function=copy, ignore=skip_partials)
        return sum(1 for p in src.rglob("*") if p.is_file() and not is_partial(p.name))

    def _download_s3(self, loc: Location, dest: Path) -> int:
        from botocore.exceptions import ClientError

        if loc.key and not loc.key.endswith("/"):
            try:
                self.s3.head_object(Bucket=loc.bucket, Key=loc.key)
            except ClientError:
                pass  # not a single object: treat it as a folder prefix below
            else:
                target = _inside(dest, PurePosixPath(loc.key).name, loc.uri)
                self.s3.download_file(loc.bucket, loc.key, str(target))
                return 1
        prefix = loc.key.rstrip("/") + "/" if loc.key else ""
        count = 0
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue  # "folder" marker objects hold no data
                    self._check(f"s3://{loc.bucket}/{key}")
                    target = _inside(dest, key[len(prefix) :], f"s3://{loc.bucket}/{key}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.s3.download_file(loc.bucket, key, str(target))
                    count += 1
        except ClientError as exc:
            raise StagingError(f"cannot read input {loc.uri!r}: {exc}") from exc
        if count == 0:
            raise StagingError(f"input {loc.uri!r} holds no objects")
        return count

    # ---- outputs ------------------------------------------------------------------------------
    def upload_dir(self, src: Path, uri: str) -> int:
        """
        Copy every file under ``src`` to the prefix/folder ``uri``; returns the number of files.

        A manifest (:data:`~graphstorm_provider.data.manifest.MANIFEST_NAME` at the top of ``src``)
        goes last, after every other file, and an earlier one at ``uri`` is removed first: an
        interrupted upload leaves no manifest (see "the manifest contract" in docs/ARCHITECTURE.md).
        """
        from graphstorm_provider.data.manifest import MANIFEST_NAME  # keeps DAG parsing light

        files = sorted(
            (p for p in src.rglob("*") if p.is_file()),
            key=lambda p: (p.relative_to(src).as_posix() == MANIFEST_NAME, p.as_posix()),
        )
        if files and files[-1].relative_to(src).as_posix() == MANIFEST_NAME:
            self.delete(_join(uri, MANIFEST_NAME))
        targets = [(path, _join(uri, path.relative_to(src).as_posix())) for path in files]
        for folder in {folder for _, target in targets if (folder := _local_folder(target))}:
            remove_dead_partials(folder)  # once per folder, not once per file
        for path, target in targets:
            self.upload_file(path, target, sweep=False)
        return len(files)

    def delete(self, uri: str) -> None:
        """Remove one output file if it exists."""
        loc = parse_uri(uri)
        if loc.scheme == "file":
            loc.local_path.unlink(missing_ok=True)
            return
        from botocore.exceptions import ClientError

        try:
            self.s3.delete_object(Bucket=loc.bucket, Key=loc.key)
        except ClientError as exc:
            raise StagingError(f"cannot remove the earlier output {uri!r}: {exc}") from exc

    def upload_file(self, path: Path, uri: str, *, sweep: bool = True) -> None:
        """
        Copy the file ``path`` to ``uri`` (a ``file://`` one whole or not at all).

        ``sweep``: first remove what killed copies left in the ``file://`` folder
        (:func:`remove_dead_partials`); :meth:`upload_dir` does that once per folder instead.
        """
        if sweep and (folder := _local_folder(uri)):
            remove_dead_partials(folder)
        self._check(uri)
        loc = parse_uri(uri)
        if loc.scheme == "file":
            loc.local_path.parent.mkdir(parents=True, exist_ok=True)
            copy_atomic(path, loc.local_path)
            return
        # An S3 put is atomic: the object appears whole when the (multipart) upload completes.
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import ClientError

        try:
            self.s3.upload_file(str(path), loc.bucket, loc.key)
        except (ClientError, S3UploadFailedError) as exc:
            raise StagingError(f"cannot write output {uri!r}: {exc}") from exc


def _local_folder(uri: str) -> Path | None:
    """Return the folder a ``file://`` output URI's file goes into; None for ``s3://``."""
    loc = parse_uri(uri)
    return loc.local_path.parent if loc.scheme == "file" else None


def _join(base: str, relative: str) -> str:
    return f"{base.rstrip('/')}/{relative}"
