"""
Tiny ``file://`` / ``s3://`` / plain-path helpers for the example data and its evaluation.

boto3 is imported inside the functions that need it, so importing this module stays cheap
(DAG files import it at parse time). S3 access uses boto3's standard environment, which
includes ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` (moto in tests).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graphstorm_provider.uris import parse_uri, split_s3

log = logging.getLogger(__name__)

# An S3 client to use instead of boto3's default one (e.g. built from an Airflow connection).
_client_override: Any = None


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def local_path(uri: str) -> Path:
    """Return the local path of a ``file://`` URI or a plain path (``s3://`` is rejected)."""
    if is_s3(uri):
        raise ValueError(f"expected a local path or file:// URI, got {uri!r}")
    if uri.startswith("file://"):
        return Path(parse_uri(uri).path)
    return Path(uri)


def join(base: str, *parts: str) -> str:
    """Join URI parts with single slashes (works for s3://, file:// and paths)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


@contextmanager
def using_s3_client(client: Any) -> Iterator[None]:
    """Use ``client`` for every S3 call in the block (``None``: boto3's default chain)."""
    global _client_override
    previous, _client_override = _client_override, client
    try:
        yield
    finally:
        _client_override = previous


def _s3_client() -> Any:
    if _client_override is not None:
        return _client_override
    import boto3  # heavy: imported only when S3 is actually used

    return boto3.client("s3")


def upload_dir(src: Path, dest_uri: str) -> list[str]:
    """Copy every file under ``src`` to ``dest_uri`` (s3:// or local); returns the URIs written."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    written: list[str] = []
    if is_s3(dest_uri):
        bucket, prefix = split_s3(dest_uri)
        client = _s3_client()
        for path in files:
            rel = path.relative_to(src).as_posix()
            key = f"{prefix.rstrip('/')}/{rel}" if prefix else rel
            client.upload_file(str(path), bucket, key)
            written.append(f"s3://{bucket}/{key}")
    else:
        import shutil

        root = local_path(dest_uri)
        for path in files:
            target = root / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            written.append(str(target))
    log.info("wrote %d files to %s", len(written), dest_uri)
    return written


def list_files(uri: str) -> list[str]:
    """Every file under a prefix, as URIs of the same kind (sorted)."""
    if is_s3(uri):
        bucket, prefix = split_s3(uri)
        prefix = prefix.rstrip("/")
        paginator = _s3_client().get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        # The object itself (a URI naming one file) or the objects below the folder, not siblings
        # that merely share the prefix (runs/a vs runs/ab).
        wanted = [k for k in keys if not prefix or k == prefix or k.startswith(prefix + "/")]
        return sorted(f"s3://{bucket}/{key}" for key in wanted if not key.endswith("/"))
    root = local_path(uri)
    if root.is_file():
        return [str(root)]
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        body: bytes = _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    return local_path(uri).read_bytes()


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
