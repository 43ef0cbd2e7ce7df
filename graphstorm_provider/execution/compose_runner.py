"""
Run a multi-host job as a compose project and always clean up after it.

:class:`ComposeJobRunner` renders the job (``compose.py``), starts every host
detached, streams each host's log prefixed by its host name, and watches the
containers through the engine. The job's result follows SageMaker's rule: it
succeeds when every host exits 0 and fails as soon as one host fails, with that
host's name, exit code and failure reason; the other hosts are then stopped, not
waited for, so a dead host never leaves the job hanging. The host named is the one
whose own failure ended the job: a host that lost a peer says so in its failure
file (``host algo-2: ...``, the entry points' contract) and may exit first. A timeout (the request's
``StoppingCondition.MaxRuntimeInSeconds``, or the one given) fails the job too.

When every host succeeded, and before teardown, the leader's ``/opt/ml/model`` and
``/opt/ml/output/data`` are streamed out of its exited container and written as SageMaker's
``model.tar.gz`` and ``output.tar.gz`` (``sm_output``, which the one-host backend packs with too;
an absent or empty folder gives no archive); a failed job packs nothing.

Teardown runs on every path, success, failure, timeout and :meth:`stop` (the
operator's ``on_kill``): ``<compose> down -v``, then removal of the containers and
network by name in case the compose tool left something behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from graphstorm_provider.aws_env import IDENTITY_VARIABLES
from graphstorm_provider.execution.compose import (
    ComposeOptions,
    compose_file_name,
    container_name,
    host_names,
    network_name,
    plan_mounts,
    prepare_mount_sources,
    project_name,
    secret_environment,
    write_compose,
)
from graphstorm_provider.execution.compose_guard import DONE, SCRATCH_OPTION
from graphstorm_provider.execution.compose_tool import ComposeTool, find_compose_tool
from graphstorm_provider.execution.sm_output import MODEL_ARCHIVE, OUTPUT_ARCHIVE, archive_uri, pack_copied_folder
from graphstorm_provider.execution.staging import Stager, StagingCancelled, StagingError
from graphstorm_provider.exit_codes import EXIT_TERMINATED, EXIT_TIMED_OUT

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

log = logging.getLogger(__name__)

WORK_DIR_ENV = "GRAPHSTORM_COMPOSE_WORK_DIR"
_FINISHED_STATES = {"exited", "stopped", "dead"}
# The exit code of a host whose container is gone or whose engine reported none.
_UNKNOWN_EXIT_CODE = 255
_DEFAULT_TIMEOUT_S = 24 * 3600
_UP_TIMEOUT_S = 300
_DOWN_TIMEOUT_S = 120
_TIMED_OUT = EXIT_TIMED_OUT
_GUARD_EXIT_TIMEOUT_S = 10  # for the guard to read `done` and exit
# Where a container leaves its failure reason (SageMaker's FailureReason; execution/opt_ml.py).
_FAILURE_FILE = "/opt/ml/output/failure"
# How a host that lost a peer words its failure (the entry points' PeerError): it names the peer.
_PEER_FAILURE = re.compile(r"^host (algo-\d+): ")
# How long a host its peers blame may take to exit after they did (it is failing already).
_BLAMED_EXIT_GRACE_S = 15.0
# What SageMaker packs as each archive, from the leader only (execution/sm_output.py).
_ARCHIVED_FOLDERS = {MODEL_ARCHIVE: "/opt/ml/model", OUTPUT_ARCHIVE: "/opt/ml/output/data"}
# How long copying one folder out of the leader's container may take.
_COPY_OUT_TIMEOUT_S = 1800
# A run's own scratch folder in its work dir, which other runs may share: ``.scratch-<random>``.
_SCRATCH_PREFIX = ".scratch-"
# How long a command whose output we stopped reading may take to exit (it ends on its next write).
_CLOSED_PIPE_EXIT_GRACE_S = 10
# How `<engine> cp` says the path is not in the container (podman: "could not be found", docker: "Could not find").
_NOT_IN_CONTAINER = re.compile(r"could not be found|could not find|no such file", re.IGNORECASE)


@dataclass(frozen=True)
class _Output:
    """What :func:`_read_output` saw: ``consume``'s value or error, and how the command ended."""

    value: bool
    error: Exception | None
    returncode: int
    timed_out: bool
    stderr_tail: str  # its last three lines, joined by " | "


