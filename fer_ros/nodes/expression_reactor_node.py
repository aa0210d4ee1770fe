"""Expression reactor node: an example robot behaviour driven by expression events.

Subscribes ``expression_events`` (fer_msgs/ExpressionEvent from the expression filter);
publishes ``reaction`` (std_msgs/String), e.g. "greet" when a person's stable expression
becomes happy, per the ``reactions`` mapping. It needs nothing but the events: a robot's
own behaviour node can start as a copy of this one.
"""

from __future__ import annotations

from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from fer_msgs.msg import ExpressionEvent
from fer_ros.core.expression_filter import NS_PER_S
from fer_ros.core.options import Param
from fer_ros.nodes.deep_inputs import deep_input_parameters
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import PipelineNode

# Neutral, the resting face people show most of the time, gets a calm reaction: "idle"
# (the robot drops whatever it did for the previous expression and resumes its idle
# behaviour), which is harmless however often it comes. Contempt and disgust get none:
# they are rare and easily misread (a model without a neutral class, like the seven-class
# CK+ models, often calls a resting face contempt), and reacting to a misreading is worse
# than not reacting.
DEFAULT_REACTIONS = [
    "happy:greet",
    "sadness:comfort",
    "fear:reassure",
    "anger:deescalate",
    "surprise:explain",
    "neutral:idle",
    "gone:farewell",
]
PARAMETERS = (
    Param(
        "reactions",
        DEFAULT_REACTIONS,
        "KEY:REACTION pairs: REACTION is published when a face's stable expression becomes "
        "KEY (a class or 'uncertain'); KEY 'appeared' or 'gone' reacts to a face arriving "
        "or leaving",
    ),
    Param(
        "repeat_after_s",
        5.0,
        "The same reaction to the same face is not repeated within this many seconds "
        "(event stamps)",
        minimum=0.0,
        maximum=3600.0,
    ),
    *deep_input_parameters(
        100, "Events waiting while the node is busy; events are rare and each one matters"
    ),
)
EVENTS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def parse_reactions(entries: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["happy:greet", ...]`` -> {"happy": "greet"}; ValueError naming a bad entry.
    Empty entries are ignored (a ROS string array cannot be empty in a YAML default)."""
    mapping: dict[str, str] = {}
    for entry in entries:
        if not entry.strip():
            continue
        key, sep, reaction = (part.strip() for part in entry.partition(":"))
        if not sep or not key or not reaction:
            raise ValueError(f"reaction {entry!r} is not KEY:REACTION")
        if key in mapping:
            raise ValueError(f"reaction key {key!r} is given twice")
        mapping[key] = reaction
    return mapping


class ExpressionReactorNode(PipelineNode):
    parameters = PARAMETERS

    def __init__(self, node_name: str = "expression_reactor", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._reaction_pub = self.output(String, "reaction")
        self._mapping: dict[str, str] = {}
        self._last: dict[tuple[int, str], int] = {}  # (face, reaction) -> stamp ns
        self.reactions_published = 0

    def load(self) -> None:
        self._mapping = parse_reactions(self.config.reactions)
        pairs = ", ".join(f"{k} -> {v}" for k, v in self._mapping.items())
        self.get_logger().info(f"reactions: {pairs or 'none'}")

    def start(self) -> None:
        self._last.clear()
        self.subscribe_input(ExpressionEvent, "expression_events", EVENTS_QOS)

    def process(self, event: ExpressionEvent) -> None:
        reaction = self.reaction_to(event)
        if event.kind == ExpressionEvent.KIND_GONE:  # forget the face after its farewell
            self._last = {k: v for k, v in self._last.items() if k[0] != event.face_id}
        if reaction is None:
            return
        self._reaction_pub.publish(String(data=reaction))
        self.reactions_published += 1
        self.get_logger().debug(f"face {event.face_id}: {event.to_label or 'gone'} -> {reaction}")

    def reaction_to(self, event: ExpressionEvent) -> str | None:
        """The reaction an event calls for, or None (unmapped, or repeated too soon)."""
        if event.kind == ExpressionEvent.KIND_GONE:
            reaction = self._mapping.get("gone")
        else:  # a face that appears with a mapped first label gets the label's reaction
            reaction = self._mapping.get(event.to_label)
            if reaction is None and event.kind == ExpressionEvent.KIND_APPEARED:
                reaction = self._mapping.get("appeared")
        if reaction is None:
            return None
        stamp_ns = event.header.stamp.sec * NS_PER_S + event.header.stamp.nanosec
        key = (event.face_id, reaction)
        previous = self._last.get(key)
        if previous is not None and stamp_ns - previous < self.config.repeat_after_s * NS_PER_S:
            return None
        self._last[key] = stamp_ns
        return reaction

    def status_values(self) -> dict[str, str]:
        return {"reactions_published": str(self.reactions_published)}


def main(args: list[str] | None = None) -> None:
    run_node(ExpressionReactorNode, args)


if __name__ == "__main__":
    main()
