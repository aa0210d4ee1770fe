"""Described, validated node parameters, declared from one table per node.

Each node module lists its parameters once as :class:`Param` rows; declaration (with a
``ParameterDescriptor``), validation of choices and ranges (at set time and at
configure time), and the README's parameter tables all come from that list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.parameter import Parameter


@dataclass(frozen=True)
class Param:
    name: str
    default: bool | int | float | str | list[str]
    description: str
    choices: tuple[str, ...] = ()  # legal values of an enum-like string
    minimum: float | None = None
    maximum: float | None = None

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(name=self.name, description=self.description)
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                descriptor.integer_range = [
                    IntegerRange(from_value=int(self.minimum), to_value=int(self.maximum))
                ]
            elif isinstance(self.default, float):
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(self.minimum), to_value=float(self.maximum))
                ]
        return descriptor

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


def declare_parameters(node: Node, params: Iterable[Param]) -> None:
    """Declare every row with its descriptor and reject illegal values when set."""
    table = {p.name: p for p in params}
    for p in table.values():
        node.declare_parameter(p.name, p.default, p.descriptor())

    def validate(changes: list[Parameter]) -> SetParametersResult:
        for change in changes:
            row = table.get(change.name)
            reason = row.check(change.value) if row else None
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(validate)


def read_parameters(node: Node, params: Iterable[Param]) -> dict[str, Any]:
    """Current values by name; raises ValueError naming every illegal value."""
    values = {p.name: node.get_parameter(p.name).value for p in params}
    problems = [r for p in params if (r := p.check(values[p.name]))]
    if problems:
        raise ValueError("; ".join(problems))
    return values


def defaults(params: Iterable[Param]) -> Mapping[str, Any]:
    return {p.name: p.default for p in params}
