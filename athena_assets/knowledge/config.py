"""The run configuration of `consolidated_patterns`: clustering, prompt budget, answer bounds, merging.

Every field has a default that suits the local stack; the UI's launchpad shows the descriptions.
"""

from datetime import date, timedelta

import dagster as dg
from pydantic import Field


class ConsolidationConfig(dg.Config):
    """How `consolidated_patterns` clusters a day and asks the reasoning model (run config)."""

    similarity_threshold: float = Field(
        default=0.7, gt=0, le=1, description="Least average cosine similarity of a cluster's events."
    )
    min_cluster_size: int = Field(default=3, ge=2, description="Fewest events a cluster needs.")
    recurring_similarity: float = Field(
        # Measured on the sample with all-MiniLM-L6-v2: a fix or preference noted again on a later day
        # scores 0.84-0.87 against its first note; two events of different themes stay below 0.7.
        default=0.8,
        gt=0,
        le=1,
        description="Least average cosine similarity of fewer than min_cluster_size events on different "
        "days for them to count as a recurring theme (a near-repeat); 1 keeps only exact repeats.",
    )
    lookback_days: int = Field(
        # A week: a theme that recurs over several days is one cluster, not several too small to count.
        default=6,
        ge=0,
        description="Earlier days whose similar events may join the day's clusters.",
    )
    recurring_lookback_days: int = Field(
        # Three weeks: a subject restated a few times a week in varied words repeats one of its sentences
        # only every week or two, after the look-back above has let go of the first.
        default=21,
        ge=0,
        description="Earlier days whose near-repeats (recurring_similarity) of the day's events may join "
        "its clusters; at most lookback_days takes the near-repeats of the look-back only.",
    )
    max_patterns_per_cluster: int = Field(
        # One: a small model asked for three fills all three slots with the same evidence.
        default=1,
        ge=1,
        le=10,
        description="Patterns asked per cluster.",
    )
    max_tokens: int = Field(default=512, ge=1, description="Answer budget of one reasoning call.")
    max_prompt_tokens: int = Field(
        default=3072, ge=64, description="Prompt budget; a larger cluster keeps its most central events."
    )
    max_event_chars: int = Field(default=600, ge=20, description="Characters of one event shown.")
    title_chars: int = Field(default=60, ge=10, description="Longest title the schema allows.")
    description_chars: int = Field(default=200, ge=20, description="Longest description allowed.")
    merge_threshold: float = Field(
        default=0.9, gt=0, le=1, description="Least cosine similarity of pattern texts for a reinforcement."
    )
    merge_evidence_threshold: float = Field(
        default=0.6,
        ge=-1,
        le=1,
        description="Least cosine similarity of the evidence events' mean vectors for a reinforcement "
        "(a small model gives unrelated clusters the same generic title).",
    )
    reinforce_known: bool = Field(
        default=True,
        description="A cluster whose events are mostly evidence of one pattern of earlier days reinforces "
        "that pattern without asking the model (a theme recurring all week is asked about once).",
    )
    known_similarity: float = Field(
        # Measured on the sample with all-MiniLM-L6-v2: centroids of three events of one theme have a
        # median cosine of 0.80, of two themes a 99th percentile of 0.57.
        default=0.7,
        gt=0,
        le=1,
        description="Least cosine similarity of a cluster's mean vector and an earlier pattern's evidence "
        "for the cluster to reinforce that pattern without asking the model (with reinforce_known).",
    )
    track_changes: bool = Field(
        default=True,
        description="Close a current pattern when newer events replace what it states (a value changed, a "
        "tool replaced, a decision reversed) instead of reinforcing it or leaving both current.",
    )
    subject_similarity: float = Field(
        # Below similarity_threshold: a pattern and its replacement share a subject, not a value (the
        # port moved, the tool replaced), so they sit further apart than two events of one theme.
        default=0.6,
        gt=0,
        le=1,
        description="Least cosine similarity of a new pattern's text, or its evidence, to a current "
        "pattern's for the new one to be checked as its replacement (with track_changes).",
    )
    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature of the first attempt.")
    retry_temperature: float = Field(
        default=0.3, ge=0, description="Temperature of the one retry after an unusable answer."
    )
    constrain_evidence: bool = Field(
        default=True, description="Limit evidence to the shown labels in the grammar (an enum)."
    )
    reuse_answers: bool = Field(
        default=True,
        description="Reuse the stored answer to an identical request (same model, prompt, schema, sampling) "
        "instead of asking again; False asks afresh and stores the new answer.",
    )

    def window_start(self, day: date) -> date:
        """The first day whose events may join `day`'s clusters (look-back or near-repeats)."""
        return day - timedelta(days=max(self.lookback_days, self.recurring_lookback_days))
