"""The layered emulator gives nengo-loihi's spikes and voltages at every step, layer and face.

The reference is nengo-loihi 1.1's own emulator, stepped one face at a time with the
runner's exact state reset between faces, with spike and voltage probes on every layer.
Networks: the committed SNNs on held-out CK+ faces, and small random ones chosen to reach
every branch of the compartment arithmetic (negative membranes, vmin clipping, 21-bit
input and 23-bit current wrap-around, refractory periods, leaky voltage, synaptic
filters, several cores per layer with different weight scales, conv and dense layers,
strides, padding, batches of one and several faces, one- and two-step presentations).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np
import pytest

pytest.importorskip("nengo_loihi")

import nengo
import nengo_loihi

from fer_ros.core.model_card import load_model_card
from fer_ros.core.spike_encoding import EncodingSettings, encode
from fer_ros.snn.builder import (
    SnnNetwork,
    SpikeBuffer,
    _transform,
    build_network,
    neuron_biases,
)
from fer_ros.snn.emulator.layered import LayeredEmulator, _distinct_rows
from fer_ros.snn.emulator.mirror import supports
from fer_ros.snn.params import SnnLayer, SnnParams, conv_output_size
from fer_ros.snn.runner import SnnRunner

COMMITTED = ("fer_snn_loihi", "fer_snn_loihi_canny")
FACES = 3  # held-out faces per committed model (nengo-loihi's emulator: ~0.4 s each)


class RefractoryIntegrating(nengo.SpikingRectifiedLinear):
    """Integrate-and-fire with a 3-step refractory delay and a floor at -8 thresholds."""


def _register_refractory() -> None:
    from nengo_loihi.builder import Builder

    if RefractoryIntegrating in Builder.builders:
        return

    @Builder.register(RefractoryIntegrating)
    def build(model, neuron_type, neurons, block):
        block.compartment.configure_relu(tau_ref=2 * model.dt, vth=1.0 / model.dt, dt=model.dt)
        block.compartment.vmin = -8 / model.dt


_register_refractory()


# ------------------------------------------------------------------ networks


def random_params(seed: int, input_shape, layers, timesteps: int = 20) -> SnnParams:
    """Random weights for ``layers``: ("conv", out_c, k, stride, pad, block, w, b) or
    ("dense", n, block, w, b), w and b the normal scales of weights and biases."""
    rng = np.random.default_rng(seed)
    built, shape = [], tuple(input_shape)
    for i, spec in enumerate(layers):
        if spec[0] == "conv":
            _, out_c, k, stride, pad, block, w, b = spec
            weights = rng.normal(0, w, (out_c, shape[0], k, k))
            out = (
                out_c,
                conv_output_size(shape[1], k, stride, pad),
                conv_output_size(shape[2], k, stride, pad),
            )
            layer = SnnLayer(
                f"l{i}", "conv", weights, rng.normal(0, b, out_c), shape, out, 1.0, block,
                stride, pad,
            )  # fmt: skip
        else:
            _, n, block, w, b = spec
            weights = rng.normal(0, w, (n, int(np.prod(shape))))
            layer = SnnLayer(
                f"l{i}", "dense", weights, rng.normal(0, b, n), shape, (n,), 1.0, block
            )
            out = (n,)
        built.append(layer)
        shape = out
    return SnnParams(
        "random", tuple(input_shape), tuple(built), timesteps=timesteps, max_rate=500.0,
        input_rate=1000.0,
    )  # fmt: skip


def custom_network(params: SnnParams, neurons, synapses) -> SnnNetwork:
    """:func:`build_network`'s layout with other neuron types and input synapses per layer."""
    n_in = int(np.prod(params.input_shape))
    buffer = SpikeBuffer(n_in, params.dt)
    ensembles, probes = [], []
    with nengo.Network(seed=0) as net:
        nengo_loihi.add_params(net)
        node = nengo.Node(buffer, size_out=n_in)
        relay = nengo.Ensemble(
            n_in, 1, neuron_type=nengo.SpikingRectifiedLinear(amplitude=1.0 / params.input_rate),
            gain=np.ones(n_in), bias=np.zeros(n_in),
        )  # fmt: skip
        net.config[relay].on_chip = False
        nengo.Connection(node, relay.neurons, synapse=None)
        pre = relay
        for layer, neuron, synapse in zip(params.layers, neurons, synapses, strict=True):
            ens = nengo.Ensemble(
                layer.n_neurons, 1, neuron_type=neuron, gain=np.ones(layer.n_neurons),
                bias=neuron_biases(layer), label=layer.name,
            )  # fmt: skip
            net.config[ens].block_shape = nengo_loihi.BlockShape(
                tuple(layer.block_shape), tuple(layer.output_shape)
            )
            nengo.Connection(pre.neurons, ens.neurons, transform=_transform(layer), synapse=synapse)
            probes.append(nengo.Probe(ens.neurons, "output"))
            ensembles.append(ens)
            pre = ens
        voltage = nengo.Probe(pre.neurons, "voltage")
    return SnnNetwork(net, params, buffer, relay, ensembles, probes, voltage, params.n_cores)


