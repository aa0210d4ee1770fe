"""The pure parts of the pipeline: bounded input hand-off, tracking, spike coding."""

import threading

import numpy as np
import pytest

from fer_ros.core.face_tracking import IouTracker, iou
from fer_ros.core.spike_encoding import EncodingSettings, encode, pack_spikes, unpack_spikes
from fer_ros.nodes.input_worker import InputWorker


def run_blocked_worker(depth: int) -> tuple[InputWorker[int], list[int]]:
    """Submit 0, then 1-5 while 0 is still being processed; return what was processed."""
    gate, busy, last_done = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def process(item: int) -> None:
        busy.set()
        gate.wait(5)
        seen.append(item)
        if item == 5:  # the newest input is always kept, so it is always the last one
            last_done.set()

    worker = InputWorker(process, lambda e: None, "test", depth=depth)
    worker.start()
    worker.submit(0)
    assert busy.wait(5)  # the worker is now blocked on item 0
    for i in range(1, 6):
        worker.submit(i)
    gate.set()
    assert last_done.wait(5)
    worker.stop()
    return worker, seen


def test_input_worker_of_depth_one_processes_newest_and_counts_drops():
    worker, seen = run_blocked_worker(depth=1)
    assert seen == [0, 5]
    assert (worker.received, worker.dropped) == (6, 4)


def test_deeper_input_worker_keeps_the_newest_inputs_in_order():
    worker, seen = run_blocked_worker(depth=3)
    assert seen == [0, 3, 4, 5]
    assert (worker.received, worker.processed, worker.dropped) == (6, 4, 2)
    with pytest.raises(ValueError, match="at least 1"):
        worker.depth = 0


def test_input_worker_survives_a_failing_item():
    errors: list[Exception] = []
    done: list[int] = []
    failed, served = threading.Event(), threading.Event()

    def process(item: int) -> None:
        if item == 1:
            raise ValueError("bad input")
        done.append(item)
        served.set()

    def on_error(error: Exception) -> None:
        errors.append(error)
        failed.set()

    worker = InputWorker(process, on_error, "test")
    worker.start()
    worker.submit(1)
    assert failed.wait(5)
    worker.submit(2)
    assert served.wait(5)
    worker.stop()
    assert [str(e) for e in errors] == ["bad input"]
    assert done == [2]


def test_tracker_keeps_ids_while_faces_move_and_retires_lost_ones():
    tracker = IouTracker(min_iou=0.3, max_missed=1)
    first = tracker.update([(10, 10, 50, 50), (200, 10, 50, 50)])
    moved = tracker.update([(205, 12, 50, 50), (14, 11, 50, 50)])
    assert moved == [first[1], first[0]]
    tracker.update([])
    tracker.update([])  # missed twice: retired
    assert tracker.update([(10, 10, 50, 50)])[0] not in first


def test_iou_of_identical_and_disjoint_boxes():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_rate_coding_is_deterministic_and_proportional():
    settings = EncodingSettings(encoding="rate", timesteps=100, dt=0.001, max_rate=200.0)
    intensities = np.array([[0.0, 0.25, 1.0]])
    spikes = encode(intensities, settings)
    np.testing.assert_array_equal(spikes, encode(intensities, settings))
    np.testing.assert_array_equal(spikes.sum(axis=0), [[0, 5, 20]])


def test_poisson_coding_depends_only_on_the_seed():
    settings = EncodingSettings(encoding="poisson", timesteps=500, dt=0.001, max_rate=200.0)
    x = np.full((8, 8), 0.5)
    a = encode(x, settings, np.random.default_rng(7))
    b = encode(x, settings, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.mean() == pytest.approx(0.1, abs=0.01)  # p = 0.5 * 200 Hz * 1 ms


def test_pack_round_trip_and_size_check():
    spikes = np.random.default_rng(1).random((3, 5, 7)) < 0.3
    data = pack_spikes(spikes)
    np.testing.assert_array_equal(unpack_spikes(data, spikes.shape), spikes)
    with pytest.raises(ValueError, match="cannot hold"):
        unpack_spikes(data[:-1], spikes.shape)


def test_encoding_settings_reject_more_than_one_spike_per_step():
    with pytest.raises(ValueError, match="at most one spike per step"):
        EncodingSettings(max_rate=2000.0, dt=0.001)
    with pytest.raises(ValueError, match="unknown encoding"):
        EncodingSettings(encoding="latency")
