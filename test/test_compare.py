"""fer_ros_compare end to end on a few faces, and its figures' provenance.

The comparison must come from the same code paths as the nodes: profiles read through
fer_ros.core.profiles and the inference node's settings function, power figures from
fer_ros.power's sources, Loihi energy from the backend's model, card figures from the
cards. Nothing here holds a second copy of any of them.
"""

from __future__ import annotations

import csv
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fer_ros.backends import create_backend
from fer_ros.backends.settings import settings_from_parameters
from fer_ros.compare import cli
from fer_ros.compare.accuracy import measured_accuracy
from fer_ros.compare.faces import Faces
from fer_ros.compare.loihi import GRAY_CARD
from fer_ros.compare.peers import PEERS, class_map
from fer_ros.compare.reference import CLAIMS, headline
from fer_ros.compare.runs import profile_settings, shared_classes_note
from fer_ros.core.model_card import load_model_card
from fer_ros.core.profiles import profile_parameters, profile_path
from fer_ros.power import POWER_MODELS, power_source_for_backend
from fer_ros.snn.energy import LoihiEnergyModel

CK_CLASSES = ("happy", "contempt", "fear", "surprise", "sadness", "anger", "disgust")


@pytest.fixture(scope="module")
def compared(tmp_path_factory, ck_plus_path):
    out = tmp_path_factory.mktemp("compare")
    argv = "--profiles cpu,loihi --max-faces 6 --ablation-timesteps 10,50 --latency-n 20 --quiet"
    argv = [*argv.split(), "--data", str(ck_plus_path), "--out", str(out)]
    if not any(peer.path() for peer in PEERS):
        argv.append("--no-peers")
    assert cli.main(argv) == 0
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return out, {(r["kind"], r["name"]): r for r in rows}


def test_every_output_is_written(compared):
    out, _ = compared
    for name in cli.OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    text = (out / "results.md").read_text()
    for section in ("## Devices", "## Loihi", "## The paper's figures", "## Plots"):
        assert section in text
    assert "arXiv:2403.08792" in text


def test_profiles_run_with_the_nodes_settings(compared, ck_plus_path):
    _, rows = compared
    for profile in ("cpu", "loihi"):
        name, settings, power, _ = profile_settings(profile)
        expected = settings_from_parameters(profile_parameters(profile_path(profile)))
        assert (name, settings, power) == expected  # no second reading of the profile
        row = rows[("profile", profile)]
        assert row["backend"] == name and row["export"] == settings.model_export
        assert row["model_id"] == settings.card.model_id
        card = settings.card.extra
        # the card's figures for the set compared (CK+), not those over all its sets
        ck_plus = ck_plus_path.stem
        held_out = card["held_out"]["by_dataset"][ck_plus]["accuracy"]
        assert float(row["card_held_out"]) == pytest.approx(held_out)
        if "cross_validation" in card:
            pooled = card["cross_validation"]["pooled"]["by_dataset"][ck_plus]["accuracy"]
            assert float(row["card_cv_mean"]) == pytest.approx(pooled)
        else:  # the loihi card has a held-out evaluation only (issue #19): no CV figure
            assert row["card_cv_mean"] == ""
        assert int(row["faces"]) == 6 and 0.0 <= float(row["accuracy"]) <= 1.0
        assert float(row["p95_ms"]) >= float(row["p50_ms"]) > 0


def test_power_figures_are_fer_ros_powers(compared):
    _, rows = compared
    name, settings, power = settings_from_parameters(profile_parameters(profile_path("cpu")))
    backend = create_backend(name, settings)
    source = power_source_for_backend(power, backend.fallback, backend.device)
    backend.close()
    row = rows[("profile", "cpu")]
    assert row["figure_model"] == source.description
    assert row["figure_source"] == source.kind.name
    loihi = rows[("profile", "loihi")]
    options = settings_from_parameters(profile_parameters(profile_path("loihi")))[1].options
    model = LoihiEnergyModel(static=str(options.get("energy_static", "cores")))
    assert loihi["figure_model"] == model.describe()
    assert loihi["figure_source"] == "MODELLED" and float(loihi["energy_mj"]) > 0
    assert float(loihi["cores"]) > 0 and float(loihi["chip_us"]) > 0
    assert "conv0=" in loihi["layer_sparsity"]


def test_published_figures_come_from_the_power_models(compared):
    _, rows = compared
    ratio = rows[("ratio", "power Coral/Loihi")]
    coral = POWER_MODELS["coral_usb"]
    loihi_w = float(rows[("profile", "loihi")]["power_w"])
    assert float(ratio["value"]) == pytest.approx(coral.active_w / loihi_w, rel=1e-3)
    assert coral.active_source in ratio["notes"]
    assert headline("power").citation.text == ratio["citation"]
    assert rows[("ratio", "energy Coral/Loihi")]["value"] == ""  # no Coral here: not blended


