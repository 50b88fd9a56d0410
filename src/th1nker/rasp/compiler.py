"""The RASP compiler: a program into the weights of a PyTorch transformer.

    compiled = compile_program(program, vocab={"a", "b"}, max_seq_len=10)
    compiled.run([["a", "b", "a"]])          -> [[...]] the program's output, decoded
    print(compiled.describe())               residual layout and each layer's role

Stages, each inspectable on the result: `graph` (1, graph.py: lowered program, unique names),
`values` (2, values.py: value sets; refusals), `layout` and `blocks` (3, residual.py and
blocks.py), `layers` (4, layers.py: allocation), `model` (5, model.py: the nn.Module).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from th1nker.rasp import blocks as B
from th1nker.rasp.graph import ProgramGraph, program_graph
from th1nker.rasp.language import (
    Aggregate,
    Full,
    Indices,
    LinearSequenceMap,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    Tokens,
    Value,
)
from th1nker.rasp.layers import Layer, allocate_layers
from th1nker.rasp.model import CompiledAttention, CompiledLayer, CompiledTransformer
from th1nker.rasp.residual import (
    ONE,
    Direction,
    ResidualLayout,
    categorical_directions,
    numerical_direction,
)
from th1nker.rasp.values import CompileError, ValueSet, check_encodings, infer_values

DEFAULT_COLDNESS = 100.0


@dataclasses.dataclass
class CompiledProgram:
    """A compiled program and every stage that made it (module docstring)."""

    program: SOp
    vocab: tuple[Value, ...]
    max_seq_len: int
    causal: bool
    coldness: float
    restoring: bool
    graph: ProgramGraph
    values: dict[int, ValueSet]
    layout: ResidualLayout
    blocks: list[B.Block]
    layers: list[Layer]
    model: CompiledTransformer

    @property
    def output_name(self) -> str:
        return self.graph.name(self.graph.output)

    def encode(self, inputs: Sequence[Sequence[Value]]) -> tuple[Tensor, Tensor]:
        """(ids [batch, time], valid [batch, time]) of input sequences (padded)."""
        index = {token: i for i, token in enumerate(self.vocab)}
        longest = max((len(row) for row in inputs), default=0)
        if longest > self.max_seq_len or min((len(r) for r in inputs), default=1) < 1:
            raise ValueError(
                f"input lengths must be 1..{self.max_seq_len} (max_seq_len), got "
                f"{sorted({len(r) for r in inputs})}"
            )
        rows = []
        for row in inputs:
            for token in row:
                if token not in index:
                    raise ValueError(
                        f"input token {token!r} is not in the compiled vocab {list(self.vocab)}"
                    )
            rows.append([index[token] for token in row] + [0] * (longest - len(row)))
        ids = torch.tensor(rows, dtype=torch.long).reshape(len(inputs), longest)
        lengths = torch.tensor([len(row) for row in inputs])
        valid = torch.arange(longest)[None] < lengths[:, None]
        return ids, valid

    @torch.no_grad()
    def run(self, inputs: Sequence[Sequence[Value]], sop: SOp | None = None) -> list[list]:
        """The decoded output (or the decoded SOp `sop` of the program) on each input."""
        device = next(self.model.parameters()).device
        ids, valid = self.encode(inputs)
        residual = self.model(ids.to(device), valid.to(device))
        name = self.output_name if sop is None else self.graph.name(sop)
        decoded = self.decode(residual, name)
        return [row[: len(inputs[b])] for b, row in enumerate(decoded)]

    def decode(self, residual: Tensor, name: str) -> list[list]:
        """The values of SOp `name` in residual streams [batch, time, D]: a number
        (numerical), the value of the largest direction if above 1/2, else None."""
        directions = self.layout.of(name)
        coordinates = [self.layout.index(d) for d in directions]
        part = residual[..., coordinates].double().cpu()
        if directions[0].numerical:
            return part[..., 0].tolist()
        best, where = part.max(dim=-1)
        return [
            [directions[w].value if b > 0.5 else None for b, w in zip(brow, wrow, strict=True)]
            for brow, wrow in zip(best.tolist(), where.tolist(), strict=True)
        ]

    def describe(self) -> str:
        """The residual layout (coordinates of each SOp) and each layer's blocks."""
        lines = [f"residual stream: {len(self.layout)} directions"]
        for name, start, width in self.layout.spans():
            values = ", ".join(str(d.value) for d in self.layout.of(name)[:8])
            more = ", ..." if width > 8 else ""
            kind = "numerical" if self.layout.of(name)[0].numerical else f"{{{values}{more}}}"
            lines.append(f"  [{start}:{start + width}] {name} {kind}")
        for i, layer in enumerate(self.layers):
            heads = "; ".join(h.role for h in layer.heads) or "-"
            mlps = "; ".join(f"{m.role} ({m.hidden} hidden)" for m in layer.mlps) or "-"
            lines.append(f"layer {i}: attention: {heads}")
            lines.append(f"         mlp: {mlps}")
        parameters = sum(p.numel() for p in self.model.parameters())
        lines.append(f"{len(self.layers)} layers, {parameters:,} parameters")
        return "\n".join(lines)


