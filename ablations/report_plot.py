"""What every figure of the report shares: its style, its colours and a byte-identical PNG writer."""
from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# DejaVu Sans ships with matplotlib and has ±, Δ and −: no missing-glyph boxes anywhere.
# No pyplot: figures are plain Figure objects, so nothing global (backend, open figures) changes.
STYLE = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.grid": True,
    "grid.alpha": 0.3, "legend.fontsize": 7, "svg.hashsalt": "paddle-cnns", "figure.dpi": 100,
}


def save(fig: Figure, path: str) -> None:
    FigureCanvasAgg(fig)
    # No "Software" text chunk and no timestamp: the same figure gives the same bytes.
    fig.savefig(path, dpi=100, metadata={"Software": None})


def colors(n: int) -> list:
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
