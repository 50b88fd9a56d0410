"""A picture of a compiled program: which residual directions each sublayer reads and writes.

Rows are the SOps of the residual stream (each as tall as its number of directions), columns the
sublayers (attention and MLP of each layer); a cell is coloured where the sublayer writes (dark)
or reads (light) that SOp. The embedding column shows what the input writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from th1nker.rasp.blocks import MLPBlock
from th1nker.rasp.compiler import CompiledProgram

READ, WRITE = 1, 2


def usage(compiled: CompiledProgram) -> tuple[np.ndarray, list[str]]:
    """(grid [directions, 1 + 2 * layers] of 0 / READ / WRITE, column labels)."""
    layout = compiled.layout
    grid = np.zeros((len(layout), 1 + 2 * len(compiled.layers)), dtype=np.int64)
    embedded = {"one", *(compiled.graph.name(n) for n in compiled.graph.nodes if not n.children)}
    for i, direction in enumerate(layout.directions):
        if direction.name in embedded:
            grid[i, 0] = WRITE
    labels = ["embed"]
    for number, layer in enumerate(compiled.layers):
        labels += [f"{number}.attn", f"{number}.mlp"]
        for column, blocks in ((1 + 2 * number, layer.heads), (2 + 2 * number, layer.mlps)):
            for block in blocks:
                reads = (block.reads if isinstance(block, MLPBlock)
                         else block.queries + block.keys + block.values)  # fmt: skip
                for d in reads:
                    grid[layout.index(d), column] = max(grid[layout.index(d), column], READ)
                for d in block.writes:
                    grid[layout.index(d), column] = WRITE
    return grid, labels


def plot_layout(compiled: CompiledProgram, path: Path, title: str | None = None) -> None:
    """Draw `usage` into `path` (png or svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    grid, labels = usage(compiled)
    spans = compiled.layout.spans()
    height = max(4.0, 0.22 * len(spans) + 1.5)
    figure, axes = plt.subplots(figsize=(1.2 + 0.45 * len(labels), height))
    colours = ListedColormap(["white", "#9ecae1", "#08519c"])
    axes.imshow(grid, aspect="auto", cmap=colours, vmin=0, vmax=2, interpolation="nearest")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    centres = [start + width / 2 - 0.5 for _, start, width in spans]
    axes.set_yticks(centres, [name for name, _, _ in spans], fontsize=7)
    for _, start, _ in spans[1:]:
        axes.axhline(start - 0.5, color="lightgrey", lw=0.5)
    axes.set_title(title or f"{compiled.output_name}: residual directions read (light) and "
                   "written (dark) per sublayer", fontsize=9)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)
