"""Cross-domain tasks (issue 17): sources, splits, instruction records, metrics (oracle / anti-oracle /
hand-computed), baselines, API methods and endpoints. Small inputs only; package-backed tests skip when the
package is absent."""
from __future__ import annotations

import importlib.util
import json
import math
import random

import pytest

from naturelm.data import cross_domain as X
from naturelm.data import instructions as I
from naturelm.tasks.base import Example
from naturelm.tasks.baselines.base import Candidate
from naturelm.tools import motifs
from naturelm.tools.translation import back_translation_ok, is_cds, translate_cds


def needs(package: str):
    return pytest.mark.skipif(importlib.util.find_spec(package) is None, reason=f"{package} not installed")


def cands(*texts):
    return [Candidate(t) for t in texts]


# ------------------------------------------------------------------ tools


def test_translation_hand_computed():
    assert translate_cds("ATGGCTTAA") == "MA"  # ATG GCT TAA
    assert translate_cds("GTGAAATGA") == "MK"  # GTG is a bacterial start codon: read as M
    assert translate_cds("atg gct\ntaa") == "MA"
    assert translate_cds("GCTTAA") == "A"  # no start codon: codon by codon, up to the stop
    assert translate_cds("ATGXXX") is None
    assert is_cds("ATGGCTTAA") and not is_cds("ATGGCT") and not is_cds("ATGTAAGCTTAA")
    assert back_translation_ok("ATGGCCTAG", "MA") and not back_translation_ok("ATGGCC", "MA")


def test_motif_scores_hand_computed():
    pwm = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]]
    # log2(0.7/0.25) + log2(0.7/0.25) for the consensus AU
    assert motifs.site_score(pwm, "AU") == pytest.approx(2 * math.log2(2.8))
    assert motifs.max_score(pwm) == pytest.approx(2 * math.log2(2.8))
    assert motifs.best_site(pwm, "CCAUG") == (pytest.approx(2 * math.log2(2.8)), 2)
    assert motifs.best_site(pwm, "C") == (-math.inf, -1)
    ms = motifs.MotifSet([pwm, [[0.25] * 4] * 3])
    assert ms.best("CCAUG") == pytest.approx(2 * math.log2(2.8))
    assert ms.has_site("CCAUG", 0.99) and not ms.has_site("CCCCC", 0.5)
    assert motifs.consensus(pwm) == "AU"
    assert set(motifs.sample_site(pwm, random.Random(0))) <= set("ACGU")


# ------------------------------------------------------------------ sources


def test_pdbqt_sequence_maps_protonation_states_and_skips_cofactors():
    from naturelm.data.sources.dockstring import pdbqt_sequence

    def atom(name, resn, resi, chain="A"):
        return f"ATOM  {1:5d} {name:<4} {resn:>3} {chain}{resi:4d}    " + " " * 30

    lines = [atom("N", "MET", 1), atom("CA", "MET", 1), atom("CA", "HIE", 2), atom("CA", "CYX", 3),
             atom("CA", "HEM", 4), atom("FE", "HEM", 4), atom("CA", "GLY", 7), "REMARK x"]
    seq, gaps, skipped = pdbqt_sequence(lines)
    assert seq == "MHCG" and gaps == 1 and skipped == ["HEM"]


def test_read_pwms():
    from naturelm.data.sources.attract import read_pwms

    got = read_pwms([">904\t2", "0.1 0.2 0.3 0.4", "1 0 0 0", ">s36 1", "0 0 0 1"])
    assert got == {"904": [[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0]], "s36": [[0.0, 0.0, 0.0, 1.0]]}


@needs("dockstring")
def test_dockstring_pockets():
    from naturelm.data.sources.dockstring import load_dockstring_targets

    loaded = load_dockstring_targets({"DRD3", "F2"})
    seqs = {r["gene"]: r for r in loaded.records}
    assert set(seqs) == {"DRD3", "F2"} and len(seqs["DRD3"]["sequence"]) == 272
    assert seqs["F2"]["skipped"] == ["TYS"] and set(seqs["DRD3"]["box"]) >= {"center_x", "size_z"}


@needs("MoleculeACE")
def test_moleculeace_rows():
    from naturelm.data.sources.moleculeace import TARGETS, benchmark_files, load_moleculeace

    assert len(benchmark_files()) == 30
    loaded = load_moleculeace({"ABL1"}, limit_per_file=5)
    assert loaded.report.read == 5 and len(loaded.records) == 5
    r = loaded.records[0]
    assert r["gene"] == "ABL1" and r["target_name"] == TARGETS["CHEMBL1862"][1]
    assert r["p_affinity"] == pytest.approx(9 - math.log10(500.0), abs=1e-3)  # first row: 500 nM


