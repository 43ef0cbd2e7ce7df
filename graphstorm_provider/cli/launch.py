"""``gs-sagemaker gconstruct|partition|train|infer``: the seed's launch scripts, one per step.

Flags are the seed's, verbatim (parsed by the step's spec, ``Spec.from_argv``); unknown
``--flags`` are forwarded to GraphStorm. Added here:

* ``--dry-run``: validate, print the SageMaker request as JSON on stdout (exactly the
  ``create_training_job`` / ``create_processing_job`` input, usable with
  ``aws sagemaker create-training-job --cli-input-json``) and send nothing; boto3 is not even
  imported.
* The endpoint is boto3's business: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_SAGEMAKER``)
  points the command at another endpoint, e.g. a moto server.

Otherwise the job is created and, unless ``--async-execution``, followed: status changes and
CloudWatch log lines are printed until it ends (checked every 15 s, or every
``$GS_SAGEMAKER_POLL_SECONDS``). Exit codes: 0 done (or started, with
``--async-execution``), 1 the job or an AWS call failed, 2 bad input (nothing was sent),
130 interrupted (a SageMaker job keeps running; the message says how to stop it).
``--instance-type local`` runs the job on this machine instead (one host: the local backend,
several: the compose backend).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

log = logging.getLogger(__name__)

DRY_RUN_FLAG = "--dry-run"
# How often a waiting command checks the job and its logs; GS_SAGEMAKER_POLL_SECONDS overrides.
POLL_SECONDS = 15.0


def poll_seconds() -> float:
    value = os.environ.get("GS_SAGEMAKER_POLL_SECONDS", "")
    try:
        return max(float(value), 0.1) if value else POLL_SECONDS
    except ValueError:
        raise ValueError(f"GS_SAGEMAKER_POLL_SECONDS must be a number of seconds, got {value!r}.") from None


def gconstruct(argv: Sequence[str]) -> int:
    return run_step("gconstruct", argv)


def partition(argv: Sequence[str]) -> int:
    return run_step("partition", argv)


def train(argv: Sequence[str]) -> int:
    return run_step("train", argv)


def infer(argv: Sequence[str]) -> int:
    return run_step("infer", argv)


def _say(message: str) -> None:
    print(message, flush=True)


def _fail(prog: str, message: str, code: int) -> int:
    text = " ".join(str(message).split())
    if text.startswith(f"{prog}: "):  # argparse-style messages already name the command
        text = text[len(prog) + 2:]
    print(f"{prog}: error: {text}", file=sys.stderr, flush=True)
    return code


def _log_to_stderr() -> None:
    """Our own INFO messages on stderr; other libraries' (Airflow's config, botocore) only from WARNING."""
    ours = logging.getLogger("graphstorm_provider")
    if not ours.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False


def split_own_flags(argv: Sequence[str]) -> tuple[list[str], bool, bool]:
    """Remove ``--dry-run`` (ours) and detect ``-h``; only before ``--``, after it is GraphStorm's."""
    argv = [str(a) for a in argv]
    cut = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:cut], argv[cut:]
    dry_run = DRY_RUN_FLAG in head
    wants_help = "-h" in head or "--help" in head
    return [a for a in head if a != DRY_RUN_FLAG] + tail, dry_run, wants_help


def run_step(step: str, argv: Sequence[str]) -> int:
    from graphstorm_provider.jobs import STEP_SPECS
    from graphstorm_provider.jobs.errors import JobSpecError

    prog = f"gs-sagemaker {step}"
    _log_to_stderr()
    args, dry_run, wants_help = split_own_flags(argv)
    spec_class = STEP_SPECS[step]
    if wants_help:
        parser = spec_class.argument_parser()
        parser.add_argument_group("gs-sagemaker").add_argument(
            DRY_RUN_FLAG, action="store_true", help="print the SageMaker request as JSON and send nothing"
        )
        parser.print_help()
        return 0
    try:
        spec = spec_class.from_argv(args)
        job = spec.build()
    except (JobSpecError, ValueError) as err:
        return _fail(prog, str(err), 2)
    if dry_run:
        print(json.dumps(job.request, indent=2, default=str))
        where = "this machine" if job.is_local else f"SageMaker in {job.region}"
        print(f"Dry run: nothing sent. Would run {job.kind} job {job.job_name} on {where}.", file=sys.stderr)
        return 0
    if job.is_local:
        return run_local(job, prog, asynchronous=spec.async_execution)
    try:
        interval = poll_seconds()
    except ValueError as err:
        return _fail(prog, str(err), 2)
    return run_sagemaker(job, prog, wait=not spec.async_execution, poll_seconds=interval)


