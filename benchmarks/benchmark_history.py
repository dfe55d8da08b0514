"""Where the backfill benchmark's partitions start, set before any asset module is imported.

The daily partitions are defined when `athena_assets.defs.partitions` is imported, from
ATHENA_HISTORY_START; a benchmark history of up to seven years ending yesterday must fall inside them.
Imported first by `backfill.py` (before Dagster and the asset modules) for that reason.
"""

import os

BENCH_HISTORY_START = "2019-01-01"
os.environ["ATHENA_HISTORY_START"] = BENCH_HISTORY_START