@needs("concise")
def test_attract_records():
    from naturelm.data.sources.attract import load_attract

    loaded = load_attract()
    assert loaded.report.kept == 1509 and loaded.report.rejected["mutated_protein"] == 78
    genes = {m["gene"] for m in loaded.records}
    assert "HNRNPA1" in genes and all(set(m["motif"]) <= set("ACGU") for m in loaded.records[:50])


@needs("pyrodigal")
def test_pyrodigal_pairs_are_checked_translations():
    from naturelm.data.sources.cds import load_pyrodigal_pairs

    loaded = load_pyrodigal_pairs(limit=40)
    assert loaded.records and all(translate_cds(r["dna"]) == r["protein"] for r in loaded.records)
    assert all(is_cds(r["dna"]) for r in loaded.records)


def test_missing_package_says_what_to_install(monkeypatch):
    from naturelm.data.sources import common
    from naturelm.data.sources.moleculeace import load_moleculeace
    from naturelm.errors import DataSourceMissing

    monkeypatch.setattr(common.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataSourceMissing, match="MoleculeACE==3.0.0"):
        load_moleculeace()


def test_emboss_missing_is_a_clear_error(tmp_path, monkeypatch):
    from naturelm.data.sources.cds import emboss_dir
    from naturelm.errors import DataSourceMissing

    monkeypatch.setenv("NATURELM_EMBOSS", str(tmp_path))
    with pytest.raises(DataSourceMissing, match="emboss-test"):
        emboss_dir()


# ------------------------------------------------------------------ splits and records


def test_ligand_split_holds_out_target_scaffolds_and_connectivity():
    rows = [{"gene": "A", "smiles": s, "p_affinity": 7.0} for s in
            ("C[C@H](N)c1ccccc1", "C[C@@H](N)c1ccccc1", "Cc1ccccc1", "CCO", "c1ccc2ccccc2c1", "OCC1CCCCC1")]
    rows += [{"gene": "B", "smiles": "CCO", "p_affinity": 6.5}, {"gene": "B", "smiles": "CCCC", "p_affinity": 5.0}]
    for seed in range(20):
        out = X.split_ligands(rows, "B", seed, 0.2, 0.3)
        assert all(r["split"] == "test" and r["holdout"] == "target" for r in out if r["gene"] == "B")
        by = {r["smiles"]: r["split"] for r in out if r["gene"] == "A"}
        assert by["C[C@H](N)c1ccccc1"] == by["C[C@@H](N)c1ccccc1"] == by["Cc1ccccc1"]  # one benzene scaffold
        assert by["CCO"] in ("removed", "test")  # measured on the held-out target too: never train
        assert by["C[C@H](N)c1ccccc1"] != "removed"
    assert X.scaffold_key("CCO") == "conn:LFQSCWFLJHTTHZ" and X.scaffold_key("Cc1ccccc1") == "c1ccccc1"


def test_gene_split_never_shares_a_sequence():
    def pair(i, dna, protein):
        return {"id": str(i), "dna": dna, "protein": protein, "source": "x"}

    curated = [pair(0, "ATGGCTTAA", "MA")]
    genome = [pair(i, "ATG" + "GCT" * i + "TAA", "M" + "A" * i) for i in range(1, 11)]
    others = [pair(20, "ATGGCCTAA", "MA"), pair(21, "ATGAAATAA", "MK")]
    out = X.split_genes(curated, genome, others, 0, 0.2)
    test = {p["dna"] for p in out["test"]} | {p["protein"] for p in out["test"]}
    assert genome[-1] in out["test"] and curated[0] in out["test"]
    assert all(p["dna"] not in test and p["protein"] not in test for s in ("train", "valid") for p in out[s])
    assert others[1] in out["train"] + out["valid"] and others[0] not in out["train"] + out["valid"]


