"""Rule-based namers, verified answers for the API, and the naming baselines."""
import time

import pytest

from naturelm.tasks.baselines.namers import get_predictor
from naturelm.tools import namers
from naturelm.tools.namers import name_one, name_with, name_with_reasons
from naturelm.tools.naming import iupac_to_smiles_verified, smiles_to_iupac_verified
from naturelm.tools.opsin import canonical, names_match

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


@pytest.mark.parametrize("namer", namers.NAMERS)
def test_namer_names_and_failures(namer):
    got = name_with_reasons(namer, [ASPIRIN, "CCO", "not-a-smiles", ""])
    assert got[0][0] and got[0][1] is None
    assert got[1] == ("ethanol", None)
    assert got[2] == (None, "invalid_smiles") and got[3] == (None, "invalid_smiles")
    assert names_match([got[0][0]], [ASPIRIN]) == [True]


def test_unknown_namer():
    with pytest.raises(ValueError):
        name_with("stout", ["CCO"])


def test_exceptions_and_hangs_become_reasons(monkeypatch):
    def boom(smiles):
        raise RuntimeError("namer bug")

    def hang(smiles):
        while True:  # a namer stuck in a loop burns CPU
            pass

    monkeypatch.setattr(namers, "_namer_fn", lambda namer: boom)
    assert name_one("nispo", "CCO") == (None, "error:RuntimeError")
    monkeypatch.setattr(namers, "_namer_fn", lambda namer: hang)
    t = time.perf_counter()
    assert name_one("nispo", "CCO", timeout=0.2) == (None, "timeout")
    assert time.perf_counter() - t < 10  # 0.2 CPU seconds, however busy the machine


def test_rules_path_verifies_aspirin():
    answers = smiles_to_iupac_verified(ASPIRIN, method="rules")
    assert answers and answers[0].verified and answers[0].source in namers.NAMERS
    assert all(a.verified for a in answers)


def test_model_candidates_oracle_and_anti_oracle():
    right, wrong = "2-acetyloxybenzoic acid", "benzoic acid"
    answers = smiles_to_iupac_verified(ASPIRIN, [wrong, right, "aspirin-ish nonsense"], k=10, method="auto")
    first = answers[0]
    assert (first.name, first.source, first.verified) == (right, "model", True)
    flags = {a.name: a.verified for a in answers}
    assert flags[wrong] is False and flags["aspirin-ish nonsense"] is False
    n_verified = sum(a.verified for a in answers)
    assert all(a.verified for a in answers[:n_verified])  # verified answers come first
    assert any(a.source in namers.NAMERS and a.verified for a in answers)
    model_only = smiles_to_iupac_verified(ASPIRIN, [wrong], method="model")
    assert [(a.source, a.verified) for a in model_only] == [("model", False)]


def test_iupac_to_smiles_verified():
    answers = iupac_to_smiles_verified("2-acetyloxybenzoic acid", ["CCO", "xx(", ASPIRIN])
    assert answers[0].smiles == canonical(ASPIRIN) and answers[0].source == "opsin" and answers[0].verified
    assert [(a.smiles, a.verified) for a in answers[1:]] == [("CCO", False)]  # invalid dropped, duplicate merged
    # a trivial name OPSIN cannot parse: the registry's structure first, the model's wrong guesses after it, failing
    trivial = iupac_to_smiles_verified("Aspirin", ["O=S(=O)(O)O", "O=[N+]([O-])c1ccc(Cl)cc1"])
    assert [(a.source, a.verified) for a in trivial] == [("registry", True), ("model", False), ("model", False)]
    assert trivial[0].smiles == canonical(ASPIRIN) and {a.reference for a in trivial} == {canonical(ASPIRIN)}
    assert [a.smiles for a in iupac_to_smiles_verified("tylenol", ["CC(=O)Nc1ccc(O)cc1"])] == ["CC(=O)Nc1ccc(O)cc1"]
    assert iupac_to_smiles_verified("Tylenol", method="opsin") == []
    assert iupac_to_smiles_verified("Tylenol", method="rules")[0].source == "registry"
    # a name neither OPSIN nor the registry knows: the model's answer, unverified (no reference)
    unknown = iupac_to_smiles_verified("zorblaxamine", ["CCO"])
    assert [(a.source, a.verified, a.reference) for a in unknown] == [("model", False, None)]


def test_registry_lookup_of_trivial_names():
    from naturelm.data.sources.names import registry_lookup

    assert registry_lookup("aspirin")[0].smiles == canonical(ASPIRIN)  # the example table holds CID 2244
    assert registry_lookup("  Paracetamol ")[0].smiles == "CC(=O)Nc1ccc(O)cc1"
    assert registry_lookup("paracetamo") == [] and registry_lookup("") == []  # whole names only


def test_baselines():
    inputs = [ASPIRIN, "<mol>CCO</mol>", "not-a-smiles"]
    for name in ("nispo", "openclatura"):
        pred = get_predictor(name)
        assert pred.supports("smiles_to_iupac") and not pred.supports("iupac_to_smiles")
        out = pred.predict("smiles_to_iupac", inputs, k=5)
        assert len(out) == 3 and out[2] == []
        assert out[0][0].verified and out[0][0].source == name and out[1][0].text == "ethanol"
    opsin = get_predictor("opsin")
    out = opsin.predict("iupac_to_smiles", ["ethanol", "not a name"], k=5)
    assert out[0][0].text == "CCO" and out[1] == []
