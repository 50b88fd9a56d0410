"""Networks of memories and controllers described in YAML, run step by step over sequences.

    name: dnc
    input_size: 10
    output_size: 8
    modules:                      # evaluated in this order at every step
      controller: {type: lstm, hidden: 64}
      memory: {type: dnc, slots: 16, width: 16, reads: 1, flags: {erase: true}}
    connections:
      - {to: controller, from: [input, memory]}    # memory: its reads of the *previous* step
      - {to: memory, from: controller}             # projected to the memory's interface
      - {to: output, from: [controller, memory]}

Nodes are `input`, the modules, and `output`. A connection's `op`:
- `concat` (default; `feed` for one source): the target's input is the concatenation of these
  sources. Memories and `output` get a learned projection of it (per target: one controller
  drives several memories through its own projection for each, like attention heads);
  controllers take it as it is.
- `residual`: after the target runs, the source is added to its output (same width).
- `gate`: after the target runs, `out = g * out + (1 - g) * source`, `g = gate(W [out, source])`
  (a gated residual block: a learned gate between the module's path and a bypass).
A source that comes at or after its target in `modules` is read as it was at the previous step;
that is allowed only from a stateful module (a memory or a recurrent controller): a loop through
stateless modules is an error. A module may `extends: other.yaml` (a file holding one module
spec, resolved relative to the network file) and override its fields.

Run `python -m th1nker.memory.network` for a smoke check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import torch
from jaxtyping import Float
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from torch import Tensor, nn

from th1nker.config_files import ConfigError, format_validation_error, read_yaml, validate
from th1nker.memory.registry import (
    CONTROLLERS,
    MEMORIES,
    ControllerSpec,
    MemorySpec,
    register_memory,
)
from th1nker.memory.state import Recurrent, State


def _as_list(value):
    return [value] if isinstance(value, str) else value


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to: str
    sources: Annotated[list[str], BeforeValidator(_as_list)] = Field(alias="from", min_length=1)
    op: Literal["concat", "feed", "residual", "gate"] = "concat"


class NetworkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "network"
    input_size: int = Field(ge=1)
    output_size: int = Field(ge=1)
    modules: dict[str, dict] = Field(min_length=1, description="name: module spec")
    connections: list[Connection] = Field(min_length=1)


def with_extends(where: str, spec: dict, base_dir: Path) -> dict:
    """A module's fields after `extends` (recursively, paths relative to `base_dir`)."""
    spec = dict(spec)
    if "extends" in spec:
        parent_path = base_dir / spec.pop("extends")
        parent, _ = read_yaml(parent_path, {}, (), f"{where} extends")
        spec = {**with_extends(where, parent, parent_path.parent), **spec}
    return spec


def module_spec(
    where: str, spec: dict | MemorySpec | ControllerSpec, base_dir: Path, kinds: dict[str, type]
) -> MemorySpec | ControllerSpec:
    """The typed spec of a module (`extends` resolved), its type one of `kinds`; a ConfigError
    naming `where` and the allowed values for anything wrong."""
    if isinstance(spec, MemorySpec | ControllerSpec):
        return spec
    spec = with_extends(where, spec, base_dir)
    kind = spec.get("type")
    if kind not in kinds:
        raise ConfigError(f"{where}.type: {kind!r} is not one of {', '.join(kinds)}")
    try:
        return kinds[kind].model_validate(spec)
    except ValidationError as error:
        lines = format_validation_error(error, kinds[kind]).splitlines()
        raise ConfigError("\n".join(f"{where}.{line}" for line in lines)) from None


