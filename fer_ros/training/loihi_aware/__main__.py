"""``python -m fer_ros.training.loihi_aware``: see :mod:`.cli`."""

import sys

from fer_ros.training.loihi_aware.cli import main

if __name__ == "__main__":
    sys.exit(main())
