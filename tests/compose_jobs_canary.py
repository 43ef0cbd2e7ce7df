"""A 2-host probe job for the canary test: each host checks its AWS credentials arrived and prints
only the SHA-256 of the secret (never the value), then writes a marker file without it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.compose_jobs import script_job

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

CANARY_HOST_SCRIPT = r"""
import hashlib, json, os, sys
out = sys.argv[sys.argv.index("--out") + 1][len("file://"):]
me = json.loads(os.environ["SM_TRAINING_ENV"])["current_host"]
secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
assert secret and os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SESSION_TOKEN"), "no credentials"
print("secret sha256 " + hashlib.sha256(secret.encode()).hexdigest(), flush=True)
with open(f"{out}/{me}.done", "w") as f:
    f.write(json.dumps(sorted(k for k in os.environ if k.startswith("AWS_"))))
"""


def canary_compose_job(image: str, out: Path, name: str) -> JobRequest:
    return script_job(
        image,
        name,
        CANARY_HOST_SCRIPT,
        args=("--out", f"file://{out}"),
        environment={"AWS_REGION": "us-east-1"},
        max_runtime_s=240,
        outputs={"out": f"file://{out}"},
    )
