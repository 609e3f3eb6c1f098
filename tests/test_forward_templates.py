"""Forward prediction from training templates (naturelm.tasks.baselines.forward_templates) and its ranking by the
model (`NatureLM.forward(method="ranked")`, the `--rank` row of `naturelm eval forward`)."""
from __future__ import annotations

import pytest

from naturelm.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

# Atom-mapped training reactions: an amide coupling and an ester hydrolysis.
AMIDE = ("[CH3:1][CH2:8][C:2](=[O:3])[OH:4].[NH2:5][CH2:6][CH3:7]", "[CH3:1][CH2:8][C:2](=[O:3])[NH:5][CH2:6][CH3:7]")
ESTER = ("[CH3:1][C:2](=[O:3])[O:4][CH3:5].[OH2:6]", "[CH3:1][C:2](=[O:3])[OH:4]")


def _records():
    from naturelm.data.sources.uspto50k import Reaction, _extract_template
    from naturelm.language.codecs import strip_atom_maps, try_canonical

    out = []
    for i, (r, p) in enumerate((AMIDE, ESTER)):
        out.append(Reaction(f"r{i}", None, try_canonical(strip_atom_maps(p)),
                            try_canonical(strip_atom_maps(r), reactant_set=True), "train", _extract_template(r, p, str(i))))
    assert all(rec.template for rec in out)
    return out


@pytest.fixture(scope="module")
def tool():
    from naturelm.tasks.baselines.forward_templates import ForwardTemplates

    return ForwardTemplates(n_neighbours=5).fit(_records())


def test_forward_template_turns_the_retro_template_around():
    from naturelm.tasks.baselines.forward_templates import forward_template

    assert forward_template("[C:1]-[NH;D2;+0:2]>>O-[C:1].[NH2:2]") == "(O-[C:1].[NH2:2])>>[C:1]-[NH;D2;+0:2]"


def test_templates_predict_the_analogous_product(tool):
    """A new amine and acid: the amide template gives their amide, scored by similarity, with its precedent."""
    from naturelm.language.codecs import try_canonical

    cands = tool.predict("forward", ["CCCC(=O)O.NCCC"], 5)[0]
    assert cands, "the amide template must apply"
    assert cands[0].text == try_canonical("CCCC(=O)NCCC")
    assert 0.0 < cands[0].score <= 1.0 and cands[0].meta["neighbour"] == "r0"
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
    assert tool.predict("forward", ["not a molecule"], 5) == [[]]
    with pytest.raises(ConfigError, match="forward"):
        tool.predict("retrosynthesis", ["CCO"], 5)


def test_ranked_forward_orders_template_products_by_model_and_prior(lm, tool):
    from naturelm.tasks.ranking import order_union, union_scores
    from naturelm.tasks.base import Example

    sets = ["CCCC(=O)O.NCCC", "CCC(=O)OC.O"]
    out = lm.forward(sets, k=3, method="ranked", templates=tool, rank_weight=2.0)
    proposals = tool.predict("forward", sets, 10)
    expected = order_union(union_scores(lm, [Example(s) for s in sets], proposals, task="forward"), 2.0, 3)
    for gens, exp, props in zip(out, expected, proposals):
        assert [g.canonical for g in gens] == [c.text for c in exp]
        assert all(g.source == "templates+model" for g in gens)
        prior = {c.text: c.score for c in props}
        for g in gens:
            assert g.meta["template_score"] == pytest.approx(prior[g.canonical])
            assert g.score == pytest.approx(g.meta["model_logprob"] + 2.0 * g.meta["template_score"])
            assert g.check("atom_balance") is not None
    # auto: the model's beams for a checkpoint without a tuned template weight, ranked when templates are given
    assert all(g.source == "model" for g in lm.forward(sets[0], k=2))
    assert all(g.source == "templates+model" for g in lm.forward(sets[0], k=2, templates=tool))
    with pytest.raises(ConfigError, match="forward method"):
        lm.forward(sets[0], method="retrosim")
