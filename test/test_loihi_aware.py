"""Loihi-aware training (fer_ros.training.loihi_aware) on a small CK+ subset.

CK+ crops are read from shared/data at test time (never committed); the tests skip when
the file, torch or nengo-loihi is absent. CI-fast: well under a minute together.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra (torch)")
pytest.importorskip("sklearn", reason="training needs the [train] extra (scikit-learn)")
pytest.importorskip("nengo_loihi", reason='needs nengo-loihi==1.1.0 "numpy<2"')

from fer_ros.core.model_card import CannySettings  # noqa: E402
from fer_ros.core.preprocessing import preprocess_crops  # noqa: E402
from fer_ros.core.spike_encoding import EncodingSettings, encode  # noqa: E402
from fer_ros.snn.reference import cnn_logits  # noqa: E402
from fer_ros.snn.runner import SnnRunner  # noqa: E402
from fer_ros.training import graph  # noqa: E402
from fer_ros.training import loihi_aware as la  # noqa: E402
from fer_ros.training.data import load_dataset  # noqa: E402
from fer_ros.training.model import ArchConfig  # noqa: E402
from fer_ros.training.pipeline import group_subset  # noqa: E402

TINY = ArchConfig(
    blocks=((4,), (8,)),
    dense=(16,),
    dropout=0.1,
    downsample="stride",
    batchnorm=True,
    conv_bias=False,
)
STEPS = 64


@pytest.fixture(scope="module")
def trained(ck_plus_path: Path):
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    ds = group_subset(load_dataset(ck_plus_path), 120, seed=0)
    s = la.AwareSettings(
        preprocessing="grayscale",
        timesteps=STEPS,
        epochs=15,
        lr=3e-3,
        stage1_mode="relu",
        finetune_epochs=3,
        finetune_lr=1e-3,
        distill=1.0,  # the SNN is fine-tuned to answer as its CNN (KD, temperature 1)
        distill_temp=1.0,
        mixup_alpha=0.0,  # these three: the recipe this test was written for, not the CLI's
        finetune_energy_weight=0.0,
        energy_target_uj=0.0,
        seed=0,
    )
    x = preprocess_crops(ds.images, "grayscale", CannySettings())
    model = la.train_loihi_aware(ds.images, ds.labels, len(ds.classes), TINY, s, calibration=x)
    params = la.to_snn_params(model.net, "tiny_aware", x)
    return model, params, x, ds.labels


def _emulate(params, x: np.ndarray):
    runner = SnnRunner(params, target="sim")
    settings = EncodingSettings("rate", params.timesteps, params.dt, params.input_rate)
    try:
        return [runner.run(encode(crop[0], settings)) for crop in x]
    finally:
        runner.close()


def test_exact_simulation_matches_the_emulator(trained) -> None:
    """simulate_exact (used in the training loop) gives nengo-loihi's spikes and read-out."""
    model, params, x, _ = trained
    crops = x[:16]
    shown = _emulate(params, crops)
    counts, readout = la.simulate_exact(
        model.net, la.encode_rate(torch.from_numpy(crops), params.timesteps)
    )
    for i in range(len(params.layers) - 1):
        emulator = np.stack([p.layer_counts[i] for p in shown])
        ours = counts[i].flatten(1).numpy() * params.timesteps
        np.testing.assert_array_equal(np.rint(ours), emulator)
    emulator_out = np.stack([p.readout() for p in shown])
    # the converted read-out (offset, scaled to an integrator) from the SNN file itself
    _, converted = la.simulate_exact(
        la.from_snn_params(params),
        la.encode_rate(torch.from_numpy(crops), params.timesteps),
        params=params,
    )
    np.testing.assert_allclose(converted.numpy() * params.timesteps, emulator_out, atol=1e-6)
    np.testing.assert_array_equal(readout.numpy().argmax(1), emulator_out.argmax(1))


def test_loihi_aware_snn_agrees_with_its_cnn(trained) -> None:
    """The converted SNN, run in nengo-loihi's emulator, answers as its CNN on >= 98 %."""
    model, params, x, _ = trained
    spec = graph.to_cnn_spec(graph.fold(model.cnn.eval()), (1, *x.shape[2:]))
    cnn = cnn_logits(spec, x).argmax(1)
    snn = np.array([int(np.argmax(p.readout())) for p in _emulate(params, x)])
    assert np.mean(snn == cnn) >= 0.98, f"agreement {np.mean(snn == cnn):.3f}"


def test_staircase_is_the_reset_to_zero_rate() -> None:
    """1/(floor(1/u)+1) spikes per step, T-step quantised, as a float IF neuron gives."""
    u = torch.tensor([0.0, 0.07, 0.2, 0.34, 0.5, 0.99, 1.0, 1.5])
    rate = la.staircase(u, 20)
    v = torch.zeros_like(u)
    spikes = torch.zeros_like(u)
    for _ in range(20):
        v = v + u
        s = v > 1.0
        spikes += s
        v = torch.where(s, torch.zeros_like(v), v)
    torch.testing.assert_close(rate, spikes / 20)


def test_avgpool_folds_into_the_next_conv() -> None:
    """conv(avgpool2(x)) == one conv with a 6x6 / stride-2 kernel: pooling costs no neurons."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    x = torch.from_numpy(rng.normal(size=(1, 2, 12, 12)).astype(np.float32))
    ref = torch.nn.functional.conv2d(
        torch.nn.functional.avg_pool2d(x, 2), torch.from_numpy(w), padding=1
    )
    big, stride, pad = la.fold_avgpool_into_conv(w, padding=1)
    out = torch.nn.functional.conv2d(x, torch.from_numpy(big), stride=stride, padding=pad)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_a_logit_shift_moves_both_read_outs_and_a_saved_model_comes_back_as_trained(
    trained, tmp_path: Path
) -> None:
    model, _, x, _ = trained
    n = model.net.weights[-1].shape[0]
    shift = np.linspace(-1.0, 1.0, n).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        net_before = model.net.rate_forward(xt).numpy()
        cnn_before = model.cnn(xt).numpy()
        shifted = copy.deepcopy(model)
        la.shift_logits(shifted.cnn, shifted.net, shift)
        assert shifted.net.rate_forward(xt).numpy() - net_before == pytest.approx(
            np.broadcast_to(shift, net_before.shape), abs=1e-4
        )
        assert shifted.cnn(xt).numpy() - cnn_before == pytest.approx(
            np.broadcast_to(shift, cnn_before.shape), abs=1e-4
        )
    path = tmp_path / "tiny_aware.pt"
    torch.save(
        {
            "cnn": shifted.cnn.state_dict(),
            "snn": shifted.net.state_dict(),
            "cfg": TINY.to_json(),
            "settings": {k: v for k, v in asdict(shifted.settings).items() if k != "progress"},
            "output_bias_shift": shift.tolist(),
            "test_groups_sha1": "0" * 12,
            "classes": [f"c{i}" for i in range(n)],
            "block_shapes": [list(b) for b in model.net.block_shapes],
        },
        path,
    )
    back, saved = la.load_aware(path, tuple(f"c{i}" for i in range(n)))
    assert back.net.block_shapes == model.net.block_shapes and saved["test_groups_sha1"]
    with torch.no_grad():
        assert back.net.rate_forward(xt).numpy() == pytest.approx(net_before, abs=1e-4)
        assert back.cnn(xt).numpy() == pytest.approx(cnn_before, abs=1e-4)
    with pytest.raises(ValueError, match="trained on classes"):
        la.load_aware(path, tuple(f"d{i}" for i in range(n)))
