"""Independent references for the tests: a plain evaluator, token parsers and factorizers.

Nothing here imports the code under test except the vocabulary's token ids.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from th1nker.tasks.vocab import TOKEN_IDS

NAMES = {token: name for name, token in TOKEN_IDS.items()}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}


def evaluate(expression: str) -> int | Fraction:
    """Value of a plain expression with + - * / % ^, standard precedence; `/` must be exact.
    Numbers may be signed and decimal (`3*-1.25`), read exactly from their text."""
    source = expression.replace("^", "**")

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(ast.get_source_segment(source, node))  # exact, never via float
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            assert isinstance(node.operand, ast.Constant), "a sign belongs to a number"
            return -value(node.operand)
        assert isinstance(node, ast.BinOp), ast.dump(node)
        left, right = value(node.left), value(node.right)
        if isinstance(node.op, ast.Div):
            quotient = left / right
            assert quotient.denominator == 1, f"inexact division in {expression}"
            return quotient
        return _BINARY[type(node.op)](left, right)

    result = value(ast.parse(source, mode="eval").body)
    return int(result) if result.denominator == 1 else result


def decimal_text(value: int | Fraction) -> str:
    """-1.25 for Fraction(-5, 4); integers as str(); the fraction must terminate in base 10."""
    value = Fraction(value)
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
        assert places < 100, f"{value} has no finite decimal expansion"
    if places == 0:
        return str(int(value))
    digits = str(abs(int(value * 10**places))).rjust(places + 1, "0")
    return ("-" if value < 0 else "") + digits[:-places] + "." + digits[-places:]


def read_number(tokens: list[int], base: int) -> int | Fraction:
    """A number written `[!] digits [. digits]`: integer digits least significant first, the
    fraction's most significant first."""
    negative = tokens[:1] == [TOKEN_IDS["!"]]
    body = tokens[1:] if negative else tokens
    point = body.index(TOKEN_IDS["."]) if TOKEN_IDS["."] in body else len(body)
    digits, fraction = body[:point], body[point + 1 :]
    assert digits and all(0 <= d < base for d in digits + fraction), tokens
    assert point == len(body) or (fraction and fraction[-1] != 0), tokens  # canonical
    value = sum(d * base**i for i, d in enumerate(digits))
    value += sum(Fraction(d, base ** (i + 1)) for i, d in enumerate(fraction))
    value = -value if negative else value
    return int(value) if Fraction(value).denominator == 1 else value


def split_numbers(tokens: list[int]) -> list[list[int] | str]:
    """Runs of number tokens (digits, `!`, `.`) and the other token names between them."""
    parts: list[list[int] | str] = []
    for token in tokens:
        is_number = token < 256 or token in (TOKEN_IDS["!"], TOKEN_IDS["."])
        if is_number and parts and isinstance(parts[-1], list):
            parts[-1].append(token)
        elif is_number:
            parts.append([token])
        else:
            parts.append(NAMES[token])
    return parts


def read_expression(input_ids: list[int]) -> tuple[str, int, int]:
    """(decimal expression, base, out_base) of an arithmetic input `@ b ... [output:base @ b'] =`."""
    assert input_ids[0] == TOKEN_IDS["@"] and input_ids[-1] == TOKEN_IDS["="]
    base = input_ids[1] or 256
    body, out_base = input_ids[2:-1], base
    if TOKEN_IDS["output:base"] in body:
        i = body.index(TOKEN_IDS["output:base"])
        assert body[i + 1] == TOKEN_IDS["@"] and len(body) == i + 3
        out_base, body = body[i + 2] or 256, body[:i]
    text = ""
    for part in split_numbers(body):
        text += decimal_text(read_number(part, base)) if isinstance(part, list) else part
    return text, base, out_base


def trial_division(n: int) -> list[int]:
    """Prime factors of n, ascending with repetition, by plain trial division."""
    factors, d = [], 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1
    if n > 1:
        factors.append(n)
    return factors


def canonical(factors: list[int]) -> str:
    """2*2*2*5 -> '2^3*5' (factors ascending)."""
    counts: dict[int, int] = {}
    for p in factors:
        counts[p] = counts.get(p, 0) + 1
    return "*".join(f"{p}^{e}" if e > 1 else str(p) for p, e in sorted(counts.items()))


_NUMBER = r"\d+(?:\.\d+)?"
_LEFT = (
    rf"((?:(?:^|(?<=[-+*/%^]))-)?{_NUMBER})"  # a '-' at the start or after an operator is a sign
)
_RIGHT = rf"(-?{_NUMBER})"
_APPLY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: _exact_quotient(a, b),
    "%": lambda a, b: a % b,
    "^": lambda a, b: a**b,
}


def _exact_quotient(a: Fraction, b: Fraction) -> Fraction:
    assert a % b == 0, f"inexact {a}/{b}"
    return a // b


def reduction_states(expression: str) -> list[str]:
    """The expression rewritten one operation at a time: the leftmost `^`, else the leftmost of
    `* / %`, else the leftmost of `+ -` (text in, decimal text states out; the last is the value)."""
    states, text = [], expression
    while not re.fullmatch(_RIGHT, text):
        for operators in (r"\^", r"*/%", r"+\-"):
            match = re.search(_LEFT + f"([{operators}])" + _RIGHT, text)
            if match:
                a, op, b = Fraction(match[1]), match[2], Fraction(match[3])
                result = decimal_text(_APPLY[op](a, b))
                text = text[: match.start()] + result + text[match.end() :]
                states.append(text)
                break
    return states or [text]


def long_multiplication(a: int, b: int, base: int) -> list[int]:
    """a*b by the digits of b in `base`, least significant first: the sum after each digit."""
    sums, total, place = [], 0, 1
    while True:
        b, digit = divmod(b, base)
        total += a * digit * place
        sums.append(total)
        place *= base
        if b == 0:
            return sums


def signed_long_multiplication(a: Fraction, b: Fraction, base: int) -> list[Fraction]:
    """Long multiplication of signed or decimal numbers: |a| by the digits of |b| written as
    the integer |b| * scale (scale: the least power of `base` making it whole), each running sum
    given the product's sign and divided by the scale."""
    scale = 1
    while (abs(b) * scale).denominator != 1:
        scale *= base
    sign = -1 if (a < 0) != (b < 0) else 1
    return [sign * s / scale for s in long_multiplication(abs(a), int(abs(b) * scale), base)]


def read_state(tokens: list[int], base: int) -> str:
    """A trace state's tokens (numbers and operators, then `eos`) as decimal text."""
    assert tokens[-1] == TOKEN_IDS["eos"] and TOKEN_IDS["eos"] not in tokens[:-1], tokens
    parts = split_numbers(tokens[:-1])
    return "".join(decimal_text(read_number(p, base)) if isinstance(p, list) else p for p in parts)
