"""Issue 9 operator guards against the moto server: input manifests are checked at task start
(before any request), and ``skip_if_complete`` takes an identical request's finished outputs.

Manifests are written by the entry points' own writer (``entrypoints/gsentry/manifest.py``),
with the request's digest in the job environment as the job would have it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
sys.path.insert(0, str(ENTRYPOINTS))

from gsentry import manifest as entry_manifest  # noqa: E402
from gsentry.transfer import Transfer  # noqa: E402

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


def publish(
    tmp: Path,
    uri: str,
    files: dict[str, bytes],
    *,
    job_name: str,
    step: str,
    digest: str | None = None,
    monkeypatch=None,
) -> None:
    """Upload ``files`` under ``uri`` and then its manifest, as an entry point does."""
    src = tmp / f"src-{abs(hash(uri))}"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    transfer = Transfer(region="us-east-1")
    entries = entry_manifest.upload_with_entries(transfer, src, uri, "--out")
    if digest:
        monkeypatch.setenv(entry_manifest.REQUEST_DIGEST_ENV, digest)
    entry_manifest.write_manifest(transfer, uri, job_name=job_name, step=step, files=entries)
    if digest:
        monkeypatch.delenv(entry_manifest.REQUEST_DIGEST_ENV)


def train_kwargs(bucket: str, **extra) -> dict:
    return dict(
        image_url=IMAGE,
        role=ROLE,
        region="us-east-1",
        graph_data_s3=f"{bucket}/graph/",
        yaml_s3=f"{bucket}/train.yaml",
        model_artifact_s3=f"{bucket}/model/",
        graph_name="acm",
        task_type="node_classification",
        wait_for_completion=False,
        **extra,
    )


class Recorder:
    """Stands in for an operator's logger: keeps the formatted lines."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def info(self, message: str, *args) -> None:
        self.lines.append(message % args if args else message)

    warning = error = debug = exception = info


GRAPH = {"acm.json": b"{}", "part0/graph.dgl": b"g" * 100}


def test_train_refuses_a_graph_without_manifest_before_any_request(aws_env):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import GSTrainOperator

    bucket = aws_env.bucket("gs-preflight")
    aws_env.client("s3").put_object(Bucket="gs-preflight", Key="graph/acm.json", Body=b"{}")
    with pytest.raises(AirflowFailException) as error:
        GSTrainOperator(task_id="train", **train_kwargs(bucket)).execute(context={})
    message = str(error.value)
    assert message.startswith(f"graph_data_s3 {bucket}/graph/ has no complete manifest")
    assert "require_input_manifests=False" in message
    assert aws_env.received("SageMaker.CreateTrainingJob") == []


def test_train_refuses_an_incomplete_graph_and_takes_a_complete_one(aws_env, tmp_path, monkeypatch):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import GSTrainOperator

    bucket = aws_env.bucket("gs-preflight2")
    publish(tmp_path, f"{bucket}/graph/", GRAPH, job_name="gs-partition-1", step="partition")
    s3 = aws_env.client("s3")
    s3.delete_object(Bucket="gs-preflight2", Key="graph/part0/graph.dgl")  # a half-copied graph
    with pytest.raises(
        AirflowFailException,
        match=r"graph_data_s3 .*/graph/ has no complete manifest: .*"
        r"part0/graph.dgl is listed in its manifest but missing",
    ):
        GSTrainOperator(task_id="train", **train_kwargs(bucket)).execute(context={})
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    s3.put_object(Bucket="gs-preflight2", Key="graph/part0/graph.dgl", Body=b"g" * 100)
    GSTrainOperator(task_id="train", **train_kwargs(bucket)).execute(context={})
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    assert "GSENTRY_ALLOW_UNMANIFESTED_INPUT" not in sent["Environment"]


