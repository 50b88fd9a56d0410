"""Shape and type checks: every th1nker module is imported through jaxtyping's hook with beartype."""

from jaxtyping import install_import_hook

install_import_hook("th1nker", "beartype.beartype")
