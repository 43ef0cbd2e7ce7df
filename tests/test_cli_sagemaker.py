"""``gs-sagemaker gconstruct|partition|train|infer`` against a real endpoint (moto server over HTTP).

Every command runs as a subprocess of the installed console script, exactly as a user types it
(GraphStorm's SageMaker README's example commands included), with ``AWS_ENDPOINT_URL`` pointing at the moto
server. The tests then read back what the server received: ``describe_*`` field by field, plus
the recorded request bodies for the fields moto's describe answers drop.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from graphstorm_provider.execution import sagemaker as sm
from graphstorm_provider.jobs import STEP_SPECS
from tests.process_trees import end_tree, with_default_sigint

GS_SAGEMAKER = str(Path(sys.executable).parent / "gs-sagemaker")
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
REGION = "us-east-1"  # GraphStorm's SageMaker README's train/infer examples use it; so does the moto fixture
PATH_TO = "s3://graphstorm-examples/acm"

# GraphStorm's SageMaker README's example commands, placeholders filled in, flags verbatim.
SEED_GCONSTRUCT = f"""
        --image-url {IMAGE} \\
        --region {REGION} \\
        --entry-point run/gconstruct_entry.py \\
        --role {ROLE} \\
        --input-graph-s3 {PATH_TO}/acm/ \\
        --output-graph-s3 {PATH_TO}/acm_output/ \\
        --graph-name acm \\
        --graph-config-file acm_raw/config.json \\
        --sm-estimator-parameters "volume_size_in_gb=10"
"""
SEED_PARTITION = f"""
    --graph-data-s3 {PATH_TO}/acm_chunked/ \\
    --num-parts 2 --instance-count 2 \\
    --output-data-s3 {PATH_TO}/acm_2p/ --instance-type ml.m5.4xlarge \\
    --image-url {IMAGE} --region {REGION} \\
    --role {ROLE}  --entry-point "run/partition_entry.py" \\
    --metadata-filename metadata.json \\
    --log-level INFO --partition-algorithm random
"""
SEED_TRAIN = f"""
        --image-url {IMAGE} \\
        --region us-east-1 \\
        --entry-point run/train_entry.py \\
        --role {ROLE} \\
        --graph-data-s3 {PATH_TO}/ogbn_arxiv_nc_2p/ \\
        --yaml-s3 {PATH_TO}/training_config/arxiv_nc.yaml \\
        --model-artifact-s3 {PATH_TO}/trained_model/ \\
        --graph-name ogbn-arxiv \\
        --task-type "node_classification" \\
        --num-layers 1 \\
        --hidden-size 128 \\
        --backend gloo \\
        --batch-size 128 \\
        --node-feat-name node:feat
"""
SEED_INFER = f"""
        --image-url {IMAGE} \\
        --region us-east-1 \\
        --entry-point run/infer_entry.py \\
        --role {ROLE} \\
        --graph-data-s3 {PATH_TO}/ogbn_arxiv_nc_2p/ \\
        --yaml-s3 {PATH_TO}/training_config/arxiv_nc.yaml \\
        --model-artifact-s3  {PATH_TO}/trained_model/ \\
        --output-emb-s3 {PATH_TO}/embeddings/ \\
        --output-prediction-s3 {PATH_TO}/predictions \\
        --graph-name ogbn-arxiv \\
        --task-type "node_classification" \\
        --num-layers 1 \\
        --hidden-size 128 \\
        --backend gloo \\
        --batch-size 128 \\
        --node-feat-name node:feat
