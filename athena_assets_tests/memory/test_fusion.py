"""Hybrid recall's fusion (`resources/memory/fusion.py`): scores on one scale, a branch weighted by how
far its best hit stands out, and a candidate both branches rank high ahead of one only one branch found;
an event that holds only a common word does not outrank one whose rare words the question repeats."""

from __future__ import annotations

import pytest

from resources.memory.fusion import TEXT_PRIOR, confidence, fused, normalised, shares_of_best, text_weight

# A branch whose best hit stands out, and one whose hits are all alike (ten each: a full depth).
SURE = {"a": 9.0} | {f"s{i}": 2.0 - i / 10 for i in range(9)}
FLAT = {"a": 0.51} | {f"f{i}": 0.50 - i / 1000 for i in range(9)}


def test_scores_are_mapped_by_their_own_spread() -> None:
    ten = {f"e{i}": 1.0 if i % 2 else 3.0 for i in range(10)}  # mean 2, standard deviation 1
    assert normalised(ten) == pytest.approx(
        {key: 2 / 6 if value == 1.0 else 4 / 6 for key, value in ten.items()}
    )
    assert normalised({f"e{i}": 7.0 for i in range(10)}) == {f"e{i}": 0.5 for i in range(10)}
    assert normalised({}) == {}


def test_a_branch_whose_best_hit_stands_out_is_surer_than_a_flat_one() -> None:
    assert confidence(SURE) > confidence(FLAT)
    assert confidence({f"e{i}": 1.0 for i in range(10)}) == pytest.approx(1e-3)  # nothing stands out
    # One hit among nothing (a rare word that one event holds): as sure as a branch can be.
    assert confidence({"only": 4.2}) == pytest.approx(3.0)
    assert normalised({"only": 4.2}) == pytest.approx({"only": 1.0})


def test_the_word_branch_weighs_by_its_prior_and_both_confidences() -> None:
    assert text_weight(SURE, SURE) == pytest.approx(TEXT_PRIOR)
    assert text_weight(FLAT, SURE) > TEXT_PRIOR > text_weight(SURE, FLAT)
    assert text_weight(SURE, {}) == 0.0  # no word matched: meaning alone
    assert text_weight({}, SURE) == 1.0  # no vector (none stored for this model): words alone


def test_a_word_branch_that_cannot_tell_its_hits_apart_leaves_the_order_to_meaning() -> None:
    vector = {"v1": 0.9, **{f"v{i}": 0.5 - i / 100 for i in range(2, 10)}}
    # Only a word every candidate holds matched: equal scores, and the best of them is a candidate too.
    text = {f"t{i}": 2.0 for i in range(9)} | {"v9": 2.0}
    assert text_weight(vector, text) < 0.01
    scores = fused(vector, text, vector_limit=50)
    assert max(scores, key=scores.__getitem__) == "v1"


def test_an_event_both_branches_found_beats_one_found_by_one() -> None:
    vector = {"both": 0.8, "meaning": 0.82, "x": 0.3, "y": 0.31, "z": 0.29}
    text = {"both": 6.0, "words": 6.1, "p": 1.0, "q": 1.1, "r": 0.9}
    scores = fused(vector, text, vector_limit=50)
    assert sorted(scores, key=scores.__getitem__, reverse=True)[0] == "both"


def test_word_scores_are_shares_of_the_best() -> None:
    assert shares_of_best({"rare": 8.0, "name only": 0.4}) == {"rare": 1.0, "name only": 0.05}
    assert shares_of_best({"x": 0.0}) == {"x": 0.0}
    assert shares_of_best({}) == {}


def test_an_event_beyond_the_vector_candidates_gets_the_last_of_them() -> None:
    vector = {f"v{i}": 0.6 - i / 100 for i in range(10)}
    text = {"words": 5.0, "v0": 1.0}
    by_vector = normalised(vector)
    weight = text_weight(vector, text)
    # The vector branch returned all 10 it was asked for: "words" is beyond them, not unrelated.
    assert fused(vector, text, vector_limit=10)["words"] == pytest.approx(
        (1 - weight) * by_vector["v9"] + weight * 1.0
    )
    # Asked for 50 and given 10, it saw every vector of the scope: "words" has none.
    assert fused(vector, text, vector_limit=50)["words"] == pytest.approx(weight * 1.0)


def test_rare_words_the_question_repeats_beat_events_that_hold_only_a_common_word() -> None:
    # Many turns hold one common word of the question; the evidence holds its rare words too, but
    # meaning ranks it beyond its candidates (the vector branch returned its full 10) and prefers another
    # turn. Mapped by its spread and 0 beyond the vector candidates (before), "turn0" won: a common-word
    # match sat near the middle of the word scale.
    vector = {"turn0": 0.7} | {f"turn{i}": 0.55 - i / 200 for i in range(1, 10)}
    text = {f"turn{i}": 1.0 for i in range(10)} | {"evidence": 9.0}
    scores = fused(vector, text, vector_limit=10)
    assert max(scores, key=scores.__getitem__) == "evidence"
