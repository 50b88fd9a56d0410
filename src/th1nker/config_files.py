"""YAML configs -> validated pydantic objects, with `key=value` overrides and one-line errors.

Used by task schemes (`tasks/scheme.py`) and experiments (`train/experiment.py`): a config is read
with OmegaConf, overrides are merged (dotted keys, list indices, YAML values), and the result is
validated by pydantic. Every problem is reported as `path.to.field: what is wrong; allowed ...`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot be used; the message names each bad field."""


def read_yaml(
    path: str | Path | None, default: dict, overrides: Sequence[str], what: str
) -> tuple[dict, str]:
    """The mapping in `path` (None: `default`) with `overrides` merged; and its name for errors."""
    source = str(path) if path is not None else f"the default {what}"
    try:
        if path is None:
            config = OmegaConf.create(default)
        else:
            if not Path(path).is_file():
                raise ConfigError(f"{what} file {path} not found")
            config = OmegaConf.load(path)
        for override in overrides:
            key, sep, value = override.partition("=")
            if not sep or not key:
                raise ConfigError(f"override {override!r} must look like key=value")
            OmegaConf.update(config, key.strip(), yaml.safe_load(value), merge=True)
        data = OmegaConf.to_container(config, resolve=True)
    except (OmegaConfBaseException, yaml.YAMLError) as error:
        raise ConfigError(f"{source}: cannot read it: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a {what} is a mapping of fields, got {type(data).__name__}")
    return data, source


def validate(model: type[Model], data: dict, source: str, tags: dict[str, type] | None = None):
    """`model` validated from `data`; a ConfigError listing every bad field otherwise.

    `tags` maps the tags of tagged unions (e.g. generator types) to their models, so that errors
    inside them can name the allowed fields.
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}:\n" + format_validation_error(error, model, tags)) from None


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
