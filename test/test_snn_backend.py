"""The Loihi inference backend: loading, errors, and what infer() reports."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fer_ros.backends import create_backend
from fer_ros.backends.base import BackendSettings, BackendUnavailable, InputKind
from fer_ros.core.figures import FigureSource
from fer_ros.core.model_card import load_model_card
from fer_ros.core.spike_encoding import EncodingSettings, encode
from fer_ros.snn.runner import has_nxsdk


@pytest.fixture(scope="module")
def card():
    card = load_model_card("fer_snn_loihi.json")
    if "snn" not in card.files:
        pytest.skip("fer_snn_loihi has no SNN export yet (python -m fer_ros.training.snn_convert)")
    return card


def settings(card, **options):
    return BackendSettings(card=card, model_export="snn", options=options)


@pytest.mark.skipif(has_nxsdk(), reason="NxSDK is installed here")
def test_target_loihi_without_nxsdk_explains_how_to_get_it(card):
    with pytest.raises(BackendUnavailable, match="NxSDK") as info:
        create_backend("loihi", settings(card, target="loihi"))
    assert "sim" in str(info.value)  # and names the alternative


def test_missing_nengo_loihi_names_the_install_command(card, monkeypatch):
    monkeypatch.setitem(sys.modules, "nengo_loihi", None)  # import now raises ImportError
    with pytest.raises(BackendUnavailable, match=r'pip install nengo-loihi==1\.1\.0 "numpy<2"'):
        create_backend("loihi", settings(card))


def test_missing_snn_export_is_unavailable(card):
    with pytest.raises(BackendUnavailable, match=r"fer_ros\.training\.snn_convert"):
        create_backend("loihi", BackendSettings(card=card, model_export="no_such_export"))


def test_infer_returns_scores_spike_stats_and_modelled_energy(card):
    pytest.importorskip("nengo_loihi")
    backend = create_backend("loihi", settings(card, target="auto", timesteps=0))
    try:
        assert backend.input_kind is InputKind.SPIKES
        assert backend.device == ("loihi" if has_nxsdk() else "loihi-emulator")
        assert backend.fallback == (not has_nxsdk())
        assert backend.runtime.startswith("nengo-loihi")
        params = backend.params
        enc = EncodingSettings("rate", params.timesteps, params.dt, params.input_rate)
        rng = np.random.default_rng(0)
        faces = (rng.random((2, 48, 48)) < 0.15).astype(np.float32)
        batch = np.stack([encode(f, enc) for f in faces])
        result = backend.infer(batch)
        assert result.scores.shape == (2, len(card.classes))
        np.testing.assert_allclose(result.scores.sum(axis=1), 1.0, rtol=1e-5)
        stats = result.spike_stats
        assert stats.layer_names == ("input", *params.layer_names)
        assert stats.presentations == 2 and stats.timesteps == params.timesteps
        assert stats.layer_spikes[0] == int(batch.sum())
        assert stats.neuron_updates == 2 * params.timesteps * sum(
            layer.n_neurons for layer in params.layers
        )
        assert stats.synaptic_ops > 0
        energy = result.energy
        assert energy.source is FigureSource.MODELLED and energy.energy_j > 0
        assert energy.power_w > 0 and "Davies" in energy.model
        assert backend.infer(batch[:0]).scores.shape == (0, len(card.classes))
        with pytest.raises(ValueError, match="bool spikes"):
            backend.infer(batch.astype(np.float32))
    finally:
        backend.close()


def test_backend_in_its_own_process_answers_like_the_backend_itself(card):
    pytest.importorskip("nengo_loihi")
    from fer_ros.backends.isolated import BackendProcessError, IsolatedBackend

    params = create_backend("loihi", settings(card)).params
    enc = EncodingSettings("rate", params.timesteps, params.dt, params.input_rate)
    faces = (np.random.default_rng(1).random((2, 48, 48)) < 0.15).astype(np.float32)
    batch = np.stack([encode(f, enc) for f in faces])
    local = create_backend("loihi", settings(card))
    isolated = IsolatedBackend("loihi", settings(card))
    try:
        assert isolated.pid is not None and isolated.input_kind is InputKind.SPIKES
        assert (isolated.device, isolated.runtime, isolated.fallback) == (
            local.device,
            local.runtime,
            local.fallback,
        )
        expected, got = local.infer(batch), isolated.infer(batch)
        np.testing.assert_array_equal(got.scores, expected.scores)
        assert got.spike_stats == expected.spike_stats and got.energy == expected.energy
        with pytest.raises(ValueError, match="bool spikes"):  # bad input: the child goes on
            isolated.infer(batch.astype(np.float32))
        np.testing.assert_array_equal(isolated.infer(batch).scores, expected.scores)
        isolated._process.kill()  # the process dies under the node
        with pytest.raises(BackendProcessError, match="exited"):
            isolated.infer(batch)
    finally:
        local.close()
        isolated.close()


def test_backend_process_reports_why_the_backend_cannot_load(card):
    from fer_ros.backends.isolated import IsolatedBackend

    with pytest.raises(BackendUnavailable, match=r"fer_ros\.training\.snn_convert"):
        IsolatedBackend("loihi", BackendSettings(card=card, model_export="no_such_export"))


@pytest.mark.skipif(has_nxsdk(), reason="the tables are the emulator's")
def test_emulator_tables_kept_on_disk_give_the_same_answers(card, tmp_path, monkeypatch):
    """The second load reads the layered emulator's tables instead of building the model,
    and presents faces exactly as the built one does; a damaged file is rebuilt."""
    pytest.importorskip("nengo_loihi")
    monkeypatch.setenv("FER_ROS_CACHE", str(tmp_path))
    built = create_backend("loihi", settings(card))
    (tables,) = tmp_path.glob("*.npz")
    read = create_backend("loihi", settings(card))
    try:
        assert built._runner.sim is not None and read._runner.sim is None
        params = built.params
        enc = EncodingSettings("rate", params.timesteps, params.dt, params.input_rate)
        rng = np.random.default_rng(1)
        batch = np.stack([encode(rng.random((48, 48)), enc) for _ in range(3)])
        a, b = built.infer(batch), read.infer(batch)
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.spike_stats == b.spike_stats
    finally:
        built.close()
        read.close()
    tables.write_bytes(b"not an npz")
    again = create_backend("loihi", settings(card))
    try:
        assert again._runner.sim is not None  # rebuilt, and the file written anew
        assert again.infer(batch).scores.tolist() == a.scores.tolist()
    finally:
        again.close()
    read_again = create_backend("loihi", settings(card))
    assert read_again._runner.sim is None
    read_again.close()
