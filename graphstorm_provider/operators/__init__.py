"""
The GraphStorm operators, importable from here.

Each module is imported only when its operator is first used, so
``from graphstorm_provider.operators import GSTrainOperator`` costs no more at DAG parse time
than importing its own module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_MODULES = {
    "GConstructOperator": "graphstorm_provider.operators.gconstruct",
    "DistPartitionOperator": "graphstorm_provider.operators.partition",
    "GSTrainOperator": "graphstorm_provider.operators.train",
    "GSInferOperator": "graphstorm_provider.operators.infer",
    "LocalComposeOperator": "graphstorm_provider.operators.local_compose",
}
__all__ = list(_MODULES)

if TYPE_CHECKING:  # for type checkers; `X as X` marks each name as re-exported (PEP 484)
    from graphstorm_provider.operators.gconstruct import GConstructOperator as GConstructOperator
    from graphstorm_provider.operators.infer import GSInferOperator as GSInferOperator
    from graphstorm_provider.operators.local_compose import LocalComposeOperator as LocalComposeOperator
    from graphstorm_provider.operators.partition import DistPartitionOperator as DistPartitionOperator
    from graphstorm_provider.operators.train import GSTrainOperator as GSTrainOperator


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)
