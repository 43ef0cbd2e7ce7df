"""
Import, once per Airflow process, what GraphStorm DAG files import: the operators and ``dags_support``.

The DAG processor forks a new process for every parse of a DAG file. Modules the DAG processor
had imported before the fork cost that process nothing. Airflow imports the ``airflow.*``
modules a DAG file names in advance (``[dag_processor] parsing_pre_import_modules``), but not a
third-party provider's. So without this module, every parse of a GraphStorm DAG imports the
GraphStorm operators again: 5-10 ms on a 2-core machine, half of it the page faults of a forked
process writing to memory it shares with its parent (``bench/dag_processor_parse_time.py
--pre-import`` measures the difference in the DAG processor's own parse times).

Importing is not all a forked parse would redo. Airflow keeps some caches per operator class,
filled by the first task of the class a process creates: the class's serialized fields
(``BaseOperator.get_serialized_fields`` makes a throwaway task to find them) and the results of
``isinstance`` checks against abstract base classes (the positive ones: Python drops every ABC's
negative results whenever any class is registered with an ABC, and the DAG processor's start does
that after this module runs, so each parse redoes those, as it does for an ``EmptyOperator`` DAG;
redoing the warm-up at fork time was measured to save both alike, about 1 ms of ~60, and is not
done). So this module also creates, once, one task
of each GraphStorm operator, wired through XCom as the example DAGs wire them
(:func:`warm_up`). They go in a DAG that nothing registers (``auto_register=False``, and no
DagBag holds it), and each class's serialized fields are computed. This saves about 1 ms of each
parse of a 5-task example DAG (``bench/dag_processor_parse_time.py --pre-import``). If the
warm-up fails (on an Airflow release that changed how operators are created, say), the process
logs one warning and starts as usual, without the saving.

A deployment opts in with one line in its ``airflow_local_settings.py``, which every Airflow
process imports when it starts (the DAG processor before it forks any parser)::

    import graphstorm_provider.preload

This costs every Airflow process about 25 ms once, at start (9 ms of imports, 16 ms of warm-up,
most of it Airflow creating the first DAG of the process), and the memory of these modules.
Nothing heavy comes with them: the operators import boto3, the Amazon provider and the job
specs only inside ``execute``. The warm-up makes no AWS call and writes nothing.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger(__name__)

# What the example DAG files import from this package (tests/test_example_dags.py checks it).
MODULES: tuple[str, ...] = (
    "graphstorm_provider.dags_support",
    "graphstorm_provider.operators.gconstruct",
    "graphstorm_provider.operators.infer",
    "graphstorm_provider.operators.partition",
    "graphstorm_provider.operators.train",
)
WARM_UP_DAG_ID = "graphstorm_preload_warm_up"
# Placeholder arguments of the warm-up tasks: templated strings, as a DAG file passes them.
_URI = "file:///graphstorm-preload-warm-up/{{ ti.try_number }}"
_JOB_ARGS: dict[str, Any] = {
    "image_url": "{{ params.image_url }}",
    "role": "{{ params.role }}",
    "instance_type": "{{ params.instance_type }}",
    "region": "{{ params.region }}",
}
_GRAPH_NAME = "{{ params.graph_name }}"
_GSF_ARGS: dict[str, Any] = {
    **_JOB_ARGS,
    "graph_name": _GRAPH_NAME,
    "task_type": "{{ params.task_type }}",
    "yaml_s3": _URI,
}

for _module in MODULES:
    importlib.import_module(_module)


def warm_up() -> DAG:
    """Create one task of each GraphStorm operator, wired through XCom, in an unregistered DAG; return the DAG."""
    from airflow.sdk import DAG

    from graphstorm_provider.operators.gconstruct import GConstructOperator
    from graphstorm_provider.operators.infer import GSInferOperator
    from graphstorm_provider.operators.partition import DistPartitionOperator
    from graphstorm_provider.operators.train import GSTrainOperator

    with DAG(dag_id=WARM_UP_DAG_ID, schedule=None, auto_register=False) as dag:
        # Any: mypy sees ``.output`` as XComArg, whose subscript (PlainXComArg's) it does not know.
        graph: Any = GConstructOperator(
            task_id="gconstruct",
            input_graph_s3=_URI,
            output_graph_s3=_URI,
            graph_name=_GRAPH_NAME,
            graph_config_file="config.json",
            **_JOB_ARGS,
        )
        parts: Any = DistPartitionOperator(
            task_id="partition",
            graph_data_s3=graph.output["output_graph_s3"],
            num_parts=2,
            output_data_s3=_URI,
            **_JOB_ARGS,
        )
        model: Any = GSTrainOperator(
            task_id="train", graph_data_s3=parts.output["output_data_s3"], model_artifact_s3=_URI, **_GSF_ARGS
        )
        GSInferOperator(
            task_id="infer",
            graph_data_s3=parts.output["output_data_s3"],
            model_artifact_s3=model.output["model_artifact_s3"],
            output_emb_s3=_URI,
            **_GSF_ARGS,
        )
    for task in dag.tasks:
        type(task).get_serialized_fields()
    return dag


def _warm_up_or_warn() -> None:
    """Run :func:`warm_up`; if it fails, log one warning: it only saves time."""
    try:
        warm_up()
    except Exception as err:  # never the reason an Airflow process does not start
        log.warning("GraphStorm preload: the operators' warm-up failed, so parses will not be faster: %s", err)


_warm_up_or_warn()
