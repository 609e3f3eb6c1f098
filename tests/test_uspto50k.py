"""USPTO-50k loader: the real MHN file, the raw atom-mapped format, malformed rows, path resolution."""
import csv
import gzip

import pytest

from naturelm.data.sources.uspto50k import ENV_VAR, load_uspto50k, resolve_path
from naturelm.errors import DataFileError, DataSourceMissing
from naturelm.language.codecs import canonical_reactant_set, canonical_smiles

RAW_COLUMNS = ["id", "class", "reactants>reagents>production"]
# Atom-mapped as in USPTO: leaving-group atoms carry no map number.
AMIDE = ("[CH3:1][C:2](=[O:3])O.[NH2:5][CH2:6][c:7]1[cH:8][cH:9][cH:10][cH:11][cH:12]1>>"
         "[CH3:1][C:2](=[O:3])[NH:5][CH2:6][c:7]1[cH:8][cH:9][cH:10][cH:11][cH:12]1")
SUZUKI = ("[CH3:1][O:2][c:3]1[cH:4][cH:5][c:6](Br)[cH:8][cH:9]1.OB(O)[c:13]1[cH:14][cH:15][cH:16][cH:17][cH:18]1>>"
          "[CH3:1][O:2][c:3]1[cH:4][cH:5][c:6](-[c:13]2[cH:14][cH:15][cH:16][cH:17][cH:18]2)[cH:8][cH:9]1")
BOC = "CC(C)(C)OC(=O)[NH:8][CH2:9][CH2:10][OH:11]>>[NH2:8][CH2:9][CH2:10][OH:11]"


@pytest.fixture(scope="module")
def real():
    try:
        return load_uspto50k()
    except DataSourceMissing as e:
        pytest.skip(str(e))


def test_real_file_split_counts_and_canonical_records(real):
    assert real.counts() == {"train": 40008, "valid": 5001, "test": 5007}
    assert sum(real.report.values()) == 0  # the shipped file has no malformed rows
    for r in real.split("test")[:200]:
        assert ":" not in r.product and r.product == canonical_smiles(r.product)
        assert r.reactants == canonical_reactant_set(r.reactants)
        assert r.reactants.split(".") == sorted(r.reactants.split("."))
        assert r.template and ">>" in r.template and r.rxn_class in range(1, 11)


def test_split_argument_matches_full_load(real):
    test = load_uspto50k(split="test")
    assert test.counts() == {"train": 0, "valid": 0, "test": 5007}
    assert test.records == real.split("test")
    with pytest.raises(ValueError):
        load_uspto50k(split="dev")


def _write_raw(folder, rows_by_split):
    for name, rows in rows_by_split.items():
        with open(folder / f"raw_{name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(RAW_COLUMNS)
            w.writerows(rows)


def test_raw_format_strips_maps_extracts_templates_and_counts_malformed(tmp_path):
    from rdchiral.main import rdchiralRunText

    _write_raw(tmp_path, {
        "train": [["r1", "2", AMIDE], ["r2", "3", SUZUKI],
                  ["bad1", "1", "CCO"],                       # no reaction arrows
                  ["bad2", "1", "CC(=O)O>>C1CC"],             # product does not parse
                  ["bad3", "x", AMIDE],                        # class is not a number
                  ["bad4", "1", ">>CCO"]],                     # no reactants
        "val": [["r3", "6", BOC]],
        "test": [["r4", "", AMIDE]],
    })
    data = load_uspto50k(tmp_path, cache=False)
    assert data.counts() == {"train": 2, "valid": 1, "test": 1}
    assert dict(data.report) == {"bad_reaction_smiles": 1, "unparsable_product": 1, "bad_class": 1,
                                 "missing_reactants": 1}
    amide = data.records[0]
    assert amide.product == "CC(=O)NCc1ccccc1" and amide.reactants == "CC(=O)O.NCc1ccccc1"
    assert amide.rxn_class == 2 and data.split("test")[0].rxn_class is None
    for r in data:
        assert ":" not in r.product and ":" not in r.reactants
        # the extracted retro template regenerates the gold reactants from the product
        outcomes = [canonical_reactant_set(o) for o in rdchiralRunText(r.template, r.product)]
        assert r.reactants in outcomes


def test_raw_single_file_and_missing_column(tmp_path):
    _write_raw(tmp_path, {"val": [["r3", "6", BOC]]})
    data = load_uspto50k(tmp_path / "raw_val.csv", cache=False, templates=False)
    assert [(r.split, r.product, r.template) for r in data] == [("valid", "NCCO", None)]
    bad = tmp_path / "raw_test.csv"
    bad.write_text("id,rxn\n1,CCO>>CCO\n")
    with pytest.raises(DataFileError, match="no column 'prod_smiles'") as err:  # malformed, not "not found"
        load_uspto50k(bad, cache=False)
    assert err.value.path == str(bad) and err.value.line == 1


def test_mhn_format_malformed_rows_counted_not_dropped_silently(tmp_path):
    path = tmp_path / "USPTO_50k_MHN_prepro.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "id", "class", "prod_smiles", "reactants_can", "split", "reaction_smarts"])
        w.writerow([0, "a", 1, "OCC", "CCO.C", "train", "[C:1]>>[C:1]"])
        w.writerow([1, "b", 1, "CCO", "", "train", ""])
        w.writerow([2, "c", 1, "C1CC", "CCO", "valid", ""])
        w.writerow([3, "d", 1, "CCO", "CC(", "test", ""])
        w.writerow([4, "e", 1, "CCO", "CCO", "holdout", ""])
        w.writerow([5, "f", 2, "c1ccccc1O", "Oc1ccccc1", "val", ""])
    data = load_uspto50k(tmp_path, cache=False)
    assert [(r.id, r.product, r.reactants, r.split) for r in data] == [
        ("a", "CCO", "C.CCO", "train"), ("f", "Oc1ccccc1", "Oc1ccccc1", "valid")]
    assert data.records[1].template is None
    assert dict(data.report) == {"missing_reactants": 1, "unparsable_product": 1, "unparsable_reactants": 1,
                                 "bad_split": 1}


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("NATURELM_CACHE", str(tmp_path / "cache"))
    _write_raw(tmp_path, {"train": [["r1", "2", AMIDE], ["bad", "1", "CCO"]], "val": [["r3", "6", BOC]],
                          "test": [["r4", "", AMIDE]]})
    first = load_uspto50k(tmp_path)
    assert list((tmp_path / "cache" / "uspto50k").glob("*.json.gz"))
    second = load_uspto50k(tmp_path)
    assert second.records == first.records and second.report == first.report


def test_missing_data_names_flag_and_env_var(tmp_path, monkeypatch):
    with pytest.raises(DataSourceMissing, match=ENV_VAR):
        load_uspto50k(tmp_path / "nowhere")
    with pytest.raises(DataSourceMissing, match="--uspto50k"):
        load_uspto50k(tmp_path)  # exists but holds no USPTO-50k file
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert resolve_path() == tmp_path
