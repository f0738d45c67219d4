"""``python -m benchmarks.field``: regenerate the field-accuracy report (benchmarks/field/report.py)."""

import sys

from benchmarks.field.report import main

sys.exit(main())
