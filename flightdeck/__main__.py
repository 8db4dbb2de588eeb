"""``python -m flightdeck``: the operator CLI (see :mod:`flightdeck.cli`)."""

import sys

from flightdeck.cli import main

sys.exit(main())