# --------------------------------------------------------------------------- SageMaker
def run_sagemaker(job: JobRequest, prog: str, *, wait: bool, poll_seconds: float = POLL_SECONDS) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from graphstorm_provider.execution import sagemaker as sm

    try:
        client = sm.sagemaker_client(job.region)
        arn = sm.create_job(client, job)
    except (BotoCoreError, ClientError) as err:
        return _fail(prog, f"could not create SageMaker {job.kind} job {job.job_name}: {err}", 1)
    _say(f"Created SageMaker {job.kind} job {job.job_name} ({arn}).")
    if not wait:
        _say(json.dumps(job.xcom_value()))
        return 0
    logs = CloudWatchTail(job)
    try:
        sm.wait(
            client,
            job.kind,
            job.job_name,
            poll_seconds=poll_seconds,
            on_status=lambda status: _say(f"{_now()} {status}"),
            sleep=lambda seconds: (logs.poll(_say), time.sleep(seconds)),
        )
    except sm.SageMakerJobFailed as err:
        logs.poll(_say)
        return _fail(prog, str(err), 1)
    except (BotoCoreError, ClientError) as err:
        return _fail(prog, f"lost track of SageMaker job {job.job_name}: {err}", 1)
    except KeyboardInterrupt:
        stop = "stop-training-job --training-job-name" if job.kind == "training" else (
            "stop-processing-job --processing-job-name")
        print(
            f"{prog}: interrupted; SageMaker job {job.job_name} keeps running. "
            f"Stop it with: aws sagemaker {stop} {job.job_name} --region {job.region}",
            file=sys.stderr,
        )
        return 130
    logs.poll(_say)
    _say(json.dumps(job.xcom_value()))
    return 0


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")


class CloudWatchTail:
    """Prints new CloudWatch log lines of a job's streams (``<log group>/<job name>/...``).

    Best effort: logs are a convenience, so any error reading them is logged once and ignored.
    """

    def __init__(self, job: JobRequest, client: Any = None) -> None:
        self.group = "/aws/sagemaker/TrainingJobs" if job.kind == "training" else "/aws/sagemaker/ProcessingJobs"
        self.prefix = f"{job.job_name}/"
        self.region = job.region
        self._client = client
        self._tokens: dict[str, str | None] = {}
        self._broken = False

    def poll(self, emit: Callable[[str], None]) -> int:
        """Print what is new in every stream; return the number of lines printed."""
        if self._broken:
            return 0
        try:
            if self._client is None:
                import boto3

                self._client = boto3.client("logs", region_name=self.region)
            return self._poll(emit)
        except Exception as err:  # noqa: BLE001 - see class docstring
            if type(err).__name__ != "ResourceNotFoundException":  # no logs yet
                log.warning("Not showing CloudWatch logs: %s", err)
                self._broken = True
            return 0

    def _poll(self, emit: Callable[[str], None]) -> int:
        streams = self._client.describe_log_streams(logGroupName=self.group, logStreamNamePrefix=self.prefix)
        printed = 0
        for stream in streams.get("logStreams", []):
            name = stream["logStreamName"]
            while True:
                kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": name, "startFromHead": True}
                if self._tokens.get(name):
                    kwargs["nextToken"] = self._tokens[name]
                page = self._client.get_log_events(**kwargs)
                for event in page.get("events", []):
                    emit(f"[{name.removeprefix(self.prefix)}] {event['message']}")
                    printed += 1
                token = page.get("nextForwardToken")
                if token == self._tokens.get(name) or not page.get("events"):
                    self._tokens[name] = token
                    break
                self._tokens[name] = token
        return printed


# --------------------------------------------------------------------------- local
def run_local(job: JobRequest, prog: str, *, asynchronous: bool = False) -> int:
    from graphstorm_provider.execution.runners import make_local_runner

    if asynchronous:
        log.info("--async-execution has no effect with --instance-type local: the job runs here, to the end.")
    try:
        runner = make_local_runner(job, extra_env={}, log=_say)
    except ValueError as err:  # the request cannot run here (e.g. no GraphStorm runtime): bad input
        return _fail(prog, str(err), 2)
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop()
        print(f"{prog}: interrupted; stopped the local run of {job.job_name}.", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the job failed: its message, not a traceback
        # The first line says what failed; the runner's details (last output lines) follow.
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        return 1
    _say(json.dumps(job.xcom_value()))
    return 0
