"""The `athena` console script: quiet Dagster's deliberate beta warnings, then run the command line.

The asset modules use beta APIs on purpose (backfill policies) and their decorators warn as they are
imported, which a user cannot act on. So the filter is set before anything imports them: the command
line is imported inside `main`, after it. Tests import the modules directly and still see the warnings.
"""

import warnings

import dagster as dg


def main() -> int:
    """Entry point of the `athena` console script."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from athena_assets.cli.main import main as run_command  # after the filter: see the docstring

    return run_command()
