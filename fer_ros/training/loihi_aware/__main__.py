"""``python -m fer_ros.training.loihi_aware``: see :mod:`.cli`."""

from fer_ros.training.loihi_aware.cli import main

raise SystemExit(main())
