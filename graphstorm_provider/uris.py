"""
The one parser of ``s3://`` and ``file://`` URIs on the Airflow side.

Used by the job specs' validation (``jobs/validation.py``), the local backend's staging
(``execution/staging.py``) and the data helpers (``data/storage.py``). The entry points, which run
inside the job container and import nothing of ``graphstorm_provider``, have their own
(``entrypoints/gsentry/transfer.py``) on the other side of the container boundary.

Rules (strict, so a key or path can never lead outside the folder it names):

* ``s3://bucket/key``: the bucket is everything up to the first ``/``; the key is the rest, as
  written but for leading slashes (as S3 clients read ``s3://bucket//key``). ``?`` and ``#`` are legal characters of S3 keys and stay in the key (``urlparse``
  would cut them off as a query or fragment).
* ``file:///abs/path`` (or ``file://localhost/abs/path``): the path is percent-decoded once.
* A key or path with a ``..`` segment is refused, also when it is percent-encoded
  (``%2e%2e``): the check runs on the decoded text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import unquote

S3_SCHEME = "s3"
FILE_SCHEME = "file"
_LOCAL_HOSTS = ("", "localhost")


class UriError(ValueError):
    """A URI that is not a well-formed ``s3://`` or ``file://`` URI (one sentence, names the URI)."""


@dataclass(frozen=True)
class ParsedUri:
    """A parsed URI: ``bucket`` and ``key`` for ``s3://``, ``path`` (decoded, absolute) for ``file://``."""

    uri: str
    scheme: Literal["s3", "file"]
    bucket: str = ""
    key: str = ""
    path: str = ""


def has_traversal(text: str) -> bool:
    """Whether ``text`` (a key or path) has a ``..`` segment, before or after percent-decoding."""
    return any(".." in PurePosixPath(candidate).parts for candidate in (text, unquote(text)))


def parse_uri(uri: str) -> ParsedUri:
    """
    Parse ``uri``.

    Raise :class:`UriError` for another scheme, no bucket, a relative ``file://`` path or a ``..`` segment.
    """
    scheme, sep, rest = uri.partition("://")
    if sep and scheme == S3_SCHEME:
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise UriError(f"{uri!r} has no bucket (expected s3://bucket/prefix).")
        if has_traversal(key) or ".." in bucket:
            raise UriError(f"{uri!r} has a '..' segment, which would lead outside its prefix.")
        return ParsedUri(uri, "s3", bucket=bucket, key=key.lstrip("/"))
    if sep and scheme == FILE_SCHEME:
        host, slash, path = rest.partition("/")
        if host not in _LOCAL_HOSTS or not slash:
            raise UriError(f"{uri!r} is not an absolute file URI (expected file:///path).")
        if has_traversal(path):
            raise UriError(f"{uri!r} has a '..' segment, which would lead outside its folder.")
        return ParsedUri(uri, "file", path="/" + unquote(path))
    raise UriError(f"{uri!r} is neither an s3:// nor a file:// URI.")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> ``("bucket", "key/prefix")``; :class:`UriError` otherwise."""
    parsed = parse_uri(uri)
    if parsed.scheme != S3_SCHEME:
        raise UriError(f"expected s3://bucket/key, got {uri!r}.")
    return parsed.bucket, parsed.key
