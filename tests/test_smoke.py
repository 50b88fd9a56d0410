"""Every component's `python -m th1nker.memory.X` smoke check, run in the suite."""

import importlib

import pytest

SMOKED = [
    "dnc", "ntm", "attention_memory", "controllers", "network", "dnc_network", "stepped",
    "neural", "episodic", "persistent", "mixture",
]  # fmt: skip


@pytest.mark.parametrize("name", SMOKED)
def test_smoke_check(name, capsys):
    importlib.import_module(f"th1nker.memory.{name}")._smoke()
    assert "ok" in capsys.readouterr().out
