"""Models: every family behind one contract (family.py); importing this registers the built-in
families (the Th1nker, the TRM, memory networks, the decoder baseline, compiled RASP programs)."""

# importing a family's module registers it
from th1nker.models import compiled, decoder_only, memory_network, th1nker, trm  # noqa: F401
