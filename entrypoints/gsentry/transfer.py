"""
Copies between this container and ``s3://`` or ``file://`` URIs, in parallel.

S3 goes through boto3 with the standard environment, so ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` (a moto server in tests) and the usual credential chain just work.
``file://`` URIs are plain copies (SageMaker local mode). A prefix URI names a "folder": listing
``s3://b/graph`` lists the keys under ``graph/``, never ``graph2/...``.

Nothing is written outside the folder a download goes to, whatever a key says: every download
target is computed by :func:`local_target`, which refuses keys with ``..`` segments or a leading
``/``. ``s3://`` URIs are split by hand (``?`` and ``#`` are legal key characters, which
``urlparse`` would cut off as query and fragment); ``file://`` URIs are percent-decoded first and
then checked, so ``%2e%2e`` is the ``..`` it decodes to.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

from gsentry.errors import EntryError, InputError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # type stubs only (constraints/lint.txt); not in the image

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_WORKERS = 8
# The name of a file the host side is still copying into a ``file://`` folder (the provider's
# ``staging.copy_atomic`` writes ``.<name>.partial-<8 hex digits>`` and renames it into place): a
# listing skips such files, which a copy killed mid-write can leave behind; they are never complete.
PARTIAL_NAME = re.compile(r"\..+\.partial-[0-9a-f]{8}")


@dataclass(frozen=True)
class Location:
    """A parsed URI: ``scheme`` is ``s3`` (bucket + key) or ``file`` (path)."""

    scheme: str
    bucket: str
    key: str

    @property
    def path(self) -> Path:
        return Path("/" + self.key.lstrip("/")) if self.scheme == "file" else Path(self.key)

    def child(self, relative: str) -> Location:
        key = self.key.rstrip("/")
        return Location(self.scheme, self.bucket, f"{key}/{relative}" if key else relative)

    def uri(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.key}"
        return f"file://{self.path}"


S3_SCHEME = "s3://"
FILE_SCHEME = "file://"


@contextmanager
def s3_failure(action: str, loc: Location) -> Iterator[None]:
    """Turn a botocore error of an S3 call into an :class:`EntryError`: one line naming the action and ``loc``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise EntryError(f"cannot {action} {loc.uri()}: {' '.join(str(err).split())}") from err


def parse_uri(uri: str, param: str = "uri") -> Location:
    """
    Parse an ``s3://bucket/key`` or ``file:///abs/path`` URI; ``param`` names the flag in errors.

    The key of an ``s3://`` URI is everything after the bucket, verbatim (``?``, ``#`` and ``%``
    included). A ``file://`` path is percent-decoded, then refused if it has a ``..`` segment.
    """
    if uri.startswith(S3_SCHEME):
        bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
        if not bucket:
            raise InputError(f"{param} must name a bucket, got {uri!r}.")
        return Location("s3", bucket, key)
    if uri.startswith(FILE_SCHEME):
        host, slash, rest = uri[len(FILE_SCHEME) :].partition("/")
        path = unquote(slash + rest)
        if host not in ("", "localhost") or not path.startswith("/"):
            raise InputError(f"{param} must be an absolute file:// URI (file:///path), got {uri!r}.")
        if ".." in PurePosixPath(path).parts:
            raise InputError(f"{param} must not contain '..' (also percent-encoded), got {uri!r}.")
        return Location("file", "", path)
    raise InputError(f"{param} must be an s3:// or file:// URI, got {uri!r}.")


def local_target(dest: Path, relative: str, prefix: Location) -> Path:
    """
    ``dest/relative`` for a file listed under ``prefix``, refusing what would land outside ``dest``.

    The one check every download goes through: a key such as ``part0/../../x`` or ``/etc/x``
    (relative to its prefix) fails the job naming the key and the prefix.
    """
    parts = PurePosixPath(relative).parts
    if not relative or relative.startswith("/") or ".." in parts or not parts:
        raise InputError(
            f"refusing to download {prefix.child(relative).uri()!r}: its path {relative!r} under "
            f"{prefix.uri()} would be written outside the job's folder."
        )
    target = dest.joinpath(*parts)
    if not target.resolve().is_relative_to(dest.resolve()):  # a symlink planted in dest
        raise InputError(
            f"refusing to download {prefix.child(relative).uri()!r}: its path {relative!r} under "
            f"{prefix.uri()} resolves outside the job's folder."
        )
    return target


