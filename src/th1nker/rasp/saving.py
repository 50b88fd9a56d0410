"""Saving and loading a compiled program: its weights (safetensors) and its program (JSON).

    save_compiled(compiled, "runs/sort")      -> runs/sort/{program.json, model.safetensors}
    compiled = load_compiled("runs/sort")     the same program, layout, blocks and weights

A RASP program holds Python functions (a Map's or SequenceMap's f, a custom predicate), which do
not serialise. The compiled program needs each only on the finite value sets that stage 2
inferred, so `program_to_json` writes each function as its table over those values, and
`program_from_json` rebuilds the program (same nodes, names and encodings) with table lookups in
their place. Loading recompiles that program, which gives the same layout and blocks, and then
loads the saved weights (compiled or fine-tuned) into it. A number that a table lacks is looked
up within 1e-9 relative (a mean computed in another order); a value outside the tables raises
RaspError naming the node: the program is defined on the inputs it was compiled for.

Values are JSON: None, bool, int, float and str as themselves, a tuple as {"tuple": [...]}.
The directory is written whole or not at all, with checksums checked on load.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load_file, save_file

from th1nker.rasp.blocks import same_value
from th1nker.rasp.compiler import CompiledProgram, compile_program
from th1nker.rasp.evaluate import RaspError
from th1nker.rasp.language import (
    Aggregate,
    Comparison,
    Encoding,
    Expr,
    Full,
    Indices,
    LinearSequenceMap,
    Map,
    Select,
    SelectorAnd,
    SelectorNot,
    SelectorOr,
    SelectorWidth,
    SequenceMap,
    SOp,
    Tokens,
    Value,
    walk,
)
from th1nker.rasp.values import ValueSet
from th1nker.train.storage import DamagedFile, replace_directory, verify_checksums

PROGRAM, WEIGHTS = "program.json", "model.safetensors"
FORMAT = 1


def save_compiled(compiled: CompiledProgram, directory: str | Path) -> Path:
    """Write `directory/program.json` and `directory/model.safetensors` (module docstring).
    Raises StorageError when the disk refuses, leaving an older save as it was."""
    directory = Path(directory)
    document = {
        "format": FORMAT,
        "vocab": [_encode(token) for token in compiled.vocab],
        "max_seq_len": compiled.max_seq_len,
        "causal": compiled.causal,
        "coldness": compiled.coldness,
        "restoring": compiled.restoring,
        "program": program_to_json(compiled.program, compiled.values),
    }
    text = json.dumps(document, indent=1)

    def fill(temporary: Path) -> None:
        (temporary / PROGRAM).write_text(text + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in compiled.model.state_dict().items()}
        save_file(state, temporary / WEIGHTS)

    return replace_directory(directory, fill, f"save the compiled program to {directory}")


def load_compiled(directory: str | Path) -> CompiledProgram:
    """The compiled program saved in `directory`, with its saved weights (on the CPU)."""
    directory = Path(directory)
    if not (directory / PROGRAM).is_file():
        raise FileNotFoundError(f"{directory} holds no saved compiled program ({PROGRAM})")
    verify_checksums(directory, (PROGRAM, WEIGHTS))
    try:
        document = json.loads((directory / PROGRAM).read_text())
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, this th1nker reads {FORMAT}")
        program = program_from_json(document["program"])
        vocab = [_decode(token) for token in document["vocab"]]
        settings = {key: document[key] for key in ("causal", "coldness", "restoring")}
        max_seq_len = document["max_seq_len"]
    except (KeyError, TypeError, ValueError) as error:
        raise DamagedFile(f"{directory / PROGRAM} is not a saved program: {error}") from None
    compiled = compile_program(program, vocab, max_seq_len, **settings)
    compiled.model.load_state_dict(load_file(directory / WEIGHTS))
    return compiled


def program_to_json(program: SOp, values: dict[int, ValueSet]) -> list[dict]:
    """The program's nodes (inputs first; the last is the output) with every function as its
    table over the value sets `values` (CompiledProgram.values)."""
    nodes = walk(program)
    index = {node.id: i for i, node in enumerate(nodes)}

    def domain(sop: SOp, reader: Expr) -> tuple[Value, ...]:
        known = values[sop.id].values
        if known is None:
            raise ValueError(
                f"{reader.kind} {reader.name!r}: its input {sop.name!r} has no finite value "
                "set, so its function cannot be written as a table"
            )
        return known

    out = []
    for node in nodes:
        entry: dict = {"kind": node.kind, "name": node.name}
        entry["inputs"] = [index[child.id] for child in node.children]
        if isinstance(node, SOp):
            entry["encoding"] = node.encoding.value
        if isinstance(node, Full):
            entry["value"] = _encode(node.value)
        elif isinstance(node, Map):
            entry["table"] = [[_encode(x), _encode(node.f(x))] for x in domain(node.sop, node)]
        elif isinstance(node, LinearSequenceMap):
            entry["factors"] = [node.first_factor, node.second_factor]
        elif isinstance(node, SequenceMap):
            pairs = itertools.product(domain(node.first, node), domain(node.second, node))
            entry["table"] = [[_encode(x), _encode(y), _encode(node.f(x, y))] for x, y in pairs]
        elif isinstance(node, Select):
            if isinstance(node.predicate, Comparison):
                entry["predicate"] = node.predicate.name
            else:
                pairs = itertools.product(domain(node.keys, node), domain(node.queries, node))
                entry["selected"] = [
                    [_encode(k), _encode(q)] for k, q in pairs if node.predicate(k, q)
                ]
        elif isinstance(node, Aggregate):
            entry["default"] = _encode(node.default)
        out.append(entry)
    return out


def program_from_json(entries: list[dict]) -> SOp:
    """The program written by `program_to_json` (its functions are table lookups)."""
    built: list[Expr] = []
    for entry in entries:
        kind, name = entry["kind"], entry["name"]
        inputs = [built[i] for i in entry["inputs"]]
        encoding = Encoding(entry["encoding"]) if "encoding" in entry else None
        node = _build(kind, name, inputs, encoding, entry)
        built.append(node.named(name))
    if not built or not isinstance(built[-1], SOp):
        raise ValueError("the last node is not an SOp (a program's output)")
    return built[-1]


def _build(kind: str, name: str, inputs: list, encoding: Encoding | None, entry: dict) -> Expr:
    if kind in ("tokens", "indices"):
        node = Tokens() if kind == "tokens" else Indices()
        node.encoding = encoding
        return node
    if kind == "full":
        return Full(_decode(entry["value"]), encoding)
    if kind == "map":
        table = {_decode(x): _decode(y) for x, y in entry["table"]}
        return Map(_Table(name, table), inputs[0], encoding, simplify=False)
    if kind == "linear_sequence_map":
        return LinearSequenceMap(*inputs, *entry["factors"], encoding)
    if kind == "sequence_map":
        table = {(_decode(x), _decode(y)): _decode(z) for x, y, z in entry["table"]}
        return SequenceMap(_Table(name, table), *inputs, encoding)
    if kind == "select":
        if "predicate" in entry:
            return Select(*inputs, Comparison[entry["predicate"]])
        selected = {(_decode(k), _decode(q)) for k, q in entry["selected"]}
        return Select(*inputs, lambda key, query: (key, query) in selected)
    if kind == "aggregate":
        return Aggregate(*inputs, _decode(entry["default"]), encoding)
    if kind == "selector_width":
        return SelectorWidth(*inputs, encoding)
    combinators: dict[str, Callable[..., Expr]] = {
        "selector_and": SelectorAnd,
        "selector_or": SelectorOr,
        "selector_not": SelectorNot,
    }
    if kind in combinators:
        return combinators[kind](*inputs)
    raise ValueError(f"node {name!r}: unknown kind {kind!r}")


class _Table:
    """A function given by its table: f(x) or f(x, y); a number the table lacks is matched to a
    key within 1e-9 relative (module docstring)."""

    def __init__(self, name: str, table: dict):
        self.name, self.table = name, table
        self.numbers = sorted(k for k in table if _is_number(k))

    def __call__(self, *args: Value) -> Value:
        key = args[0] if len(args) == 1 else args
        if key in self.table:
            return self.table[key]
        if _is_number(key) and self.numbers:
            i = bisect.bisect_left(self.numbers, key)
            for near in self.numbers[max(i - 1, 0) : i + 1]:
                if same_value(near, key):
                    return self.table[near]
        raise RaspError(
            f"{self.name!r}: {key!r} is outside the values this saved program was compiled for"
        )


def _is_number(value: Value) -> bool:
    return isinstance(value, (bool, int, float))


def _encode(value: Value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    raise ValueError(
        f"value {value!r} ({type(value).__name__}) cannot be saved: a saved program holds "
        "None, bool, int, float, str and tuples of them"
    )


def _decode(value):
    if isinstance(value, dict):
        return tuple(_decode(v) for v in value["tuple"])
    return value
