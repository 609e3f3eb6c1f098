"""Templates and instruction builders on real records: formats, gold facts in meta, task-specific validity."""
from __future__ import annotations

import random
import re

import pytest

from naturelm.data import instructions as I
from naturelm.data.sources.uspto50k import Reaction
from naturelm.language import find_entities, format_prompt
from naturelm.language.codecs import canonical_reactant_set, canonical_smiles

RXNS = [
    Reaction("1", 6, "CC(=O)Nc1ccc(O)cc1", "CC(=O)OC(C)=O.Nc1ccc(O)cc1", "train"),
    Reaction("2", 1, "COc1ccc(CN2CCOCC2)cc1", "C1COCCN1.COc1ccc(C=O)cc1", "train"),
    Reaction("3", 1, "COc1ccc(CN2CCCCC2)cc1", "C1CCNCC1.COc1ccc(C=O)cc1", "train"),
]


def test_every_task_has_templates_and_texts():
    assert set(I.TEMPLATES) == set(I.TASKS)
    assert all(len(I.TEMPLATES[t]) >= 3 for t in I.TASKS if not t.endswith("_generation"))
    texts = I.template_texts()
    assert all(t in texts for task in I.TASKS for t in I.TEMPLATES[task])
    assert I.NEIGHBOUR_LINE in texts


def test_retrosynthesis_records_augmented_answers_canonical():
    recs = I.retrosynthesis_records(RXNS[:1], random.Random(0), augment=3, seed=1)
    assert len(recs) == 4
    products = [find_entities(r["instruction"])[0].text for r in recs]
    assert products[0] == RXNS[0].product and len(set(products)) > 1
    for r, p in zip(recs, products):
        assert canonical_smiles(p) == RXNS[0].product  # randomized input, same molecule
        assert r["response"] == f"<reactants>{RXNS[0].reactants}</reactants>"
        assert r["meta"] == {"product": RXNS[0].product, "reactants": RXNS[0].reactants, "rxn_class": 6}
    again = I.retrosynthesis_records(RXNS[:1], random.Random(0), augment=3, seed=1)
    assert again == recs


def test_forward_records():
    r = I.forward_records(RXNS[:1], random.Random(0))[0]
    assert r["response"] == f"<product>{RXNS[0].product}</product>"
    assert canonical_reactant_set(find_entities(r["instruction"])[0].text) == RXNS[0].reactants


def test_rag_never_retrieves_the_query_and_uses_train_only():
    recs = I.rag_records(RXNS[1:2], RXNS, random.Random(0), k=2)
    nb = recs[0]["meta"]["neighbours"]
    assert nb and all(n["product"] != RXNS[1].product for n in nb)
    assert nb[0]["product"] == RXNS[2].product  # the piperidine analogue is the nearest
    assert "Similar reaction: <product>" in recs[0]["instruction"]
    format_prompt(recs[0]["instruction"])


def test_property_records_state_the_rdkit_value():
    smi = "CC(=O)Nc1ccc(O)cc1"
    props = I.molecule_properties(smi)
    recs = I.property_records([(smi, props)] * 30, random.Random(0))
    for r in recs:
        prop, target = r["meta"]["property"], r["meta"]["target"]
        assert prop in I.MOLECULE_PROPERTIES
        assert abs(props[prop] - target) <= 0.5 * 10 ** -I.PROPERTY_TEXT[prop][1] + 1e-9
        assert r["response"] == f"<mol>{smi}</mol>"
    assert props["HBD"] == 2 and props["HBA"] == 2


def test_optimization_pairs_are_similar_and_improve():
    from naturelm.data.sources.moses import load_moses

    smiles = [m["smiles"] for m in load_moses("train", limit=1500).records]
    cache = {}

    def props_fn(smis):
        for s in smis:
            cache.setdefault(s, I.molecule_properties(s))
        return {s: cache[s] for s in smis}

    recs = I.optimization_records(smiles, props_fn, random.Random(0), min_sim=0.6, cap=20)
    assert recs
    for r in recs:
        m = r["meta"]
        src, tgt = m["smiles"], find_entities(r["response"])[0].text
        diff = cache[tgt][m["property"]] - cache[src][m["property"]]
        assert (diff >= m["delta"]) if m["direction"] == "increase" else (diff <= -m["delta"])
        assert m["similarity"] >= 0.6 and src != tgt


