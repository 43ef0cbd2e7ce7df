"""
SageMaker's own limits on a rendered request: maxima, lengths, patterns and enums of botocore's model.

The tests' ``ParamValidator`` (and boto3 before sending) checks types, required members and
minimums only, so a value passed through ``--sm-estimator-parameters`` that breaks a ``max``, a
``pattern`` or an ``enum`` of the CreateTrainingJob / CreateProcessingJob input shapes used to be
accepted, and failed only at launch with SageMaker's ValidationException. Each such value now
fails at spec construction (CLI parse, operator task start) with one sentence naming the
parameter; values the model allows are accepted, where our own caps used to be tighter.
"""

from __future__ import annotations

import logging
import re
import string
import subprocess
import sys
import unicodedata

import pytest
from botocore.session import get_session

from graphstorm_provider.jobs import GConstructSpec, JobSpecError, TrainSpec, api_limits
from tests.spec_kwargs import GCONSTRUCT, TRAIN, TRAIN_ARGV

SAGEMAKER = get_session().get_service_model("sagemaker")

PARAM = "--sm-estimator-parameters"

SPECS = {"training": (TrainSpec, TRAIN), "processing": (GConstructSpec, GCONSTRUCT)}
ENV_NAME = {"training": "environment", "processing": "env"}


def spec_of(kind: str, params: str | dict, **changes):
    spec_class, kwargs = SPECS[kind]
    return spec_class(**{**kwargs, **changes}, sm_estimator_parameters=params)


def error_of(kind: str, params: str | dict, **changes) -> str:
    with pytest.raises(JobSpecError) as info:
        spec_of(kind, params, **changes)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.endswith((".", "?")), message
    return message


# --- values SageMaker refuses: refused at construction, naming the parameter -----------------------


@pytest.mark.parametrize("kind", ["training", "processing"])
@pytest.mark.parametrize("value", ["a,b", "team#1", "x;y"])
def test_a_tag_value_with_characters_sagemaker_refuses(kind, value):
    message = error_of(kind, {"tags": {"team": value}})
    assert message.startswith(f"{PARAM}: tags value of 'team' must contain only letters, digits, spaces and"), message
    assert repr(value) in message


@pytest.mark.parametrize("kind", ["training", "processing"])
def test_a_tag_key_with_characters_sagemaker_refuses(kind):
    message = error_of(kind, "tags=[{'Key':'cost#centre','Value':'x'}]")
    assert message.startswith(f"{PARAM}: tags key must contain only letters"), message
    assert "'cost#centre'" in message


def test_tags_in_any_script_sagemaker_allows_are_accepted():
    # TagKey / TagValue are \p{L}\p{Z}\p{N} plus _.:/=+-@: letters and digits of any script, and spaces.
    spec = spec_of("training", {"tags": {"équipe": "graphes 2 ١٢ Ⅻ", "k": "a_b.c:d/e=f+g-h@i"}})
    assert {"Key": "équipe", "Value": "graphes 2 ١٢ Ⅻ"} in spec.build().request["Tags"]


@pytest.mark.parametrize(
    ("kind", "params", "subject"),
    [
        ("training", "subnets=['subnet_1'] security_group_ids=['sg-1']", "subnets[0]"),
        ("training", "subnets=['subnet-1','subnet.2'] security_group_ids=['sg-1']", "subnets[1]"),
        ("training", {"subnets": ["subnet-1"], "security_group_ids": ["sg 1"]}, "security_group_ids[0]"),
        ("processing", "subnets=['subnet-1'] security_group_ids=['sg/1']", "security_group_ids[0]"),
        ("processing", "network_config={'subnets':['subnet:1'],'security_group_ids':['sg-1']}",
         "network_config['subnets'][0]"),
    ],
)  # fmt: skip
def test_subnet_and_security_group_ids_with_other_characters(kind, params, subject):
    message = error_of(kind, params)
    assert message.startswith(f"{PARAM}: {subject} must contain only letters, digits and hyphens"), message


def test_a_subnet_id_longer_than_sagemaker_allows():
    message = error_of("training", {"subnets": ["subnet-" + "a" * 30], "security_group_ids": ["sg-1"]})
    assert message == f"{PARAM}: subnets[0] must be at most 32 characters long, got 37 characters."


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("training", "volume_kms_key"),
        ("training", "output_kms_key"),
        ("processing", "volume_kms_key"),
        ("processing", "output_kms_key"),
    ],
)
def test_a_kms_key_alias_with_a_dot(kind, name):
    message = error_of(kind, {name: "alias/my.key"})
    assert message.startswith(f"{PARAM}: {name} must contain only letters, digits and :/_-"), message
    assert "'alias/my.key'" in message


