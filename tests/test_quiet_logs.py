"""Quiet, leveled logs of local jobs: no AWS lookup or warning for a job that touches no AWS,
stdout at INFO, stderr at WARNING (lines with their own level keep it), tracebacks at ERROR, and
nothing left in ``$TMPDIR`` (the job's TMPDIR is inside its work directory, removed with it).

Entry points are tiny stand-ins (``GRAPHSTORM_ENTRYPOINTS_DIR``), the runtime is this interpreter.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from graphstorm_provider import config
from graphstorm_provider.execution.local import LocalJobError, LocalJobRunner
from graphstorm_provider.execution.log_levels import LineLevels, PerHostLevels
from graphstorm_provider.jobs.request import JobRequest
from graphstorm_provider.operators.train import GSTrainOperator

NOISY_ENTRY = """
    import os, pathlib, sys, tempfile
    print("epoch 0 done")
    print("INFO:root:graph loaded", file=sys.stderr)
    print("some library complains", file=sys.stderr)
    # What torch.distributed.elastic does: a folder under the temp dir.
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="torchelastic_"))
    (tmp / "error.json").write_text("{}")
    pathlib.Path(os.environ["SM_MODEL_DIR"], "tmpdir.txt").write_text(os.environ["TMPDIR"])
    if sys.argv[1:] == ["fail"]:
        def inner():
            raise ValueError("bad graph")
        inner()
    print("after the job", file=sys.stderr)
"""


@pytest.fixture
def scratch_tmpdir(tmp_path, monkeypatch) -> Path:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    return scratch


@pytest.fixture
def noisy_entrypoint(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "entrypoints"
    folder.mkdir()
    (folder / "noisy_entry.py").write_text(textwrap.dedent(NOISY_ENTRY))
    monkeypatch.setenv(config.ENTRYPOINTS_DIR_ENV, str(folder))
    return folder


def noisy_job(tmp_path: Path, args: list[str]) -> JobRequest:
    request = {
        "TrainingJobName": "noisy",
        "AlgorithmSpecification": {
            "TrainingImage": "graphstorm:sm",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "/opt/ml/code/noisy_entry.py"],
            "ContainerArguments": args,
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "OutputDataConfig": {"S3OutputPath": f"file://{tmp_path / 'out'}"},
    }
    return JobRequest(kind="training", step="train", request=request, region="us-east-1")


def job_records(caplog) -> dict[str, int]:
    return {
        r.getMessage().removeprefix("[algo-1] "): r.levelno
        for r in caplog.records
        if r.getMessage().startswith("[algo-1] ")
    }


# ---- levels ----------------------------------------------------------------------------------
def test_line_levels_stdout_info_stderr_warning_own_level_kept_traceback_error():
    out, err = LineLevels(stderr=False), LineLevels(stderr=True)
    assert out.level("epoch 1: loss 0.5") == logging.INFO
    assert err.level("UserWarning: something") == logging.WARNING
    assert err.level("INFO:root:loading graph") == logging.INFO
    assert err.level("[INFO] launcher started") == logging.INFO
    assert err.level("ERROR:root:worker died") == logging.ERROR
    lines = [
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "    main()",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "y.py", line 2',
        "KeyError: 'paper'",
    ]
    assert [err.level(line) for line in lines] == [logging.ERROR] * len(lines)
    assert err.level("the next ordinary line") == logging.WARNING
    assert out.level("Traceback (most recent call last):") == logging.ERROR  # on stdout too


def test_line_levels_of_output_relayed_by_the_entry_points():
    """The entry points echo GraphStorm's merged output on stdout as ``[step] ...``."""
    out = LineLevels(stderr=False)
    assert out.level("[gconstruct] INFO:root:Node type paper has 300 nodes") == logging.INFO
    assert out.level("[gconstruct] <frozen runpy>:128: RuntimeWarning: 'x' found in sys.modules") == logging.WARNING
    assert out.level("algo-1 2026-12-01 21:51:26,755 INFO gsentry.process: starting gconstruct") == logging.INFO
    assert out.level("algo-1 2026-12-01 21:51:26,755 ERROR gsentry.process: gconstruct failed") == logging.ERROR
    lines = [
        "[train] Traceback (most recent call last):",
        '[train]   File "gsf.py", line 3, in main',
        "[train]     run()",
        "[train] RuntimeError: CUDA not available",
    ]
    assert [out.level(line) for line in lines] == [logging.ERROR] * 4
    assert out.level("[train] epoch 1 loss 0.3") == logging.INFO


