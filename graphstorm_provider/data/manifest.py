"""
The manifest contract, Airflow side: read and verify what a step wrote last under its output.

Every step's entry point writes ``_manifest.json`` (:data:`MANIFEST_NAME`) under its output prefix
after every other file there (the container side is ``entrypoints/gsentry/manifest.py``; the
format is described once in docs/ARCHITECTURE.md, "The manifest contract")::

    {"format": "graphstorm-airflow.manifest", "version": 1, "job_name": ..., "step": ...,
     "created": ..., "files": [{"path", "size", "sha256"}, ...],
     "inputs": [{"parameter", "uri", "sha256"}, ...]}

This module only reads: :func:`read_manifest` fetches and parses one, :func:`verify_complete`
checks that every listed file is present with the listed size (a listing, no download),
:func:`verify_file` checks one downloaded file's SHA-256. JSON and hashlib only; boto3 is the
caller's client (``S3Hook(...).get_conn()``), so importing this at DAG parse time costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphstorm_provider.uris import UriError, parse_uri

MANIFEST_NAME = "_manifest.json"
MANIFEST_FORMAT = "graphstorm-airflow.manifest"
MANIFEST_VERSION = 1
_HASH_CHUNK = 1024 * 1024


class ManifestError(ValueError):
    """A manifest that cannot be read or is not one (one sentence naming its URI)."""


@dataclass(frozen=True)
class ManifestFile:
    """One file a manifest lists: its path under the prefix, size in bytes and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ManifestInput:
    """One input a manifest records: the parameter, its URI and its manifest's SHA-256."""

    parameter: str
    uri: str
    sha256: str | None


@dataclass(frozen=True)
class Manifest:
    """
    A parsed manifest.

    ``uri`` is where it was read from, ``sha256`` the digest of its bytes (what a later step
    records in its own ``inputs``).
    """

    uri: str
    job_name: str
    step: str
    created: str
    files: tuple[ManifestFile, ...]
    inputs: tuple[ManifestInput, ...]
    sha256: str
    # Digest of the request that produced the output (``jobs.digest``); None when not recorded.
    request_digest: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Completeness:
    """
    What :func:`verify_complete` found.

    ``missing`` lists files, ``wrong_size`` maps ``{path: (found, listed)}``.
    """

    uri: str
    missing: tuple[str, ...] = ()
    wrong_size: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.wrong_size

    def reason(self) -> str:
        """One sentence: why the prefix is not complete (empty when it is)."""
        if self.missing:
            return f"{self.uri} is incomplete: {self.missing[0]} is listed in its manifest but missing."
        if self.wrong_size:
            path, (found, listed) = sorted(self.wrong_size.items())[0]
            return f"{self.uri} is incomplete: {path} has {found} bytes, its manifest lists {listed}."
        return ""


def manifest_uri(prefix_uri: str) -> str:
    """``<prefix>/_manifest.json`` for a folder URI (with or without its trailing ``/``)."""
    return f"{prefix_uri.rstrip('/')}/{MANIFEST_NAME}"


def parse_manifest(data: bytes, uri: str) -> Manifest:
    """Parse manifest bytes read from ``uri``; :class:`ManifestError` if they are not one."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if doc.get("format") != MANIFEST_FORMAT or doc.get("version") != MANIFEST_VERSION:
            raise ValueError(f"format {doc.get('format')!r} version {doc.get('version')!r}")
        files = tuple(ManifestFile(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in doc["files"])
        inputs = tuple(
            ManifestInput(str(i["parameter"]), str(i["uri"]), i.get("sha256")) for i in doc.get("inputs", [])
        )
        return Manifest(
            uri,
            str(doc.get("job_name", "")),
            str(doc.get("step", "")),
            str(doc.get("created", "")),
            files,
            inputs,
            hashlib.sha256(data).hexdigest(),
            str(doc["request_digest"]) if doc.get("request_digest") else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{uri} is not a valid {MANIFEST_FORMAT} v{MANIFEST_VERSION} manifest: {err}") from err


def _split(uri: str) -> tuple[str, str, str]:
    """``(scheme, bucket, key-or-path)`` by the one URI parser (``uris.parse_uri``); ManifestError otherwise."""
    try:
        parsed = parse_uri(uri)
    except UriError as err:
        raise ManifestError(str(err)) from err
    return parsed.scheme, parsed.bucket, parsed.key if parsed.scheme == "s3" else parsed.path


def _not_found(err: Exception) -> bool:
    code = getattr(err, "response", {}).get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound")


def read_manifest(uri: str, s3_client: Any = None) -> Manifest | None:
    """
    Return the manifest of the output prefix ``uri`` (``s3://`` with ``s3_client``, or ``file://``).

    None when there is none (the step did not finish, or the data was made outside the pipeline).
    """
    where = manifest_uri(uri)
    scheme, bucket, key = _split(where)
    if scheme == "file":
        try:
            data = Path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return parse_manifest(data, where)
    if s3_client is None:
        raise ManifestError(f"reading {where} needs an S3 client (e.g. S3Hook(aws_conn_id).get_conn()).")
    try:
        data = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as err:  # botocore's ClientError; not imported here
        if _not_found(err):
            return None
        raise ManifestError(f"cannot read {where}: {err}") from err
    return parse_manifest(data, where)


def list_sizes(uri: str, s3_client: Any = None) -> dict[str, int]:
    """``{relative path: size}`` of every file under the folder ``uri``."""
    scheme, bucket, key = _split(uri)
    if scheme == "file":
        root = Path(key)
        if not root.is_dir():
            return {}
        return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}
    if s3_client is None:
        raise ManifestError(f"listing {uri} needs an S3 client.")
    folder = key.rstrip("/") + "/" if key.strip("/") else ""
    found: dict[str, int] = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(folder) :]
            if rel and not rel.endswith("/"):
                found[rel] = int(obj.get("Size", 0))
    return found


def check_sizes(manifest: Manifest, found: Mapping[str, int], uri: str = "") -> Completeness:
    """Pure: compare the manifest's files with a listing ``{relative path: size}``."""
    missing = tuple(f.path for f in manifest.files if f.path not in found)
    wrong = {f.path: (found[f.path], f.size) for f in manifest.files if f.path in found and found[f.path] != f.size}
    return Completeness(uri or manifest.uri, missing, wrong)


def verify_complete(uri: str, manifest: Manifest | None = None, s3_client: Any = None) -> Completeness:
    """
    Check whether the output prefix ``uri`` holds every file its manifest lists, with the listed sizes.

    Reads the manifest unless given; :class:`ManifestError` when there is none.
    """
    manifest = manifest if manifest is not None else read_manifest(uri, s3_client)
    if manifest is None:
        raise ManifestError(f"{uri} has no {MANIFEST_NAME}: it was not completely written by the pipeline.")
    return check_sizes(manifest, list_sizes(uri, s3_client), uri)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(manifest: Manifest, relative: str, local: Path) -> bool:
    """Whether the downloaded ``local`` copy of ``relative`` matches the manifest's SHA-256."""
    listed = {f.path: f.sha256 for f in manifest.files}
    return relative in listed and sha256_file(local) == listed[relative]
