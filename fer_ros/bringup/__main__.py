"""``python -m fer_ros.bringup``: the same as ``fer_ros_bringup``."""

from fer_ros.bringup.main import main

if __name__ == "__main__":
    main()