def compile_program(
    program: SOp,
    vocab: Sequence[Value],
    max_seq_len: int,
    causal: bool = False,
    coldness: float = DEFAULT_COLDNESS,
    restoring: bool = False,
) -> CompiledProgram:
    """Compile `program` for inputs over `vocab` of length 1..max_seq_len (module docstring).
    `restoring`: lookup MLPs as steps that remove small input errors (blocks.restoring; twice
    their hidden units), for fine-tuning."""
    vocab = tuple(vocab)
    graph = program_graph(program)
    values = infer_values(graph, vocab, max_seq_len)
    check_encodings(graph, values)
    layout = _layout(graph, values)
    blocks = _blocks(graph, values, layout, coldness, restoring)
    embedded = {"one", *(graph.name(n) for n in graph.nodes if _embedded(n))}
    layers = allocate_layers(blocks, embedded)
    model = _assemble(graph, values, layout, layers, vocab, max_seq_len, causal)
    return CompiledProgram(
        program, vocab, max_seq_len, causal, coldness, restoring, graph, values, layout, blocks,
        layers, model,
    )  # fmt: skip


def _embedded(node) -> bool:
    return isinstance(node, (Tokens, Indices, Full))


def _directions(graph: ProgramGraph, node: SOp, values: dict[int, ValueSet]) -> list[Direction]:
    name = graph.name(node)
    if node.is_numerical:
        return [numerical_direction(name)]
    return categorical_directions(name, values[node.id].values or ())


def _width_direction(graph: ProgramGraph, node: SelectorWidth) -> Direction:
    return numerical_direction(f"{graph.name(node)}.attention")


def _layout(graph: ProgramGraph, values: dict[int, ValueSet]) -> ResidualLayout:
    directions = [ONE]
    for node in graph.sops:
        if isinstance(node, SelectorWidth):
            directions.append(_width_direction(graph, node))
        directions.extend(_directions(graph, node, values))
    return ResidualLayout(directions)


def _blocks(
    graph: ProgramGraph,
    values: dict[int, ValueSet],
    layout: ResidualLayout,
    coldness: float,
    restoring: bool,
) -> list[B.Block]:
    """One or two blocks per computed SOp, in graph order."""
    out: list[B.Block] = []
    lookup = B.restoring if restoring else (lambda block: block)
    of = lambda sop: layout.of(graph.name(sop))  # noqa: E731
    for node in graph.sops:
        if _embedded(node):
            continue
        name, writes = graph.name(node), of(node)
        numerical_out = node.is_numerical
        if isinstance(node, Map):
            role = f"{name} = Map({graph.name(node.sop)})"
            if node.sop.is_numerical:
                xs = values[node.sop.id].values
                out.append(B.discretising_mlp(role, node.f, of(node.sop)[0], xs, writes,
                                              numerical_out))  # fmt: skip
            else:
                out.append(lookup(B.categorical_mlp(role, node.f, of(node.sop), writes,
                                                    numerical_out)))  # fmt: skip
        elif isinstance(node, LinearSequenceMap) and numerical_out:
            terms = [
                (d, node.first_factor * c)
                for d, c in B.number_terms(of(node.first), node.first.is_numerical)
            ] + [
                (d, node.second_factor * c)
                for d, c in B.number_terms(of(node.second), node.second.is_numerical)
            ]
            role = f"{name} = {node.first_factor}*{graph.name(node.first)} + " \
                   f"{node.second_factor}*{graph.name(node.second)}"  # fmt: skip
            out.append(B.linear_mlp(role, terms, writes[0]))
        elif isinstance(node, SequenceMap):
            role = f"{name} = SequenceMap({graph.name(node.first)}, {graph.name(node.second)})"
            out.append(lookup(B.sequence_map_mlp(role, node.f, of(node.first), of(node.second),
                                                 writes, numerical_out)))  # fmt: skip
        elif isinstance(node, Aggregate):
            select = node.selector
            assert isinstance(select, Select)  # composite selectors are lowered in stage 1
            role = f"{name} = Aggregate({graph.name(select)}, {graph.name(node.sop)})"
            sop_directions = of(node.sop)
            if numerical_out:
                sop_directions = B.number_terms(sop_directions, node.sop.is_numerical)
            out.append(B.aggregate_head(role, node, select, of(select.queries), of(select.keys),
                                        sop_directions, writes, coldness))  # fmt: skip
        elif isinstance(node, SelectorWidth):
            select = node.selector
            assert isinstance(select, Select)
            width = _width_direction(graph, node)
            role = f"{name} = SelectorWidth({graph.name(select)})"
            out.append(B.width_head(role + " [1/(w+1)]", select, of(select.queries),
                                    of(select.keys), width, coldness))  # fmt: skip
            n = _largest_width(values, node)
            xs = tuple(1.0 / (w + 1) for w in range(n, -1, -1))  # sorted ascending
            decode = {x: n - i for i, x in enumerate(xs)}
            out.append(B.discretising_mlp(role + " [decode w]", decode.__getitem__, width, xs,
                                          writes, numerical_out))  # fmt: skip
        else:
            raise CompileError(f"{node.kind} {name!r}: no block compiles this operation")
    return out


