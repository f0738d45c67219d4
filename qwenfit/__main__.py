"""``python -m qwenfit``: the ``qwenfit`` command (see :mod:`qwenfit.cli`)."""

import sys

from qwenfit.cli import main

if __name__ == "__main__":
    sys.exit(main())
