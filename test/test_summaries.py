"""Run summaries (ROS-free): the course of a run and the latency alarm window."""

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


def test_latency_window_forgets_old_figures():
    from fer_ros.core.stats import RollingLatency

    latency = RollingLatency(window_s=10.0)
    for k in range(5):
        latency.add(4000.0, now=100.0 + k)  # five 4K frames
    assert latency.percentile(95, now=105.0) == 4000.0
    assert latency.percentile(95, now=120.0) != latency.percentile(95, now=120.0)  # NaN: gone
    latency.add(12.0, now=121.0)
    assert latency.percentile(95, now=121.5) == 12.0
