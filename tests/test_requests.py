"""What a prompt asks for, held while decoding (naturelm.tasks.requests), on a tiny random Llama.

A random model writes anything the masks allow, so whatever holds here holds by construction, not by training.
"""
from __future__ import annotations

import random

import pytest

from naturelm.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

DNA = "TTGACCTAGCATGCAAGTCGATCGGATCCATGCAAGGCTTACGATCGAAGCAT"


@pytest.fixture(scope="module")
def cons(lm):
    return lm.engine.constraints(True)


# ---------------------------------------------------------------------------------------------- guide RNA
def test_target_spacers_hand_computed():
    from naturelm.tasks.guide_rna import target_spacers, valid_guide

    # + strand: 17 nt then the PAM TGG; its reverse complement CCA + T*17 has no GG
    dna = "A" * 17 + "TGG"
    assert target_spacers(dna) == {"A" * 17}
    assert target_spacers("A" * 30) == frozenset()
    assert target_spacers("C" * 20) == {"G" * 17}  # the other strand is G*20: PAM GGG after 17 nt
    # reverse strand: CCN + 17 nt on the given strand is NGG + spacer on the other one
    minus = "CCA" + "GATTACAGATTACAGAT"
    assert target_spacers(minus) == {"AUCUGUAAUCUGUAAUC"}
    for s in target_spacers(DNA):
        assert valid_guide(s, DNA) and 17 <= len(s) <= 24
    assert all(valid_guide(s, DNA) for s in target_spacers(DNA))


def test_guides_are_spacers_of_the_target(lm):
    """Every constrained guide is valid; the random model without the request writes invalid ones."""
    from naturelm.tasks.guide_rna import valid_guide

    held = lm.guide_rna(DNA, n=8, temperature=1.0)
    assert len(held) == 8 and all(valid_guide(g.canonical, DNA) for g in held)
    assert all(g.draws == 1 for g in held)  # the trie leaves nothing to reject
    free = lm.guide_rna(DNA, n=8, temperature=1.0, constrained=False)
    assert not any(valid_guide(g.canonical, DNA) for g in free)


def test_dna_without_a_pam_is_a_config_error():
    from naturelm.tasks.requests import SpacerRequest, request_for

    with pytest.raises(ConfigError, match="PAM"):
        SpacerRequest("A" * 40)
    assert request_for("guide_rna", "Generate a guide RNA for targeting the DNA sequence <dna>AAAA</dna>") is None


# ---------------------------------------------------------------------------------------------- materials
def test_materials_hold_the_requested_elements_and_the_cell_bound(lm):
    from naturelm.language.codecs import atoms_in_cell
    from naturelm.tasks.materials import parse_material
    from naturelm.tasks.requests import ElementsRequest

    request = ElementsRequest(["Li", "Fe", "P", "O"], max_atoms=9)
    prompt = "Build a material that has Li, Fe, P, O"
    out = lm.generate([prompt], n=8, temperature=1.0, expect="material", requests=[request], max_draws=2)[0]
    assert len(out) == 8
    for g in out:
        parsed = parse_material(g.entity)
        assert parsed is not None and parsed[2] == {"Li", "Fe", "P", "O"}, g.raw
        assert atoms_in_cell(parsed[0]) <= 9
        assert 1 <= g.draws <= 2
    free = lm.generate([prompt], n=8, temperature=1.0, expect="material", constrained=False)[0]
    assert not all((p := parse_material(g.entity)) and p[2] == {"Li", "Fe", "P", "O"} for g in free)


def test_material_request_from_the_prompt_uses_the_card_bound():
    from naturelm.language.codecs.material import MAX_ATOMS
    from naturelm.tasks.requests import ElementsRequest, cell_atom_bound, request_for

    card = {"materials": {"atoms_per_cell_bound": 40}}
    r = request_for("composition_to_material", "Generate a material composed of Li, Ti, O.", card)
    assert isinstance(r, ElementsRequest) and r.elements == ("Li", "O", "Ti") and r.max_atoms == 40
    assert not r.alloy and ElementsRequest(["Fe", "Ni"], 10).alloy
    assert cell_atom_bound(None) == MAX_ATOMS
    assert request_for("composition_to_material", "Say hello") is None
    with pytest.raises(ConfigError, match="element"):
        ElementsRequest(["Xx"], 10)


