"""Plain descriptions of tunable options, free of ROS.

Nodes and backends list their options once as :class:`Param` rows. The nodes layer turns
them into ROS parameter descriptors (:mod:`fer_ros.nodes.parameters`); everything below
the nodes (backends, benchmarks, the README's tables) uses them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, make_dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Param:
    """One option: its name, default (which fixes its type), meaning and legal values."""

    name: str
    default: bool | int | float | str | list[str]
    description: str
    choices: tuple[str, ...] = ()  # legal values of an enum-like string
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any) -> str | None:
        """Why ``value`` is illegal, or None when it is fine."""
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of {', '.join(self.choices)}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"{self.name}={value} is below {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"{self.name}={value} is above {self.maximum}"
        return None


class OptionValues:
    """Base of the frozen config classes made by :func:`config_class`."""

    _names: ClassVar[dict[str, str]] = {}  # attribute -> option name

    def as_options(self) -> dict[str, Any]:
        """Every value by its option (ROS parameter) name, e.g. ``power.source``."""
        return {name: getattr(self, attr) for attr, name in self._names.items()}


def attribute_name(option: str) -> str:
    """``power.source`` -> ``power_source``: option names as Python attributes."""
    return option.replace(".", "_")


def config_class(class_name: str, params: Iterable[Param]) -> type[OptionValues]:
    """A frozen dataclass with one typed field per option: a node's configuration as read
    at configure time, built from the same table that declares its parameters."""
    rows = list(params)
    fields = [(attribute_name(p.name), _value_type(p.default)) for p in rows]
    cls = make_dataclass(class_name, fields, bases=(OptionValues,), frozen=True)
    cls._names = {attribute_name(p.name): p.name for p in rows}
    return cls


def read_config(cls: type[OptionValues], values: Mapping[str, Any]) -> OptionValues:
    """``cls`` from option values by name (lists become tuples, so nothing stays mutable)."""
    kwargs = {
        attr: tuple(values[name]) if isinstance(values[name], list) else values[name]
        for attr, name in cls._names.items()
    }
    return cls(**kwargs)


def option_values(params: Iterable[Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of ``params`` by name: the given value cast to its default's type, or
    the default where none is given (absent, None or empty). Backends read their
    ``BackendSettings.options`` through this, so each default is written once, in its
    :class:`Param`."""
    values = {}
    for p in params:
        value = given.get(p.name)
        if value is None or (value == "" and p.default != ""):
            values[p.name] = p.default
        else:
            values[p.name] = _value_type(p.default)(value)
    return values


def _value_type(default: Any) -> type:
    return tuple if isinstance(default, list) else type(default)
