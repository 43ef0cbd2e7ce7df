"""--sm-estimator-parameters: the "k=v k=v" grammar of GraphStorm's SageMaker launch scripts and the SDK-2 -> API mapping."""

from __future__ import annotations

import string

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings, strategies as st

from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.sm_fields import FIELDS
from graphstorm_provider.jobs.sm_params import (
    SmParameterError,
    apply_sm_parameters,
    normalise_sm_parameters,
    parse_sm_parameters,
)

SAGEMAKER = get_session().get_service_model("sagemaker")


def assert_valid_api_request(request: dict, operation: str) -> None:
    report = ParamValidator().validate(request, SAGEMAKER.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


# --- the grammar, on the launch scripts' own examples ---------------------------------------------


def test_seed_training_example_parses_to_literals():
    text = "max_run=3600 volume_size=100 encrypt_inter_container_traffic=True subnets=['subnet-1234','subnet-4567']"
    assert parse_sm_parameters(text) == {
        "max_run": 3600,
        "volume_size": 100,
        "encrypt_inter_container_traffic": True,
        "subnets": ["subnet-1234", "subnet-4567"],
    }


def test_seed_processing_examples_parse():
    assert parse_sm_parameters("max_runtime_in_seconds=3600 volume_size_in_gb=100") == {
        "max_runtime_in_seconds": 3600,
        "volume_size_in_gb": 100,
    }
    assert parse_sm_parameters("volume_size_in_gb=10") == {"volume_size_in_gb": 10}


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_means_no_parameters(text):
    assert parse_sm_parameters(text) == {}


def test_value_may_contain_equals_and_extra_separating_whitespace():
    assert parse_sm_parameters("  environment={'A':'x=y'}   tags={'k':'v'}  ") == {
        "environment": {"A": "x=y"},
        "tags": {"k": "v"},
    }


@pytest.mark.parametrize(
    ("text", "expected_in_message"),
    [
        ("subnets=['subnet-1', 'subnet-2']", "the value of subnets contains a space"),
        ("max_run=3600 volume_size= 100", "the value of volume_size contains a space"),
        ("subnets=[subnet-1]", "not a Python literal"),
        ("volume_size=abc", "strings need quotes"),
        ("max_run=__import__('os')", "not a Python literal"),
        ("max_run=", "empty value"),
        ("max_run", "not in name=value form"),
        ("=3", "not in name=value form"),
        ("max-run=3", "'max-run' is not a valid parameter name"),
        ("max_run=1 max_run=2", "max_run is given twice"),
        ("x={[1]:2}", "not a Python literal"),
        ("x=" + "[" * 5000, "not a Python literal"),
    ],
)
def test_malformed_strings_raise_one_sentence(text, expected_in_message):
    with pytest.raises(SmParameterError) as info:
        parse_sm_parameters(text)
    message = str(info.value)
    assert expected_in_message in message
    assert message.startswith("--sm-estimator-parameters")
    assert "\n" not in message


def test_errors_are_value_errors_and_job_spec_errors():
    with pytest.raises(ValueError, match="contains a space before 'c'"):
        parse_sm_parameters("a=b c")
    assert issubclass(SmParameterError, JobSpecError)


def test_dict_form_is_copied_and_checked():
    original = {"subnets": ["s-1"]}
    params = normalise_sm_parameters(original)
    params["subnets"].append("s-2")
    assert original == {"subnets": ["s-1"]}
    with pytest.raises(SmParameterError, match="not a valid parameter name"):
        normalise_sm_parameters({"max run": 1})
    with pytest.raises(SmParameterError, match="string or a dict"):
        normalise_sm_parameters(["max_run=1"])


# --- property-based: literals round-trip, malformed input only ever raises ValueError --------

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    # repr() escapes every whitespace character except the plain space.
    | st.text(max_size=20).filter(lambda s: " " not in s)
)
LITERALS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8).filter(lambda s: " " not in s) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)


