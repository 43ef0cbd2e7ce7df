"""Copies between this container and ``s3://`` or ``file://`` URIs, in parallel.

S3 goes through boto3 with the standard environment, so ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` (a moto server in tests) and the usual credential chain just work.
``file://`` URIs are plain copies (SageMaker local mode). A prefix URI names a "folder": listing
``s3://b/graph`` lists the keys under ``graph/``, never ``graph2/...``.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable
from urllib.parse import unquote, urlparse

from .errors import EntryError, InputError

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class Location:
    """A parsed URI: ``scheme`` is ``s3`` (bucket + key) or ``file`` (path)."""

    scheme: str
    bucket: str
    key: str

    @property
    def path(self) -> Path:
        return Path("/" + self.key.lstrip("/")) if self.scheme == "file" else Path(self.key)

    def child(self, relative: str) -> "Location":
        key = self.key.rstrip("/")
        return Location(self.scheme, self.bucket, f"{key}/{relative}" if key else relative)

    def uri(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.key}"
        return f"file://{self.path}"


def parse_uri(uri: str, param: str = "uri") -> Location:
    """Parse an ``s3://bucket/key`` or ``file:///abs/path`` URI; ``param`` names the flag in errors."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InputError(f"{param} must name a bucket, got {uri!r}.")
        return Location("s3", parsed.netloc, parsed.path.lstrip("/"))
    if parsed.scheme == "file":
        path = unquote(parsed.path)
        if parsed.netloc not in ("", "localhost") or not path.startswith("/"):
            raise InputError(f"{param} must be an absolute file:// URI (file:///path), got {uri!r}.")
        return Location("file", "", path)
    raise InputError(f"{param} must be an s3:// or file:// URI, got {uri!r}.")


class Transfer:
    """Lists, downloads and uploads files; one boto3 client shared by a thread pool."""

    def __init__(self, region: str | None = None, workers: int = DEFAULT_WORKERS):
        self.region = region
        self.workers = max(1, workers)
        self._client = None

    @property
    def s3(self):
        if self._client is None:
            import boto3  # only containers that touch S3 pay for the import

            self._client = boto3.session.Session().client("s3", region_name=self.region)
        return self._client

    # --- listing ---------------------------------------------------------------------------
    def list_files(self, prefix: Location) -> list[str]:
        """Relative paths (POSIX) of every file under ``prefix``, sorted."""
        if prefix.scheme == "file":
            root = prefix.path
            if root.is_file():
                return [""]
            if not root.is_dir():
                return []
            return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        folder = prefix.key.rstrip("/")
        folder = f"{folder}/" if folder else ""
        found = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=prefix.bucket, Prefix=folder):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(folder):]
                if rel and not rel.endswith("/"):
                    found.append(rel)
        return sorted(found)

    def exists(self, loc: Location) -> bool:
        """Whether ``loc`` is a file (object)."""
        if loc.scheme == "file":
            return loc.path.is_file()
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=loc.bucket, Key=loc.key)
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    # --- single files ------------------------------------------------------------------------
    def download_file(self, src: Location, dest: Path) -> Path:
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

    def upload_file(self, src: Path, dest: Location) -> None:
        try:
            if dest.scheme == "file":
                dest.path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest.path)
            else:
                self.s3.upload_file(str(src), dest.bucket, dest.key)
        except Exception as err:
            if isinstance(err, OSError) or type(err).__name__ in (
                "ClientError", "S3UploadFailedError", "NoCredentialsError", "EndpointConnectionError"):
                raise EntryError(f"cannot upload {src} to {dest.uri()}: {err}") from err
            raise

    # --- folders -----------------------------------------------------------------------------
    def download_tree(
        self,
        prefix: Location,
        dest: Path,
        include: Callable[[str], bool] = lambda rel: True,
    ) -> list[Path]:
        """Download every file under ``prefix`` whose relative path passes ``include``."""
        wanted = [rel for rel in self.list_files(prefix) if rel and include(rel)]
        jobs = [(prefix.child(rel), dest / PurePosixPath(rel)) for rel in wanted]
        self._run_all(lambda job: self.download_file(*job), jobs)
        size = sum(target.stat().st_size for _, target in jobs)
        log.info("downloaded %d file(s), %d bytes from %s to %s", len(jobs), size, prefix.uri(), dest)
        return [target for _, target in jobs]

    def upload_tree(self, src: Path, prefix: Location) -> list[Location]:
        """Upload every file under local folder ``src`` to ``prefix`` keeping relative paths."""
        files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else []
        jobs = [(p, prefix.child(p.relative_to(src).as_posix())) for p in files]
        self._run_all(lambda job: self.upload_file(*job), jobs)
        log.info("uploaded %d file(s) from %s to %s", len(jobs), src, prefix.uri())
        return [dest for _, dest in jobs]

    def _run_all(self, func: Callable, jobs: Iterable) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            # list() re-raises the first failure after the pool has drained.
            list(pool.map(func, jobs))