class Transfer:
    """Lists, downloads and uploads files; one boto3 client shared by a thread pool."""

    def __init__(self, region: str | None = None, workers: int = DEFAULT_WORKERS):
        self.region = region
        self.workers = max(1, workers)
        self._client: S3Client | None = None

    @property
    def s3(self) -> S3Client:
        if self._client is None:
            import boto3  # only containers that touch S3 pay for the import

            self._client = boto3.session.Session().client("s3", region_name=self.region)
        return self._client

    # --- listing ---------------------------------------------------------------------------
    def list_sizes(self, prefix: Location) -> dict[str, int]:
        """``{relative path (POSIX): size in bytes}`` of every file under ``prefix``."""
        if prefix.scheme == "file":
            root = prefix.path
            if root.is_file():
                return {"": root.stat().st_size}
            if not root.is_dir():
                return {}
            return {
                p.relative_to(root).as_posix(): p.stat().st_size
                for p in root.rglob("*")
                if p.is_file() and not PARTIAL_NAME.fullmatch(p.name)
            }
        folder = prefix.key.rstrip("/")
        folder = f"{folder}/" if folder else ""
        found: dict[str, int] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        with s3_failure("list", prefix):
            for page in paginator.paginate(Bucket=prefix.bucket, Prefix=folder):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(folder) :]
                    if rel and not rel.endswith("/"):
                        found[rel] = int(obj.get("Size", 0))
        return found

    def list_files(self, prefix: Location) -> list[str]:
        """Relative paths (POSIX) of every file under ``prefix``, sorted."""
        return sorted(self.list_sizes(prefix))

    def exists(self, loc: Location) -> bool:
        """Whether ``loc`` is a file (object)."""
        if loc.scheme == "file":
            return loc.path.is_file()
        from botocore.exceptions import ClientError

        with s3_failure("look up", loc):  # any answer but "not found" (403, no bucket, ...)
            try:
                self.s3.head_object(Bucket=loc.bucket, Key=loc.key)
                return True
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise

    def read_bytes(self, loc: Location) -> bytes:
        """Read one small file (a manifest); ``FileNotFoundError`` when it is absent."""
        if loc.scheme == "file":
            return loc.path.read_bytes()
        from botocore.exceptions import ClientError

        try:
            body: bytes = self.s3.get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read()
            return body
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(loc.uri()) from err
            raise EntryError(f"cannot read {loc.uri()}: {err}") from err

    # --- downloads: every one goes through local_target ----------------------------------------
    def _copy_down(self, src: Location, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            if src.scheme == "file":
                shutil.copyfile(src.path, dest)
            else:
                self.s3.download_file(src.bucket, src.key, str(dest))
        except FileNotFoundError as err:
            raise EntryError(f"cannot download {src.uri()}: it does not exist") from err
        except Exception as err:  # botocore errors carry the S3 reason; keep it
            if type(err).__name__ in ("ClientError", "NoCredentialsError", "EndpointConnectionError"):
                raise EntryError(f"cannot download {src.uri()}: {err}") from err
            raise
        return dest

    def download_file(self, src: Location, dest_dir: Path) -> Path:
        """Download the one file ``src`` names into ``dest_dir`` under its own name."""
        key = src.key.rstrip("/")
        parent_key, _, name = key.rpartition("/")
        parent = Location(src.scheme, src.bucket, parent_key if src.scheme == "s3" else str(src.path.parent))
        return self._copy_down(src, local_target(dest_dir, name, parent))

    def fetch(
        self,
        prefix: Location,
        dest: Path,
        files: Mapping[str, str] | Iterable[str],
        check: Callable[[str, Path], None] | None = None,
    ) -> list[Path]:
        """
        Download files listed under ``prefix`` into ``dest``.

        ``files``: relative paths under ``prefix``, or ``{relative path: local relative path}``.
        ``check(relative path, local file)`` runs after each download (checksums). Every target is
        checked by :func:`local_target` before anything is downloaded.
        """
        pairs = dict(files) if isinstance(files, Mapping) else {rel: rel for rel in files}
        for rel in pairs:  # the key itself too, even when it is mapped to a tidier local name
            local_target(dest, rel, prefix)
        jobs = [(rel, prefix.child(rel), local_target(dest, local, prefix)) for rel, local in pairs.items()]

        def one(job: tuple[str, Location, Path]) -> None:
            rel, src, target = job
            self._copy_down(src, target)
            if check is not None:
                check(rel, target)

        self._run_all(one, jobs)
        size = sum(target.stat().st_size for _, _, target in jobs)
        log.info("downloaded %d file(s), %d bytes from %s to %s", len(jobs), size, prefix.uri(), dest)
        return [target for _, _, target in jobs]

    def download_tree(
        self,
        prefix: Location,
        dest: Path,
        include: Callable[[str], bool] = lambda rel: True,
        check: Callable[[str, Path], None] | None = None,
    ) -> list[Path]:
        """Download every file under ``prefix`` whose relative path passes ``include``."""
        wanted = [rel for rel in self.list_files(prefix) if rel and include(rel)]
        return self.fetch(prefix, dest, wanted, check)

    def delete(self, loc: Location) -> None:
        """Remove one file (object)."""
        if loc.scheme == "file":
            loc.path.unlink(missing_ok=True)
        else:
            with s3_failure("delete", loc):
                self.s3.delete_object(Bucket=loc.bucket, Key=loc.key)

    # --- uploads ------------------------------------------------------------------------------
    def upload_file(self, src: Path, dest: Location) -> None:
        try:
            if dest.scheme == "file":
                dest.path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest.path)
            else:
                self.s3.upload_file(str(src), dest.bucket, dest.key)
        except Exception as err:
            if isinstance(err, OSError) or type(err).__name__ in (
                "ClientError",
                "S3UploadFailedError",
                "NoCredentialsError",
                "EndpointConnectionError",
            ):
                raise EntryError(f"cannot upload {src} to {dest.uri()}: {err}") from err
            raise

    def upload_tree(self, src: Path, prefix: Location) -> list[Location]:
        """Upload every file under local folder ``src`` to ``prefix`` keeping relative paths."""
        jobs = _tree_jobs(src, prefix)
        self._run_all(lambda job: self.upload_file(*job), jobs)
        log.info("uploaded %d file(s) from %s to %s", len(jobs), src, prefix.uri())
        return [dest for _, dest in jobs]

    def move_tree(self, src: Path, prefix: Location) -> list[Location]:
        """
        Upload the local folder ``src`` to ``prefix``, moving its files rather than copying them when possible.

        A ``file://`` prefix gets each file renamed into place (no second write of every byte, e.g.
        a partition's hundreds of megabytes), or copied where rename(2) cannot reach it (EXDEV:
        another filesystem, or another mount of the same one, as a container's bind mounts are);
        an ``s3://`` prefix is :meth:`upload_tree`. Either way ``src`` may be removed afterwards.
        """
        if prefix.scheme != "file":
            return self.upload_tree(src, prefix)
        jobs = _tree_jobs(src, prefix)
        for path, dest in jobs:
            try:
                dest.path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, dest.path)
            except OSError as err:
                if err.errno == errno.EXDEV:
                    self.upload_file(path, dest)
                    continue
                raise EntryError(f"cannot move {path} to {dest.uri()}: {err}") from err
        log.info("moved %d file(s) from %s to %s", len(jobs), src, prefix.uri())
        return [dest for _, dest in jobs]

    def _run_all(self, func: Callable[[_T], object], jobs: Iterable[_T]) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            # list() re-raises the first failure after the pool has drained.
            list(pool.map(func, jobs))


def _tree_jobs(src: Path, prefix: Location) -> list[tuple[Path, Location]]:
    """Every file under the local folder ``src`` (sorted) with its destination under ``prefix``."""
    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else []
    return [(p, prefix.child(p.relative_to(src).as_posix())) for p in files]
