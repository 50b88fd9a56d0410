"""Compiler stage 3: one block per operation, over named residual directions.

An `MLPBlock` reads some directions and writes others: out = relu(x W_in + b_in) W_out + b_out.
A `HeadBlock` is one attention head: score(q, k) = x_q[queries] QK x_k[keys]^T, plus a sink (a
persistent key/value every query sees: score `sink_score`, value `sink_value`), and
out_q = sum_k softmax(score)_qk x_k[values] OV. Where a selector selects nothing the sink wins
and the head writes its default. With coldness c (the softmax's inverse temperature):

- categorical MLP (Map of a categorical SOp): one hidden unit per input value x,
  relu(x_onehot) -> onehot(f(x)) (or f(x) into a numerical direction);
- discretising MLP (Map of a numerical SOp over its sorted values x_0 < .. < x_m): for each
  gap k across which f changes, a step s_k(x) = relu(a (x - m_k) + 1/2) - relu(a (x - m_k) -
  1/2) at the midpoint m_k with slope a = 4 / (x_k - x_(k-1)), exact on every value and within
  a quarter gap of it; out = f(x_0) + sum_k s_k(x) (f(x_k) - f(x_(k-1)));
- SequenceMap: one hidden unit per value pair, relu(x_onehot + y_onehot - 1) -> onehot(f(x, y));
  both lookups keep only the units that write something (f not None, not a numerical 0), and
  `restoring` (optional) makes them steps that remove input errors below 1/4;
- LinearSequenceMap (numerical): z = a x + b y, out = relu(z) - relu(-z);
- Aggregate: QK = c * predicate(key, query) over the value pairs, sink score c/2 (below a
  selected key, above an unselected one), OV copies value directions (categorical) or writes
  the mean of the numbers (numerical), sink value = the default;
- SelectorWidth: a head with sink score c (the sink counts as one more selected key) and sink
  value 1 writes 1/(w+1); a discretising MLP on the values {1/(w+1): w = 0..N} decodes w. Its
  slopes come from the gaps 1/((w+1)(w+2)), so every width up to max_seq_len decodes exactly
  (tracr's fixed slope confuses 10 and 11 at its default).
"""

from __future__ import annotations

import dataclasses
from typing import no_type_check

import torch
from torch import Tensor

from th1nker.rasp.language import Aggregate, Select, Value
from th1nker.rasp.residual import Direction

DTYPE = torch.float64


@dataclasses.dataclass
class MLPBlock:
    """relu(x[reads] w_in + b_in) w_out + b_out -> x[writes]. Shapes: w_in [reads, hidden],
    b_in [hidden], w_out [hidden, writes], b_out [writes]."""

    role: str
    reads: list[Direction]
    writes: list[Direction]
    w_in: Tensor
    b_in: Tensor
    w_out: Tensor
    b_out: Tensor

    @property
    def hidden(self) -> int:
        return self.w_in.shape[1]


@dataclasses.dataclass
class HeadBlock:
    """One attention head (module docstring). Shapes: qk [queries, keys], ov [values, writes],
    sink_value [writes]."""

    role: str
    queries: list[Direction]
    keys: list[Direction]
    values: list[Direction]
    writes: list[Direction]
    qk: Tensor
    ov: Tensor
    sink_score: float
    sink_value: Tensor


Block = MLPBlock | HeadBlock


def categorical_mlp(
    role: str, f, inputs: list[Direction], outputs: list[Direction], numerical_out: bool
) -> MLPBlock:
    """Map of a categorical SOp (its directions `inputs`) into `outputs`: a unit per input
    value whose f writes something (not None, not a numerical 0)."""
    slots = _Slots(outputs, numerical_out)
    rows = [slots.row(f(direction.value)) for direction in inputs]
    units = [i for i, row in enumerate(rows) if row.any()]
    w_in = torch.eye(len(inputs), dtype=DTYPE)[:, units]
    w_out = torch.stack([rows[i] for i in units]) if units else _zeros(0, len(outputs))
    return MLPBlock(role, inputs, outputs, w_in, _zeros(len(units)), w_out, _zeros(len(outputs)))


