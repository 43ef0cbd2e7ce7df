"""Shared test fixtures: a real AWS endpoint (moto server over HTTP) and a throwaway Airflow home.

Everything temporary a test process and its children write (the Airflow home, the moto server's
log, ``tmp_path``, a launcher's ``torchelastic_*`` folders) goes into one scratch folder, its
``TMPDIR`` (tests/scratch.py): removed when the session passes; when it fails, kept, and the
terminal summary names it.

Fixtures
--------
``moto_server`` (session)
    Starts ``moto_server`` as a subprocess on a free 127.0.0.1 port and yields its endpoint URL
    (``http://127.0.0.1:<port>``). A separate process, not an in-process mock: every client
    (boto3 in the test, an Airflow task, a ``gs-sagemaker`` subprocess, an entry point running
    in the GraphStorm runtime venv) talks to it over HTTP exactly as it would to AWS.

``aws_env`` (function)
    Points everything at the moto server for one test and resets the server's state first:
    sets fake credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``),
    ``AWS_DEFAULT_REGION``/``AWS_REGION``, ``AWS_ENDPOINT_URL`` (boto3 >= 1.28 honours it for
    every service, so subprocesses and entry points need nothing else), and the Airflow
    connection ``aws_default`` as ``AIRFLOW_CONN_AWS_DEFAULT`` (JSON, with ``endpoint_url`` and
    ``region_name`` in ``extra``). Yields an :class:`AwsEnv` with ``endpoint_url``, ``region``,
    ``client(service)`` and ``bucket(name)`` helpers. A test that must prove the Airflow
    connection (not the env var) carries the endpoint can ``monkeypatch.delenv("AWS_ENDPOINT_URL")``.

What the server received
    moto's describe_* answers drop some request fields (a processing job's ``ProcessingResources``
    and ``Environment``, a training job's ``Environment``), so the server runs with moto's request
    recorder on: ``aws_env.received("SageMaker.CreateTrainingJob")`` returns the JSON bodies of the
    requests with that ``X-Amz-Target`` the server got during the current test, exactly as sent.

``running_jobs_proxy`` (function, needs ``aws_env``)
    moto marks SageMaker jobs ``Completed`` the moment they are created. This HTTP proxy in front of
    the moto server reports each job ``InProgress`` in describe answers until a ``Stop*`` request for
    it went through (then ``Stopped``; ``StopTrainingJob``, which moto lacks, is answered by the
    proxy) or the test calls ``proxy.finish(name, "Completed"|"Failed")``, so waiting, timeouts,
    ``on_kill``, re-attaching and failed jobs can be exercised. Like SageMaker (unlike moto) it
    refuses a second create of one name with ``ResourceInUse``; ``proxy.drop_reply_of(target)``
    loses one reply. Point a client (or the connection) at ``proxy.url``; ``proxy.targets`` lists
    the ``X-Amz-Target`` of every request it received.
    To let held jobs complete, call ``proxy.release()`` (on demand, every job) or set
    ``release_after_describes=N`` (each job: its N-th describe answer and later ones pass moto's
    ``Completed`` through); ``proxy.describes`` counts the describe requests seen (all jobs).

``module_running_jobs_proxy`` (module)
    The same proxy for processes with an environment of their own (a deployment's components):
    moto reset once, a :class:`ProxiedAws` with the ``proxy``, moto's ``endpoint_url``, ``client``,
    ``received`` and ``environment`` - what :func:`aws_environment` gives (credentials, region,
    ``AWS_ENDPOINT_URL`` and ``AIRFLOW_CONN_AWS_DEFAULT``), with only SageMaker sent to the proxy.

``airflow_home`` (session)
    The throwaway ``AIRFLOW_HOME`` (set for the whole session at import of this conftest, before
    anything imports airflow) with ``airflow db migrate`` done once, lazily, on first use. It has
    a ``dags`` folder (``AIRFLOW__CORE__DAGS_FOLDER``): ``dag.test()`` on Airflow 3 needs the DAG
    to come from a file in a DAGs folder, see :func:`load_dag`.

``load_dag(dag_file_text, dag_id)`` (function, needs ``airflow_home``)
    Writes the text into the DAGs folder under a unique file name, parses it with ``DagBag``
    and returns the DAG, ready for ``dag.test()``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# --- Scratch folder: every temporary file of this process and its children goes there --------
# (tests/scratch.py): removed when the session passes, kept and named when it fails.
from tests import scratch  # noqa: E402

_SCRATCH = scratch.make()

# --- Airflow home: must be in the environment before the first `import airflow` -------------
# Airflow reads its configuration once at import, so the session's AIRFLOW_HOME is chosen here,
# at conftest import time, not inside a fixture.
_AIRFLOW_HOME = _SCRATCH / scratch.AIRFLOW_HOME_DIR
(_AIRFLOW_HOME / "dags").mkdir(parents=True)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_AIRFLOW_HOME / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)


# --- Parallel runs: which tests may share the machine ----------------------------------------
# scripts/run_tests.sh runs the suite in pytest-xdist workers with ``--dist loadgroup``; the groups
# are tests/parallel_groups.py's, made by its scheduler (a module of its own: importing this
# conftest again under another name would choose a second Airflow home for the whole process).
from tests import parallel_groups  # noqa: E402


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent with ``-p no:xdist``
def pytest_xdist_make_scheduler(config, log):
    return parallel_groups.make_scheduler(config, log)


_SCRATCH_KEPT: list[str] = []  # the line the terminal summary prints when the scratch folder is kept


@pytest.hookimpl(trylast=True)  # after pytest's own clean-up of its tmp_path folders, which live in the scratch
def pytest_sessionfinish(session, exitstatus):
    message = scratch.finish(_SCRATCH, passed=exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED))
    _SCRATCH_KEPT.extend([message] if message else [])


def pytest_terminal_summary(terminalreporter):
    # A pytest-xdist worker prints no summary: its folder is inside the controller's, which is named.
    for line in _SCRATCH_KEPT:
        terminalreporter.write_line(line)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server():
    """Endpoint URL of a moto server subprocess shared by the whole session."""
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="moto-server-", suffix=".log", delete=False)
    recording = Path(tempfile.mkdtemp(prefix="moto-recording-")) / "requests.jsonl"
    proc = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(recording)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not start, see {log.name}")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def reset_moto(endpoint_url: str) -> None:
    """Forget every bucket, job, ... the server holds, and its request recording (moto's own API)."""
    for path in ("/moto-api/reset", "/moto-api/recorder/reset-recording"):
        req = urllib.request.Request(f"{endpoint_url}{path}", method="POST")
        urllib.request.urlopen(req, timeout=10).close()


def received_requests(endpoint_url: str, target: str) -> list[dict]:
    """JSON bodies of the recorded requests whose ``X-Amz-Target`` header is ``target``."""
    with urllib.request.urlopen(f"{endpoint_url}/moto-api/recorder/download-recording", timeout=10) as r:
        lines = r.read().decode().splitlines()
    bodies = []
    for line in lines:
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        if headers.get("x-amz-target") != target:
            continue
        body = entry["body"]
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode()
        bodies.append(json.loads(body))
    return bodies


@dataclass(frozen=True)
class AwsEnv:
    endpoint_url: str
    region: str

    def client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def bucket(self, name: str) -> str:
        """Create a bucket on the moto server and return ``s3://name``."""
        self.client("s3").create_bucket(Bucket=name)
        return f"s3://{name}"

    def received(self, target: str) -> list[dict]:
        """Bodies of the ``target`` requests (e.g. ``SageMaker.CreateProcessingJob``) sent this test."""
        return received_requests(self.endpoint_url, target)


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> AwsEnv:
    """Fake credentials, region, endpoint and Airflow connection, all pointing at a fresh moto."""
    reset_moto(moto_server)
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    # Never let a developer's real profile/config leak into a test.
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    connection = {
        "conn_type": "aws",
        "login": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "password": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": moto_server, "region_name": REGION},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    return AwsEnv(endpoint_url=moto_server, region=REGION)


class RunningJobsProxy:
    """HTTP proxy in front of moto that reports created jobs as ``InProgress`` until stopped.

    moto marks SageMaker jobs ``Completed`` the moment they are created, so a job that is still
    running - the only kind ``on_kill`` has anything to do with - cannot be had from moto
    alone. Every request still goes to moto over HTTP; the proxy only adds what SageMaker does
    and moto does not:

    * the status in describe answers is rewritten per job: ``InProgress`` until the job was
      stopped (then ``Stopped``) or the test called ``finish(name, "Completed"|"Failed")``;
    * ``StopTrainingJob`` (moto has none) is answered here, as SageMaker does: ``{}``;
    * a second ``Create*`` with a name already created is refused with ``ResourceInUse``, as
      SageMaker does (moto would silently replace the job);
    * ``drop_reply_of(target)``: the next such request reaches moto but its reply is lost (the
      connection is closed), as when a reply is lost on the network; botocore then retries;
    * held ``InProgress`` jobs complete (moto's own answer passes through) after :meth:`release`,
      or from the ``release_after_describes``-th describe of that job on.

    ``proxy.targets`` lists the ``X-Amz-Target`` of every request it received.

    :param upstream: the moto server's URL.
    :param release_after_describes: report each job ``InProgress`` in its first N-1 describe
        answers only (``None``: until :meth:`release`, ``finish`` or a ``Stop*`` request). May be set later.
    """

    def __init__(self, upstream: str, release_after_describes: int | None = None) -> None:
        self.upstream = upstream
        self.targets: list[str] = []
        self.stopped = threading.Event()  # set at the first successful Stop*
        self.statuses: dict[str, str] = {}  # job name -> status the proxy reports
        self.created: set[str] = set()
        self._processing_resources: dict[str, object] = {}  # job name -> its create request's ProcessingResources
        self._drop: set[str] = set()
        self.released = threading.Event()
        self.release_after_describes = release_after_describes
        self.describes = 0
        self._describes_per_job: dict[str, int] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def answer(self, status: int, payload: bytes, content_type: str = "application/x-amz-json-1.1"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                proxy.targets.append(target)
                name = proxy._job_name(target, body)
                if target.startswith("SageMaker.Create") and name:
                    with proxy._lock:
                        taken = name in proxy.created
                        proxy.created.add(name)
                        proxy.statuses.setdefault(name, "InProgress")
                    if taken:
                        error = {"__type": "ResourceInUse", "message": f"Job {name} already exists."}
                        return self.answer(400, json.dumps(error).encode())
                    if target == "SageMaker.CreateProcessingJob":
                        proxy._processing_resources[name] = json.loads(body).get("ProcessingResources")
                if target == "SageMaker.StopTrainingJob":  # moto has no StopTrainingJob
                    proxy._stopped(name)
                    return self.answer(200, b"{}")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, payload = answer.status, answer.read()
                        content_type = answer.headers.get("Content-Type", "application/x-amz-json-1.1")
                except urllib.error.HTTPError as err:
                    status, payload = err.code, err.read()
                    content_type = err.headers.get("Content-Type", "application/x-amz-json-1.1")
                with proxy._lock:
                    drop = target in proxy._drop
                    proxy._drop.discard(target)
                if drop:  # the reply is lost: close the connection without answering
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if target.startswith("SageMaker.Stop") and status == 200:
                    proxy._stopped(name)
                if (
                    target == "SageMaker.DescribeProcessingJob"
                    and status == 200
                    and name in proxy._processing_resources
                ):
                    # SageMaker's DescribeProcessingJob returns the job's ProcessingResources; moto's does not.
                    described = json.loads(payload)
                    described.setdefault("ProcessingResources", proxy._processing_resources[name])
                    payload = json.dumps(described, default=str).encode()
                if (
                    target.startswith("SageMaker.Describe")
                    and status == 200
                    and name in proxy.statuses
                    and proxy._rewrites(name)
                ):
                    described = json.loads(payload)
                    key = next((k for k in described if k.endswith("JobStatus")), None)
                    if key:
                        described[key] = proxy.statuses[name]
                        described.pop("SecondaryStatus", None)
                        if proxy.statuses[name] == "Failed":
                            described["FailureReason"] = "AlgorithmError: injected by the test"
                        payload = json.dumps(described, default=str).encode()
                self.answer(status, payload, content_type)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def _job_name(target: str, body: bytes) -> str | None:
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            return None
        return fields.get("TrainingJobName") or fields.get("ProcessingJobName")

    def _stopped(self, name: str | None) -> None:
        with self._lock:
            if name:
                self.statuses[name] = "Stopped"
        self.stopped.set()

    def finish(self, name: str, status: str) -> None:
        """From now on report job ``name`` as ``status`` (``Completed``, ``Failed``, ``Stopping``...)."""
        with self._lock:
            self.statuses[name] = status

    def drop_reply_of(self, target: str) -> None:
        """Lose the reply to the next request with this ``X-Amz-Target`` (it still reaches moto)."""
        with self._lock:
            self._drop.add(target)

    def release(self) -> None:
        """From now on held jobs finish: describe answers of ``InProgress`` jobs say what moto says."""
        self.released.set()

    def _rewrites(self, name: str) -> bool:
        """Count one describe of job ``name``; whether its answer gets the proxy's status."""
        with self._lock:
            self.describes += 1
            seen = self._describes_per_job[name] = self._describes_per_job.get(name, 0) + 1
            status = self.statuses.get(name)
        if status != "InProgress":
            return True  # stopped, failed or finished by the test: always the proxy's word
        limit = self.release_after_describes
        return not (self.released.is_set() or (limit is not None and seen >= limit))

    def __enter__(self) -> RunningJobsProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def running_jobs_proxy(aws_env):
    """A :class:`RunningJobsProxy` in front of this test's moto server."""
    with RunningJobsProxy(aws_env.endpoint_url) as proxy:
        yield proxy


def aws_environment(endpoint_url: str, sagemaker_endpoint_url: str | None = None) -> dict[str, str]:
    """What ``aws_env`` sets, as a dict: fake credentials, region, endpoint, ``aws_default`` connection.

    For processes the test starts with an environment of their own (a deployment's components).
    ``sagemaker_endpoint_url`` (a :class:`RunningJobsProxy`) serves the connection's SageMaker
    clients only (the connection's ``service_config``); S3, logs, ... go to ``endpoint_url``.
    """
    extra: dict = {"endpoint_url": endpoint_url, "region_name": REGION}
    if sagemaker_endpoint_url:
        extra["service_config"] = {"sagemaker": {"endpoint_url": sagemaker_endpoint_url}}
    connection = {
        "conn_type": "aws",
        "login": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "password": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "extra": extra,
    }
    return {
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
    }


@dataclass
class ProxiedAws:
    """A module's moto server with a :class:`RunningJobsProxy` for SageMaker (see ``aws_environment``)."""

    proxy: RunningJobsProxy
    endpoint_url: str  # moto itself (for the test's own boto3 clients)
    environment: dict[str, str]

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def received(self, target: str) -> list[dict]:
        return received_requests(self.endpoint_url, target)


@pytest.fixture(scope="module")
def module_running_jobs_proxy(moto_server):
    """A :class:`ProxiedAws` shared by one module (moto reset at its start), e.g. by a deployment."""
    reset_moto(moto_server)
    with RunningJobsProxy(moto_server) as proxy:
        yield ProxiedAws(
            proxy=proxy,
            endpoint_url=moto_server,
            environment=aws_environment(moto_server, sagemaker_endpoint_url=proxy.url),
        )


_MIGRATED = False


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's AIRFLOW_HOME, with its metadata database migrated (once)."""
    global _MIGRATED
    if not _MIGRATED:
        subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"],
            check=True,
            capture_output=True,
            env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        _MIGRATED = True
    return _AIRFLOW_HOME


@pytest.fixture
def load_dag(airflow_home):
    """``load_dag(text, dag_id)``: write a DAG file into the DAGs folder and parse it with DagBag."""
    written: list[Path] = []

    def _load(dag_file_text: str, dag_id: str):
        from airflow.dag_processing.dagbag import DagBag

        path = airflow_home / "dags" / f"test_{uuid.uuid4().hex[:12]}.py"
        path.write_text(dag_file_text)
        written.append(path)
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(dag_id)

    yield _load
    for path in written:
        path.unlink(missing_ok=True)


# Container fixtures (compose backend tests): defined once here so the session-scoped image is
# built once for every module that uses it.
from tests.compose_engine import compose_tool, job_image, probe_image  # noqa: E402,F401
