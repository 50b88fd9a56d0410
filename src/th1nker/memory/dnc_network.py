"""A DNC (Graves et al. 2016) in one call: a controller driving a DNC memory, built as a
`Network` (the same wiring as `configs/memory/dnc.yaml`).

Per step: controller([x_t, reads_{t-1}]) -> h; memory(W_interface h) -> reads_t;
y_t = W_out [h, reads_t]. Run it over a sequence with `network.run(xs, detach_every)`.

Run `python -m th1nker.memory.dnc_network` for a smoke check.
"""

from __future__ import annotations

import torch

from th1nker.memory.network import Network, NetworkSpec
from th1nker.memory.registry import CONTROLLERS


def dnc_network(
    input_size: int,
    output_size: int,
    hidden: int = 64,
    controller: str = "lstm",
    slots: int = 16,
    width: int = 16,
    reads: int = 1,
    writes: int = 1,
    flags: dict | None = None,
) -> Network:
    if controller not in CONTROLLERS:
        raise ValueError(f"controller {controller!r} is not one of {', '.join(CONTROLLERS)}")
    memory = {"type": "dnc", "slots": slots, "width": width, "reads": reads, "writes": writes}
    spec = NetworkSpec.model_validate(
        {
            "name": "dnc",
            "input_size": input_size,
            "output_size": output_size,
            "modules": {
                "controller": {"type": controller, "hidden": hidden},
                "memory": {**memory, "flags": flags or {}},
            },
            "connections": [
                {"to": "controller", "from": ["input", "memory"]},
                {"to": "memory", "from": "controller"},
                {"to": "output", "from": ["controller", "memory"]},
            ],
        }
    )
    return Network(spec)


def _smoke() -> None:
    torch.manual_seed(0)
    dnc = dnc_network(input_size=6, output_size=4, hidden=16, slots=8, width=5, reads=2)
    out, _ = dnc.run(torch.randn(3, 7, 6))
    out.sum().backward()
    assert out.shape == (3, 7, 4) and torch.isfinite(out).all()
    print(f"DNC ok: outputs {tuple(out.shape)}, {sum(p.numel() for p in dnc.parameters())} params")


if __name__ == "__main__":
    _smoke()