def test_cross_domain_records():
    rng = random.Random(0)
    targets = {"DRD3": {"gene": "DRD3", "target_name": "dopamine D3 receptor", "sequence": "MKV"},
               "HRH1": {"gene": "HRH1", "target_name": "histamine H1 receptor"}}
    recs = I.protein_ligand_records([{"gene": g, "smiles": "CCO", "p_affinity": 7.0} for g in ("DRD3", "HRH1")] * 4,
                                    targets, rng)
    assert {r["task"] for r in recs} == {"protein_to_molecule"} and all(r["response"] == "<mol>CCO</mol>" for r in recs)
    assert any("<protein>MKV</protein>" in r["instruction"] for r in recs)
    assert all("histamine H1 receptor (HRH1)" in r["instruction"] for r in recs if r["meta"]["gene"] == "HRH1")
    cd = I.central_dogma_records([{"id": "g", "dna": "ATGGCTTAA", "protein": "MA", "source": "x"}], rng)
    assert [r["response"] for r in cd] == ["<protein>MA</protein>", "<dna>ATGGCTTAA</dna>"]
    ex = X.rbp_examples([{"gene": "G", "gene_id": "E1", "family": "RRM", "matrix_id": "m"}],
                        {"m": [[1.0, 0, 0, 0]] * 4}, rng, per_matrix=3)
    assert all("AAAA" in e["rna"] and 4 + 2 * X.RNA_FLANK[0] <= len(e["rna"]) for e in ex)
    rr = I.rbp_records(ex, rng)
    assert all(r["meta"]["rbp"] in r["instruction"] for r in rr)
    for task in ("protein_to_molecule", "dna_to_protein", "protein_to_dna", "protein_to_rna"):
        assert len(I.TEMPLATES[task]) >= 3


# ------------------------------------------------------------------ metrics


def test_translation_metric_oracle_anti_oracle_hand_computed():
    from naturelm.tasks.central_dogma import back_translation_metrics, per_residue, translation_metrics

    dnas, golds = ["ATGGCTTAA", "ATGAAAGCATAA"], ["MA", "MKA"]
    oracle = translation_metrics(golds, dnas, golds)
    assert oracle["exact"] == oracle["per_residue"] == oracle["verified"] == 1.0
    anti = translation_metrics([None, "WWW"], dnas, golds)
    assert anti["exact"] == anti["verified"] == anti["per_residue"] == 0.0 and anti["validity"] == 0.5
    assert per_residue("MKG", "MKA") == pytest.approx(2 / 3) and per_residue("M", "MKA") == pytest.approx(1 / 3)
    hand = translation_metrics(["MA", "MKG"], dnas, golds)
    assert hand["exact"] == 0.5 and hand["per_residue"] == pytest.approx((1 + 2 / 3) / 2)
    back = back_translation_metrics(["ATGGCCTAG", "ATGAAAGCA"], golds, dnas)
    assert back["exact"] == 0.5 and back["valid_cds"] == 0.5 and back["per_residue"] == pytest.approx(1.0)
    assert back_translation_metrics([None, "ATGTGGTAA"], golds, dnas)["exact"] == 0.0


def test_motif_metric_oracle_anti_oracle_hand_computed():
    from naturelm.tasks.protein_to_rna import motif_metrics

    pwm = [[0.97, 0.01, 0.01, 0.01], [0.01, 0.01, 0.97, 0.01], [0.01, 0.01, 0.97, 0.01], [0.01, 0.97, 0.01, 0.01]]
    ms = motifs.MotifSet([pwm])
    oracle = motif_metrics(["CUAGGCUGUAUCGUUACGAU", "GUCAGGCAUUGCAUCGUAGU"], [ms, ms])
    assert oracle["validity"] == oracle["above_shuffled"] == oracle["site_found"] == 1.0
    assert oracle["logodds_mean"] == pytest.approx(4 * math.log2(0.97 / 0.25))
    anti = motif_metrics([None, "UUUUUUUU"], [ms, ms])
    assert anti["site_found"] == 0.0 and anti["above_shuffled"] == 0.0 and anti["validity"] == 0.5
    # hand: 'AGGA' scores 3 x log2(0.97/0.25) + log2(0.01/0.25) = 2.2266 < 0.75 x 7.8309 -> no site
    one = motif_metrics(["AGGA"], [ms])
    assert one["logodds_mean"] == pytest.approx(3 * math.log2(0.97 / 0.25) + math.log2(0.01 / 0.25))
    assert one["site_found"] == 0.0


