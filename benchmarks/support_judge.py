"""How often the reasoning model's yes/no judgement of "do these events support this statement?" agrees
with hand labels (`knowledge/support_judge.py`), per model, before the gate may rely on it.

    .venv/bin/python benchmarks/support_judge.py --profile local-qwen-0.5b --models-dir DIR

The cases are written for this benchmark: supported statements that abstract in other words than the
events', and unsupported ones that add a cause, an effect, a number, a tool or an outcome no event
states, or contradict the events. Reported: agreement, and the two kinds of error (a supported
statement refused; an unsupported one accepted), with the seconds per judgement.
"""

import argparse
import tempfile
import time
from pathlib import Path

from consolidation import private_stack

from athena_assets.knowledge.support_judge import supported
from resources.llamacpp.reasoning import LlamaCppReasoningResource

LOCKS = [
    "pytest hung for 30 s waiting on a row lock held by another fixture",
    "two fixtures updated the same table in opposite order and the test run stalled",
    "set lock_timeout = 5s in the test database so a stuck test fails fast",
]
CACHE = [
    "the build cache missed every time after the lockfile was regenerated",
    "cache key was computed from the whole lockfile, so any change invalidated it",
    "switched the cache key to the hash of the dependency list only",
]
TZ = [
    "a report showed yesterday's orders because the server ran in UTC and the shop in Berlin",
    "stored created_at as timestamp without time zone; comparisons broke across DST",
    "migrated created_at to timestamptz and convert to Europe/Berlin only when rendering",
]
PEERS = [
    "npm ci failed in CI with ERESOLVE on a peer dependency of eslint-plugin-react",
    "someone added --legacy-peer-deps to the CI script to get it green",
    "reverted --legacy-peer-deps and upgraded eslint-plugin-react so the peer range matches",
]
PREF = [
    "user asked for commit messages in the imperative mood",
    "user rewrote 'Added tests' to 'Add tests' in the commit message",
    "user: keep the subject line of a commit under 50 characters",
]
PORT = [
    "staging redis moved from port 6391 to 6392 because of a clash with the metrics agent",
    "updated REDIS_URL on staging to use port 6392",
]

# (events, statement, supported?)
CASES: list[tuple[list[str], str, bool]] = [
    (LOCKS, "Tests that wait on each other's locks should fail fast through a lock timeout.", True),
    (LOCKS, "Set a short lock timeout in the test database to avoid deadlocked tests hanging.", True),
    (LOCKS, "The deadlocks were caused by a bug in the PostgreSQL 15 driver.", False),
    (LOCKS, "Setting lock_timeout made the whole test suite 40% faster.", False),
    (CACHE, "A cache key over the whole lockfile is invalidated by any change to it.", True),
    (CACHE, "Key the build cache by the dependency list, not by the whole lockfile.", True),
    (CACHE, "The cache misses were fixed by moving the cache to an S3 bucket.", False),
    (CACHE, "The build cache never missed after the lockfile was regenerated.", False),
    (TZ, "Store timestamps with their time zone and convert to local time only for display.", True),
    (TZ, "Timestamps without a time zone compare wrongly across daylight saving changes.", True),
    (TZ, "The report bug was fixed by running the server in the Berlin time zone.", False),
    (TZ, "Orders were lost because the database dropped rows during the DST change.", False),
    (PEERS, "Fix peer dependency conflicts by upgrading the package, not with --legacy-peer-deps.", True),
    (PEERS, "npm ci fails with ERESOLVE when a plugin's peer range does not match.", True),
    (PEERS, "The team decided to keep --legacy-peer-deps in CI permanently.", False),
    (PEERS, "The ERESOLVE error was fixed by switching from npm to yarn.", False),
    (PREF, "The user wants short, imperative commit subject lines.", True),
    (PREF, "Commit messages should say what the commit does, in the imperative: Add, Fix, Remove.", True),
    (PREF, "The user wants every commit message to reference a Jira ticket.", False),
    (PREF, "The user prefers commit messages written in the past tense.", False),
    (PORT, "Staging redis now listens on port 6392.", True),
    (PORT, "Staging redis listens on port 6391.", False),
    (PORT, "Redis was moved to port 6392 to improve its performance.", False),
    (PORT, "A port clash with the metrics agent moved staging redis to another port.", True),
]


def main() -> None:
    """Start a private stack of the profile's models, judge every case, print the agreement."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="local", help="the models profile (models.toml) to measure")
    parser.add_argument("--models-dir", type=Path, help="reuse model files from here (default: a temp dir)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="athena-judge-") as home,
        private_stack(Path(home), args.models_dir, args.profile) as (_, _, reasoning_url),
        LlamaCppReasoningResource(urls=[reasoning_url], timeout_s=600) as reasoning,
    ):
        agree = refused = accepted = unanswered = 0
        started = time.perf_counter()
        for events, statement, label in CASES:
            verdict = supported(reasoning, events, statement)
            agree += verdict == label
            refused += label and verdict is False
            accepted += (not label) and verdict is True
            unanswered += verdict is None
            mark = "ok " if verdict == label else "BAD"
            print(f"{mark} label={label!s:5} judged={verdict!s:5} {statement}", flush=True)
        seconds = (time.perf_counter() - started) / len(CASES)
    print(
        f"{args.profile}: agreement {agree}/{len(CASES)} ({agree / len(CASES):.0%}); supported refused "
        f"{refused}, unsupported accepted {accepted}, unanswered {unanswered}; {seconds:.1f} s a judgement"
    )


if __name__ == "__main__":
    main()
