"""Apache Airflow provider for GraphStorm pipelines on Amazon SageMaker and on one machine."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The asset aliases the step operators attach their outputs to (operators/assets.py), for DAGs
# scheduled on them (``schedule=[AssetAlias(MODEL_ALIAS)]``). Defined here, in the package Airflow
# imports when it starts (for this provider's config), so naming one costs a DAG file no import.
GRAPH_ALIAS = "graphstorm-graph"
PARTITIONED_GRAPH_ALIAS = "graphstorm-partitioned-graph"
MODEL_ALIAS = "graphstorm-model"
EMBEDDINGS_ALIAS = "graphstorm-embeddings"
PREDICTIONS_ALIAS = "graphstorm-predictions"


def get_provider_info() -> dict[str, Any]:
    """Return the provider info (the ``apache_airflow_provider`` entry point; ``airflow providers list``)."""
    return {
        "package-name": "graphstorm-airflow",
        "name": "GraphStorm",
        "description": "Run GraphStorm graph construction, partitioning, training and inference "
        "on Amazon SageMaker, or locally for development.",
        "versions": [__version__],
        "operators": [
            {
                "integration-name": "GraphStorm",
                "python-modules": [
                    "graphstorm_provider.operators.gconstruct",
                    "graphstorm_provider.operators.partition",
                    "graphstorm_provider.operators.train",
                    "graphstorm_provider.operators.infer",
                    "graphstorm_provider.operators.local_compose",
                ],
            }
        ],
        # Built from the job's region and name (operators/links.py); mirrored there as EXTRA_LINK_CLASSES.
        "extra-links": [
            "graphstorm_provider.operators.links.SageMakerJobConsoleLink",
            "graphstorm_provider.operators.links.SageMakerJobLogsLink",
        ],
        "config": {
            "graphstorm": {
                "description": "Where the local backends find the GraphStorm runtime, and how "
                "often the operators check a SageMaker job.",
                "options": {
                    "runtime_python": {
                        "description": "Python interpreter of the GraphStorm runtime environment "
                        "used when instance_type='local'. Overridden by $GRAPHSTORM_RUNTIME_PYTHON.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/graphstorm-runtime/bin/python",
                        "default": None,
                    },
                    "check_interval": {
                        "description": "Seconds between status checks of a SageMaker job while a "
                        "task waits for it (in the worker, or in the triggerer when deferred), for "
                        "operators that set no check_interval.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "60",
                        "default": "30",
                    },
                    "compose_command": {
                        "description": "Compose tool for multi-host local runs: 'docker compose', "
                        "'docker-compose' or 'podman-compose'. Default: the first one found.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "podman-compose",
                        "default": None,
                    },
                },
            }
        },
    }
