"""
The README's "Airflow operators" example DAG, as a reader copies it: it parses, and every step whose
inputs are written in it (not XCom) builds its SageMaker request at task start.

A review found that the example's GConstruct step wrote its output inside its own input, which the
step refuses when the task starts: a copied example failed on its first run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def operators_example() -> str:
    """The first Python block under the README's "## Airflow operators" heading."""
    text = README.read_text()
    section = text[text.index("## Airflow operators") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under '## Airflow operators'"
    return match.group(1)


@pytest.fixture(scope="module")
def example_tasks() -> dict:
    """The example's tasks by task id (the names its code binds them to)."""
    from airflow.sdk import BaseOperator

    namespace: dict = {}
    exec(compile(operators_example(), "README.md (Airflow operators)", "exec"), namespace)
    return {value.task_id: value for value in namespace.values() if isinstance(value, BaseOperator)}


def test_the_example_dag_parses_with_its_steps(example_tasks):
    assert {"gconstruct", "partition", "train", "infer"} <= set(example_tasks)


@pytest.mark.parametrize("task_id", ["gconstruct", "partition"])
def test_each_step_with_written_inputs_builds_its_request_at_task_start(example_tasks, task_id):
    op = example_tasks[task_id]
    op.render_template_fields({"ds_nodash": "20260105", "params": {}})
    job = op.build_job()
    assert job.request  # the request it would send: every check a task start makes has passed
    assert all("20260105" in uri for uri in job.outputs.values()), job.outputs