def _rows():
    train = ["CCOc1ccccc1", "CCNc1ccccc1", "CCCc1ccccc1", "OCCc1ccccc1", "NCCc1ccccc1", "CC(=O)c1ccccc1"]
    held = ["c1ccc2[nH]ccc2c1", "Cc1ccc2[nH]ccc2c1"]
    rows = [{"gene": "T", "smiles": s, "p_affinity": 5.0 + i * 0.5, "split": "train"} for i, s in enumerate(train)]
    rows += [{"gene": "T", "smiles": s, "p_affinity": 7.5, "split": "test"} for s in held]
    return rows, train, held


def test_ligand_metric_oracle_anti_oracle_hand_computed():
    from naturelm.tasks.protein_to_molecule import AffinityOracle, ligand_metrics, oracle_rows

    rows, train, held = _rows()
    oracle = AffinityOracle("T", *oracle_rows(rows, "T"))
    best = ligand_metrics([held], ["T"], rows, {"T": oracle})
    assert best["validity"] == 1.0 and best["novelty"] == 1.0 and best["sim_heldout"] == pytest.approx(1.0)
    anti = ligand_metrics([[None, None]], ["T"], rows, {"T": oracle})
    assert anti["validity"] == anti["oracle_active"] == anti["uniqueness"] == 0.0 and anti["sim_heldout"] is None
    # hand: 4 slots, 3 valid, 2 distinct, of which 1 is a training molecule -> uniqueness 2/3, novelty 1/2
    hand = ligand_metrics([["CCOc1ccccc1", "CCOc1ccccc1", held[0], None]], ["T"], rows, {"T": oracle})
    assert hand["validity"] == 0.75 and hand["uniqueness"] == pytest.approx(2 / 3) and hand["novelty"] == 0.5
    preds = oracle.predict(["CCOc1ccccc1", "CCOc1ccccc1", held[0]])
    assert hand["oracle_p_affinity"] == pytest.approx(sum(preds) / 3)
    assert hand["oracle_active"] == pytest.approx(sum(p >= 6.0 for p in preds) / 4)
    assert oracle.card()["n_train"] == 6 and oracle.card()["n_heldout"] == 2


