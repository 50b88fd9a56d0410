"""Shape and type checks: every th1nker module is imported through jaxtyping's hook with beartype.

Tests run torch on one thread: their models are tiny, and two threads on two cores spend more
time synchronising than computing (a 300-step overfitting test: 27 s on one thread, 112 s
on two, measured beside two 1-thread trainings).
"""

import torch
from jaxtyping import install_import_hook

torch.set_num_threads(1)
install_import_hook("th1nker", "beartype.beartype")
