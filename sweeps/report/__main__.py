"""`python -m sweeps.report [RUN_ID] [--top N]`: see sweeps.report.table."""

import sys

from sweeps.report.table import main

sys.exit(main())
