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

from graphstorm_provider.execution.compose import ComposeOptions, dump_compose, render_compose
from tests.compose_jobs import training_request

SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
VALIDATOR = jsonschema.Draft201909Validator(SCHEMA)


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
    args=st.lists(st.text(min_size=1, max_size=12), max_size=6),
    env=st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=20), max_size=4),
)
def test_generated_files_validate(count, gpus, shm, args, env):
    job = training_request(instance_count=count, extra_args=tuple(args), environment=env)
    validate(dump_compose(render_compose(job, ComposeOptions(gpus=gpus, shm_size=shm))))