def _largest_width(values: dict[int, ValueSet], node: SelectorWidth) -> int:
    """The largest width a SelectorWidth can take (its value set is 0..max_seq_len)."""
    return int(max(values[node.id].values or (0,)))


def _assemble(
    graph: ProgramGraph,
    values: dict[int, ValueSet],
    layout: ResidualLayout,
    layers: list[Layer],
    vocab: tuple[Value, ...],
    max_seq_len: int,
    causal: bool,
) -> CompiledTransformer:
    d = len(layout)
    built = [CompiledLayer(_attention(layer, layout), _mlp(layer, layout)) for layer in layers]
    model = CompiledTransformer(d, len(vocab), max_seq_len, built, causal)
    with torch.no_grad():
        tokens = torch.zeros(len(vocab), d, dtype=B.DTYPE)
        positions = torch.zeros(max_seq_len, d, dtype=B.DTYPE)
        tokens[:, layout.index(ONE)] = 1.0
        for node in graph.sops:
            name = graph.name(node)
            if isinstance(node, Tokens):
                for i, token in enumerate(vocab):
                    _embed(tokens[i], layout, name, token, node.is_numerical)
            elif isinstance(node, Indices):
                for i in range(max_seq_len):
                    _embed(positions[i], layout, name, i, node.is_numerical)
            elif isinstance(node, Full):  # written by every token, so only real positions
                for i in range(len(vocab)):
                    _embed(tokens[i], layout, name, node.value, node.is_numerical)
        model.token_embedding.weight.copy_(tokens)
        model.position_embedding.weight.copy_(positions)
    return model.float()


def _embed(row: Tensor, layout: ResidualLayout, name: str, value: Value, numerical: bool):
    if numerical:
        row[layout.index(numerical_direction(name))] = float(value)
    else:
        row[layout.index(Direction(name, value))] = 1.0


def _attention(layer: Layer, layout: ResidualLayout) -> CompiledAttention | None:
    if not layer.heads:
        return None
    d_head = max(len(h.queries) for h in layer.heads) + 1  # + the `one` coordinate (sink)
    d_value = max(max(len(h.values) for h in layer.heads), 1) + 1  # + the sink's coordinate
    attention = CompiledAttention(len(layout), len(layer.heads), d_head, d_value)
    with torch.no_grad():
        for h, head in enumerate(layer.heads):
            w_q = torch.zeros(len(layout), d_head, dtype=B.DTYPE)
            w_k = torch.zeros(len(layout), d_head, dtype=B.DTYPE)
            for i, query in enumerate(head.queries):
                w_q[layout.index(query), i] = 1.0
            w_q[layout.index(ONE), d_head - 1] = 1.0
            for j, key in enumerate(head.keys):
                w_k[layout.index(key), : len(head.queries)] = head.qk[:, j]
            w_v = torch.zeros(len(layout), d_value, dtype=B.DTYPE)
            w_o = torch.zeros(d_value, len(layout), dtype=B.DTYPE)
            for i, value in enumerate(head.values):
                w_v[layout.index(value), i] = 1.0
                for j, write in enumerate(head.writes):
                    w_o[i, layout.index(write)] = head.ov[i, j]
            for j, write in enumerate(head.writes):
                w_o[d_value - 1, layout.index(write)] = head.sink_value[j]
            attention.w_q[h].copy_(w_q)
            attention.w_k[h].copy_(w_k)
            attention.w_v[h].copy_(w_v)
            attention.w_o[h].copy_(w_o)
            attention.sink_key[h, d_head - 1] = head.sink_score
            attention.sink_value[h, d_value - 1] = 1.0
    return attention


def _mlp(layer: Layer, layout: ResidualLayout) -> nn.Sequential | None:
    if not layer.mlps:
        return None
    hidden = max(sum(m.hidden for m in layer.mlps), 1)  # a constant-only MLP keeps 1 dead unit
    first, second = nn.Linear(len(layout), hidden), nn.Linear(hidden, len(layout))
    with torch.no_grad():
        for linear in (first, second):
            linear.weight.zero_()
            linear.bias.zero_()
        start = 0
        for mlp in layer.mlps:
            units = slice(start, start + mlp.hidden)
            for i, read in enumerate(mlp.reads):
                first.weight[units, layout.index(read)] = mlp.w_in[i].float()
            first.bias[units] = mlp.b_in.float()
            for j, write in enumerate(mlp.writes):
                second.weight[layout.index(write), units] = mlp.w_out[:, j].float()
                second.bias[layout.index(write)] += float(mlp.b_out[j])
            start += mlp.hidden
    return nn.Sequential(first, nn.ReLU(), second)
