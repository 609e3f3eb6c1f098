"""Hand-computed values that pin each metric's exact definition (small cases worked out by hand in the comments).

Each test here fails under a plausible wrong definition named in its docstring (issue 15, point 10), besides the
oracle / anti-oracle pairs of tests/test_metrics.py and tests/test_tasks.py.
"""
from __future__ import annotations

import json

import pytest

from naturelm.errors import ConfigError
from naturelm.tasks import metrics as M
from naturelm.tasks.base import Context, Example, get_task
from naturelm.tasks.baselines.base import Candidate


def C(*texts, **meta):
    return [Candidate(t, meta=dict(meta)) for t in texts]


# ---------------------------------------------------------------- materials


def test_element_fidelity_precision_and_recall_by_hand():
    """Wrong definition caught: precision computed as recall (or the reverse)."""
    # Li2O for {Li, Fe, P, O}: 2 of its 2 elements requested (precision 1), 2 of 4 requested present (recall 0.5)
    assert M.element_fidelity({"Li", "Fe", "P", "O"}, "Li2O") == (1.0, 0.5)
    # KNaCl2 for {Na, Cl}: 2 of 3 elements requested (precision 2/3), both requested present (recall 1)
    p, r = M.element_fidelity(["Na", "Cl"], "KNaCl2")
    assert p == pytest.approx(2 / 3) and r == 1.0
    assert M.element_fidelity(["Na", "Cl"], "ClNa") == (1.0, 1.0)  # oracle
    assert M.element_fidelity(["Na", "Cl"], "FeS") == (0.0, 0.0)  # anti-oracle: nothing requested is used
    assert M.element_fidelity(["Na"], "") == (0.0, 0.0) and M.element_fidelity(["Na"], None) == (0.0, 0.0)
    assert M.element_fidelity(["Na"], "Qq2") == (0.0, 0.0)  # unparsable
    with pytest.raises(ConfigError, match="requested_elements"):
        M.element_fidelity([], "NaCl")


def test_smact_with_and_without_alloy_shortcut():
    """Wrong definitions caught: SMACT without the electronegativity test; the alloy shortcut applied silently."""
    from smact.screening import smact_validity

    from naturelm.language.codecs import smact_valid

    # FeNi3: all metals, valid only through SMACT's alloy shortcut
    assert smact_valid("FeNi3") and not smact_valid("FeNi3", alloy_shortcut=False)
    # H3Cl: charge-neutral as H(-1)3 Cl(+3), but the anion H is less electronegative than Cl: fails Pauling
    assert smact_validity("H3Cl", use_pauling_test=False, include_alloys=False)
    assert not smact_valid("H3Cl") and not smact_valid("H3Cl", alloy_shortcut=False)
    assert smact_valid("LiFePO4", alloy_shortcut=False) and smact_valid("Fe", alloy_shortcut=False)
    assert not smact_valid("NaCl3O7") and not smact_valid("not a formula")


def _card_dir(tmp_path, bound):
    (tmp_path / "card.json").write_text(json.dumps({"materials": {"atoms_per_cell_bound": bound}}))
    return Context(tmp_path)