def render(value) -> str:
    """A Python literal without spaces (repr() of containers puts spaces after commas)."""
    if isinstance(value, list):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ",".join(render(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{render(k)}:{render(v)}" for k, v in value.items()) + "}"
    return repr(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=st.dictionaries(NAMES, LITERALS, max_size=6), sep=st.sampled_from([" ", "  ", "\t", " \n "]))
def test_well_formed_strings_parse_to_the_literal_values(params, sep):
    text = sep.join(f"{name}={render(value)}" for name, value in params.items())
    assert parse_sm_parameters(text) == params


CHARS = st.sampled_from(list("ab_=[]{}()'\",:.0189 -\t\\\nTrueNon")) | st.characters()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(CHARS, max_size=60))
def test_any_string_parses_or_raises_value_error_with_a_message(text):
    try:
        result = parse_sm_parameters(text)
    except ValueError as exc:  # any other exception type fails the test
        refused = exc
    else:
        refused = None
        assert isinstance(result, dict)
        assert all(name.isidentifier() for name in result)
    if refused is not None:
        assert isinstance(refused, SmParameterError)
        assert str(refused).startswith("--sm-estimator-parameters")


def _corrupt(kind: str, word: str) -> str:
    return {
        "no_equals": word,
        "bad_name": f"9{word}=1",
        "dashed_name": f"a-{word}=1",
        "unquoted_word": f"x={word}-1",
        "empty_value": f"{word}=",
        "unbalanced": f"x=[{word!r}",
        "space_in_value": f"x=[1, {word!r}]",
    }[kind]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=st.dictionaries(NAMES, LITERALS, max_size=3),
    kind=st.sampled_from(
        ["no_equals", "bad_name", "dashed_name", "unquoted_word", "empty_value", "unbalanced", "space_in_value"]
    ),
    word=st.text(string.ascii_lowercase, min_size=1, max_size=8),
    position=st.integers(min_value=0, max_value=3),
)
def test_malformed_strings_always_raise_value_error(params, kind, word, position):
    tokens = [f"{name}={render(value)}" for name, value in params.items()]
    tokens.insert(min(position, len(tokens)), _corrupt(kind, word))
    with pytest.raises(ValueError, match="^--sm-estimator-parameters") as info:
        parse_sm_parameters(" ".join(tokens))
    assert isinstance(info.value, SmParameterError)
    assert str(info.value)


# --- mapping SDK-2 names to API fields ----------------------------------------------------------


def _training_skeleton() -> dict:
    return {
        "TrainingJobName": "j",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out/"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "Environment": {"AWS_REGION": "us-west-2"},
        "Tags": [{"Key": "GraphStorm", "Value": "graphstorm-airflow"}],
    }


def _processing_skeleton() -> dict:
    return {
        "ProcessingJobName": "j",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AppSpecification": {"ImageUri": "img"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "output",
                    "S3Output": {
                        "S3Uri": "s3://bucket/out/",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "Environment": {"AWS_REGION": "us-west-2"},
    }


TRAINING_PARAMS = (
    "max_run=3600 max_wait=7200 use_spot_instances=True volume_size=100 volume_kms_key='kms-1' "
    "keep_alive_period_in_seconds=600 output_path='s3://other-bucket/out/' output_kms_key='kms-2' "
    "disable_output_compression=True subnets=['subnet-1234','subnet-4567'] security_group_ids=['sg-1'] "
    "encrypt_inter_container_traffic=True enable_network_isolation=False checkpoint_s3_uri='s3://ck-bucket/ck/' "
    "checkpoint_local_path='/opt/ml/checkpoints' max_retry_attempts=3 input_mode='FastFile' "
    "metric_definitions=[{'Name':'loss','Regex':'loss=([0-9.]+)'}] enable_sagemaker_metrics=True "
    "training_repository_access_mode='Vpc' training_repository_credentials_provider_arn='arn:aws:lambda:x' "
    "disable_profiler=True enable_infra_check=True enable_remote_debug=False "
    "environment={'GS_DEBUG':'1','N':2} tags=[{'Key':'team','Value':'graphs'}]"
)


def test_every_training_name_lands_in_its_api_field():
    params = parse_sm_parameters(TRAINING_PARAMS)
    assert set(params) == set(FIELDS["training"]), "every mapped training name is exercised"
    request = apply_sm_parameters(_training_skeleton(), params, "training")
    assert_valid_api_request(request, "CreateTrainingJob")
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 100,
        "VolumeKmsKeyId": "kms-1",
        "KeepAlivePeriodInSeconds": 600,
    }
    assert request["OutputDataConfig"] == {
        "S3OutputPath": "s3://other-bucket/out/",
        "KmsKeyId": "kms-2",
        "CompressionType": "NONE",
    }
    assert request["VpcConfig"] == {"Subnets": ["subnet-1234", "subnet-4567"], "SecurityGroupIds": ["sg-1"]}
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["EnableNetworkIsolation"] is False
    assert request["CheckpointConfig"] == {"S3Uri": "s3://ck-bucket/ck/", "LocalPath": "/opt/ml/checkpoints"}
    assert request["RetryStrategy"] == {"MaximumRetryAttempts": 3}
    algo = request["AlgorithmSpecification"]
    assert algo["TrainingInputMode"] == "FastFile"
    assert algo["MetricDefinitions"] == [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]
    assert algo["EnableSageMakerMetricsTimeSeries"] is True
    assert algo["TrainingImageConfig"] == {
        "TrainingRepositoryAccessMode": "Vpc",
        "TrainingRepositoryAuthConfig": {"TrainingRepositoryCredentialsProviderArn": "arn:aws:lambda:x"},
    }
    assert request["ProfilerConfig"] == {"DisableProfiler": True}
    assert request["InfraCheckConfig"] == {"EnableInfraCheck": True}
    assert request["RemoteDebugConfig"] == {"EnableRemoteDebug": False}
    assert request["Environment"] == {"AWS_REGION": "us-west-2", "GS_DEBUG": "1", "N": "2"}
    assert request["Tags"] == [{"Key": "GraphStorm", "Value": "graphstorm-airflow"}, {"Key": "team", "Value": "graphs"}]


