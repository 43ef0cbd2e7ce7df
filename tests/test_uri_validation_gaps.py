"""
Two ways a URI used to slip past ``validation.uri`` and fail only after the job had run.

A. ``--sm-estimator-parameters output_path=...`` (and ``checkpoint_s3_uri``) had a check of its own
   (s3://bucket or, locally, any file:///...), without the '..' and system-folder rules every
   other URI gets; the local backend then wrote model.tar.gz under it after a successful job.
B. A percent-encoded control character (``%00``, ``%0a``) passed the raw-text check, but
   ``file://`` paths are percent-decoded (``uris.parse_uri``), so the upload failed with
   ``ValueError: embedded null byte`` naming nothing.

Each bad value fails at spec construction with a one-sentence :class:`JobSpecError` naming the
parameter; nothing is rendered, launched or written.
"""

from __future__ import annotations

import pytest

from graphstorm_provider.jobs import GConstructSpec, JobSpecError, TrainSpec
from tests import spec_kwargs
from tests.spec_kwargs import IMAGE, ROLE

MAX_MESSAGE = 400

TRAIN = dict(spec_kwargs.TRAIN, task_type="link_prediction")
LOCAL_TRAIN = dict(
    TRAIN,
    instance_type="local",
    role="local",
    graph_data_s3="file:///tmp/gaps/graph/",
    yaml_s3="file:///tmp/gaps/t.yaml",
    model_artifact_s3="file:///tmp/gaps/model/",
)
LOCAL_GCONSTRUCT = dict(
    image_url=IMAGE,
    role="local",
    instance_type="local",
    input_graph_s3="file:///tmp/in/",
    output_graph_s3="file:///tmp/out/",
    graph_name="acm",
    graph_config_file="config.json",
)


def error_of(spec_cls, **kwargs) -> str:
    with pytest.raises(JobSpecError) as info:
        spec_cls(**kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert len(message) <= MAX_MESSAGE, message
    assert message.endswith("."), message
    assert "Traceback" not in message
    return message


# --- A: output_path / checkpoint_s3_uri get the same checks as every other URI ------------------


@pytest.mark.parametrize("name", ["output_path", "checkpoint_s3_uri"])
@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        (LOCAL_TRAIN, "file:///tmp/a/../b/"),
        (LOCAL_TRAIN, "file:///tmp/a/%2e%2e/%2E%2E/etc/"),
        (LOCAL_TRAIN, "file:///etc/"),
        (LOCAL_TRAIN, "file:///etc/graphstorm/"),
        (LOCAL_TRAIN, "file:///"),
        (LOCAL_TRAIN, "file:///tmp/"),
        (LOCAL_TRAIN, "file://relative/out/"),
        (LOCAL_TRAIN, "file:///tmp/out\n/"),
        (LOCAL_TRAIN, "s3://bucket-a/x/../y/"),
        (TRAIN, "s3://bucket-a/x/../y/"),
        (TRAIN, "s3://bucket-a/x/%2e%2e/y/"),
        (TRAIN, "s3://Bad_Bucket/x/"),
        (TRAIN, "file:///tmp/out/"),
    ],
    ids=[
        "local-dotdot",
        "local-pct-dotdot",
        "local-etc",
        "local-inside-etc",
        "local-root",
        "local-tmp-itself",
        "local-relative",
        "local-newline",
        "local-s3-dotdot",
        "s3-dotdot",
        "s3-pct-dotdot",
        "s3-bad-bucket",
        "file-on-sagemaker",
    ],
)
def test_bad_sm_parameter_uri_fails_at_construction_naming_it(kwargs, value, name):
    params = {name: value}
    if name == "checkpoint_s3_uri":
        params["checkpoint_local_path"] = "/opt/ml/checkpoints"
    message = error_of(TrainSpec, **kwargs, sm_estimator_parameters=params)
    assert message.startswith(f"--sm-estimator-parameters: {name} "), message


