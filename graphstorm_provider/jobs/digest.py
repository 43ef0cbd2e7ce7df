"""
The digest of a job's request: what the step cache compares (``skip_if_complete``).

Two requests are "the same job" when their canonical forms are equal: the boto3 request minus the
job name (per task instance for the operators, timestamped in the CLI, ``-aN`` for a later attempt) and minus the digest itself,
with secret-looking ``Environment`` values as ``***`` (``jobs.request.printable_request``): the digest,
written into ``_manifest.json``, is no hash of a password, and a changed password alone does not
change it (the step cache then skips a job whose only change is a rotated secret).
The spec renders the digest into the request's ``Environment`` as :data:`REQUEST_DIGEST_ENV`; the
entry points copy it into the ``_manifest.json`` they write last (``request_digest``), so an
output prefix says which request produced it. Pure functions: JSON, hashlib and the redaction rule.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from graphstorm_provider.jobs.request import printable_request

# The entry points read the same name (entrypoints/gsentry/manifest.py; no shared code across
# the container boundary).
REQUEST_DIGEST_ENV = "GRAPHSTORM_REQUEST_DIGEST"
# Request keys that name the run, not the job's work.
RUN_SPECIFIC_KEYS = ("TrainingJobName", "ProcessingJobName")


def canonical_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """``request`` without its job name and digest, secret-looking ``Environment`` values as ``***`` (a copy)."""
    printable = printable_request(request)
    canonical = {key: value for key, value in printable.items() if key not in RUN_SPECIFIC_KEYS}
    environment = dict(canonical.get("Environment") or {})
    environment.pop(REQUEST_DIGEST_ENV, None)
    canonical["Environment"] = environment
    return canonical


def request_digest(request: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical request as sorted, compact JSON."""
    text = json.dumps(canonical_request(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def with_request_digest(request: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``request`` whose ``Environment`` carries :data:`REQUEST_DIGEST_ENV`."""
    stamped = copy.deepcopy(dict(request))
    stamped["Environment"] = {**(stamped.get("Environment") or {}), REQUEST_DIGEST_ENV: request_digest(request)}
    return stamped
