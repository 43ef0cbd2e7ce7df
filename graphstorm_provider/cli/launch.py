"""
``gs-sagemaker gconstruct|partition|train|infer``: GraphStorm's SageMaker launch scripts, one per step.

Flags are those of GraphStorm's SageMaker launch scripts, verbatim (parsed by the step's spec, ``Spec.from_argv``); unknown
``--flags`` are forwarded to GraphStorm. Added here:

* ``--dry-run``: validate, print the SageMaker request as JSON on stdout (exactly the
  ``create_training_job`` / ``create_processing_job`` input, usable with
  ``aws sagemaker create-training-job --cli-input-json``, except that secret-looking
  ``Environment`` values show as ``***``, ``jobs.request.printable_request``; stderr names them)
  and send nothing; boto3 is not even imported.
* ``--job-name NAME``: use this job name instead of ``--task-name`` plus a UTC timestamp. Running
  the command again with the same name re-attaches instead of launching twice: a running job is
  followed, a completed one's outputs are printed, after a failed or stopped one ``NAME-a2`` (then
  ``-a3``, ...) is launched (``SageMakerBackend.start``).
* ``--aws-max-attempts N`` (or ``$GS_SAGEMAKER_AWS_MAX_ATTEMPTS``): attempts per AWS API call
  (botocore's adaptive retries, default 5). With the connect and read timeouts (5 s, 7 s) an
  unreachable or silent endpoint fails in under 60 s with one sentence naming it.
* The endpoint is boto3's business: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_SAGEMAKER``)
  points the command at another endpoint, e.g. a moto server.

Otherwise the job is created and, unless ``--async-execution``, followed: status changes and
CloudWatch log lines are printed until it ends (checked every 15 s, or every
``$GS_SAGEMAKER_POLL_SECONDS``). Exit codes (``exit_codes.py``): 0 done (or started, with
``--async-execution``), 1 the job or an AWS call failed, 2 bad input (nothing was sent),
130 interrupted, 143 terminated (SIGTERM; a SageMaker job keeps running, the message says how to
stop it; a local run is stopped).
``--instance-type local`` runs the job on this machine instead (one host: the local backend,
several: the compose backend).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from graphstorm_provider.argparsing import DRY_RUN_FLAG
from graphstorm_provider.aws_env import REDACTED
from graphstorm_provider.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

log = logging.getLogger(__name__)

JOB_NAME_FLAG = "--job-name"
MAX_ATTEMPTS_FLAG = "--aws-max-attempts"
MAX_ATTEMPTS_ENV = "GS_SAGEMAKER_AWS_MAX_ATTEMPTS"
# gs-sagemaker's flags beyond the launch scripts' (taken out before the step's parser sees the rest).
OWN_FLAGS = (DRY_RUN_FLAG, JOB_NAME_FLAG, MAX_ATTEMPTS_FLAG)
# How often a waiting command checks the job and its logs; GS_SAGEMAKER_POLL_SECONDS overrides.
POLL_SECONDS = 15.0


class Terminated(BaseException):
    """SIGTERM arrived (raised from the handler :func:`sigterm_raises` installs)."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """
    Turn SIGTERM into :class:`Terminated` while a job is followed.

    The command can then say what it stopped or how to stop what it leaves running (instead of
    dying without a word).
    """

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass(frozen=True)
class OwnFlags:
    """The flags ``gs-sagemaker`` adds to those of GraphStorm's launch scripts."""

    dry_run: bool = False
    wants_help: bool = False
    job_name: str | None = None
    max_attempts: int | None = None


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
        text = text[len(prog) + 2 :]
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


