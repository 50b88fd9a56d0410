"""The token vocabulary of the task language.

Ids 0..255 are digits whose id equals their value, so one token holds one digit of a number in any
base 2..256 (and one 8-bit vector for the memory tasks). Every other token has an id >= 256, in the
order of `SPECIAL_TOKENS`. See docs/task-language.md for the grammar built on these tokens.
"""

from __future__ import annotations

N_DIGITS = 256

SPECIAL_TOKENS: tuple[str, ...] = (
    "@",  # base marker: followed by ONE digit token holding the base (0 stands for 256)
    ".",  # radix point: the fractional part follows, most significant digit first
    "!",  # the number that follows is negative
    "blank",  # an empty slot / white space; separates the items of associative recall
    "+",
    "-",
    "*",
    "/",
    "%",
    "=",
    "^",
    "output:base",  # the answer is asked in the base written after this trigger
    "task:factorise",
    "task:copy",
    "task:reverse",
    "task:recall",
    "probe",  # model query token (parallel answer slots)
    "start_decode",  # model query token (first step of autoregressive decoding)
    "pad",
    "eos",
)

TOKEN_IDS: dict[str, int] = {
    **{str(digit): digit for digit in range(N_DIGITS)},
    **{name: N_DIGITS + i for i, name in enumerate(SPECIAL_TOKENS)},
}
TOKEN_NAMES: dict[int, str] = {token: name for name, token in TOKEN_IDS.items()}
VOCAB_SIZE = len(TOKEN_IDS)

BASE = TOKEN_IDS["@"]
POINT = TOKEN_IDS["."]
NEG = TOKEN_IDS["!"]
BLANK = TOKEN_IDS["blank"]
EQUALS = TOKEN_IDS["="]
POW = TOKEN_IDS["^"]
MUL = TOKEN_IDS["*"]
MOD = TOKEN_IDS["%"]
OUTPUT_BASE = TOKEN_IDS["output:base"]
TASK_FACTORISE = TOKEN_IDS["task:factorise"]
TASK_COPY = TOKEN_IDS["task:copy"]
TASK_REVERSE = TOKEN_IDS["task:reverse"]
TASK_RECALL = TOKEN_IDS["task:recall"]
PROBE = TOKEN_IDS["probe"]
START_DECODE = TOKEN_IDS["start_decode"]
PAD = TOKEN_IDS["pad"]
EOS = TOKEN_IDS["eos"]

OPERATORS = "+-*/%^"
OPERATOR_IDS: dict[str, int] = {op: TOKEN_IDS[op] for op in OPERATORS}


def token_id(name: str) -> int:
    """The id of a token named `"+"`, `"eos"`, `"17"`...; a clear error for unknown names."""
    try:
        return TOKEN_IDS[name]
    except KeyError:
        allowed = ", ".join(repr(n) for n in SPECIAL_TOKENS)
        raise KeyError(f"unknown token {name!r}: digits '0'..'255' or one of {allowed}") from None


def token_name(token: int) -> str:
    """The name of a token id; a clear error for ids outside 0..VOCAB_SIZE-1."""
    try:
        return TOKEN_NAMES[int(token)]
    except KeyError:
        raise KeyError(f"unknown token id {token}: ids are 0..{VOCAB_SIZE - 1}") from None


def render_tokens(tokens: list[int]) -> str:
    """Token ids as their names separated by spaces (for logs and error messages)."""
    return " ".join(token_name(t) for t in tokens)
