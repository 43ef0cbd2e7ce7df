"""
Values that Jinja rendered to strings, inside ``sm_estimator_parameters`` and ``graphstorm_args``.

Airflow renders every templated value to a string: ``{"max_run": "{{ params.max_run }}"}`` arrives
as ``{"max_run": "7200"}``, ``sm_estimator_parameters="{{ params.sm }}"`` (a dict param) as the
string ``"{'max_run': 7200}"``, ``graphstorm_args="{{ params.args }}"`` (a list param) as
``"['--num-epochs', '2']"``. The top-level parameters already take such strings (digit strings
for counts, 'true'/'false' for flags); these were refused (``max_run must be an integer ...,
got '7200'``, ``"{'max_run':" is not in name=value form``, ``Unexpected argument '[--num-epochs,'``).
A rendered Python literal is now taken as the value it spells, where the parameter wants one.
"""

from __future__ import annotations

import pytest

from graphstorm_provider.jobs import JobSpecError, TrainSpec
from tests.spec_kwargs import TRAIN


def request_of(**changes) -> dict:
    return TrainSpec(**TRAIN, **changes).build("job-1").request


def test_rendered_numbers_flags_and_lists_inside_the_estimator_parameters_are_taken():
    request = request_of(
        sm_estimator_parameters={
            "max_run": "7200",
            "use_spot_instances": "True",
            "max_wait": "9000",
            "subnets": "['subnet-1']",
            "security_group_ids": "['sg-1']",
        }
    )
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 9000}
    assert request["EnableManagedSpotTraining"] is True
    assert request["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}


def test_a_rendered_dict_of_estimator_parameters_is_taken():
    assert request_of(sm_estimator_parameters="{'max_run': 7200}")["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}


def test_a_rendered_list_of_graphstorm_arguments_is_taken():
    arguments = TrainSpec(**TRAIN, graphstorm_args="['--num-epochs', '2', '--lr', 0.01]").build("j").container_arguments
    assert arguments[arguments.index("--") + 1 :] == ["--num-epochs", "2", "--lr", "0.01"]


def test_strings_stay_strings():
    request = request_of(sm_estimator_parameters={"tags": {"team": "123"}, "environment": {"LEVEL": "2"}})
    assert {"Key": "team", "Value": "123"} in request["Tags"]
    assert request["Environment"]["LEVEL"] == "2"


@pytest.mark.parametrize("value", ["abc", "7200.5", "[1, 2]"])
def test_a_rendered_value_that_is_no_good_is_still_refused_naming_the_parameter(value):
    with pytest.raises(JobSpecError, match="max_run"):
        request_of(sm_estimator_parameters={"max_run": value})
