"""
SageMaker's own output of a training job: a folder packed as ``<S3OutputPath>/<job name>/output/<archive>``.

When a training job succeeds, SageMaker packs the leader's (``algo-1``'s) ``/opt/ml/model`` into
``model.tar.gz`` and its ``/opt/ml/output/data`` into ``output.tar.gz``, each folder's entries at
the archive's top, under the request's ``OutputDataConfig.S3OutputPath``. The one-host backend
writes both from its work directory (``local.py``); the compose backend from the leader's folders
streamed out of its exited container as tars (``<engine> cp ctr:/opt/ml/model -``, repacked by
:func:`pack_copied_folder` without landing on the host's disk; ``compose_runner.py``). Our entry
points never write ``/opt/ml/output/data``; a custom training script may.
The archive is written to ``s3://`` or ``file://`` by :class:`~.staging.Stager`.

The job name is one path segment of the archive's URI, so :func:`archive_uri` takes only a SageMaker
job name (letters, digits, hyphens): whatever the name says, nothing is written outside
``<S3OutputPath>``. The runners call it before the job runs, so a bad name fails before any work.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from graphstorm_provider.jobs.validation import JOB_NAME_MAX, JOB_NAME_RE
from graphstorm_provider.uris import UriError, parse_uri

if TYPE_CHECKING:
    from graphstorm_provider.execution.staging import Stager
    from graphstorm_provider.jobs.request import JobRequest

MODEL_ARCHIVE = "model.tar.gz"  # of /opt/ml/model
OUTPUT_ARCHIVE = "output.tar.gz"  # of /opt/ml/output/data


class OutputArchiveError(ValueError):
    """A training request whose archive URI would not be ``<S3OutputPath>/<job name>/output/<archive>`` (one sentence)."""


def archive_uri(job: JobRequest, archive: str) -> str | None:
    """
    Return ``<S3OutputPath>/<job name>/output/<archive>``, or None for a job without ``S3OutputPath`` (processing).

    Raise :class:`OutputArchiveError` when the job name is no SageMaker job name (``../x``, ``a/b``,
    ``%2e%2e``, more than 63 characters, ...) or the URI does not parse (``uris.parse_uri``).
    """
    base = (job.request.get("OutputDataConfig") or {}).get("S3OutputPath")
    if not base:
        return None
    name = job.job_name
    if not JOB_NAME_RE.match(name) or len(name) > JOB_NAME_MAX:
        raise OutputArchiveError(
            f"job name {name[:100]!r} is not a SageMaker job name (1-{JOB_NAME_MAX} letters, digits and hyphens, "
            f"starting and ending with a letter or digit), so it cannot name the folder of {archive} under "
            f"S3OutputPath {base[:200]!r}."
        )
    uri = f"{str(base).rstrip('/')}/{name}/output/{archive}"
    try:
        parse_uri(uri)
    except UriError as err:
        raise OutputArchiveError(f"OutputDataConfig.S3OutputPath: {err}") from None
    return uri


def upload_archive(
    folder: Path, uri: str, stager: Stager, scratch: Path, cancelled: Callable[[], bool] | None = None
) -> bool:
    """
    Pack ``folder`` (its entries at the archive's top) as ``scratch/<archive name>`` and write it to ``uri``.

    Return False, writing nothing, when ``folder`` is missing or empty: the entry points upload their
    artifacts themselves, so an empty folder is no archive in the user's bucket. The archive is
    complete before it is written, and ``uri`` is written whole or not at all (an S3 put; a ``file://``
    copy renamed into place), so ``uri`` never holds a partial one.

    ``folder`` itself is never followed when it is a symbolic link (:class:`~.staging.StagingError`): a
    job that left its model folder as a link points the archive at another folder of this host, which
    SageMaker would not see. Links inside the folder are packed as links. ``cancelled`` (the runner's stop flag) is
    checked before every member and between blocks of the compressed output: once it is set, packing
    ends with :class:`~.staging.StagingCancelled` and the partial archive is removed.
    """
    from graphstorm_provider.execution.staging import StagingError

    if folder.is_symlink():
        raise StagingError(
            f"{folder} is a symbolic link (to {os.readlink(folder)!r}), not a folder, so it is not packed as "
            f"{uri} (what it points to would be read on this host, not in the job's container)"
        )
    if not folder.is_dir() or not any(folder.iterdir()):
        return False
    tar_path = scratch / uri.rsplit("/", 1)[-1]
    try:
        with _CheckedWriter(tar_path, uri, cancelled) as out, tarfile.open(fileobj=out, mode="w:gz") as tar:

            def member(info: tarfile.TarInfo) -> tarfile.TarInfo:
                out.check(info.name)
                return info

            for path in sorted(folder.iterdir()):
                tar.add(path, arcname=path.name, filter=member)
        stager.upload_file(tar_path, uri)
    finally:
        tar_path.unlink(missing_ok=True)
    return True


def pack_copied_folder(
    stream: IO[bytes], folder: str, tar_path: Path, uri: str, cancelled: Callable[[], bool] | None = None
) -> bool:
    """
    Repack the tar stream of ``<engine> cp <container>:<folder> -`` as the archive ``tar_path``, for ``uri``.

    The stream's first entry is the copied folder (named as the folder, or as what it links to inside
    the container when the engine follows a link: podman 4 does) and everything else lies under it;
    the archive gets the folder's entries at its top, as SageMaker's does (links inside stay links).
    Nothing is extracted: the host's disk holds only the compressed archive. Return False, writing
    nothing, when the folder is empty.

    Raise :class:`~.staging.StagingError` when the first entry is not a folder (a container's
    ``/opt/ml/model`` that is a symbolic link: ``docker cp`` without ``-L`` sends the link, whose
    target means nothing outside the container) or an entry lies outside it, ``tarfile.TarError``
    when the stream is no tar (the caller asks the copy's exit status why), and, once ``cancelled()``
    is true, :class:`~.staging.StagingCancelled` at the next entry or compressed block. ``tar_path``
    is removed unless it holds the complete archive.
    """
    from graphstorm_provider.execution.staging import StagingError

    top = ""
    packed = False
    try:
        with (
            tarfile.open(fileobj=stream, mode="r|") as copied,
            _CheckedWriter(tar_path, uri, cancelled) as out,
            tarfile.open(fileobj=out, mode="w:gz") as tar,
        ):
            for member in copied:
                out.check(member.name)
                if not top:
                    top = member.name.rstrip("/")
                    if not member.isdir() or len(PurePosixPath(top).parts) != 1 or top in {".", ".."}:
                        if member.issym():
                            what = f"a symbolic link (to {member.linkname[:200]!r}: a path that means nothing here)"
                        else:
                            what = f"not one folder (the copy starts with {member.name[:100]!r})"
                        raise StagingError(f"{folder} in the container is {what}, so it is not packed as {uri}")
                    continue
                member.name = _inside(member.name, top, folder, uri)
                if member.islnk():  # a hard link names another entry of the copy
                    member.linkname = _inside(member.linkname, top, folder, uri)
                tar.addfile(member, copied.extractfile(member) if member.isfile() else None)
                packed = True
    except BaseException:
        tar_path.unlink(missing_ok=True)
        raise
    if not packed:
        tar_path.unlink(missing_ok=True)
    return packed


def _inside(name: str, top: str, folder: str, uri: str) -> str:
    """``name`` of an entry of the copy of ``folder``, relative to it; StagingError when it is not under it."""
    from graphstorm_provider.execution.staging import StagingError

    parts = PurePosixPath(name).parts
    if len(parts) < 2 or parts[0] != top or ".." in parts:
        raise StagingError(
            f"the copy of {folder} holds {name[:200]!r}, which is not inside it, so {uri} is not written"
        )
    return PurePosixPath(*parts[1:]).as_posix()


class _CheckedWriter(io.FileIO):
    """
    The archive's file: ``check`` raises :class:`~.staging.StagingCancelled` once ``cancelled()`` is true.

    Every write checks too (a big member is compressed in many). Once stopped, later writes (gzip's
    trailer as the archive is closed on the way out) are dropped: the file is removed anyway.
    """

    def __init__(self, path: Path, uri: str, cancelled: Callable[[], bool] | None) -> None:
        super().__init__(path, "wb")
        self._uri = uri
        self._cancelled = cancelled or (lambda: False)
        self._stopped = False

    def check(self, what: str) -> None:
        from graphstorm_provider.execution.staging import StagingCancelled

        if not self._stopped and self._cancelled():
            self._stopped = True
            raise StagingCancelled(f"stopped while packing {what} for {self._uri}")

    def write(self, data: Any) -> int:
        self.check("the archive")
        if self._stopped:
            return len(data)
        return super().write(data)
