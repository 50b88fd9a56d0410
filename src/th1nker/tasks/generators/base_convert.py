"""Base conversion: a number in base a, the trigger `output:base @ b`, the target in base b.

Two traces (the generator's `trace` field):

- `horner`: Horner's rule in the target base. State k is the value of the k most significant
  input digits, written in base b (255 from base 10 to 16: 2 -> 19 -> ff, i.e. 2, 2*10+5,
  25*10+5). Each state is the last times a plus one digit, a product by a constant and a carry
  that runs from the least significant digit up, the direction in which the task language writes
  numbers; the textbook repeated division by b runs its remainders from the most significant digit
  down, against it. A number with d input digits has d states.
- `hub`: the same rule between *hub* bases, so that states stay short: the hub of a power of two
  is 16 (regrouping bits between powers of two is local, every output digit depends on a few input
  digits), any other base is its own hub. The states are the number in the input's hub (unless it
  is written so already), the Horner states over the input hub's digits in the output hub (only
  the last when both hubs agree: the others are its prefixes), then the answer in b (unless it
  is the output hub). 10 -> 2: 9 hex Horner states and the answer instead of 9 binary states of
  up to 30 digits; 2 -> 4: the number in hex, then in base 4.

The sign, if any, is written on every state.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool, Int, Shaped

from th1nker.tasks.batch_encoding import (
    concat_segments,
    constant_segment,
    encode_ints,
    int_digits,
)
from th1nker.tasks.generators.base import (
    Encoded,
    Formatter,
    Problems,
    base_segment,
    number_target,
    output_base_suffix,
)
from th1nker.tasks.sampling import decimal_digits, sample_numbers
from th1nker.tasks.vocab import EOS, EQUALS

HEX_HUB = 16


@dataclasses.dataclass(frozen=True)
class BaseConvertProblems(Problems):
    """value [n] (Python ints or int64; negative when the generator allows it)."""

    task = "base_convert"
    value: Shaped[np.ndarray, " n"]
    hub: Bool[np.ndarray, " n"]  # True: the `hub` trace, False: `horner` (module docstring)

    def difficulty(self):
        return decimal_digits(self.value), np.ones(len(self), dtype=np.int64)

    def choose_out_base(self, rng, base, out_base, allowed_bases):
        """A target base drawn uniformly from `allowed_bases`, other than the input base."""
        allowed = np.asarray(allowed_bases)
        choice = allowed[rng.integers(0, len(allowed), size=len(base))]
        if len(allowed) > 1:
            same = np.flatnonzero(choice == base)
            shift = rng.integers(1, len(allowed), size=len(same))
            index = (np.searchsorted(allowed, base[same]) + shift) % len(allowed)
            choice[same] = allowed[index]
        return choice

    def encode(self, base, out_base) -> Encoded:
        inputs = concat_segments(
            [
                base_segment(base),
                encode_ints(self.value, base),
                *output_base_suffix(base, out_base),
                constant_segment([EQUALS], np.ones(len(self), dtype=bool)),
            ]
        )
        return Encoded(*inputs, *number_target(self.value, out_base))

    def prefixes(self, base) -> list[list[int]]:
        """Per row, the Horner states: the value of its 1, 2, ... most significant digits in
        `base` (sign included), the last being the value itself."""
        digits, lengths = int_digits(self.value, base)
        rows = []
        for i, value in enumerate(self.value):
            sign, acc, states = (-1 if value < 0 else 1), 0, []
            for digit in digits[i, : lengths[i]][::-1].tolist():
                acc = acc * int(base[i]) + digit
                states.append(sign * acc)
            rows.append(states)
        return rows

    def states(self, base, out_base) -> list[list[tuple[int, int]]]:
        """Per row, the trace as (value, base it is written in) pairs; the last is the answer."""
        base, out_base = np.asarray(base), np.asarray(out_base)
        in_hub, out_hub = np.where(self.hub, hub_base(base), base), hub_base(out_base)
        out_hub = np.where(self.hub, out_hub, out_base)
        horner = self.prefixes(in_hub)
        rows = []
        for i, value in enumerate(self.value.tolist()):
            a, b, ha, hb = int(base[i]), int(out_base[i]), int(in_hub[i]), int(out_hub[i])
            if not self.hub[i]:
                rows.append([(v, b) for v in horner[i]])
                continue
            states = [(value, ha)] if ha != a else []
            if ha != hb:
                states += [(v, hb) for v in horner[i]]
            if b != hb or not states:
                states.append((value, b))
            rows.append(states)
        return rows

    def trace(self, base, out_base):
        rows = self.states(base, out_base)
        pairs = [pair for states in rows for pair in states]
        values = np.array([v for v, _ in pairs], dtype=object)
        bases = np.array([w for _, w in pairs], dtype=np.int64)
        tokens, lengths = concat_segments(
            [encode_ints(values, bases), constant_segment([EOS], np.ones(len(values), bool))]
        )
        flat = iter(tokens[k, : lengths[k]].tolist() for k in range(len(values)))
        return [[next(flat) for _ in states] for states in rows]

    def describe_trace(self, fmt, base, out_base):
        return [[fmt(v, w) for v, w in states] for states in self.states(base, out_base)]

    def describe(self, fmt: Formatter, base, out_base):
        return [
            (fmt(int(v), int(b)), fmt(int(v), int(ob)))
            for v, b, ob in zip(self.value, base, out_base, strict=True)
        ]


def sample_base_convert(
    rng: np.random.Generator,
    n: int,
    digits: tuple[int, int],
    max_number: int | None,
    negative: bool,
    trace: str = "horner",
) -> BaseConvertProblems:
    """`n` numbers with a uniform decimal digit count in `digits`, negated at random if allowed,
    traced by `trace` ("horner" or "hub")."""
    value, _ = sample_numbers(rng, digits, n, max_number)
    if negative:
        value = np.where(rng.random(n) < 0.5, -value, value)
    return BaseConvertProblems(value, np.full(n, trace == "hub"))


def hub_base(base: Int[np.ndarray, " n"]) -> Int[np.ndarray, " n"]:
    """The hub of each base for the `hub` trace: 16 for a power of two, the base otherwise."""
    base = np.asarray(base, dtype=np.int64)
    return np.where(base & (base - 1) == 0, HEX_HUB, base)


def state_bases(hub: bool, base: int, out_base: int, n_states: int) -> list[int]:
    """The base each of `n_states` states written for a conversion from `base` to `out_base` is
    in (the answer last), by the rule of `BaseConvertProblems.states`; `hub`: the `hub` trace."""
    if not hub:
        return [out_base] * n_states
    in_hub, out_hub = (int(h) for h in hub_base(np.array([base, out_base])))
    bases = [out_hub] * n_states
    if in_hub != base and n_states > 1:
        bases[0] = in_hub
    return bases[:-1] + [out_base] if n_states else []
