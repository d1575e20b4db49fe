"""Config sections: frozen dataclasses built from YAML mappings and checked field by field at load.

Every section class (run inputs, sampler, sampling, process, consistency, outcome options, ...)
builds through :func:`from_mapping`, which refuses unknown keys and checks each value against the
field's annotation before the class's own ``__post_init__`` checks ranges and rules. So a value of
the wrong type ("two" shards, ``overwrite: "false"``, ``limit: 2.5``) is refused at load with one
line naming the key, never deep inside a worker. This module imports nothing from prmflow, so any
section can use it without import cycles.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union


class ConfigError(ValueError):
    """The config is invalid; the message names the key and the offending value."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return "a list"
    if origin in (dict, Mapping) or tp is dict:
        return "a mapping"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    return getattr(tp, "__name__", str(tp))


def check_value(tp: Any, value: Any, where: str) -> Any:
    """``value`` checked against annotation ``tp`` (a list becomes a tuple for ``tuple[...]``; an int
    is a valid ``float``), or ConfigError "<where> must be <type>, got <value>"."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:  # X | None: X's own message is the precise one
            if value is None:
                raise ConfigError(f"{where} must be {_describe(tp)}, got None")
            return check_value(others[0], value, where)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_value(arg, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {_describe(tp)}, got {_show(value)}")
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be {_describe(tp)}, got {_show(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return value  # kept as written: the config digest hashes the values as given
        if isinstance(value, float):
            raise ConfigError(f"{where} must be a finite number, got {_show(value)}")
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, (list, tuple)):
            args = typing.get_args(tp)
            item = args[0] if args else Any
            return tuple(check_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    elif origin in (dict, Mapping) or tp in (dict, Mapping):
        if isinstance(value, Mapping):
            args = typing.get_args(tp)
            if not args:
                return dict(value)
            return {
                check_value(args[0], k, f"{where} key"): check_value(args[1], v, f"{where}.{k}")
                for k, v in value.items()
            }
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_mapping(tp, value, where)
    else:  # a type we don't check structurally: the section's own __post_init__ does
        return value
    raise ConfigError(f"{where} must be {_describe(tp)}, got {_show(value)}")


def from_mapping(cls: type, data: Any, where: str, **fixed: Any) -> Any:
    """``cls(**data)`` with unknown keys refused and every value type-checked against its field.

    ``fixed`` are values the caller supplies (not read from the YAML). ValueErrors raised by the
    class's own checks are re-raised as ConfigError with their message, prefixed with ``where``
    unless they already name it.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {sorted(fields)}")
    kwargs = {name: check_value(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    kwargs.update(fixed)
    missing = sorted(
        name for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise ConfigError(f"{where}.{missing[0]} is required")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # ConfigError included
        message = str(e)
        if message.startswith(where):
            raise ConfigError(message) from None
        if _names_field(message, fields):
            raise ConfigError(f"{where}.{message}") from None
        if isinstance(e, ConfigError):  # a nested section's error, already naming its own key
            raise
        raise ConfigError(f"{where}: {message}") from None


def _names_field(message: str, fields: Mapping[str, Any]) -> bool:
    head = message.split(" ", 1)[0]
    return head in fields


def load_yaml(path: str | Path) -> Any:
    """A config file's YAML, or ConfigError with one line saying what is wrong with the file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(path)!r} is a directory, not a YAML file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text: {e.reason} at byte {e.start}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {' '.join(str(e).split())}") from None
    return data


def require(condition: bool, where: str, rule: str, value: Any) -> None:
    """Raise ConfigError "<where> must be <rule>, got <value>" unless ``condition``."""
    if not condition:
        raise ConfigError(f"{where} must be {rule}, got {_show(value)}")
