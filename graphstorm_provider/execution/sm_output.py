"""
SageMaker's own output of a training job: a folder packed as ``<S3OutputPath>/<job name>/output/<archive>``.

When a training job succeeds, SageMaker packs the leader's (``algo-1``'s) ``/opt/ml/model`` into
``model.tar.gz`` and its ``/opt/ml/output/data`` into ``output.tar.gz``, each folder's entries at
the archive's top, under the request's ``OutputDataConfig.S3OutputPath``. The one-host backend
writes both from its work directory (``local.py``); the compose backend writes ``model.tar.gz`` only,
from the leader's folder copied out of its exited container (``compose_runner.py``: our entry points
never write ``/opt/ml/output/data``).
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    container's ``/opt/ml/model`` copied out as a link (``docker cp`` without ``-L``) points at a path
    of the host. Links inside the folder are packed as links. ``cancelled`` (the runner's stop flag) is
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
