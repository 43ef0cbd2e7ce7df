"""
Which folder each try of an example DAG's step writes: one per run of the step, shared by its retries.

The examples named the folder by ``ti.try_number`` (``model/1/``, ``model/2/``), so that clearing
``train`` can never leave predictions of another model beside it. But a retry then renders a
different request: after a worker died while a SageMaker job ran, the retry stopped that job and
launched ``<name>-a2`` instead of re-attaching to it. The folder is now the first try of the
task instance's current run (``dags_support.first_try``, Airflow's own rule: ``max_tries - retries
+ 1``): its retries render the same request (and re-attach), a clear starts a new run, a new folder.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from graphstorm_provider.dags_support import first_try

DAG = """
import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from graphstorm_provider.dags_support import first_try

SEEN = {seen!r}


def step(folder, ti):
    with open(SEEN, "a") as out:
        out.write(f"{{ti.try_number}} {{folder}}\\n")
    if ti.try_number == 1:
        raise RuntimeError("the worker died")  # the first try fails: Airflow retries


with DAG("gs_attempt_folders", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         user_defined_macros={{"gs_first_try": first_try}}) as dag:
    PythonOperator(task_id="train", python_callable=step, retries=2, retry_delay=0,
                   op_kwargs={{"folder": "model/{{{{ gs_first_try(ti) }}}}"}})
"""


def fake_ti(max_tries: int, retries: int) -> SimpleNamespace:
    return SimpleNamespace(max_tries=max_tries, task=SimpleNamespace(retries=retries))


@pytest.mark.parametrize(
    ("max_tries", "retries", "expected"),
    [
        (0, 0, 1),  # no retries: try 1
        (2, 2, 1),  # tries 1-3 of the first run
        (1, 0, 2),  # cleared after try 1, no retries: try 2 starts the new run
        (3, 2, 2),  # cleared after try 1 with 2 retries: tries 2-4
        (5, 2, 4),  # cleared after try 3
    ],
)
def test_first_try_is_airflow_s_first_try_of_the_current_run(max_tries, retries, expected):
    assert first_try(fake_ti(max_tries, retries)) == expected


def test_retries_render_the_folder_of_the_first_try(load_dag, tmp_path):
    seen = tmp_path / "seen.txt"
    dag = load_dag(DAG.format(seen=str(seen)), "gs_attempt_folders")
    run = dag.test()
    assert run.state == "success"
    assert seen.read_text().splitlines() == ["1 model/1", "2 model/1"]


@pytest.mark.parametrize(
    "dag_file",
    [
        "graphstorm_local_e2e.py",
        "graphstorm_sagemaker_e2e.py",
        "graphstorm_weekly_retrain.py",
        "graphstorm_chunked_e2e.py",
    ],
)
def test_the_examples_name_their_folders_by_the_first_try(dag_file):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "dags" / dag_file).read_text()
    assert "ti.try_number" not in text
    assert "gs_first_try(ti)" in text