"""
GSF_ARGS = [
    "--num-layers",
    "1",
    "--hidden-size",
    "128",
    "--backend",
    "gloo",
    "--batch-size",
    "128",
    "--node-feat-name",
    "node:feat",
]


def seed_argv(text: str) -> list[str]:
    return shlex.split(text.replace("\\\n", " "))


def gs_sagemaker(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [GS_SAGEMAKER, *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env if env is not None else dict(os.environ),
    )


def result_json(proc: subprocess.CompletedProcess) -> dict:
    """The last stdout line of a launch is the job name and outputs as JSON."""
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_nothing_sent(aws_env) -> None:
    assert aws_env.received("SageMaker.CreateTrainingJob") == []
    assert aws_env.received("SageMaker.CreateProcessingJob") == []
    client = aws_env.client("sagemaker")
    assert client.list_training_jobs()["TrainingJobSummaries"] == []
    assert client.list_processing_jobs()["ProcessingJobSummaries"] == []


def rendered(step: str, argv: list[str], job_name: str) -> dict:
    """What the step's spec renders for this argv under that job name (the one description)."""
    return STEP_SPECS[step].from_argv(argv).build(job_name=job_name).request


# --------------------------------------------------------------------------- seed examples
def test_seed_gconstruct_example_creates_the_processing_job(aws_env):
    argv = seed_argv(SEED_GCONSTRUCT)
    proc = gs_sagemaker("gconstruct", *argv)
    assert proc.returncode == 0, proc.stderr
    out = result_json(proc)
    name = out["job_name"]
    assert name.startswith("gs-gconstruct-acm-")
    assert out == {"job_name": name, "output_graph_s3": f"{PATH_TO}/acm_output/"}

    job = aws_env.client("sagemaker").describe_processing_job(ProcessingJobName=name)
    assert job["ProcessingJobStatus"] == "Completed"
    assert job["RoleArn"] == ROLE
    assert job["AppSpecification"] == {
        "ImageUri": IMAGE,
        "ContainerEntrypoint": ["python3", "/opt/ml/code/gconstruct_entry.py"],
        "ContainerArguments": [
            "--graph-name",
            "acm",
            "--graph-config-file",
            "acm_raw/config.json",
            "--log-level",
            "INFO",
            "--",
        ],
    }
    [channel] = job["ProcessingInputs"]
    assert channel["S3Input"]["S3Uri"] == f"{PATH_TO}/acm/"
    assert channel["S3Input"]["LocalPath"] == "/opt/ml/processing/input"
    assert channel["S3Input"]["S3DataType"] == "S3Prefix"
    [output] = job["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == f"{PATH_TO}/acm_output/"
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output"

    # moto's describe drops these; the recorded request has them as sent.
    [sent] = aws_env.received("SageMaker.CreateProcessingJob")
    assert sent["ProcessingResources"] == {
        "ClusterConfig": {"InstanceType": "ml.m5.12xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10}
    }
    assert sent["Environment"]["AWS_REGION"] == REGION
    assert sent == rendered("gconstruct", argv, name)


def test_seed_partition_example_creates_a_two_instance_training_job(aws_env):
    argv = seed_argv(SEED_PARTITION)
    proc = gs_sagemaker("partition", *argv)
    assert proc.returncode == 0, proc.stderr
    out = result_json(proc)
    assert out == {"job_name": out["job_name"], "output_data_s3": f"{PATH_TO}/acm_2p/"}

    job = aws_env.client("sagemaker").describe_training_job(TrainingJobName=out["job_name"])
    assert job["TrainingJobStatus"] == "Completed"
    assert job["RoleArn"] == ROLE
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/code/partition_entry.py"]
    arguments = job["AlgorithmSpecification"]["ContainerArguments"]
    assert arguments[: arguments.index("--")] == [
        "--graph-data-s3",
        f"{PATH_TO}/acm_chunked/",
        "--num-parts",
        "2",
        "--output-data-s3",
        f"{PATH_TO}/acm_2p/",
        "--metadata-filename",
        "metadata.json",
        "--partition-algorithm",
        "random",
        "--log-level",
        "INFO",
    ]
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.4xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    assert sent == rendered("partition", argv, out["job_name"])


def test_seed_train_example_forwards_graphstorm_flags_verbatim(aws_env):
    argv = seed_argv(SEED_TRAIN)
    proc = gs_sagemaker("train", *argv)
    assert proc.returncode == 0, proc.stderr
    out = result_json(proc)
    name = out["job_name"]
    assert name.startswith("gs-train-ogbn-arxiv-")
    assert out == {"job_name": name, "model_artifact_s3": f"{PATH_TO}/trained_model/"}
    assert "Completed" in proc.stdout  # it waited, printing the status

    job = aws_env.client("sagemaker").describe_training_job(TrainingJobName=name)
    algorithm = job["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    assert algorithm["ContainerEntrypoint"] == ["python3", "/opt/ml/code/train_entry.py"]
    assert algorithm["ContainerArguments"] == [
        "--graph-data-s3",
        f"{PATH_TO}/ogbn_arxiv_nc_2p/",
        "--train-yaml-s3",
        f"{PATH_TO}/training_config/arxiv_nc.yaml",
        "--model-artifact-s3",
        f"{PATH_TO}/trained_model/",
        "--graph-name",
        "ogbn-arxiv",
        "--task-type",
        "node_classification",
        "--log-level",
        "INFO",
        "--",
        *GSF_ARGS,
    ]
    assert job["RoleArn"] == ROLE
    assert job["ResourceConfig"] == {"InstanceType": "ml.g4dn.12xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert job["OutputDataConfig"]["S3OutputPath"].startswith(f"{PATH_TO}/trained_model/")
    assert "VpcConfig" not in job or not job["VpcConfig"]
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    environment = dict(sent["Environment"])
    assert len(environment.pop("GRAPHSTORM_REQUEST_DIGEST")) == 64  # the step cache's key (jobs/digest.py)
    assert environment == {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    assert sent == rendered("train", argv, name)


def test_seed_infer_example_names_both_outputs(aws_env):
    argv = seed_argv(SEED_INFER)
    proc = gs_sagemaker("infer", *argv)
    assert proc.returncode == 0, proc.stderr
    out = result_json(proc)
    assert out == {
        "job_name": out["job_name"],
        "output_emb_s3": f"{PATH_TO}/embeddings/",
        "output_prediction_s3": f"{PATH_TO}/predictions/",  # folder URIs are normalised to end in /
    }
    job = aws_env.client("sagemaker").describe_training_job(TrainingJobName=out["job_name"])
    arguments = job["AlgorithmSpecification"]["ContainerArguments"]
    assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/code/infer_entry.py"]
    assert arguments[arguments.index("--") + 1 :] == GSF_ARGS
    assert arguments[arguments.index("--infer-yaml-s3") + 1] == f"{PATH_TO}/training_config/arxiv_nc.yaml"
    assert arguments[arguments.index("--output-emb-s3") + 1] == f"{PATH_TO}/embeddings/"
    assert arguments[arguments.index("--output-prediction-s3") + 1] == f"{PATH_TO}/predictions/"
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    assert sent == rendered("infer", argv, out["job_name"])


def test_seed_estimator_parameters_reach_the_request(aws_env):
    """GraphStorm's SageMaker README's --sm-estimator-parameters example (plus the security group a VPC needs)."""
    params = (
        "max_run=3600 volume_size=100 encrypt_inter_container_traffic=True "
        "subnets=['subnet-1234','subnet-4567'] security_group_ids=['sg-0123']"
    )
    proc = gs_sagemaker("train", *seed_argv(SEED_TRAIN), "--sm-estimator-parameters", params)
    assert proc.returncode == 0, proc.stderr
    job = aws_env.client("sagemaker").describe_training_job(TrainingJobName=result_json(proc)["job_name"])
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert job["ResourceConfig"]["VolumeSizeInGB"] == 100
    assert job["VpcConfig"] == {"Subnets": ["subnet-1234", "subnet-4567"], "SecurityGroupIds": ["sg-0123"]}
    assert job["EnableInterContainerTrafficEncryption"] is True


def test_seed_processor_parameters_reach_the_processing_request(aws_env):
    params = "max_runtime_in_seconds=3600 volume_size_in_gb=100"
    argv = [*seed_argv(SEED_GCONSTRUCT), "--sm-estimator-parameters", params]  # the later flag wins
    proc = gs_sagemaker("gconstruct", *argv)
    assert proc.returncode == 0, proc.stderr
    [sent] = aws_env.received("SageMaker.CreateProcessingJob")
    assert sent["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert sent["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 100


def test_graphstorm_flags_after_double_dash_are_forwarded_too(aws_env):
    argv = [*seed_argv(SEED_TRAIN), "--", "--fanout", "10,10", "--save-model-frequency", "5"]
    proc = gs_sagemaker("train", *argv)
    assert proc.returncode == 0, proc.stderr
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    arguments = sent["AlgorithmSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--") + 1 :] == [*GSF_ARGS, "--fanout", "10,10", "--save-model-frequency", "5"]


# --------------------------------------------------------------------------- modes
def test_async_execution_returns_once_the_job_is_created(aws_env):
    proc = gs_sagemaker("train", *seed_argv(SEED_TRAIN), "--async-execution")
    assert proc.returncode == 0, proc.stderr
    name = result_json(proc)["job_name"]
    assert f"Created SageMaker training job {name}" in proc.stdout
    assert "Completed" not in proc.stdout  # it did not wait
    # One describe only: the name check before the create (no job of that name yet), no polling.
    assert aws_env.received("SageMaker.DescribeTrainingJob") == [{"TrainingJobName": name}]
    assert [j["TrainingJobName"] for j in aws_env.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]] == [
        name
    ]


def test_dry_run_prints_the_request_and_sends_nothing(aws_env):
    argv = seed_argv(SEED_TRAIN)
    proc = gs_sagemaker("train", "--dry-run", *argv)
    assert proc.returncode == 0, proc.stderr
    request = json.loads(proc.stdout)
    assert request == rendered("train", argv, request["TrainingJobName"])
    assert_nothing_sent(aws_env)


def test_dry_run_does_not_import_boto3(aws_env):
    code = (
        "import sys\n"
        "from graphstorm_provider.cli.main import main\n"
        f"rc = main(['gconstruct', '--dry-run', *{seed_argv(SEED_GCONSTRUCT)!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'aiobotocore'))\n"
        "print('LOADED', loaded, rc, file=sys.stderr)\n"
        "sys.exit(1 if loaded or rc else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED [] 0" in proc.stderr


def test_help_lists_the_seed_flags_and_dry_run():
    proc = gs_sagemaker("train", "--help")
    assert proc.returncode == 0
    for flag in (
        "--image-url",
        "--role",
        "--graph-data-s3",
        "--yaml-s3",
        "--model-artifact-s3",
        "--sm-estimator-parameters",
        "--async-execution",
        "--dry-run",
    ):
        assert flag in proc.stdout


# --------------------------------------------------------------------------- bad input
BASE_TRAIN = [
    "--image-url",
    IMAGE,
    "--role",
    ROLE,
    "--region",
    REGION,
    "--graph-data-s3",
    f"{PATH_TO}/g/",
    "--yaml-s3",
    f"{PATH_TO}/train.yaml",
    "--model-artifact-s3",
    f"{PATH_TO}/model/",
    "--graph-name",
    "acm",
    "--task-type",
    "node_classification",
]
BASE_PARTITION = [
    "--image-url",
    IMAGE,
    "--role",
    ROLE,
    "--region",
    REGION,
    "--graph-data-s3",
    f"{PATH_TO}/c/",
    "--num-parts",
    "2",
    "--output-data-s3",
    f"{PATH_TO}/p/",
]
BASE_GCONSTRUCT = seed_argv(SEED_GCONSTRUCT.replace("--entry-point run/gconstruct_entry.py", ""))


def replace(argv: list[str], flag: str, value: str) -> list[str]:
    argv = list(argv)
    argv[argv.index(flag) + 1] = value
    return argv


def drop(argv: list[str], flag: str) -> list[str]:
    argv = list(argv)
    index = argv.index(flag)
    del argv[index : index + 2]
    return argv


BAD_INPUTS = {
    "missing role": (["train", *drop(BASE_TRAIN, "--role")], "--role"),
    "bad role": (["train", *replace(BASE_TRAIN, "--role", "SageMakerRole")], "--role"),
    "bad task type": (["train", *replace(BASE_TRAIN, "--task-type", "node_clasification")], "--task-type"),
    "not a uri": (["train", *replace(BASE_TRAIN, "--graph-data-s3", "/data/graph")], "--graph-data-s3"),
    "file uri on sagemaker": (
        ["train", *replace(BASE_TRAIN, "--model-artifact-s3", "file:///tmp/model")],
        "--model-artifact-s3",
    ),
    "bad region": (["train", *replace(BASE_TRAIN, "--region", "Mars")], "--region"),
    "reserved graphstorm flag": (["train", *BASE_TRAIN, "--part-config", "x.json"], "--part-config"),
    "zero parts": (["partition", *replace(BASE_PARTITION, "--num-parts", "0")], "--num-parts"),
    "parts not a multiple of count": (["partition", *BASE_PARTITION, "--instance-count", "3"], "--instance-count"),
    "estimator name on a processor": (
        ["gconstruct", *replace(BASE_GCONSTRUCT, "--sm-estimator-parameters", "volume_size=10")],
        "--sm-estimator-parameters",
    ),
    "malformed parameters": (
        ["train", *BASE_TRAIN, "--sm-estimator-parameters", "max_run 3600"],
        "--sm-estimator-parameters",
    ),
    "unknown command": (["training", *BASE_TRAIN], "training"),
    # Once forwarded to GraphStorm as an unknown flag: the job was created, not printed.
    "dry run with a value": (["train", *BASE_TRAIN, "--dry-run=1"], "--dry-run"),
    "job name of 82 characters": (["train", *BASE_TRAIN, "--job-name", "a" + "-" * 80 + "b"], "--job-name"),
}


@pytest.mark.parametrize(("argv", "parameter"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_line_exit_2_and_nothing_reaches_the_server(aws_env, argv, parameter):
    proc = gs_sagemaker(*argv)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("gs-sagemaker")
    assert ": error: " in lines[0]
    assert parameter in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert_nothing_sent(aws_env)


def test_missing_credentials_is_one_line_exit_1(aws_env):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET") and k != "AWS_SESSION_TOKEN"
    }
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # do not wait for an instance role that is not there
    proc = gs_sagemaker("train", *BASE_TRAIN, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("gs-sagemaker train: error: could not create SageMaker training job")
    assert "Traceback" not in proc.stderr
    assert_nothing_sent(aws_env)


# --------------------------------------------------------------------------- helpers, for real
def _processing_job(aws_env, name: str) -> None:
    aws_env.client("sagemaker").create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}},
    )


def test_wait_reports_a_stopped_job_as_failed(aws_env):
    client = aws_env.client("sagemaker")
    _processing_job(aws_env, "stopped-job")
    client.stop_processing_job(ProcessingJobName="stopped-job")  # moto: Completed -> Stopped
    seen = []
    with pytest.raises(sm.SageMakerJobFailed) as failure:
        sm.SageMakerBackend(client).wait("processing", "stopped-job", poll_seconds=0, on_status=seen.append)
    assert failure.value.status == "Stopped"
    assert [s.status for s in seen] == ["Stopped"]


def test_stop_job_leaves_an_ended_job_alone(aws_env):
    client = aws_env.client("sagemaker")
    _processing_job(aws_env, "done-job")
    assert sm.SageMakerBackend(client).stop("processing", "done-job") is False
    assert aws_env.received("SageMaker.StopProcessingJob") == []
    assert client.describe_processing_job(ProcessingJobName="done-job")["ProcessingJobStatus"] == "Completed"


def test_cloudwatch_tail_prints_each_line_once(aws_env):
    import time

    from graphstorm_provider.execution.sagemaker import CloudWatchTail

    now_ms = int(time.time() * 1000)  # CloudWatch drops events older than 14 days

    logs = aws_env.client("logs")
    group, stream = "/aws/sagemaker/TrainingJobs", "tail-job/algo-1-1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms + i, "message": f"epoch {i}"} for i in range(3)],
    )
    tail = CloudWatchTail(logs, "training", "tail-job")
    printed: list[str] = []
    assert tail.poll(printed.append) == 3
    assert tail.poll(printed.append) == 0
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now_ms + 10, "message": "done"}]
    )
    assert tail.poll(printed.append) == 1
    assert printed == ["[algo-1-1] epoch 0", "[algo-1-1] epoch 1", "[algo-1-1] epoch 2", "[algo-1-1] done"]