def test_material_accept_uses_smact_without_the_alloy_shortcut(lm, cons):
    from naturelm.generate.postprocess import to_generation
    from naturelm.tasks.requests import ElementsRequest

    r = ElementsRequest(["Li", "O"], 20).bind(cons)
    assert r.accept(to_generation("<material>Li Li O <sgNone></material>", 0.0))  # Li2O: charge-neutral
    assert not r.accept(to_generation("<material>Li O O O <sgNone></material>", 0.0))  # LiO3: no neutral assignment
    metals = ElementsRequest(["Fe", "Ni"], 20).bind(cons)
    assert metals.accept(to_generation("<material>Fe Ni Ni Ni <sgNone></material>", 0.0))  # an alloy request


def test_charge_balance_hand_computed():
    """Li (+1) and O (-2, -1; +2 would leave no anion): LiO (peroxide-like O-1), Li2O and Li2O2 are the valid
    counts within 4 atoms; LiO2 and Li3O are not."""
    from naturelm.language.codecs import smact_valid
    from naturelm.tasks.requests import ChargeBalance

    cb = ChargeBalance(("Li", "O"), 4, alloy_shortcut=False)
    valid = {(li, o) for li in range(1, 4) for o in range(1, 4) if li + o <= 4 and cb.valid((li, o))}
    assert valid == {(1, 1), (2, 1), (2, 2)}
    assert valid == {(li, o) for li in range(1, 4) for o in range(1, 4)
                     if li + o <= 4 and smact_valid(f"Li{li}O{o}", alloy_shortcut=False)}
    assert cb.reachable((1, 2), 1)  # + Li -> Li2O2
    assert not cb.reachable((1, 3), 0) and not cb.reachable((1, 3), 1)  # Li2O3, LiO4 are not neutral
    assert cb.reachable((0, 0), 2) and not cb.reachable((0, 0), 1)  # both elements need an atom
    assert not cb.reachable((3, 0), 1)  # Li3O is the only way on, and it is not neutral
    # fewest atoms to a valid composition: LiO2 + Li; LiO3 + Li Li (Li3O3); Li + O; none within 1 atom of Li3
    assert [cb.completion(c, 4) for c in [(1, 2), (1, 3), (1, 0), (2, 1)]] == [1, 2, 1, 0]
    assert cb.completion((3, 0), 1) is None


def test_a_composition_the_model_would_end_closes_at_the_nearest_valid_one(cons):
    """Where the model would rather stop than go on but the counts are not valid yet, only atoms on a shortest
    way to a valid composition remain; where it would go on, every atom that keeps one reachable."""
    import torch

    from naturelm.tasks.requests import ElementsRequest

    r = ElementsRequest(["Li", "O"], 20).bind(cons)
    li, o = (next(i for i, j in r.ids.items() if r.elements[j] == e) for e in ("Li", "O"))
    rs = (1, 2)  # LiO2: not charge-neutral; Li2O2 is one Li away, O keeps Li3O3 within reach
    stop = torch.zeros(cons.vocab_size)
    stop[r.finish] = 10.0
    go = torch.zeros(cons.vocab_size)
    go[[li, o]] = 10.0
    assert bool(r.allowed(rs, 50)[li]) and bool(r.allowed(rs, 50)[o]) and not bool(r.allowed(rs, 50)[r.finish].any())
    assert bool(r.allowed(rs, 50, go)[o])
    nearest = r.allowed(rs, 50, stop)
    assert bool(nearest[li]) and not bool(nearest[o]) and not bool(nearest[r.finish].any())
    assert bool(r.allowed((2, 2), 50, stop)[r.finish].any())  # Li2O2 closes


@pytest.mark.parametrize("elements, atoms", [(("Fe", "O"), 12), (("Ba", "O", "Ti"), 9), (("Au", "Mg", "Pd"), 7),
                                             (("Cl", "Na"), 10), (("Cu", "Zn"), 6)])
