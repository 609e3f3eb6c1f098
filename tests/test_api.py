"""NatureLM facade: loading, task methods, classify/rank and the Predictor protocol on a tiny random Llama."""
from __future__ import annotations

import math
import shutil

import pytest

from naturelm.errors import ConfigError, DataSourceMissing, EntityError

ASPIRIN_PRODUCT = "CC(=O)Nc1ccc(O)cc1"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_load_errors_say_what_to_pass(tmp_path):
    from naturelm.api import NatureLM

    with pytest.raises(DataSourceMissing, match="checkpoint directory"):
        NatureLM.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):  # DataSourceMissing is one
        NatureLM.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="config.json"):
        NatureLM.load(tmp_path / "empty")


def test_retrosynthesis_returns_k_distinct_checked_candidates(lm):
    gens = lm.retrosynthesis(ASPIRIN_PRODUCT, k=5)
    assert len(gens) == 5
    assert len({g.key for g in gens}) == 5
    for g in gens:
        assert g.tag == "reactants" and g.verified_by == "rdkit"
        assert (g.canonical is not None) == g.valid
        assert math.isfinite(g.score)
    assert [g.score for g in gens] == sorted((g.score for g in gens), reverse=True)


def test_retrosynthesis_strips_maps_and_validates_input(lm):
    from naturelm.api import instruction
    from naturelm.language.codecs import strip_atom_maps

    assert strip_atom_maps("[CH3:1][C:2](=[O:3])[NH:4]c1ccc(O)cc1") == strip_atom_maps(ASPIRIN_PRODUCT)
    assert "<product>" in instruction("retrosynthesis", product="CCO")
    with pytest.raises(EntityError):
        lm.retrosynthesis("C1CC(", k=2)
    batch = lm.retrosynthesis([ASPIRIN_PRODUCT, "[CH3:1][OH:2]"], k=2, max_new_tokens=24)
    assert [len(row) for row in batch] == [2, 2]


def test_instruction_wraps_tag_fields():
    from naturelm.api import instruction

    assert instruction("forward", reactants="CC.O").count("<reactants>") == 1
    assert "<mol>CCO</mol>" in instruction("bbb_optimization", mol="CCO")
    with pytest.raises(ConfigError, match="needs"):
        instruction("forward", product="CCO")


def test_classify_is_a_probability_from_the_next_token(lm):
    import torch

    p = lm.classify("Is <mol>CCO</mol> able to cross the blood-brain barrier?")
    assert 0.0 <= p <= 1.0
    # oracle: the same number straight from the model's next-token distribution
    tok = lm.tokenizer
    ids = lm.engine.encode(["Is <mol>CCO</mol> able to cross the blood-brain barrier?"])[0]
    with torch.inference_mode():
        logits = lm.model(torch.tensor([ids])).logits[0, -1].float()
    lp = torch.log_softmax(logits, -1)
    yes, no = tok.encode("Yes"), tok.encode("No")
    if len(yes) == len(no) == 1:
        expected = lp[yes[0]].exp() / (lp[yes[0]].exp() + lp[no[0]].exp())
        assert p == pytest.approx(float(expected), abs=1e-5)
    ps = lm.classify(["Is <mol>C</mol> toxic?", "Is <mol>CC</mol> toxic?"])
    assert len(ps) == 2 and all(0.0 <= x <= 1.0 for x in ps)
    with pytest.raises(EntityError, match="no tagged entity"):  # what is the question about?
        lm.classify("Does dopamine cross the blood-brain barrier?")


def test_rank_scores_merges_and_sorts(lm):
    from naturelm.tasks.baselines.base import Candidate

    prompt = "Please suggest possible reactants for the given product <product>CCOC(C)=O</product>"
    cands = ["CCO.CC(=O)O", Candidate("OCC.OC(C)=O", 1.0, "retrosim"), "C1CC(", ""]
    ranked = lm.rank(prompt, cands, tag="reactants")
    assert len(ranked) == 2  # the two spellings of one reactant set merge; the empty one is dropped
    assert [g.score for g in ranked] == sorted((g.score for g in ranked), reverse=True)
    merged = next(g for g in ranked if g.valid)
    assert merged.canonical == "CC(=O)O.CCO"
    # oracle: the score is the mean log-probability of the response tokens
    eng = lm.engine
    p = eng.encode([prompt])[0]
    scores = []
    for text in ("<reactants>CCO.CC(=O)O</reactants>", "<reactants>OCC.OC(C)=O</reactants>"):
        lp = eng.logprobs([p], [lm.tokenizer.encode(text)])[0]
        scores.append(sum(lp) / len(lp))
    assert merged.score == pytest.approx(max(scores), abs=1e-5)


def test_sampling_task_methods(lm):
    short = dict(max_new_tokens=16)
    mols = lm.generate_molecules(n=3, **short)
    assert len(mols) == 3 and all(g.tag == "mol" and g.raw.startswith("<mol>") for g in mols)
    assert len(lm.generate_molecules(n=2, QED=0.5, TPSA=40, **short)) == 2
    with pytest.raises(ConfigError):
        lm.generate_molecules(n=1, colour=3)
    assert all(g.tag == "mol" for g in lm.optimize_molecule("CCO", "increase QED", n=2, **short))
    assert all(g.tag == "mol" for g in lm.optimize_molecule("CCO", "bbb", n=1, **short))
    assert all(g.tag == "protein" and g.verified_by == "alphabet" for g in lm.design_protein("soluble", n=2, **short))
    assert all(g.tag == "rna" for g in lm.design_rna(n=2, **short))
    mats = lm.design_material(elements=["Li", "O"], n=2, **short)
    assert all(g.tag == "material" and g.verified_by == "smact" for g in mats)
    assert all(g.tag == "material" for g in lm.design_material(property="band_gap", value=1.5, n=1, **short))
    assert all(g.tag == "rna" for g in lm.guide_rna("ACGTACGTACGTACGTACGTAGG", n=2, **short))
    with pytest.raises(EntityError):
        lm.guide_rna("ACGZ")


def test_predictor_protocol(lm, monkeypatch):
    from naturelm.tasks.baselines.base import Candidate, Predictor

    assert isinstance(lm, Predictor) and lm.supports("retrosynthesis") and not lm.supports("nope")
    monkeypatch.setattr(lm, "max_new_tokens", 24)
    preds = lm.predict("forward", ["CC(=O)O.OCC", "not a smiles"], k=3)
    assert len(preds) == 2 and len(preds[0]) == 3 and preds[1] == []
    assert all(isinstance(c, Candidate) and c.verified in (True, False) for c in preds[0])
    unc = lm.predict("molecule_generation", ["<mol>", "<mol>"], k=1)
    assert [len(r) for r in unc] == [1, 1]
    cls, bad = lm.predict("bbb_classification", ["CCO", "not a smiles"], k=1)
    assert cls[0].text in ("Yes.", "No.") and 0.0 <= cls[0].meta["p_yes"] <= 1.0 and bad == []


@pytest.mark.skipif(shutil.which("java") is None, reason="OPSIN needs Java")
def test_naming_methods_verify_with_opsin(lm):
    pytest.importorskip("py2opsin")
    got = lm.iupac_to_smiles("ethanol", k=3, method="rules", max_new_tokens=12)
    assert got[0].canonical == "CCO" and got[0].verified_by == "opsin" and got[0].source == "opsin"
    names = lm.smiles_to_iupac("CCO", k=3, method="model", max_new_tokens=12)
    assert all(g.source == "model" and g.valid == (g.verified_by == "opsin") for g in names)
