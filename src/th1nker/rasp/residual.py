"""The residual stream of a compiled program: one named basis direction per value.

    one                     1 at every position (biases, and the attention sink's key)
    tokens:a, tokens:b      the input token, one-hot (a numerical `tokens`: one direction)
    indices:0 .. indices:N-1
    NAME:v                  a categorical SOp NAME, one direction per value v it can take
    NAME                    a numerical SOp NAME: one direction holding the number
    NAME:1/(w+1)            a SelectorWidth's attention output, decoded by its MLP

A None is the zero vector over an SOp's directions.
"""

from __future__ import annotations

import dataclasses

from th1nker.rasp.language import Value


@dataclasses.dataclass(frozen=True)
class Direction:
    """One basis direction: the SOp `name` and, if categorical, the `value` it stands for."""

    name: str
    value: Value = None
    numerical: bool = False

    def __str__(self) -> str:
        return self.name if self.numerical or self.name == "one" else f"{self.name}:{self.value}"


ONE = Direction("one", numerical=True)


def categorical_directions(name: str, values: tuple[Value, ...]) -> list[Direction]:
    return [Direction(name, value) for value in values]


def numerical_direction(name: str) -> Direction:
    return Direction(name, numerical=True)


class ResidualLayout:
    """The ordered directions of the residual stream; `index(direction)` is its coordinate,
    `of(name)` the directions of one SOp."""

    def __init__(self, directions: list[Direction]):
        if len(set(directions)) != len(directions):
            raise ValueError("a residual direction appears twice")
        self.directions = directions
        self._index = {d: i for i, d in enumerate(directions)}
        self._by_name: dict[str, list[Direction]] = {}
        for direction in directions:
            self._by_name.setdefault(direction.name, []).append(direction)

    def __len__(self) -> int:
        return len(self.directions)

    def index(self, direction: Direction) -> int:
        return self._index[direction]

    def of(self, name: str) -> list[Direction]:
        return self._by_name.get(name, [])

    def spans(self) -> list[tuple[str, int, int]]:
        """(SOp name, first coordinate, width) of each group of directions, in order."""
        spans: list[tuple[str, int, int]] = []
        for i, direction in enumerate(self.directions):
            if spans and spans[-1][0] == direction.name:
                name, start, width = spans[-1]
                spans[-1] = (name, start, width + 1)
            else:
                spans.append((direction.name, i, 1))
        return spans