def test_infer_refuses_a_model_without_manifest_and_the_opt_out_reaches_the_entry_point(aws_env, tmp_path, monkeypatch):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import GSInferOperator

    bucket = aws_env.bucket("gs-preflight3")
    publish(tmp_path, f"{bucket}/graph/", GRAPH, job_name="gs-partition-1", step="partition")
    aws_env.client("s3").put_object(Bucket="gs-preflight3", Key="model/epoch-0/model.bin", Body=b"m")
    kwargs = {**train_kwargs(bucket), "output_emb_s3": f"{bucket}/emb/", "model_sub_path": "epoch-0"}
    with pytest.raises(
        AirflowFailException,
        match=r"^model_artifact_s3 s3://gs-preflight3/model/epoch-0/ has no "
        r"complete manifest",
    ):
        GSInferOperator(task_id="infer", **kwargs).execute(context={})
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    GSInferOperator(task_id="infer", require_input_manifests=False, **kwargs).execute(context={})
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    assert sent["Environment"]["GSENTRY_ALLOW_UNMANIFESTED_INPUT"] == "1"
    # The parent's manifest covers a checkpoint folder, as in the entry points.
    publish(tmp_path, f"{bucket}/model/", {"epoch-0/model.bin": b"m"}, job_name="gs-train-1", step="train")
    GSInferOperator(task_id="infer", **kwargs).execute(context={})
    assert len(aws_env.received("SageMaker.CreateTrainingJob")) == 2


