"""fer_ros: an ament_python package (colcon build) that also installs with pip into a venv."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "fer_ros"
# The source tree, also when colcon --symlink-install runs a link to this file from build/.
HERE = Path(__file__).resolve().parent


def requirements(path: str) -> list[str]:
    """Requirement lines of a pip requirements file (comments and includes dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in open(HERE / path, encoding="utf-8"))
    return [line for line in lines if line and not line.startswith("-")]


# Node executables are the node modules themselves (fer_ros.core.profiles names the same).
NODES = sorted(p.stem for p in (HERE / PACKAGE / "nodes").glob("*_node.py"))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/models", [f for f in glob("models/*") if not f.endswith("/README")]),
    ],
    # colcon builds rely on the ROS install for dependencies; venvs use requirements.txt.
    install_requires=["setuptools"],
    extras_require={"train": requirements("requirements-train.txt")},
    zip_safe=True,
    maintainer="fer_ros developers",
    maintainer_email="fer-ros@example.org",
    description="Real-time facial expression recognition on Loihi and edge AI accelerators",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            # ROS executables start through core.entry: a Ctrl-C while they still import
            # ends them quietly (entry.target() names each one's main)
            *(
                f"{executable} = {PACKAGE}.core.entry:{executable}"
                for executable in (
                    *NODES,
                    "fer_ros_bringup",
                    "fer_ros_record",
                    "fer_ros_replay",
                    "fer_ros_lifecycle_manager",
                )
            ),
            # the comparison rebuilds the cards' held-out split: needs the [train] extra
            f"fer_ros_compare = {PACKAGE}.compare.cli:main",
            # training, search and export need the [train] extra
            f"fer_ros_train = {PACKAGE}.training.train:main",
            f"fer_ros_search = {PACKAGE}.training.search:main",
            f"fer_ros_export = {PACKAGE}.training.reexport:main",
        ],
    },
)
