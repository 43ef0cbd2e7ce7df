"""A report whenever a GraphStorm model lands: scheduled on the ``graphstorm-model`` asset alias.

Every GraphStorm training task (``GSTrainOperator``, in any DAG: ``graphstorm_local_e2e``,
``graphstorm_weekly_retrain``, ``graphstorm_sagemaker_e2e``, ...) attaches the model folder it
wrote - a per-run URI such as ``file:///tmp/graphstorm-airflow/runs/<run>/model/1`` -
to the asset alias ``graphstorm-model``, with the training job's name, the graph's name and the
final epoch's metrics as the event's extra. This DAG runs once for each new model event and
reports it: where the model and its learning curve are, which job trained it on which graph,
and how it scored.

Use it as the starting point of what should follow a new model: batch inference, an evaluation
gate, a notification. It reads only the asset events (no data), so it runs anywhere in seconds.

Tasks
-----
``report``  refuses a run conf (the DAG has no params: any key is unknown); one entry per new model
            (URI, source DAG and run, job, graph, final metrics, learning curve), logged and
            returned as one XCom.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, AssetAlias

from graphstorm_provider import MODEL_ALIAS  # the package Airflow has imported already: no import cost

DAG_ID = "graphstorm_on_new_model"
LEARNING_CURVE_FILE_NAME = "learning_curve.png"  # written beside the model (operators/metrics.py)


def report(triggering_asset_events=None, dag_run=None, dag=None) -> list[dict]:
    """Refuse a run conf (this DAG has no params); describe every model event that triggered this run."""
    import logging

    from graphstorm_provider.dags_support import check_run_conf

    if dag_run is not None and dag is not None:
        check_run_conf(dag_run.conf, dag.params)

    log = logging.getLogger("airflow.task")
    models = []
    for asset, events in (triggering_asset_events or {}).items():
        for event in events:
            extra = dict(event.extra or {})
            metrics = extra.get("metrics") or {}
            entry = {
                "model": asset.uri,
                "source_dag_id": event.source_dag_id,
                "source_run_id": event.source_run_id,
                "job_name": extra.get("job_name"),
                "graph_name": extra.get("graph_name"),
                "metrics": metrics,
                "learning_curve": f"{asset.uri}/{LEARNING_CURVE_FILE_NAME}" if metrics else None,
            }
            log.info(
                "New GraphStorm model %s from %s/%s (job %s, graph %s): %s epochs, final validation %s, test %s.",
                entry["model"],
                entry["source_dag_id"],
                entry["source_run_id"],
                entry["job_name"],
                entry["graph_name"],
                metrics.get("epochs"),
                metrics.get("validation"),
                metrics.get("test"),
            )
            models.append(entry)
    if not models:
        log.info("No new model event in this run (triggered by hand?).")
    return models


with DAG(
    dag_id=DAG_ID,
    description="Report each new GraphStorm model (scheduled on the graphstorm-model asset alias)",
    schedule=[AssetAlias(MODEL_ALIAS)],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["graphstorm", "example", "assets"],
    doc_md=__doc__,
) as dag:
    # A classic PythonOperator, not a TaskFlow @task: a @task costs every parse of this file about
    # 2 ms more than an operator (bench/dag_parse_time.py).
    PythonOperator(task_id="report", python_callable=report)  # one XCom: the list of new models
