"""The local backend (instance_type="local", one host): layout, environment, staging, uploads,
failures, and that stopping or killing a job leaves no process behind.

Entry points here are tiny stand-ins written into a temporary folder that
``GRAPHSTORM_ENTRYPOINTS_DIR`` points at; the runtime python is this interpreter (explicit
``runtime_python`` skips the graphstorm check). S3 is the moto server over HTTP.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from graphstorm_provider import config
from graphstorm_provider.execution.local import LocalJobError, LocalJobRunner, LocalSpecError
from graphstorm_provider.jobs.request import JobRequest
from tests.process_trees import TREE_ENTRY, airflow_tasks_test, end_tree, live_processes_with, with_default_sigint

REPO = Path(__file__).resolve().parent.parent

ENTRYPOINTS = {
    # Reports what it sees (argv, cwd, env, layout) into the model dir, which SageMaker (and the
    # local backend) ships as model.tar.gz.
    "report_entry.py": """
        import json, os, sys, pathlib
        opt = pathlib.Path(os.environ["GRAPHSTORM_OPT_ML"])
        files = sorted(str(p.relative_to(opt)) for p in opt.rglob("*") if p.is_file())
        report = {
            "argv": sys.argv[1:], "cwd": os.getcwd(), "executable": sys.executable,
            "env": dict(os.environ), "files": files,
            "channel_text": {p.name: p.read_text() for p in (opt / "input" / "data").rglob("*") if p.is_file()},
            "resourceconfig": json.loads((opt / "input/config/resourceconfig.json").read_text()),
        }
        print("hello on stdout")
        print("hello on stderr", file=sys.stderr)
        model = pathlib.Path(os.environ["SM_MODEL_DIR"])
        (model / "report.json").write_text(json.dumps(report))
        (model / "nested").mkdir()
        (model / "nested" / "weights.bin").write_bytes(b"w" * 10)
    """,
    # A processing job: reads its input from the working directory, writes the output folder.
    "upper_entry.py": """
        import os, pathlib, sys
        out = pathlib.Path(os.environ["GRAPHSTORM_OPT_ML"]) / "processing" / "output"
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(pathlib.Path.cwd().rglob("*.txt")):
            target = out / path.relative_to(pathlib.Path.cwd())
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text().upper())
        (out / "args.txt").write_text(" ".join(sys.argv[1:]))
    """,
    # Fails the way a container does: a failure file, noise on stderr, a non-zero exit.
    "fail_entry.py": """
        import os, pathlib, sys
        for i in range(200):
            print(f"stderr line {i}", file=sys.stderr)
        failure = pathlib.Path(os.environ["GRAPHSTORM_OPT_ML"]) / "output" / "failure"
        failure.write_text("graph config is invalid")
        sys.exit(int(sys.argv[1]))
    """,
    # An adversarial process tree (see process_trees.py).
    "tree_entry.py": TREE_ENTRY,
    # A job that exits at once but leaves a daemon behind (the container stops with its main process).
    "leaky_entry.py": """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", sys.argv[1]],
                         start_new_session=True)
        print("done")
    """,
}


# ---------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _work_dirs_under_tmp_path(tmp_path, monkeypatch):
    """Failed and stopped jobs keep their work dirs: keep this module's out of the real /tmp."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))  # for the runners started in subprocesses


