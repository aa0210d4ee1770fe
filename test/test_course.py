"""The run's course as a person would tell it (ROS-free)."""

from fer_ros.core.course import describe_course, label_course


def test_short_runs_are_absorbed_and_neighbours_merge():
    labels = ["happy"] * 2 + ["neutral"] * 16 + ["happy", "neutral"] + ["happy"] * 50 + ["fear"] * 2
    assert label_course(labels) == [("neutral", 20), ("happy", 52)]


def test_long_runs_are_kept_in_order():
    labels = ["sadness"] * 6 + ["neutral"] * 5 + ["happy"] * 9
    assert label_course(labels) == [("sadness", 6), ("neutral", 5), ("happy", 9)]
    assert describe_course(labels).startswith("sadness (6 frames), then neutral")


def test_nothing_is_a_dash():
    assert describe_course([]) == "-"
    assert label_course(["fear"] * 3) == [("fear", 3)]
