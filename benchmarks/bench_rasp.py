"""The RASP compiler against its reference evaluator, and side by side with tracr.

    python benchmarks/bench_rasp.py --random 3000 --record
        sampled programs (th1nker.rasp.sampler): how many compile, how many are refused (and
        why), whether every compiled one agrees with the evaluator on every input tried
    python benchmarks/bench_rasp.py --library --lengths 5 10 20 [--tracr] --record
        each library program at each max_seq_len: agreement with the reference evaluator on
        random inputs of every length up to it, layers, residual width, parameters and compile
        time, for th1nker's compiler and (with --tracr) for tracr's compiler on tracr's own
        `lib` program of the same name. tracr is JAX: install it only where this runs
        (`pip install tracr-pypi`), never into th1nker's environment.

Agreement: the fraction of inputs on which the output equals the evaluator's at every position
(categorical equal, numerical within 1e-4); "on values": at every position where the
evaluator's value is not None (so a None decoded as some value is not counted). An input on
which the evaluator has no value (a categorical mean of different values) is skipped for both.
"""

from __future__ import annotations

import argparse
import collections
import random
import time

from common import record

from th1nker.rasp.compiler import compile_program
from th1nker.rasp.evaluate import RaspError, evaluate
from th1nker.rasp.library import PROGRAMS
from th1nker.rasp.sampler import SAMPLE_VOCAB, sample_program
from th1nker.rasp.values import CompileError

TOLERANCE = 1e-4


def agrees(got: list, want: list, values_only: bool = False) -> bool:
    """Equal at every position (`values_only`: at every position where `want` is not None)."""
    for g, w in zip(got, want, strict=True):
        if w is None and values_only:
            continue
        if g is None or w is None:
            if (g is None) != (w is None):
                return False
        elif isinstance(w, (int, float)) and not isinstance(w, bool) or isinstance(g, float):
            if abs(float(g) - float(w)) > TOLERANCE:
                return False
        elif g != w:
            return False
    return True


def random_programs(n: int, max_seq_len: int, per_length: int) -> list[str]:
    counts: collections.Counter = collections.Counter()
    reasons: collections.Counter = collections.Counter()
    start = time.perf_counter()
    for seed in range(n):
        rng = random.Random(seed)
        program = sample_program(rng, operations=rng.randint(2, 8))
        causal = rng.random() < 0.3
        try:
            compiled = compile_program(program, SAMPLE_VOCAB, max_seq_len, causal=causal)
        except CompileError as error:
            counts["refused"] += 1
            reasons[str(error).split(": ", 1)[-1].split(";")[0][:60]] += 1
            continue
        inputs = [[rng.choice(SAMPLE_VOCAB) for _ in range(length)]
                  for length in range(1, max_seq_len + 1) for _ in range(per_length)]  # fmt: skip
        outputs = compiled.run(inputs)
        checked = wrong = 0
        for x, got in zip(inputs, outputs, strict=True):
            try:
                want = evaluate(program, x, causal=causal)
            except RaspError:
                continue
            checked += 1
            wrong += not agrees(got, want)
        counts["compiled"] += 1
        counts["inputs compared"] += checked
        counts["disagreeing inputs"] += wrong
        counts["programs with a disagreement"] += wrong > 0
    minutes = (time.perf_counter() - start) / 60
    lines = [
        "| sampled | compiled | refused | inputs compared | disagreeing inputs | programs with a "
        "disagreement | minutes |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {n} | {counts['compiled']} | {counts['refused']} | {counts['inputs compared']:,} | "
        f"{counts['disagreeing inputs']} | {counts['programs with a disagreement']} | "
        f"{minutes:.1f} |",
        "",
        "| refusal | programs |",
        "|---|---:|",
        *[f"| {reason} | {count} |" for reason, count in reasons.most_common(8)],
    ]
    return lines


def _ours(name: str, n: int, inputs: list) -> dict:
    entry = PROGRAMS[name]
    start = time.perf_counter()
    compiled = compile_program(entry.make(n), entry.vocab, n, causal=entry.causal)
    seconds = time.perf_counter() - start
    outputs = compiled.run(inputs)
    return {
        "outputs": outputs,
        "layers": len(compiled.layers),
        "width": len(compiled.layout),
        "parameters": sum(p.numel() for p in compiled.model.parameters()),
        "seconds": seconds,
    }


