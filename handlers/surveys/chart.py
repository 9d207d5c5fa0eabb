"""The scorecard as a bar chart: each indicator's value against its target, one bar per village."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

from handlers.surveys.scorecard import Score


def bar_chart(title: str, villages: Sequence[tuple[str, Sequence[Score]]], target_label: str) -> bytes:
    """A PNG. Built on a bare Figure (no pyplot): no global state, so it may run in a worker thread."""
    from matplotlib.figure import Figure  # ~45 MB: loaded with the first report, not at start-up

    # long Vietnamese titles wrapped, so the bars keep most of the width
    indicators = [textwrap.fill(s.indicator.title, 30) for s in villages[0][1]] if villages else []
    rows = len(indicators)
    figure = Figure(figsize=(9, 1.5 + 0.6 * rows * max(1, len(villages) * 0.7)), dpi=100)
    axes = figure.add_subplot()
    height = 0.8 / max(1, len(villages))
    for v, (name, scores) in enumerate(villages):
        positions = [r + v * height for r in range(rows)]
        values = [s.percent or 0.0 for s in scores]
        bars = axes.barh(positions, values, height=height * 0.9, label=name)
        axes.bar_label(bars, labels=[f"{s.percent:.0f}%" if s.percent is not None else "–" for s in scores], padding=3)
    if villages:
        targets = [s.target for s in villages[0][1]]
        middle = 0.4 - height / 2
        for r, target in enumerate(targets):
            axes.vlines(target, r - height / 2, r + 0.8 - height / 2, colors="black", linestyles="dashed",
                        label=target_label if r == 0 else "_nolegend_")
        axes.set_yticks([r + middle for r in range(rows)], indicators)
    axes.invert_yaxis()
    axes.set_xlim(0, 110)
    axes.set_xlabel("%")
    axes.set_title(title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4, fontsize="small", frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
