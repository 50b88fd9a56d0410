"""Task schemes: which generators, with which parameters, in which bases (YAML, validated).

A scheme is loaded from YAML (plus `key=value` overrides), validated into the typed objects below
and refused with one clear message naming every bad field and its allowed values. The defaults of
`TaskScheme` are the project's default experiment (base-10 addition and subtraction of operands of
1..10 digits, out-of-distribution 11..20 digits); `configs/tasks/` holds more.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    model_validator,
)

from th1nker.config_files import ConfigError, format_validation_error, load_config, refuse_renamed
from th1nker.tasks.generators import (
    Problems,
    sample_arithmetic,
    sample_base_convert,
    sample_factorize,
    sample_factorize_log_uniform,
    sample_mqar,
    sample_recall,
    sample_sequences,
)
from th1nker.tasks.generators.factorize import TRIAL_MAX_NUMBER
from th1nker.tasks.numbers import MAX_BASE, MAX_NUMBER_DIGITS, MIN_BASE
from th1nker.tasks.primes import MAX_PRIME_BOUND, is_prime
from th1nker.tasks.vocab import OPERATORS

MAX_DIGITS = 2000
SPLITS = ("train", "val", "test", "ood")


class SchemeError(ConfigError):
    """A task scheme that cannot be used; the message names each bad field."""


def _as_range(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    return value


def _ordered(value: tuple[int, int]) -> tuple[int, int]:
    if value[0] > value[1]:
        raise ValueError(f"empty range {list(value)}: the first number must be <= the second")
    return value


Range = Annotated[tuple[int, int], BeforeValidator(_as_range), AfterValidator(_ordered)]
"""An inclusive integer range written `[low, high]` (or one integer for low == high)."""


def _check_base_value(base: int) -> int:
    if not MIN_BASE <= base <= MAX_BASE:
        raise ValueError(f"base {base} is outside the allowed bases {MIN_BASE}..{MAX_BASE}")
    return base


Base = Annotated[int, AfterValidator(_check_base_value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _GeneratorSpec(_Strict, abc.ABC):
    """Fields shared by every generator: its share of the mix and its out-of-distribution form."""

    weight: PositiveFloat = 1.0
    ood: dict[str, Any] = Field(
        default_factory=dict,
        description="fields that replace this generator's own for the `ood` split",
    )

    @model_validator(mode="after")
    def _check_ood(self):
        forbidden = {"type", "ood", "weight"} & set(self.ood)
        if forbidden:
            raise ValueError(f"ood may not change {sorted(forbidden)}")
        try:
            self.for_split("ood")
        except ValidationError as error:
            raise ValueError(
                "ood overrides: " + format_validation_error(error, type(self), separator="; ")
            ) from None
        return self

    def for_split(self, split: str) -> _GeneratorSpec:
        """This generator as used for `split` (its `ood` fields applied for the ood split)."""
        if split != "ood" or not self.ood:
            return self
        return type(self).model_validate({**self.model_dump(exclude={"ood"}), **self.ood})

    @abc.abstractmethod
    def draw(self, rng: np.random.Generator, n: int) -> Problems:
        """`n` fresh problems."""


def _check_operations(operations: str) -> str:
    unknown = sorted(set(operations) - set(OPERATORS))
    if not operations or unknown or len(set(operations)) != len(operations):
        raise ValueError(
            f"operations {operations!r} must be distinct characters from {OPERATORS!r}"
            + (f" (unknown: {''.join(unknown)!r})" if unknown else "")
        )
    return operations


class ArithmeticSpec(_GeneratorSpec):
    """Expressions of `operands` operands joined by `operations`, standard precedence."""

    type: Literal["arithmetic"] = "arithmetic"
    operands: Range = (2, 2)
    operations: Annotated[str, AfterValidator(_check_operations)] = "+-*"
    digits: Range = (1, 10)
    max_number: int | None = Field(default=None, ge=1, lt=10**MAX_DIGITS)
    max_exponent: int = Field(default=3, ge=0, le=16)
    negative: float = Field(0.0, ge=0, le=1, description="share of operands drawn negative")
    decimals: float = Field(
        0.0, ge=0, le=1, description="share of operands drawn as terminating decimals"
    )
    decimal_places: Range = Field((1, 2), description="digits after the point of a decimal")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return refuse_renamed(data, {"steps": "operands"})

    @model_validator(mode="after")
    def _check_ranges(self):
        _check_within("operands", self.operands, 1, 64)
        _check_within("digits", self.digits, 1, MAX_DIGITS)
        _check_within("decimal_places", self.decimal_places, 1, 20)
        if self.decimals and set(self.operations) & set("/%"):
            raise ValueError(
                f"decimals {self.decimals} goes with operations from '+-*^' only (got "
                f"{self.operations!r}: '/' and '%' are integer division)"
            )
        if self.operations == "^" and self.operands[1] > 2:
            raise ValueError("operations '^' alone allows at most 2 operands (no a^b^c)")
        if (longest := self.result_digits_bound()) > MAX_NUMBER_DIGITS:
            raise ValueError(
                f"results could reach {longest} decimal digits (operands {list(self.operands)}, "
                f"digits {list(self.digits)}, operations {self.operations!r}, max_exponent "
                f"{self.max_exponent}); numbers have at most {MAX_NUMBER_DIGITS} digits"
            )
        return self

    def result_digits_bound(self) -> int:
        """Most decimal digits a result can have (products add digits, powers multiply them)."""
        digits, operands = self.digits[1], self.operands[1]
        if self.max_number is not None:
            digits = min(digits, len(str(self.max_number)))
        power = max(1, self.max_exponent) if "^" in self.operations else 1
        if "*" in self.operations:
            return operands * digits * power
        return digits * power + operands  # each + or - adds at most one digit

    def draw(self, rng, n):
        return sample_arithmetic(
            rng,
            n,
            self.operands,
            self.operations,
            self.digits,
            self.max_number,
            self.max_exponent,
            self.negative,
            self.decimals,
            self.decimal_places,
        )


class FactorizeSpec(_GeneratorSpec):
    """Products of `factors` primes up to `max_number`, drawn by `sampling`: `prime_digits`
    (each prime's digit count uniform in `digits`) or `log_uniform` (the smallest prime factor
    and each further one log-uniform; docs/task-language.md#factorization)."""

    type: Literal["factorize"] = "factorize"
    factors: Range = (2, 5)
    max_number: int = Field(default=10**9, ge=2, lt=MAX_PRIME_BOUND)
    digits: Range | None = None
    sampling: Literal["prime_digits", "log_uniform"] = "prime_digits"
    trace: Literal["division", "trial"] = Field(
        default="division",
        description="division: divide out the smallest prime factor per state; trial: one "
        "state per trial division (p*q or p%r) up to sqrt of the cofactor "
        "(docs/task-language.md#traces)",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return refuse_renamed(data, {"steps": "factors"})

    @model_validator(mode="after")
    def _check_ranges(self):
        _check_within("factors", self.factors, 1, 64)
        top = _largest_prime_digits(self.max_number)
        if top == 0:
            raise ValueError(f"max_number {self.max_number}: no prime up to it")
        _check_within("digits", self.prime_digits, 1, top)
        if self.sampling == "log_uniform":
            if self.digits is not None:
                raise ValueError("digits goes with sampling 'prime_digits' only")
            if self.max_number >= 2**62:
                raise ValueError("sampling 'log_uniform' needs max_number < 2**62")
        if self.trace == "trial" and self.max_number > TRIAL_MAX_NUMBER:
            raise ValueError(
                f"trace 'trial' needs max_number <= {TRIAL_MAX_NUMBER} (2^24: one state per "
                f"prime up to the square root), got {self.max_number}"
            )
        return self

    @property
    def prime_digits(self) -> tuple[int, int]:
        """Digit counts of the primes: `digits`, or 1 up to the longest prime <= max_number."""
        return self.digits or (1, _largest_prime_digits(self.max_number))

    def draw(self, rng, n):
        trial = self.trace == "trial"
        if self.sampling == "log_uniform":
            return sample_factorize_log_uniform(rng, n, self.factors, self.max_number, trial)
        return sample_factorize(rng, n, self.factors, self.prime_digits, self.max_number, trial)


class BaseConvertSpec(_GeneratorSpec):
    """A number of `digits` decimal digits to convert to another base."""

    type: Literal["base_convert"] = "base_convert"
    digits: Range = (1, 10)
    max_number: int | None = Field(default=None, ge=1, lt=10**MAX_DIGITS)
    negative: bool = False
    to_bases: list[Base] | None = Field(
        default=None, description="target bases (default: the scheme's input bases)"
    )
    trace: Literal["horner", "hub"] = Field(
        default="horner",
        description="horner: Horner's rule in the target base; hub: the same between hub bases "
        "(16 for powers of two), states a few times shorter (docs/task-language.md#traces)",
    )

    @model_validator(mode="after")
    def _check_ranges(self):
        _check_within("digits", self.digits, 1, MAX_DIGITS)
        return self

    def draw(self, rng, n):
        return sample_base_convert(rng, n, self.digits, self.max_number, self.negative, self.trace)


class CopySpec(_GeneratorSpec):
    """Copy a sequence of `length` random `bits`-bit symbols."""

    type: Literal["copy"] = "copy"
    length: Range = (1, 10)
    bits: int = Field(default=8, ge=1, le=8)

    @model_validator(mode="after")
    def _check_ranges(self):
        _check_within("length", self.length, 1, 100_000)
        return self

    def draw(self, rng, n):
        return sample_sequences(rng, n, self.length, self.bits, reverse=False)


class ReverseSpec(CopySpec):
    """Reverse a sequence of `length` random `bits`-bit symbols."""

    type: Literal["reverse"] = "reverse"  # type: ignore[assignment]

    def draw(self, rng, n):
        return sample_sequences(rng, n, self.length, self.bits, reverse=True)


class RecallSpec(_GeneratorSpec):
    """Associative recall over `items` items of `item_len` random `bits`-bit symbols."""

    type: Literal["recall"] = "recall"
    items: Range = (2, 6)
    item_len: int = Field(default=3, ge=1, le=64)
    bits: int = Field(default=8, ge=1, le=8)

    @model_validator(mode="after")
    def _check_ranges(self):
        _check_within("items", self.items, 2, 1000)
        return self

    def draw(self, rng, n):
        return sample_recall(rng, n, self.items, self.item_len, self.bits)


class MQARSpec(_GeneratorSpec):
    """Multi-query associative recall: `pairs` key/value pairs, `queries` keys asked back."""

    type: Literal["mqar"] = "mqar"
    pairs: Range = (2, 16)
    queries: int = Field(default=4, ge=1, description="keys asked (at most the row's pairs)")
    bits: int = Field(default=8, ge=2, le=8, description="keys and values: 2^(bits-1) each")

    @model_validator(mode="after")
    def _check_ranges(self):
        _check_within("pairs", self.pairs, 1, 2 ** (self.bits - 1))
        return self

    def draw(self, rng, n):
        return sample_mqar(rng, n, self.pairs, self.queries, self.bits)


@cache
def _largest_prime_digits(max_number: int) -> int:
    """Decimal digits of the largest prime <= max_number (0 if there is none).

    Prime gaps below MAX_PRIME_BOUND are far below 10,000, so a short scan settles it.
    """
    digits = len(str(max_number))
    first = 10 ** (digits - 1)
    if any(is_prime(k) for k in range(first, min(max_number, first + 10_000) + 1)):
        return digits
    return digits - 1 if max_number >= 2 else 0


def _check_within(field: str, value: tuple[int, int], low: int, high: int) -> None:
    if value[0] < low or value[1] > high:
        raise ValueError(f"{field} {list(value)} must lie within [{low}, {high}]")


GENERATOR_SPECS: dict[str, type[_GeneratorSpec]] = {
    "arithmetic": ArithmeticSpec,
    "factorize": FactorizeSpec,
    "base_convert": BaseConvertSpec,
    "copy": CopySpec,
    "reverse": ReverseSpec,
    "recall": RecallSpec,
    "mqar": MQARSpec,
}
TASKS: tuple[str, ...] = tuple(GENERATOR_SPECS)

GeneratorSpec = Annotated[
    ArithmeticSpec
    | FactorizeSpec
    | BaseConvertSpec
    | CopySpec
    | ReverseSpec
    | RecallSpec
    | MQARSpec,
    Field(discriminator="type"),
]


class BaseChoice(_Strict):
    """Bases to draw from and how likely each is.

    `distribution`: omitted = uniform; `[first, last]` = weights growing geometrically from the
    first base to the last (`[1, 10]`: the first is 10x less likely than the last); or one
    positive weight per base.
    """

    values: list[Base] = Field(default_factory=lambda: [10], min_length=1)
    distribution: list[PositiveFloat] | None = None

    @model_validator(mode="after")
    def _check_distribution(self):
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"values {self.values} repeat a base")
        if self.distribution is not None and len(self.distribution) not in (2, len(self.values)):
            raise ValueError(
                f"distribution has {len(self.distribution)} entries; allowed: 2 ([first, last], "
                f"geometric in between) or one per base ({len(self.values)})"
            )
        return self


def _input_keyword(value: Any) -> Any:
    return "input" if value == ["input"] else value


class Splits(_Strict):
    """Fractions of the problem space (by hash of the problem) held out for val and test."""

    val: float = Field(default=0.02, gt=0, lt=0.5)
    test: float = Field(default=0.02, gt=0, lt=0.5)


STAGE_FIELDS = ("digits", "operands", "factors", "length", "items")


class Stage(_Strict):
    """One stage of a curriculum: ranges that replace the generators' own (in every generator
    that has the field; each must lie inside that generator's range). Omitted: unchanged."""

    digits: Range | None = None
    operands: Range | None = None
    factors: Range | None = None
    length: Range | None = None
    items: Range | None = None

    def fields(self) -> dict[str, tuple[int, int]]:
        return {name: value for name in STAGE_FIELDS if (value := getattr(self, name)) is not None}


class Curriculum(_Strict):
    """Stages of growing difficulty: training starts on stage 0 and moves to the next when
    exact match on the current stage's val problems reaches `promote_at` (checked at every
    evaluation); a `review` share of every batch (in expectation) is drawn from the earlier
    stages, evenly. The last stage trains until the end. docs/task-language.md#curricula."""

    stages: list[Stage] = Field(min_length=2)
    promote_at: float = Field(0.95, gt=0, le=1, description="val exact match to move on")
    review: float = Field(0.2, ge=0, lt=1, description="share of earlier stages per batch")


def _default_generators() -> list[_GeneratorSpec]:
    return [ArithmeticSpec(operations="+-", digits=(1, 10), ood={"digits": [11, 20]})]


class TaskScheme(_Strict):
    """A mix of generators, the bases they are written in and the length limits."""

    name: str = "add_sub_10"
    generators: list[GeneratorSpec] = Field(default_factory=_default_generators, min_length=1)
    bases: BaseChoice = Field(default_factory=BaseChoice)
    output_base: Annotated[Literal["input"] | BaseChoice, BeforeValidator(_input_keyword)] = Field(
        default="input", description="'input' (same base as the input) or bases to draw from"
    )
    max_length: int = Field(default=64, ge=4, le=1_000_000)
    overflow_strategy: Literal["increase_base", "error"] = "increase_base"
    splits: Splits = Field(default_factory=Splits)
    curriculum: Curriculum | None = Field(
        None, description="stages of growing difficulty for training (null: the whole task)"
    )

    @model_validator(mode="after")
    def _check_curriculum(self):
        if self.curriculum is None:
            return self
        for k, stage in enumerate(self.curriculum.stages):
            where = f"curriculum.stages.{k}"
            if not stage.fields():
                raise ValueError(
                    f"{where}: a stage changes at least one of {', '.join(STAGE_FIELDS)}"
                )
            for name, value in stage.fields().items():
                owners = [spec for spec in self.generators if name in type(spec).model_fields]
                if not owners:
                    raise ValueError(f"{where}.{name}: no generator of this scheme has {name}")
                for spec in owners:
                    own = getattr(spec, name)
                    if own is not None and not own[0] <= value[0] <= value[1] <= own[1]:
                        raise ValueError(
                            f"{where}.{name} {list(value)} must lie within the {spec.type} "
                            f"generator's {name} {list(own)}"
                        )
            try:
                self.at_stage(k)
            except ValidationError as error:
                message = format_validation_error(error, TaskScheme, separator="; ")
                raise ValueError(f"{where}: {message}") from None
        return self

    def at_stage(self, k: int) -> TaskScheme:
        """The scheme of curriculum stage `k` alone (its ranges in place of the generators')."""
        fields = self.curriculum.stages[k].fields()
        return self._with_generators(
            [
                {
                    **spec.model_dump(),
                    **{n: list(v) for n, v in fields.items() if n in type(spec).model_fields},
                }
                for spec in self.generators
            ]
        )

    def stage_mix(self, k: int) -> TaskScheme:
        """What training draws at stage `k`: the generators of stage k, and with `review`
        share those of stages 0..k-1 (evenly), each keeping its weight within its stage."""
        review = self.curriculum.review if k else 0.0
        generators = [
            {**spec.model_dump(), "weight": spec.weight * (1 - review)}
            for spec in self.at_stage(k).generators
        ]
        for j in range(k if review else 0):
            generators += [
                {**spec.model_dump(), "weight": spec.weight * review / k}
                for spec in self.at_stage(j).generators
            ]
        return self._with_generators(generators)

    def _with_generators(self, generators: list[dict]) -> TaskScheme:
        """This scheme with `generators` (validated) and no curriculum."""
        data = {**self.model_dump(), "generators": generators, "curriculum": None}
        return TaskScheme.model_validate(data)

    @model_validator(mode="after")
    def _check_decimal_bases(self):
        if not any(getattr(spec, "decimals", 0) for spec in self.generators):
            return self
        bases = set(self.bases.values)
        if self.output_base != "input":
            bases |= set(self.output_base.values)
        if odd := sorted(b for b in bases if b % 10):
            raise ValueError(
                f"decimal operands need bases divisible by 10 (where 1/10 has a finite "
                f"expansion); bases {odd} are not"
            )
        return self

    @model_validator(mode="after")
    def _check_lengths(self):
        for i, spec in enumerate(self.generators):
            for split in ("train", "ood"):
                need = _raw_input_length(spec.for_split(split))
                if need is not None and need > self.max_length:
                    raise ValueError(
                        f"generators[{i}] ({spec.type}, {split}) needs inputs of {need} tokens, "
                        f"more than max_length {self.max_length}"
                    )
        return self

    def to_yaml(self) -> str:
        """The fully resolved scheme as YAML (saved with every run)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _raw_input_length(spec: _GeneratorSpec) -> int | None:
    """Longest input of a memory task (fixed by its parameters); None for numeric tasks."""
    if isinstance(spec, CopySpec):
        return spec.length[1] + 2
    if isinstance(spec, RecallSpec):
        return spec.items[1] * (spec.item_len + 1) + spec.item_len + 1
    if isinstance(spec, MQARSpec):
        return 2 * spec.pairs[1] + min(spec.queries, spec.pairs[1]) + 2
    return None


def load_scheme(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TaskScheme:
    """A validated scheme from a YAML file (None: the default scheme) and `key=value` overrides.

    Overrides use dotted keys with list indices and YAML values, e.g. `max_length=128`,
    `generators.0.digits=[1,5]`, `bases.values=[2,10,16]`. Raises SchemeError.
    """
    return load_config(TaskScheme, path, overrides, "scheme", GENERATOR_SPECS, SchemeError)