def simulator(net: SnnNetwork):
    """nengo-loihi's emulator for ``net`` with a voltage probe on every layer."""
    with net.network:
        volts = [nengo.Probe(e.neurons, "voltage") for e in net.ensembles]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = nengo_loihi.Simulator(net.network, dt=net.params.dt, precompute=True, target="sim")
    return sim, volts


def reset_state(sim) -> None:
    """SnnRunner's reset="state": zero the compartments, drop input spikes still queued."""
    emulator = sim.sims["emulator"]
    comp = emulator.compartment
    for array in (comp.input, comp.current, comp.voltage, comp.ref_count):
        array[...] = 0
    comp.spiked[...] = False
    for spike_input in emulator.inputs:
        for t in [t for t in spike_input.spikes if t not in spike_input.permanent]:
            del spike_input.spikes[t]


def stepped(sim, net: SnnNetwork, volts, trains):
    """Per face: every layer's spikes (T, n) and voltages (T, n) from nengo-loihi."""
    out = []
    for train in trains:
        net.buffer.set(train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nengo-loihi's overflow warnings
            sim.run_steps(len(train))
        out.append(
            (
                [np.asarray(sim.data[p]) > 0 for p in net.spike_probes],
                [np.asarray(sim.data[p], np.float64) for p in volts],
            )
        )
        sim.clear_probes()
        reset_state(sim)
    return out


def assert_identical(net: SnnNetwork, trains, geometry: bool = True) -> LayeredEmulator:
    """Layered emulator == nengo-loihi's for every layer, face and step (spikes, voltages).

    ``geometry=False`` hides the CNN's layer shapes, so that conv layers use the generic
    sparse product of the built synapses instead of the im2col GEMM.
    """
    sim, volts = simulator(net)
    try:
        assert supports(sim, net) is None
        layered = LayeredEmulator(sim, net if geometry else dataclasses.replace(net, params=None))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trace = layered.simulate(np.stack(trains), voltages="all")
        reference = stepped(sim, net, volts, trains)
    finally:
        sim.close()
    for face, (spikes, voltages) in enumerate(reference):
        for layer, (s, v) in enumerate(zip(spikes, voltages, strict=True)):
            where = f"face {face}, layer {net.ensembles[layer].label}"
            np.testing.assert_array_equal(trace.spikes[layer][face], s, err_msg=where)
            np.testing.assert_array_equal(trace.voltages[layer][face], v, err_msg=where)
    return layered


def spike_trains(seed: int, n: int, steps: int, shape, density: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((steps, *shape)) < density for _ in range(n)]


# ------------------------------------------------------------------ committed SNNs


@pytest.fixture(scope="module", params=COMMITTED)
def committed(request, ck_plus_path):
    from fer_ros.snn.params import load_snn_params
    from fer_ros.training.card_data import card_split

    card = load_model_card(f"{request.param}.json")
    if "snn" not in card.files:
        pytest.skip(f"{request.param} has no SNN export")
    params = load_snn_params(card.file("snn"))
    _, held_out = card_split(card, ck_plus_path)
    settings = EncodingSettings("rate", params.timesteps, params.dt, params.input_rate)
    picks = np.linspace(0, len(held_out.x) - 1, FACES).astype(int)  # spread over the split
    return params, [encode(held_out.x[i][0], settings) for i in picks]


def test_committed_snn_is_identical_to_nengo_loihi_at_every_step(committed):
    params, trains = committed
    layered = assert_identical(build_network(params), trains)
    assert [layer.kind for layer in layered.layers] == [layer.kind for layer in params.layers]


def test_committed_snn_presentations_equal_the_runners(committed):
    """run_batch gives SnnRunner.run's Presentation, field for field, and readouts."""
    params, trains = committed
    fast = SnnRunner(params, target="sim")
    nengo_path = SnnRunner(params, target="sim", emulator="nengo")
    try:
        assert fast.emulator == "fast" and nengo_path.emulator == "nengo"
        batch = fast.run_batch(np.stack(trains))
        single = fast.run(trains[0])
        for train, got in zip(trains, batch, strict=True):
            want = nengo_path.run(train)
            np.testing.assert_array_equal(got.output_spikes, want.output_spikes)
            np.testing.assert_array_equal(got.output_voltage, want.output_voltage)
            np.testing.assert_array_equal(got.input_counts, want.input_counts)
            for a, b in zip(got.layer_counts, want.layer_counts, strict=True):
                np.testing.assert_array_equal(a, b)
            assert got.timesteps == want.timesteps and got.output_start == want.output_start
            np.testing.assert_array_equal(got.readout(), want.readout())
            np.testing.assert_array_equal(got.readout(10), want.readout(10))
        np.testing.assert_array_equal(single.output_voltage, batch[0].output_voltage)
        assert sum(int(c.sum()) for c in batch[0].layer_counts[:2]) > 0  # the face was seen
    finally:
        fast.close()
        nengo_path.close()


# ------------------------------------------------------------------ random networks


@pytest.fixture(params=["dense product", "spike by spike"])
def input_path(request, monkeypatch):
    """Both ways a layer's synaptic input is computed (the emulator picks one by the share
    of spikes): forced here, so each random network checks both against nengo-loihi."""
    from fer_ros.snn.emulator import layered

    monkeypatch.setattr(
        layered, "SCATTER_DENSITY", 0.0 if request.param == "dense product" else 1.1
    )
    return request.param


def test_conv_strides_padding_and_cores_split_every_way(input_path):
    """Conv layers split over channels (cores with different weight scales), rows and
    columns (non-contiguous tiles); 'same' and 'valid' padding, strides 1 and 2, kernels
    2, 3 and 5; a multi-channel input; negative membranes throughout."""
    params = random_params(
        1,
        (2, 13, 13),
        [
            ("conv", 6, 5, 1, 2, (2, 7, 13), 120, 20),  # 3 channel groups x 2 row tiles
            ("conv", 8, 3, 2, 0, (8, 3, 4), 90, 20),  # valid, tiles over rows and columns
            ("conv", 6, 2, 2, 0, (3, 3, 3), 150, 20),  # 2x2 stride 2, channel split
            ("dense", 9, (4,), 150, 30),
        ],
        timesteps=16,
    )
    trains = spike_trains(2, 3, 16, (2, 13, 13), 0.4)
    layered = assert_identical(build_network(params), trains)
    assert [layer.kind for layer in layered.layers] == ["conv", "conv", "conv", "dense"]
    assert len(np.unique(layered.layers[0].vth)) > 1  # cores with their own weight scales
    generic = assert_identical(build_network(params), trains[:2], geometry=False)
    assert [layer.kind for layer in generic.layers] == ["sparse", "sparse", "sparse", "dense"]


def test_toy_shapes_batch_of_one_and_batches_agree(input_path):
    params = random_params(
        0,
        (1, 12, 12),
        [
            ("conv", 6, 3, 2, 1, (3, 3, 6), 150, 20),
            ("conv", 8, 3, 1, 1, (4, 6, 6), 150, 20),
            ("dense", 20, (7,), 150, 30),
            ("dense", 5, (5,), 200, 10),
        ],
    )
    trains = spike_trains(5, 4, 20, (1, 12, 12), 0.3)
    layered = assert_identical(build_network(params), trains[:1])
    assert_identical(build_network(params), trains)
    batch = layered.simulate(np.stack(trains), voltages="all")
    for i, train in enumerate(trains):  # a face's result does not depend on its batch
        alone = layered.simulate(train[None], voltages="all")
        for a, b in zip(alone.voltages, batch.voltages, strict=True):
            np.testing.assert_array_equal(a[0], b[i])
    assert all(s.any() for s in batch.spikes[:3])  # activity reaches the deep layers


def test_repeated_input_rows_are_computed_once_and_identically(input_path):
    """Rate-coded input repeats rows (a pixel at the maximum rate spikes every step): the
    first layer's input is then computed per distinct row, also across a batch."""
    params = random_params(
        12,
        (1, 8, 8),
        [("conv", 4, 3, 2, 1, (4, 2, 4), 200, 20), ("dense", 6, (6,), 150, 10)],
        timesteps=18,
    )
    periodic = [np.tile(t[:period], (18 // period, 1, 1, 1)) for t, period in
                zip(spike_trains(13, 3, 6, (1, 8, 8), 0.4), (1, 2, 3), strict=True)]  # fmt: skip
    layered = assert_identical(build_network(params), periodic)
    assert_identical(build_network(params), periodic[1:2])
    src = np.stack(periodic)[:, :-1].transpose(1, 0, 2, 3, 4).reshape(17 * 3, -1)
    assert _distinct_rows(src) is not None and layered.layers[0].kind == "conv"


def test_saturating_input_wraps_like_loihi_and_membranes_hit_vmin(input_path):
    """Strong all-positive fan-in overflows the 21-bit synaptic input (nengo-loihi wraps it
    and warns); strong negative drive pins membranes at vmin."""
    base = random_params(3, (1, 20, 20), [("dense", 30, (10,), 1, 0), ("dense", 6, (6,), 400, 0)])
    first = base.layers[0]
    weights = np.abs(first.weights) * 20 + 300  # near-uniform, so sums approach the cap
    saturate = SnnLayer("sat", "dense", weights, first.bias, first.input_shape, (30,), 1.0, (10,))
    sink = base.layers[1]
    sink = SnnLayer(
        "sink", "dense", sink.weights - 600, np.full(6, -300.0), (30,), (6,), 1.0, (6,)
    )  # fmt: skip
    params = SnnParams(
        "saturating", base.input_shape, (saturate, sink), timesteps=15, max_rate=500.0,
        input_rate=1000.0,
    )  # fmt: skip
    trains = spike_trains(4, 2, 15, (1, 20, 20), 0.9)
    layered = assert_identical(build_network(params), trains)
    assert layered.layers[0].wrap_q
    with pytest.warns(UserWarning, match="Overflow in q0"):
        trace = layered.simulate(np.stack(trains), voltages="all")
    vmin = layered.layers[1].vmin.min()
    assert (trace.voltages[1] == vmin).any() and (trace.voltages[1] < 0).mean() > 0.5


def test_refractory_leaky_and_filtered_neurons(input_path):
    """Refractory delays (ref_count), LIF voltage decay with vmin 0, and Lowpass synapses
    (current decay); the saturated, slowly decaying current wraps at 23 bits."""
    params = random_params(
        6,
        (1, 10, 10),
        [
            ("conv", 4, 3, 1, 1, (4, 5, 10), 200, 50),
            ("conv", 6, 3, 2, 1, (6, 5, 5), 150, 30),
            ("dense", 12, (12,), 1, 0),
            ("dense", 4, (4,), 100, 0),
        ],
        timesteps=40,
    )
    hot = params.layers[2]  # near-uniform positive fan-in of 150
    hot = SnnLayer(
        "hot", "dense", np.abs(hot.weights) + 400, hot.bias, (6, 5, 5), (12,), 1.0, (12,)
    )
    params = SnnParams(
        "filtered", params.input_shape, (*params.layers[:2], hot, params.layers[3]),
        timesteps=40, max_rate=500.0, input_rate=1000.0,
    )  # fmt: skip
    net = custom_network(
        params,
        [
            RefractoryIntegrating(amplitude=params.amplitude),
            nengo.LIF(tau_rc=0.02, tau_ref=0.002, amplitude=params.amplitude),
            RefractoryIntegrating(amplitude=params.amplitude),
            nengo.SpikingRectifiedLinear(amplitude=params.amplitude),
        ],
        [None, nengo.Lowpass(0.004), nengo.Lowpass(0.05), None],
    )
    trains = spike_trains(7, 2, 40, (1, 10, 10), 0.5)
    layered = assert_identical(net, trains)
    layers = layered.layers
    assert layers[0].ref is not None and layers[1].kv is not None and layers[2].ku is not None
    assert layers[1].dtype == np.float64  # leak factor not a power of two: exact in float64
    with pytest.warns(UserWarning, match="Overflow in current"):
        trace = layered.simulate(np.stack(trains), voltages="none")
    assert all(s.any() for s in trace.spikes)


def test_one_and_two_step_presentations():
    params = random_params(8, (1, 6, 6), [("conv", 3, 3, 1, 1, (3, 6, 6), 300, 200)], 2)
    trains = spike_trains(9, 2, 2, (1, 6, 6), 0.8)
    assert_identical(build_network(params), trains)
    assert_identical(build_network(params), [t[:1] for t in trains])


# ------------------------------------------------------------------ fallbacks


def test_unsupported_networks_are_named_and_run_on_nengo_loihi(caplog):
    params = random_params(10, (1, 6, 6), [("dense", 8, (8,), 100, 10), ("dense", 3, (3,), 100, 0)])
    net = build_network(params)
    with net.network:  # a recurrent connection on the hidden layer
        hidden = net.ensembles[0]
        nengo.Connection(hidden.neurons, hidden.neurons, transform=np.eye(8) * -0.1, synapse=0.005)
    sim, _ = simulator(net)
    try:
        reason = supports(sim, net)
        assert reason is not None and "recurrent" in reason
        with pytest.raises(ValueError, match="recurrent"):
            LayeredEmulator(sim, net)
    finally:
        sim.close()

    trains = np.stack(spike_trains(11, 2, 10, (1, 6, 6), 0.5))
    with caplog.at_level(logging.WARNING, logger="fer_ros.snn.runner"):
        settle = SnnRunner(params, target="sim", reset="settle", settle_steps=0)
    try:
        assert settle.layered is None and settle.emulator == "nengo"
        named = [r for r in caplog.records if "fast emulator not used" in r.getMessage()]
        assert len(named) == 1 and "settle" in named[0].getMessage()
        assert len(settle.run_batch(trains)) == 2  # the stepping path still serves batches
    finally:
        settle.close()
    with pytest.raises(ValueError, match="emulator"):
        SnnRunner(params, target="sim", emulator="lava")


KERNEL_RUN = """
import numpy as np
from fer_ros.snn.emulator import kernels
q = np.array([[5.0, 0.0]], np.float32)
c, v = np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32)
one = np.ones(2, np.float32)
spikes = np.zeros((3, 1, 2), bool)
kernels.plain_scan(q, np.zeros((3, 1), np.int64), c, v, one * 0, False, one * 0, one * -9,
                   one * 9, spikes, np.zeros((0, 0, 0), np.float32), False)
print(kernels._KEEP, spikes[:, 0, 0].tolist())
"""


@pytest.mark.parametrize("writable", [True, False])
def test_compiled_kernels_are_kept_where_they_can_be_and_run_where_they_cannot(tmp_path, writable):
    """The cache directory is $FER_ROS_CACHE/numba; where it cannot be made (here: under a
    file), the kernels still import and run, compiled anew by each process."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cache = tmp_path / "cache" if writable else blocker / "cache"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["FER_ROS_CACHE"] = str(cache)
    done = subprocess.run(
        [sys.executable, "-c", KERNEL_RUN], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # 5 a step: 10 > 9 at the second step fires and resets the membrane
    assert done.stdout.split() == [str(writable), "[False,", "True,", "False]"]
    kept = list((cache / "numba").rglob("*.nbi")) if writable else []
    assert bool(kept) == writable
