"""A step's spec is parsed and rendered once per ``execute`` (and once per ``execute_complete``):
counted with spec subclasses that the operators use through ``spec_class``."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
DATA = "s3://graphstorm-examples/acm"
TRAIN = dict(
    image_url=IMAGE,
    role=ROLE,
    region="us-east-1",
    graph_data_s3=f"{DATA}/2p/",
    yaml_s3=f"{DATA}/t.yaml",
    model_artifact_s3=f"{DATA}/m/",
    graph_name="acm",
    task_type="node_classification",
)

CALLS: Counter[str] = Counter()


def counting(spec_class: type) -> type:
    """A subclass of ``spec_class`` that counts its parses and renders in ``CALLS``."""

    class Counting(spec_class):  # type: ignore[misc, valid-type]
        @classmethod
        def parse(cls, **raw: Any) -> dict[str, Any]:
            CALLS["parse"] += 1
            return super().parse(**raw)

        def _render(self, name: str, arguments: list[str]) -> dict[str, Any]:
            CALLS["render"] += 1
            return super()._render(name, arguments)

    return Counting


def counting_operator(operator_class: type, spec_class: type) -> type:
    spec = counting(spec_class)

    class CountingOperator(operator_class):  # type: ignore[misc, valid-type]
        @classmethod
        def spec_class(cls) -> type:
            return spec

    return CountingOperator


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def test_sagemaker_execute_parses_and_renders_once(aws_env):
    from graphstorm_provider.jobs.train import TrainSpec
    from graphstorm_provider.operators.train import GSTrainOperator

    operator = counting_operator(GSTrainOperator, TrainSpec)(
        task_id="train", check_interval=1, require_input_manifests=False, **TRAIN
    )
    result = operator.execute(context={})
    assert dict(CALLS) == {"parse": 1, "render": 1}
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    assert sent["TrainingJobName"] == result["job_name"]


def test_execute_complete_parses_and_renders_once(aws_env):
    from graphstorm_provider.jobs.train import TrainSpec
    from graphstorm_provider.operators.train import GSTrainOperator

    operator = counting_operator(GSTrainOperator, TrainSpec)(task_id="train", require_input_manifests=False, **TRAIN)
    result = operator.execute_complete({}, {"status": "success", "job_name": "gs-train-x"})
    assert result == {"job_name": "gs-train-x", "model_artifact_s3": f"{DATA}/m/"}
    assert dict(CALLS) == {"parse": 1, "render": 1}


def test_local_execute_parses_and_renders_once(aws_env, tmp_path):
    """A local run (here one that fails: its input does not exist) builds its spec once too."""
    from graphstorm_provider.jobs.gconstruct import GConstructSpec
    from graphstorm_provider.operators.gconstruct import GConstructOperator

    operator = counting_operator(GConstructOperator, GConstructSpec)(
        task_id="gconstruct",
        image_url=IMAGE,
        role="local",
        instance_type="local",
        aws_conn_id=None,
        input_graph_s3=f"file://{tmp_path}/missing/",
        output_graph_s3=f"file://{tmp_path}/out/",
        graph_name="acm",
        graph_config_file="config.json",
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - the failure's type is the local backend's
        operator.execute(context={})
    assert operator._runner is not None  # it did run, locally
    assert dict(CALLS) == {"parse": 1, "render": 1}


def test_build_names_a_copy_of_the_one_render():
    from graphstorm_provider.jobs.train import TrainSpec

    spec = counting(TrainSpec)(**TRAIN)
    first, second = spec.build("job-a"), spec.build("job-b")
    assert dict(CALLS) == {"parse": 1, "render": 1}
    assert (first.job_name, second.job_name) == ("job-a", "job-b")
    assert {**first.request, "TrainingJobName": "job-b"} == second.request
