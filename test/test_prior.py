"""Post-hoc logit adjustment (fer_ros.training.prior): the shift, the choice of tau on
out-of-fold logits, and a pipeline run whose checkpoint can be reused without the shift
being applied twice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra (torch)")
pytest.importorskip("sklearn", reason="training needs the [train] extra (scikit-learn)")

from fer_ros.training.checkpoint import load_checkpoint  # noqa: E402
from fer_ros.training.fit import TrainSettings, predict_logits  # noqa: E402
from fer_ros.training.model import ArchConfig, FerCnn  # noqa: E402
from fer_ros.training.pipeline import run  # noqa: E402
from fer_ros.training.prior import (  # noqa: E402
    TAUS,
    bias_shift,
    choose_tau,
    parse_tau,
    shift_output_bias,
    tau_curve,
    trained_prior,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")
CLASSES = ("common", "rare")


def test_the_shift_removes_the_learned_prior_and_is_centred() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    prior = trained_prior(labels, np.ones(2))
    assert prior == pytest.approx([0.9, 0.1])
    # square-root loss weights leave a prior of sqrt(0.9) : sqrt(0.1)
    assert trained_prior(labels, np.array([0.9, 0.1]) ** -0.5) == pytest.approx([0.75, 0.25])
    assert bias_shift(prior, 0.0) == pytest.approx([0.0, 0.0])
    shift = bias_shift(prior, 1.0)
    assert shift.sum() == pytest.approx(0.0, abs=1e-6)
    assert shift[1] - shift[0] == pytest.approx(np.log(9.0), rel=1e-5)


def test_tau_is_chosen_where_the_rare_class_comes_back() -> None:
    # Logits of a model that learned a 9:1 prior on top of a weak signal: every rare
    # face but the noisiest loses to the prior, so tau 0 has balanced accuracy near 0.5.
    rng = np.random.default_rng(0)
    labels = np.array([0] * 900 + [1] * 100)
    evidence = np.where(labels == 1, 1.0, -1.0) + rng.normal(0, 0.8, len(labels))
    logits = np.stack([np.full(len(labels), np.log(9.0)), evidence], axis=1)
    prior = trained_prior(labels, np.ones(2))
    curve = tau_curve(logits, labels, None, CLASSES, prior)
    tau = choose_tau(curve)
    by_tau = {row["tau"]: row["by_dataset"]["all"] for row in curve}
    assert by_tau[0.0]["balanced_accuracy"] < 0.6
    assert tau > 0
    assert by_tau[tau]["balanced_accuracy"] > 0.8


def test_only_the_output_bias_moves() -> None:
    model = FerCnn(ArchConfig(blocks=((4,),), dense=(8,)), 2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shift_output_bias(model, np.array([0.5, -0.5], np.float32))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == 1 and changed[0].endswith("bias")
    assert (model.state_dict()[changed[0]] - before[changed[0]]).tolist() == pytest.approx(
        [0.5, -0.5]
    )


def test_pipeline_folds_the_shift_in_once(ck_plus_path: Path, tmp_path: Path) -> None:
    cfg = ArchConfig(blocks=((4,), (8,)), dense=(16,), dropout=0.1)
    s = TrainSettings(epochs=2, class_weight_power=0.0, progress=False)  # prior as in the data
    wd = tmp_path / "wd"
    args = (ck_plus_path, cfg, s, "tiny", tmp_path, ["onnx"])
    run(*args, folds=2, subset=150, workdir=wd, logit_adjust="1.0")
    first = json.loads((tmp_path / "tiny.json").read_text())
    shift = np.asarray(list(first["logit_adjustment"]["bias_shift"].values()), np.float32)
    assert np.abs(shift).max() > 0.1
    assert [row["tau"] for row in first["logit_adjustment"]["curve_out_of_fold"]] == list(TAUS)
    assert "adjusted" in first["cross_validation"]
    deployed = load_checkpoint(wd / "tiny.pt")
    # reused with another tau: the saved shift comes off before the new one goes on
    run(*args, folds=2, subset=150, workdir=wd, logit_adjust="cv", reuse=True)
    second = json.loads((tmp_path / "tiny.json").read_text())
    tau = second["logit_adjustment"]["tau"]
    again = load_checkpoint(wd / "tiny.pt")
    x = np.random.default_rng(0).random((4, 1, 48, 48), dtype=np.float32)
    expect = (
        predict_logits(deployed.model, x)
        - shift
        + bias_shift(np.asarray(list(second["logit_adjustment"]["prior"].values())), tau)
    )
    assert predict_logits(again.model, x) == pytest.approx(expect, abs=1e-3)
    # and with tau 0 the weights as trained come back: the first run did apply its shift
    run(*args, folds=2, subset=150, workdir=wd, logit_adjust="0", reuse=True)
    raw = load_checkpoint(wd / "tiny.pt")
    assert predict_logits(deployed.model, x) - predict_logits(raw.model, x) == pytest.approx(
        np.broadcast_to(shift, (4, len(shift))), abs=1e-3
    )


def test_a_class_never_seen_gets_no_boost_and_bad_taus_are_refused() -> None:
    prior = trained_prior(np.array([0, 0, 1]), np.ones(3))  # class 2 has no sample
    shift = bias_shift(prior, 1.0)
    assert shift[2] == pytest.approx(shift[:2].min())
    assert parse_tau("cv") == "cv" and parse_tau("0.5") == 0.5
    for bad in ("-1", "none", "nan"):
        with pytest.raises(ValueError, match="--logit-adjust"):
            parse_tau(bad)
