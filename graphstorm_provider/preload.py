"""
Import, once per Airflow process, what GraphStorm DAG files import: the operators and ``dags_support``.

The DAG processor forks a new process for every parse of a DAG file. Modules the DAG processor
had imported before the fork cost that process nothing. Airflow imports the ``airflow.*``
modules a DAG file names in advance (``[dag_processor] parsing_pre_import_modules``), but not a
third-party provider's. So without this module, every parse of a GraphStorm DAG imports the
GraphStorm operators again: 5-10 ms on a 2-core machine, half of it the page faults of a forked
process writing to memory it shares with its parent (``bench/dag_processor_parse_time.py
--pre-import`` measures the difference in the DAG processor's own parse times).

A deployment opts in with one line in its ``airflow_local_settings.py``, which every Airflow
process imports when it starts (the DAG processor before it forks any parser)::

    import graphstorm_provider.preload

This costs every Airflow process the same few milliseconds once, at start, and the memory of
these modules. Nothing heavy comes with them: the operators import boto3, the Amazon provider
and the job specs only inside ``execute``.
"""

from __future__ import annotations

import importlib

# What the example DAG files import from this package (tests/test_example_dags.py checks it).
MODULES: tuple[str, ...] = (
    "graphstorm_provider.dags_support",
    "graphstorm_provider.operators.gconstruct",
    "graphstorm_provider.operators.infer",
    "graphstorm_provider.operators.partition",
    "graphstorm_provider.operators.train",
)

for _module in MODULES:
    importlib.import_module(_module)