def test_local_instance_type_runs_here_and_reports_failure_in_words(aws_env, tmp_path):
    argv = [
        "--instance-type",
        "local",
        "--image-url",
        "graphstorm:sm",
        "--role",
        ROLE,
        "--graph-data-s3",
        f"file://{tmp_path}/no-graph/",
        "--yaml-s3",
        f"file://{tmp_path}/train.yaml",
        "--model-artifact-s3",
        f"file://{tmp_path}/model/",
        "--graph-name",
        "acm",
        "--task-type",
        "node_classification",
    ]
    proc = gs_sagemaker("train", *argv)
    assert proc.returncode == 1
    assert proc.stderr.startswith("gs-sagemaker train: error: ")
    assert "--graph-data-s3" in proc.stderr  # the entry point's sentence comes through
    assert "Traceback" not in proc.stderr
    assert "running" in proc.stdout  # the local backend's progress lines
    assert_nothing_sent(aws_env)


def _wait_for(condition, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def _launch_through(proxy, *argv: str) -> subprocess.Popen:
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "GS_SAGEMAKER_POLL_SECONDS": "0.2"}
    return subprocess.Popen(
        with_default_sigint([GS_SAGEMAKER, *argv]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_waiting_prints_status_changes_and_a_stopped_job_exits_1(aws_env, running_jobs_proxy):
    import boto3

    proc = _launch_through(running_jobs_proxy, "gconstruct", *BASE_GCONSTRUCT)
    _wait_for(lambda: running_jobs_proxy.targets.count("SageMaker.DescribeProcessingJob") >= 3)
    assert proc.poll() is None  # still waiting on the running job
    [created] = aws_env.received("SageMaker.CreateProcessingJob")
    # Someone stops the job in the console.
    boto3.client("sagemaker", region_name=REGION, endpoint_url=running_jobs_proxy.url).stop_processing_job(
        ProcessingJobName=created["ProcessingJobName"]
    )
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    statuses = [line.split(": ", 1)[1] for line in stdout.splitlines() if created["ProcessingJobName"] + ":" in line]
    assert statuses == ["InProgress", "Stopped"]  # each change once, not every poll
    assert stderr.strip() == (
        f"gs-sagemaker gconstruct: error: SageMaker job {created['ProcessingJobName']} ended Stopped: (no reason given)"
    )


def test_interrupt_while_waiting_leaves_the_job_running_and_says_how_to_stop_it(aws_env, running_jobs_proxy):
    import signal

    proc = _launch_through(running_jobs_proxy, "train", *BASE_TRAIN)
    try:
        _wait_for(lambda: running_jobs_proxy.targets.count("SageMaker.DescribeTrainingJob") >= 2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        end_tree(proc)  # a timeout must not leave gs-sagemaker running
    assert proc.returncode == 130
    [created] = aws_env.received("SageMaker.CreateTrainingJob")
    name = created["TrainingJobName"]
    assert stderr.strip() == (
        f"gs-sagemaker train: interrupted; SageMaker job {name} keeps running. Stop it with: "
        f"aws sagemaker stop-training-job --training-job-name {name} --region {REGION}"
    )
    assert aws_env.received("SageMaker.StopTrainingJob") == []
