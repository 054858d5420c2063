"""Checking one settings table against its declared dataclass: types first, then meaning.

Every section of settings.toml is a dataclass whose annotations are the schema. A value of
the wrong type is refused with the file, the table and the key (``settings.toml: [speech]
beam_size must be a whole number, not 'two'``); keys no section declares are logged and
ignored so a newer Deskmind's settings still load in an older one. A section may add checks
of meaning in a ``validate(where)`` method.
"""

from __future__ import annotations

import logging
import types
import typing
from dataclasses import fields
from typing import Any, TypeVar

from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

T = TypeVar("T")


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return "a list" if item is Any else f"a list of {_describe(item).removeprefix('a ')}"
    if origin is dict or tp is dict:
        return "a table"
    return {bool: "true or false", int: "a whole number", float: "a number",
            str: "text"}.get(tp, getattr(tp, "__name__", str(tp)))


def _fits(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_section(cls: type[T], data: Any, where: str) -> T:
    """``data`` (one TOML table, plain Python) as a ``cls``; ``where`` names it in errors,
    e.g. ``"/home/ana/.config/deskmind/settings.toml [speech]"``."""
    if not isinstance(data, dict):
        raise UserInputError(f"{where} must be a table of settings, not {_show(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        log.warning("%s: unknown settings ignored: %s", where, ", ".join(unknown))
    values: dict[str, Any] = {}
    for name in known & set(data):
        value, tp = data[name], hints[name]
        if value == "" and _fits(None, tp):   # an empty value in the file means "not set"
            value = None
        if not _fits(value, tp):
            raise UserInputError(f"{where} {name} must be {_describe(tp)}, not {_show(value)}")
        if tp is float or (typing.get_origin(tp) in (typing.Union, types.UnionType)
                           and float in typing.get_args(tp) and isinstance(value, int)):
            value = float(value)
        values[name] = value
    section = cls(**values)
    check = getattr(section, "validate", None)
    if check is not None:
        check(where)
    return section
