"""
The manifest contract, container side: what a step writes last, and what the next step checks.

Every step writes ``_manifest.json`` (:data:`MANIFEST_NAME`) under its output prefix, after every
other file of that output was uploaded. So an output prefix without a manifest was not completely
written (an interrupted upload, a failed host), and a step refuses it as input. The format (the
Airflow side reads the same one: ``graphstorm_provider/data/manifest.py``)::

    {"format": "graphstorm-airflow.manifest", "version": 1,
     "job_name": "<producing job>", "step": "gconstruct|partition|train|infer",
     "created": "<UTC ISO time>",
     "files": [{"path": "<relative POSIX path>", "size": <bytes>, "sha256": "<hex>"}, ...],
     "inputs": [{"parameter": "--graph-data-s3", "uri": "<manifest URI>", "sha256": "<hex of its bytes>"}, ...]}

``files`` lists every file of the output except the manifest itself; ``inputs`` the manifests the
step read (``sha256`` null for an input taken without one, see below).

A reader (:func:`read_input`) refuses an input prefix unless its manifest is there and every
listed file is present with the listed size; what it downloads is checked against the listed
SHA-256 (:meth:`InputPrefix.check`) and only listed files are downloaded. Data made outside the
pipeline has no manifest: ``--allow-unmanifested-input`` (entry point flag) or
``GSENTRY_ALLOW_UNMANIFESTED_INPUT=1`` (environment; e.g. a SageMaker ``environment`` parameter)
takes such inputs as they are, with a warning.

Other steps' entry points (partition) call :func:`write_manifest` after their uploads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsentry.errors import EntryError, InputError
from gsentry.transfer import Location, Transfer, parse_uri

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
MANIFEST_FORMAT = "graphstorm-airflow.manifest"
MANIFEST_VERSION = 1
ALLOW_UNMANIFESTED_ENV = "GSENTRY_ALLOW_UNMANIFESTED_INPUT"
ALLOW_UNMANIFESTED_FLAG = "--allow-unmanifested-input"
# The digest of the request that launched the job (rendered by the Airflow-side spec into the
# job's Environment); recorded in the manifest so an operator's skip_if_complete can tell whether
# an output was produced by an identical request (the step cache).
REQUEST_DIGEST_ENV = "GRAPHSTORM_REQUEST_DIGEST"
_HASH_CHUNK = 1024 * 1024


class ManifestError(EntryError):
    """A manifest that is not one (bad JSON, wrong format); names the URI."""


@dataclass(frozen=True)
class FileEntry:
    """One file a manifest lists: its path under the folder, size in bytes and SHA-256."""

    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class InputRef:
    """An input manifest a step read: the flag, the manifest's URI, the SHA-256 of its bytes."""

    parameter: str
    uri: str
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "uri": self.uri, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """A step's manifest: its job, step, the files it wrote and the inputs it read."""

    job_name: str
    step: str
    files: tuple[FileEntry, ...]
    inputs: tuple[InputRef, ...] = ()
    created: str = ""
    request_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "job_name": self.job_name,
            "step": self.step,
            "created": self.created,
            "files": [f.to_json() for f in sorted(self.files, key=lambda f: f.path)],
            "inputs": [i.to_json() for i in self.inputs],
        }
        if self.request_digest:
            doc["request_digest"] = self.request_digest
        return doc

    def dumps(self) -> bytes:
        return (json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n").encode()

    @classmethod
    def loads(cls, data: bytes, uri: str) -> Manifest:
        try:
            doc = json.loads(data.decode("utf-8"))
            if doc.get("format") != MANIFEST_FORMAT or doc.get("version") != MANIFEST_VERSION:
                raise ValueError(f"format {doc.get('format')!r} version {doc.get('version')!r}")
            files = tuple(FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in doc["files"])
            inputs = tuple(InputRef(str(i["parameter"]), str(i["uri"]), i.get("sha256")) for i in doc.get("inputs", []))
            return cls(
                str(doc.get("job_name", "")),
                str(doc.get("step", "")),
                files,
                inputs,
                str(doc.get("created", "")),
                doc.get("request_digest"),
            )
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
            raise ManifestError(f"{uri} is not a valid {MANIFEST_FORMAT} v{MANIFEST_VERSION} manifest: {err}") from err


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(root: Path) -> list[FileEntry]:
    """Entries for every file under the local folder ``root`` (the manifest itself excluded)."""
    if not root.is_dir():
        return []
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != MANIFEST_NAME:
            out.append(FileEntry(rel, path.stat().st_size, sha256_file(path)))
    return out


def entries_to_json(entries: Iterable[FileEntry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in entries]


def entries_from_json(items: Iterable[Mapping[str, Any]] | None) -> list[FileEntry]:
    return [FileEntry(str(i["path"]), int(i["size"]), str(i["sha256"])) for i in (items or [])]


def merge_entries(per_host: Sequence[Iterable[FileEntry] | None]) -> list[FileEntry]:
    """Every host's entries as one list (a path written by several hosts counted once)."""
    merged: dict[str, FileEntry] = {}
    for entries in per_host:
        for entry in entries or []:
            merged.setdefault(entry.path, entry)
    return sorted(merged.values(), key=lambda e: e.path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def build_manifest(
    *, job_name: str, step: str, files: Iterable[FileEntry], inputs: Iterable[InputRef] = ()
) -> Manifest:
    digest = os.environ.get(REQUEST_DIGEST_ENV, "").strip() or None
    return Manifest(job_name, step, tuple(files), tuple(inputs), _now(), digest)


def write_manifest(
    transfer: Transfer,
    output_uri: str,
    *,
    job_name: str,
    step: str,
    files: Iterable[FileEntry],
    inputs: Iterable[InputRef] = (),
) -> str:
    """
    Upload the manifest of ``output_uri`` (call it after every other file there was uploaded).

    ``files``: the output's files (:func:`file_entries` of what was uploaded, merged over hosts).
    Returns the manifest's URI.
    """
    manifest = build_manifest(job_name=job_name, step=step, files=files, inputs=inputs)
    target = parse_uri(output_uri, "output").child(MANIFEST_NAME)
    with tempfile.TemporaryDirectory(prefix="gsentry-manifest-") as tmp:
        local = Path(tmp) / MANIFEST_NAME
        local.write_bytes(manifest.dumps())
        transfer.upload_file(local, target)
    log.info(
        "manifest of %s written: %d file(s), %d byte(s)",
        output_uri,
        len(manifest.files),
        sum(f.size for f in manifest.files),
    )
    return target.uri()


def write_manifest_file(folder: Path, *, job_name: str, step: str, inputs: Iterable[InputRef] = ()) -> Path:
    """
    Write the manifest of the local folder ``folder`` into it.

    The folder is an output SageMaker uploads, like a Processing job's
    ``/opt/ml/processing/output``. Call it when the folder is final.
    """
    manifest = build_manifest(job_name=job_name, step=step, files=file_entries(folder), inputs=inputs)
    path = folder / MANIFEST_NAME
    tmp = path.with_name(MANIFEST_NAME + ".tmp")
    tmp.write_bytes(manifest.dumps())
    os.replace(tmp, path)
    return path


def allow_unmanifested(flag_value: bool = False, env: Mapping[str, str] | None = None) -> bool:
    """Return the opt-out for inputs made outside the pipeline: the flag, or the environment variable."""
    env = os.environ if env is None else env
    return bool(flag_value) or env.get(ALLOW_UNMANIFESTED_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class InputPrefix:
    """
    An input prefix that passed the manifest check.

    ``sizes``: ``{relative path: size}`` of the files the step may read (the manifest's files when
    there is one, else everything listed). ``check`` verifies a downloaded file's SHA-256.
    """

    prefix: Location
    param: str
    sizes: dict[str, int]
    uri: str = ""
    manifest: Manifest | None = None
    ref: InputRef | None = None
    _digests: dict[str, str] = field(default_factory=dict)

    def check(self, rel: str, local: Path) -> None:
        expected = self._digests.get(rel)
        if expected is not None and sha256_file(local) != expected:
            raise InputError(
                f"{self.param} {self.uri or self.prefix.uri()}: {rel} does not match its manifest's SHA-256 "
                "(the data changed after it was written)."
            )


def _manifest_of(transfer: Transfer, prefix: Location, sub: str | None) -> tuple[Location, bytes | None, str]:
    """``(manifest location, its bytes or None, path of prefix relative to the manifest's folder)``."""
    own = prefix.child(MANIFEST_NAME)
    try:
        return own, transfer.read_bytes(own), ""
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass
    if sub:  # a checkpoint folder inside a model prefix: the manifest is the parent's
        key = prefix.key.rstrip("/")
        parent = Location(prefix.scheme, prefix.bucket, key[: -len(sub)].rstrip("/"))
        try:
            return parent.child(MANIFEST_NAME), transfer.read_bytes(parent.child(MANIFEST_NAME)), sub
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass
    return own, None, ""


def read_input(
    transfer: Transfer,
    uri: str,
    param: str,
    *,
    allow_unmanifested: bool = False,
    nested: str | None = None,
    required: bool = True,
) -> InputPrefix:
    """
    Check the input prefix ``uri`` (flag ``param``) against its manifest; see the module doc.

    ``nested``: when ``uri`` ends with this folder name (a model's ``epoch-*`` checkpoint, a graph's
    ``raw_id_mappings``), a manifest of the parent prefix covers it too. ``required=False``: an
    input without a manifest is taken as it is (one that has a manifest is still checked).
    """
    prefix = parse_uri(uri, param)
    listed = transfer.list_sizes(prefix)
    sub = nested if nested and prefix.key.rstrip("/").rsplit("/", 1)[-1] == nested else None
    where, data, inner = _manifest_of(transfer, prefix, sub)
    if data is None:
        if required and not listed:
            raise InputError(f"{param} {uri} holds no files (does it exist?).")
        if required and not allow_unmanifested:
            raise InputError(
                f"{param} {uri} has no complete manifest ({MANIFEST_NAME} is missing: the step that wrote it "
                f"did not finish, or the data was made outside the pipeline; pass {ALLOW_UNMANIFESTED_FLAG} or "
                f"set {ALLOW_UNMANIFESTED_ENV}=1 to use it anyway)."
            )
        if required:
            log.warning("%s %s has no %s; using it as it is (%s)", param, uri, MANIFEST_NAME, ALLOW_UNMANIFESTED_ENV)
        listed.pop(MANIFEST_NAME, None)
        return InputPrefix(prefix, param, listed, uri, None, InputRef(param, where.uri(), None))
    manifest = Manifest.loads(data, where.uri())
    wanted = {}
    digests = {}
    base = f"{inner}/" if inner else ""
    for entry in manifest.files:
        if base and not entry.path.startswith(base):
            continue
        rel = entry.path[len(base) :]
        size = listed.get(rel)
        if size is None:
            raise InputError(f"{param} {uri} has an incomplete manifest: {rel} is listed but missing.")
        if size != entry.size:
            raise InputError(
                f"{param} {uri} has an incomplete manifest: {rel} has {size} bytes, the manifest lists {entry.size}."
            )
        wanted[rel] = entry.size
        digests[rel] = entry.sha256
    digest = hashlib.sha256(data).hexdigest()
    log.info(
        "%s %s: manifest of job %s (%s), %d file(s)",
        param,
        uri,
        manifest.job_name or "?",
        manifest.step or "?",
        len(wanted),
    )
    return InputPrefix(prefix, param, wanted, uri, manifest, InputRef(param, where.uri(), digest), digests)


def clear_manifest(transfer: Transfer, output_uri: str, param: str) -> None:
    """
    Remove an earlier run's manifest from ``output_uri`` before anything is uploaded there.

    A rerun that is interrupted then leaves no manifest that seems to vouch for its files.
    """
    target = parse_uri(output_uri, param).child(MANIFEST_NAME)
    if transfer.exists(target):
        transfer.delete(target)
        log.info("removed the earlier manifest %s before writing new outputs", target.uri())


def upload_with_entries(transfer: Transfer, src: Path, output_uri: str, param: str) -> list[FileEntry]:
    """Upload the local folder ``src`` to ``output_uri`` and return the manifest entries of what went."""
    entries = file_entries(src)
    transfer.upload_tree(src, parse_uri(output_uri, param))
    return entries


__all__ = [
    "ALLOW_UNMANIFESTED_ENV",
    "ALLOW_UNMANIFESTED_FLAG",
    "FileEntry",
    "InputPrefix",
    "InputRef",
    "MANIFEST_NAME",
    "Manifest",
    "ManifestError",
    "allow_unmanifested",
    "clear_manifest",
    "file_entries",
    "merge_entries",
    "read_input",
    "upload_with_entries",
    "write_manifest",
    "write_manifest_file",
]