def test_kms_key_ids_sagemaker_allows_are_accepted():
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    spec = spec_of("training", {"volume_kms_key": "alias/my-key_1", "output_kms_key": arn})
    assert spec.build().request["OutputDataConfig"]["KmsKeyId"] == arn


@pytest.mark.parametrize(("kind", "limit"), [("training", 512), ("processing", 256)])
def test_an_environment_variable_name_longer_than_sagemaker_allows(kind, limit):
    name = ENV_NAME[kind]
    message = error_of(kind, {name: {"A" * (limit + 1): "1"}})
    assert message.startswith(f"{PARAM}: {name} variable 'AAAA"), message
    assert message.endswith(f"must be at most {limit} characters long, got {limit + 1} characters."), message


@pytest.mark.parametrize(("kind", "limit"), [("training", 512), ("processing", 256)])
def test_an_environment_value_too_long_names_the_variable_never_the_value(kind, limit):
    name = ENV_NAME[kind]
    secret = "s3cr3t-" * (limit // 7 + 1)
    message = error_of(kind, {name: {"GS_TOKEN": secret}})
    assert message == (
        f"{PARAM}: {name} value of GS_TOKEN must be at most {limit} characters long, got {len(secret)} characters."
    )
    assert "s3cr3t" not in message


def test_an_environment_variable_name_with_a_trailing_newline():
    # The hand-written check used re.match(r"...$"), and "$" also matches before a final newline.
    message = error_of("training", {"environment": {"GS_DEBUG\n": "1"}})
    assert message.startswith(f"{PARAM}: environment must be a dict whose keys are environment variable names")


@pytest.mark.parametrize("kind", ["training", "processing"])
def test_environment_size_counts_the_variables_the_job_sets_itself(kind):
    # The job sets AWS_REGION, AWS_DEFAULT_REGION and GRAPHSTORM_REQUEST_DIGEST: 97 more make 100, 98 make 101.
    name = ENV_NAME[kind]
    spec_of(kind, {name: {f"V{i}": "1" for i in range(97)}})
    message = error_of(kind, {name: {f"V{i}": "1" for i in range(98)}})
    assert message == (
        f"{PARAM}: {name} must have at most 100 entries, got 101 "
        "(with AWS_REGION, AWS_DEFAULT_REGION and GRAPHSTORM_REQUEST_DIGEST, which the job sets itself)."
    )


def test_more_than_40_metric_definitions():
    definitions = [{"Name": f"m{i}", "Regex": f"m{i}=([0-9.]+)"} for i in range(41)]
    message = error_of("training", {"metric_definitions": definitions})
    assert message == f"{PARAM}: metric_definitions must have at most 40 items, got 41."
    spec_of("training", {"metric_definitions": definitions[:40]})


def test_a_metric_regex_longer_than_sagemaker_allows():
    message = error_of("training", {"metric_definitions": [{"Name": "loss", "Regex": "x" * 501}]})
    assert message == f"{PARAM}: metric_definitions[0]['Regex'] must be 1 to 500 characters long, got 501 characters."


def test_a_role_arn_with_a_non_ascii_letter():
    # validation.role's pattern used \w, which is Unicode in Python; SageMaker's RoleArn pattern is ASCII.
    message = error_of("training", None, role="arn:aws:iam::123456789012:role/Rôle")
    assert message.startswith("--role must match SageMaker's pattern "), message


def test_from_the_command_line_too():
    with pytest.raises(JobSpecError) as info:
        TrainSpec.from_argv([*TRAIN_ARGV, "--sm-estimator-parameters", "tags={'team':'a#b'}"])
    assert str(info.value).startswith(f"{PARAM}: tags value of 'team' must contain only")


# --- values SageMaker allows: accepted (our caps were tighter than the API's) -----------------------


def test_keep_alive_up_to_the_api_maximum_is_accepted():
    spec = spec_of("training", "keep_alive_period_in_seconds=21600")
    assert spec.build().request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 21600
    message = error_of("training", "keep_alive_period_in_seconds=21601")
    assert message == f"{PARAM}: keep_alive_period_in_seconds must be an integer from 0 to 21600, got 21601."


def test_processing_max_runtime_up_to_nine_days_is_accepted():
    spec = spec_of("processing", "max_runtime_in_seconds=777600")
    assert spec.build().request["StoppingCondition"]["MaxRuntimeInSeconds"] == 9 * 24 * 3600
    message = error_of("processing", "max_runtime_in_seconds=777601")
    assert message == f"{PARAM}: max_runtime_in_seconds must be an integer from 1 to 777600, got 777601."


# --- the model, read without botocore, is botocore's ------------------------------------------------


def test_the_model_read_from_botocores_data_file_is_botocores_model():
    model = api_limits.service_shapes()
    assert model is not None
    for operation, shape_name in model.inputs.items():
        assert shape_name == SAGEMAKER.operation_model(operation).input_shape.name
    assert len(model.shapes) > 100
    for name, shape in model.shapes.items():
        theirs = SAGEMAKER.shape_for(name)
        assert shape["type"] == theirs.type_name, name
        for key in ("min", "max", "pattern", "enum"):
            assert shape.get(key) == theirs.metadata.get(key), (name, key)


def test_the_model_is_read_once_per_process():
    for params in ("tags={'a':'b'}", "max_run=10", None):
        spec_of("training", params)
    spec_of("processing", "env={'A':'b'}")
    assert api_limits.service_shapes.cache_info().misses == 1
    assert api_limits.service_shapes.cache_info().currsize == 1


def test_building_a_spec_imports_no_aws_sdk():
    # gs-sagemaker --dry-run and an operator's task start read the model file, never import botocore.
    code = (
        "import sys\n"
        "from graphstorm_provider.jobs import TrainSpec, JobSpecError\n"
        f"kwargs = {TRAIN!r}\n"
        "TrainSpec(**kwargs, sm_estimator_parameters={'tags': {'team': 'graphs'}}).build()\n"
        "try:\n"
        "    TrainSpec(**kwargs, sm_estimator_parameters={'tags': {'team': 'a#b'}})\n"
        "except JobSpecError as exc:\n"
        "    print('REFUSED', exc)\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'aiobotocore')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "REFUSED --sm-estimator-parameters: tags value of 'team'" in proc.stdout
    assert "LOADED []" in proc.stdout


# --- which requests are checked, and how a value is named -------------------------------------------


def test_local_requests_are_not_checked():
    # 'local' is no SageMaker instance type, and file:// URIs and any role are the local backends' own.
    spec = spec_of(
        "training",
        {"tags": {"team": "a#b"}},
        instance_type="local",
        role="local",
        graph_data_s3="file:///srv/gs/graph/",
        yaml_s3="file:///srv/gs/t.yaml",
        model_artifact_s3="file:///srv/gs/model/",
    )
    assert spec.build().is_local


def test_an_instance_type_newer_than_botocore_is_accepted_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger=api_limits.__name__):
        spec = spec_of("training", None, instance_type="ml.zz99.48xlarge")
    assert spec.build().instance_type == "ml.zz99.48xlarge"
    assert "'ml.zz99.48xlarge' is not among the installed botocore's SageMaker TrainingInstanceType values" in (
        caplog.text
    )


def test_a_closed_enum_is_checked():
    model = api_limits.service_shapes()
    assert model is not None
    request = {"OutputDataConfig": {"S3OutputPath": "s3://b/o/", "CompressionType": "ZIP"}}
    [found] = api_limits.violations(request, model.inputs["CreateTrainingJob"], model.shapes)
    assert found.path == ("OutputDataConfig", "CompressionType")
    assert found.requirement == "must be one of 'GZIP', 'NONE'"


def test_a_value_no_parameter_or_flag_set_is_named_by_its_request_path():
    request = TrainSpec(**TRAIN).build().request
    request["OutputDataConfig"]["S3OutputPath"] = "s3://bucket-a/" + "k" * 1100
    with pytest.raises(JobSpecError) as info:
        api_limits.check_request(request, "training", {})
    assert str(info.value) == (
        "The request's OutputDataConfig.S3OutputPath must be at most 1024 characters long, got 1114 characters."
    )


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("Tags", 2, "Value"), "Tags[2].Value"),
        (("Environment", "GS_DEBUG"), "Environment.GS_DEBUG"),
        (("Environment", "A B"), "Environment['A B']"),
        (
            ("AlgorithmSpecification", "MetricDefinitions", 0, "Regex"),
            "AlgorithmSpecification.MetricDefinitions[0].Regex",
        ),
    ],
)
def test_request_paths_as_messages_print_them(path, text):
    assert api_limits.request_path(path) == text