def discretising_mlp(
    role: str,
    f,
    input_direction: Direction,
    input_values: tuple[float | int | bool, ...],
    outputs: list[Direction],
    numerical_out: bool,
) -> MLPBlock:
    """Map of a numerical SOp that takes the sorted `input_values` (module docstring). A gap
    across which f does not change needs no step, so only the others get hidden units."""
    xs = list(input_values)
    fx = [f(x) for x in xs]
    slots = _Slots(outputs, numerical_out)
    b_out = _zeros(len(outputs))
    slots.write(b_out, fx[0])
    steps = []
    for k in range(1, len(xs)):
        step = _zeros(len(outputs))
        slots.write(step, fx[k])
        slots.write(step, fx[k - 1], sign=-1.0)
        if step.any():
            steps.append((k, step))
    w_in = torch.zeros(1, 2 * len(steps), dtype=DTYPE)
    b_in = _zeros(2 * len(steps))
    w_out = torch.zeros(2 * len(steps), len(outputs), dtype=DTYPE)
    for unit, (k, step) in enumerate(steps):
        slope, middle = 4.0 / (xs[k] - xs[k - 1]), (xs[k] + xs[k - 1]) / 2
        up, down = 2 * unit, 2 * unit + 1
        w_in[0, up] = w_in[0, down] = slope
        b_in[up], b_in[down] = -slope * middle + 0.5, -slope * middle - 0.5
        w_out[up], w_out[down] = step, -step
    return MLPBlock(role, [input_direction], outputs, w_in, b_in, w_out, b_out)


def sequence_map_mlp(
    role: str,
    f,
    first: list[Direction],
    second: list[Direction],
    outputs: list[Direction],
    numerical_out: bool,
) -> MLPBlock:
    """SequenceMap of two categorical SOps: a unit per value pair whose f writes something."""
    reads = first + second
    slots = _Slots(outputs, numerical_out)
    pairs = []
    for i, x in enumerate(first):
        for j, y in enumerate(second):
            row = slots.row(f(x.value, y.value))
            if row.any():
                pairs.append((i, j, row))
    w_in = torch.zeros(len(reads), len(pairs), dtype=DTYPE)
    for unit, (i, j, _) in enumerate(pairs):
        w_in[i, unit] = w_in[len(first) + j, unit] = 1.0
    w_out = torch.stack([row for *_, row in pairs]) if pairs else _zeros(0, len(outputs))
    b_in = torch.full((len(pairs),), -1.0, dtype=DTYPE)
    return MLPBlock(role, reads, outputs, w_in, b_in, w_out, _zeros(len(outputs)))


def restoring(block: MLPBlock) -> MLPBlock:
    """The block with each hidden unit relu(z) (z ideally 0 or 1, or below 0) replaced by the
    step relu(2z - 1/2) - relu(2z - 3/2): 0 for z <= 1/4, 1 for z >= 3/4. Errors of up to a
    quarter in the inputs are removed instead of passed on (and compounded) to the next
    layer, which is what lets a compiled model be fine-tuned or run in low precision."""
    w_in = torch.cat((2 * block.w_in, 2 * block.w_in), dim=1)
    b_in = torch.cat((2 * block.b_in - 0.5, 2 * block.b_in - 1.5))
    w_out = torch.cat((block.w_out, -block.w_out))
    return dataclasses.replace(block, w_in=w_in, b_in=b_in, w_out=w_out)


def linear_mlp(role: str, terms: list[tuple[Direction, float]], output: Direction) -> MLPBlock:
    """out = z with z = sum of coefficient * x[direction] (z = a x + b y): relu(z) - relu(-z)."""
    reads = list(dict.fromkeys(direction for direction, _ in terms))
    w_in = torch.zeros(len(reads), 2, dtype=DTYPE)
    for direction, coefficient in terms:
        w_in[reads.index(direction), 0] += coefficient
        w_in[reads.index(direction), 1] -= coefficient
    w_out = torch.tensor([[1.0], [-1.0]], dtype=DTYPE)
    return MLPBlock(role, reads, [output], w_in, _zeros(2), w_out, _zeros(1))