def _tracr_program(name: str, n: int):
    from tracr.compiler import lib
    from tracr.rasp import rasp

    tokens = rasp.tokens
    return {
        "length": lambda: lib.make_length(),
        "reverse": lambda: lib.make_reverse(tokens),
        "hist": lambda: lib.make_hist(),
        "sort_unique": lambda: lib.make_sort_unique(tokens, tokens),
        "sort": lambda: lib.make_sort(tokens, tokens, max_seq_len=n, min_key=1),
        "sort_freq": lambda: lib.make_sort_freq(n),
        "frac_prevs": lambda: lib.make_frac_prevs(tokens == "a"),
        "pair_balance": lambda: lib.make_pair_balance(tokens, "(", ")"),
        "shuffle_dyck2": lambda: lib.make_shuffle_dyck(["()", "{}"]),
        "shuffle_dyck3": lambda: lib.make_shuffle_dyck(["()", "{}", "[]"]),
        "shift_by_2": lambda: lib.shift_by(2, tokens),
        "detect_pattern": lambda: lib.detect_pattern(tokens, "abc"),
        "count_a": lambda: lib.make_count(tokens, "a"),
        "count_less_freq": lambda: lib.make_count_less_freq(2),
    }.get(name)


def _theirs(name: str, n: int, inputs: list) -> dict | None:
    from tracr.compiler import compiling

    make = _tracr_program(name, n)
    if make is None:
        return None
    entry = PROGRAMS[name]
    start = time.perf_counter()
    try:
        model = compiling.compile_rasp_to_model(
            make(), vocab=set(entry.vocab), max_seq_len=n, compiler_bos="BOS",
            causal=entry.causal,
        )  # fmt: skip
    except Exception as error:  # noqa: BLE001 (tracr's refusals and crashes alike)
        return {"error": f"{type(error).__name__}: {str(error)[:60]}"}
    seconds = time.perf_counter() - start
    outputs = []
    for x in inputs:
        try:
            outputs.append(list(model.apply(["BOS", *x]).decoded[1:]))
        except Exception as error:  # noqa: BLE001
            outputs.append(f"{type(error).__name__}")
    params = model.params
    return {
        "outputs": outputs,
        "layers": model.model_config.num_layers,
        "width": params["token_embed"]["embeddings"].shape[1],
        "parameters": sum(v.size for block in params.values() for v in block.values()),
        "seconds": seconds,
    }


def library(lengths: list[int], per_length: int, with_tracr: bool) -> list[str]:
    columns = "agreement | on values | layers | width | parameters | compile s"
    lines = [f"| program | max_seq_len | ours: {columns} |"
             + (f" tracr: {columns} |" if with_tracr else ""),
             "|---|---:|" + "---:|" * 6 * (2 if with_tracr else 1)]  # fmt: skip
    for name, entry in PROGRAMS.items():
        for n in lengths:
            rng = random.Random(f"{name}{n}")
            inputs = [[rng.choice(entry.vocab) for _ in range(length)]
                      for length in range(1, n + 1) for _ in range(per_length)]  # fmt: skip
            wants = []
            for x in inputs:
                try:
                    wants.append(evaluate(entry.make(n), x, causal=entry.causal))
                except RaspError:
                    wants.append(None)
            kept = [i for i, w in enumerate(wants) if w is not None]
            row = f"| {name} | {n} | " + _cells(_ours(name, n, inputs), wants, kept)
            if with_tracr:
                row += " " + _cells(_theirs(name, n, inputs), wants, kept)
            lines.append(row)
            print(row, flush=True)
    return lines


def _cells(result: dict | None, wants: list, kept: list[int]) -> str:
    if result is None:
        return "not in its lib | | | | | |"
    if "error" in result:
        return f"refused or crashed: {result['error']} | | | | | |"
    right, right_on_values = (
        sum(
            isinstance(result["outputs"][i], list)
            and agrees(result["outputs"][i], wants[i], values_only)
            for i in kept
        )
        for values_only in (False, True)
    )
    return (
        f"{right / len(kept):.4f} | {right_on_values / len(kept):.4f} | "
        f"{result['layers']} | {result['width']} | "
        f"{result['parameters']:,} | {result['seconds']:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, help="sample this many programs")
    parser.add_argument("--max-seq-len", type=int, default=6, help="for --random")
    parser.add_argument("--library", action="store_true")
    parser.add_argument("--lengths", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--per-length", type=int, default=20, help="random inputs per length")
    parser.add_argument("--tracr", action="store_true", help="also compile with tracr")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    if args.random:
        lines = random_programs(args.random, args.max_seq_len, args.per_length)
        print("\n".join(lines))
        if args.record:
            note = f"; max_seq_len {args.max_seq_len}, {args.per_length} inputs per length"
            record("RASP: sampled programs, compiled vs the reference evaluator", lines, note)
    if args.library:
        lines = library(args.lengths, args.per_length, args.tracr)
        if args.record:
            note = f"; {args.per_length} random inputs per length 1..max_seq_len"
            title = "RASP library: th1nker's compiler" + (" and tracr's" if args.tracr else "")
            record(title, lines, note)
    if not (args.random or args.library):
        parser.error("give --random N and/or --library")


if __name__ == "__main__":
    main()