def test_every_processing_name_lands_in_its_api_field():
    params = parse_sm_parameters(
        "max_runtime_in_seconds=3600 volume_size_in_gb=100 volume_kms_key='kms-1' output_kms_key='kms-2' "
        "subnets=['subnet-1'] security_group_ids=['sg-1'] encrypt_inter_container_traffic=True "
        "enable_network_isolation=True env={'A':'b'} tags={'team':'graphs'}"
    )
    request = apply_sm_parameters(_processing_skeleton(), params, "processing")
    assert_valid_api_request(request, "CreateProcessingJob")
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 100
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "kms-1"
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == "kms-2"
    assert request["NetworkConfig"] == {
        "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        "EnableInterContainerTrafficEncryption": True,
        "EnableNetworkIsolation": True,
    }
    assert request["Environment"] == {"AWS_REGION": "us-west-2", "A": "b"}
    assert request["Tags"] == [{"Key": "team", "Value": "graphs"}]


def test_processing_network_config_dict_is_the_sdk_object_spelled_as_a_dict():
    params = parse_sm_parameters(
        "network_config={'subnets':['subnet-1'],'security_group_ids':['sg-1'],'enable_network_isolation':True}"
    )
    request = apply_sm_parameters(_processing_skeleton(), params, "processing")
    assert_valid_api_request(request, "CreateProcessingJob")
    assert request["NetworkConfig"] == {
        "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        "EnableNetworkIsolation": True,
    }