def number_terms(directions: list[Direction], numerical: bool) -> list[tuple[Direction, float]]:
    """The SOp's number as a linear function of its directions: the direction itself
    (numerical) or sum of value * onehot (categorical numbers)."""
    if numerical:
        return [(directions[0], 1.0)]
    return [(direction, float(direction.value)) for direction in directions]


def aggregate_head(
    role: str,
    node: Aggregate,
    select: Select,
    queries: list[Direction],
    keys: list[Direction],
    values: list[tuple[Direction, float]] | list[Direction],
    outputs: list[Direction],
    coldness: float,
) -> HeadBlock:
    """Aggregate over `select` (module docstring). `values`: directions to copy (categorical)
    or (direction, coefficient) terms of a number (numerical)."""
    qk = selection_scores(select, queries, keys, coldness)
    sink_value = _zeros(len(outputs))
    if node.is_numerical:
        reads = [direction for direction, _ in values]  # type: ignore[misc]
        ov = torch.tensor([c for _, c in values], dtype=DTYPE).reshape(-1, 1)  # type: ignore[misc]
        sink_value[0] = float(node.default)
    else:
        reads = list(values)  # type: ignore[arg-type]
        ov = torch.zeros(len(reads), len(outputs), dtype=DTYPE)
        slots = _Slots(outputs, False)
        for i, direction in enumerate(reads):
            slots.write(ov[i], direction.value)
        slots.write(sink_value, node.default)
    return HeadBlock(role, queries, keys, reads, outputs, qk, ov, 0.5 * coldness, sink_value)


def width_head(
    role: str,
    select: Select,
    queries: list[Direction],
    keys: list[Direction],
    output: Direction,
    coldness: float,
) -> HeadBlock:
    """The attention half of SelectorWidth: writes 1 / (selected + 1) into `output`."""
    qk = selection_scores(select, queries, keys, coldness)
    ov = torch.zeros(0, 1, dtype=DTYPE)
    sink = torch.ones(1, dtype=DTYPE)
    return HeadBlock(role, queries, keys, [], [output], qk, ov, coldness, sink)


def selection_scores(
    select: Select, queries: list[Direction], keys: list[Direction], coldness: float
) -> Tensor:
    """QK [queries, keys] = coldness * predicate(key value, query value)."""
    predicate = select.predicate
    scores = [[coldness if predicate(k.value, q.value) else 0.0 for k in keys] for q in queries]
    return torch.tensor(scores, dtype=DTYPE).reshape(len(queries), len(keys))


class _Slots:
    """Where a block writes a value: one-hot over the categorical directions `outputs`, or
    the number into the one numerical direction."""

    def __init__(self, outputs: list[Direction], numerical: bool):
        self.outputs, self.numerical = outputs, numerical
        self.index = {direction.value: i for i, direction in enumerate(outputs)}

    def write(self, row: Tensor, value: Value, sign: float = 1.0) -> None:
        """Add `value` into `row` (a row of a weight over the outputs)."""
        if value is None:
            return
        if self.numerical:
            row[0] += sign * float(value)
            return
        i = self.index.get(value)
        if i is None:  # a number within rounding of a direction's value
            near = (i for i, d in enumerate(self.outputs) if same_value(d.value, value))
            i = next(near, None)
        if i is None:
            raise AssertionError(f"value {value!r} has no direction among {self.outputs[:4]}...")
        row[i] += sign

    def row(self, value: Value) -> Tensor:
        """A new row [outputs] holding `value`."""
        row = _zeros(len(self.outputs))
        self.write(row, value)
        return row


@no_type_check  # hot: kept out of the tests' type hook
def same_value(a: Value, b: Value) -> bool:
    """Equal, or numbers within 1e-9 relative (the value sets merge such near-duplicates)."""
    if a == b:
        return True
    numbers = (bool, int, float)
    return (
        isinstance(a, numbers) and isinstance(b, numbers) and abs(a - b) <= 1e-9 * max(1.0, abs(a))
    )


def _zeros(*shape: int) -> Tensor:
    return torch.zeros(*shape, dtype=DTYPE)
