"""Job specs: GraphStorm's SageMaker README commands parse, render complete SageMaker requests (checked against
botocore's service model), and bad input fails with one sentence naming the parameter."""

from __future__ import annotations

import dataclasses
import shlex
from datetime import UTC, datetime

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from graphstorm_provider.jobs import (
    STEP_SPECS,
    GConstructSpec,
    InferSpec,
    JobRequest,
    JobSpecError,
    PartitionSpec,
    TrainSpec,
)
from graphstorm_provider.jobs.validation import JOB_NAME_RE

SAGEMAKER = get_session().get_service_model("sagemaker")
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
NOW = datetime(2026, 11, 28, 12, 30, 45, 123456, tzinfo=UTC)

# GraphStorm's SageMaker README commands with its placeholders filled in.
SEED_GCONSTRUCT = f"""
    --image-url {IMAGE} --region us-west-2 --entry-point run/gconstruct_entry.py --role {ROLE}
    --input-graph-s3 s3://path-to/acm/ --output-graph-s3 s3://path-to/acm_output/
    --graph-name acm --graph-config-file acm_raw/config.json
    --sm-estimator-parameters "volume_size_in_gb=10"
"""
SEED_PARTITION = f"""
    --graph-data-s3 s3://dataset-bucket/chunked --num-parts 4 --instance-count 4
    --output-data-s3 s3://output-bucket/partitioned --instance-type ml.r5.24xlarge
    --image-url {IMAGE} --region us-east-1 --role {ROLE} --entry-point "run/partition_entry.py"
    --metadata-filename metadata.json --log-level INFO --partition-algorithm random
"""
SEED_TRAIN = f"""
    --image-url {IMAGE} --region us-east-1 --entry-point run/train_entry.py --role {ROLE}
    --graph-data-s3 s3://path-to/ogbn_arxiv_nc_2p/ --yaml-s3 s3://path-to-training-config/arxiv_nc.yaml
    --model-artifact-s3 s3://path-to-save-trained-model/ --graph-name ogbn-arxiv
    --task-type "node_classification" --num-layers 1 --hidden-size 128 --backend gloo
    --batch-size 128 --node-feat-name node:feat
"""
SEED_INFER = f"""
    --image-url {IMAGE} --region us-east-1 --entry-point run/infer_entry.py --role {ROLE}
    --graph-data-s3 s3://path-to/ogbn_arxiv_nc_2p/ --yaml-s3 s3://path-to-training-config/arxiv_nc.yaml
    --model-artifact-s3  s3://path-to-saved-model/
    --output-emb-s3 s3://path-to-save-generated-node-embedding/
    --output-prediction-s3 s3://path-to-save-prediction-results
    --graph-name ogbn-arxiv --task-type "node_classification" --num-layers 1 --hidden-size 128
    --backend gloo --batch-size 128 --node-feat-name node:feat
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


def argv(command: str, *extra: str) -> list[str]:
    return shlex.split(command) + list(extra)


def assert_valid_api_request(job: JobRequest) -> None:
    operation = "CreateTrainingJob" if job.kind == "training" else "CreateProcessingJob"
    report = ParamValidator().validate(job.request, SAGEMAKER.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def error_of(spec_class, command: list[str] | None = None, **kwargs) -> str:
    with pytest.raises(JobSpecError) as info:
        spec_class.from_argv(command) if command is not None else spec_class(**kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.endswith((".", "?")), message
    return message


# --- GraphStorm's SageMaker README commands -------------------------------------------------------


def test_seed_gconstruct_renders_a_processing_job():
    job = GConstructSpec.from_argv(argv(SEED_GCONSTRUCT)).build(now=NOW)
    assert_valid_api_request(job)
    request = job.request
    assert (job.kind, job.step, job.region) == ("processing", "gconstruct", "us-west-2")
    assert request["ProcessingJobName"] == "gs-gconstruct-acm-2026-11-28-12-30-45-123"
    assert request["RoleArn"] == ROLE
    assert request["AppSpecification"] == {
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
    assert request["ProcessingResources"] == {
        "ClusterConfig": {"InstanceType": "ml.m5.12xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10}
    }
    [source] = request["ProcessingInputs"]
    assert source["S3Input"]["S3Uri"] == "s3://path-to/acm/"
    assert source["S3Input"]["LocalPath"] == "/opt/ml/processing/input"
    assert source["S3Input"]["S3DataType"] == "S3Prefix"
    [target] = request["ProcessingOutputConfig"]["Outputs"]
    assert target["S3Output"] == {
        "S3Uri": "s3://path-to/acm_output/",
        "LocalPath": "/opt/ml/processing/output",
        "S3UploadMode": "EndOfJob",
    }
    assert request["Environment"]["AWS_REGION"] == "us-west-2"
    assert job.outputs == {"output_graph_s3": "s3://path-to/acm_output/"}
    assert job.instance_count == 1
    assert job.image_uri == IMAGE


def test_seed_partition_renders_a_training_job_one_instance_per_partition():
    spec = PartitionSpec.from_argv(argv(SEED_PARTITION))
    job = spec.build(now=NOW)
    assert_valid_api_request(job)
    assert job.job_name == "gs-partition-2026-11-28-12-30-45-123"
    assert job.container_entrypoint == ["python3", "/opt/ml/code/partition_entry.py"]
    assert job.container_arguments == [
        "--graph-data-s3",
        "s3://dataset-bucket/chunked/",
        "--num-parts",
        "4",
        "--output-data-s3",
        "s3://output-bucket/partitioned/",
        "--metadata-filename",
        "metadata.json",
        "--partition-algorithm",
        "random",
        "--log-level",
        "INFO",
        "--",
    ]
    assert job.request["ResourceConfig"] == {"InstanceType": "ml.r5.24xlarge", "InstanceCount": 4, "VolumeSizeInGB": 30}
    # SageMaker's own output goes beside the partitioned graph, not into it (test below).
    assert job.request["OutputDataConfig"] == {"S3OutputPath": "s3://output-bucket/partitioned-sagemaker-output/"}
    assert job.request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert job.region == "us-east-1"
    assert job.environment["AWS_REGION"] == "us-east-1"
    assert job.outputs == {"output_data_s3": "s3://output-bucket/partitioned/"}


def test_seed_train_forwards_graphstorm_flags_verbatim():
    job = TrainSpec.from_argv(argv(SEED_TRAIN)).build(now=NOW)
    assert_valid_api_request(job)
    assert job.job_name == "gs-train-ogbn-arxiv-2026-11-28-12-30-45-123"
    assert job.container_entrypoint == ["python3", "/opt/ml/code/train_entry.py"]
    assert job.container_arguments == [
        "--graph-data-s3",
        "s3://path-to/ogbn_arxiv_nc_2p/",
        "--train-yaml-s3",
        "s3://path-to-training-config/arxiv_nc.yaml",
        "--model-artifact-s3",
        "s3://path-to-save-trained-model/",
        "--graph-name",
        "ogbn-arxiv",
        "--task-type",
        "node_classification",
        "--log-level",
        "INFO",
        "--",
        *GSF_ARGS,
    ]
    assert job.instance_type == "ml.g4dn.12xlarge"
    assert job.instance_count == 1
    assert job.request["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert "HyperParameters" not in job.request
    assert "InputDataConfig" not in job.request
    assert job.request["OutputDataConfig"]["S3OutputPath"] == "s3://path-to-save-trained-model/sagemaker-output/"
    assert job.xcom_value() == {"job_name": job.job_name, "model_artifact_s3": "s3://path-to-save-trained-model/"}


def test_seed_infer_renders_outputs_and_forwarded_flags():
    job = InferSpec.from_argv(argv(SEED_INFER)).build(now=NOW)
    assert_valid_api_request(job)
    assert job.job_name == "gs-infer-ogbn-arxiv-2026-11-28-12-30-45-123"
    assert job.container_arguments == [
        "--graph-data-s3",
        "s3://path-to/ogbn_arxiv_nc_2p/",
        "--infer-yaml-s3",
        "s3://path-to-training-config/arxiv_nc.yaml",
        "--model-artifact-s3",
        "s3://path-to-saved-model/",
        "--graph-name",
        "ogbn-arxiv",
        "--task-type",
        "node_classification",
        "--output-emb-s3",
        "s3://path-to-save-generated-node-embedding/",
        "--output-prediction-s3",
        "s3://path-to-save-prediction-results/",
        "--log-level",
        "INFO",
        "--",
        *GSF_ARGS,
    ]
    assert job.outputs == {
        "output_emb_s3": "s3://path-to-save-generated-node-embedding/",
        "output_prediction_s3": "s3://path-to-save-prediction-results/",
    }


def test_seed_training_sm_estimator_parameters_reach_the_request():
    params = "max_run=3600 volume_size=100 encrypt_inter_container_traffic=True subnets=['subnet-1234','subnet-4567']"
    # The SDK silently drops subnets given without security groups (vpc_utils.to_dict); a job
    # the user believes runs in their VPC but does not is worse than an error.
    with pytest.raises(JobSpecError, match="security_group_ids is required together with subnets"):
        job = TrainSpec.from_argv(argv(SEED_TRAIN, "--sm-estimator-parameters", params))
    job = TrainSpec.from_argv(
        argv(SEED_TRAIN, "--sm-estimator-parameters", params + " security_group_ids=['sg-1']")
    ).build()
    assert_valid_api_request(job)
    assert job.request["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert job.request["ResourceConfig"]["VolumeSizeInGB"] == 100
    assert job.request["EnableInterContainerTrafficEncryption"] is True
    assert job.request["VpcConfig"] == {"Subnets": ["subnet-1234", "subnet-4567"], "SecurityGroupIds": ["sg-1"]}


def test_seed_processing_sm_estimator_parameters_reach_the_request():
    job = GConstructSpec.from_argv(
        argv(SEED_GCONSTRUCT, "--sm-estimator-parameters", "max_runtime_in_seconds=3600 volume_size_in_gb=100")
    ).build()
    assert_valid_api_request(job)
    assert job.request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert job.request["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 100


def test_multi_value_graphstorm_flags_are_forwarded_in_order():
    # (--node-feat-name is in GSF_ARGS already: a flag given twice is refused, see below.)
    extra = [
        "--target-etype",
        "a,r,b",
        "c,s,d",
        "--eval-etype",
        "n0,r,f0",
        "n1,r,f1",
        "--num-epochs=2",
        "--lr",
        "-0.01",
    ]
    spec = TrainSpec.from_argv(argv(SEED_TRAIN, *extra))
    assert spec.graphstorm_args == (*GSF_ARGS, *extra)
    assert spec.build().container_arguments[-len(extra) :] == extra


def test_a_graphstorm_flag_given_twice_is_refused():
    with pytest.raises(JobSpecError, match=r"^--node-feat-name is given twice in the GraphStorm arguments"):
        TrainSpec.from_argv(argv(SEED_TRAIN, "--node-feat-name", "n0:f0"))


def test_explicit_separator_forwards_everything_after_it():
    spec = TrainSpec.from_argv(argv(SEED_TRAIN, "--", "--graph-name", "x", "--task-type", "y"))
    assert spec.graph_name == "ogbn-arxiv"
    assert spec.graphstorm_args[-4:] == ("--graph-name", "x", "--task-type", "y")


def test_compose_generator_flag_spellings_are_accepted():
    command = argv(SEED_TRAIN.replace("--yaml-s3", "--train-yaml-s3").replace("--image-url", "--image-uri"))
    spec = TrainSpec.from_argv(command)
    assert spec.yaml_s3 == "s3://path-to-training-config/arxiv_nc.yaml"
    assert spec.image_url == IMAGE
    infer = InferSpec.from_argv(argv(SEED_INFER.replace("--yaml-s3", "--infer-yaml-s3")))
    assert infer.yaml_s3 == "s3://path-to-training-config/arxiv_nc.yaml"
    gcons = GConstructSpec.from_argv(argv(SEED_GCONSTRUCT.replace("--input-graph-s3", "--graph-data-s3")))
    assert gcons.input_graph_s3 == "s3://path-to/acm/"


def test_gconstruct_forwards_unknown_flags_to_construct_graph():
    spec = GConstructSpec.from_argv(
        argv(
            SEED_GCONSTRUCT,
            "--num-processes",
            "4",
            "--output-format",
            "DistDGL",
            "--num-parts",
            "2",
            "--add-reverse-edges",
        )
    )
    assert spec.build().container_arguments[-8:] == [
        "--",
        "--num-processes",
        "4",
        "--output-format",
        "DistDGL",
        "--num-parts",
        "2",
        "--add-reverse-edges",
    ]


def test_step_specs_registry_and_help():
    assert {
        "gconstruct": GConstructSpec,
        "partition": PartitionSpec,
        "train": TrainSpec,
        "infer": InferSpec,
    } == STEP_SPECS
    for step, spec_class in STEP_SPECS.items():
        text = spec_class.argument_parser().format_help()
        assert f"gs-sagemaker {step}" in text
        assert "--sm-estimator-parameters" in text
        assert "--image-url" in text


# --- keyword construction (operators) ------------------------------------------------------------

TRAIN_KWARGS = dict(
    image_url=IMAGE,
    role=ROLE,
    graph_data_s3="s3://bucket-a/graph",
    yaml_s3="s3://bucket-a/t.yaml",
    model_artifact_s3="s3://bucket-a/model",
    graph_name="g",
    task_type="link_prediction",
)


def test_kwargs_and_argv_build_the_same_request():
    from_kwargs = TrainSpec(**TRAIN_KWARGS, graphstorm_args=["--num-epochs", 2])
    from_argv = TrainSpec.from_argv(
        [f"--{k.replace('_', '-')}={v}" for k, v in TRAIN_KWARGS.items()] + ["--num-epochs", "2"]
    )
    assert from_kwargs == from_argv
    assert from_kwargs.build(now=NOW).request == from_argv.build(now=NOW).request


def test_templated_strings_are_converted():
    spec = PartitionSpec(
        image_url=IMAGE,
        role=ROLE,
        graph_data_s3="s3://bucket-a/g",
        output_data_s3="s3://bucket-a/p",
        num_parts="2",
        instance_count="2",
        skip_partitioning="true",
        async_execution="False",
    )
    assert (spec.num_parts, spec.instance_count, spec.skip_partitioning, spec.async_execution) == (2, 2, True, False)
    assert "--skip-partitioning" in spec.build().container_arguments


def test_graphstorm_args_string_is_split_like_a_shell():
    spec = TrainSpec(**TRAIN_KWARGS, graphstorm_args="--num-layers 1 --target-etype 'a,r,b' c,s,d")
    assert spec.graphstorm_args == ("--num-layers", "1", "--target-etype", "a,r,b", "c,s,d")
    assert "cannot be split: No closing quotation" in error_of(TrainSpec, **TRAIN_KWARGS, graphstorm_args="--x 'a")
    assert "must be a list of strings" in error_of(TrainSpec, **TRAIN_KWARGS, graphstorm_args=["--x", None])


def test_sm_parameters_as_dict_equal_the_string_form():
    as_text = TrainSpec(**TRAIN_KWARGS, sm_estimator_parameters="max_run=60 tags={'a':'b'}")
    as_dict = TrainSpec(**TRAIN_KWARGS, sm_estimator_parameters={"max_run": 60, "tags": {"a": "b"}})
    assert as_text.build(now=NOW).request == as_dict.build(now=NOW).request
    assert as_dict.sm_parameters == {"max_run": 60, "tags": {"a": "b"}}


def test_specs_are_frozen():
    spec = TrainSpec(**TRAIN_KWARGS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.role = "x"


def test_partition_instance_count_defaults_to_num_parts():
    spec = PartitionSpec(
        image_url=IMAGE, role=ROLE, graph_data_s3="s3://bucket-a/g", output_data_s3="s3://bucket-a/p", num_parts=3
    )
    assert spec.instance_count == 3
    assert spec.build().instance_count == 3


def test_infer_model_sub_path_selects_one_checkpoint():
    spec = InferSpec(
        **{**TRAIN_KWARGS, "task_type": "compute_emb"}, output_emb_s3="s3://bucket-a/emb", model_sub_path="./epoch-2"
    )
    args = spec.build().container_arguments
    assert args[args.index("--model-artifact-s3") + 1] == "s3://bucket-a/model/epoch-2/"
    assert spec.build().outputs == {"output_emb_s3": "s3://bucket-a/emb/"}


def test_infer_optional_flags_reach_the_entry_point():
    spec = InferSpec(
        **TRAIN_KWARGS,
        output_prediction_s3="s3://bucket-a/pred",
        raw_node_mappings_s3="s3://bucket-a/raw",
        custom_script="/opt/ml/code/my.py",
    )
    args = spec.build().container_arguments
    assert args[args.index("--raw-node-mappings-s3") + 1] == "s3://bucket-a/raw/"
    assert args[args.index("--custom-script") + 1] == "/opt/ml/code/my.py"
    assert "--output-emb-s3" not in args
    assert spec.build().request["OutputDataConfig"]["S3OutputPath"] == "s3://bucket-a/pred-sagemaker-output/"


def test_train_checkpoint_and_custom_script_reach_the_entry_point():
    spec = TrainSpec(**TRAIN_KWARGS, model_checkpoint_to_load="s3://mag-model/epoch-2", custom_script="x.py")
    args = spec.build().container_arguments
    assert args[args.index("--model-checkpoint-to-load") + 1] == "s3://mag-model/epoch-2/"
    assert args[args.index("--custom-script") + 1] == "x.py"


def test_output_path_parameter_replaces_the_default_output():
    spec = TrainSpec(**TRAIN_KWARGS, sm_estimator_parameters="output_path='s3://other-bucket/sm/'")
    assert spec.build().request["OutputDataConfig"]["S3OutputPath"] == "s3://other-bucket/sm/"


# --- local mode -------------------------------------------------------------------------------


def test_file_uris_work_in_local_mode_only():
    local = dict(
        TRAIN_KWARGS,
        instance_type="local",
        role="local-role",
        graph_data_s3="file:///tmp/g",
        yaml_s3="file:///tmp/t.yaml",
        model_artifact_s3="file:///tmp/model/",
    )
    job = TrainSpec(**local, instance_count=2).build()
    assert job.is_local
    assert job.instance_count == 2
    assert job.container_arguments[:6] == [
        "--graph-data-s3",
        "file:///tmp/g/",
        "--train-yaml-s3",
        "file:///tmp/t.yaml",
        "--model-artifact-s3",
        "file:///tmp/model/",
    ]
    message = error_of(TrainSpec, **dict(local, instance_type="ml.m5.xlarge", role=ROLE))
    assert message.startswith("--graph-data-s3 is a file:// URI, which only works with --instance-type local")


# --- job names ---------------------------------------------------------------------------------


def test_job_name_from_task_name_and_explicit_name():
    spec = TrainSpec(**TRAIN_KWARGS, task_name="nightly-train")
    assert spec.build(now=NOW).job_name == "nightly-train-2026-11-28-12-30-45-123"
    assert spec.build("my-exact-name").job_name == "my-exact-name"


def test_derived_job_names_are_always_valid():
    spec = TrainSpec(**{**TRAIN_KWARGS, "graph_name": "a_very_long_graph_name_with_underscores_" * 3})
    name = spec.build().job_name
    assert len(name) <= 63, name
    assert JOB_NAME_RE.match(name), name
    long_task = TrainSpec(**TRAIN_KWARGS, task_name="t" * 35 + "-" + "u" * 40)
    name = long_task.build().job_name
    assert len(name) <= 63, name
    assert JOB_NAME_RE.match(name), name


def test_derived_job_names_differ_between_builds_a_millisecond_apart():
    spec = TrainSpec(**TRAIN_KWARGS)
    later = NOW.replace(microsecond=NOW.microsecond + 1000)
    assert spec.build(now=NOW).job_name != spec.build(now=later).job_name


# --- bad input: one sentence naming the parameter, before any request -------------------------

GOOD_TRAIN_ARGV = argv(SEED_TRAIN)


def without(command: list[str], flag_name: str) -> list[str]:
    index = command.index(flag_name)
    return command[:index] + command[index + 2 :]


def replaced(command: list[str], flag_name: str, value: str) -> list[str]:
    command = list(command)
    command[command.index(flag_name) + 1] = value
    return command


@pytest.mark.parametrize(
    "flag_name",
    ["--image-url", "--role", "--graph-data-s3", "--yaml-s3", "--model-artifact-s3", "--graph-name", "--task-type"],
)
def test_missing_required_flag(flag_name):
    message = error_of(TrainSpec, without(GOOD_TRAIN_ARGV, flag_name))
    assert "the following arguments are required" in message
    assert flag_name in message


@pytest.mark.parametrize(
    "field", ["image_url", "role", "graph_data_s3", "yaml_s3", "model_artifact_s3", "graph_name", "task_type"]
)
def test_missing_required_keyword(field):
    kwargs = {k: v for k, v in TRAIN_KWARGS.items() if k != field}
    assert error_of(TrainSpec, **kwargs) == f"--{field.replace('_', '-')} is required."


@pytest.mark.parametrize(
    ("flag_name", "value", "expected"),
    [
        ("--graph-data-s3", "path-to/graph", "--graph-data-s3 must be an s3:// URI"),
        ("--graph-data-s3", "s3:/bucket/graph", "--graph-data-s3 must be an s3:// URI"),
        ("--graph-data-s3", "https://bucket/graph", "--graph-data-s3 must be an s3:// URI"),
        ("--graph-data-s3", "s3://PATH_TO/graph", "--graph-data-s3 has an invalid S3 bucket name 'PATH_TO'"),
        ("--graph-data-s3", "s3:///graph", "--graph-data-s3 has an invalid S3 bucket name ''"),
        ("--graph-data-s3", "s3://bucket/a b", "--graph-data-s3 must not contain whitespace"),
        ("--yaml-s3", "s3://bucket/configs/", "--yaml-s3 must name a file"),
        ("--yaml-s3", "s3://bucket", "--yaml-s3 must name a file"),
        ("--model-artifact-s3", "file:///tmp/m", "--model-artifact-s3 is a file:// URI"),
        ("--graph-name", "ogbn/arxiv", "--graph-name 'ogbn/arxiv' is not a valid GraphStorm graph name"),
        ("--graph-name", "my graph", "--graph-name 'my graph' is not a valid GraphStorm graph name"),
        ("--task-type", "node_classifcation", "--task-type 'node_classifcation' is not one of"),
        ("--task-type", "compute_emb", "--task-type 'compute_emb' is not one of"),
        ("--role", "SageMakerRole", "--role 'SageMakerRole' is not an IAM role ARN"),
        ("--region", "us_west_2", "--region 'us_west_2' is not an AWS region name"),
    ],
)
def test_malformed_values(flag_name, value, expected):
    assert error_of(TrainSpec, replaced(GOOD_TRAIN_ARGV, flag_name, value)).startswith(expected)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--instance-count", "0"], "--instance-count must be at least 1, got 0."),
        (["--instance-count", "-2"], "--instance-count must be at least 1, got -2."),
        (["--instance-count", "two"], "argument --instance-count: invalid int value: 'two'"),
        (["--instance-type", "m5.xlarge"], "--instance-type 'm5.xlarge' is not a SageMaker instance type"),
        (["--task-name", "my_task"], "--task-name 'my_task' is not a valid SageMaker job name"),
        (["--log-level", "LOUD"], "argument --log-level: invalid choice: 'LOUD'"),
        (
            ["--sm-estimator-parameters", "subnets=['a', 'b']"],
            "--sm-estimator-parameters: the value of subnets contains a space",
        ),
        (["--sm-estimator-parameters", "max_run=one-hour"], "--sm-estimator-parameters: the value of max_run"),
        (
            ["--sm-estimator-parameters", "max_runtime=3600"],
            "--sm-estimator-parameters: unknown training-job parameter max_runtime",
        ),
        (
            ["--sm-estimator-parameters", "volume_size_in_gb=100"],
            "--sm-estimator-parameters: volume_size_in_gb is a processing-job name",
        ),
        (
            ["--save-embed-path", "/fsx/emb"],
            "--save-embed-path cannot be passed to GraphStorm here: it only works with a shared file system",
        ),
        (["--save_prediction_path=/fsx/p"], "--save-prediction-path cannot be passed to GraphStorm here"),
        (["--part-config", "/x/g.json"], "--part-config cannot be passed to GraphStorm here"),
        (
            ["--restore-model-path", "/x"],
            "--restore-model-path cannot be passed to GraphStorm here: use --model-checkpoint-to-load",
        ),
    ],
)
def test_bad_train_input(extra, expected):
    assert expected in error_of(TrainSpec, GOOD_TRAIN_ARGV + extra)


def test_save_paths_set_to_none_are_allowed_as_the_seed_says():
    spec = TrainSpec.from_argv(GOOD_TRAIN_ARGV + ["--save-embed-path", "None", "--save-prediction-path=None"])
    assert spec.graphstorm_args[-3:] == ("--save-embed-path", "None", "--save-prediction-path=None")


@pytest.mark.parametrize(
    "flag_name", ["--save-embed-path", "--save_embed_path", "--save-prediction-path", "--save_prediction_path"]
)
def test_infer_refuses_save_paths_with_the_seeds_reason(flag_name):
    message = error_of(InferSpec, argv(SEED_INFER, flag_name, "/fsx/out"))
    assert "shared file system, which SageMaker does not provide" in message
    assert ("--output-emb-s3" in message) or ("--output-prediction-s3" in message)


def test_infer_refuses_save_paths_passed_as_keyword_graphstorm_args():
    kwargs = dict(TRAIN_KWARGS, output_emb_s3="s3://bucket-a/emb")
    assert "shared file system" in error_of(InferSpec, **kwargs, graphstorm_args=["--save_embed_path", "/x"])


def test_infer_needs_somewhere_to_write():
    assert error_of(InferSpec, **TRAIN_KWARGS).startswith("--output-emb-s3 or --output-prediction-s3 is required")
    kwargs = dict(TRAIN_KWARGS, task_type="compute_emb", output_prediction_s3="s3://bucket-a/p")
    assert error_of(InferSpec, **kwargs) == "--output-emb-s3 is required with --task-type compute_emb."


def test_infer_accepts_compute_emb():
    spec = InferSpec(**dict(TRAIN_KWARGS, task_type="compute_emb"), output_emb_s3="s3://bucket-a/emb")
    assert spec.task_type == "compute_emb"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/acm_raw/config.json", "--graph-config-file must be a path relative to --input-graph-s3, got absolute"),
        ("../secrets/config.json", "--graph-config-file must stay inside --input-graph-s3 ('..' is not allowed)"),
        ("acm_raw/../../config.json", "--graph-config-file must stay inside --input-graph-s3"),
        ("s3://path-to/acm/config.json", "--graph-config-file must be a path relative to --input-graph-s3, not a URI"),
        (".", "--graph-config-file must name a file under --input-graph-s3"),
    ],
)
def test_graph_config_file_must_stay_inside_the_input(value, expected):
    assert error_of(GConstructSpec, replaced(argv(SEED_GCONSTRUCT), "--graph-config-file", value)).startswith(expected)


def test_graph_config_file_is_normalised():
    spec = GConstructSpec.from_argv(replaced(argv(SEED_GCONSTRUCT), "--graph-config-file", "./acm_raw//config.json"))
    assert spec.graph_config_file == "acm_raw/config.json"


def test_gconstruct_runs_on_one_instance():
    message = error_of(GConstructSpec, argv(SEED_GCONSTRUCT, "--instance-count", "2"))
    assert message.startswith("--instance-count must be 1 for gconstruct")


def test_gconstruct_refuses_training_parameters_suggesting_the_processing_name():
    message = error_of(GConstructSpec, argv(SEED_GCONSTRUCT, "--sm-estimator-parameters", "volume_size=100"))
    assert "volume_size is a training-job name" in message
    assert "use volume_size_in_gb instead" in message


def test_gconstruct_refuses_flags_the_job_sets():
    assert "--output-graph-s3" in error_of(GConstructSpec, argv(SEED_GCONSTRUCT, "--output-dir", "/tmp/x"))
    assert "--graph-config-file" in error_of(GConstructSpec, argv(SEED_GCONSTRUCT, "--conf-file", "x.json"))


def test_partition_num_parts_must_be_a_multiple_of_instance_count():
    message = error_of(PartitionSpec, replaced(argv(SEED_PARTITION), "--instance-count", "3"))
    assert message == (
        "--num-parts (4) must be a multiple of --instance-count (3): "
        "each instance builds the same number of partitions."
    )


def test_partition_one_instance_may_build_several_partitions():
    spec = PartitionSpec.from_argv(replaced(argv(SEED_PARTITION), "--instance-count", "2"))
    assert spec.build().instance_count == 2
    assert spec.num_parts == 4


def test_partition_local_defaults_to_one_instance_building_every_partition():
    spec = PartitionSpec(
        instance_type="local",
        image_url=IMAGE,
        role=ROLE,
        graph_data_s3="file:///tmp/chunked",
        output_data_s3="file:///tmp/parted",
        num_parts=2,
    )
    job = spec.build()
    assert job.is_local
    assert job.instance_count == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("--num-parts", "0"), "--num-parts must be at least 1, got 0."),
        (("--partition-algorithm", "metis"), "argument --partition-algorithm: invalid choice: 'metis'"),
        (("--metadata-filename", "../m.json"), "--metadata-filename must stay inside --graph-data-s3"),
    ],
)
def test_bad_partition_input(change, expected):
    assert expected in error_of(PartitionSpec, replaced(argv(SEED_PARTITION), *change))


def test_partition_refuses_unknown_flags():
    message = error_of(PartitionSpec, argv(SEED_PARTITION, "--num-layers", "2"))
    assert message == "gs-sagemaker partition: unrecognized arguments: --num-layers 2."


def test_abbreviated_flags_are_not_guessed():
    # allow_abbrev=False: "--graph-data" is not silently taken as --graph-data-s3; it is forwarded,
    # and the real flag is then missing.
    command = [a if a != "--graph-data-s3" else "--graph-data" for a in GOOD_TRAIN_ARGV]
    assert "--graph-data-s3" in error_of(TrainSpec, command)


def test_stray_positional_argument():
    message = error_of(TrainSpec, GOOD_TRAIN_ARGV[:2] + ["oops"] + GOOD_TRAIN_ARGV[2:])
    assert message == "Unexpected argument 'oops': GraphStorm options must start with --."


def test_invalid_explicit_job_name():
    spec = TrainSpec(**TRAIN_KWARGS)
    for bad in ("has_underscore", "-leading", "x" * 64, "a" + "-" * 62 + "b"):
        with pytest.raises(JobSpecError, match="--job-name .* is not a valid SageMaker job name"):
            spec.build(bad)


def test_container_argument_limits_are_checked_before_launch():
    too_many = [f"--flag-{i}" for i in range(90)]
    message = error_of(TrainSpec, **TRAIN_KWARGS, graphstorm_args=too_many)
    assert message.startswith("The job would pass 103 container arguments but SageMaker allows at most 100")
    long_uri = "s3://bucket-a/" + "p" * 250
    message = error_of(TrainSpec, **dict(TRAIN_KWARGS, graph_data_s3=long_uri))
    assert message.startswith("The value of --graph-data-s3 is 265 characters long")


def test_argparse_errors_never_exit():
    for spec_class in STEP_SPECS.values():
        with pytest.raises(JobSpecError):
            spec_class.from_argv([])


# --- URI normalisation rule -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("s3://bucket-a/graph", "s3://bucket-a/graph/"),
        ("s3://bucket-a/graph/", "s3://bucket-a/graph/"),
        ("s3://bucket-a/graph///", "s3://bucket-a/graph/"),
        ("s3://bucket-a", "s3://bucket-a/"),
        ("s3://bucket-a/", "s3://bucket-a/"),
    ],
)
def test_folder_uris_end_with_one_slash(given, normalised):
    # The model goes to another bucket: an output inside the graph's prefix is refused.
    kwargs = dict(TRAIN_KWARGS, graph_data_s3=given, model_artifact_s3="s3://bucket-b/model")
    assert TrainSpec(**kwargs).graph_data_s3 == normalised


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("file:///data", "file:///data/"),
        ("file:///tmp//g/./x", "file:///tmp/g/x/"),
        ("file:///tmp/g/", "file:///tmp/g/"),
    ],
)
def test_local_folder_uris_are_normalised_too(given, normalised):
    kwargs = dict(TRAIN_KWARGS, instance_type="local", graph_data_s3=given)
    assert TrainSpec(**kwargs).graph_data_s3 == normalised


@pytest.mark.parametrize(
    "value",
    [
        "file://tmp/g",
        "file:///tmp/../etc",
        "/tmp/g",
        "file:///tmp/%2e%2e/etc",
        "file:///tmp/%2E%2E/etc",
        "file:///tmp/.%2e/etc",
        "file:///",
        "file:////",
        "file:///etc",
        "file:///usr/lib/x",
        "file:///proc/self",
        "file:///opt/ml/model",
    ],
)
def test_bad_local_uris(value):
    message = error_of(TrainSpec, **dict(TRAIN_KWARGS, instance_type="local", graph_data_s3=value))
    assert message.startswith("--graph-data-s3 must be")


def test_file_yaml_must_name_a_file():
    kwargs = dict(TRAIN_KWARGS, instance_type="local", yaml_s3="file:///")
    assert error_of(TrainSpec, **kwargs).startswith("--yaml-s3 must name a file")


def test_model_sub_path_cannot_leave_the_model_folder():
    kwargs = dict(TRAIN_KWARGS, output_emb_s3="s3://bucket-a/emb", model_sub_path="../other-model")
    assert error_of(InferSpec, **kwargs).startswith("--model-sub-path must stay inside --model-artifact-s3")


@pytest.mark.parametrize(
    ("spec_class", "command"),
    [
        (GConstructSpec, SEED_GCONSTRUCT),
        (PartitionSpec, SEED_PARTITION),
        (TrainSpec, SEED_TRAIN),
        (InferSpec, SEED_INFER),
    ],
)
def test_normalisation_is_idempotent_so_replace_works(spec_class, command):
    spec = spec_class.from_argv(argv(command))
    assert dataclasses.replace(spec) == spec
    local = dataclasses.replace(spec, instance_type="local")
    assert local.build(now=NOW).is_local
    assert local.build(now=NOW).container_arguments == spec.build(now=NOW).container_arguments


def test_abbreviated_reserved_flags_are_caught():
    # GraphStorm's own argparse accepts unique prefixes, so --save-pred would mean --save-prediction-path.
    message = error_of(InferSpec, argv(SEED_INFER, "--save-pred", "/fsx/p"))
    assert message.startswith("--save-pred (--save-prediction-path) cannot be passed to GraphStorm here")
    # A GraphStorm flag that merely shares a short prefix is forwarded.
    assert InferSpec.from_argv(argv(SEED_INFER, "--save-embed-format", "hdf5")).graphstorm_args[-2:] == (
        "--save-embed-format",
        "hdf5",
    )


# --- property: whatever the command line, a spec or one JobSpecError (never SystemExit/other) ---

from hypothesis import (  # noqa: E402
    HealthCheck,
    given,
    settings,
    strategies as st,
)

_FLAGS = sorted(
    {
        opt
        for spec_class in STEP_SPECS.values()
        for action in spec_class.argument_parser()._actions
        for opt in action.option_strings
        if opt not in ("-h", "--help")
    }
)
_TOKENS = (
    st.sampled_from(_FLAGS)
    | st.sampled_from(
        ["--", "--save-embed-path", "None", "0", "-1", "local", "s3://bucket-a/x", "file:///tmp/x", "a=1", "x y"]
    )
    | st.text(max_size=12).filter(lambda t: t not in ("-h", "--help"))
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(step=st.sampled_from(sorted(STEP_SPECS)), tokens=st.lists(_TOKENS, max_size=8), keep_base=st.booleans())
def test_any_command_line_gives_a_spec_or_a_job_spec_error(step, tokens, keep_base):
    base = {"gconstruct": SEED_GCONSTRUCT, "partition": SEED_PARTITION, "train": SEED_TRAIN, "infer": SEED_INFER}
    command = (argv(base[step]) if keep_base else []) + tokens
    try:
        spec = STEP_SPECS[step].from_argv(command)
    except JobSpecError as exc:
        refused = exc
    else:
        refused = None
        job = spec.build()
        assert JOB_NAME_RE.match(job.job_name)
    if refused is not None:
        assert str(refused)
        assert "\n" not in str(refused)


@pytest.mark.parametrize(
    ("step", "kwargs"),
    [
        ("infer", dict(TRAIN_KWARGS, task_type="node_classification", output_emb_s3="s3://bucket-a/run/emb/1/",
                       output_prediction_s3="s3://bucket-a/run/pred/1/")),
        ("infer", dict(TRAIN_KWARGS, task_type="node_classification", output_prediction_s3="s3://bucket-a/run/pred/1/")),
        ("partition", dict(image_url=IMAGE, role=ROLE, graph_data_s3="s3://bucket-a/chunked/",
                           output_data_s3="s3://bucket-a/run/parts/1/", num_parts=2)),
    ],
)  # fmt: skip
def test_sagemaker_s_own_output_lands_beside_the_step_s_outputs_not_in_them(step, kwargs):
    """SageMaker writes ``<S3OutputPath>/<job>/output/model.tar.gz`` (an empty model for these steps):
    inside the embeddings folder it looked like one more node type to a reader listing
    ``<emb>/<node type>/``, inside the partitioned graph like one more file of it."""
    job = STEP_SPECS[step](**kwargs).build("job-1")
    path = job.request["OutputDataConfig"]["S3OutputPath"]
    assert not any(path.startswith(uri) for uri in job.outputs.values()), (path, job.outputs)
    main = next(iter(job.outputs.values()))
    assert path == main.rstrip("/") + "-sagemaker-output/"


def test_a_model_keeps_sagemaker_s_output_inside_its_folder_as_graphstorm_s_own_training_does():
    job = STEP_SPECS["train"](**TRAIN_KWARGS).build("job-1")
    assert job.request["OutputDataConfig"]["S3OutputPath"] == job.outputs["model_artifact_s3"] + "sagemaker-output/"