def test_apply_does_not_mutate_its_input():
    skeleton = _training_skeleton()
    apply_sm_parameters(skeleton, {"max_run": 10, "environment": {"X": "1"}}, "training")
    assert skeleton == _training_skeleton()


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("processing", "volume_size=100", "use volume_size_in_gb instead"),
        ("processing", "max_run=3600", "use max_runtime_in_seconds instead"),
        ("processing", "environment={'A':'b'}", "use env instead"),
        ("training", "volume_size_in_gb=100", "use volume_size instead"),
        ("training", "max_runtime_in_seconds=3600", "use max_run instead"),
        ("training", "env={'A':'b'}", "use environment instead"),
        ("training", "network_config={}", "use subnets=[...]"),
        ("processing", "use_spot_instances=True", "only applies to training jobs"),
        ("training", "max_runn=3600", "did you mean max_run?"),
        ("processing", "volume_size_in_g=10", "did you mean volume_size_in_gb?"),
        ("training", "zzz=1", "supported names:"),
        ("training", "role='x'", "--role"),
        ("training", "instance_count=2", "--instance-count"),
        ("processing", "base_job_name='x'", "--task-name"),
        ("training", "entry_point='x.py'", "no code upload"),
        ("training", "hyperparameters={'a':'1'}", "command line"),
    ],
)
def test_names_that_do_not_apply_are_refused_with_the_right_name(kind, text, expected):
    skeleton = _training_skeleton() if kind == "training" else _processing_skeleton()
    with pytest.raises(SmParameterError) as info:
        apply_sm_parameters(skeleton, parse_sm_parameters(text), kind)
    assert expected in str(info.value)
    assert text.partition("=")[0] in str(info.value)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("training", "max_run='hour'", "max_run must be an integer"),  # '3600' is taken: a rendered template's form
        ("training", "max_run=0", "max_run must be an integer from 1"),
        ("training", "volume_size=True", "volume_size must be an integer"),
        ("training", "use_spot_instances=1", "use_spot_instances must be True or False"),
        ("training", "subnets='subnet-1'", "subnets must be a list"),
        ("training", "subnets=[] security_group_ids=['sg']", "subnets must be a list of 1"),
        ("training", "security_group_ids=['sg-1']", "subnets is required together with security_group_ids"),
        ("processing", "subnets=['s-1']", "security_group_ids is required together with subnets"),
        ("training", "max_wait=10", "max_wait only applies with use_spot_instances=True"),
        ("training", "use_spot_instances=True", "needs max_wait"),
        ("training", "use_spot_instances=True max_wait=10 max_run=20", "max_wait must be at least max_run"),
        ("training", "checkpoint_local_path='/opt/ml/x'", "needs checkpoint_s3_uri"),
        ("training", "checkpoint_local_path='/x'", "inside /opt/ml"),
        ("training", "checkpoint_s3_uri='/local/dir'", "checkpoint_s3_uri must be an s3://"),
        ("training", "output_path='file:///tmp/x'", "output_path must be an s3://"),
        ("training", "input_mode='Stream'", "input_mode must be one of"),
        ("training", "enable_network_isolation=True", "cut the train, infer and partition entry points off"),
        ("training", "environment={'AWS_REGION':'eu-west-1'}", "--region"),
        ("training", "environment={'1BAD':'x'}", "environment variable names"),
        ("training", "environment=['A']", "environment must be a dict"),
        # SageMaker's lengths (a 300-character env value, ...) are checked on the whole request at spec
        # construction, against botocore's model: tests/test_sagemaker_api_limits.py.
        ("training", "tags=['a']", "tags must be a list of"),
        ("training", "metric_definitions=[{'Name':'x'}]", "metric_definitions must be"),
        ("training", "training_repository_credentials_provider_arn='arn:x'", "training_repository_access_mode"),
        ("processing", "network_config={'bogus':1}", "network_config must be a dict with keys"),
    ],
)
def test_bad_values_are_refused_naming_the_parameter(kind, text, expected):
    skeleton = _training_skeleton() if kind == "training" else _processing_skeleton()
    with pytest.raises(JobSpecError) as info:
        apply_sm_parameters(skeleton, parse_sm_parameters(text), kind)
    assert expected in str(info.value)
    assert str(info.value).startswith("--sm-estimator-parameters")


def test_file_output_path_is_accepted_in_local_mode():
    skeleton = _training_skeleton()
    skeleton["ResourceConfig"]["InstanceType"] = "local"
    request = apply_sm_parameters(skeleton, {"output_path": "file:///tmp/out/"}, "training")
    assert request["OutputDataConfig"]["S3OutputPath"] == "file:///tmp/out/"


def test_user_tags_replace_ours_with_the_same_key():
    request = apply_sm_parameters(_training_skeleton(), {"tags": {"GraphStorm": "mine", "b": "c"}}, "training")
    assert request["Tags"] == [{"Key": "GraphStorm", "Value": "mine"}, {"Key": "b", "Value": "c"}]


@pytest.mark.parametrize(
    ("kind", "field", "name"),
    [
        ("training", "environment", "AWS_SECRET_ACCESS_KEY"),
        ("training", "environment", "AWS_ACCESS_KEY_ID"),
        ("training", "environment", "aws_session_token"),
        ("processing", "env", "AWS_SESSION_TOKEN"),
        ("processing", "env", "AWS_SECURITY_TOKEN"),
    ],
)
def test_aws_credentials_in_the_job_environment_are_refused_without_echoing_them(kind, field, name):
    # The request's Environment is stored by SageMaker and shown to whoever may describe the job,
    # printed by --dry-run, and written into a local job's config files.
    skeleton = _training_skeleton() if kind == "training" else _processing_skeleton()
    with pytest.raises(JobSpecError) as info:
        apply_sm_parameters(skeleton, {field: {name: "canary-credential-value"}}, kind)
    message = str(info.value)
    assert message.startswith(f"--sm-estimator-parameters: {field} must not set {name}")
    assert "canary-credential-value" not in message
    assert message.count(". ") == 0  # one sentence
    assert message.endswith(".")
