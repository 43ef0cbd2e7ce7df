"""A real Airflow 3 deployment for tests: PostgreSQL 15, api-server, scheduler, triggerer, dag-processor.

:func:`start_deployment` brings up, on 127.0.0.1 only and on free ports:

* PostgreSQL 15 (Debian's server binaries, which are not on PATH) in a temporary data folder,
  run as the ``postgres`` system user when the tests run as root (PostgreSQL refuses root);
* ``airflow db migrate`` against it, then ``airflow api-server``, ``airflow scheduler``
  (LocalExecutor), ``airflow triggerer`` and ``airflow dag-processor``, with a temporary
  ``AIRFLOW_HOME``, the repo's ``dags/`` folder and ``GRAPHSTORM_RUNTIME_PYTHON`` in every
  component's environment, and the README's line in ``$AIRFLOW_HOME/config/airflow_local_settings.py``
  (``import graphstorm_provider.preload``: every component imports the GraphStorm operators and
  runs their warm-up at start). Scheduler and triggerer run with ``--skip-serve-logs``: Airflow's log
  server binds every interface; the api-server reads the task logs from the shared log folder.

and waits until ``/api/v2/monitor/health`` reports the metadatabase, scheduler, triggerer and DAG
processor healthy. :meth:`Deployment.stop` ends every component's process group and PostgreSQL,
whatever happened (also registered with :mod:`atexit`).

Auth: the api-server's SimpleAuthManager runs with ``simple_auth_manager_all_admins``; the REST
helpers still fetch a JWT from ``GET /auth/token`` and send it as ``Authorization: Bearer``, as a
client of a real deployment does. A browser gets its cookie from :meth:`Deployment.login_url`.

Helpers for tests (add more here, not in test modules): ``api`` (one REST call), ``airflow``
(the CLI against this deployment), ``wait_for_dag``, ``unpause``, ``trigger``, ``wait_for_run``,
``task_instances``, ``xcom``, ``task_log``, ``wait_for_task_state`` (e.g. ``deferred``), and
``sql`` (a query on the metadata database, for states the API does not show).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import scratch

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PG_USER = "postgres"
PG_DEFAULT_BINDIR = Path("/usr/lib/postgresql/15/bin")
COMPONENTS = ("api-server", "scheduler", "triggerer", "dag-processor")
# The README's "Running it in a real Airflow": the line a deployment adds to its local settings.
LOCAL_SETTINGS = "import graphstorm_provider.preload  # noqa: F401\n"
# [graphstorm] check_interval of the deployment: how often a deferred SageMaker task's trigger
# checks its job (the default, 30 s, would make the SageMaker test wait a minute longer).
SAGEMAKER_CHECK_INTERVAL_S = 10
HEALTHY_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
START_TIMEOUT_S = 600.0  # a loaded machine starts slowly; wait_healthy ends at once when a component exits
STOP_GRACE_S = 20.0
POLL_S = 2.0
REST_TIMEOUT_S = 60.0
REST_GET_ATTEMPTS = 3
# Airflow settings and AWS variables of the test process never leak into the deployment.
_NOT_INHERITED_PREFIXES = ("AIRFLOW", "_AIRFLOW", "AWS_", "PYTHONPATH")


class DeploymentError(RuntimeError):
    """A component did not start or a REST call failed; the message names the log to read."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path:
    """Where PostgreSQL 15's server binaries are (``pg_config --bindir``, else Debian's path)."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(out) / "initdb").is_file():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    if (PG_DEFAULT_BINDIR / "initdb").is_file():
        return PG_DEFAULT_BINDIR
    raise DeploymentError(
        "PostgreSQL 15 server binaries not found: `apt-get install -y postgresql-15` "
        "(scripts/setup_test_services.sh does it)"
    )


def _as_pg_user(argv: list[str]) -> list[str]:
    """Run ``argv`` as the ``postgres`` system user when we are root (initdb/postgres refuse root)."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", PG_USER, "--", *argv]


