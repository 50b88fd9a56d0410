"""The registry of memory types and controllers: each declares its own typed fields.

A memory type is a pydantic spec class (`MemorySpec`: its `type` name, its fields, its flags)
whose `build()` returns the memory module; a controller spec (`ControllerSpec`) builds its module
for a given input width. Each registers itself, in its own module, with `@register_memory` or
`@register_controller`; YAML networks (`network.py`) and the Th1nker's memory (`stepped.py`)
look types up here, so a field or flag a type does not take is refused by name. Importing
`th1nker.memory` registers the built-in types.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict

from th1nker.config_files import registered
from th1nker.memory.state import Stateful


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keeps_state: ClassVar[bool] = True  # carries state across steps (a loop must pass one)
    type: str

    @classmethod
    def kind(cls) -> str:
        """The registered name (the `type: Literal["name"]` field)."""
        (name,) = get_args(cls.model_fields["type"].annotation)
        return name


class MemorySpec(_Spec):
    """A memory type's fields. `build()` gives a Stateful memory with `interface_size`,
    `output_size` and `reads` (the number of read vectors it returns)."""

    @abc.abstractmethod
    def build(self) -> Stateful:
        """The memory module."""


class ControllerSpec(_Spec):
    """A controller's fields; it outputs `hidden` features per step."""

    hidden: int

    @abc.abstractmethod
    def build(self, input_size: int) -> Stateful:
        """The controller module for inputs of `input_size` features."""


MEMORIES: dict[str, type[MemorySpec]] = {}
CONTROLLERS: dict[str, type[ControllerSpec]] = {}


def _register(registry: dict[str, Any], spec: type[_Spec]) -> type[_Spec]:
    name = spec.kind()
    if spec.__module__ == "__main__":  # `python -m th1nker.memory.X` runs X a second time
        return spec
    if name in MEMORIES or name in CONTROLLERS:
        raise ValueError(f"memory or controller type {name!r} is registered twice")
    registry[name] = spec
    return spec


def register_memory(spec: type[MemorySpec]) -> type[MemorySpec]:
    """Class decorator: a memory type named by its `type: Literal["name"]` field."""
    return _register(MEMORIES, spec)


def register_controller(spec: type[ControllerSpec]) -> type[ControllerSpec]:
    """Class decorator: a controller named by its `type: Literal["name"]` field."""
    return _register(CONTROLLERS, spec)


memory_spec = registered(MEMORIES, "type", None, "memory type")
"""Validator: a memory spec mapping -> the registered MemorySpec of its `type`."""