def test_bad_output_path_in_the_launch_script_grammar_fails_the_same_way():
    message = error_of(TrainSpec, **LOCAL_TRAIN, sm_estimator_parameters="output_path='file:///etc/'")
    assert message.startswith("--sm-estimator-parameters: output_path "), message
    assert "/etc" in message


@pytest.mark.parametrize(
    ("kwargs", "value", "expected"),
    [
        (LOCAL_TRAIN, "file:///tmp/out/", "file:///tmp/out/"),
        (LOCAL_TRAIN, "file:///tmp/out", "file:///tmp/out/"),
        (LOCAL_TRAIN, "file:///tmp/my%20models/", "file:///tmp/my%20models/"),
        (LOCAL_TRAIN, "s3://bucket-a/out/", "s3://bucket-a/out/"),
        (TRAIN, "s3://bucket-a/out/", "s3://bucket-a/out/"),
        (TRAIN, "s3://bucket-a/out", "s3://bucket-a/out/"),
        (TRAIN, "s3://bucket-a", "s3://bucket-a/"),
    ],
)
def test_good_output_path_keeps_working(kwargs, value, expected):
    request = TrainSpec(**kwargs, sm_estimator_parameters={"output_path": value}).build().request
    assert request["OutputDataConfig"]["S3OutputPath"] == expected


def test_good_checkpoint_uri_keeps_working():
    params = {"checkpoint_s3_uri": "s3://bucket-a/ck", "checkpoint_local_path": "/opt/ml/checkpoints"}
    request = TrainSpec(**TRAIN, sm_estimator_parameters=params).build().request
    assert request["CheckpointConfig"] == {"S3Uri": "s3://bucket-a/ck/", "LocalPath": "/opt/ml/checkpoints"}


# --- B: control characters are refused after percent-decoding too --------------------------------


@pytest.mark.parametrize("encoded", ["%00", "%0a", "%0A", "%0d", "%09", "%1b", "%7f", "%c2%85"])
@pytest.mark.parametrize("name", ["input_graph_s3", "output_graph_s3"])
def test_percent_encoded_control_character_in_a_file_uri_is_refused(name, encoded):
    value = f"file:///tmp/{name}{encoded}x/"
    message = error_of(GConstructSpec, **dict(LOCAL_GCONSTRUCT, **{name: value}))
    assert message.startswith(f"--{name.replace('_', '-')} "), message
    assert "control character" in message


def test_percent_encoded_nul_in_a_yaml_file_uri_is_refused():
    message = error_of(TrainSpec, **dict(LOCAL_TRAIN, yaml_s3="file:///tmp/gaps/t%00.yaml"))
    assert message.startswith("--yaml-s3 "), message


def test_percent_encoded_nul_in_output_path_is_refused():
    message = error_of(TrainSpec, **LOCAL_TRAIN, sm_estimator_parameters={"output_path": "file:///tmp/o%00x/"})
    assert message.startswith("--sm-estimator-parameters: output_path "), message
    assert "control character" in message


def test_percent_encoded_printable_characters_stay_accepted():
    spec = GConstructSpec(**dict(LOCAL_GCONSTRUCT, output_graph_s3="file:///tmp/out%20put%C3%A9/"))
    assert spec.output_graph_s3 == "file:///tmp/out%20put%C3%A9/"


def test_s3_keys_are_never_percent_decoded_so_a_literal_percent_sequence_is_kept():
    # uris.parse_uri keeps an S3 key verbatim (so do the manifest code and the entry points'
    # transfer.parse_uri): '%00' there is three ordinary characters of a legal key, not a NUL.
    spec = GConstructSpec(
        **dict(
            LOCAL_GCONSTRUCT,
            instance_type="ml.m5.xlarge",
            role=ROLE,
            input_graph_s3="s3://bucket-a/in/",
            output_graph_s3="s3://bucket-a/out%00x/",
        )
    )
    assert spec.output_graph_s3 == "s3://bucket-a/out%00x/"
