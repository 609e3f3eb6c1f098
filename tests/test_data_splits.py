"""Entity splits and the leakage check: a planted leak is found, removed and counted."""
from __future__ import annotations

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
    assert "mol:CCO" not in record_keys(train[3])


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
