"""A configuration error is one line naming the file and the problem, and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fer_ros.core.model_card import load_model_card
from fer_ros.snn.params import load_snn_params

BAD_PROFILES = {
    "invalid_yaml": ("/**/inference: [\n", "is not readable YAML"),
    "wrong_type": (
        '/**/inference:\n  ros__parameters:\n    num_threads: "two"\n',
        "inference.num_threads='two' is not a int",
    ),
    "unknown_node": ("/**/detector:\n  ros__parameters:\n    x: 1\n", "unknown node(s) detector"),
    "unknown_parameter": (
        "/**/inference:\n  ros__parameters:\n    threads: 2\n",
        "inference has no parameter 'threads'",
    ),
    "illegal_value": (
        "/**/inference:\n  ros__parameters:\n    backend: tensorflow\n",
        "backend='tensorflow' is not one of",
    ),
}


def bringup(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fer_ros.bringup", *args, "--duration", "1", "--quiet"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", list(BAD_PROFILES))
def test_a_bad_profile_is_one_line_naming_the_file(tmp_path: Path, case: str):
    text, problem = BAD_PROFILES[case]
    profile = tmp_path / f"{case}.yaml"
    profile.write_text(text)
    done = bringup(str(profile))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(profile) in lines[0] and problem in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_an_unknown_profile_is_one_line(tmp_path: Path):
    done = bringup("no_such_profile")
    assert done.returncode == 2 and "no profile 'no_such_profile'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path: Path):
    profile = tmp_path / "bad.yaml"
    profile.write_text(BAD_PROFILES["wrong_type"][0])
    done = bringup(str(profile), "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_a_source_without_any_frame_exits_non_zero(tmp_path: Path):
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_text("not an image")
    done = bringup("cpu", "--source", str(tmp_path))
    assert done.returncode == 1 and "yielded no frame" in done.stderr


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"model_id": "x",\n', "is not valid JSON"),
        ('{"model_id": "x", "files": {}}', "has no 'classes'"),
        ("[1, 2]", "is not a JSON object"),
    ],
)
def test_a_bad_model_card_names_its_file(tmp_path: Path, text: str, problem: str):
    card = tmp_path / "card.json"
    card.write_text(text)
    with pytest.raises(ValueError, match=problem) as raised:
        load_model_card(card)
    assert str(card) in str(raised.value)


def test_a_truncated_snn_file_names_itself(tmp_path: Path):
    from fer_ros.core.paths import models_dir

    whole = (models_dir() / "fer_snn_loihi_snn.npz").read_bytes()
    truncated = tmp_path / "cut_snn.npz"
    truncated.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(ValueError, match="is unreadable or incomplete") as raised:
        load_snn_params(truncated)
    assert str(truncated) in str(raised.value)
