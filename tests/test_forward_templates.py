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


def _generation(text: str, score: float):
    """A scored candidate as `union_scores` rows hold it (its text is its canonical form; "" is invalid)."""
    from naturelm.generate.postprocess import Generation

    return Generation(raw=text, entity=text, tag="product", canonical=text or None, valid=bool(text), score=score,
                      verified_by=None)


def test_combined_score_is_the_weighted_sum_of_its_parts():
    """Hand-computed: model -1.0, round trip -0.5, template 0.4, template weight 2."""
    import math

    from naturelm.tasks.ranking import combined_score

    assert combined_score(-1.0, 0.4, 2.0) == pytest.approx(-1.0 + 0.8)  # the plain ranking
    assert combined_score(-1.0, 0.4, 2.0, -0.5, 0.0) == pytest.approx(-0.2)  # r = 0: the round trip is not used
    assert combined_score(-1.0, 0.4, 2.0, -0.5, 0.25) == pytest.approx(0.75 * -1.0 + 0.25 * -0.5 + 0.8)  # -0.075
    assert combined_score(-math.inf, 0.4, 2.0, -0.5, 1.0) == pytest.approx(0.3)  # r = 1: the forward part drops out
    assert combined_score(-1.0, 0.4, 2.0, -math.inf, 0.5) == -math.inf  # an unscorable round trip ranks last
    with pytest.raises(ConfigError, match="retro_weight"):
        combined_score(-1.0, 0.4, 2.0, -0.5, 1.5)
    with pytest.raises(ConfigError, match="round_trip_scores"):
        combined_score(-1.0, 0.4, 2.0, None, 0.5)


def test_order_union_follows_the_round_trip_share():
    """A: forward -1, round trip -3; B: forward -2, round trip -0.5; same template score 0.5, weight 2.
    r = 0: A (0.0) before B (-1.0); r = 0.5: B (-0.25) before A (-1.0); r = 1: B (0.5) before A (-2.0)."""
    from naturelm.tasks.ranking import order_union

    row = [(_generation("A", -1.0), 0.5), (_generation("B", -2.0), 0.5)]
    retro = [[-3.0, -0.5]]
    for r, expected in ((0.0, [("A", 0.0), ("B", -1.0)]), (0.5, [("B", -0.25), ("A", -1.0)]),
                        (1.0, [("B", 0.5), ("A", -2.0)])):
        got = order_union([row], 2.0, 2, retro, r)[0]
        assert [(c.text, pytest.approx(c.score)) for c in got] == expected
    assert [c.text for c in order_union([row], 2.0, 1, retro, 1.0)[0]] == ["B"]  # cut at k


def test_round_trip_scores_ask_for_the_reactants_of_each_product():
    """Each candidate product P is scored by the model's log-probability of the query's reactants as the
    retrosynthesis answer for P; an empty candidate gets -inf."""
    import math

    from naturelm.data.instructions import instruction
    from naturelm.tasks.ranking import round_trip_scores

    class Recorder:
        def __init__(self):
            self.calls = []

        def rank(self, prompts, pools, tag=None):
            self.calls.append((prompts, pools, tag))
            return [[_generation(p[0], -float(i + 1))] for i, p in enumerate(pools)]

    rows = [[(_generation("CCO", -1.0), 0.3), (_generation("", -1.0), 0.0), (_generation("CC=O", -1.0), 0.1)]]
    model = Recorder()
    assert round_trip_scores(model, ["CC.O"], rows) == [[-1.0, -math.inf, -2.0]]
    prompts, pools, tag = model.calls[0]
    assert prompts == [instruction("retrosynthesis", product="CCO"), instruction("retrosynthesis", product="CC=O")]
    assert pools == [["CC.O"], ["CC.O"]] and tag == "reactants"


def test_round_trip_ranked_forward_and_the_checkpoint_key(lm, tool, tiny_checkpoint, tmp_path):
    """forward(retro_weight=r) orders as order_union with round_trip_scores; the checkpoint's
    naturelm_forward_retro_weight (written by write_rank_weight) is its default."""
    import json
    import shutil

    from naturelm.api import FORWARD_RETRO_WEIGHT_KEY, NatureLM, write_rank_weight
    from naturelm.tasks.base import Example
    from naturelm.tasks.ranking import order_union, round_trip_scores, union_scores

    sets = ["CCCC(=O)O.NCCC", "CCC(=O)OC.O"]
    out = lm.forward(sets, k=3, method="ranked", templates=tool, rank_weight=2.0, retro_weight=0.5)
    proposals = tool.predict("forward", sets, 10)
    scored = union_scores(lm, [Example(s) for s in sets], proposals, task="forward")
    retro = round_trip_scores(lm, sets, scored)
    expected = order_union(scored, 2.0, 3, retro, 0.5)
    for gens, exp in zip(out, expected):
        assert [g.canonical for g in gens] == [c.text for c in exp]
        for g in gens:
            assert g.meta["retro_weight"] == 0.5
            assert g.score == pytest.approx(0.5 * g.meta["model_logprob"] + 0.5 * g.meta["retro_logprob"]
                                            + 2.0 * g.meta["template_score"])
    assert "retro_logprob" not in lm.forward(sets[0], k=1, method="ranked", templates=tool)[0].meta  # default r = 0
    with pytest.raises(ConfigError, match="retro_weight"):
        lm.forward(sets[0], method="ranked", templates=tool, retro_weight=2.0)

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    write_rank_weight(ckpt, FORWARD_RETRO_WEIGHT_KEY, 1.0)
    assert json.loads((ckpt / "generation_config.json").read_text())[FORWARD_RETRO_WEIGHT_KEY] == 1.0
    opted = NatureLM.load(ckpt)
    assert opted.forward_retro_weight == 1.0
    gens = opted.forward(sets[0], k=2, method="ranked", templates=tool, rank_weight=2.0)
    assert all(g.meta["retro_weight"] == 1.0 for g in gens)
    assert [g.canonical for g in gens] == [c.text for c in order_union(scored[:1], 2.0, 2, retro[:1], 1.0)[0]]
