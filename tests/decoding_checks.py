"""Checks that constrained decoding and beam search hold on a model, shared by the quantized and llama.cpp paths
(tests/test_quantize.py, tests/test_llamacpp.py)."""
from __future__ import annotations

from naturelm.api import instruction

PRODUCTS = ["CC(=O)Nc1ccc(O)cc1", "O=C(O)c1ccccc1OC(C)=O", "CN1CCC[C@H]1c1cccnc1", "NC(=O)c1cnccn1"]


def constrained_decoding_holds(lm) -> None:
    """Every constrained answer opens the expected tag and closes it, with balanced SMILES; sampling too."""
    prompts = [instruction("retrosynthesis", product=p) for p in PRODUCTS]
    for rows in (lm.generate(prompts, num_beams=3, max_new_tokens=24, expect="reactants"),
                 lm.generate(prompts, n=3, temperature=1.0, max_new_tokens=24, expect="reactants")):
        for row in rows:
            assert row
            for g in row:
                assert g.tag == "reactants" and g.raw.rstrip().endswith("</reactants>")
                assert g.entity.count("(") == g.entity.count(")")
                assert g.entity.count("[") == g.entity.count("]")


def beam_search_holds(lm) -> None:
    """k distinct canonical answers, best score first, and width-1 beam equals greedy."""
    prompts = [instruction("retrosynthesis", product=p) for p in PRODUCTS[:2]]
    for row in lm.generate(prompts, num_beams=4, max_new_tokens=20, expect="reactants"):
        assert len(row) == 4
        assert len({g.key for g in row}) == 4
        assert [g.score for g in row] == sorted((g.score for g in row), reverse=True)
    ids = lm.engine.encode(prompts)
    greedy = lm.engine.sample(ids, 1, 0.0, 1.0, 12, True)
    beam = lm.engine.beam(ids, 1, 12, True)
    assert [h.ids for (h,) in greedy] == [hyps[0].ids for hyps in beam]
