"""
An empty ``region`` or ``instance_type`` is a mistake, not a request for the default.

A spec took ``values.get("region") or DEFAULT_REGION``: ``--region ""`` on the command line, or an
operator whose ``region="{{ params.region }}"`` rendered empty (a field cleared in the trigger form),
silently became us-west-2, and an operator did not even fall back to its AWS connection's region
(it does that only when ``region`` is not given at all). The same for ``instance_type``: an empty
value became the step's default instance type, a paid instance nobody chose. Only a missing value
(``None``: no flag, no argument) takes the default; an empty or blank one fails at parse or task
start with one sentence naming it, before anything is launched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from graphstorm_provider.exit_codes import EXIT_USAGE
from graphstorm_provider.jobs import JobSpecError, PartitionSpec, TrainSpec
from tests.spec_kwargs import IMAGE, ROLE, TRAIN, TRAIN_ARGV

GS_SAGEMAKER = str(Path(sys.executable).parent / "gs-sagemaker")


def error_of(**kwargs) -> str:
    with pytest.raises(JobSpecError) as info:
        TrainSpec(**kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.endswith("."), message
    return message


@pytest.mark.parametrize("name", ["region", "instance_type"])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_value_is_refused_naming_it(name, value):
    assert "--" + name.replace("_", "-") in error_of(**TRAIN, **{name: value})


@pytest.mark.parametrize("name", ["region", "instance_type"])
def test_a_missing_value_still_takes_the_default(name):
    spec = TrainSpec(**TRAIN, **{name: None})
    assert getattr(spec, name) == {"region": "us-west-2", "instance_type": TrainSpec.default_instance_type}[name]


@pytest.mark.parametrize("flag", ["--region", "--instance-type"])
def test_the_launch_script_grammar_refuses_an_empty_flag(flag):
    with pytest.raises(JobSpecError, match=flag):
        TrainSpec.from_argv([*TRAIN_ARGV, flag, ""])


def test_gs_sagemaker_refuses_an_empty_region_with_a_usage_error_and_no_request():
    proc = subprocess.run(
        [GS_SAGEMAKER, "train", *TRAIN_ARGV, "--region", "", "--dry-run"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stdout == ""  # --dry-run printed no request
    assert "--region" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def test_an_operator_whose_region_renders_empty_fails_instead_of_taking_a_region():
    """As ``region="{{ params.region }}"`` renders with the form's field cleared."""
    from graphstorm_provider.operators import GSTrainOperator

    operator = GSTrainOperator(task_id="train", **{**TRAIN, "region": "{{ params.region }}"})
    operator.region = ""  # what rendering the template left
    with pytest.raises(JobSpecError, match="region"):
        operator.build_job("gs-train-empty-region")


PARTITION = dict(
    image_url=IMAGE,
    role=ROLE,
    instance_type="ml.m5.12xlarge",
    graph_data_s3="s3://bucket-a/chunked/",
    output_data_s3="s3://bucket-a/parts/",
    num_parts=8,
)


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("instance_count", "--instance-count"),  # 8 paid instances nobody chose
        ("metadata_filename", "--metadata-filename"),
        ("partition_algorithm", "--partition-algorithm"),
        ("log_level", "--log-level"),
    ],
)
def test_an_empty_rendered_value_of_another_parameter_is_refused_too(name, flag):
    """As ``instance_count="{{ params.hosts }}"`` renders with the form's field cleared."""
    with pytest.raises(JobSpecError, match=flag):
        PartitionSpec(**PARTITION, **{name: ""})
    assert PartitionSpec(**PARTITION, **{name: None}).instance_count == 8  # missing: the default