def split_own_flags(argv: Sequence[str]) -> tuple[list[str], OwnFlags]:
    """
    Remove our flags and detect ``-h``; only before ``--``, after it is GraphStorm's.

    Our flags are ``--dry-run``, ``--job-name N``, ``--aws-max-attempts N``, also as ``--flag=N``.

    :raises ValueError: a value flag without its value, ``--dry-run=<value>``, or a bad attempt count.
    """
    argv = [str(a) for a in argv]
    cut = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:cut], argv[cut:]
    values: dict[str, str] = {}
    rest: list[str] = []
    index = 0
    while index < len(head):
        arg = head[index]
        flag, eq, inline = arg.partition("=")
        if flag in (JOB_NAME_FLAG, MAX_ATTEMPTS_FLAG):
            if not eq:
                index += 1
                if index >= len(head) or head[index].startswith("--"):
                    raise ValueError(f"{flag} needs a value.")
                inline = head[index]
            if not inline.strip():
                raise ValueError(f"{flag} needs a value, got an empty one.")
            values[flag] = inline
        elif flag == DRY_RUN_FLAG and eq:  # else forwarded to GraphStorm, and the job would be launched
            raise ValueError(f"{DRY_RUN_FLAG} takes no value, got {arg[:100]!r}.")
        elif arg != DRY_RUN_FLAG:
            rest.append(arg)
        index += 1
    attempts_text = values.get(MAX_ATTEMPTS_FLAG, os.environ.get(MAX_ATTEMPTS_ENV, ""))
    source = MAX_ATTEMPTS_FLAG if MAX_ATTEMPTS_FLAG in values else MAX_ATTEMPTS_ENV
    try:
        attempts = int(attempts_text) if attempts_text else None
    except ValueError:
        attempts = 0
    if attempts is not None and not 1 <= attempts <= 20:
        raise ValueError(f"{source} must be a whole number of attempts from 1 to 20, got {attempts_text[:100]!r}.")
    own = OwnFlags(
        dry_run=DRY_RUN_FLAG in head,
        wants_help="-h" in head or "--help" in head,
        job_name=values.get(JOB_NAME_FLAG),
        max_attempts=attempts,
    )
    return rest + tail, own


def run_step(step: str, argv: Sequence[str]) -> int:
    from graphstorm_provider.jobs import STEP_SPECS
    from graphstorm_provider.jobs.errors import JobSpecError

    prog = f"gs-sagemaker {step}"
    _log_to_stderr()
    try:
        args, own = split_own_flags(argv)
    except ValueError as err:
        return _fail(prog, str(err), EXIT_USAGE)
    spec_class = STEP_SPECS[step]
    if own.wants_help:
        parser = spec_class.argument_parser()
        group = parser.add_argument_group("gs-sagemaker")
        group.add_argument(
            DRY_RUN_FLAG, action="store_true", help="print the SageMaker request as JSON and send nothing"
        )
        group.add_argument(
            JOB_NAME_FLAG,
            help="the job name (default: --task-name plus a UTC timestamp); "
            "run again with the same name to re-attach instead of launching twice",
        )
        group.add_argument(
            MAX_ATTEMPTS_FLAG, type=int, help=f"attempts per AWS API call (default 5, or ${MAX_ATTEMPTS_ENV})"
        )
        parser.print_help()
        return EXIT_OK
    try:
        spec = spec_class.from_argv(args, other_flags=OWN_FLAGS)
        job = spec.build(own.job_name)
    except (JobSpecError, ValueError) as err:
        return _fail(prog, str(err), EXIT_USAGE)
    from graphstorm_provider.jobs.request import printable_request, secret_environment_names, warn_secret_environment

    warn_secret_environment(job)  # a SageMaker job's secret-looking Environment names, once
    if own.dry_run:
        print(json.dumps(printable_request(job.request), indent=2, default=str))
        where = "this machine" if job.is_local else f"SageMaker in {job.region}"
        hidden = secret_environment_names(job)
        shown = f" Environment values shown as {REDACTED}: {', '.join(hidden)}." if hidden else ""
        print(f"Dry run: nothing sent. Would run {job.kind} job {job.job_name} on {where}.{shown}", file=sys.stderr)
        return EXIT_OK
    if job.is_local:
        return run_local(job, prog, asynchronous=spec.async_execution)
    try:
        interval = poll_seconds()
    except ValueError as err:
        return _fail(prog, str(err), EXIT_USAGE)
    return run_sagemaker(job, prog, wait=not spec.async_execution, poll_seconds=interval, max_attempts=own.max_attempts)