def test_bbb_records_and_optimization():
    mols = [{"smiles": "CCN(CC)CCOC(=O)c1ccc(N)cc1", "label": 1}, {"smiles": "CCN(CC)CCOC(=O)c1ccc(N)cc1C(=O)O", "label": 0},
            {"smiles": "O=C(O)CC(O)(CC(=O)O)C(=O)O", "label": 0}]
    cls = I.bbb_records(mols, random.Random(0))
    assert [r["response"] for r in cls] == ["Yes.", "No.", "No."]
    opt = I.bbb_optimization_records(mols, random.Random(0), min_sim=0.3)
    assert len(opt) == 1 and opt[0]["meta"]["smiles"] == mols[1]["smiles"]
    assert opt[0]["response"] == f"<mol>{mols[0]['smiles']}</mol>"


def test_guide_rna_spacers_are_valid():
    dna = "TCTAGACTGGTATAGCTGCTTTTGGAGCCTCACCTGCTGAGAGCTCACAGCTGTCCTTCTCTAGA"
    recs = I.guide_rna_records([{"dna": dna}] * 20, random.Random(0), per_sequence=2)
    assert recs
    for r in recs:
        m = r["meta"]
        spacer = find_entities(r["response"])[0].text
        assert spacer == m["spacer"] and 17 <= len(spacer) <= 24 and "T" not in spacer
        start = m["start"]
        assert dna[start:start + len(spacer)] == spacer.replace("U", "T")
        assert re.fullmatch("[ACGT]GG", dna[m["pam"]:m["pam"] + 3]) and m["pam"] == start + len(spacer)


def test_protein_and_material_records():
    p = I.text_to_protein_records([{"sequence": "MKVL", "label": 0}], random.Random(0))[0]
    assert "insoluble" in p["instruction"] and p["meta"] == {"property": "insoluble"}
    mats = [{"material": "Fe Li P O O O O <sgNone>", "elements": ["Fe", "Li", "O", "P"], "property": "band_gap",
             "value": 3.456}]
    c = I.composition_records(mats, random.Random(0))[0]
    assert all(e in c["instruction"] for e in ["Fe", "Li", "O", "P"]) and c["meta"]["elements"] == ["Fe", "Li", "O", "P"]
    m = I.material_property_records(mats, random.Random(0))[0]
    assert "3.46 eV" in m["instruction"] and m["meta"] == {"property": "band_gap", "target": 3.46}
    g = I.generation_records("material_generation", ["Li Li O <sg225>"])[0]
    assert g["instruction"] == "<material>" and g["response"] == "<material>Li Li O <sg225></material>"


def test_naming_records_both_directions():
    pair = {"smiles": "CCO", "name": "ethanol", "inchikey": "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"}
    a, b = I.naming_records([pair], random.Random(0))
    assert a["task"] == "smiles_to_iupac" and a["response"] == "ethanol" and "<mol>CCO</mol>" in a["instruction"]
    assert b["task"] == "iupac_to_smiles" and b["response"] == "<mol>CCO</mol>" and "ethanol" in b["instruction"]


def test_tanimoto_neighbours_match_rdkit():
    from rdkit import DataStructs

    from naturelm.data.retrieval import fingerprint_matrix, morgan_fp, tanimoto_neighbours

    smiles = [r.product for r in RXNS] + ["c1ccccc1O"]
    fp = fingerprint_matrix(smiles)
    hits = tanimoto_neighbours(fp, fp, k=4)
    for i, s in enumerate(smiles):
        ref = DataStructs.BulkTanimotoSimilarity(morgan_fp(s), [morgan_fp(t) for t in smiles])
        for j, sim in hits[i]:
            assert sim == pytest.approx(ref[j], abs=1e-6)
        assert hits[i][0] == (i, pytest.approx(1.0))
