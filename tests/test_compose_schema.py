"""Every compose file we generate validates against the Compose Specification's JSON schema.

The schema is vendored in tests/data/compose-spec.json (see compose-spec.README.md there
for where it came from: the network here reaches only package registries).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from graphstorm_provider.execution.compose import ComposeOptions, ComposeSpecError, dump_compose, render_compose
from tests.compose_jobs import training_request

SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
VALIDATOR = jsonschema.Draft201909Validator(SCHEMA)

# Values that are not file:// URIs: those are bind mounts, and a malformed one ('file://', a
# relative path, a system folder) is refused before a file is written (the test at the end).
NOT_A_FILE_URI = st.text(max_size=20).filter(lambda value: not value.startswith("file://"))


def validate(text: str) -> None:
    VALIDATOR.validate(yaml.safe_load(text))


def test_the_schema_rejects_what_compose_rejects():
    # Guards the guard: a schema that accepts anything would make the other tests pass vacuously.
    doc = yaml.safe_load(dump_compose(render_compose(training_request())))
    doc["services"]["algo-1"]["hostnme"] = "typo"
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(doc)
    doc = yaml.safe_load(dump_compose(render_compose(training_request())))
    doc["services"]["algo-1"]["command"] = {"not": "a command"}
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(doc)


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=8),
    gpus=st.integers(min_value=0, max_value=4),
    shm=st.sampled_from(["512m", "4gb", "1g", "2048mb"]),
    args=st.lists(NOT_A_FILE_URI.filter(bool), max_size=6),
    env=st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), NOT_A_FILE_URI, max_size=4),
)
def test_generated_files_validate(count, gpus, shm, args, env):
    job = training_request(instance_count=count, extra_args=tuple(args), environment=env)
    validate(dump_compose(render_compose(job, ComposeOptions(gpus=gpus, shm_size=shm))))


@pytest.mark.parametrize(
    ("where", "value", "refusal"),
    [
        ("args", "file://", "file URI 'file://' is not an absolute file URI"),
        ("args", "file://relative", "file URI 'file://relative' is not an absolute file URI"),
        ("args", "file://host/x", "file URI 'file://host/x' is not an absolute file URI"),
        ("env", "file://", "file URI 'file://' is not an absolute file URI"),
        ("args", "file:///tmp/%2e%2e/x", "has a '..' segment"),
    ],
)
def test_a_malformed_file_uri_among_forwarded_values_is_refused_in_one_sentence(where, value, refusal):
    # Hypothesis once drew the forwarded argument 'file://': refused, as it must be, before any
    # compose file exists (the property above draws only values that are not file:// URIs).
    job = (
        training_request(extra_args=(value,))
        if where == "args"
        else training_request(environment={"EXTRA_DATA": value})
    )
    with pytest.raises(ComposeSpecError) as info:
        render_compose(job)
    assert refusal in str(info.value)
    assert "\n" not in str(info.value)
