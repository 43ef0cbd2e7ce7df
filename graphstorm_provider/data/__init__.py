"""Example data for GraphStorm pipelines: a synthetic ACM-like heterogeneous graph.

Pure numpy + pyarrow, so it runs on the Airflow side without torch/dgl/graphstorm.
"""

from graphstorm_provider.data.synthetic_acm import (
    SyntheticAcmError,
    SyntheticAcmSpec,
    SyntheticAcmSummary,
    generate_synthetic_acm,
)

__all__ = [
    "SyntheticAcmError",
    "SyntheticAcmSpec",
    "SyntheticAcmSummary",
    "generate_synthetic_acm",
]