# --------------------------------------------------------------------------- SageMaker
def run_sagemaker(
    job: JobRequest, prog: str, *, wait: bool, poll_seconds: float = POLL_SECONDS, max_attempts: int | None = None
) -> int:
    """
    Start the job through the SageMaker backend (re-attaching to one of the same name).

    With ``wait``, print its status changes and CloudWatch log lines until it ends. Unlike the operators,
    Ctrl-C and SIGTERM leave the job running (and say how to stop it): a terminal is not a
    scheduler that owns the job.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from graphstorm_provider.execution import sagemaker as sm

    with sigterm_raises():
        try:
            backend = sm.SageMakerBackend(
                sm.sagemaker_client(job.region, max_attempts), sm.logs_client(job.region, max_attempts)
            )
            started = backend.start(job, poll_seconds=poll_seconds)
        except sm.SageMakerUnreachable as err:
            return _fail(prog, f"could not start SageMaker {job.kind} job {job.job_name}: {err}", EXIT_FAILED)
        except (BotoCoreError, ClientError) as err:
            return _fail(prog, f"could not create SageMaker {job.kind} job {job.job_name}: {err}", EXIT_FAILED)
        except (KeyboardInterrupt, Terminated) as err:
            return _interrupted(prog, job, err)
        job = started.job
        verb = {"created": "Created", "attached": "Attached to running", "completed": "Found completed"}
        _say(f"{verb[started.outcome]} SageMaker {job.kind} job {job.job_name}.")
        if not wait or started.outcome == "completed":
            _say(json.dumps(job.xcom_value()))
            return EXIT_OK
        try:
            backend.wait(
                job.kind,
                job.job_name,
                poll_seconds=poll_seconds,
                on_status=lambda status: _say(f"{_now()} {status}"),
                on_log=_say,
            )
        except sm.SageMakerJobFailed as err:
            return _fail(prog, str(err), EXIT_FAILED)
        except (sm.SageMakerUnreachable, BotoCoreError, ClientError) as err:
            return _fail(
                prog,
                f"lost track of SageMaker job {job.job_name}: {err} "
                f"It may still be running; stop it with: {sm.stop_command(job)}",
                EXIT_FAILED,
            )
        except (KeyboardInterrupt, Terminated) as err:
            return _interrupted(prog, job, err)
    _say(json.dumps(job.xcom_value()))
    return EXIT_OK


def _interrupted(prog: str, job: JobRequest, err: BaseException) -> int:
    from graphstorm_provider.execution import sagemaker as sm

    how, code = ("terminated", EXIT_TERMINATED) if isinstance(err, Terminated) else ("interrupted", EXIT_INTERRUPTED)
    print(
        f"{prog}: {how}; SageMaker job {job.job_name} keeps running. Stop it with: {sm.stop_command(job)}",
        file=sys.stderr,
        flush=True,
    )
    return code


def _now() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


# --------------------------------------------------------------------------- local
def run_local(job: JobRequest, prog: str, *, asynchronous: bool = False) -> int:
    from graphstorm_provider.execution.runners import make_local_runner

    if asynchronous:
        log.info("--async-execution has no effect with --instance-type local: the job runs here, to the end.")
    try:
        runner = make_local_runner(job, extra_env={}, log=_say)
    except ValueError as err:  # the request cannot run here (e.g. no GraphStorm runtime): bad input
        return _fail(prog, str(err), EXIT_USAGE)
    try:
        with sigterm_raises():
            runner.run()
    except (KeyboardInterrupt, Terminated) as err:
        runner.stop()
        how, code = (
            ("terminated", EXIT_TERMINATED) if isinstance(err, Terminated) else ("interrupted", EXIT_INTERRUPTED)
        )
        print(f"{prog}: {how}; stopped the local run of {job.job_name}.", file=sys.stderr)
        return code
    except Exception as err:
        # The first line says what failed; the runner's details (last output lines) follow.
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    _say(json.dumps(job.xcom_value()))
    return EXIT_OK
