"""``python -m fer_ros.bringup``: the same as ``fer_ros_bringup``."""

import sys

from fer_ros.core.entry import start, target

if __name__ == "__main__":
    sys.exit(start(target("fer_ros_bringup")))