# --- Java patterns in Python --------------------------------------------------------------------------

TAG_PATTERN = SAGEMAKER.shape_for("TagValue").metadata["pattern"]
EVERY_CODE_POINT = range(sys.maxunicode + 1)


def test_the_tag_pattern_translates_exactly():
    # ([\p{L}\p{Z}\p{N}_.:/=+\-@]*): every code point, against Python's Unicode database.
    assert TAG_PATTERN == "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"
    pattern = api_limits.compiled_pattern(TAG_PATTERN)
    assert pattern is not None
    wrong = [
        hex(point)
        for point in EVERY_CODE_POINT
        if bool(pattern.fullmatch(chr(point)))
        != (unicodedata.category(chr(point))[0] in "LZN" or chr(point) in "_.:/=+-@")
    ]
    assert wrong == []


def test_alnum_is_ascii_letters_and_digits_as_in_java():
    pattern = api_limits.compiled_pattern(
        SAGEMAKER.shape_for("TrainingRepositoryCredentialsProviderArn").metadata["pattern"]
    )
    assert pattern is not None
    assert pattern.fullmatch("arn:aws-cn:lambda:cn-north-1:123456789012:function:auth")
    assert not pattern.fullmatch("arn:aws:lambda:us-east-1:123456789012:fn:auth")
    alnum = re.compile(api_limits.translate_pattern("\\p{Alnum}"), re.ASCII)
    assert [chr(p) for p in EVERY_CODE_POINT if alnum.fullmatch(chr(p))] == sorted(string.ascii_letters + string.digits)