@pytest.fixture
def entrypoints(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "entrypoints"
    folder.mkdir()
    for name, body in ENTRYPOINTS.items():
        (folder / name).write_text(textwrap.dedent(body))
    monkeypatch.setenv(config.ENTRYPOINTS_DIR_ENV, str(folder))
    return folder


def training_job(
    name: str, script: str, args=(), channels=None, output_path=None, environment=None, count: int = 1
) -> JobRequest:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "graphstorm:sm",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", f"/opt/ml/code/{script}"],
            "ContainerArguments": list(args),
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": count, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Environment": environment or {},
    }
    if channels:
        request["InputDataConfig"] = [
            {
                "ChannelName": ch,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for ch, uri in channels.items()
        ]
    if output_path:
        request["OutputDataConfig"] = {"S3OutputPath": output_path}
    return JobRequest(kind="training", step="train", request=request, region="us-east-1")


def processing_job(name: str, script: str, inputs: dict[str, str], output_uri: str, args=()) -> JobRequest:
    request = {
        "ProcessingJobName": name,
        "AppSpecification": {
            "ImageUri": "graphstorm:sm",
            "ContainerEntrypoint": ["python3", f"/opt/ml/code/{script}"],
            "ContainerArguments": list(args),
        },
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 30}},
        "ProcessingInputs": [
            {
                "InputName": name_,
                "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"},
            }
            for name_, (uri, local) in ((n, v) for n, v in inputs.items())
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "Environment": {"GS_STEP": "gconstruct"},
    }
    return JobRequest(kind="processing", step="gconstruct", request=request, region="us-east-1")


def runner(job: JobRequest, **kwargs) -> LocalJobRunner:
    kwargs.setdefault("runtime_python", sys.executable)
    return LocalJobRunner(job, **kwargs)