def test_ablation_uses_both_cards_at_each_timestep(compared):
    _, rows = compared
    gray = load_model_card(GRAY_CARD)
    for input_, steps in (("canny", 10), ("canny", 50), ("grayscale", 10), ("grayscale", 50)):
        row = rows[("ablation", f"{input_} T={steps}")]
        assert int(row["timesteps"]) == steps and float(row["energy_mj"]) > 0
    assert rows[("ablation", "grayscale T=50")]["model_id"] == gray.model_id
    more, less = (float(rows[("ablation", f"canny T={t}")]["energy_mj"]) for t in (50, 10))
    assert more > less  # five times the steps cost more energy


def test_reference_rows_are_all_cited(compared):
    _, rows = compared
    for claim in CLAIMS:
        assert claim.citation.url.startswith("https://arxiv.org/abs/")
        assert ("reference", f"{claim.subject}: {claim.quantity}") in rows


def test_peer_layouts_match_the_packages_source():
    """Class orders were read from the packages' source (never imported): still so."""
    for peer in PEERS:
        path = peer.path()
        if path is None:
            continue
        source = "\n".join(p.read_text() for p in path.parents[1].glob("*.py"))
        names = r".{1,24}?".join(f"[\"']{re.escape(c)}[\"']" for c in peer.classes)
        assert re.search(names, source, re.DOTALL), f"{peer.key}: {peer.classes} not in source"


def test_unmapped_classes_count_wrong():
    mapping = class_map(PEERS[0].classes, CK_CLASSES)  # angry, disgust, ..., neutral
    assert list(mapping) == [5, 6, 2, 0, 4, 3, -1]
    labels = np.array([0, 1, 2])
    got = measured_accuracy(labels, np.array([0, -1, -1]), CK_CLASSES)
    assert got.accuracy == pytest.approx(1 / 3)
    assert got.recall["contempt"] == 0.0 and math.isnan(got.recall["anger"])


def test_a_peers_neutral_is_ours_where_the_card_has_neutral():
    classes = (*CK_CLASSES, "neutral")
    fer, facex = (class_map(peer.classes, classes) for peer in PEERS)
    assert list(fer) == [5, 6, 2, 0, 4, 3, 7]  # angry, disgust, ..., neutral
    assert list(facex) == [5, 6, 2, 0, 7, 4, 3]  # ..., neutral, sadness, surprised
    assert 1 not in fer and 1 not in facex  # contempt has no peer class either way
    # a peer's neutral on a neutral face is right; on a seven-class card it counts wrong
    labels = np.array([7, 7, 1])
    got = measured_accuracy(labels, fer[np.array([6, 3, 6])], classes)
    assert got.accuracy == pytest.approx(1 / 3)
    assert got.recall["neutral"] == 0.5 and got.recall["contempt"] == 0.0
    seven = measured_accuracy(
        np.array([0]), class_map(PEERS[0].classes, CK_CLASSES)[[6]], CK_CLASSES
    )
    assert seven.accuracy == 0.0 and seven.recall["happy"] == 0.0


def test_the_peer_note_names_what_is_left_unmapped():
    peer = PEERS[0]  # angry, disgust, fear, happy, sad, surprise, neutral
    # faces happy, happy, contempt; the peer leans neutral on the first, happy on the rest
    scores = np.array([[0, 0, 0, 0.3, 0, 0, 0.7], np.eye(7)[3], np.eye(7)[3]])
    happy_happy_contempt = np.array([0, 0, 1])
    notes = {}
    for classes in (CK_CLASSES, (*CK_CLASSES, "neutral")):
        faces = Faces(np.zeros((3, 48, 48), np.uint8), happy_happy_contempt, classes, "toy")
        notes[len(classes)] = shared_classes_note(
            peer, scores, class_map(peer.classes, classes), faces
        )
    # seven classes: the peer's neutral is dropped, its best shared class (happy) counts
    assert notes[7] == (
        "classes mapped by name; counted wrong: peer neutral (not a class of the model), "
        "ours contempt (no peer class, 1 faces); on the 6 shared classes only: 1.000"
    )
    # eight: its neutral is ours, so leaning neutral on a happy face is simply wrong
    assert notes[8] == (
        "classes mapped by name; counted wrong: peer - (not a class of the model), "
        "ours contempt (no peer class, 1 faces); on the 7 shared classes only: 0.500"
    )


def test_compare_imports_without_ros():
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        from importlib.abc import MetaPathFinder

        class NoRos(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in ("rclpy", "rcl_interfaces") or top.endswith(("_msgs", "_srvs")):
                    raise ImportError(f"{name} is made unimportable by this test")

        sys.meta_path.insert(0, NoRos())
        import fer_ros.compare
        for info in pkgutil.walk_packages(fer_ros.compare.__path__, "fer_ros.compare."):
            if info.name != "fer_ros.compare.__main__":
                importlib.import_module(info.name)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_missing_data_is_reported_not_crashed(tmp_path):
    out = tmp_path / "out"
    argv = ["--profiles", "cpu", "--no-peers", "--ablation-timesteps", "", "--quiet"]
    argv += ["--data", str(tmp_path / "none.npz"), "--out", str(out)]
    assert cli.main(argv) == 1  # nothing measured
    assert "dataset not found" in (out / "results.md").read_text()
    assert Path(out / "results.csv").is_file()
