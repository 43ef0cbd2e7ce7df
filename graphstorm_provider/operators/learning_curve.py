"""
``learning_curve.png``: training loss and evaluation scores per epoch.

They come from ``metrics.json``'s epoch records.

matplotlib (pinned in constraints/airflow-py3.11.txt) is imported inside
:func:`render_learning_curve` only, with its object-oriented API and the Agg canvas (no pyplot
global state, no display), so DAG parsing never pays for it and concurrent tasks do not share a
figure.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

FIGURE_INCHES = (7.0, 4.0)
DPI = 100
LOSS_COLOR = "tab:blue"
SCORE_COLORS = ("tab:green", "tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:olive")
SPLIT_STYLES = {"validation": "-", "test": "--"}
LEGEND_SPACE = 0.08  # fraction of the figure's height kept below the axes for the legend


def _series(epochs: Sequence[Mapping[str, Any]], split: str) -> dict[str, tuple[list[int], list[float]]]:
    """``{metric name: (epochs, values)}`` of one split's scores."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in epochs:
        scores = record.get(split)
        if not isinstance(scores, Mapping):
            continue
        for name, value in scores.items():
            if isinstance(value, (int, float)):
                xs, ys = series.setdefault(str(name), ([], []))
                xs.append(int(record["epoch"]))
                ys.append(float(value))
    return series


def render_learning_curve(epochs: Sequence[Mapping[str, Any]], *, title: str = "GraphStorm training") -> bytes:
    """
    Return PNG bytes of the mean training loss per epoch and each validation/test score.

    The loss is on the left axis, the scores on the right (dashed for test).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    loss_axis = figure.add_subplot(1, 1, 1)
    points = [(int(r["epoch"]), float(r["loss"])) for r in epochs if isinstance(r.get("loss"), (int, float))]
    handles = []
    if points:
        handles += loss_axis.plot(
            [p[0] for p in points], [p[1] for p in points], marker="o", color=LOSS_COLOR, label="training loss"
        )
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss", color=LOSS_COLOR)
    loss_axis.set_title(title)
    loss_axis.grid(True, alpha=0.3)
    all_epochs = sorted({int(r["epoch"]) for r in epochs})
    if all_epochs:
        loss_axis.set_xticks(all_epochs)
    score_axis = None
    metric_names = sorted({name for split in SPLIT_STYLES for name in _series(epochs, split)})
    for split, style in SPLIT_STYLES.items():
        for name, (xs, ys) in sorted(_series(epochs, split).items()):
            score_axis = score_axis or loss_axis.twinx()
            color = SCORE_COLORS[metric_names.index(name) % len(SCORE_COLORS)]
            handles += score_axis.plot(xs, ys, linestyle=style, marker="s", color=color, label=f"{split} {name}")
    if score_axis is not None:
        score_axis.set_ylabel("score")
    figure.tight_layout(rect=(0, LEGEND_SPACE if handles else 0, 1, 1))
    if handles:  # below the axes, where it hides no point
        figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), fontsize="small", frameon=False)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