class Network(Recurrent):
    """A built network: `forward(x_t)` is one step, `run(xs)` a whole sequence. As a memory
    module (type `network`) its interface is its input and its one read its output."""

    reads = 1

    def __init__(self, spec: NetworkSpec, base_dir: Path = Path(".")):
        super().__init__()
        self.spec = spec
        self.interface_size, self.output_size = spec.input_size, spec.output_size
        specs = {
            name: module_spec(f"modules.{name}", s, base_dir, {**MEMORIES, **CONTROLLERS})
            for name, s in spec.modules.items()
        }
        self.order = list(specs)
        inputs: dict[str, list[str]] = {name: [] for name in [*self.order, "output"]}
        self.merges: dict[str, list[tuple[str, str]]] = {name: [] for name in inputs}
        for i, connection in enumerate(spec.connections):
            if connection.to not in inputs:
                raise ConfigError(
                    f"connections.{i}.to: unknown node {connection.to!r}; nodes: "
                    f"{', '.join(['input', *self.order, 'output'])}"
                )
            for source in connection.sources:
                if source not in ("input", *self.order):
                    raise ConfigError(
                        f"connections.{i}.from: unknown node {source!r}; nodes: "
                        f"{', '.join(['input', *self.order])}"
                    )
            if connection.op in ("concat", "feed"):
                inputs[connection.to] += connection.sources
            else:
                self.merges[connection.to] += [(s, connection.op) for s in connection.sources]
        self.inputs = inputs
        self._check_loops(specs)
        self.widths = {"input": spec.input_size}
        for name, spec_of_module in specs.items():
            self.widths[name] = _output_width(name, spec_of_module)
        self.blocks = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        self.gates = nn.ModuleDict()
        for name in self.order:
            self._build(name, specs[name])
        width = self._input_width("output")
        self.projections["output"] = nn.Linear(width, spec.output_size)
        self.widths["output"] = spec.output_size
        self._check_merges()

    def _check_loops(self, specs: dict[str, MemorySpec | ControllerSpec]) -> None:
        for target in [*self.order, "output"]:
            position = self.order.index(target) if target != "output" else len(self.order)
            for source in self.inputs[target] + [s for s, _ in self.merges[target]]:
                if source == "input" or self.order.index(source) < position:
                    continue
                if not specs[source].keeps_state:
                    raise ConfigError(
                        f"loop without state: {target} reads {source}, which comes at or after "
                        f"it and has no state ({specs[source].type}); move {source} before "
                        f"{target} or make the loop pass through a memory or recurrent controller"
                    )

    def _input_width(self, name: str) -> int:
        return sum(self.widths[source] for source in self.inputs[name])

    def _build(self, name: str, spec: MemorySpec | ControllerSpec) -> None:
        try:
            block = (
                spec.build(self._input_width(name))
                if isinstance(spec, ControllerSpec)
                else spec.build()
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(f"modules.{name}: {error}") from None
        takes_input = isinstance(spec, ControllerSpec) or block.interface_size > 0
        if takes_input and not self.inputs[name]:
            raise ConfigError(f"module {name} has no input: add a connection to it")
        if not takes_input and self.inputs[name]:
            raise ConfigError(
                f"module {name} ({spec.type}) takes no input: remove the connections to it"
            )
        if isinstance(spec, MemorySpec) and takes_input:
            self.projections[name] = nn.Linear(self._input_width(name), block.interface_size)
        self.blocks[name] = block

    def _check_merges(self) -> None:
        for target, merges in self.merges.items():
            for source, op in merges:
                if self.widths[source] != self.widths[target]:
                    raise ConfigError(
                        f"width mismatch: {op} from {source} ({self.widths[source]}) into "
                        f"{target} ({self.widths[target]})"
                    )
                if op == "gate":
                    self.gates[f"{target}<-{source}"] = nn.Linear(2 * self.widths[target], 1)

    def initial_state(self, batch_size: int, device: torch.device) -> State:
        """`outputs`: every module's previous output (read by delayed connections), zeros at
        first; `modules`: every module's own state."""
        return {
            "outputs": {
                name: torch.zeros(batch_size, self.widths[name], device=device)
                for name in self.order
            },
            "modules": {
                name: self.blocks[name].init_state(batch_size, device) for name in self.order
            },
        }

    def forward(
        self, x: Float[Tensor, "batch input"], state: State
    ) -> tuple[Float[Tensor, "batch output"], State]:
        previous, module_states = state["outputs"], dict(state["modules"])
        values = {"input": x}
        for name in [*self.order, "output"]:
            sources = [values.get(s, previous.get(s)) for s in self.inputs[name]]
            joined = torch.cat(sources, -1) if sources else x[:, :0]  # a module without input
            if name == "output":
                out = self.projections["output"](joined)
            else:
                if name in self.projections:
                    joined = self.projections[name](joined)
                out, module_states[name] = self.blocks[name](joined, module_states[name])
            for source, op in self.merges[name]:
                bypass = values.get(source, previous.get(source))
                if op == "residual":
                    out = out + bypass
                else:
                    g = torch.sigmoid(self.gates[f"{name}<-{source}"](torch.cat((out, bypass), -1)))
                    out = g * out + (1 - g) * bypass
            values[name] = out
        outputs = {name: values[name] for name in self.order}
        return values["output"], {"outputs": outputs, "modules": module_states}


def _output_width(name: str, spec: MemorySpec | ControllerSpec) -> int:
    """What a module outputs per step: a controller's `hidden`, a memory's read-out (from a
    throwaway build that leaves torch's random state as it was)."""
    if isinstance(spec, ControllerSpec):
        return spec.hidden
    try:
        with torch.random.fork_rng(devices=[]):
            return spec.build().output_size
    except (TypeError, ValueError) as error:
        raise ConfigError(f"modules.{name}: {error}") from None


def load_network(path: str | Path, overrides: list[str] | None = None) -> Network:
    """A network from a YAML file; ConfigError with the field for anything wrong."""
    data, source = read_yaml(path, {}, overrides or [], "network")
    spec = validate(NetworkSpec, data, source)
    try:
        return Network(spec, Path(path).parent)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


@register_memory
class SubNetworkSpec(MemorySpec):
    """A whole network as one memory module, e.g. an expert of a mixture (`network` inline)."""

    type: Literal["network"] = "network"
    network: NetworkSpec

    def build(self) -> Network:
        return Network(self.network)


def _smoke() -> None:
    spec = NetworkSpec.model_validate(
        {
            "input_size": 6,
            "output_size": 4,
            "modules": {
                "controller": {"type": "lstm", "hidden": 16},
                "memory": {"type": "dnc", "slots": 8, "width": 5},
            },
            "connections": [
                {"to": "controller", "from": ["input", "memory"]},
                {"to": "memory", "from": "controller"},
                {"to": "output", "from": ["controller", "memory"]},
            ],
        }
    )
    out, _ = Network(spec).run(torch.randn(3, 7, 6))
    assert out.shape == (3, 7, 4)
    print(f"network ok: outputs {tuple(out.shape)}")


if __name__ == "__main__":
    _smoke()