def test_charge_balance_is_smact_on_every_small_composition(elements, atoms):
    """Oracle: SMACT itself on every count vector within the bound; reachability against brute force."""
    import itertools

    from naturelm.language.codecs import smact_valid
    from naturelm.tasks.requests import ChargeBalance

    cb = ChargeBalance(elements, atoms, alloy_shortcut=False)
    grid = [c for c in itertools.product(range(atoms + 1), repeat=len(elements)) if sum(c) <= atoms]
    valid = [c for c in grid if min(c) >= 1 and cb.valid(c)]
    for c in grid:
        if min(c) >= 1:
            formula = "".join(f"{e}{n}" for e, n in zip(elements, c))
            assert cb.valid(c) == smact_valid(formula, alloy_shortcut=False), formula
        brute = any(all(v >= p for v, p in zip(w, c)) for w in valid)
        assert cb.reachable(c, atoms - sum(c)) == brute, c
    assert cb.feasible == bool(valid)
    assert ChargeBalance(("Cu", "Zn"), atoms, alloy_shortcut=True).free  # the alloy shortcut: every count is valid


def test_composition_is_charge_balanced_by_construction(lm):
    """The random model writes only SMACT-valid compositions (without the alloy shortcut) of exactly the requested
    elements, first draw; without the request it does not."""
    from naturelm.language.codecs import smact_valid
    from naturelm.tasks.materials import parse_material
    from naturelm.tasks.requests import ElementsRequest

    request = ElementsRequest(["Li", "Fe", "P", "O"], max_atoms=14)
    assert not request.alloy and "charge-balanced" in request.what
    prompt = "Build a material that has Li, Fe, P, O"
    out = lm.generate([prompt], n=12, temperature=1.0, expect="material", requests=[request], max_draws=3)[0]
    for g in out:
        parsed = parse_material(g.entity)
        assert parsed is not None and parsed[2] == {"Li", "Fe", "P", "O"}, g.raw
        assert smact_valid(parsed[1], alloy_shortcut=False), parsed[1]
        assert g.draws == 1 and g.check("decoding_constraints").passed
    free = lm.generate([prompt], n=12, temperature=1.0, expect="material", constrained=False)[0]
    assert not all((p := parse_material(g.entity)) and smact_valid(p[1], alloy_shortcut=False) for g in free)


def test_composition_without_any_valid_stoichiometry_holds_the_elements():
    from naturelm.tasks.requests import ElementsRequest

    request = ElementsRequest(["Ne", "O"], max_atoms=20)  # neon has no ICSD-24 oxidation state
    assert not request.charge.feasible and "not held" in request.what


# ---------------------------------------------------------------------------------------------- molecules
def _walk(cons, request, rng, budget):
    """Uniform random choices among the allowed tokens (grammar, and the request when given, as the engine
    combines them), organic-subset atoms and ring labels 1-9 only: the SMILES and whether the request's mask ever
    left nothing (the grammar alone went on)."""
    mol = cons.open_of["mol"]
    brackets = [i for i, u in cons.unit.items() if u.startswith("[") or u.startswith("%")]
    state, rs, ids, fell_back = cons.start([mol]), (request.start() if request else None), [], False
    for step in range(budget):
        mask = cons.allowed(state, budget - step).clone()
        mask[brackets] = False
        extra = request.allowed(rs, budget - step) if request is not None else None
        if extra is not None:
            if bool((mask & extra).any()):
                mask = mask & extra
            else:
                fell_back = True
        t = rng.choice(mask.nonzero().flatten().tolist())
        ids.append(t)
        if request is not None:
            rs = request.advance(rs, t)
        state = cons.advance(state, t)
        if state.done:
            break
    return "".join(cons.unit.get(i, "") for i in ids), fell_back


def _valence_error(smiles) -> bool:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    return mol is not None and any(p.GetType() == "AtomValenceException" for p in Chem.DetectChemistryProblems(mol))


