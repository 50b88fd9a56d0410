"""Compiler stage 4: layer allocation.

A transformer layer is an attention sublayer (heads side by side) then an MLP sublayer (MLPs
side by side, their hidden units concatenated). Each block goes into the earliest sublayer of
its kind after every block that writes a direction it reads (the embedding writes tokens,
indices, constants and `one`): numbering sublayers 0, 1, 2, .. (attention of layer l = 2l,
its MLP = 2l + 1), a head takes the first even index, an MLP the first odd index, after its
inputs. This is the longest-path schedule: no program needs fewer layers with these blocks.
"""

from __future__ import annotations

import dataclasses

from th1nker.rasp.blocks import Block, HeadBlock, MLPBlock


@dataclasses.dataclass
class Layer:
    """One transformer layer: its heads and its MLPs."""

    heads: list[HeadBlock]
    mlps: list[MLPBlock]


def allocate_layers(blocks: list[Block], embedded: set[str]) -> list[Layer]:
    """Blocks into layers (module docstring). `embedded`: names of the directions the
    embedding writes; blocks must come in an order where each reads only earlier writes."""
    written_at = {name: -1 for name in embedded}
    placed: list[tuple[int, Block]] = []
    for block in blocks:
        reads = (
            block.reads
            if isinstance(block, MLPBlock)
            else block.queries + block.keys + block.values
        )
        missing = sorted({d.name for d in reads if d.name not in written_at and d.name != "one"})
        if missing:
            raise AssertionError(f"{block.role} reads {missing} before they are written")
        after = max([written_at.get(d.name, -1) for d in reads], default=-1)
        parity = 0 if isinstance(block, HeadBlock) else 1
        sublayer = after + 1 if (after + 1) % 2 == parity else after + 2
        for direction in block.writes:
            written_at[direction.name] = sublayer
        placed.append((sublayer, block))
    n_layers = max((s // 2 for s, _ in placed), default=-1) + 1
    layers = [Layer([], []) for _ in range(n_layers)]
    for sublayer, block in placed:
        layer = layers[sublayer // 2]
        if isinstance(block, HeadBlock):
            layer.heads.append(block)
        else:
            layer.mlps.append(block)
    return layers
