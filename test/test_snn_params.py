"""SNN parameter files, conversion and Loihi resource limits (no simulation)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from toy_networks import toy_crops, toy_spec

from fer_ros.snn.builder import conv_geometry, nengo_conv_kernel
from fer_ros.snn.convert import choose_block_shape, convert, dense_block_bits
from fer_ros.snn.params import (
    MAX_BLOCK_NEURONS,
    MAX_CORES_PER_CHIP,
    load_snn_params,
    save_snn_params,
)
from fer_ros.snn.reference import cnn_logits, conv2d


@pytest.fixture(scope="module")
def params():
    return convert(toy_spec(), toy_crops(64), "toy", max_rate=500, input_rate=1000, timesteps=40)


def test_params_round_trip_without_pickle(params, tmp_path):
    path = tmp_path / "toy_snn.npz"
    save_snn_params(params, path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert "meta" in data
    back = load_snn_params(path)
    assert back.layer_names == params.layer_names == ("conv0", "dense0", "output")
    for key in ("model_id", "input_shape", "timesteps", "dt", "max_rate", "input_rate"):
        assert getattr(back, key) == getattr(params, key)
    assert back.amplitude == pytest.approx(1 / 500)
    assert back.output_offset == pytest.approx(params.output_offset)
    for a, b in zip(back.layers, params.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)
        assert (a.rate_scale, a.block_shape, a.stride, a.padding) == (
            b.rate_scale,
            b.block_shape,
            b.stride,
            b.padding,
        )


def test_validation_rejects_inconsistent_files(params, tmp_path):
    wrong_shape = replace(params.layers[0], output_shape=(4, 7, 6))
    with pytest.raises(ValueError, match="output shape"):
        replace(params, layers=(wrong_shape, *params.layers[1:])).validate()
    with pytest.raises(ValueError, match="one spike per step"):
        replace(params, max_rate=2000.0).validate()
    wrong_bias = replace(params.layers[1], bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="bias shape"):
        replace(params, layers=(params.layers[0], wrong_bias, params.layers[2])).validate()
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.asarray('{"format": "something else"}'))
    with pytest.raises(ValueError, match="not an SNN parameter file"):
        load_snn_params(path)


def test_block_shapes_respect_core_limits():
    for shape in [(8, 24, 24), (16, 12, 12), (32, 6, 6), (64, 48, 48), (3000,), (7,)]:
        block = choose_block_shape(shape, n_inputs=2304)
        assert int(np.prod(block)) <= MAX_BLOCK_NEURONS
        assert all(1 <= b <= n for b, n in zip(block, shape, strict=True))
    # a dense layer is split for synaptic memory even when its neurons would fit one core
    block = choose_block_shape((64,), n_inputs=2304)
    assert block[0] < 64 and dense_block_bits(2304, block[0]) <= 16384 * 64
    spec_params = convert(toy_spec(size=48), toy_crops(8, size=48), "big")
    assert spec_params.n_cores <= MAX_CORES_PER_CHIP
    huge = replace(spec_params.layers[0], block_shape=(4, 24, 24))  # 2304 neurons
    with pytest.raises(ValueError, match="at most 1024"):
        replace(spec_params, layers=(huge, *spec_params.layers[1:])).validate()


def test_conversion_scales_follow_data_based_normalisation(params):
    spec = toy_spec()
    conv, hidden, _ = params.layers
    lam0, lam1 = conv.rate_scale, hidden.rate_scale
    np.testing.assert_allclose(
        hidden.weights, spec.layers[1].weights * 500 * lam0 / lam1, rtol=1e-5
    )
    np.testing.assert_allclose(hidden.bias, spec.layers[1].bias * 500 / lam1, rtol=1e-5)
    # the output offset is argmax-neutral: same ranking as the CNN's logits
    logits = cnn_logits(spec, toy_crops(16))
    assert np.array_equal(np.argsort(logits + params.output_offset), np.argsort(logits))


@pytest.mark.parametrize(
    "size,kernel,stride,pad",
    [(48, 3, 2, 1), (24, 3, 2, 1), (12, 3, 1, 1), (48, 3, 2, 0), (48, 4, 2, 1), (10, 5, 1, 2)],
)
def test_nengo_conv_layout_matches_pytorch_padding(size, kernel, stride, pad):
    """The zero taps added for nengo's 'same' padding reproduce PyTorch's conv exactly."""
    import nengo

    from fer_ros.snn.params import SnnLayer

    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 1, kernel, kernel)).astype(np.float32)
    x = rng.random((1, 1, size, size)).astype(np.float32)
    expect = conv2d(x, w, stride, pad)[0]
    layer = SnnLayer(
        "c",
        "conv",
        w,
        np.zeros(2, np.float32),
        (1, size, size),
        expect.shape,
        1.0,
        expect.shape,
        stride,
        pad,
    )
    kernel_nengo, mode = nengo_conv_kernel(layer)
    assert mode == conv_geometry(size, kernel, stride, pad)[0]
    conv = nengo.Convolution(
        2,
        (1, size, size),
        kernel_size=kernel_nengo.shape[:2],
        strides=(stride, stride),
        padding=mode,
        channels_last=False,
        init=kernel_nengo,
    )
    with nengo.Network() as net:
        a = nengo.Node(x.ravel())
        b = nengo.Node(size_in=conv.size_out)
        nengo.Connection(a, b, transform=conv, synapse=None)
        probe = nengo.Probe(b)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.step()
    got = sim.data[probe][0].reshape(expect.shape)
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)
