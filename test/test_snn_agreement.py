"""The committed SNN agrees with its CNN on held-out CK+ crops (nengo-loihi emulator)."""

from __future__ import annotations

import pytest

pytest.importorskip("nengo_loihi")

from fer_ros.core.cnn_spec import load_cnn_spec
from fer_ros.core.model_card import load_model_card
from fer_ros.snn.convert import file_digest
from fer_ros.snn.evaluate import evaluate
from fer_ros.snn.params import load_snn_params
from fer_ros.training.card_data import card_split

# Per card: both are Loihi-aware (fine-tuned through the exact emulator) and disagree with
# their CNN on borderline faces (~1-2 spikes per neuron per face at their energy budget);
# measured on every held-out face of both data sets: 90.9 % (grayscale) and 87.5 % (Canny,
# whose sparser input leaves fewer spikes to decide by). The exact recorded figure is
# asserted below; these floors say what the cards promise.
MIN_AGREEMENT = {"fer_snn_loihi.json": 0.90, "fer_snn_loihi_canny.json": 0.85}


@pytest.fixture(scope="module", params=list(MIN_AGREEMENT))
def model(request, ck_plus_path):
    card = load_model_card(request.param)
    if "snn" not in card.files:
        pytest.skip("fer_snn_loihi has no SNN export yet (python -m fer_ros.training.snn_convert)")
    params = load_snn_params(card.file("snn"))
    spec_path = card.file("cnn_spec")
    assert params.extra.get("cnn_spec_sha1") == file_digest(spec_path), (
        "the SNN was converted from another CNN; rerun "
        "python -m fer_ros.training.snn_convert --card fer_snn_loihi.json"
    )
    _, held_out = card_split(card, ck_plus_path, every_set=True)  # the card's figures' faces
    return card, params, load_cnn_spec(str(spec_path)), held_out


def test_held_out_groups_never_calibrated_the_snn(model):
    card, params, _, held_out = model
    train, _ = card_split(card)
    assert not set(train.groups) & set(held_out.groups)
    assert params.extra["calibration_crops"] <= len(train.x)


def test_snn_agrees_with_cnn_at_configured_timesteps(model):
    card, params, spec, held_out = model
    result = evaluate(params, spec, held_out.x, held_out.y, params.timesteps)
    assert result.n == len(held_out.x) >= 100
    assert result.agreement >= MIN_AGREEMENT[card.path.name], result.as_dict()
    # The card's figures are what the emulator gives today, not a hope.
    recorded = card.extra["snn"]["held_out_emulator"]
    assert recorded["timesteps"] == params.timesteps
    assert result.agreement == pytest.approx(recorded["agreement_with_cnn"], abs=1e-3)
    assert result.accuracy == pytest.approx(recorded["accuracy"], abs=1e-3)
    assert result.accuracy > 3 / len(card.classes)  # far above chance on unseen sequences
