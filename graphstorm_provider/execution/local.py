"""
Local backend: run a job on this machine the way SageMaker local mode does (one host).

From the same :class:`~graphstorm_provider.jobs.request.JobRequest` the SageMaker backend sends:

1. lay out ``<work dir>/opt/ml`` with SageMaker's config files (:mod:`.opt_ml`);
2. stage the inputs there from ``s3://`` or ``file://`` (:mod:`.staging`);
3. run ``ContainerEntrypoint + ContainerArguments`` with the GraphStorm runtime's python in place of
   the image's ``python3`` and the checkout's ``entrypoints/`` in place of ``/opt/ml/code``, under
   a guard process (:mod:`._guard`) that plays the container boundary, streaming its output into
   the task log;
4. on success, move the outputs where the request says (processing outputs; a training job's
   ``/opt/ml/model`` as ``model.tar.gz``), as SageMaker does.

``stop()`` ends the whole process tree (TERM, grace period, KILL), including processes that left
the tree, and is safe to call from another thread or a signal handler (``on_kill``). A run longer
than ``StoppingCondition.MaxRuntimeInSeconds`` or the caller's ``timeout_s`` is ended the same way
and fails naming the limit.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Protocol, runtime_checkable

from graphstorm_provider import config
from graphstorm_provider.aws_env import IDENTITY_VARIABLES
from graphstorm_provider.execution import proctree
from graphstorm_provider.execution.log_levels import LineLevels
from graphstorm_provider.execution.opt_ml import (
    LOCAL_HOST,
    OptMl,
    sagemaker_environment,
    training_channels,
    write_config_files,
)
from graphstorm_provider.execution.sm_output import MODEL_ARCHIVE, OUTPUT_ARCHIVE, archive_uri, upload_archive
from graphstorm_provider.execution.staging import Stager, StagingCancelled
from graphstorm_provider.jobs.request import CONTAINER_CODE_DIR, JobRequest

_GUARD = Path(__file__).with_name("_guard.py")
TAIL_LINES = 40
JOB_TMP_DIR = "tmp"  # the job process's TMPDIR, inside its work directory (removed with it)

# Host variables a local job inherits. SageMaker's container sees only the request's Environment;
# locally the process also needs a PATH, a home, a locale, proxies/CA bundles, and (as SageMaker
# local mode passes the caller's credentials into its containers) the AWS_* settings. Nothing else
# from the host (notably no AIRFLOW_* variables, which may carry connection secrets).
_INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SHELL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)
_INHERITED_PREFIXES = ("LC_", "AWS_")
# Never handed to a job, even when a caller passes its whole os.environ as ``env``: Airflow's own
# settings (connections, secrets) and the Airflow interpreter's module paths (wrong for the runtime).
_NEVER_PASSED_PREFIXES = ("AIRFLOW_", "_AIRFLOW", "PYTHONPATH", "PYTHONHOME", proctree.MARKER_ENV)


def with_caller_credentials(env: Mapping[str, str], caller_env: Mapping[str, str]) -> dict[str, str]:
    """
    ``env`` updated with ``caller_env``, whose AWS credentials, if it has any, replace ``env``'s whole set.

    The rule: when ``caller_env`` (the operator's Airflow connection, see
    ``operators/connection.py`` ``connection_env``) sets any of :data:`IDENTITY_VARIABLES`,
    the job's credentials are exactly the caller's: every credential variable of ``env`` (the
    worker's own, inherited from ``os.environ``, or the request's ``Environment``) is dropped
    first, so a worker's session token, profile or role never joins the connection's key (a
    mismatched token is rejected by AWS, and the worker's identity is not the job's). When
    ``caller_env`` sets none (no connection, or boto3 found no credentials for it), ``env``'s
    credentials stay as they are. Every other variable (region, endpoint, retry settings, ...)
    is merged as before: ``caller_env`` wins. Neither mapping is changed; nothing is logged.
    """
    if any(caller_env.get(name) for name in IDENTITY_VARIABLES):
        env = {name: value for name, value in env.items() if name not in IDENTITY_VARIABLES}
    return {**env, **caller_env}


@runtime_checkable
class JobLog(Protocol):
    """What a local job logs through: a :class:`logging.Logger` (or adapter), or a :class:`_LineLog`."""

    def info(self, msg: str, *args: object) -> None: ...
    def error(self, msg: str, *args: object) -> None: ...
    def debug(self, msg: str, *args: object) -> None: ...
    def log(self, level: int, msg: str, *args: object) -> None: ...


class _LineLog:
    """A logger-like front for a ``log(line)`` callable (what an operator may hand over)."""

    def __init__(self, emit: Callable[[str], None]):
        self._emit = emit

    def _line(self, msg: str, *args: object) -> None:
        self._emit(msg % args if args else msg)

    info = warning = error = _line

    def debug(self, msg: str, *args: object) -> None:
        pass

    def log(self, level: int, msg: str, *args: object) -> None:
        if level > logging.DEBUG:
            self._line(msg, *args)


class LocalSpecError(ValueError):
    """The request cannot run on the local backend (one sentence, names the parameter)."""


class LocalJobError(RuntimeError):
    """The entry point failed or was stopped; carries its exit code and last stderr lines."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int,
        stderr_tail: list[str],
        work_dir: Path | None,
        failure_reason: str | None = None,
    ):
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.work_dir = work_dir
        self.failure_reason = failure_reason
        details = [message]
        if failure_reason:
            details.append(f"failure reason: {failure_reason}")
        if stderr_tail:
            details.append("last lines of its output:\n    " + "\n    ".join(stderr_tail))
        if work_dir is not None:
            details.append(f"work directory kept for debugging: {work_dir}")
        super().__init__("\n".join(details))


