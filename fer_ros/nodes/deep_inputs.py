"""Input parameters for stages where every message matters (expressions, events).

The base's rows (:data:`~fer_ros.nodes.input_worker.INPUT_PARAMETERS`), kept in step with
it, with a deeper default queue: newest-wins suits camera frames, not a filter whose
smoothing needs every array, nor a behaviour node that must see every event.
"""

from __future__ import annotations

from dataclasses import replace

from fer_ros.core.options import Param
from fer_ros.nodes.input_worker import INPUT_PARAMETERS


def deep_input_parameters(depth: int, description: str) -> tuple[Param, ...]:
    return tuple(
        replace(p, default=depth, description=description) if p.name == "input_queue_depth" else p
        for p in INPUT_PARAMETERS
    )