def test_local_job_logs_stderr_at_warning_and_leaves_nothing_in_tmpdir(
    noisy_entrypoint, scratch_tmpdir, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    LocalJobRunner(noisy_job(tmp_path, []), runtime_python=sys.executable).run()
    levels = job_records(caplog)
    assert levels["epoch 0 done"] == logging.INFO
    assert levels["INFO:root:graph loaded"] == logging.INFO
    assert levels["some library complains"] == logging.WARNING
    assert levels["after the job"] == logging.WARNING
    # The job saw a TMPDIR of its own, inside its (now removed) work directory.
    import tarfile

    with tarfile.open(tmp_path / "out" / "noisy" / "output" / "model.tar.gz") as tar:
        job_tmp = tar.extractfile("tmpdir.txt").read().decode()
    assert Path(job_tmp).name == "tmp"
    assert Path(job_tmp).parent.name.startswith("gs-local-noisy")
    assert not Path(job_tmp).exists()
    assert sorted(p.name for p in scratch_tmpdir.iterdir()) == []


def test_a_traceback_from_the_job_is_logged_at_error(noisy_entrypoint, scratch_tmpdir, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(LocalJobError):
        LocalJobRunner(noisy_job(tmp_path, ["fail"]), runtime_python=sys.executable).run()
    levels = job_records(caplog)
    assert levels["Traceback (most recent call last):"] == logging.ERROR
    assert levels["ValueError: bad graph"] == logging.ERROR
    assert [level for line, level in levels.items() if line.startswith("  File ")] == [logging.ERROR] * 2
    assert levels["some library complains"] == logging.WARNING
    # A failed job keeps its work directory (and so its temporary files) for inspection, nowhere else.
    assert [p.name for p in scratch_tmpdir.iterdir() if p.name.startswith("torchelastic_")] == []


def test_per_host_levels_keep_each_hosts_traceback_apart():
    """The compose backend's merged ``[algo-N] ...`` container logs."""
    levels = PerHostLevels()
    assert levels.level("[algo-1] Traceback (most recent call last):") == logging.ERROR
    assert levels.level("[algo-2] epoch 1 loss 0.3") == logging.INFO  # another host, not in algo-1's traceback
    assert levels.level('[algo-1]   File "gsf.py", line 3') == logging.ERROR
    assert levels.level("[algo-1] KeyError: 'paper'") == logging.ERROR
    assert levels.level("[algo-1] [train] INFO:root:shutting down") == logging.INFO
    assert levels.level("[algo-2] [train] x.py:3: UserWarning: slow") == logging.WARNING


# ---- no AWS for a job that touches none --------------------------------------------------------
def _train_operator(**overrides) -> GSTrainOperator:
    kwargs = dict(
        task_id="train",
        graph_data_s3="file:///data/graph",
        yaml_s3="file:///data/nc.yaml",
        model_artifact_s3="file:///data/model",
        graph_name="acm",
        task_type="node_classification",
        instance_type="local",
        image_url="graphstorm:local",
        role="arn:aws:iam::000000000000:role/GraphStormLocal",
        require_input_manifests=False,
    )  # a stand-in job: no real graph, no manifest
    kwargs.update(overrides)
    return GSTrainOperator(**kwargs)


STANDIN_TRAIN_ENTRY = """
import json, os, pathlib
pathlib.Path(os.environ["SM_MODEL_DIR"], "aws.json").write_text(
    json.dumps(sorted(k for k in os.environ if k.startswith("AWS_"))))
"""


def test_file_local_job_runs_without_looking_the_connection_up(tmp_path, scratch_tmpdir, monkeypatch, caplog):
    """A file:// local train task (real operator, stand-in entry point): no AwsBaseHook, no AWS warning."""
    runtime = os.environ.get("GRAPHSTORM_RUNTIME_PYTHON")
    if not runtime or not Path(runtime).is_file():
        pytest.skip("GRAPHSTORM_RUNTIME_PYTHON is not set (scripts/run_tests.sh sets it)")
    from airflow.providers.amazon.aws.hooks import base_aws

    folder = tmp_path / "entrypoints"
    folder.mkdir()
    (folder / "train_entry.py").write_text(STANDIN_TRAIN_ENTRY)
    monkeypatch.setenv(config.ENTRYPOINTS_DIR_ENV, str(folder))
    for name in [k for k in os.environ if k.startswith("AWS_") or k == "AIRFLOW_CONN_AWS_DEFAULT"]:
        monkeypatch.delenv(name)
    looked_up: list[str] = []

    def refuse(self, *args, **kwargs):
        looked_up.append(str(kwargs.get("aws_conn_id")))
        raise AssertionError("AwsBaseHook constructed for a job that touches no AWS")

    monkeypatch.setattr(base_aws.AwsBaseHook, "__init__", refuse)
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "acm.json").write_text("{}")
    (tmp_path / "nc.yaml").write_text("gsf: {}\n")
    caplog.set_level(logging.INFO)
    op = _train_operator(
        graph_data_s3=f"file://{tmp_path / 'graph'}",
        yaml_s3=f"file://{tmp_path / 'nc.yaml'}",
        model_artifact_s3=f"file://{tmp_path / 'model'}",
    )
    op.execute({})
    assert looked_up == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if "AWS" in w or "aws_default" in w or "credentials" in w] == []
    import tarfile

    archive = next((tmp_path / "model").rglob("model.tar.gz"))
    with tarfile.open(archive) as tar:
        aws_names = json.loads(tar.extractfile("aws.json").read())
    assert aws_names == ["AWS_DEFAULT_REGION", "AWS_REGION"]  # the region only: no credentials looked up


def test_s3_job_still_takes_the_connections_region(aws_env):
    job = _train_operator(graph_data_s3="s3://bucket/graph").build_job()
    assert job.region == aws_env.region  # the connection's region_name applies to a job that reaches AWS
