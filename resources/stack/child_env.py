"""The environment the stack's servers are started with: what a program needs to run, nothing else.

A child inherits its parent's environment by default, and anyone who may read `/proc/<pid>/environ`
of a llama-server or the postmaster would find the caller's secrets there (`LLAMACPP_API_KEY`, a
database URL with its password). The servers get their key from a 0600 file instead.
"""

import os

# Locale, time zone, search path and temporary directory; the rest stays with the caller.
PASSED_VARIABLES = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "LD_LIBRARY_PATH",
)


def child_environment() -> dict[str, str]:
    """The variables of `PASSED_VARIABLES` this process has, for a server it starts."""
    return {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