def test_protein_to_molecule_task_end_to_end(tmp_path):
    from naturelm.data.cross_domain import write_affinities
    from naturelm.tasks.base import Context, get_task

    rows, train, held = _rows()
    write_affinities(tmp_path, [{**r, "target_name": "t", "chembl_id": "C", "measure": "Ki",
                                 "holdout": "scaffold" if r["split"] == "test" else ""} for r in rows])
    targets = {"T": {"gene": "T", "target_name": "test target"}}
    recs = I.protein_ligand_records([{"gene": "T", "smiles": s, "p_affinity": 7.5, "holdout": "scaffold"}
                                     for s in held], targets, random.Random(0))
    (tmp_path / "instructions").mkdir()
    (tmp_path / "instructions" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    task = get_task("protein_to_molecule")
    examples = task.examples(tmp_path)
    assert len(examples) == 1 and examples[0].meta == {"gene": "T", "by": "name", "holdout": "scaffold"}
    ctx = Context(tmp_path, progress=False)
    good = task.score(examples, [cands(*held)], ctx)
    bad = task.score(examples, [cands("not a molecule")], ctx)
    assert good["sim_heldout"] == pytest.approx(1.0) and good["sim_heldout_scaffold"] == pytest.approx(1.0)
    assert bad["validity"] == 0.0 and bad["oracle_active"] == 0.0
    assert "affinity:T" in ctx.oracles_used()


# ------------------------------------------------------------------ baselines


def test_target_of_and_biopython_baseline():
    from naturelm.tasks.baselines.cross_domain import BiopythonTranslator, codon_preferences
    from naturelm.tasks.protein_to_molecule import target_of

    pockets = {"A": "MKVLAAGGHHTTRR", "B": "WWYYPPQQEESSDD"}
    assert target_of("Design a molecule that binds to the protein <protein>MKVLAAGGHHTTRR</protein>.", pockets) == "A"
    assert target_of("Propose a ligand of the protein <protein>WWYYPPQQEESSDA</protein>.", pockets) == "B"
    assert target_of("Design a molecule that binds to the dopamine D3 receptor (DRD3).", pockets) == "DRD3"
    assert codon_preferences(["ATGGCAGCAGCCTAA"])["A"] == "GCA"
    bio = BiopythonTranslator()
    out = bio.predict("dna_to_protein", [I.TEMPLATES["dna_to_protein"][0].format(dna="<dna>ATGGCTTAA</dna>")], 1)
    assert out[0][0].text == "MA"
    back = bio.predict("protein_to_dna", ["Design a gene that encodes <protein>MAKW</protein>."], 1)[0][0].text
    assert back_translation_ok(back, "MAKW")


# ------------------------------------------------------------------ API and server


pytestmark = pytest.mark.usefixtures("one_thread")


@needs("MoleculeACE")
def test_api_cross_domain_methods_carry_tool_checks(lm):
    from naturelm.errors import ConfigError, EntityError

    mols = lm.design_ligand(target="AR", n=2, max_new_tokens=24, seed=0)
    assert mols and all(g.check("affinity_oracle") is not None for g in mols)
    assert all(g.check("affinity_oracle").passed is False for g in mols if not g.valid)
    seq = lm.design_ligand(protein="MKVLAAGWTR", n=1, max_new_tokens=16, seed=0)
    assert seq[0].check("affinity_oracle").passed in (None, False)  # an unknown protein: unverified
    with pytest.raises(ConfigError):
        lm.design_ligand(target="no such target")
    with pytest.raises(ConfigError):
        lm.design_ligand(protein="MKV", target="AR")
    tr = lm.translate_dna("ATGGCTAAATAA", max_new_tokens=8)
    assert any(g.check("biopython_translation").passed and g.canonical == "MAK" for g in tr)  # Biopython backs it up
    assert all(g.check("biopython_translation").target == "MAK" for g in tr)
    assert all(g.meets_request is False for g in tr if g.canonical != "MAK")
    with pytest.raises(EntityError):
        lm.translate_dna("ATGNNNTAA")
    bt = lm.back_translate("MAK", n=1, max_new_tokens=12, seed=0)
    assert all(g.check("complete_cds") and g.check("encodes_protein").target == "MAK" for g in bt)


@needs("concise")
def test_api_rna_for_protein_scores_motifs(lm):
    from naturelm.errors import ConfigError

    out = lm.rna_for_protein("HNRNPA1", n=2, max_new_tokens=16, seed=0)
    assert out and all(isinstance(g.check("binding_site").passed, bool) for g in out)
    with pytest.raises(ConfigError):
        lm.rna_for_protein("NOT_AN_RBP")


@pytest.fixture(scope="module")
def client(lm):
    from fastapi.testclient import TestClient

    from naturelm.serve.app import ServeConfig, create_app

    cfg = ServeConfig(model_name="tiny", max_new_tokens=64, default_new_tokens=16, task_new_tokens=16,
                      max_entity_chars=500, max_n=4)
    with TestClient(create_app(lm, cfg)) as c:
        yield c


@needs("MoleculeACE")
@needs("concise")
@pytest.mark.parametrize("task, body", [
    ("design_ligand", {"target": "AR", "n": 2}),
    ("design_ligand", {"protein": "MKVLAAGWTR", "target": "", "n": 1}),
    ("translate_dna", {"dna": "ATGGCTAAATAA"}),
    ("back_translate", {"protein": "MAK", "n": 1}),
    ("rna_for_protein", {"rbp": "PUF", "by": "family", "n": 1}),
])
def test_cross_domain_endpoints_answer_with_checks(client, task, body):
    r = client.post(f"/v1/tasks/{task}", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results and all(isinstance(g["valid"], bool) and g["checks"] for g in results)
    if task == "translate_dna":
        assert any(g["meets_request"] and g["canonical"] == "MAK" for g in results)


@pytest.mark.parametrize("task, body, needle", [
    ("design_ligand", {"n": 1}, "not both"),
    ("design_ligand", {"target": "NOPE"}, "unknown target"),
    ("translate_dna", {"dna": "ATG<>"}, "dna"),
    ("rna_for_protein", {"rbp": "X", "by": "organism"}, "by"),
])
def test_cross_domain_endpoints_reject_bad_input(client, task, body, needle):
    r = client.post(f"/v1/tasks/{task}", json=body)
    assert 400 <= r.status_code < 500 and needle in r.text


@pytest.mark.slow
@needs("dockstring")
def test_vina_docks_through_dockstring():
    import shutil

    from naturelm.tasks.protein_to_molecule import docking_metrics

    if shutil.which("obabel") is None:
        pytest.skip("obabel (Debian openbabel) not installed")
    out = docking_metrics([["CC(=O)Nc1ccc(O)cc1", None]], ["DRD3"], 1)
    assert out["vina_n"] == 1 and -12.0 < out["vina_mean"] < -3.0 and out["vina_seconds"] > 0