@dataclass(frozen=True)
class LocalJobResult:
    """How a local job ended: exit code, output URIs, what was uploaded, the kept work dir."""

    job_name: str
    exit_code: int
    outputs: dict[str, str]
    uploaded: list[str] = field(default_factory=list)  # URIs written after the job
    work_dir: Path | None = None  # None once cleaned up
    duration_s: float = 0.0


def local_command(job: JobRequest, runtime_python: str, entrypoints: Path) -> list[str]:
    """``ContainerEntrypoint + ContainerArguments`` with this machine's python and entry points."""
    entry = job.container_entrypoint
    if not entry:
        raise LocalSpecError(f"{job.job_name}: the request has no ContainerEntrypoint to run locally")
    argv = []
    if PurePosixPath(entry[0]).name in ("python", "python3"):
        argv.append(runtime_python)
        entry = entry[1:]
    for item in entry:
        if item.startswith(CONTAINER_CODE_DIR + "/"):
            local = entrypoints.joinpath(*PurePosixPath(item).relative_to(CONTAINER_CODE_DIR).parts)
            if not local.is_file():
                raise LocalSpecError(
                    f"ContainerEntrypoint names {item}, but {local} does not exist (entry points folder: {entrypoints})"
                )
            argv.append(str(local))
        else:
            argv.append(item)
    return argv + job.container_arguments


def _refuse_unless_local_one_host(job: JobRequest) -> None:
    if not job.is_local:
        raise LocalSpecError(
            f"instance_type={job.instance_type!r}: the local backend only runs instance_type='local' jobs"
        )
    if job.instance_count != 1:
        raise LocalSpecError(
            f"instance_count={job.instance_count} with instance_type='local' needs the compose backend "
            "(graphstorm_provider.execution.compose, one container per host): the local backend runs one "
            "host, and two DistDGL hosts on one OS collide on shared memory (/dev/shm)."
        )


