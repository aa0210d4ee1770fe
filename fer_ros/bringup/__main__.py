"""``python -m fer_ros.bringup``: the same as ``fer_ros_bringup``."""

import sys

from fer_ros.bringup.main import main

if __name__ == "__main__":
    sys.exit(main())
