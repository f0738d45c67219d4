"""``python -m benchmarks.artifacts``: check every planned command against the artifact catalog."""

import sys

from benchmarks.artifacts.coverage import main

sys.exit(main())
