"""Where and how precisely to compute: CUDA, then MPS, then CPU; bf16 autocast on CUDA."""

from __future__ import annotations

import contextlib

import torch

from th1nker.config_files import ConfigError


def pick_device(choice: str = "auto") -> torch.device:
    """The requested device, or the best available one for `auto`; ConfigError if missing."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if choice == "auto":
        return torch.device(next(name for name, ok in available.items() if ok))
    if not available.get(choice, False):
        present = ", ".join(name for name, ok in available.items() if ok)
        raise ConfigError(f"train.device: {choice} is not available here; available: {present}")
    return torch.device(choice)


def autocast(device: torch.device, precision: str):
    """A bf16 autocast context on CUDA (precision auto or bf16), else nothing."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