def test_local_infer_refuses_a_file_model_without_manifest_and_starts_no_process(aws_env, tmp_path, monkeypatch):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import GSInferOperator

    started = []

    class NoProcess(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            started.append(args)
            raise AssertionError("a process was started")

    graph = tmp_path / "graph"
    publish(tmp_path, f"file://{graph}/", GRAPH, job_name="gs-partition-1", step="partition")
    (tmp_path / "model" / "epoch-0").mkdir(parents=True)
    (tmp_path / "model" / "epoch-0" / "model.bin").write_bytes(b"m")
    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    with pytest.raises(AirflowFailException, match=r"^model_artifact_s3 file://.*/model/ has no complete manifest"):
        GSInferOperator(
            task_id="infer",
            instance_type="local",
            role="local",
            image_url="local",
            graph_data_s3=f"file://{graph}/",
            yaml_s3=f"file://{tmp_path}/t.yaml",
            model_artifact_s3=f"file://{tmp_path}/model/",
            output_emb_s3=f"file://{tmp_path}/emb/",
            graph_name="acm",
            task_type="node_classification",
        ).execute(context={})
    assert started == []
    assert not (tmp_path / "emb").exists()


def test_skip_if_complete_second_run_is_a_cache_hit_and_a_changed_parameter_a_miss(aws_env, tmp_path, monkeypatch):
    from graphstorm_provider.operators import GSTrainOperator

    bucket = aws_env.bucket("gs-cache")
    publish(tmp_path, f"{bucket}/graph/", GRAPH, job_name="gs-partition-1", step="partition")
    args = ["--num-epochs", "2"]
    first = GSTrainOperator(
        task_id="train", skip_if_complete=True, graphstorm_args=args, **train_kwargs(bucket)
    ).execute(context={})
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")  # nothing there yet: a miss, launched
    digest = sent["Environment"]["GRAPHSTORM_REQUEST_DIGEST"]
    # What the job's entry point writes last, with the digest from its environment.
    publish(
        tmp_path,
        f"{bucket}/model/",
        {"epoch-1/model.bin": b"model"},
        job_name=first["job_name"],
        step="train",
        digest=digest,
        monkeypatch=monkeypatch,
    )

    lines: list[str] = []

    def logged(operator):
        monkeypatch.setattr(type(operator), "log", property(lambda self: Recorder(lines)), raising=False)
        return operator

    second = logged(
        GSTrainOperator(task_id="train", skip_if_complete=True, graphstorm_args=args, **train_kwargs(bucket))
    ).execute(context={})
    assert second == {"job_name": first["job_name"], "model_artifact_s3": f"{bucket}/model/"}
    assert len(aws_env.received("SageMaker.CreateTrainingJob")) == 1  # no request for the hit
    [hit] = [line for line in lines if "Step cache hit" in line]
    assert first["job_name"] in hit

    # The same request without skip_if_complete launches; a changed parameter is a miss.
    third = logged(
        GSTrainOperator(
            task_id="train", skip_if_complete=True, graphstorm_args=["--num-epochs", "3"], **train_kwargs(bucket)
        )
    ).execute(context={})
    assert len(aws_env.received("SageMaker.CreateTrainingJob")) == 2
    assert third["job_name"] != first["job_name"]
    assert any("Step cache miss" in line and "different request" in line for line in lines), lines

    # An output whose manifest no longer matches its files is a miss too.
    aws_env.client("s3").delete_object(Bucket="gs-cache", Key="model/epoch-1/model.bin")
    GSTrainOperator(task_id="train", skip_if_complete=True, graphstorm_args=args, **train_kwargs(bucket)).execute(
        context={}
    )
    assert len(aws_env.received("SageMaker.CreateTrainingJob")) == 3


def test_the_digest_ignores_the_job_name_only():
    from graphstorm_provider.jobs.digest import REQUEST_DIGEST_ENV, request_digest
    from graphstorm_provider.jobs.train import TrainSpec

    spec = TrainSpec(
        image_url=IMAGE,
        role=ROLE,
        graph_data_s3="s3://bkt/g/",
        yaml_s3="s3://bkt/t.yaml",
        model_artifact_s3="s3://bkt/m/",
        graph_name="acm",
        task_type="node_classification",
    )
    one, two = spec.build("job-one").request, spec.build("job-two").request
    assert one["Environment"][REQUEST_DIGEST_ENV] == two["Environment"][REQUEST_DIGEST_ENV] == request_digest(one)
    other = TrainSpec(
        image_url=IMAGE,
        role=ROLE,
        graph_data_s3="s3://bkt/g/",
        yaml_s3="s3://bkt/t.yaml",
        model_artifact_s3="s3://bkt/m/",
        graph_name="acm",
        task_type="node_regression",
    )
    assert other.build("job-one").request["Environment"][REQUEST_DIGEST_ENV] != one["Environment"][REQUEST_DIGEST_ENV]


@pytest.mark.e2e
def test_a_real_local_gconstruct_run_again_is_a_cache_hit_with_no_process(tmp_path, monkeypatch):
    """GConstruct really runs once (the runtime venv); the same request again takes its manifest
    (written by the entry point, with the digest) and starts nothing; a changed one runs again."""
    from graphstorm_provider.data.manifest import read_manifest
    from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm
    from graphstorm_provider.operators import GConstructOperator

    for name in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    raw = f"file://{tmp_path}/raw/"
    summary = generate_synthetic_acm(raw, SyntheticAcmSpec(num_papers=300, num_classes=3, seed=3))
    kwargs = dict(
        instance_type="local",
        role="local",
        image_url="local",
        aws_conn_id=None,
        input_graph_s3=raw,
        output_graph_s3=f"file://{tmp_path}/graph/",
        graph_name="acm_cache_test",
        graph_config_file=summary.graph_config_file,
        skip_if_complete=True,
    )
    first = GConstructOperator(task_id="gconstruct", **kwargs).execute(context={})
    made = read_manifest(first["output_graph_s3"])
    assert made is not None
    assert made.job_name == first["job_name"]
    assert len(made.request_digest or "") == 64

    started = []
    real_popen = subprocess.Popen

    class Counting(real_popen):
        def __init__(self, *args, **kw):
            started.append(args)
            super().__init__(*args, **kw)

    monkeypatch.setattr(subprocess, "Popen", Counting)
    second = GConstructOperator(task_id="gconstruct", **kwargs).execute(context={})
    assert second == first  # the producing job's name
    assert started == []  # nothing started
    changed = GConstructOperator(task_id="gconstruct", **{**kwargs, "graph_name": "acm_cache_test2"})
    third = changed.execute(context={})
    assert started
    assert third["job_name"] != first["job_name"]
    assert read_manifest(third["output_graph_s3"]).job_name == third["job_name"]


def test_an_unreachable_store_is_a_retryable_error_not_a_refusal(monkeypatch):
    """A manifest that cannot be read (no answer) raises ``InputUnreadable`` (a retry may work);
    only a missing or broken manifest is the no-retry refusal."""
    import socket

    import boto3
    from botocore.config import Config

    from graphstorm_provider.operators.preflight import InputNotComplete, InputUnreadable, check_input

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
    )
    with pytest.raises(InputUnreadable, match=r"^graph_data_s3 s3://gs-x/g/: cannot read"):
        check_input("graph_data_s3", "s3://gs-x/g/", client)
    assert not issubclass(InputUnreadable, ValueError)
    assert issubclass(InputNotComplete, ValueError)