class LocalJobRunner:
    """
    Runs one :class:`JobRequest` on this machine; see the module docstring.

    ``timeout_s`` is the caller's limit on the entry point's run, in seconds, besides the request's
    ``StoppingCondition.MaxRuntimeInSeconds`` (the sooner ends it); ``timeout_name`` is what the
    error calls it (the operators: the parameter that set it).
    """

    def __init__(
        self,
        job: JobRequest,
        *,
        env: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        runtime_python: str | None = None,
        log: JobLog | Callable[[str], None] | None = None,
        keep_work_dir: bool = False,
        stop_grace_seconds: float = 10.0,
        timeout_s: float | None = None,
        timeout_name: str = "timeout_s",
    ):
        _refuse_unless_local_one_host(job)
        self.job = job
        # Where SageMaker's archives go, checked before anything runs (a bad job name: OutputArchiveError).
        self._archives = {name: uri for name in (MODEL_ARCHIVE, OUTPUT_ARCHIVE) if (uri := archive_uri(job, name))}
        if log is None:
            log = logging.getLogger(__name__)
        self.log: JobLog = log if isinstance(log, JobLog) else _LineLog(log)
        # An explicit interpreter is trusted as given; a discovered one must have graphstorm.
        self.runtime_python = runtime_python or config.runtime_python()
        if not Path(self.runtime_python).is_file():
            raise config.RuntimeSetupError(f"runtime_python {self.runtime_python} does not exist. {config.SETUP_HINT}")
        self.entrypoints = config.entrypoints_dir()
        self.command = local_command(job, self.runtime_python, self.entrypoints)
        training_channels(job)  # validates the channels before anything is staged
        self._extra_env = {k: v for k, v in (env or {}).items() if not k.startswith(_NEVER_PASSED_PREFIXES)}
        self._given_work_dir = Path(work_dir) if work_dir is not None else None
        self.keep_work_dir = keep_work_dir
        self.grace = stop_grace_seconds
        self.marker = f"{job.job_name}-{uuid.uuid4().hex[:12]}"
        self.work_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop_requested = False
        self._timeout_s = float(timeout_s) if timeout_s is not None else None
        self._timeout_name = timeout_name
        self._timed_out: str | None = None  # the limit that ended the run, as the error names it

    # ---- public API ---------------------------------------------------------------------------
    def run(self) -> LocalJobResult:
        started = time.monotonic()
        work_dir = self._make_work_dir()
        opt_ml = OptMl(work_dir / "opt" / "ml")
        try:
            env = self._environment(opt_ml)
            stager = Stager(env, cancelled=lambda: self._stop_requested)
            opt_ml.create()
            write_config_files(self.job, opt_ml)
            self._stage_inputs(stager, opt_ml, work_dir)
            exit_code, tail = self._execute(env, self._cwd(opt_ml, work_dir))
            if self._timed_out:
                raise LocalJobError(
                    f"job {self.job.job_name} ran longer than {self._timed_out} and was stopped (exit code {exit_code})",
                    exit_code=exit_code,
                    stderr_tail=tail,
                    work_dir=work_dir,
                )
            if self._stop_requested:
                raise LocalJobError(
                    f"job {self.job.job_name} was stopped (exit code {exit_code})",
                    exit_code=exit_code,
                    stderr_tail=tail,
                    work_dir=work_dir,
                )
            if exit_code != 0:
                raise LocalJobError(
                    f"job {self.job.job_name} failed with exit code {exit_code}",
                    exit_code=exit_code,
                    stderr_tail=tail,
                    work_dir=work_dir,
                    failure_reason=_failure_reason(opt_ml),
                )
            uploaded = self._upload_outputs(stager, opt_ml, work_dir)
        except StagingCancelled as exc:
            self.log.error("local job %s was stopped; its work directory is kept: %s", self.job.job_name, work_dir)
            raise LocalJobError(
                f"job {self.job.job_name} was stopped ({exc})",
                exit_code=-signal.SIGTERM,
                stderr_tail=[],
                work_dir=work_dir,
            ) from None
        except BaseException:
            self.log.error("local job %s did not succeed; its work directory is kept: %s", self.job.job_name, work_dir)
            raise
        kept = self.keep_work_dir or self._given_work_dir is not None
        if not kept:
            _remove_tree(work_dir)
        self.log.info("local job %s completed in %.1f s", self.job.job_name, time.monotonic() - started)
        return LocalJobResult(
            self.job.job_name,
            0,
            dict(self.job.outputs),
            uploaded,
            work_dir if kept else None,
            time.monotonic() - started,
        )

    def stop(self) -> None:
        """End the job's whole process tree. Safe from another thread or a signal handler."""
        self._stop_requested = True
        if self._proc is not None:
            self._end_tree()

    def stop_requested(self) -> bool:
        """Tell whether :meth:`stop` was called (from any thread) since the job started."""
        return self._stop_requested

    def _guard_running(self) -> bool:
        # returncode is set once Popen has reaped the guard; after that its pid may be reused.
        return self._proc is not None and self._proc.returncode is None and proctree.alive(self._proc.pid)

    def _end_tree(self) -> None:
        if self._proc is not None and self._guard_running():
            # The guard ends its tree itself (TERM, grace, KILL); give it that long plus a margin.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.grace + 5
            while self._guard_running() and time.monotonic() < deadline:
                time.sleep(0.05)
        # Whatever the guard could not end (or if the guard itself was killed): end it from here.
        left = proctree.end_processes(self._job_processes, self.grace)
        if left:
            self.log.error("processes of job %s could not be ended: %s", self.job.job_name, sorted(left))

    def _job_processes(self) -> set[int]:
        found = proctree.with_marker(self.marker)
        if self._proc is not None and self._guard_running():
            found |= proctree.descendants(self._proc.pid) | {self._proc.pid}
        return found

    # ---- steps --------------------------------------------------------------------------------
    def _make_work_dir(self) -> Path:
        if self._given_work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix=f"gs-local-{self.job.job_name[:40]}-"))
        else:
            self.work_dir = self._given_work_dir.resolve()
            existing = self.work_dir / "opt" / "ml"
            if existing.exists() and any(existing.iterdir()):
                raise LocalSpecError(
                    f"work_dir {self.work_dir} already holds a job ({existing}); give each run its own work directory"
                )
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log.info("local job %s: work directory %s", self.job.job_name, self.work_dir)
        return self.work_dir

    def _environment(self, opt_ml: OptMl) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith(_INHERITED_PREFIXES)}
        env.update(self.job.environment)
        env.update(sagemaker_environment(self.job, opt_ml))
        # The caller's (connection's) credentials, if any, as a whole: none of the worker's join them.
        env = with_caller_credentials(env, self._extra_env)
        # `python3` inside the job (GraphStorm's launcher starts workers that way) is the runtime's.
        runtime_bin = str(Path(self.runtime_python).parent)
        env["PATH"] = os.pathsep.join(p for p in (runtime_bin, env.get("PATH", os.defpath)) if p)
        if (Path(runtime_bin).parent / "pyvenv.cfg").is_file():
            env["VIRTUAL_ENV"] = str(Path(runtime_bin).parent)
        env["PYTHONUNBUFFERED"] = "1"
        env[proctree.MARKER_ENV] = self.marker
        # The job's temporary files (torchelastic_* folders, ...) go with its work directory.
        if self.work_dir is None:
            raise RuntimeError("the work directory is made before the job's environment")
        job_tmp = self.work_dir / JOB_TMP_DIR
        job_tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(job_tmp)
        return env

    def _stage_inputs(self, stager: Stager, opt_ml: OptMl, work_dir: Path) -> None:
        if self.job.kind == "training":
            for name, uri in training_channels(self.job):
                count = stager.download(uri, opt_ml.channel(name))
                self.log.info(
                    "channel %s: %d file(s), %d bytes downloaded from %s",
                    name,
                    count,
                    _tree_bytes(opt_ml.channel(name)),
                    uri,
                )
            return
        for item in self.job.request.get("ProcessingInputs", []) or []:
            s3_input = item.get("S3Input")
            if s3_input is None:
                raise LocalSpecError(f"processing input {item.get('InputName')!r}: only S3Input runs locally")
            dest = opt_ml.local(s3_input["LocalPath"], work_dir)
            count = stager.download(s3_input["S3Uri"], dest)
            self.log.info(
                "input %s: %d file(s), %d bytes downloaded from %s",
                item.get("InputName"),
                count,
                _tree_bytes(dest),
                s3_input["S3Uri"],
            )

    def _cwd(self, opt_ml: OptMl, work_dir: Path) -> Path:
        # Processing entry points read their input from the working directory (see ARCHITECTURE.md).
        return opt_ml.processing_input if self.job.kind == "processing" else work_dir

    def _execute(self, env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
        guard = [
            sys.executable,
            str(_GUARD),
            "--parent-pid",
            str(os.getpid()),
            "--grace",
            str(self.grace),
            "--",
            *self.command,
        ]
        self.log.info("running %s on %s (cwd %s)", " ".join(self.command), LOCAL_HOST, cwd)
        self.log.debug("environment variables: %s", ", ".join(sorted(env)))  # names only, never values
        if self._stop_requested:
            raise LocalJobError(
                f"job {self.job.job_name} was stopped before it started",
                exit_code=-signal.SIGTERM,
                stderr_tail=[],
                work_dir=self.work_dir,
            )
        proc = subprocess.Popen(
            guard,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._proc = proc
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        out_tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        readers = [
            threading.Thread(target=self._pump, args=(proc.stdout, out_tail, LineLevels(stderr=False)), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, tail, LineLevels(stderr=True)), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            if self.stop_requested():  # stop() raced with the start
                self._end_tree()
            seconds, limit = self._time_limit()
            try:
                exit_code = proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                # SageMaker stops a job at StoppingCondition.MaxRuntimeInSeconds; so do we (and at the caller's limit).
                self._timed_out = limit
                self._end_tree()
                exit_code = proc.wait()
        finally:
            if self._guard_running() or self._job_processes():
                # Interrupted (KeyboardInterrupt, an exception from a signal handler), or the guard
                # died without cleaning up: leave nothing behind.
                self._end_tree()
                proc.wait()
            for reader in readers:
                reader.join(timeout=10)  # a pipe held open by an unkillable process must not hang us
        return exit_code, list(tail or out_tail)

    def _time_limit(self) -> tuple[float | None, str]:
        """Return the sooner of ``MaxRuntimeInSeconds`` and the caller's ``timeout_s``, and how the error names it."""
        limits: list[tuple[float, str]] = []
        if self._timeout_s is not None:
            limits.append((self._timeout_s, self._timeout_name))
        if seconds := (self.job.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds"):
            limits.append((float(seconds), "StoppingCondition.MaxRuntimeInSeconds"))
        if not limits:
            return None, ""
        seconds, name = min(limits, key=lambda limit: limit[0])
        return seconds, f"{name}={int(seconds) if seconds.is_integer() else seconds}"

    def _pump(self, pipe: IO[bytes], tail: collections.deque[str], levels: LineLevels) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            tail.append(line)
            self.log.log(levels.level(line), "[%s] %s", LOCAL_HOST, line)
        pipe.close()

    def _upload_outputs(self, stager: Stager, opt_ml: OptMl, work_dir: Path) -> list[str]:
        uploaded: list[str] = []
        if self.job.kind == "processing":
            outputs = (self.job.request.get("ProcessingOutputConfig") or {}).get("Outputs", [])
            for item in outputs:
                s3_output = item["S3Output"]
                src = opt_ml.local(s3_output["LocalPath"], work_dir)
                count = stager.upload_dir(src, s3_output["S3Uri"]) if src.is_dir() else 0
                self.log.info("output %s: %d file(s) to %s", item.get("OutputName"), count, s3_output["S3Uri"])
                uploaded.append(s3_output["S3Uri"])
            return uploaded
        # Training: SageMaker packs /opt/ml/model and /opt/ml/output/data (sm_output; an empty folder: no archive).
        for folder, archive in ((opt_ml.model, MODEL_ARCHIVE), (opt_ml.output_data, OUTPUT_ARCHIVE)):
            uri = self._archives.get(archive)
            if uri and upload_archive(folder, uri, stager, work_dir, cancelled=lambda: self._stop_requested):
                self.log.info("uploaded %s", uri)
                uploaded.append(uri)
        return uploaded


def _failure_reason(opt_ml: OptMl) -> str | None:
    try:
        text = opt_ml.failure_file.read_text(errors="replace").strip()
    except OSError:
        return None
    return text[:1024] or None


def _tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (what a staged input cost; the overhead bench reads it)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
