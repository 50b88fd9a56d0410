"""The memory library: stateful memories, their readers and writers, and controllers; importing
it registers the built-in memory and controller types (registry.py)."""

from th1nker.memory import (  # noqa: F401  (registers the types)
    attention_memory,
    controllers,
    dnc,
    episodic,
    mixture,
    network,
    neural,
    ntm,
    persistent,
)
