"""
Data helpers of GraphStorm pipelines.

A synthetic ACM-like heterogeneous graph (pure numpy + pyarrow, no torch/dgl/graphstorm) and the
manifest contract's reader (:mod:`.manifest`).

The synthetic graph's names are loaded on first use, so importing ``graphstorm_provider.data.manifest``
(e.g. at DAG parse time) does not import numpy or pyarrow.
"""

from __future__ import annotations

from typing import Any

_SYNTHETIC = ("SyntheticAcmError", "SyntheticAcmSpec", "SyntheticAcmSummary", "generate_synthetic_acm")

__all__ = list(_SYNTHETIC)


def __getattr__(name: str) -> Any:
    if name in _SYNTHETIC:
        from graphstorm_provider.data import synthetic_acm

        return getattr(synthetic_acm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
