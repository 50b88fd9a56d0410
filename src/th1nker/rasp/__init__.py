"""th1nker's RASP: the language (language.py), its reference evaluator (evaluate.py), a library
of programs (library.py, arithmetic.py) and a compiler into PyTorch transformer weights
(compiler.py and its stages); docs/rasp.md.

    from th1nker.rasp import Select, SelectorWidth, Comparison, tokens, compile_program
    length = SelectorWidth(Select(tokens, tokens, Comparison.TRUE))
    compiled = compile_program(length, vocab="abc", max_seq_len=10)
    compiled.run([list("abca")])                                   # [[4, 4, 4, 4]]
    save_compiled(compiled, "runs/length"); load_compiled("runs/length")   (saving.py)
"""

from th1nker.rasp.compiler import CompiledProgram, compile_program
from th1nker.rasp.evaluate import RaspError, evaluate
from th1nker.rasp.language import (
    Aggregate,
    Comparison,
    Full,
    LinearSequenceMap,
    Map,
    Select,
    SelectorAnd,
    SelectorNot,
    SelectorOr,
    SelectorWidth,
    SequenceMap,
    categorical,
    indices,
    numerical,
    tokens,
)
from th1nker.rasp.saving import load_compiled, save_compiled
from th1nker.rasp.values import CompileError

__all__ = [
    "Aggregate", "Comparison", "CompileError", "CompiledProgram", "Full", "LinearSequenceMap",
    "Map", "RaspError", "Select", "SelectorAnd", "SelectorNot", "SelectorOr", "SelectorWidth",
    "SequenceMap", "categorical", "compile_program", "evaluate", "indices", "load_compiled",
    "numerical", "save_compiled", "tokens",
]  # fmt: skip
