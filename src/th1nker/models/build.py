"""The models by name: `model.kind` in an experiment picks one."""

from __future__ import annotations

from th1nker.models.config import ModelConfig, TRMConfig
from th1nker.models.th1nker import Th1nker
from th1nker.models.trm import TRM

Model = Th1nker | TRM
MODELS = {"th1nker": Th1nker, "trm": TRM}


def build_model(config: ModelConfig | TRMConfig) -> Model:
    """A freshly initialised model of `config.kind` (seed torch first for a repeatable init)."""
    return MODELS[config.kind](config)
