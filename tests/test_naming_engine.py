"""Naming data engine: verified pairs, exclusion, resume, and rejection of wrong names."""
import json

from naturelm.data import naming
from naturelm.data.naming import build_naming_pairs, read_pairs
from naturelm.tools import namers
from naturelm.tools.opsin import inchikey, names_match

MOLS = ["CC(=O)Oc1ccccc1C(=O)O", "CCO", "OCC", "CCN(CC)CC", "c1ccc2ccccc2c1", "O=C(O)c1ccccc1", "C1CCCCC1", "not-a-smiles"]
EXCLUDED = "CCN(CC)CC"


def _lines(path):
    return sum(1 for _ in open(path))


def test_build_exclude_and_resume(tmp_path):
    out = tmp_path / "naming"
    stats = build_naming_pairs(MOLS, out, exclude_inchikeys={inchikey(EXCLUDED)}, workers=2, progress=False)
    assert (stats.n_input, stats.n_invalid_smiles, stats.n_excluded) == (8, 1, 1)
    assert stats.n_molecules == 5 and stats.n_named_now == 5  # CCO and OCC are one molecule
    pairs = read_pairs(out)
    keys = {p["inchikey"] for p in pairs}
    assert inchikey(EXCLUDED) not in keys and inchikey(MOLS[0]) in keys
    assert len({(p["inchikey"], p["name"]) for p in pairs}) == len(pairs) == stats.n_pairs
    assert all(p["namer"] in namers.NAMERS and p["namer"] == p["namers"][0] for p in pairs)
    assert names_match([p["name"] for p in pairs], [p["smiles"] for p in pairs]) == [True] * len(pairs)
    assert json.loads((out / "stats.json").read_text())["n_pairs"] == stats.n_pairs
    assert len(read_pairs(out, one_per_molecule=True)) == stats.n_molecules_with_pair

    shard_lines = _lines(out / "named.jsonl")
    again = build_naming_pairs(MOLS, out, exclude_inchikeys={inchikey(EXCLUDED)}, workers=2, progress=False)
    assert again.n_named_now == 0 and again.n_resumed == 5  # nothing named twice
    assert _lines(out / "named.jsonl") == shard_lines and again.n_pairs == stats.n_pairs

    more = build_naming_pairs(MOLS + ["CC(C)O"], out, workers=2, limit=7, progress=False)
    assert more.n_named_now == 2  # only the newly allowed and the new molecule


def test_wrong_names_are_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(namers, "_namer_fn", lambda namer: (lambda smiles: "benzene"))
    stats = build_naming_pairs(["CCO", "CC(=O)O", "c1ccccc1"], tmp_path, workers=1, progress=False)
    assert stats.rejections == {"nispo:inchikey_mismatch": 2, "openclatura:inchikey_mismatch": 2}
    assert [p["smiles"] for p in read_pairs(tmp_path)] == ["c1ccccc1"]  # the one name that is right


def test_unparsable_names_are_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(namers, "_namer_fn", lambda namer: (lambda smiles: "zz not a name"))
    stats = build_naming_pairs(["CCO"], tmp_path, workers=1, namers=("nispo",), progress=False)
    assert stats.rejections == {"nispo:opsin_unparsable": 1} and stats.n_pairs == 0
    assert naming.read_pairs(tmp_path) == []