def wait_until(predicate, what: str, limit: float = 60.0) -> None:
    """Wait for a condition (bounded, so a broken test fails instead of hanging)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def s3_object(aws_env, uri: str) -> bytes:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return aws_env.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


# ---------------------------------------------------------------------------------------------
def test_training_job_gets_sagemaker_layout_env_channels_and_model_upload(entrypoints, aws_env, tmp_path, caplog):
    bucket = aws_env.bucket("gs-local")
    s3 = aws_env.client("s3")
    s3.put_object(Bucket="gs-local", Key="graph/part0/nodes.txt", Body=b"from s3")
    s3.put_object(Bucket="gs-local", Key="graph/meta.json", Body=b"{}")
    s3.put_object(Bucket="gs-local", Key="graph-other/not-mine.txt", Body=b"sibling prefix")
    local_yaml = tmp_path / "conf" / "train.yaml"
    local_yaml.parent.mkdir()
    local_yaml.write_text("from file")
    args = ["--graph-name", "g", "--", "--node-feat-name", "paper:feat", "author:feat", "--num-epochs", "2"]
    job = training_job(
        "train-1",
        "report_entry.py",
        args,
        channels={"graph": f"{bucket}/graph", "conf": local_yaml.parent.as_uri()},
        output_path=f"{bucket}/models",
        environment={"GS_FROM_REQUEST": "yes"},
    )

    with caplog.at_level(logging.INFO):
        result = runner(job, env={"GS_FROM_OPERATOR": "op"}).run()

    assert result.uploaded == [f"{bucket}/models/train-1/output/model.tar.gz"]
    with tarfile.open(fileobj=io.BytesIO(s3_object(aws_env, result.uploaded[0]))) as tar:
        assert sorted(tar.getnames()) == ["nested", "nested/weights.bin", "report.json"]
        report = json.load(tar.extractfile("report.json"))
    env = report["env"]
    opt_ml = env["GRAPHSTORM_OPT_ML"]
    # The request's arguments arrive verbatim (multi-value flags after "--" included).
    assert report["argv"] == args
    assert report["executable"] == sys.executable
    # SageMaker's contract, one host called algo-1.
    assert json.loads(env["SM_TRAINING_ENV"])["hosts"] == ["algo-1"]
    assert json.loads(env["SM_TRAINING_ENV"])["current_host"] == "algo-1"
    assert report["resourceconfig"]["hosts"] == ["algo-1"]
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_NUM_GPUS"] == "0"
    assert env["SM_MODEL_DIR"] == f"{opt_ml}/model"
    assert env["SM_CHANNEL_GRAPH"] == f"{opt_ml}/input/data/graph"
    assert env["SM_CHANNEL_CONF"] == f"{opt_ml}/input/data/conf"
    assert env["MASTER_ADDR"] == "127.0.0.1"
    assert env["TRAINING_JOB_NAME"] == "train-1"
    # Environment: the request's, the operator's, the endpoint; never Airflow's own settings.
    assert env["GS_FROM_REQUEST"] == "yes"
    assert env["GS_FROM_OPERATOR"] == "op"
    assert env["AWS_ENDPOINT_URL"] == aws_env.endpoint_url
    assert not [k for k in env if k.startswith("AIRFLOW")]
    # Channels staged like S3Prefix File mode: paths relative to the prefix, siblings excluded.
    assert "input/data/graph/part0/nodes.txt" in report["files"]
    assert "input/data/graph/meta.json" in report["files"]
    assert not any("not-mine" in f for f in report["files"])
    assert report["channel_text"]["train.yaml"] == "from file"
    assert "input/config/hyperparameters.json" in report["files"]
    # The entry point's output went to the task log; credentials never did.
    assert "[algo-1] hello on stdout" in caplog.text
    assert "[algo-1] hello on stderr" in caplog.text
    assert "testing" not in caplog.text.replace("gs-local", "")
    # A temporary work directory is removed after success.
    assert result.work_dir is None
    assert not Path(opt_ml).exists()


def test_processing_job_stages_inputs_into_cwd_and_uploads_outputs(entrypoints, aws_env, tmp_path):
    bucket = aws_env.bucket("gs-proc")
    aws_env.client("s3").put_object(Bucket="gs-proc", Key="raw/edges/a.txt", Body=b"edges")
    local_raw = tmp_path / "raw"
    (local_raw / "nodes").mkdir(parents=True)
    (local_raw / "nodes" / "n.txt").write_text("nodes")
    inputs = {
        "s3-part": (f"{bucket}/raw", "/opt/ml/processing/input"),
        "file-part": (local_raw.as_uri(), "/opt/ml/processing/input"),
    }

    result = runner(processing_job("gc-1", "upper_entry.py", inputs, f"{bucket}/out", ["--graph-name", "g"])).run()

    assert result.uploaded == [f"{bucket}/out"]
    assert s3_object(aws_env, f"{bucket}/out/edges/a.txt") == b"EDGES"
    assert s3_object(aws_env, f"{bucket}/out/nodes/n.txt") == b"NODES"
    assert s3_object(aws_env, f"{bucket}/out/args.txt") == b"--graph-name g"

    # The same job with file:// everywhere.
    out_dir = tmp_path / "out"
    runner(
        processing_job(
            "gc-2", "upper_entry.py", {"in": (local_raw.as_uri(), "/opt/ml/processing/input")}, out_dir.as_uri()
        )
    ).run()
    assert (out_dir / "nodes" / "n.txt").read_text() == "NODES"


def test_failure_reports_exit_code_failure_reason_and_stderr_tail_and_keeps_work_dir(entrypoints, tmp_path):
    job = training_job("fail-1", "fail_entry.py", ["7"], output_path=(tmp_path / "models").as_uri())
    run = runner(job)
    with pytest.raises(LocalJobError) as info:
        run.run()
    err = info.value
    assert err.exit_code == 7
    assert err.failure_reason == "graph config is invalid"
    assert err.stderr_tail[-1] == "stderr line 199"
    assert "stderr line 0" not in err.stderr_tail
    assert "exit code 7" in str(err)
    assert str(run.work_dir) in str(err)
    assert (run.work_dir / "opt" / "ml" / "output" / "failure").is_file()  # kept for debugging
    assert not (tmp_path / "models").exists()  # nothing uploaded after a failure


def test_given_work_dir_is_kept_and_not_reused(entrypoints, tmp_path):
    job = training_job("keep-1", "report_entry.py", output_path=(tmp_path / "models").as_uri())
    result = runner(job, work_dir=tmp_path / "wd").run()
    assert result.work_dir == (tmp_path / "wd").resolve()
    assert (tmp_path / "wd" / "opt" / "ml" / "model" / "report.json").is_file()
    assert (tmp_path / "models" / "keep-1" / "output" / "model.tar.gz").is_file()
    with pytest.raises(LocalSpecError, match="work_dir"):
        runner(job, work_dir=tmp_path / "wd").run()


def test_multi_host_is_refused_with_a_pointer_to_the_compose_backend(entrypoints):
    with pytest.raises(LocalSpecError, match="compose backend") as info:
        runner(training_job("two-hosts", "report_entry.py", count=2))
    assert "shared memory" in str(info.value)


def test_unknown_entry_point_and_bad_uri_fail_before_anything_runs(entrypoints, tmp_path):
    with pytest.raises(LocalSpecError, match="nope_entry.py"):
        runner(training_job("missing", "nope_entry.py"))
    job = training_job("bad-uri", "report_entry.py", channels={"graph": "http://example.com/x"})
    with pytest.raises(ValueError, match="neither an s3:// nor a file://"):
        runner(job).run()


def test_entry_point_starts_with_default_signal_dispositions(entrypoints, tmp_path):
    """Python ignores SIGPIPE, and an ignored signal survives exec: the job must not inherit that."""
    out = tmp_path / "sigign"
    job = training_job("signals", "report_entry.py")
    job.request["AlgorithmSpecification"]["ContainerEntrypoint"] = [
        "/bin/sh",
        "-c",
        f"grep SigIgn /proc/$$/status > {out}",
    ]
    runner(job).run()
    ignored = int(out.read_text().split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGXFSZ - 1))


def test_job_ends_processes_its_entry_point_leaves_behind(entrypoints):
    marker = f"gs-leak-{uuid.uuid4().hex}"
    runner(training_job("leaky", "leaky_entry.py", [marker])).run()
    assert live_processes_with(marker) == set()


def test_max_runtime_stops_the_job_like_sagemaker(entrypoints):
    marker = f"gs-maxrun-{uuid.uuid4().hex}"
    job = training_job("slow", "tree_entry.py", [marker])
    job.request["StoppingCondition"]["MaxRuntimeInSeconds"] = 3
    with pytest.raises(LocalJobError, match="MaxRuntimeInSeconds=3"):
        runner(job, stop_grace_seconds=1).run()
    assert live_processes_with(marker) == set()


def test_staging_single_object_and_unsafe_keys(aws_env, tmp_path):
    from graphstorm_provider.execution.staging import Stager, StagingError

    bucket = aws_env.bucket("gs-stage")
    s3 = aws_env.client("s3")
    s3.put_object(Bucket="gs-stage", Key="conf/train.yaml", Body=b"yaml")
    s3.put_object(Bucket="gs-stage", Key="conf/train.yaml.bak", Body=b"old")
    s3.put_object(Bucket="gs-stage", Key="bad/../../evil.txt", Body=b"evil")
    stager = Stager({"AWS_ENDPOINT_URL": aws_env.endpoint_url, "AWS_REGION": aws_env.region})
    # A URI naming one object is that object only, named by its basename.
    assert stager.download(f"{bucket}/conf/train.yaml", tmp_path / "one") == 1
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["train.yaml"]
    with pytest.raises(StagingError, match="unsafe local path"):
        stager.download(f"{bucket}/bad/", tmp_path / "bad")
    assert not (tmp_path / "evil.txt").exists()
    with pytest.raises(StagingError, match="holds no objects"):
        stager.download(f"{bucket}/missing/", tmp_path / "missing")


def test_stop_before_the_entry_point_starts_cancels_staging(entrypoints, tmp_path):
    from graphstorm_provider.execution.staging import Stager, StagingCancelled

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a")
    with pytest.raises(StagingCancelled):
        Stager({}, cancelled=lambda: True).download(data.as_uri(), tmp_path / "dest")
    run = runner(training_job("early-stop", "report_entry.py", channels={"d": data.as_uri()}))
    run.stop()
    with pytest.raises(LocalJobError, match="stopped"):
        run.run()
    assert not (run.work_dir / "opt" / "ml" / "model" / "report.json").exists()  # never started


def test_container_paths_stay_inside_the_work_dir(tmp_path):
    from graphstorm_provider.execution.opt_ml import OptMl

    opt_ml = OptMl(tmp_path / "opt" / "ml")
    assert opt_ml.local("/opt/ml/processing/input/raw", tmp_path) == tmp_path / "opt/ml/processing/input/raw"
    assert opt_ml.local("/data/in", tmp_path) == tmp_path / "container" / "data" / "in"
    with pytest.raises(ValueError, match=r"must be absolute and without '\.\.'"):
        opt_ml.local("/opt/ml/../../etc", tmp_path)


# ---------------------------------------------------------------------------------------------
# Stopping: nothing with the marker may survive.


class _Ready(logging.Handler):
    def __init__(self):
        super().__init__()
        self.event = threading.Event()

    def emit(self, record):
        if "READY" in record.getMessage():
            self.event.set()


def test_stop_from_another_thread_ends_the_whole_tree(entrypoints):
    marker = f"gs-kill-{uuid.uuid4().hex}"
    log = logging.getLogger(f"test.kill.{marker}")
    log.setLevel(logging.INFO)
    ready = _Ready()
    log.addHandler(ready)
    run = runner(training_job("tree", "tree_entry.py", [marker]), log=log, stop_grace_seconds=1)
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(run.run, errors))
    thread.start()
    try:
        assert ready.event.wait(60), "the entry point never reported READY"
        # entry point + child + grandchild + stubborn one + daemon, all holding the marker
        assert len(live_processes_with(marker)) >= 5
    finally:
        run.stop()
        thread.join(60)

    assert live_processes_with(marker) == set()
    assert len(errors) == 1
    assert isinstance(errors[0], LocalJobError)
    assert "stopped" in str(errors[0])


def _capture(fn, errors):
    try:
        fn()
    except BaseException as exc:  # the test inspects it
        errors.append(exc)


RUNNER_SCRIPT = """
import json, logging, sys
from graphstorm_provider.execution.local import LocalJobRunner
from graphstorm_provider.jobs.request import JobRequest
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
job = JobRequest(**json.loads(sys.argv[1]))
LocalJobRunner(job, runtime_python=sys.executable, stop_grace_seconds=1).run()
"""


def _start_runner_process(job: JobRequest) -> tuple[subprocess.Popen, threading.Event]:
    payload = json.dumps({"kind": job.kind, "step": job.step, "request": job.request})
    proc = subprocess.Popen(
        with_default_sigint([sys.executable, "-c", RUNNER_SCRIPT, payload]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()

    def watch():
        for line in proc.stdout:
            if "READY" in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    return proc, ready


def test_sigkilled_runner_still_takes_its_job_down(entrypoints):
    """Airflow escalates to SIGKILL: the guard notices its parent died and ends the tree."""
    marker = f"gs-sigkill-{uuid.uuid4().hex}"
    proc, ready = _start_runner_process(training_job("tree-kill", "tree_entry.py", [marker]))
    try:
        assert ready.wait(60), "the entry point never reported READY"
        proc.kill()
        proc.wait()
        wait_until(lambda: not live_processes_with(marker), "the job's processes to end after SIGKILL")
    finally:
        end_tree(proc, marker)


def test_ctrl_c_in_the_cli_ends_the_whole_tree(entrypoints):
    marker = f"gs-sigint-{uuid.uuid4().hex}"
    proc, ready = _start_runner_process(training_job("tree-int", "tree_entry.py", [marker]))
    try:
        assert ready.wait(60), "the entry point never reported READY"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) != 0
        assert live_processes_with(marker) == set()  # gone by the time the runner exits
    finally:
        end_tree(proc, marker)


# ---------------------------------------------------------------------------------------------
# The runtime lookup.


def test_runtime_python_missing_says_how_to_set_it_up(monkeypatch, tmp_path):
    monkeypatch.setenv(config.RUNTIME_PYTHON_ENV, str(tmp_path / "nope" / "python"))
    with pytest.raises(config.RuntimeSetupError, match="scripts/setup_runtime.sh") as info:
        config.runtime_python()
    assert "GRAPHSTORM_RUNTIME_PYTHON" in str(info.value)


def test_runtime_python_without_graphstorm_is_refused(monkeypatch):
    monkeypatch.setenv(config.RUNTIME_PYTHON_ENV, sys.executable)  # the Airflow venv has no graphstorm
    with pytest.raises(config.RuntimeSetupError, match="cannot import graphstorm"):
        config.runtime_python()


def test_runtime_python_from_the_airflow_config(monkeypatch, tmp_path):
    monkeypatch.delenv(config.RUNTIME_PYTHON_ENV, raising=False)
    monkeypatch.setenv("AIRFLOW__GRAPHSTORM__RUNTIME_PYTHON", str(tmp_path / "cfg-python"))
    assert config.runtime_python(check=False) == str(tmp_path / "cfg-python")
    monkeypatch.delenv("AIRFLOW__GRAPHSTORM__RUNTIME_PYTHON")
    assert config.runtime_python(check=False) == str(config.DEFAULT_RUNTIME_PYTHON)


def test_the_default_runtime_has_graphstorm():
    """The runtime built by scripts/setup_runtime.sh (run_tests.sh builds it) passes the check."""
    python = os.environ.get(config.RUNTIME_PYTHON_ENV) or str(config.DEFAULT_RUNTIME_PYTHON)
    if not Path(python).is_file():
        pytest.skip(f"no GraphStorm runtime at {python}: run bash scripts/setup_runtime.sh")
    assert config.runtime_python() == python


# ---------------------------------------------------------------------------------------------
# A real Airflow task kill: SIGTERM to `airflow tasks test` runs the task's on_kill from Airflow's
# own signal handler, which is how a task is stopped (the supervisor sends SIGTERM first).

KILL_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("local_kill_test", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    GSTrainOperator(
        task_id="tree", instance_type="local", image_url="graphstorm:sm", aws_conn_id=None,
        role="arn:aws:iam::123456789012:role/SageMakerRole", graph_data_s3="file:///nonexistent/graph/",
        yaml_s3="file:///nonexistent/train.yaml", model_artifact_s3="file:///nonexistent/model/",
        graph_name="MARKER", task_type="node_classification",
        require_input_manifests=False)  # no data: the stand-in entry point reads nothing
"""
# The real GSTrainOperator runs train_entry.py: here a stand-in that starts the adversarial tree,
# with the graph name as its marker.
TRAIN_AS_TREE_ENTRY = """
import runpy, sys
marker = sys.argv[sys.argv.index("--graph-name") + 1]
sys.argv = [sys.argv[0].replace("train_entry.py", "tree_entry.py"), marker]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_killing_the_airflow_task_mid_run_leaves_no_process(entrypoints, airflow_home):
    marker = f"gs-airflow-kill-{uuid.uuid4().hex}"
    dag_file = airflow_home / "dags" / f"local_kill_{uuid.uuid4().hex[:8]}.py"
    dag_file.write_text(KILL_DAG.replace("MARKER", marker))
    (entrypoints / "train_entry.py").write_text(TRAIN_AS_TREE_ENTRY)
    task = airflow_tasks_test("local_kill_test", "tree", watch_for="READY")
    try:
        assert task.seen.wait(180), "the task never reported READY:\n" + task.tail()
        assert len(live_processes_with(marker)) >= 5
        task.proc.send_signal(signal.SIGTERM)
        task.proc.wait(120)
        task.reader.join(10)
        assert live_processes_with(marker) == set()
        assert any("was stopped" in line for line in task.lines), task.tail()
    finally:
        end_tree(task.proc, marker)  # never leave a failed test's tree running
        dag_file.unlink(missing_ok=True)


def test_runtime_python_from_airflow_cfg(monkeypatch, tmp_path, airflow_home):
    """`[graphstorm] runtime_python` set in Airflow's configuration (not through the environment)."""
    from airflow.configuration import conf

    monkeypatch.delenv(config.RUNTIME_PYTHON_ENV, raising=False)
    monkeypatch.delenv("AIRFLOW__GRAPHSTORM__RUNTIME_PYTHON", raising=False)
    if not conf.has_section("graphstorm"):
        conf.add_section("graphstorm")
    conf.set("graphstorm", "runtime_python", str(tmp_path / "from-cfg"))
    try:
        assert config.runtime_python(check=False) == str(tmp_path / "from-cfg")
    finally:
        conf.remove_option("graphstorm", "runtime_python")