def test_local_compose_operator_checks_inputs_before_any_container(tmp_path, monkeypatch):
    from airflow.providers.common.compat.sdk import AirflowFailException

    from graphstorm_provider.operators import LocalComposeOperator

    monkeypatch.setenv("GRAPHSTORM_COMPOSE_COMMAND", str(tmp_path / "no-such-compose"))  # never reached
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "part0.bin").write_bytes(b"x")
    kwargs = dict(
        step="training",
        image_url="graphstorm:sm",
        graph_data_s3=f"file://{tmp_path}/graph/",
        yaml_s3=f"file://{tmp_path}/t.yaml",
        model_artifact_s3=f"file://{tmp_path}/model/",
        graph_name="acm",
        task_type="node_classification",
        aws_conn_id=None,
    )
    with pytest.raises(AirflowFailException, match=r"^graph_data_s3 file://.*/graph/ has no complete manifest"):
        LocalComposeOperator(task_id="train", **kwargs).execute(context={})
    job = LocalComposeOperator(task_id="train", require_input_manifests=False, **kwargs).build_job()
    assert job.environment["GSENTRY_ALLOW_UNMANIFESTED_INPUT"] == "1"
    assert not (tmp_path / "model").exists()


CACHED_TRAIN_DAG = """
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

with DAG("gs_cached_train", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    GSTrainOperator(task_id="train", skip_if_complete=True, graphstorm_args=["--num-epochs", "2"], **{kwargs!r})
"""


def test_a_cache_hit_completes_the_task_as_the_job_did_and_announces_only_its_own_job(
    aws_env, load_dag, tmp_path, monkeypatch
):
    """A hit hands on what a completed job hands on: the metrics and learning curve in its XCom.
    The outputs are asset events only when the producing job was this task instance's own (a retry
    after the job completed but the worker died before the task did): else a DAG scheduled on new
    models never hears of that model. Another run's model landed, and was announced, before: a hit
    on it is no new model (each hit used to announce it again)."""
    from datetime import UTC, datetime

    from airflow.models.asset import AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from graphstorm_provider.jobs import naming
    from graphstorm_provider.jobs.digest import REQUEST_DIGEST_ENV
    from graphstorm_provider.operators import GSTrainOperator
    from tests.test_operator_assets import METRICS
    from tests.test_operators_sagemaker import task_states, xcoms

    bucket = aws_env.bucket("gs-cache-hit")
    kwargs = {**train_kwargs(bucket), "wait_for_completion": True}
    publish(tmp_path, f"{bucket}/graph/", GRAPH, job_name="gs-partition-1", step="partition")
    probe = GSTrainOperator(task_id="train", graphstorm_args=["--num-epochs", "2"], **kwargs)
    digest = probe.build_job("probe").environment[REQUEST_DIGEST_ENV]
    dag = load_dag(CACHED_TRAIN_DAG.format(kwargs=kwargs), "gs_cached_train")

    def model_by(job_name: str) -> None:
        publish(
            tmp_path,
            f"{bucket}/model/",
            {"epoch-1/model.bin": b"model", "metrics.json": json.dumps(METRICS).encode()},
            job_name=job_name,
            step="train",
            digest=digest,
            monkeypatch=monkeypatch,
        )

    def run_and_model_events(when: datetime) -> tuple[dict, list]:
        dag_run = dag.test(logical_date=when, run_after=when)
        assert dag_run.state == "success", task_states(dag_run)
        with create_session() as session:
            events = session.scalars(
                select(AssetEvent)
                .options(joinedload(AssetEvent.asset))
                .where(AssetEvent.source_run_id == dag_run.run_id, AssetEvent.source_dag_id == "gs_cached_train")
            ).all()
            found = [(e.asset.uri, e.extra["job_name"], e.extra["metrics"]["final_epoch"]) for e in events]
        return xcoms(dag_run, "train"), found

    # Another run's job made the model: the XCom is complete, no new model is announced.
    model_by("gs-train-earlier")
    xcom, events = run_and_model_events(datetime(2026, 1, 5, tzinfo=UTC))
    assert aws_env.received("SageMaker.CreateTrainingJob") == []  # a hit: nothing launched
    assert xcom["job_name"] == "gs-train-earlier"
    assert xcom["metrics"] == METRICS
    assert xcom["learning_curve_s3"] == f"{bucket}/model/learning_curve.png"
    assert events == []

    # This task instance's own (second) job made it: announced, once.
    when = datetime(2026, 1, 12, tzinfo=UTC)
    run_id = DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=when, run_after=when)
    base = probe.spec_class()(**probe.spec_kwargs()).default_job_base()
    own = naming.attempt_name(naming.task_job_name(base, naming.TaskIdentity("gs_cached_train", "train", run_id)), 2)
    model_by(own)
    xcom, events = run_and_model_events(when)
    assert xcom["job_name"] == own
    assert events == [(f"{bucket}/model", own, 2)]
    assert aws_env.received("SageMaker.CreateTrainingJob") == []


