"""Entity splits and the leakage check: a planted leak is found, removed and counted."""
from __future__ import annotations

import random

from naturelm.data.instructions import record
from naturelm.data.splits import Splitter, nt_key, overlap, record_keys, remove_leaks


def _recs():
    test = [record("retrosynthesis", "Please suggest possible reactants for the given product <product>CCO</product>",
                   "<reactants>CC=O</reactants>", {"product": "CCO", "reactants": "CC=O", "rxn_class": 1}),
            record("rna_generation", "<rna>", "<rna>ACGUACGU</rna>")]
    train = [
        record("molecule_generation", "<mol>", "<mol>CCO</mol>"),  # planted: the test product
        record("guide_rna", "Generate a guide RNA for targeting the DNA sequence <dna>ACGTACGT</dna>",
               "<rna>ACGU</rna>", {"dna": "ACGTACGT", "spacer": "ACGU"}),  # planted: same sequence as DNA
        record("molecule_generation", "<mol>", "<mol>CCN</mol>"),
        record("retrosynthesis_rag", "Similar reaction: <product>CCO</product> → <reactants>CC=O</reactants>\n"
               "Please suggest possible reactants for the given product <product>CCCO</product>",
               "<reactants>CCC=O</reactants>", {"product": "CCCO", "reactants": "CCC=O", "rxn_class": 1}),
    ]
    return train, test


def test_planted_leaks_are_found_and_removed():
    train, test = _recs()
    assert overlap(train, test) == 2  # CCO and the ACGT... sequence
    kept, report = remove_leaks(train, test)
    assert [r["response"] for r in kept] == ["<mol>CCN</mol>", "<reactants>CCC=O</reactants>"]
    assert dict(report.removed) == {"molecule_generation": 1, "guide_rna": 1}
    assert report.overlap_after == 0 and overlap(kept, test) == 0
    assert report.to_dict()["removed_train_records_total"] == 2


def test_rag_context_is_not_the_records_entity():
    train, _ = _recs()
    from naturelm.data.splits import mol_key

    assert mol_key("CCO") not in record_keys(train[3]) and mol_key("CCCO") in record_keys(train[3])


def test_rna_and_dna_are_one_entity():
    assert nt_key("ACGU") == nt_key("acgt")


def test_splitter_is_deterministic_and_honours_forced():
    a, b = Splitter(0, 0.1, 0.1), Splitter(0, 0.1, 0.1)
    keys = [f"mol:C{'C' * i}O" for i in range(2000)]
    assert [a(k) for k in keys] == [b(k) for k in keys]
    share = sum(a(k) == "test" for k in keys) / len(keys)
    assert 0.07 < share < 0.13
    assert Splitter(0, 0.1, 0.1, {keys[0]: "test"})(keys[0]) == "test"
    assert [Splitter(1, 0.1, 0.1)(k) for k in keys] != [a(k) for k in keys]


def test_molecules_are_keyed_on_connectivity():
    from naturelm.data.splits import connectivity_key, mol_key

    # stereoisomers, an atom-mapped spelling and an isotopologue share the InChIKey first block
    assert mol_key("C[C@H](N)O") == mol_key("C[C@@H](N)O") == mol_key("CC(N)O") == "mol:UJPKMTDFFUTLGM"
    assert mol_key("[CH3:1][CH2:2][OH:3]") == mol_key("[13CH3]CO") == mol_key("OCC")
    assert mol_key("CCO") != mol_key("COC")  # a different skeleton is a different entity
    assert mol_key("CC(=O)O.CCO") == mol_key("OCC.CC(=O)O")  # a reactant set, in any order
    assert connectivity_key("not a smiles") == "raw:not a smiles"
    split = Splitter(0, 0.3, 0.3)
    assert len({split(mol_key(s)) for s in ("C[C@H](N)O", "C[C@@H](N)O", "CC(N)O")}) == 1


def test_stereo_variant_of_a_test_molecule_is_a_leak():
    """Wrong definition caught: keys on isomeric canonical SMILES (the stereo variant would survive)."""
    test = [record("bbb_classification", "Can <mol>C[C@H](N)c1ccccc1</mol> traverse the blood-brain barrier?", "Yes.",
                   {"smiles": "C[C@H](N)c1ccccc1", "label": 1})]
    train = [record("bbb_classification", "Can <mol>C[C@@H](N)c1ccccc1</mol> traverse the blood-brain barrier?", "Yes.",
                    {"smiles": "C[C@@H](N)c1ccccc1", "label": 1}),
             record("molecule_generation", "<mol>", "<mol>CC(N)c1ccccc1</mol>"),
             record("molecule_generation", "<mol>", "<mol>CCc1ccccc1</mol>")]
    assert overlap(train, test) == 1
    kept, report = remove_leaks(train, test)
    assert [r["response"] for r in kept] == ["<mol>CCc1ccccc1</mol>"]
    assert dict(report.removed) == {"bbb_classification": 1, "molecule_generation": 1} and report.overlap_after == 0


def test_rag_neighbours_exclude_stereoisomers_of_the_query():
    from naturelm.data.instructions import rag_records
    from naturelm.data.sources.uspto50k import Reaction

    rx = lambda i, p, r: Reaction(f"r{i}", 1, p, r, "train")  # noqa: E731
    train = [rx(0, "C[C@@H](N)C(=O)O", "C[C@@H](N)C(=O)OC"), rx(1, "CC(N)C(=O)OCC", "CC(N)C(=O)O.CCO")]
    recs = rag_records([rx(2, "C[C@H](N)C(=O)O", "C[C@H](N)C(=O)OC")], train, random.Random(0), k=2)
    assert [n["product"] for n in recs[0]["meta"]["neighbours"]] == ["CC(N)C(=O)OCC"]


def test_leak_free_retrieval_index():
    from naturelm.data.splits import index_leaks, leak_free_index
    from naturelm.data.sources.uspto50k import Reaction

    rx = lambda i, p, r: Reaction(f"r{i}", 1, p, r, "x")  # noqa: E731
    test = [rx(0, "C[C@H](N)C(=O)OC", "C[C@H](N)C(=O)O.CO"), rx(1, "CCOC(C)=O", "CC(=O)O.CCO")]
    train = [rx(2, "CC(N)C(=O)OC", "CC(N)C(=O)O.CO"),  # the first test reaction without stereo: identical by connectivity
             rx(3, "CCOC(C)=O", "CC(=O)Cl.CCO"),  # the second test product by another route
             rx(4, "CCCOC(C)=O", "CC(=O)O.CCCO")]
    assert index_leaks(train, test) == {"test_products_in_index": 2, "identical_reactions_in_index": 1,
                                        "test_products": 2}
    free = leak_free_index(train, test)
    assert [r.id for r in free] == ["r4"] and index_leaks(free, test)["test_products_in_index"] == 0
