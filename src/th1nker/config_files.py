"""YAML configs -> validated pydantic objects, with `key=value` overrides and one-line errors.

Used by task schemes (`tasks/scheme.py`) and experiments (`train/experiment.py`): a config is read
with OmegaConf, overrides are merged (dotted keys, list indices, YAML values), and the result is
validated by pydantic. Every problem is reported as `path.to.field: what is wrong; allowed ...`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

from th1nker.messages import shown

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot be used; the message names each bad field."""


def read_text_file(path: str | Path, what: str) -> str:
    """The UTF-8 text of `path`; a ConfigError naming it (and `what` it is) when it cannot be
    read: missing, a directory, not permitted, or not text."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory, not a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot read it: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {error.start} is {data[error.start]:#04x})"
        ) from None


def _yaml_problem(error: Exception) -> str:
    """A YAML or OmegaConf error in one line (with its line and column when known)."""
    if not isinstance(error, yaml.YAMLError | OmegaConfBaseException):  # int() refused the text
        return f"a number with more than {sys.get_int_max_str_digits()} digits"
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return str(error).strip().splitlines()[0]


def _override_value(override: str, key: str, value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except ValueError as error:
        raise ConfigError(f"override {shown(override)}: {_yaml_problem(error)}") from None
    except yaml.YAMLError as error:
        raise ConfigError(
            f"override {shown(override)}: the value is not YAML ({_yaml_problem(error)}); "
            f"quote it, e.g. {key}='{value}'"
        ) from None


def read_yaml(
    path: str | Path | None, default: dict, overrides: Sequence[str], what: str
) -> tuple[dict, str]:
    """The mapping in `path` (None: `default`) with `overrides` merged; and its name for errors."""
    source = str(path) if path is not None else f"the default {what}"
    try:
        if path is None:
            config = OmegaConf.create(default)
        else:
            config = OmegaConf.create(yaml.safe_load(read_text_file(path, f"{what} file")) or {})
    except (OmegaConfBaseException, yaml.YAMLError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{source}: not a readable YAML {what}: {_yaml_problem(error)}") from None
    data = OmegaConf.to_container(config, resolve=True)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: must be a mapping of {what} fields, got {type(data).__name__}"
        )
    return merge_overrides(data, overrides), source


def override_key(override: str) -> str:
    """The dotted key of a `key=value` override; ConfigError if it has none."""
    key, sep, _ = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {shown(override)} must look like key=value")
    return key.strip()


def merge_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """`data` with `key=value` overrides merged, in order (dotted keys, list indices, YAML
    values)."""
    config = OmegaConf.create(data)
    for override in overrides:
        key = override_key(override)
        value = override.partition("=")[2]
        try:
            OmegaConf.update(config, key, _override_value(override, key, value), merge=True)
        except OmegaConfBaseException as error:
            raise ConfigError(f"override {shown(override)}: {_yaml_problem(error)}") from None
    return OmegaConf.to_container(config, resolve=True)


def validate(model: type[Model], data: dict, source: str, tags: dict[str, type] | None = None):
    """`model` validated from `data`; a ConfigError listing every bad field otherwise.

    `tags` maps the tags of tagged unions (e.g. generator types) to their models, so that errors
    inside them can name the allowed fields.
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = format_validation_error(error, model, tags)
        separator = "\n" if "\n" in problems else " "  # one problem: one line
        raise ConfigError(f"{source}:{separator}{problems}") from None


def format_validation_error(
    error: ValidationError,
    root: type[BaseModel],
    tags: dict[str, type] | None = None,
    separator: str = "\n",
) -> str:
    """One line per problem: the field's path, then what is wrong and what is allowed."""
    tags = tags or {}
    lines = []
    for problem in error.errors():
        path = ".".join(str(part) for part in problem["loc"] if part not in tags)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            allowed = _allowed_fields(root, problem["loc"][:-1], tags)
            message = f"unknown field; allowed: {', '.join(allowed)}" if allowed else message
        lines.append(f"{path}: {message}" if path else message)
    return separator.join(lines)


def _allowed_fields(root: type[BaseModel], loc: Sequence[Any], tags: dict[str, type]) -> list[str]:
    """Field names of the model at `loc` inside `root` (empty when it cannot be told)."""
    model: type[BaseModel] = root
    for part in loc:
        if isinstance(part, int):
            continue
        if part in tags:
            model = tags[part]
            continue
        if part not in model.model_fields:
            return []
        nested = _models_in(model.model_fields[part].annotation)
        if not nested:
            return []
        if len(nested) == 1:  # several: a tagged union, whose tag comes next in `loc`
            model = nested[0]
    return list(model.model_fields)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a type annotation (through list, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def load_config(
    model: type[Model],
    path: str | Path | None,
    overrides: Sequence[str],
    what: str,
    tags: dict[str, type] | None = None,
    error: Callable[[str], Exception] = ConfigError,
) -> Model:
    """Read, merge overrides, validate; every failure raised as `error(message)`."""
    try:
        data, source = read_yaml(path, model().model_dump(mode="json"), overrides, what)
        return validate(model, data, source, tags)
    except ConfigError as failure:
        raise error(str(failure)) from None


def registered(registry: dict[str, type[BaseModel]], key: str, default: str | None, what: str):
    """A before-validator that builds the registered model named by `value[key]` (`default` when
    absent) from a mapping; instances pass through. Errors inside it carry the registry name in
    their location, as pydantic's tagged unions do, so `validate(..., tags=registry)` names the
    allowed fields of the right model. The registry is read at validation time, so types
    registered after this call (in their own modules) are found."""

    def build(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        name = value.get(key, default)
        if name not in registry:
            raise ValueError(f"{key} {name!r} is not a known {what}; known: {', '.join(registry)}")
        try:
            return registry[name].model_validate(value)
        except ValidationError as error:
            details = [
                {
                    "type": e["type"],
                    "loc": (name, *e["loc"]),
                    "input": e["input"],
                    "ctx": e.get("ctx", {}),
                }  # fmt: skip
                for e in error.errors()
            ]
            raise ValidationError.from_exception_data(error.title, details) from None

    return build


def refuse_renamed(data: Any, renamed: dict[str, str]) -> Any:
    """For a `model_validator(mode="before")`: a ValueError naming the new name of any field in
    `data` that was renamed (`renamed` maps old to new)."""
    if isinstance(data, dict):
        for old, new in renamed.items():
            if old in data:
                raise ValueError(f"{old} was renamed {new}: write {new}: {data[old]!r}")
    return data
