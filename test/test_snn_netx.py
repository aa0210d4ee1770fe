"""Lava-dl NetX export: file layout per the NetX HDF5 protocol, and its integer dynamics."""

from __future__ import annotations

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from toy_networks import toy_crops, toy_spec  # noqa: E402

from fer_ros.core.spike_encoding import EncodingSettings, encode  # noqa: E402
from fer_ros.snn.convert import convert  # noqa: E402
from fer_ros.snn.netx_export import MAX_VTH, MAX_WEIGHT, export_netx  # noqa: E402
from fer_ros.snn.reference import cnn_logits, conv2d  # noqa: E402


def _text(dataset) -> str:
    """Decode a string dataset the way lava-dl's NetDict does."""
    value = dataset[()]
    if getattr(value, "shape", ()) != ():
        value = value[0]
    return value.decode("ascii")


def read_netx(path):
    with h5py.File(path, "r") as f:
        layers = []
        for i in range(len(f["layer"])):
            g = f["layer"][str(i)]
            entry = {"type": _text(g["type"]), "shape": tuple(g["shape"][()])}
            for key in ("weight", "bias", "stride", "padding", "kernelSize", "inChannels"):
                if key in g:
                    entry[key] = g[key][()]
            if "neuron" in g:
                n = g["neuron"]
                entry["neuron"] = {
                    "type": _text(n["type"]),
                    **{k: n[k][()] for k in n if k != "type"},
                }
            layers.append(entry)
        return layers, int(f["simulation"]["tSample"][()])


def simulate_lava_cuba(layers, spikes):
    """Integer CUBA dynamics as Lava's LIF: u = W s (iDecay 4096), v += u + b, spike v > vth,
    reset to 0, voltage unbounded below; one step of delay per block. Returns the last
    block's voltage after the final step."""
    blocks = [b for b in layers if b["type"] in ("conv", "dense")]
    n = spikes.shape[1]
    state = [np.zeros((n, *b["shape"]), np.int64) for b in blocks]
    out = [np.zeros((n, *b["shape"]), np.int64) for b in blocks]
    for t in range(spikes.shape[0]):
        x = spikes[t - 1].astype(np.int64) if t else np.zeros_like(spikes[0], np.int64)
        new = []
        for i, b in enumerate(blocks):
            s = x if i == 0 else out[i - 1]
            w = b["weight"].astype(np.int64)
            if b["type"] == "conv":
                u = (
                    conv2d(
                        s.astype(np.float64),
                        w.astype(np.float64),
                        int(b["stride"][0]),
                        int(b["padding"][0]),
                    )
                    .round()
                    .astype(np.int64)
                )
                bias = b.get("bias", np.zeros(w.shape[0], np.int64))[None, :, None, None]
            else:
                u = s.reshape(n, -1) @ w.T
                bias = b.get("bias", np.zeros(w.shape[0], np.int64))
            v = state[i] + u + bias
            fired = v > b["neuron"]["vThMant"]
            v[fired] = 0
            state[i] = v
            new.append(fired.astype(np.int64))
        out = new
    return state[-1]


@pytest.fixture(scope="module")
def params():
    return convert(toy_spec(), toy_crops(64), "toy", max_rate=500, input_rate=1000, timesteps=60)


def test_netx_file_follows_the_hdf5_protocol(params, tmp_path):
    path = tmp_path / "toy.net"
    ints = export_netx(params, path)
    layers, t_sample = read_netx(path)
    assert t_sample == params.timesteps
    assert [b["type"] for b in layers] == ["input", "conv", "flatten", "dense", "dense"]
    assert layers[0]["shape"] == params.input_shape and "neuron" not in layers[0]
    conv = layers[1]
    assert conv["shape"] == params.layers[0].output_shape
    assert tuple(conv["kernelSize"]) == (3, 3) and tuple(conv["stride"]) == (2, 2)
    assert conv["weight"].shape == params.layers[0].weights.shape  # PyTorch layout
    assert layers[2]["shape"] == (int(np.prod(params.layers[0].output_shape)),)
    for block, layer in zip([layers[1], layers[3], layers[4]], ints, strict=True):
        neuron = block["neuron"]
        assert neuron["type"] == "CUBA" and neuron["iDecay"] == 4096 and neuron["vDecay"] == 0
        assert 1 <= neuron["vThMant"] == layer.v_th <= MAX_VTH
        assert np.abs(block["weight"]).max() <= MAX_WEIGHT
        assert np.issubdtype(block["weight"].dtype, np.integer)


def test_netx_integer_network_agrees_with_cnn(params, tmp_path):
    path = tmp_path / "toy.net"
    export_netx(params, path)
    layers, steps = read_netx(path)
    crops = toy_crops(200, seed=5)
    settings = EncodingSettings("rate", steps, params.dt, params.input_rate)
    spikes = encode(crops[:, 0], settings)[:, :, None]  # (T, n, 1, H, W)
    voltage = simulate_lava_cuba(layers, spikes)
    reference = cnn_logits(toy_spec(), crops).argmax(axis=1)
    agreement = float(np.mean(voltage.argmax(axis=1) == reference))
    assert agreement >= 0.9, agreement