def test_composition_to_material_fidelity_smact_and_cell_bound_by_hand(tmp_path):
    task = get_task("composition_to_material")
    ex = [Example("", meta={"elements": ["Li", "Fe", "P", "O"]}), Example("", meta={"elements": "Na, Cl"}),
          Example("", meta={"elements": ["Fe", "Ni"]}), Example("", meta={"elements": ["Mg", "O"]})]
    preds = [C("<material>Li Li O <sg225></material>"),  # (1, 1/2), SMACT-valid, 3 atoms
             C("<material>K Na Cl Cl <sg1></material>"),  # (2/3, 1), SMACT-valid, 4 atoms
             C("<material>Fe Ni Ni Ni <sg221></material>"),  # (1, 1), valid only through the alloy shortcut, 4 atoms
             C("")]  # empty: (0, 0), invalid, outside any bound
    out = task.score(ex, preds, _card_dir(tmp_path, 3))
    assert out["element_precision"] == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)
    assert out["element_recall"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert out["element_exact"] == pytest.approx(1 / 4)
    assert out["smact_validity"] == pytest.approx(3 / 4)
    assert out["smact_validity_no_alloy_shortcut"] == pytest.approx(2 / 4)
    assert out["within_atoms_bound"] == pytest.approx(1 / 4) and out["atoms_per_cell_bound"] == 3
    assert task.score(ex, preds, Context())["within_atoms_bound"] is None  # no card: unknown, not 1.0
    gold = task.score(ex[:2], [C("Fe Li P O O O O <sg62>"), C("Na Cl <sg225>")], _card_dir(tmp_path, 112))
    assert gold["element_precision"] == gold["element_recall"] == gold["element_exact"] == 1.0
    assert gold["within_atoms_bound"] == 1.0


def test_smact_as_requested_and_charge_balance_possible_by_hand(tmp_path):
    """Wrong definitions caught: the alloy shortcut applied to a request that is not an alloy; a 'possible' share
    that ignores the atoms bound or the requested set."""
    task = get_task("composition_to_material")
    ex = [Example("", meta={"elements": ["Mg", "O"]}), Example("", meta={"elements": ["Fe", "Ni"]}),
          Example("", meta={"elements": ["Li", "Fe", "P", "O"]}), Example("", meta={"elements": ["Na", "Cl"]})]
    preds = [C("<material>Mg Al <sg1></material>"),  # all metals: passes only by the shortcut, not asked for Mg, O
             C("<material>Fe Ni Ni Ni <sg221></material>"),  # an alloy request: the shortcut is what it asks
             C(""),  # invalid
             C("<material>Na Cl <sg225></material>")]  # Na+ Cl-
    out = task.score(ex, preds, _card_dir(tmp_path, 3))
    assert out["smact_validity"] == pytest.approx(3 / 4)
    assert out["smact_validity_no_alloy_shortcut"] == pytest.approx(1 / 4)
    assert out["smact_validity_as_requested"] == pytest.approx(2 / 4)
    # within 3 atoms: MgO and NaCl exist; Fe-Ni has no negative oxidation state; Li, Fe, P, O need 4 atoms
    assert out["charge_balance_possible"] == pytest.approx(2 / 4)
    assert task.score(ex, preds, _card_dir(tmp_path, 112))["charge_balance_possible"] == pytest.approx(3 / 4)


def test_composition_formula_match_and_cell_medians_by_hand():
    """Wrong definitions caught: matching the cell rather than the composition (Li2Fe2P2O8 is LiFePO4), matching
    the element set only (LiFePO3 is not LiFePO4), an invalid answer or a record without a material counting, a
    median that takes the invalid answers as 0 atoms."""
    task = get_task("composition_to_material")
    lfp = "<material>Li Fe P O O O O <sg62></material>"
    ex = [Example("", meta={"elements": ["Li", "Fe", "P", "O"]}, response=lfp),
          Example("", meta={"elements": ["Li", "Fe", "P", "O"]}, response=lfp),
          Example("", meta={"elements": ["Na", "Cl"]}, response="<material>Na Cl <sg225></material>"),
          Example("", meta={"elements": ["Zn", "O"]}, response="")]
    preds = [C("Li Li Fe Fe P P O O O O O O O O <sgNone>"),  # the same composition in a doubled cell: 14 atoms
             C("Li Fe P O O O <sgNone>"),  # the right elements, not the compound: 6 atoms
             C(""),  # invalid
             C("Zn O <sgNone>")]  # 2 atoms, but the record holds no material to match
    out = task.score(ex, preds, Context())
    assert out["formula_match"] == pytest.approx(1 / 4)
    assert out["atoms_per_cell_median"] == 6  # of 14, 6 and 2 (the invalid answer has no cell)
    assert out["record_atoms_per_cell_median"] == 7  # 7, 7, 2
    oracle = task.score(ex[:3], [C(e.response) for e in ex[:3]], Context())
    assert oracle["formula_match"] == 1.0 and oracle["atoms_per_cell_median"] == oracle["record_atoms_per_cell_median"]
    anti = task.score(ex[:3], [C("Na Cl Cl <sgNone>"), C(""), C("Li Fe P O O O O <sgNone>")], Context())
    assert anti["formula_match"] == 0.0
    assert task.score(ex[:1], [C("")], Context())["atoms_per_cell_median"] is None


def test_atoms_per_cell_bound_is_a_training_quantile():
    from naturelm.data.build import atoms_per_cell_stats

    mats = ["Li " * k + "<sgNone>" for k in range(1, 101)]  # cells of 1..100 atoms
    stats = atoms_per_cell_stats(mats)
    # sorted sizes 1..100; index int(0.99 * 100) = 99 -> 100 atoms; at quantile 0.9: index 90 -> 91 atoms
    assert stats["atoms_per_cell_bound"] == 100 and stats["atoms_per_cell_max"] == 100
    assert atoms_per_cell_stats(mats, quantile=0.9)["atoms_per_cell_bound"] == 91
    assert atoms_per_cell_stats([])["atoms_per_cell_bound"] is None


# ---------------------------------------------------------------- optimisation


def test_optimisation_summary_by_hand():
    """Success per input (any sample), per sample, and constrained to Tanimoto >= 0.4 to the input."""
    wins = [[True, False], [True, True], [False, False]]
    sims = [[0.3, 0.9], [0.4, 0.45], [0.8, None]]
    out = M.optimisation_summary(wins, sims)
    # input 0 wins only with a sample at 0.3 (unconstrained only); input 1 wins at 0.4 (the bound counts) and 0.45
    assert out["success"] == pytest.approx(2 / 3) and out["success_per_sample"] == pytest.approx(3 / 6)
    assert out["success_constrained"] == pytest.approx(1 / 3)
    assert out["success_per_sample_constrained"] == pytest.approx(2 / 6)
    assert out["success_similarity_median"] == pytest.approx(0.4) and out["similarity_constraint"] == 0.4
    none = M.optimisation_summary([[False]], [[None]])
    assert none["success"] == none["success_constrained"] == 0.0 and none["success_similarity_median"] is None


def test_tanimoto_is_morgan_radius_2_2048_bits():
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    a, b = "OCCc1ccccc1", "OCCc1ccc(C(C)(C)C)cc1"
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fa, fb = (gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in (a, b))
    on_a, on_b = set(fa.GetOnBits()), set(fb.GetOnBits())
    assert M.tanimoto(a, b) == pytest.approx(len(on_a & on_b) / len(on_a | on_b))
    assert M.tanimoto(a, b) == pytest.approx(DataStructs.TanimotoSimilarity(fa, fb)) == pytest.approx(0.48)
    assert M.tanimoto(a, a) == 1.0 and M.tanimoto(a, "C1C") is None and M.tanimoto("", a) is None


def test_property_optimisation_constrained_success():
    task = get_task("property_optimization")
    src = "OCCc1ccccc1"
    ex = [Example("", meta={"smiles": src, "property": "LogP", "direction": "increase", "delta": 1.0})] * 2
    # tert-butyl analogue: LogP +1.30 at Tanimoto 0.48 (constrained success); heptanol: +0.73 (fails the delta);
    # 2,5-dichloro analogue: +1.31 at Tanimoto 0.31 (success only without the constraint)
    out = task.score(ex, [C("OCCc1ccc(C(C)(C)C)cc1", "CCCCCCCO"), C("Clc1ccc(Cl)cc1CCO")], Context())
    assert out["success"] == 1.0 and out["success_constrained"] == 0.5
    assert out["success_per_sample"] == pytest.approx(2 / 8) and out["success_per_sample_constrained"] == pytest.approx(1 / 8)


# ---------------------------------------------------------------- unconditional molecules


def test_novelty_counts_distinct_molecules():
    """Wrong definition caught: novelty over all valid outputs instead of the distinct ones."""
    # distinct {A, B, C}; B and C are not in the reference -> 2/3 (over all four valid outputs it would be 2/4)
    assert M.novelty(["A", "A", "B", "C"], {"A"}) == pytest.approx(2 / 3)
    assert M.uniqueness(["A", "A", "B", "C"]) == pytest.approx(3 / 4)


def test_internal_diversity_includes_self_pairs_at_1024_bits():
    """Wrong definitions caught: IntDiv without self-pairs; 2,048-bit fingerprints."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    a, b = "CC(=O)Nc1ccc(O)cc1", "CC(=O)Nc1ccccc1"
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    t = DataStructs.TanimotoSimilarity(*(gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in (a, b)))
    # ordered pairs (a,a) (b,b) (a,b) (b,a): 1 - (1 + 1 + 2t) / 4
    assert M.internal_diversity([a, b]) == pytest.approx((1 - t) / 2)
    assert M.internal_diversity([a, b]) != pytest.approx(1 - t)


def test_molecule_novelty_against_everything_trained_on(tmp_path, monkeypatch):
    from naturelm.tasks import molecule_generation as MG

    (tmp_path / "instructions").mkdir()
    recs = [{"task": "molecule_generation", "instruction": "<mol>", "response": "<mol>CCO</mol>", "meta": {}},
            {"task": "bbb_classification", "instruction": "Can <mol>c1ccccc1O</mol> cross?", "response": "Yes.",
             "meta": {"smiles": "c1ccccc1O", "label": 1}},
            {"task": "retrosynthesis", "instruction": "reactants for <product>CC(=O)OCC</product>",
             "response": "<reactants>CC(=O)O.CCCO</reactants>", "meta": {"product": "CC(=O)OCC"}}]
    (tmp_path / "instructions" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    monkeypatch.setattr(MG, "moses_train", lambda: frozenset({"CCO", "CCCCCC"}))
    task = get_task("molecule_generation")
    ex = task.examples(None, limit=5)
    preds = [C("<mol>OCC</mol>"), C("<mol>Oc1ccccc1</mol>"), C("<mol>OCCC</mol>"), C("<mol>CCCCCC</mol>"), C("C1C")]
    out = task.score(ex, preds, Context(tmp_path))
    # distinct valid: CCO, phenol, propanol, hexane. Trained on (any task, any side): CCO, phenol, propanol -> 1/4
    assert out["novelty"] == pytest.approx(1 / 4)
    assert out["novelty_task_train"] == pytest.approx(3 / 4)  # only CCO was a molecule_generation answer
    assert out["novelty_moses_train"] == pytest.approx(2 / 4)  # CCO and hexane are in (this stand-in for) MOSES
    (tmp_path / "train_molecules.txt").write_text("CCCCCC\n")  # a build's own list wins over the records
    assert task.score(ex, preds, Context(tmp_path))["novelty"] == pytest.approx(3 / 4)


def test_fcd_against_moses_test_statistics():
    pytest.importorskip("fcd_torch")
    from naturelm.tasks import molecule_generation as MG

    floor = MG.fcd_reference(50)  # 50 MOSES test molecules: the best a generator can score at n = 50
    junk = MG.fcd_to_moses_test(["CCO", "CCCCCCCCCCCC", "C", "CC", "O=C=O"] * 10)
    assert 0.0 < floor < junk
    assert MG.fcd_to_moses_test(["CCO"]) is None


# ---------------------------------------------------------------- RNA


def _dinucleotides(s):
    from collections import Counter

    return Counter(zip(s, s[1:]))


def test_dinucleotide_shuffle_preserves_dinucleotides():
    """Wrong controls caught: the reversed sequence, a mononucleotide shuffle."""
    import random

    from naturelm.tasks.rna import dinucleotide_shuffle

    rng = random.Random(0)
    seq = "GGGGCGCGCCGAAAGGCGCGCCCCAUAUGCGAUCG"
    shuffles = {dinucleotide_shuffle(seq, rng) for _ in range(20)}
    assert len(shuffles) > 10  # several distinct controls
    for s in shuffles:
        assert _dinucleotides(s) == _dinucleotides(seq) and s[0] == seq[0] and s[-1] == seq[-1]
    assert _dinucleotides(seq[::-1]) != _dinucleotides(seq)  # so a reversal would fail the loop above
    # AACC is the only walk over {AA, AC, CC}; ACAGA has exactly two (ACAGA, AGACA), drawn about equally often
    assert {dinucleotide_shuffle("AACC", rng) for _ in range(20)} == {"AACC"}
    draws = [dinucleotide_shuffle("ACAGA", rng) for _ in range(2000)]
    assert set(draws) == {"ACAGA", "AGACA"} and 0.45 < draws.count("ACAGA") / 2000 < 0.55


def test_rna_mfe_difference_by_hand(monkeypatch):
    from naturelm.tasks import rna

    energies = {"GGGAAACCC": -3.0, "GGAUUUCCA": -1.0}
    monkeypatch.setattr(rna, "dinucleotide_shuffle", lambda s, rng: s[::-1] + "#")  # stand-in controls
    monkeypatch.setattr(rna, "mfe", lambda s: energies.get(s, -2.0))  # every control folds at -2.0
    out = rna.rna_metrics(["GGGAAACCC", "GGAUUUCCA", None, None], shuffles=3)
    # differences: -3 - (-2) = -1 and -1 - (-2) = +1 -> mean 0, sample std sqrt(2), sem 1; one of FOUR samples below
    assert out["mfe_difference_mean"] == 0.0 and out["mfe_difference_std"] == pytest.approx(2 ** 0.5)
    assert out["mfe_difference_sem"] == pytest.approx(1.0) and out["below_shuffled"] == 0.25
    assert out["mfe_shuffled_mean"] == -2.0 and out["validity"] == 0.5 and out["shuffles_per_sequence"] == 3


# ---------------------------------------------------------------- proteins

PA = "IWVFNYSWDYASKVIHSVVSPFIFTPADGWCLAKSYPQPW"  # 40 residues
PB = "IWVWNYSYDYAWKVIWSVVWPFIWTPAWGWCWAKSWPQPY"  # PA with 10 substitutions: 30/40 identical
PD = "NYSYDWAWKWIWSWVWPWIWTWAWGYCWAKSY"  # PA[4:36] with 13 substitutions: 19/32 identical


def test_protein_identity_and_coverage_by_hand():
    """Wrong definitions caught: identity over the longer sequence; free end gaps without a coverage rule."""
    from naturelm.tasks.proteins import identity_coverage, same_cluster

    ident, ca, cb = identity_coverage(PA, PB)
    assert (ident, ca, cb) == (pytest.approx(30 / 40), 1.0, 1.0)
    ident, ca, cb = identity_coverage(PA, PD)
    # 19 identical of 32 alignment columns = 0.594 (19/40 = 0.475 over the longer one); PD covers 32/40 of PA
    assert (ident, ca, cb) == (pytest.approx(19 / 32), pytest.approx(0.8), 1.0) and same_cluster(PA, PD)
    ident, ca, cb = identity_coverage(PA, PA[:20])  # identical, but covers half of PA: not one cluster
    assert (ident, ca, cb) == (1.0, 0.5, 1.0) and not same_cluster(PA, PA[:20])


def test_protein_clusters_at_50_percent_identity_by_hand():
    """Wrong definition caught: clustering threshold 0.9."""
    from naturelm.tasks.proteins import greedy_clusters, protein_metrics

    # longest first: PA represents; PB (0.75) and PD (0.59, coverage 0.8) join it; PA[:20] (coverage 0.5) starts one
    assert greedy_clusters([PD, PA[:20], PB, PA]) == 2
    out = protein_metrics([PA, PB, PD, PA[:20], None])
    assert out["diversity"] == pytest.approx(2 / 4) and out["diversity_engine"] == "python"
    assert out["validity"] == pytest.approx(4 / 5)


@pytest.mark.slow
def test_mmseqs2_agrees_with_the_python_definition():
    import shutil

    from naturelm.tasks.proteins import cluster_count

    if shutil.which("mmseqs") is None:
        pytest.skip("mmseqs2 not installed (apt-get install mmseqs2)")
    seqs = [PA[:20], PB, PA]  # clear cases (PD sits exactly on the coverage bound, where MMseqs2's alignment ends differ)
    assert cluster_count(seqs, "mmseqs2") == cluster_count(seqs, "python") == 2


def test_text_to_protein_reports_the_opposite_class(monkeypatch):
    from naturelm.tasks.oracles import Oracle

    class Fixed:  # p(soluble) by sequence
        def predict_proba(self, rows):
            import numpy as np

            return np.array([[1 - r, r] for r in rows])

    oracle = Oracle("soluble", Fixed(), 0.7, 1, 1, "stand-in")
    p = {"AAAA": 0.9, "CCCC": 0.8, "DDDD": 0.2, "EEEE": 0.7}
    monkeypatch.setattr("naturelm.tasks.oracles.featurize", lambda name, s: p[s])
    ctx = Context()
    ctx._oracles["soluble"] = oracle
    ex = [Example("", meta={"property": w}) for w in ("soluble", "soluble", "insoluble", "insoluble")]
    out = get_task("text_to_protein").score(ex, [C("AAAA"), C("DDDD"), C("CCCC"), C("EEEE")], ctx)
    # asked soluble: called soluble 1 of 2; asked insoluble: called insoluble 0 of 2, called soluble 2 of 2
    assert out["success"] == 0.25 and out["success_soluble"] == 0.5 and out["success_insoluble"] == 0.0
    assert out["called_soluble_when_asked_opposite"] == 1.0 and out["called_insoluble_when_asked_opposite"] == 0.5
    assert out["conditioning_gain"] == pytest.approx(((0.5 - 1.0) + (0.0 - 0.5)) / 2)


# ---------------------------------------------------------------- property -> molecule


def test_property_to_molecule_correct_share_by_hand():
    """Wrong definitions caught: QED tolerance 0.5; the correct share over valid samples only."""
    task = get_task("property_to_molecule")
    ex = [Example("", meta={"property": "QED", "target": 0.6})]
    # paracetamol QED 0.595 and nicotine 0.626 are within 0.05 of 0.6; ibuprofen (0.822) is not; 7 slots invalid
    samples = ["CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1"] + ["C1C"] * 5 + ["", ""]
    out = task.score(ex, [C(*samples)], Context())
    assert task.samples == 10 and out["correct_QED"] == pytest.approx(2 / 10) and out["validity"] == pytest.approx(3 / 10)
    assert out["spearman_QED"] == 0.0  # one requested value: no evidence of order


# ---------------------------------------------------------------- canonical forms and naming


def test_strip_atom_maps_drops_stereo_that_vanishes_with_the_maps():
    from naturelm.language.codecs import strip_atom_maps

    assert strip_atom_maps("[CH3:1][C@H:2]([CH3:3])[OH:4]") == "CC(C)O"
    assert strip_atom_maps("[CH3:1][C@H:2]([NH2:3])[OH:4]") == "C[C@H](N)O"  # a real stereocentre stays
    assert strip_atom_maps("[CH3:1]/[CH:2]=[C:3](/[CH3:4])[CH3:5]") == "CC=C(C)C"
    assert strip_atom_maps("C/C=C/C") == "C/C=C/C"


def test_top5_naming_counts_distinct_structures():
    """Wrong definition caught: the first 5 names cut before synonyms merge."""
    from naturelm.tools.opsin import names_to_smiles

    names = ["ethanol", "ethyl alcohol", "methanol", "propan-1-ol", "butan-1-ol", "pentan-1-ol", "hexan-1-ol"]
    names_to_smiles(names)  # one JVM start; scoring reads OPSIN's cache
    task = get_task("smiles_to_iupac")
    ex = [Example("CCCCCO", meta={"smiles": "CCCCCO"}), Example("CCCCCCO", meta={"smiles": "CCCCCCO"})]
    out = task.score(ex, [C(*names), C(*names)], Context(progress=False))
    # structures in order: ethanol (2 names), methanol, propanol, butanol, pentanol -> pentanol is 5th, hexanol 6th
    assert out["top_5"] == pytest.approx(1 / 2) and out["top_1"] == 0.0


def test_verified_names_prefer_the_namer_closer_to_iupac():
    from naturelm.tools.naming import smiles_to_iupac_verified

    answers = smiles_to_iupac_verified("c1ccc2ccccc2c1", method="rules")
    # both namers round-trip through OPSIN; openclatura's name is the IUPAC one and comes first, each says its source
    assert [(a.name, a.source, a.verified) for a in answers] == [("naphthalene", "openclatura", True),
                                                                 ("naphthalen", "nispo", True)]
