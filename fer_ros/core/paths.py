"""Where the installed package keeps its share files (config/, launch/, models/), where
the labelled face crops are (:func:`data_path`), and where it may cache what it derives
(:func:`cache_dir`)."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "fer_ros"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout: fer_ros/core/paths.py
DATA_ENV = "FER_ROS_DATA"
DATA_FILE = "ck_plus_48_dev.npz"  # the CK+ development set (research use, never committed)
CACHE_ENV = "FER_ROS_CACHE"  # directory; "off" disables the cache


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The package's share directory.

    ``FER_ROS_SHARE`` overrides; then the ament index (installed package, as ``ros2
    launch`` sees it); then the running interpreter's prefix (a pip-installed venv without
    ``AMENT_PREFIX_PATH``); then the source tree, so scripts also run from a checkout.
    """
    override = os.environ.get("FER_ROS_SHARE")
    if override:
        return Path(override)
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        try:
            return Path(get_package_share_directory(PACKAGE))
        except (OSError, PackageNotFoundError, KeyError, ValueError):
            pass
    except ImportError:
        pass
    prefix_share = Path(sys.prefix) / "share" / PACKAGE
    if (prefix_share / "package.xml").is_file():
        return prefix_share
    return _SOURCE_ROOT


def models_dir() -> Path:
    return share_dir() / "models"


def config_dir() -> Path:
    return share_dir() / "config"


def data_path() -> Path:
    """The labelled face crops used where no ``--data`` (or ``data`` argument) is given.

    ``FER_ROS_DATA`` (a file) overrides; otherwise ``shared/data/ck_plus_48_dev.npz``
    beside the checkout (``<checkout>/../shared/data/``), found from this file's location.
    """
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    return _SOURCE_ROOT.parent / "shared" / "data" / DATA_FILE


def cache_dir() -> Path | None:
    """$FER_ROS_CACHE, else $XDG_CACHE_HOME/fer_ros or ~/.cache/fer_ros; None if off.

    What is kept there is derived from shipped files only (emulator tables, compiled
    kernels) and is rebuilt when missing or unreadable.
    """
    value = os.environ.get(CACHE_ENV, "")
    if value.lower() == "off":
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / PACKAGE
