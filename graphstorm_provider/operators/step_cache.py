"""
The step cache (``skip_if_complete=True``): take a finished identical job's outputs.

The outputs are taken instead of launching, as SageMaker Pipelines' step cache does.

A hit needs every output prefix of the job to hold a complete manifest (every listed file there,
with its size) whose ``request_digest`` equals this request's (``jobs.digest``: the request minus
the job name), all written by one job, and every input manifest that job read (recorded in the
output's manifest with its SHA-256) still the same: data re-made at the same URI is a miss. The task then returns that XCom at once (the outputs and
the name of the job that produced them); anything else is a miss and the job runs. Reads go
through the caller's S3 client (``s3://``) or plain files (``file://``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphstorm_provider.data.manifest import (
    MANIFEST_NAME,
    ManifestError,
    ManifestInput,
    read_manifest,
    verify_complete,
)
from graphstorm_provider.jobs.digest import REQUEST_DIGEST_ENV

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest


@dataclass(frozen=True)
class CacheLookup:
    """What the cache found: ``hit`` with the producing job, or why it missed."""

    hit: bool
    job_name: str = ""
    reason: str = ""

    def xcom_value(self, job: JobRequest) -> dict[str, str]:
        return {"job_name": self.job_name, **job.outputs}


def _changed_input(inputs: Iterable[ManifestInput], reader_for: Callable[[str], Any]) -> str | None:
    """
    Return ``"<parameter> <prefix>"`` of the first input whose manifest is no longer the one the job read.

    The request names an input by its URI only, so data re-made at the same prefix leaves the
    digest unchanged; the output's manifest records the SHA-256 of each input manifest read (None:
    an input taken without a manifest, which cannot be compared).
    """
    for recorded in inputs:
        if recorded.sha256 is None:
            continue
        prefix = recorded.uri.removesuffix(MANIFEST_NAME)
        try:
            current = read_manifest(prefix, reader_for(prefix))
        except ManifestError:
            current = None
        if current is None or current.sha256 != recorded.sha256:
            return f"input {recorded.parameter} {prefix}"
    return None


def lookup(job: JobRequest, s3_client_factory: Callable[[], Any]) -> CacheLookup:
    """Whether ``job``'s outputs were all completely produced by an identical request."""
    digest = job.environment.get(REQUEST_DIGEST_ENV)
    if not digest:
        return CacheLookup(False, reason="the request carries no digest")
    if not job.outputs:
        return CacheLookup(False, reason="the step has no outputs")
    s3_client = functools.cache(s3_client_factory)  # one client, made when an s3:// URI first needs it

    def reader_for(uri: str) -> Any:
        return s3_client() if uri.startswith("s3://") else None

    producers: set[str] = set()
    checked: set[ManifestInput] = set()  # the outputs of one job read the same inputs: each checked once
    for name, uri in job.outputs.items():
        reader = reader_for(uri)
        try:
            manifest = read_manifest(uri, reader)
            if manifest is None:
                return CacheLookup(False, reason=f"{name} {uri} has no manifest")
            if manifest.request_digest != digest:
                return CacheLookup(
                    False, reason=f"{name} {uri} was produced by a different request (job {manifest.job_name or '?'})"
                )
            found = verify_complete(uri, manifest, reader)
        except ManifestError as err:
            return CacheLookup(False, reason=str(err))
        if not found.complete:
            return CacheLookup(False, reason=found.reason())
        inputs = [recorded for recorded in manifest.inputs if recorded not in checked]
        if changed := _changed_input(inputs, reader_for):
            return CacheLookup(False, reason=f"{changed} changed since job {manifest.job_name or '?'} read it")
        checked.update(inputs)
        producers.add(manifest.job_name)
    if len(producers) != 1:
        return CacheLookup(False, reason=f"the outputs were written by different jobs ({', '.join(sorted(producers))})")
    return CacheLookup(True, job_name=producers.pop())
