"""Every task metric: gold answers -> perfect, wrong / invalid / empty answers -> 0 (counted, never dropped)."""
from __future__ import annotations

import json
import random

import pytest

from naturelm.errors import ConfigError, DataSourceMissing
from naturelm.tasks.base import Context, Example, entity_of, get_task, task_names
from naturelm.tasks.baselines.base import Candidate


def C(*texts, **meta):
    return [Candidate(t, meta=dict(meta)) for t in texts]


def EMPTY():
    return []


# ---------------------------------------------------------------- registry and data


def test_registry_has_every_task_of_the_architecture():
    names = task_names()
    for t in ("retrosynthesis", "forward", "smiles_to_iupac", "iupac_to_smiles", "molecule_generation",
              "property_to_molecule", "property_optimization", "bbb_classification", "bbb_optimization",
              "protein_generation", "text_to_protein", "rna_generation", "material_generation",
              "composition_to_material", "property_to_material", "guide_rna"):
        assert t in names
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("nope")


def test_examples_read_from_built_data(tmp_path):
    recs = [{"task": "retrosynthesis", "instruction": "i", "response": "r",
             "meta": {"product": "[CH3:1][C:2](=O)[OH:3]", "reactants": "CC(=O)Cl.O"}},
            {"task": "forward", "instruction": "f", "response": "r", "meta": {"reactants": "CC(=O)Cl.O", "product": "CC(=O)O"}}]
    (tmp_path / "instructions").mkdir()
    (tmp_path / "instructions" / "test.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    ex = get_task("retrosynthesis").examples(tmp_path)
    assert len(ex) == 1 and ex[0].query == "CC(=O)O"  # atom maps stripped before a model sees it
    assert get_task("forward").examples(tmp_path)[0].query == "CC(=O)Cl.O"
    gen = get_task("molecule_generation").examples(None, limit=3)
    assert [e.query for e in gen] == ["<mol>"] * 3
    with pytest.raises(ConfigError, match="--data"):
        get_task("retrosynthesis").examples(None)
    with pytest.raises(DataSourceMissing):
        get_task("retrosynthesis").examples(tmp_path / "missing")


def test_entity_of():
    assert entity_of("<reactants>CC . O</reactants> trailing") == "CC.O"
    assert entity_of("  ethanol ") == "ethanol"
    assert entity_of("") is None and entity_of(None) is None
    assert entity_of("<mol>CC</product>") is None  # mismatched tags: invalid


# ---------------------------------------------------------------- reactions

RETRO = [("CC(=O)Nc1ccc(O)cc1", "CC(=O)OC(C)=O.Nc1ccc(O)cc1"), ("CC(=O)OCC", "CC(=O)O.CCO"),
         ("O=C(O)c1ccccc1", "OC(=O)c1ccccc1C(=O)O")]


def _retro_examples():
    return [Example(p, meta={"product": p, "reactants": r}) for p, r in RETRO]


def test_retrosynthesis_oracle():
    task = get_task("retrosynthesis")
    # gold written differently (other atom order, maps, tags) still matches
    preds = [C(f"<reactants>{'.'.join(reversed(r.split('.')))}</reactants>") for _, r in RETRO]
    m = task.score(_retro_examples(), preds, Context())
    assert m["top_1"] == m["top_10"] == 1.0 and m["valid_top_1"] == 1.0


def test_retrosynthesis_anti_oracle_and_ranks():
    task = get_task("retrosynthesis")
    ex = _retro_examples()
    wrong = [C("CCN.CCO"), C("not smiles", ""), EMPTY()]
    m = task.score(ex, wrong, Context())
    assert all(m[f"top_{k}"] == 0.0 for k in (1, 3, 5, 10))
    assert m["n"] == 3 and m["valid_top_1"] == pytest.approx(1 / 3)
    # gold behind an invalid candidate and a duplicated wrong answer: rank 3 after deduplication
    ranked = [C("C1CC1(", "CCN.CCO", "OCC.NCC", RETRO[0][1]), EMPTY(), EMPTY()]
    m = task.score(ex, ranked, Context())
    assert m["top_1"] == 0.0 and m["top_3"] == pytest.approx(1 / 3) and m["top_5"] == pytest.approx(1 / 3)


def test_forward_oracle_and_anti_oracle():
    task = get_task("forward")
    ex = [Example(r, meta={"reactants": r, "product": p}) for p, r in RETRO]
    assert task.score(ex, [C(f"<product>{p}</product>") for p, _ in RETRO], Context())["top_1"] == 1.0
    m = task.score(ex, [C("CCCC"), C("]["), EMPTY()], Context())
    assert m["top_1"] == m["top_3"] == 0.0


# ---------------------------------------------------------------- names (OPSIN: one JVM per score call)

NAMES = [("CCO", "ethanol"), ("OC(=O)c1ccccc1", "benzoic acid"), ("CC(C)O", "propan-2-ol")]


def test_smiles_to_iupac_oracle_and_anti_oracle():
    from naturelm.tools.opsin import names_to_smiles

    task = get_task("smiles_to_iupac")
    names_to_smiles(["ethanol", "benzoic acid", "propan-2-ol", "methanol", "zzzz not a name", "methane", "ethane",
                     "propane", "butane", "pentane"])  # one JVM start; the scoring below reads OPSIN's cache
    ex = [Example(s, meta={"smiles": s, "name": n}) for s, n in NAMES]
    gold = task.score(ex, [C(n) for _, n in NAMES], Context(progress=False))
    assert gold["top_1"] == gold["top_5"] == 1.0
    # wrong molecule, unparsable, empty; gold only at position 6 is outside top-5
    late = C("methane", "ethane", "propane", "butane", "pentane", "benzoic acid")
    bad = task.score(ex, [C("methanol"), C("zzzz not a name", ""), late], Context(progress=False))
    assert bad["top_1"] == bad["top_5"] == 0.0


def test_iupac_to_smiles_oracle_and_anti_oracle():
    task = get_task("iupac_to_smiles")
    ex = [Example(n, meta={"smiles": s, "name": n}) for s, n in NAMES]
    gold = task.score(ex, [C("OCC"), C("<mol>c1ccccc1C(O)=O</mol>"), C("CC(O)C")], Context())
    assert gold["top_1"] == 1.0 and gold["valid_top_1"] == 1.0
    bad = task.score(ex, [C("CCCO"), C("C((("), EMPTY()], Context())
    assert bad["top_1"] == bad["top_5"] == 0.0 and bad["valid_top_1"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------- molecules

MOLS = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1", "O=C(O)CCCl"]


def _train_dir(tmp_path, task, responses):
    (tmp_path / "instructions").mkdir(exist_ok=True)
    lines = [json.dumps({"task": task, "instruction": "", "response": r, "meta": {}}) for r in responses]
    (tmp_path / "instructions" / "train.jsonl").write_text("\n".join(lines) + "\n")
    return Context(tmp_path)


def test_molecule_generation_oracle_and_anti_oracle(tmp_path):
    task = get_task("molecule_generation")
    ctx = _train_dir(tmp_path, "molecule_generation", ["<mol>CCCC</mol>", "<mol>OCC</mol>"])
    ex = task.examples(None, limit=4)
    gold = task.score(ex, [C(f"<mol>{m}</mol>") for m in MOLS[1:]], ctx)
    assert gold["validity"] == gold["uniqueness"] == gold["novelty"] == 1.0 and gold["internal_diversity"] > 0.5
    assert gold["novelty_task_train"] == 1.0 and 0.0 <= gold["novelty_moses_train"] <= 1.0
    assert gold["fcd"] is None or gold["fcd"] > 0.0
    bad = task.score(ex, [C("C1CC"), C(""), EMPTY(), C("<mol>X</mol>")], ctx)
    assert bad["validity"] == bad["uniqueness"] == bad["novelty"] == bad["internal_diversity"] == 0.0
    copies = task.score(ex, [C("CCO"), C("OCC"), C("C(O)C"), C("CCO")], ctx)  # training molecule, four times
    assert copies["validity"] == 1.0 and copies["uniqueness"] == 0.25 and copies["novelty"] == 0.0
    assert task.score(ex, [C("CCO")] * 4, Context())["novelty"] is None  # no training set known


def test_property_to_molecule_oracle_and_anti_oracle():
    from naturelm.tasks.property_to_molecule import measure

    task = get_task("property_to_molecule")
    ex, gold = [], []
    for prop in ("TPSA", "QED", "HBD", "RotBonds"):
        for m in MOLS[1:]:
            ex.append(Example("", meta={"property": prop, "target": measure(m, prop)}))
            gold.append(C(*[m] * task.samples))
    good = task.score(ex, gold, Context())
    assert good["validity"] == 1.0
    assert good["correct_TPSA"] == good["correct_QED"] == good["correct_HBD"] == 1.0
    assert good["spearman_TPSA"] == pytest.approx(1.0) and good["spearman_QED"] == pytest.approx(1.0)
    bad = task.score(ex, [C("C1C", "") for _ in ex], Context())  # invalid + missing samples
    assert bad["validity"] == 0.0 and bad["correct_TPSA"] == 0.0 and bad["spearman_TPSA"] == 0.0
    # TPSA answers in reverse order of the request: rank correlation -1, nothing within 5
    tpsa = sorted(MOLS[1:], key=lambda m: measure(m, "TPSA"))
    rev = [Example("", meta={"property": "TPSA", "target": measure(m, "TPSA")}) for m in tpsa]
    wrong = task.score(rev, [C(m) for m in reversed(tpsa)], Context())
    assert wrong["spearman_TPSA"] == pytest.approx(-1.0) and wrong["correct_TPSA"] == 0.0


def test_property_optimization_oracle_and_anti_oracle():
    from naturelm.tasks.property_to_molecule import measure

    task = get_task("property_optimization")
    src, up = "OCCO", "CCCCCCCO"
    assert measure(up, "LogP") - measure(src, "LogP") >= 1.0
    ex = [Example("", meta={"smiles": src, "property": "LogP", "direction": "increase", "delta": 1.0}),
          Example("", meta={"smiles": up, "property": "LogP", "direction": "decrease", "delta": 1.0})]
    good = task.score(ex, [C(up), C(src)], Context())
    assert good["success"] == 1.0 and good["uniqueness"] == 1.0
    bad = task.score(ex, [C("OCCO", "C(O)CO", "C1C", ""), C("CCCCCCCCCC"), ], Context())  # unchanged / invalid / wrong way
    assert bad["success"] == bad["success_per_sample"] == 0.0


def test_bbb_classification_oracle_and_anti_oracle():
    task = get_task("bbb_classification")
    labels = [1, 0, 1, 0]
    ex = [Example("C", meta={"smiles": "C", "label": y}) for y in labels]
    gold = task.score(ex, [C("Yes." if y else "No.", p_yes=0.9 if y else 0.2) for y in labels], Context())
    assert gold["auroc"] == 1.0 and gold["accuracy"] == 1.0
    hard = task.score(ex, [C("Yes." if y else "No.") for y in labels], Context())  # Yes/No without probabilities
    assert hard["auroc"] == 1.0
    wrong = task.score(ex, [C("x", p_yes=0.2 if y else 0.9) for y in labels], Context())
    assert wrong["auroc"] == 0.0 and wrong["accuracy"] == 0.0
    missing = task.score(ex, [C("maybe"), EMPTY(), C(""), EMPTY()], Context())
    assert missing["auroc"] == 0.0 and missing["accuracy"] == 0.0 and missing["answered"] == 0.0


@pytest.fixture(scope="module")
def small_bbb_oracle():
    from naturelm.tasks.oracles import load_bbb, train_oracle

    smiles, labels, _ = load_bbb()
    rng = random.Random(0)
    idx = rng.sample(range(len(smiles)), 500)
    return train_oracle("bbb", [smiles[i] for i in idx], [labels[i] for i in idx])


def test_bbb_optimization_oracle_and_anti_oracle(small_bbb_oracle):
    from naturelm.tasks.oracles import load_bbb

    task = get_task("bbb_optimization")
    ctx = Context()
    ctx._oracles["bbb"] = small_bbb_oracle
    smiles, labels, _ = load_bbb()
    probs = small_bbb_oracle.predict(smiles[:400])
    plus = [s for s, p in zip(smiles, probs) if p is not None and p >= 0.5][:3]
    minus = [s for s, p in zip(smiles, probs) if p is not None and p < 0.5][:3]
    ex = [Example(s, meta={"smiles": s}) for s in minus]
    good = task.score(ex, [C(p) for p in plus], ctx)
    assert good["success"] == 1.0 and 0.5 < good["oracle_heldout_auroc"] <= 1.0
    unchanged = [Example(s, meta={"smiles": s}) for s in plus]
    bad = task.score(unchanged, [C(s, "C1C", "") for s in plus], ctx)  # returns the input, invalid, empty
    assert bad["success"] == 0.0
    assert task.score(ex, [C(m) for m in reversed(minus)], ctx)["success"] == 0.0  # BBB- answers


# ---------------------------------------------------------------- proteins, RNA, materials, guide RNA


def _random_proteins(n, length=60, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(length)) for _ in range(n)]


def test_protein_generation_oracle_and_anti_oracle():
    task = get_task("protein_generation")
    seqs = _random_proteins(5)
    ex = task.examples(None, limit=5)
    good = task.score(ex, [C(f"<protein>{s}</protein>") for s in seqs], Context())
    assert good["validity"] == good["uniqueness"] == good["diversity"] == 1.0 and good["length_mean"] == 60
    bad = task.score(ex, [C("MKT1"), C(""), EMPTY(), C("<protein></protein>"), C("hello world!")], Context())
    assert bad["validity"] == bad["uniqueness"] == bad["diversity"] == 0.0 and bad["length_mean"] is None
    near = [seqs[0][:-i] + "A" * i for i in range(1, 6)]  # five near-copies: one cluster
    assert task.score(ex, [C(s) for s in near], Context())["diversity"] == pytest.approx(1 / 5)


def test_text_to_protein_oracle_and_anti_oracle():
    from naturelm.tasks.oracles import load_soluble, train_oracle

    seqs, labels, _ = load_soluble()
    rng = random.Random(0)
    idx = rng.sample(range(len(seqs)), 600)
    oracle = train_oracle("soluble", [seqs[i] for i in idx], [labels[i] for i in idx])
    probs = oracle.predict(seqs[:300])
    sol = [s for s, p in zip(seqs, probs) if p is not None and p > 0.5][:3]
    insol = [s for s, p in zip(seqs, probs) if p is not None and p < 0.5][:3]
    ctx = Context()
    ctx._oracles["soluble"] = oracle
    task = get_task("text_to_protein")
    ex = [Example("", meta={"property": "soluble"}) for _ in range(3)]
    assert task.score(ex, [C(s) for s in sol], ctx)["success"] == 1.0
    assert task.score(ex, [C(s) for s in insol], ctx)["success"] == 0.0
    bad = task.score(ex, [C("XXXX1"), EMPTY(), C("")], ctx)
    assert bad["success"] == 0.0 and bad["validity"] == 0.0


def test_rna_generation_oracle_and_anti_oracle():
    task = get_task("rna_generation")
    hairpins = ["GGGGCGCGCCGAAAGGCGCGCCCC", "GCGCGGCCGCUUCGGCGGCCGCGC", "CCCGGGCGCAAAAGCGCCCGGG"]
    ex = task.examples(None, limit=3)
    good = task.score(ex, [C(f"<rna>{h}</rna>") for h in hairpins], Context())
    assert good["validity"] == 1.0 and good["below_shuffled"] == 1.0
    assert good["mfe_mean"] < good["mfe_shuffled_mean"] < 0.5
    bad = task.score(ex, [C("A" * 30), C("HELLO"), EMPTY()], Context())  # poly-A folds like its shuffle
    assert bad["below_shuffled"] == 0.0 and bad["validity"] == pytest.approx(1 / 3)


MATERIALS = ["Li Li O <sg225>", "Na Cl <sg225>", "Mg O <sg225>"]


def test_material_generation_oracle_and_anti_oracle(tmp_path):
    task = get_task("material_generation")
    ctx = _train_dir(tmp_path, "material_generation", ["<material>Li Li Li Li O O <sg12></material>"])
    ex = task.examples(None, limit=3)
    good = task.score(ex, [C(f"<material>{m}</material>") for m in MATERIALS[1:] + ["K K S <sg1>"]], ctx)
    assert good["smact_validity"] == good["uniqueness"] == good["novelty"] == 1.0
    bad = task.score(ex, [C("Li Li Li O <sg1>"), C("Xx O"), EMPTY()], ctx)  # not charge-neutral, not an element
    assert bad["smact_validity"] == bad["uniqueness"] == bad["novelty"] == 0.0
    assert task.score(ex, [C("Li Li O <sg225>")] * 3, ctx)["novelty"] == 0.0  # Li2O is in training (as Li4O2)


def test_composition_to_material_element_precision():
    task = get_task("composition_to_material")
    ex = [Example("", meta={"elements": ["Li", "O"]}), Example("", meta={"elements": "Na, Cl"})]
    good = task.score(ex, [C(MATERIALS[0]), C(MATERIALS[1])], Context())
    assert good["element_precision"] == 1.0 and good["smact_validity"] == 1.0
    bad = task.score(ex, [C("Fe S <sg1>"), C("")], Context())
    assert bad["element_precision"] == 0.0


def test_guide_rna_oracle_and_anti_oracle():
    task = get_task("guide_rna")
    rng = random.Random(1)
    spacer = "".join(rng.choice("ACGT") for _ in range(20))
    flank = "".join(rng.choice("ACT") for _ in range(30))  # no G: no accidental PAM
    fwd = flank + spacer + "TGG" + flank
    comp = str.maketrans("ACGT", "TGCA")
    rev = fwd.translate(comp)[::-1]  # the protospacer sits on the other strand
    ex = [Example("", meta={"dna": fwd, "spacer": spacer}), Example("", meta={"dna": rev, "spacer": spacer})]
    good = task.score(ex, [C(f"<rna>{spacer.replace('T', 'U')}</rna>"), C(spacer)], Context())
    assert good["validity"] == good["spacer_match"] == 1.0
    no_pam = flank[:20]  # in the DNA but followed by no NGG
    bad = task.score(ex, [C(no_pam), C(spacer[:15])], Context())
    assert bad["validity"] == bad["spacer_match"] == 0.0
    assert task.score(ex, [EMPTY(), C("")], Context())["validity"] == 0.0
