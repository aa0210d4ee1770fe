"""``python -m fer_ros.compare``: see :mod:`fer_ros.compare.cli`."""

import sys

from fer_ros.compare.cli import main

sys.exit(main())
