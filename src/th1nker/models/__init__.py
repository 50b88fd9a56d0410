"""Models: every family behind one contract (family.py); importing this registers the built-in
families (the Th1nker, the TRM, memory networks)."""

from th1nker.models import memory_network, th1nker, trm  # noqa: F401  (registers the families)
