"""English stop words (scikit-learn's list), imported on first use.

Importing scikit-learn takes about 2 s (it brings SciPy). Every `athena` command that runs Dagster loads
the consolidation modules with the definitions, so a module-level import made each backfill of
embeddings pay for a library only consolidation uses.
"""

from functools import cache


@cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # here: see the module doc

    return frozenset(ENGLISH_STOP_WORDS)
