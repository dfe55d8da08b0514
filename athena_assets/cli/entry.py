"""The `athena` console script.

The command line is imported inside `main`, after Dagster's deliberate beta warnings are silenced
(`run.quiet_dagster`). Tests import the modules directly and still see the warnings.

`athena recall` needs no Dagster on its usual path, and importing Dagster alone takes longer than the
whole recall: it gets a parser of its own and imports nothing else (`recall_command.py`); so does
`athena deploy`, which drives Docker (`deploy_command.py`). Neither does
`athena backfill` when no range has anything new (`backfill_args.py`).
"""

import sys
from datetime import datetime

from athena_assets.api.app import Settings
from athena_assets.cli.run import one_command_parser, quiet_dagster, run_command


def _explain_crashes(settings: Settings, since: datetime) -> None:
    quiet_dagster()  # only after a failure: the crash report loads the stack code
    from athena_assets.cli.main import explain_crashes

    explain_crashes(settings, since)


def main() -> int:
    """Entry point of the `athena` console script."""
    if sys.argv[1:2] == ["recall"]:
        from athena_assets.cli.recall_command import add_recall_parser

        return run_command(one_command_parser(add_recall_parser), None, _explain_crashes)
    if sys.argv[1:2] == ["deploy"]:
        from athena_assets.cli.deploy_command import add_deploy_parser

        # No local stack is involved: nothing to explain after a failure.
        return run_command(one_command_parser(add_deploy_parser), None, lambda _settings, _since: None)
    if sys.argv[1:2] == ["backfill"]:
        from athena_assets.cli.backfill_args import nothing_new

        answered = nothing_new(sys.argv[2:])
        if answered is not None:
            return answered
    quiet_dagster()
    from athena_assets.cli.main import main as run_main  # after quiet_dagster: see the docstring

    return run_main()
