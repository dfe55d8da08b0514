"""How well consolidation tells a change from a repetition: hand-labelled pairs of an old pattern's events
and newer events, decided the way consolidation decides (`knowledge/supersession.replaced`: words first,
then one yes/no question to a model trusted to judge), and by the question alone on every pair.

    .venv/bin/python benchmarks/change_judge.py --models-dir ~/.athena/models
    .venv/bin/python benchmarks/change_judge.py --profile local-qwen-0.5b

A change is a value, tool, weekday, version or preference put in place of the old one; a repetition,
added detail, or another subject that looks alike is not. The pairs were written for this benchmark
(none is in `changing_history.py`'s wording twice over, and the held-back history was never seen).
"""

import argparse
import tempfile
import time
from pathlib import Path

from consolidation import private_stack

from athena_assets.knowledge.ask_model import Prompting
from athena_assets.knowledge.clustering import Cluster
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.supersession import SCHEMA, question, replaced
from resources.llamacpp.reasoning import LlamaCppReasoningResource
from resources.memory.pattern_records import KnownPattern
from resources.models.manifest import models_for_profile

# (the old pattern's latest events, oldest first; newer events; is it a change?)
CASES: list[tuple[list[str], list[str], bool]] = [
    (
        ["The CI test job uses 4 pytest workers", "Set pytest -n 4 workers for the CI test job"],
        ["Reduced pytest from 4 to 2 xdist workers in CI because the runners ran out of memory"],
        True,
    ),
    (
        ["The API gateway timeout is 30 seconds", "Set the API gateway timeout to 30 seconds in the ingress"],
        ["Raised the API gateway timeout from 30 to 60 seconds for the export endpoint"],
        True,
    ),
    (
        ["Prepared the Thursday production release notes", "Production releases go out on Thursdays"],
        ["Production releases now go out on Tuesdays"],
        True,
    ),
    (
        ["The Redis cache listens on port 6391 on the dev box"],
        ["Redis cache now answers on port 6392"],
        True,
    ),
    (
        ["Added retries to the rq task queue for failed jobs", "rq worker processed the thumbnail jobs"],
        ["Switched the background task queue from rq to celery for scheduled jobs"],
        True,
    ),
    (
        ["The pre-commit hook runs black on every commit"],
        ["Replaced black with ruff format in pre-commit"],
        True,
    ),
    (
        ["The user prefers short answers without explanations"],
        ["The user changed their mind and now wants detailed answers with explanations"],
        True,
    ),
    (
        ["CI runs the test suite on Python 3.11"],
        ["Upgraded CI to run the test suite on Python 3.12"],
        True,
    ),
    (
        ["Wrapped the new checkout page in a LaunchDarkly feature flag"],
        ["Dropped LaunchDarkly: feature flags are read from environment variables instead"],
        True,
    ),
    (
        ["The nightly job runs at 02:00 UTC"],
        ["Moved the nightly job to 04:00 UTC"],
        True,
    ),
    (
        ["The docs are built with Sphinx"],
        ["Migrated the docs from Sphinx to MkDocs"],
        True,
    ),
    (
        ["Logs are kept for 14 days"],
        ["Log retention is now 30 days"],
        True,
    ),
    (
        ["The API gateway timeout is 30 seconds"],
        ["Requests longer than 30 seconds hit the API gateway timeout"],
        False,
    ),
    (
        ["PostgreSQL port 5432 is set in settings.toml"],
        ["Connected the API to PostgreSQL on port 5432"],
        False,
    ),
    (
        ["pytest runs with 4 xdist workers in CI"],
        ["pytest runs with 4 xdist workers in CI again today"],
        False,
    ),
    (
        ["The Redis cache listens on port 6391"],
        ["PostgreSQL now listens on port 5432 on the dev box"],
        False,
    ),
    (
        ["A merge to main triggered the automatic staging deploy"],
        ["Production releases now go out on Tuesdays"],
        False,
    ),
    (
        ["Sentry collects the API errors in production"],
        ["Sentry now alerted on a spike of API errors"],
        False,
    ),
    (
        ["The user likes the JetBrains Mono font"],
        ["Set JetBrains Mono as the editor font on the new laptop"],
        False,
    ),
    (
        ["Decided to use rq for the background task queue"],
        ["Added retries to the rq task queue for failed jobs"],
        False,
    ),
    (
        ["Raised the API gateway timeout from 30 to 60 seconds", "The API gateway timeout is 60 seconds"],
        ["Exports up to 60 seconds now pass the API gateway timeout"],
        False,
    ),
    (
        ["The user prefers detailed answers with explanations"],
        ["Gave a detailed explanation because the user now wants detailed answers"],
        False,
    ),
    (
        ["The docs are built with MkDocs"],
        ["Moved the MkDocs theme to material"],
        False,
    ),
    (
        ["Logs are kept for 30 days"],
        ["Moved the log archive bucket to eu-west-1 and kept 30 days of logs"],
        False,
    ),
]
_CLUSTER = Cluster(key="0" * 64, member_ids=(), by_centrality=())


def _old(events: list[str]) -> KnownPattern:
    return KnownPattern(
        pattern_id="old", title="", description="", kind="fact", confidence=1.0, method="llm", shared=0,
        evidence=len(events), similarity=1.0, recent_evidence=tuple(reversed(events)),
    )  # fmt: skip


def main() -> None:
    """Start a private stack of the profile's models, decide every pair, print the agreement."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="local", help="the models profile (models.toml) to measure")
    parser.add_argument("--models-dir", type=Path, help="reuse model files from here (default: a temp dir)")
    args = parser.parse_args()
    spec = models_for_profile(args.profile)["reasoning"]
    with (
        tempfile.TemporaryDirectory(prefix="athena-change-") as home,
        private_stack(Path(home), args.models_dir, args.profile) as (_, _, reasoning_url),
        LlamaCppReasoningResource(
            urls=[reasoning_url], timeout_s=600, prompting=spec.prompting, judges_support=True
        ) as reasoning,
    ):
        prompting = Prompting(ConsolidationConfig(), reasoning, None, args.profile)
        decided = asked = 0
        started = time.perf_counter()
        for old, new, label in CASES:
            decision = replaced(prompting, _CLUSTER, _old(old), new)
            system, prompt = question(old, new)
            answer = prompting.yes_no(_CLUSTER, system, prompt, SCHEMA, "bench")
            alone = isinstance(answer, dict) and answer.get("different") is True
            decided += decision == label
            asked += alone == label
            mark = "ok " if decision == label else "BAD"
            print(f"{mark} change={label!s:5} decided={decision!s:5} question alone={alone!s:5} {new[0]}")
        seconds = time.perf_counter() - started
    changes = sum(label for *_, label in CASES)
    print(
        f"{args.profile}: consolidation's decision {decided}/{len(CASES)}, the question alone "
        f"{asked}/{len(CASES)} ({changes} changes, {len(CASES) - changes} not); {seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
