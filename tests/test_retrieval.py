"""Nearest-neighbour indexes: self-exclusion, exact duplicates at similarity 1.0, ranking, save/load."""
import pytest

from naturelm.data.retrieval import CompositionIndex, FingerprintIndex, SequenceIndex, element_fractions
from naturelm.errors import EntityError

MOLS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "aspirin_copy": "O=C(O)c1ccccc1OC(C)=O",  # the same molecule written differently
    "salicylic": "O=C(O)c1ccccc1O",
    "ibuprofen": "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "ethanol": "CCO",
}
SEQS = {
    "p1": "MKTAYIAKQRQISFVKSHFSRQ",
    "p1_copy": "MKTAYIAKQRQISFVKSHFSRQ",
    "p1_mut": "MKTAYIAKQRQISFVKSHFSRA",
    "p2": "GSHMLEDPVDAFQLGLSRE",
    "r1": "GGGAAACCCUUU",
}
MATS = {"hematite": "Fe2O3", "hematite_cell": "Fe Fe Fe Fe O O O O O O <sg167>", "magnetite": "Fe3O4",
        "portlandite": "Ca(OH)2", "salt": "NaCl"}


def _build(cls, items):
    return cls().build(list(items), list(items.values()))


@pytest.mark.parametrize("cls,items,query_key,dup_key", [
    (FingerprintIndex, MOLS, "aspirin", "aspirin_copy"),
    (SequenceIndex, SEQS, "p1", "p1_copy"),
    (CompositionIndex, MATS, "hematite", "hematite_cell"),
])
def test_excludes_self_and_finds_exact_duplicate(cls, items, query_key, dup_key, tmp_path):
    index = _build(cls, items)
    hits = index.query(items[query_key], k=3, exclude_keys={query_key})
    assert query_key not in [k for k, _ in hits]
    assert hits[0][0] == dup_key and hits[0][1] == pytest.approx(1.0)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(index.query(items[query_key], k=len(items), exclude_keys=[query_key])) <= len(items) - 1
    # without exclusion the query finds itself
    assert query_key in [k for k, _ in index.query(items[query_key], k=2)]
    index.save(tmp_path / "idx")
    again = cls.load(tmp_path / "idx")
    assert again.query(items[query_key], k=3, exclude_keys={query_key}) == hits


def test_fingerprint_similarity_ranks_analogues_and_rejects_invalid():
    index = _build(FingerprintIndex, MOLS)
    hits = dict(index.query(MOLS["aspirin"], k=6, exclude_keys={"aspirin", "aspirin_copy"}))
    assert max(hits, key=hits.get) == "salicylic"
    assert hits["salicylic"] > hits["caffeine"] and hits["ethanol"] < 0.2
    with pytest.raises(EntityError):
        index.query("C1CC", k=1)
    with pytest.raises(EntityError, match="bad"):
        FingerprintIndex().build(["ok", "bad"], ["CCO", "not a smiles"])


def test_sequence_jaccard_values():
    index = _build(SequenceIndex, SEQS)
    hits = dict(index.query(SEQS["p1"], k=5, exclude_keys={"p1", "p1_copy"}))
    assert 0.8 < hits["p1_mut"] < 1.0
    assert "r1" not in hits  # shares no 3-mer
    assert index.query("WWWWWW", k=3) == []


def test_composition_fractions_and_cosine():
    assert element_fractions("Ca(OH)2") == pytest.approx({"Ca": 0.2, "O": 0.4, "H": 0.4})
    assert element_fractions("Li0.5CoO2") == pytest.approx({"Li": 0.5 / 3.5, "Co": 1 / 3.5, "O": 2 / 3.5})
    with pytest.raises(EntityError):
        element_fractions("Xq2")
    index = _build(CompositionIndex, MATS)
    hits = dict(index.query("Fe2O3", k=5, exclude_keys={"hematite", "hematite_cell"}))
    assert max(hits, key=hits.get) == "magnetite" and hits["salt"] == 0.0
    assert index.query("KBr", k=1)[0][1] == 0.0  # no shared element
