"""Retrieval-augmented retrosynthesis and ranking the union of candidate sources (issue 8)."""
from __future__ import annotations

import math

from naturelm.data.retrieval import ReactionMemory
from naturelm.tasks.ranking import order_union, union_scores
from naturelm.generate.postprocess import Generation
from naturelm.tasks.base import Example
from naturelm.tasks.baselines.base import Candidate

PRODUCTS = ["CC(=O)Nc1ccc(O)cc1", "CC(=O)Nc1ccc(N)cc1", "CC(=O)Nc1ccc(CO)cc1", "CCO"]
REACTANTS = ["CC(=O)Cl.Nc1ccc(O)cc1", "CC(=O)Nc1ccc([N+](=O)[O-])cc1", "CC(=O)Nc1ccc(COC(C)=O)cc1", "CC=O"]


def test_memory_never_returns_the_query_product():
    memory = ReactionMemory(PRODUCTS, REACTANTS)
    hits = memory.neighbours("CC(=O)Nc1ccc(O)cc1", k=2)
    assert [h[0] for h in hits] == ["CC(=O)Nc1ccc(N)cc1", "CC(=O)Nc1ccc(CO)cc1"]
    assert all(0.0 < h[2] < 1.0 for h in hits)


def test_rag_prompt_carries_the_neighbours(tiny_checkpoint):
    from naturelm.api import NatureLM

    lm = NatureLM.load(tiny_checkpoint)
    out = lm.retrosynthesis_rag("CC(=O)Nc1ccc(O)cc1", k=2, memory=ReactionMemory(PRODUCTS, REACTANTS), max_new_tokens=12)
    assert 1 <= len(out) <= 2 and all(g.tag in (None, "reactants") for g in out)


class _FakeRanker:
    """Prefers shorter candidates; the prior decides when the weight is large."""

    name = "fake"

    def rank(self, prompt, pool, tag=None):
        seen, out = set(), []
        for c in pool:
            if c.text in seen:
                continue
            seen.add(c.text)
            out.append(Generation(c.text, c.text, tag, c.text, True, -len(c.text) / 10, "rdkit", source=c.source))
        return sorted(out, key=lambda g: -g.score)


def test_prior_weight_moves_the_source_favourite_up():
    ex = [Example("CCO")]
    model_beams = [[Candidate("C", -1.0, "fake")]]
    retrosim = [[Candidate("CC=O", 0.9, "retrosim"), Candidate("CCCCCC", 0.2, "retrosim")]]
    scored = union_scores(_FakeRanker(), ex, model_beams, retrosim)
    assert [c.text for c in order_union(scored, 0.0, 10)[0]] == ["C", "CC=O", "CCCCCC"]
    top = order_union(scored, 10.0, 10)[0]
    assert top[0].text == "CC=O" and math.isclose(top[0].score, -0.4 + 9.0)
    assert len(order_union(scored, 10.0, 2)[0]) == 2
