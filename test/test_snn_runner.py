"""The SNN on nengo-loihi's emulator: spike delivery, resets, activity counts and energy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("nengo_loihi")

from toy_networks import toy_crops, toy_spec

from fer_ros.core.spike_encoding import EncodingSettings, encode
from fer_ros.snn.activity import ActivityCounter
from fer_ros.snn.convert import convert
from fer_ros.snn.energy import LoihiConstants, LoihiEnergyModel
from fer_ros.snn.params import MAX_BLOCK_NEURONS, MAX_CORES_PER_CHIP
from fer_ros.snn.reference import conv2d
from fer_ros.snn.runner import SnnRunner

STEPS = 40


@pytest.fixture(scope="module")
def params():
    return convert(toy_spec(), toy_crops(64), "toy", max_rate=500, input_rate=1000, timesteps=STEPS)


@pytest.fixture(scope="module")
def trains(params):
    settings = EncodingSettings("rate", STEPS, params.dt, params.input_rate)
    return [encode(crop[0], settings) for crop in toy_crops(4, seed=7)]


@pytest.fixture(scope="module")
def runner(params):
    # nengo-loihi's stepping emulator (the layered one has tests of its own)
    r = SnnRunner(params, target="sim", emulator="nengo")
    yield r
    r.close()


def test_fast_spike_delivery_is_bit_identical_to_nengo_loihi(params, trains, runner):
    stock = SnnRunner(params, target="sim", fast=False, emulator="nengo")
    try:
        assert runner.fast and not stock.fast
        for train in trains:
            a, b = stock.run(train), runner.run(train)
            for x, y in zip(a.layer_counts, b.layer_counts, strict=True):
                np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(a.output_voltage, b.output_voltage)
    finally:
        stock.close()


def test_state_reset_makes_presentations_independent(params, trains, runner):
    first = runner.run(trains[0])
    runner.run(trains[1])  # a different face in between must leave no trace
    again = runner.run(trains[0])
    for x, y in zip(first.layer_counts, again.layer_counts, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(first.output_voltage, again.output_voltage)
    fresh = SnnRunner(params, target="sim", emulator="nengo")
    try:
        np.testing.assert_array_equal(fresh.run(trains[0]).output_voltage, first.output_voltage)
    finally:
        fresh.close()


def test_built_model_respects_loihi_core_limits(params, runner):
    blocks = runner.sim.model.blocks
    assert len(blocks) == params.n_cores <= MAX_CORES_PER_CHIP
    assert all(b.compartment.n_compartments <= MAX_BLOCK_NEURONS for b in blocks)


def test_input_relay_passes_every_spike_exactly(params, trains):
    import nengo
    import nengo_loihi

    from fer_ros.snn.builder import build_network

    net = build_network(params)
    with net.network:
        relay_probe = nengo.Probe(net.relay.neurons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = nengo_loihi.Simulator(net.network, dt=params.dt, precompute=True, target="sim")
    with sim:
        net.buffer.set(trains[0])
        sim.run_steps(STEPS)
        relayed = sim.data[relay_probe] * params.dt / params.input_amplitude
    np.testing.assert_array_equal(np.rint(relayed), trains[0].reshape(STEPS, -1))


def _brute_force_fan_out(layer) -> np.ndarray:
    """Synapses per presynaptic neuron, counted by pushing one-hot inputs through the layer."""
    n_in = int(np.prod(layer.input_shape))
    if layer.kind == "dense":
        return np.full(n_in, layer.weights.shape[0])
    eye = np.eye(n_in, dtype=np.float32).reshape(n_in, *layer.input_shape)
    ones = np.ones_like(layer.weights)
    return conv2d(eye, ones, layer.stride, layer.padding).reshape(n_in, -1).sum(axis=1)


def test_activity_counts_equal_counts_recomputed_from_probed_spikes(params, trains, runner):
    counter = ActivityCounter(params)
    shown = runner.run(trains[2])
    activity = counter.count(shown.input_counts, shown.layer_counts, shown.timesteps)
    # independent recount from the spike trains and a one-hot fan-out
    pre = trains[2].reshape(STEPS, -1).sum(axis=0)
    assert activity.input_spikes == int(pre.sum())
    for layer, counted, post in zip(
        params.layers, activity.layers, shown.layer_counts, strict=True
    ):
        fan = _brute_force_fan_out(layer)
        assert counted.synaptic_ops == int(pre @ fan)
        assert counted.spikes == int(post.sum())
        assert counted.active_updates + counted.inactive_updates == layer.n_neurons * STEPS
        pre = post
    assert activity.synaptic_ops > 0 and activity.spikes > 0


def test_probed_spike_counts_match_raw_emulator_output(params, trains):
    """Presentation counts are the probes' spikes (no rescaling error)."""
    r = SnnRunner(params, target="sim")
    try:
        r.net.buffer.set(trains[3])
        r.sim.run_steps(STEPS)
        raw = [np.asarray(r.sim.data[p]) > 0 for p in r.net.spike_probes]
        r.sim.clear_probes()
        r._reset()
        shown = r.run(trains[3])
        for spikes, counts in zip(raw, shown.layer_counts, strict=True):
            np.testing.assert_array_equal(spikes.sum(axis=0), counts)
    finally:
        r.close()


def test_energy_model_is_the_documented_sum(params, trains, runner):
    c = LoihiConstants()
    assert (c.e_synop, c.e_active, c.e_inactive, c.e_spike_tile, c.e_hop_ew, c.e_hop_ns) == (
        23.6e-12,
        81e-12,
        52e-12,
        1.7e-12,
        3.0e-12,
        4.0e-12,
    )
    shown = runner.run(trains[1])
    activity = ActivityCounter(params).count(shown.input_counts, shown.layer_counts, STEPS)
    model = LoihiEnergyModel(static="none")
    e = model.breakdown(activity)
    layers = activity.layers
    assert e.synaptic == pytest.approx(sum(a.synaptic_ops for a in layers) * 23.6e-12)
    assert e.neuron_updates == pytest.approx(
        sum(a.active_updates * 81e-12 + a.inactive_updates * 52e-12 for a in layers)
    )
    assert e.static == 0 and e.total == pytest.approx(e.dynamic)
    with_static = LoihiEnergyModel(static="chip").breakdown(activity)
    assert with_static.static == pytest.approx(3.34 / 32 * with_static.seconds)
    fixed = LoihiEnergyModel(static="none", step_time=1e-3).breakdown(activity)
    assert fixed.seconds == pytest.approx(STEPS * 1e-3)
    figure = model.figure([activity, activity])
    assert figure.energy_j == pytest.approx(2 * e.total)
    assert "23.6" in figure.model and "Davies" in figure.model


def test_settle_reset_for_hardware_reads_output_relative_to_its_start(params, trains):
    """Hardware cannot zero state through nengo-loihi: settle, then read the integrator's
    change over the face (its charge survives the settle steps)."""
    settle = SnnRunner(params, target="sim", reset="settle", settle_steps=5)
    try:
        assert settle.reset_mode == "settle"
        first = settle.run(trains[0])
        second = settle.run(trains[0])
        assert np.any(second.output_start != 0)  # charge carried over ...
        np.testing.assert_allclose(  # ... but the readout is relative to it
            first.readout(), second.readout(), atol=0.5 * np.abs(first.readout()).max()
        )
    finally:
        settle.close()
    with pytest.raises(ValueError, match="settle"):
        SnnRunner(params, target="loihi", reset="state")