def test_a_changed_input_at_the_same_uri_is_a_cache_miss(aws_env, tmp_path, monkeypatch):
    """The request names the graph by its URI only: a graph re-made at the same prefix (next week's
    data) left the request, and so the digest, unchanged, and the model trained on the old graph was
    taken. The model's manifest records the SHA-256 of the graph manifest it read: compared now."""
    import hashlib

    from graphstorm_provider.operators import GSTrainOperator, step_cache

    bucket = aws_env.bucket("gs-cache-inputs")
    s3 = aws_env.client("s3")
    publish(tmp_path, f"{bucket}/graph/", GRAPH, job_name="gs-partition-1", step="partition")
    operator = GSTrainOperator(task_id="train", skip_if_complete=True, **train_kwargs(bucket))
    job = operator.build_job("gs-train-now")
    graph_manifest = f"{bucket}/graph/_manifest.json"

    def read_graph_manifest() -> bytes:
        return s3.get_object(Bucket="gs-cache-inputs", Key="graph/_manifest.json")["Body"].read()

    read = entry_manifest.InputRef("--graph-data-s3", graph_manifest, hashlib.sha256(read_graph_manifest()).hexdigest())
    src = tmp_path / "model-src"
    (src / "epoch-1").mkdir(parents=True)
    (src / "epoch-1" / "model.bin").write_bytes(b"model")
    transfer = Transfer(region="us-east-1")
    entries = entry_manifest.upload_with_entries(transfer, src, f"{bucket}/model/", "--model-artifact-s3")
    monkeypatch.setenv(entry_manifest.REQUEST_DIGEST_ENV, job.environment["GRAPHSTORM_REQUEST_DIGEST"])
    entry_manifest.write_manifest(
        transfer, f"{bucket}/model/", job_name="gs-train-week1", step="train", files=entries, inputs=[read]
    )
    monkeypatch.delenv(entry_manifest.REQUEST_DIGEST_ENV)

    def client():
        return s3

    assert step_cache.lookup(job, client) == step_cache.CacheLookup(True, job_name="gs-train-week1")
    # Next week's graph, at the same prefix: the same request, another input.
    publish(
        tmp_path,
        f"{bucket}/graph/",
        {**GRAPH, "part0/graph.dgl": b"h" * 120},
        job_name="gs-partition-2",
        step="partition",
    )
    found = step_cache.lookup(job, client)
    assert not found.hit
    assert "--graph-data-s3" in found.reason
    assert "changed" in found.reason
