"""ROS parameters declared from :class:`~fer_ros.core.options.Param` rows.

Each node module lists its parameters once as ``Param`` rows; declaration (with a
``ParameterDescriptor``), validation of choices and ranges (at set time and at
configure time), and the README's parameter tables all come from that list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)

from fer_ros.core.options import Param

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.parameter import Parameter


def descriptor(param: Param) -> ParameterDescriptor:
    """The ROS descriptor of ``param``: description, legal values and range."""
    d = ParameterDescriptor(name=param.name, description=param.description)
    if param.choices:
        d.additional_constraints = "one of: " + ", ".join(param.choices)
    if param.minimum is not None and param.maximum is not None:
        if isinstance(param.default, bool):
            pass
        elif isinstance(param.default, int):
            d.integer_range = [
                IntegerRange(from_value=int(param.minimum), to_value=int(param.maximum))
            ]
        elif isinstance(param.default, float):
            d.floating_point_range = [
                FloatingPointRange(from_value=float(param.minimum), to_value=float(param.maximum))
            ]
    return d


def declare_parameters(node: Node, params: Iterable[Param]) -> None:
    """Declare every row with its descriptor and reject illegal values when set."""
    table = {p.name: p for p in params}
    for p in table.values():
        node.declare_parameter(p.name, p.default, descriptor(p))

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