def test_letters_alone_translate_to_letters_plus_some_numbers_never_less():
    letters = re.compile(api_limits.translate_pattern("\\p{L}"), re.ASCII)
    matched = {p for p in EVERY_CODE_POINT if letters.fullmatch(chr(p))}
    categories = {p: unicodedata.category(chr(p)) for p in EVERY_CODE_POINT}
    assert {p for p, c in categories.items() if c[0] == "L"} <= matched
    assert {categories[p] for p in matched if categories[p][0] != "L"} <= {"Nl", "No"}


def test_separators_are_exactly_unicode_category_z():
    separators = re.compile(api_limits.translate_pattern("[\\p{Z}]"), re.ASCII)
    assert [p for p in EVERY_CODE_POINT if separators.fullmatch(chr(p))] == [
        p for p in EVERY_CODE_POINT if unicodedata.category(chr(p))[0] == "Z"
    ]


@pytest.mark.parametrize("terminator", ["\n", "\r", "\x85", "\u2028", "\u2029"])
def test_java_dot_stops_at_line_terminators(terminator):
    dot = re.compile(api_limits.translate_pattern(".*"), re.ASCII)
    assert dot.fullmatch("any\tthing é")
    assert not dot.fullmatch(f"a{terminator}b")


def test_digits_and_word_characters_are_ascii_as_in_java():
    role = api_limits.compiled_pattern(SAGEMAKER.shape_for("RoleArn").metadata["pattern"])
    assert role is not None
    assert role.fullmatch("arn:aws:iam::123456789012:role/R")
    assert not role.fullmatch("arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/R")  # Arabic-Indic digits
    assert not re.compile(api_limits.translate_pattern("\\w+"), re.ASCII).fullmatch("é")


@pytest.mark.parametrize(
    "java",
    [
        "\\p{M}*",  # no Python equivalent
        "\\P{L}",  # negated property
        "[^\\p{L}]",  # negated class of letters
        "\\p{N}",  # numbers without letters
        "[a[b]]",  # nested class (a union in Java)
        "[a-z&&[^e]]",  # intersection
        "\\Qa.b\\E",  # quoting
        "[\\uD800\\uDC00-\\uDBFF\\uDFFF]",  # UTF-16 surrogate pairs (AthenaCatalog)
        "[\\p{L}-z]",  # a range from a property
        "\\h",  # horizontal whitespace
        "[abc",  # unterminated
    ],
)
def test_constructs_without_a_python_equivalent_are_refused_not_guessed(java):
    with pytest.raises(api_limits.UntranslatablePattern):
        api_limits.translate_pattern(java)


def test_an_untranslatable_pattern_is_logged_once_and_left_unchecked(caplog):
    java = "[\\p{S}]+ (a pattern of this test only)"
    with caplog.at_level(logging.WARNING, logger=api_limits.__name__):
        assert api_limits.compiled_pattern(java) is None
        assert api_limits.compiled_pattern(java) is None
    assert caplog.text.count("is not checked before launch") == 1


def _patterns(shape, seen: set[str]):
    if shape.name in seen:
        return
    seen.add(shape.name)
    if "pattern" in shape.metadata:
        yield shape.name, shape.metadata["pattern"]
    children = {
        "structure": lambda: list(shape.members.values()),
        "list": lambda: [shape.member],
        "map": lambda: [shape.key, shape.value],
    }.get(shape.type_name, list)()
    for child in children:
        yield from _patterns(child, seen)


# Shapes whose pattern has no translation, and why no request of ours holds one.
UNTRANSLATED = {"AthenaCatalog": "ProcessingInputs[].DatasetDefinition: our processing inputs are S3 prefixes"}


def test_every_pattern_our_requests_can_reach_translates():
    untranslated = set()
    for operation in api_limits.OPERATIONS.values():
        for name, java in _patterns(SAGEMAKER.operation_model(operation).input_shape, set()):
            try:
                re.compile(api_limits.translate_pattern(java), re.ASCII)
            except (api_limits.UntranslatablePattern, re.error):
                untranslated.add(name)
    assert untranslated == set(UNTRANSLATED)