def test_valence_mask_leaves_no_atom_over_its_valence(cons):
    """Random walks over every atom the tokenizer knows: no valence error unless the mask had to give way to the
    grammar (a dead end: the answer is then checked by RDKit and drawn again). Random walks open many rings and
    meet the grammar's forced closures at the token budget, so dead ends are common here, unlike in model output."""
    from naturelm.tasks.requests import ValidMoleculeRequest

    request = ValidMoleculeRequest().bind(cons)
    rng = random.Random(0)
    held = [_walk(cons, request, rng, 60) for _ in range(200)]
    free = [_walk(cons, None, rng, 60) for _ in range(200)]
    assert not any(_valence_error(s) for s, fell_back in held if not fell_back)
    assert sum(not fell_back for _, fell_back in held) >= 20
    assert sum(_valence_error(s) for s, _ in free) >= 15


@pytest.mark.parametrize("unit, valence", [("C", 4), ("c", 3), ("Cl", 1), ("[nH]", 2), ("[NH3+]", 1), ("[O-]", 1),
                                           ("[C@@H]", 3), ("[Na+]", 8), ("[13CH2]", 2)])
def test_atom_valence_hand_computed(unit, valence):
    from naturelm.tasks.requests import atom_valence

    assert atom_valence(unit) == valence


def test_unconditional_molecules_are_redrawn_until_valid(lm):
    held = lm.generate_molecules(n=6, temperature=1.0, max_new_tokens=24, max_draws=30, seed=2)
    assert all(g.valid for g in held) and all(1 <= g.draws <= 30 for g in held)
    assert any(g.draws > 1 for g in held)  # a random model needs several draws
    free = lm.generate_molecules(n=6, temperature=1.0, max_new_tokens=24, constrained=False, seed=2)
    assert all(g.draws == 1 for g in free)


def test_property_request_from_prompt_and_accept(lm, cons):
    from naturelm.generate.postprocess import to_generation
    from naturelm.tasks.requests import PropertyRequest, parse_property_text, request_for

    assert parse_property_text("QED 0.53 and 2 hydrogen bond donors and LogP -1.5") == {
        "QED": 0.53, "HBD": 2.0, "LogP": -1.5}
    r = request_for("property_to_molecule", "Generate a molecule with TPSA 40.")
    assert isinstance(r, PropertyRequest) and r.targets == {"TPSA": 40.0}
    ethanol = to_generation("<mol>CCO</mol>", 0.0)  # 1 donor, 1 acceptor, TPSA 20.23
    assert PropertyRequest({"HBD": 1}).bind(cons).accept(ethanol)
    assert not PropertyRequest({"HBD": 2}).bind(cons).accept(ethanol)
    assert PropertyRequest({"TPSA": 24}).bind(cons).accept(ethanol)  # within 5
    assert not PropertyRequest({"TPSA": 26}).bind(cons).accept(ethanol)


def test_unmet_request_reports_every_draw(lm):
    """A target the random model never meets: each answer comes back after max_draws draws."""
    out = lm.generate_molecules(n=3, TPSA=500, temperature=1.0, max_new_tokens=20, max_draws=3)
    assert [g.draws for g in out] == [3, 3, 3]


def test_requests_need_sampling(lm):
    from naturelm.tasks.requests import ValidMoleculeRequest

    with pytest.raises(ConfigError, match="sampling"):
        lm.generate(["<mol>"], num_beams=2, raw=True, requests=[ValidMoleculeRequest()])
    with pytest.raises(ConfigError, match="one per prompt"):
        lm.generate(["<mol>", "<mol>"], raw=True, requests=[ValidMoleculeRequest()])


def test_answers_state_the_decoding_constraints(lm):
    held = lm.guide_rna(DNA, n=2, temperature=1.0)
    for g in held:
        c = g.check("decoding_constraints")
        assert c is not None and c.passed is True and not c.required and c.value == {"draws": 1}
        assert "PAM" in c.target and g.check("target_site").passed
    free = lm.guide_rna(DNA, n=2, temperature=1.0, constrained=False)
    assert all(g.check("decoding_constraints") is None for g in free)
