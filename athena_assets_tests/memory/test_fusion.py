"""Hybrid recall's fusion (`resources/memory/fusion.py`): scores on one scale, a branch weighted by how
far its best hit stands out, and a candidate both branches rank high ahead of one only one branch found."""

from __future__ import annotations

import pytest

from resources.memory.fusion import TEXT_PRIOR, confidence, fused, normalised, text_weight

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
    scores = fused(vector, text)
    assert max(scores, key=scores.__getitem__) == "v1"


def test_an_event_both_branches_found_beats_one_found_by_one() -> None:
    vector = {"both": 0.8, "meaning": 0.82, "x": 0.3, "y": 0.31, "z": 0.29}
    text = {"both": 6.0, "words": 6.1, "p": 1.0, "q": 1.1, "r": 0.9}
    scores = fused(vector, text)
    assert sorted(scores, key=scores.__getitem__, reverse=True)[0] == "both"