def _read_output(
    argv: list[str], env: Mapping[str, str], consume: Callable[[IO[bytes]], bool], timeout_s: float, scratch: Path
) -> _Output:
    """
    Run ``argv`` in a session of its own and hand its standard output to ``consume``, as it comes.

    After ``timeout_s`` the command's whole process group is killed (a child may hold the pipe open). When
    ``consume`` returns or raises, the pipe is closed (a command still writing ends on its next write) and
    the command given ``_CLOSED_PIPE_EXIT_GRACE_S`` to exit before it is killed. Its stderr goes to a temporary
    file in ``scratch``. ``consume``'s exception is returned, not raised: the caller weighs it against
    the exit status.
    """
    log.debug("running %s", argv)
    with tempfile.TemporaryFile(dir=scratch) as errors:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, start_new_session=True
        )
        if proc.stdout is None:  # for the type checker: stdout=PIPE
            raise RuntimeError(f"no pipe from {argv[:2]}")
        timed_out = threading.Event()

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        def expire() -> None:
            timed_out.set()
            kill()

        timer = threading.Timer(timeout_s, expire)
        timer.start()
        value, error = False, None
        try:
            value = consume(proc.stdout)
        except Exception as err:  # returned: the caller weighs it against the exit status
            error = err
        finally:
            proc.stdout.close()
            try:
                proc.wait(_CLOSED_PIPE_EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                kill()
            returncode = proc.wait()
            timer.cancel()
        errors.seek(0)
        tail = " | ".join(errors.read().decode(errors="replace").strip().splitlines()[-3:])
    return _Output(value, error, returncode, timed_out.is_set(), tail)


class ComposeJobError(RuntimeError):
    """
    The job failed; ``host`` is the host whose failure ended it (None for timeout/stop).

    ``reason``: the first line of that host's failure file, when it left one.
    """

    def __init__(self, message: str, *, exit_code: int, host: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.host = host
        self.reason = reason


@dataclass(frozen=True)
class HostFailure:
    """Why a host failed: its exit code and the first line of its failure file (None without one)."""

    host: str
    exit_code: int
    reason: str | None


def blamed_peer(failure: HostFailure, hosts: list[str]) -> str | None:
    """Return the peer a failed host blames for its failure (``host algo-2: ...``), or None."""
    match = _PEER_FAILURE.match(failure.reason or "")
    peer = match.group(1) if match else None
    return peer if peer in hosts and peer != failure.host else None


def failure_cause(failures: list[HostFailure], hosts: list[str]) -> str:
    """
    Return the host whose own failure ended the job, from the failed hosts in the order they finished.

    The first one that blames no peer; if every one blames a peer, the peer the first one blames
    (a host killed, frozen or still on its way out).
    """
    for failure in failures:
        if blamed_peer(failure, hosts) is None:
            return failure.host
    return blamed_peer(failures[0], hosts) or failures[0].host


@dataclass
class ComposeResult:
    """What a finished run reports (on success; failures raise :class:`ComposeJobError`)."""

    job_name: str
    project: str
    compose_file: Path
    exit_codes: dict[str, int] = field(default_factory=dict)
    # SageMaker's model.tar.gz and output.tar.gz, those whose folder the leader filled.
    uploaded: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    teardown_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return next((code for code in self.exit_codes.values() if code), 0)


def _sortable_time(text: str) -> str:
    """``2026-11-28T12:35:34.69Z`` / ``2026-11-28 12:35:34.69 +0000 UTC`` -> ``2026-11-28 12:35:34.690000``."""
    match = re.match(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?", text.strip())
    if not match or match.group(1).startswith("0001"):  # Go's zero time: not finished
        return ""
    return f"{match.group(1)} {match.group(2)}.{(match.group(3) or '0')[:6].ljust(6, '0')}"


def default_work_dir() -> Path:
    value = os.environ.get(WORK_DIR_ENV)
    return Path(value) if value else Path(os.environ.get("TMPDIR", "/tmp")) / "graphstorm-compose"


class ComposeJobRunner:
    """
    Runs one :class:`JobRequest` on hosts ``algo-1..N`` with a compose tool.

    ``env``: environment of the compose process (credentials are read from it by name;
    default ``os.environ``). ``log``: called with each output line (default: logging).
    ``compose_command``: force a tool (else config/autodetect, see ``compose_tool``).
    """

    def __init__(
        self,
        job: JobRequest,
        *,
        env: Mapping[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        compose_command: str | list[str] | None = None,
        options: ComposeOptions | None = None,
        work_dir: Path | str | None = None,
        timeout_s: float | None = None,
        poll_interval_s: float = 1.0,
        stop_grace_s: int = 5,
        blamed_exit_grace_s: float = _BLAMED_EXIT_GRACE_S,
    ) -> None:
        self.job = job
        # Where SageMaker's archives go, checked before anything runs (a bad job name: OutputArchiveError).
        self.archive_uris = {name: uri for name in _ARCHIVED_FOLDERS if (uri := archive_uri(job, name))}
        self.options = options or ComposeOptions()
        if not self.options.network_tag:
            self.options = dataclasses.replace(self.options, network_tag=uuid.uuid4().hex[:6])
        self.project = self.options.project or project_name(job.job_name)
        self.network = network_name(self.project, self.options.network_tag)
        self.hosts = host_names(job.instance_count)
        self.containers = {host: container_name(self.project, host) for host in self.hosts}
        self.env = self._compose_env(env)
        self._emit = log if log is not None else (lambda line: logging.getLogger(__name__).info("%s", line))
        self._compose_command = compose_command
        self._keep_work_dir = work_dir is not None
        self.work_dir = Path(work_dir) if work_dir else default_work_dir() / self.project
        # ``docker-compose-<step>-<job name>-<N>workers.yaml`` in the run's folder.
        self.compose_file = self.work_dir / compose_file_name(job.step, project_name(job.job_name), job.instance_count)
        # The archives being packed and the failure files being read; removed after (by the guard
        # if this process is killed). Several runs may share a work dir (gs-sagemaker compose's
        # --output-dir, a retry): each has its own folder.
        self.scratch_dir = self.work_dir / f"{_SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
        stopping = job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        self.timeout_s = float(timeout_s or stopping or _DEFAULT_TIMEOUT_S)
        self.poll_interval_s = poll_interval_s
        self.stop_grace_s = stop_grace_s
        self.blamed_exit_grace_s = blamed_exit_grace_s
        self._failure: ComposeJobError | None = None  # set by _wait when a host failed
        self.tool: ComposeTool | None = None
        self._stop = threading.Event()
        # Re-entrant: on_kill may call stop() from a signal handler while run() is in teardown().
        self._teardown_lock = threading.RLock()
        self._torn_down = False
        self._owned = False  # True once our `up` may have created containers
        self._failed = False  # a host failed or the job timed out: no need to stop gracefully
        self._log_threads: list[threading.Thread] = []
        self._log_procs: list[subprocess.Popen[str]] = []
        self._stop_reason = ""
        self._guard: subprocess.Popen[str] | None = None

    # ------------------------------------------------------------------ public
    def run(self) -> ComposeResult:
        """Run the job to the end; raises :class:`ComposeJobError` if any host fails."""
        self.tool = find_compose_tool(self._compose_command)
        write_compose(self.job, self.compose_file, self.options)
        prepare_mount_sources(plan_mounts(self.job))
        started = time.monotonic()
        result = ComposeResult(self.job.job_name, self.project, self.compose_file)
        self._emit(
            f"Starting {self.job.step} job {self.job.job_name} on {len(self.hosts)} hosts "
            f"({', '.join(self.hosts)}) with {self._tool.name}; compose file {self.compose_file}"
        )
        # Before our `up`, nothing is ours to tear down (a clash must not remove the other run).
        self._clear_leftovers()
        if self._stop.is_set():
            raise ComposeJobError(f"job {self.job.job_name} was stopped before it started", exit_code=EXIT_TERMINATED)
        self._owned = True
        self._start_guard()
        try:
            self._up()
            self._stream_logs()
            result.exit_codes = self._wait()
            if self._failure is None:
                result.uploaded = self._upload_archives()
        finally:
            result.duration_s = time.monotonic() - started
            result.teardown_s = self.teardown()
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            if self._stop.is_set():
                # stop() may have torn down while `up` was still creating containers.
                self._remove_by_name(quiet=False)
        if self._failure is not None:
            raise self._failure
        self._emit(f"Job {self.job.job_name} finished on all hosts in {result.duration_s:.1f} s")
        if not self._keep_work_dir:
            # Our own folder holds only the compose file: keep it after a failure, for debugging.
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return result

    def stop(self) -> None:
        """Stop the job now and tear everything down (safe from another thread)."""
        self._stop_reason = self._stop_reason or "stopped"
        self._stop.set()
        if self.tool is not None:
            self.teardown()

    # ------------------------------------------------------------------ steps
    def _compose_env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        from graphstorm_provider.execution.local import with_caller_credentials

        # Secrets that the request carries are written into the compose file by name only;
        # their values travel through the compose process's environment instead. The caller's
        # environment wins, and its AWS credentials, if any, come as a whole (none of the request's join them),
        # except for the request's own secret-looking variables: the file names them, so their values must be
        # the request's (a worker's own HTTPS_PROXY must not replace the job's).
        merged = with_caller_credentials(self.job.environment, os.environ if env is None else env)
        merged.update(
            {name: value for name, value in secret_environment(self.job).items() if name not in IDENTITY_VARIABLES}
        )
        return merged

    @property
    def _tool(self) -> ComposeTool:
        """Return the compose tool :meth:`run` chose (it is chosen before any engine command)."""
        if self.tool is None:
            raise RuntimeError(f"job {self.job.job_name}: no compose tool chosen yet")
        return self.tool

    def _compose(self, *args: str) -> list[str]:
        return [*self._tool.command, "-p", self.project, "-f", str(self.compose_file), *args]

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """
        Run an engine/compose command.

        A time-out is returned as exit code 124, not raised (a busy engine, e.g. one holding its storage lock for an
        image build, is not a job failure).
        """
        log.debug("running %s", argv)
        try:
            return subprocess.run(
                argv,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,  # the caller reads returncode
            )
        except subprocess.TimeoutExpired:
            log.warning("`%s` did not answer within %.0f s", " ".join(argv[:3]), timeout)
            return subprocess.CompletedProcess(argv, _TIMED_OUT, "", f"timed out after {timeout:.0f} s")

    def _start_guard(self) -> None:
        """Start the teardown guard (see ``compose_guard``) in its own session."""
        self._guard = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "graphstorm_provider.execution.compose_guard",
                SCRATCH_OPTION,
                str(self.scratch_dir),
                self._tool.engine,
                self.network,
                *self.containers.values(),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=self.env,
            text=True,
            start_new_session=True,  # survives a kill of the task's process group
        )

    def _release_guard(self) -> None:
        guard, self._guard = self._guard, None
        if guard is None:
            return
        try:
            guard.communicate(DONE, timeout=_GUARD_EXIT_TIMEOUT_S)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            guard.kill()

    def _clear_leftovers(self) -> None:
        """
        Remove stopped leftovers of an earlier run with this job name; refuse to touch live ones.

        A running container with one of our names belongs to a run that is still going (the same job
        name: every try of a task instance reuses its job name, so e.g. an earlier try that was not
        stopped): removing it would kill that run, so this run fails instead.
        """
        live = [h for h in self.hosts if self._state(h)[0] == "running"]
        if live:
            names = ", ".join(self.containers[h] for h in live)
            raise ComposeJobError(
                f"containers {names} are already running: a run with job name {self.job.job_name} is still live "
                "(e.g. an earlier try of this task still running: every try reuses the job name), and this run "
                f"leaves it alone; wait for it to end or stop it (`{self._tool.engine} rm -f "
                f"{' '.join(self.containers[h] for h in live)}`), then retry the task",
                exit_code=1,
            )
        self._remove_by_name(quiet=True)

    def _up(self) -> None:
        proc = self._run(self._compose("up", "-d"), _UP_TIMEOUT_S)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise ComposeJobError(
                f"`{self._tool.name} up` failed for job {self.job.job_name} (exit {proc.returncode}): "
                + " | ".join(detail),
                exit_code=proc.returncode or 1,
            )

    def _stream_logs(self) -> None:
        for host, name in self.containers.items():
            proc = subprocess.Popen(
                [self._tool.engine, "logs", "-f", name],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
            )
            self._log_procs.append(proc)
            thread = threading.Thread(target=self._pump, args=(host, proc), daemon=True, name=f"log-{host}")
            thread.start()
            self._log_threads.append(thread)

    def _pump(self, host: str, proc: subprocess.Popen[str]) -> None:
        if proc.stdout is None:
            raise RuntimeError(f"{host}: the log process was started without a pipe")
        for line in proc.stdout:
            self._emit(f"[{host}] {line.rstrip()}")

    def _state(self, host: str) -> tuple[str, int | None, str]:
        """
        (status, exit code, finish time) of a host's container; ("missing", None, "") if gone.

        The finish time is normalised to ``YYYY-MM-DD HH:MM:SS.ffffff`` so that docker's
        RFC 3339 and podman's Go time format compare alike.
        """
        proc = self._run(
            [
                self._tool.engine,
                "inspect",
                "--format",
                "{{.State.Status}}|{{.State.ExitCode}}|{{.State.FinishedAt}}",
                self.containers[host],
            ],
            60,
        )
        if proc.returncode == _TIMED_OUT:
            return "unknown", None, ""  # engine busy: ask again at the next poll
        if proc.returncode != 0:
            return "missing", None, ""
        status, _, rest = proc.stdout.strip().partition("|")
        code, _, finished = rest.partition("|")
        return status.lower(), int(code) if code.lstrip("-").isdigit() else None, _sortable_time(finished)

    def _wait(self) -> dict[str, int]:
        """
        Poll until all hosts exit 0, one fails, the timeout passes or stop() is called.

        Returns the exit codes seen, ordered by finish time, so the first failing host
        (the cause; its peers fail after it) comes first.
        """
        deadline = time.monotonic() + self.timeout_s
        codes: dict[str, int] = {}
        finished_at: dict[str, str] = {}
        while True:
            self._raise_if_stopped()
            for host in self.hosts:
                if host in codes:
                    continue
                status, code, finished = self._state(host)
                if status == "missing":
                    codes[host] = _UNKNOWN_EXIT_CODE
                    self._emit(f"host {host}: container {self.containers[host]} disappeared")
                elif status in _FINISHED_STATES:
                    codes[host] = self._exited(host, code)
                else:
                    continue
                finished_at[host] = finished or "~"  # unknown finish time sorts last
            ordered = dict(sorted(codes.items(), key=lambda item: finished_at[item[0]]))
            if any(ordered.values()):
                # A stop() tearing down under us also ends hosts: report the stop, not them.
                self._raise_if_stopped()
                # One failed host fails the job (as on SageMaker); the rest are stopped now.
                self._failed = True
                self._failure = self._job_failure(ordered)
                return ordered
            if len(codes) == len(self.hosts):
                return ordered
            if time.monotonic() > deadline:
                self._stop_reason = f"timed out after {self.timeout_s:.0f} s"
                self._failed = True
                running = [h for h in self.hosts if h not in codes]
                raise ComposeJobError(
                    f"job {self.job.job_name} timed out after {self.timeout_s:.0f} s; "
                    f"still running: {', '.join(running)}",
                    exit_code=124,
                )
            self._stop.wait(self.poll_interval_s)

    def _job_failure(self, codes: dict[str, int]) -> ComposeJobError:
        """Return the job's error, naming the host whose own failure ended it (``codes`` in finish order)."""
        failures = [HostFailure(host, code, self._failure_reason(host)) for host, code in codes.items() if code]
        suspects = [host for host in self.hosts if codes.get(host) != 0]  # a host that succeeded is no cause
        cause = failure_cause(failures, suspects)
        if cause not in codes:  # blamed by a peer that exited first: let it exit with its own code
            code = self._await_exit(cause, self.blamed_exit_grace_s)
            if code is not None:
                codes[cause] = code
            if code == 0:  # it finished its work after all: the blame does not hold
                suspects.remove(cause)
                cause = failure_cause(failures, suspects)
            elif code is not None:
                failures.insert(0, HostFailure(cause, code, self._failure_reason(cause)))
        job = f"{self.job.step} job {self.job.job_name} failed: host {cause} (container {self.containers[cause]})"
        own = next((f for f in failures if f.host == cause), None)
        if own is not None:
            detail = f": {own.reason}" if own.reason else ""
            message = f"{job} exited with code {own.exit_code}{detail}"
            return ComposeJobError(message, exit_code=own.exit_code, host=cause, reason=own.reason)
        # Still running, or gone without a code: what the peer that blamed it saw.
        report = failures[0]
        message = f"{job}, as reported by host {report.host} (exit code {report.exit_code}): {report.reason}"
        return ComposeJobError(message, exit_code=report.exit_code, host=cause, reason=report.reason)

    def _await_exit(self, host: str, limit_s: float) -> int | None:
        """Return the host's exit code once it exits within ``limit_s`` seconds, else None."""
        deadline = time.monotonic() + limit_s
        while True:
            status, code, _ = self._state(host)
            if status == "missing":
                return None
            if status in _FINISHED_STATES:
                return self._exited(host, code)
            if time.monotonic() > deadline or self._stop.wait(min(self.poll_interval_s, 0.5)):
                return None

    def _exited(self, host: str, code: int | None) -> int:
        """Log that a host's container exited; return its exit code (unknown when the engine gave none)."""
        code = code if code is not None else _UNKNOWN_EXIT_CODE
        self._emit(f"host {host} exited with code {code}")
        return code

    def _failure_reason(self, host: str) -> str | None:
        """
        Return the first line of the failure file an exited host's container left, or None.

        Copied out of the container (``<engine> cp`` reads a stopped one) into a file that is removed once
        read: the reason goes into the error and the log, not into a file of ours.
        """
        target = self._scratch() / f"failure-{host}"
        try:
            proc = self._run([self._tool.engine, "cp", f"{self.containers[host]}:{_FAILURE_FILE}", str(target)], 60)
            if proc.returncode != 0 or not target.is_file():
                return None
            lines = target.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            return lines[0].strip() if lines else None
        finally:
            target.unlink(missing_ok=True)

    def _scratch(self) -> Path:
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        return self.scratch_dir

    def _upload_archives(self) -> list[str]:
        """
        Write SageMaker's archives (``model.tar.gz``, ``output.tar.gz``) of the leader's folders; return their URIs.

        Called when every host exited 0, before teardown removes the containers. Every archive is
        packed (:meth:`_pack_archive`) before any is written, so a copy that fails, times out or is
        stopped writes none. An archive whose write fails fails the job; one written before it stays.
        """
        try:
            packed = [
                (uri, archive) for name, uri in self.archive_uris.items() if (archive := self._pack_archive(name))
            ]
            stager = Stager(self.env, cancelled=self._stop.is_set)
            for uri, archive in packed:
                try:
                    stager.upload_file(archive, uri)
                except StagingCancelled:
                    self._raise_if_stopped()
                    raise
                except (StagingError, OSError) as err:
                    raise self._archive_error(f"{uri} could not be written: {err}") from err
                self._emit(f"uploaded {uri} ({_ARCHIVED_FOLDERS[archive.name]} of host {self.hosts[0]})")
        finally:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
        return [uri for uri, _ in packed]

    def _pack_archive(self, name: str) -> Path | None:
        """
        Pack the leader's folder of the archive ``name`` into this run's scratch folder; return its path.

        ``<engine> cp <leader>:<folder> -`` sends the folder as a tar, repacked as it arrives
        (:func:`~.sm_output.pack_copied_folder`: only the compressed archive reaches the host's disk).
        An absent or empty folder gives no archive (None; said in the log for ``model.tar.gz`` only:
        our entry points never write ``/opt/ml/output/data``). A copy that fails fails the job, and
        so does one that takes longer than ``_COPY_OUT_TIMEOUT_S``.
        """
        leader, folder = self.hosts[0], _ARCHIVED_FOLDERS[name]
        archive = self._scratch() / name
        copy = self._copy_out(leader, folder, archive, self.archive_uris[name])
        if not copy:
            if name == MODEL_ARCHIVE:
                self._emit(f"host {leader}: {'no' if copy is None else 'no files in'} {folder}, so no {name}")
            return None
        return archive

    def _copy_out(self, leader: str, folder: str, archive: Path, uri: str) -> bool | None:
        """
        Pack ``leader``'s ``folder`` as ``archive`` from ``<engine> cp`` 's tar stream.

        Return True when packed, False when the folder is empty, None when the container has none.
        """
        copy = _read_output(
            [self._tool.engine, "cp", f"{self.containers[leader]}:{folder}", "-"],
            self.env,
            lambda out: pack_copied_folder(out, folder, archive, uri, self._stop.is_set),
            _COPY_OUT_TIMEOUT_S,
            archive.parent,
        )
        error = copy.error
        if error is not None or copy.returncode != 0:
            archive.unlink(missing_ok=True)
            self._raise_if_stopped()
        if isinstance(error, StagingCancelled):
            raise error
        if copy.timed_out:
            raise self._archive_error(f"{folder} was not copied out of host {leader} within {_COPY_OUT_TIMEOUT_S} s")
        if isinstance(error, StagingError):  # refused for what the copy holds
            raise self._archive_error(str(error)) from error
        if isinstance(error, OSError):  # the archive could not be written: the copy's end is ours
            raise self._archive_error(f"{archive.name} could not be packed: {error}") from error
        if copy.returncode != 0:  # the copy failed (a stream that is no tar is its consequence)
            if _NOT_IN_CONTAINER.search(copy.stderr_tail):
                return None
            raise self._archive_error(
                f"{folder} could not be copied out of host {leader} for {archive.name} "
                f"(exit {copy.returncode}): {copy.stderr_tail}",
                exit_code=copy.returncode if copy.returncode > 0 else 1,
            )
        if isinstance(error, tarfile.TarError):
            raise self._archive_error(
                f"the copy of {folder} out of host {leader} is no tar archive: {error}"
            ) from error
        if error is not None:
            raise error
        return copy.value

    def _archive_error(self, what: str, exit_code: int = 1) -> ComposeJobError:
        return ComposeJobError(
            f"{self.job.step} job {self.job.job_name} finished on all hosts, but {what}", exit_code=exit_code
        )

    def _raise_if_stopped(self) -> None:
        if self._stop.is_set():
            raise ComposeJobError(f"job {self.job.job_name} was {self._stop_reason}", exit_code=143)

    # ------------------------------------------------------------------ teardown
    def teardown(self) -> float:
        """Remove containers and network (idempotent); returns the seconds it took."""
        with self._teardown_lock:
            if self._torn_down or self.tool is None or not self._owned:
                return 0.0
            started = time.monotonic()
            if self._stop.is_set() or self._failed:
                # The job is over either way: end every host now rather than after the grace period.
                self._run([self._tool.engine, "kill", *self.containers.values()], _DOWN_TIMEOUT_S)
            proc = self._run(self._compose("down", "-v", "-t", str(self.stop_grace_s)), _DOWN_TIMEOUT_S)
            if proc.returncode != 0:
                log.warning(
                    "`%s down` exited %s: %s; removing by name",
                    self._tool.name,
                    proc.returncode,
                    proc.stderr.strip()[-500:],
                )
            self._remove_by_name(quiet=False)
            for log_proc in self._log_procs:
                if log_proc.poll() is None:
                    log_proc.terminate()
            for thread in self._log_threads:
                thread.join(timeout=5)
            self._torn_down = True
            self._release_guard()
            elapsed = time.monotonic() - started
            self._emit(f"Tore down {self.project} ({len(self.hosts)} containers, network) in {elapsed:.1f} s")
            return elapsed

    def _remove_by_name(self, *, quiet: bool) -> None:
        """Fallback teardown: force-remove our containers and network by name."""
        names = list(self.containers.values())
        proc = self._run([self._tool.engine, "rm", "-f", "-v", *names], _DOWN_TIMEOUT_S)
        leftovers = [n for n in names if self._exists("container", n)]
        if leftovers and not quiet:
            log.error("containers still present after teardown: %s (%s)", leftovers, proc.stderr.strip()[-300:])
        network = self.network
        if self._exists("network", network):
            # podman's -f also detaches stray containers; older docker CLIs lack the flag.
            force = ["-f"] if self._tool.engine == "podman" else []
            self._run([self._tool.engine, "network", "rm", *force, network], _DOWN_TIMEOUT_S)

    def _exists(self, kind: str, name: str) -> bool:
        proc = self._run([self._tool.engine, kind, "inspect", name], 60)
        return proc.returncode == 0

    def leftovers(self) -> list[str]:
        """Containers and network of this run that still exist (for tests and checks)."""
        if self.tool is None:
            return []
        names = [("container", n) for n in self.containers.values()]
        names.append(("network", self.network))
        return [name for kind, name in names if self._exists(kind, name)]
