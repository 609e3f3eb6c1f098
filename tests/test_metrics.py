"""Shared metric helpers: each has an oracle (perfect) and an anti-oracle (wrong/invalid -> 0) case."""
from __future__ import annotations

import pytest

from naturelm.tasks import metrics as M


def test_topk_oracle_and_anti_oracle():
    golds = ["A", "B"]
    assert M.topk_exact_match([["A"], ["B", "X"]], golds, [1, 3]) == {"top_1": 1.0, "top_3": 1.0}
    assert M.topk_exact_match([["X", "Y"], []], golds, [1, 3]) == {"top_1": 0.0, "top_3": 0.0}


def test_topk_invalid_keeps_rank_and_duplicates_collapse():
    canon = {"a": "A", "a2": "A", "b": "B"}.get  # "bad" maps to None: invalid
    # invalid first: the gold at position 2 is not top-1
    assert M.topk_exact_match([["bad", "b"]], ["B"], [1, 2], canon) == {"top_1": 0.0, "top_2": 1.0}
    # two spellings of one wrong answer take one slot: the gold is second
    assert M.topk_exact_match([["a", "a2", "b"]], ["B"], [1, 2], canon) == {"top_1": 0.0, "top_2": 1.0}
    # a None gold never matches, and empty candidates count as wrong
    assert M.topk_exact_match([["", None], ["b"]], [None, "B"], [1], canon) == {"top_1": 0.5}


def test_validity_uniqueness_novelty():
    assert M.validity([True, True]) == 1.0 and M.validity([False, False]) == 0.0 and M.validity([]) == 0.0
    assert M.uniqueness(["a", "b"]) == 1.0 and M.uniqueness(["a", "a", "a", "a"]) == 0.25 and M.uniqueness([]) == 0.0
    assert M.novelty(["a", "b"], {"c"}) == 1.0 and M.novelty(["a", "b"], {"a", "b"}) == 0.0 and M.novelty([], set()) == 0.0


def test_internal_diversity():
    assert M.internal_diversity(["CCO", "CCO"]) == pytest.approx(0.0)
    div = M.internal_diversity(["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "O=C(O)CCCl"])
    assert 0.5 < div < 1.0
    assert M.internal_diversity(["not-a-smiles", ""]) == 0.0


def test_spearman_and_auroc():
    assert M.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert M.spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert M.spearman([1, 2], [1, 2]) == 0.0 and M.spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert M.auroc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == 1.0
    assert M.auroc([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2]) == 0.0
    assert M.auroc([1, 1], [0.3, 0.4]) == 0.5
