"""Text for error messages."""

from __future__ import annotations


def shown(text: str, limit: int = 60) -> str:
    """`text` quoted for a message; a long one cut to its start and end, with its length."""
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return f"{text[:half]!r}...{text[-half:]!r} ({len(text)} characters)"
