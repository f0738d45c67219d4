"""``python -m benchmarks.speed.fit``: fit, leave-one-source-out, report (see fit.py)."""

from benchmarks.speed.fit.fit import main

raise SystemExit(main())