def _end_group(proc: subprocess.Popen, sig: int, grace: float) -> None:
    """Signal the process group led by ``proc``; after ``grace`` seconds, SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also what a component left behind in its group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@dataclass
class Deployment:
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    dags_folder: Path = REPO / "dags"
    pg_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    pg_root: Path | None = None
    _token: str | None = None
    _stopped: bool = False

    # ---- paths and environment ------------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def runs(self) -> Path:
        """Where the example DAGs write their outputs (``GRAPHSTORM_E2E_BASE_URI``)."""
        return self.root / "runs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.pg_port}/airflow"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED_PREFIXES)}
        env.update(
            {
                "PATH": os.pathsep.join([str(VENV_BIN), env.get("PATH", os.defpath)]),
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",  # 2 cores shared: few worker processes
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": self._secret("api-secret"),
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt-secret"),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "15",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "GRAPHSTORM_E2E_BASE_URI": f"file://{self.runs}",
                # How often the triggerer checks the SageMaker example's jobs (default 30 s).
                "AIRFLOW__GRAPHSTORM__CHECK_INTERVAL": str(SAGEMAKER_CHECK_INTERVAL_S),
            }
        )
        runtime = os.environ.get("GRAPHSTORM_RUNTIME_PYTHON")
        if runtime:
            env["GRAPHSTORM_RUNTIME_PYTHON"] = runtime
        env.update(self.extra_env)
        return env

    def _secret(self, name: str) -> str:
        path = self.root / f".{name}"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text()

    # ---- start / stop -------------------------------------------------------------------------
    def start(self) -> Deployment:
        atexit.register(self.stop)
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.runs.mkdir(exist_ok=True)
        (self.home / "config").mkdir(exist_ok=True)
        (self.home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
        self._start_postgres()
        self.airflow("db", "migrate", timeout=600)
        for component in COMPONENTS:
            argv = [str(VENV_BIN / "airflow"), component]
            if component == "api-server":
                argv += ["--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"]
            if component in ("scheduler", "triggerer"):
                argv.append("--skip-serve-logs")
            self._spawn(component, argv, self.env())
        self.wait_healthy()
        return self

    def stop(self) -> None:
        """End every component (process groups: TERM, grace, KILL), then PostgreSQL. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for name in reversed([n for n in self.procs if n != "postgres"]):
            _end_group(self.procs[name], signal.SIGTERM, STOP_GRACE_S)
        if "postgres" in self.procs:
            _end_group(self.procs["postgres"], signal.SIGINT, STOP_GRACE_S)  # SIGINT: fast shutdown

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # handed to the child
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def _start_postgres(self) -> None:
        bindir = postgres_bindir()
        # Its own folder under the system temp dir: the postgres user must reach it, and a test's
        # tmp_path and $TMPDIR (under the session's 0700 scratch folder) are out of its reach.
        pg_root = self.pg_root = Path(tempfile.mkdtemp(prefix="gs-deployment-pg-", dir=scratch.system_tmpdir()))
        data = pg_root / "data"
        pg_root.chmod(0o700)
        if os.geteuid() == 0:
            user = pwd.getpwnam(PG_USER)
            os.chown(pg_root, user.pw_uid, user.pw_gid)
        initdb = _as_pg_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ]
        )
        result = subprocess.run(initdb, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise DeploymentError(f"initdb failed: {result.stderr.strip()[-2000:]}")
        server = _as_pg_user(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-k",
                str(pg_root),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ]
        )
        proc = self._spawn("postgres", server, {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")})
        deadline = time.monotonic() + 60
        while True:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.pg_port)],
                check=False,
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DeploymentError(f"PostgreSQL did not start, see {self.root / 'postgres.log'}")
            time.sleep(0.3)
        create = subprocess.run(
            [
                str(bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                PG_USER,
                "-c",
                "CREATE DATABASE airflow",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if create.returncode != 0:
            raise DeploymentError(f"CREATE DATABASE failed: {create.stderr.strip()}")

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise DeploymentError(f"{name} exited with {proc.returncode}; see {self.root / (name + '.log')}")
            try:
                status, last = self.api("GET", "/api/v2/monitor/health", auth=False)
            except OSError as err:
                last = repr(err)
            else:
                if status == 200 and all((last.get(c) or {}).get("status") == "healthy" for c in HEALTHY_COMPONENTS):
                    return last
            time.sleep(POLL_S)
        raise DeploymentError(f"deployment not healthy after {timeout:.0f} s: {last}; logs in {self.root}")

    # ---- REST and CLI -------------------------------------------------------------------------
    def token(self) -> str:
        """A JWT from ``GET /auth/token`` (SimpleAuthManager, all admins), cached."""
        if self._token is None:
            status, body = self.api("GET", "/auth/token", auth=False)
            if status not in (200, 201):
                raise DeploymentError(f"GET /auth/token answered {status}: {body}")
            self._token = body["access_token"]
        return self._token

    def login_url(self, next_path: str) -> str:
        """A URL that sets the browser's JWT cookie and then opens ``next_path``."""
        return f"{self.api_url}/auth/token/login?next={urllib.parse.quote(self.api_url + next_path, safe='')}"

    def api(
        self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = REST_TIMEOUT_S
    ) -> tuple[int, Any]:
        """One REST call; returns (HTTP status, decoded JSON or text). Never raises for 4xx/5xx.

        A GET that times out or loses its connection is tried again (``REST_GET_ATTEMPTS``): on two
        shared cores the API server sometimes answers slowly while a GraphStorm step runs.
        """
        attempts = REST_GET_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._api_once(method, path, body, auth=auth, timeout=timeout)
            except OSError:
                if attempt == attempts:
                    raise
                time.sleep(POLL_S)
        raise AssertionError("unreachable")

    def _api_once(self, method: str, path: str, body: Any, *, auth: bool, timeout: float) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(self.api_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201)) -> Any:
        status, answer = self.api(method, path, body)
        if status not in expect:
            raise DeploymentError(f"{method} {path} answered {status}: {answer}")
        return answer

    def airflow(
        self, *args: str, timeout: float = 300, check: bool = True, answer: str | None = None
    ) -> subprocess.CompletedProcess:
        """The ``airflow`` CLI against this deployment (its database and configuration); ``answer`` goes to its prompt."""
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            input=answer,
            check=False,
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise DeploymentError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query on the metadata database (``psql``, tab-separated)."""
        out = subprocess.run(
            [
                str(postgres_bindir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                PG_USER,
                "-d",
                "airflow",
                "-At",
                "-F",
                "\t",
                "-c",
                query,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    # ---- DAGs, runs, tasks ----------------------------------------------------------------------
    def import_errors(self) -> list[dict]:
        return self.ok("GET", "/api/v2/importErrors")["import_errors"]

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.ok("GET", "/api/v2/dags?limit=100")["dags"]}

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 180) -> set[str]:
        """Wait until the DAG processor has parsed every DAG in ``dag_ids`` (or reported an import error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            present = self.dag_ids()
            if dag_ids <= present or self.import_errors():
                return present
            time.sleep(POLL_S)
        return self.dag_ids()

    def unpause(self, dag_id: str) -> None:
        self.ok("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict, logical_date: str | None = None) -> tuple[int, Any]:
        """``POST /dags/{id}/dagRuns`` as the trigger form does; ``logical_date`` is required (may be null)."""
        return self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date, "conf": conf})

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        """Wait until the run is ``success`` or ``failed``; returns the run."""
        deadline = time.monotonic() + timeout
        quoted = urllib.parse.quote(run_id, safe="")
        while True:
            run = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")
            if run["state"] in ("success", "failed") or time.monotonic() > deadline:
                return run
            time.sleep(POLL_S)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        quoted = urllib.parse.quote(run_id, safe="")
        answer = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 300
    ) -> str | None:
        """Wait until the task is in one of ``states`` (e.g. ``{"deferred"}``); returns the state seen last."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.task_instances(dag_id, run_id).get(task_id, {}).get("state")
            if state in states:
                return state
            time.sleep(1)
        return state

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        quoted = urllib.parse.quote(run_id, safe="")
        answer = self.ok(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/xcomEntries/{key}?deserialize=true"
        )
        value = answer["value"]
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def failure_summary(self, dag_id: str, run_id: str, tail_lines: int = 40) -> str:
        """Task states plus the log tail of each failed task: what an assertion message needs."""
        tis = self.task_instances(dag_id, run_id)
        parts = [str({t: ti["state"] for t, ti in tis.items()})]
        for task_id, ti in tis.items():
            if ti["state"] == "failed":
                log = self.task_log(dag_id, run_id, task_id, max(1, ti.get("try_number") or 1))
                parts.append(f"--- {task_id} log (tail) ---\n" + "\n".join(log.splitlines()[-tail_lines:]))
        return "\n".join(parts)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log as text: each structured event's level and ``event``, one a line, and for a
        failed task the exception Airflow recorded (``error_detail``) as ``<type>: <message>`` lines."""
        quoted = urllib.parse.quote(run_id, safe="")
        answer = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/logs/{try_number}")
        content = answer.get("content") if isinstance(answer, dict) else answer
        if isinstance(content, list):
            return "\n".join(_log_line(e) for e in content)
        return str(content)


def _log_line(event: Any) -> str:
    if not isinstance(event, dict):
        return str(event)
    line = f"{event.get('level', '')} {event.get('event', '')}"
    for error in event.get("error_detail") or []:
        if isinstance(error, dict):
            line += f"\n{event.get('level', '')} {error.get('exc_type')}: {error.get('exc_value')}"
    return line


def start_deployment(extra_env: dict[str, str] | None = None, root: Path | None = None) -> Deployment:
    """Start a deployment in a new temporary folder; the caller must ``stop()`` it (finally)."""
    root = root or Path(tempfile.mkdtemp(prefix="gs-deployment-"))
    deployment = Deployment(root=root, extra_env=dict(extra_env or {}))
    try:
        return deployment.start()
    except BaseException:
        deployment.stop()
        raise


def remove(deployment: Deployment) -> None:
    """Delete the deployment's folder (after ``stop``), unless ``GRAPHSTORM_KEEP_DEPLOYMENT`` is set."""
    if not os.environ.get("GRAPHSTORM_KEEP_DEPLOYMENT"):
        shutil.rmtree(deployment.root, ignore_errors=True)
        if deployment.pg_root is not None:
            shutil.rmtree(deployment.pg_root, ignore_errors=True)
