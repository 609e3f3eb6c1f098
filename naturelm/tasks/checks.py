"""Per-task checks of answers: does an answer that parses also meet the request?

Each `check_*` function takes the request and the answers (naturelm.generate.postprocess.Generation), appends
named `Check`s to every answer in place and returns the list. NatureLM's task methods call them, so the API, the
server's JSON and the playground all carry the same checks; `Generation.meets_request` sums them up.
An answer that does not parse fails every required check it cannot pass.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from naturelm.errors import DataSourceMissing, NatureLMError
from naturelm.generate.postprocess import Check, Generation


# ---------------------------------------------------------------------------------------------- reactions
def heavy_atoms(smiles: str | None) -> Counter | None:
    """Element counts of the heavy atoms (explicit H atoms left out) of a SMILES, None when it does not parse."""
    from naturelm.language.codecs import mol_from_smiles

    mol = mol_from_smiles(smiles) if smiles else None
    if mol is None:
        return None
    return Counter(a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() > 1)


def atom_balance(reactants: str | None, product: str | None) -> Check:
    """Every heavy atom of the product can come from the reactants (element counts of product <= reactants)."""
    have, need = heavy_atoms(reactants), heavy_atoms(product)
    if have is None or need is None:
        return Check("atom_balance", False, detail="reactants or product do not parse")
    missing = {el: n - have[el] for el, n in need.items() if n > have[el]}
    if missing:
        text = ", ".join(f"{n} {el}" for el, n in sorted(missing.items()))
        return Check("atom_balance", False, value=missing, detail=f"the product has atoms no reactant supplies: {text}")
    return Check("atom_balance", True, detail="every heavy atom of the product is in the reactants")


def _template_precedent(g: Generation) -> Check | None:
    meta = getattr(g, "meta", None) or {}
    if "template" not in meta:
        return None
    return Check("template_precedent", True, value=meta.get("neighbour"), required=False,
                 detail=f"RetroSim template from training reaction {meta.get('neighbour')}: {meta['template']}")


def not_the_product(reactants: str | None, product: str) -> Check:
    """A reactant set that contains the product itself is no synthesis route."""
    from naturelm.language.codecs import try_canonical

    target = try_canonical(product)
    parts = [try_canonical(p) for p in (reactants or "").split(".")]
    if target is not None and target in parts:
        return Check("not_the_product", False, detail="the product itself is among the reactants")
    return Check("not_the_product", reactants is not None,
                 detail="the reactants differ from the product" if reactants else "no reactants")


def check_retrosynthesis(product: str, gens: list[Generation]) -> list[Generation]:
    """Atom balance of each reactant set against the product, the product not among its own reactants; template
    precedent where RetroSim proposed it."""
    for g in gens:
        g.checks.append(atom_balance(g.canonical, product))
        g.checks.append(not_the_product(g.canonical, product))
        precedent = _template_precedent(g)
        if precedent is not None:
            g.checks.append(precedent)
    return gens


def check_forward(reactants: str, gens: list[Generation]) -> list[Generation]:
    """Atom balance of each predicted product against the reactants."""
    for g in gens:
        g.checks.append(atom_balance(reactants, g.canonical))
    return gens


# ---------------------------------------------------------------------------------------------- naming
def opsin_round_trip(query_smiles: str, parsed: str | None, name: str) -> Check:
    """A name is right when OPSIN parses it back to the query molecule (same InChIKey)."""
    from naturelm.tools.opsin import inchikey

    if parsed is None:
        return Check("opsin_round_trip", False, detail=f"OPSIN cannot parse {name!r}")
    if inchikey(parsed) != inchikey(query_smiles):
        return Check("opsin_round_trip", False, value=parsed, detail=f"OPSIN parses it to another molecule: {parsed}")
    return Check("opsin_round_trip", True, value=parsed, detail="OPSIN parses it back to the query molecule")


def structure_reference(answer_smiles: str, source: str, reference: str | None, reference_source: str | None,
                        name: str) -> Check:
    """A structure for a name is right when it is OPSIN's parse or the registry's entry for the name, or has the
    same InChIKey as it; with neither, it is unverified."""
    from naturelm.tools.naming import same_structure

    if source in ("opsin", "registry"):
        what = "OPSIN's parse of the name" if source == "opsin" else "the registry's structure for this name"
        return Check("reference", True, value=source, detail=what)
    if reference is None:
        return Check("reference", None, detail=f"unverified: OPSIN cannot parse {name!r} and the registry has no "
                                               "entry for it; the structure is the model's guess")
    same = same_structure(answer_smiles, reference, reference_source)
    return Check("reference", same, target=reference,
                 detail=("matches" if same else "differs from") + f" {reference_source}'s structure {reference}")


# ---------------------------------------------------------------------------------------------- molecules
def tanimoto(a: str | None, b: str | None) -> float | None:
    """Tanimoto similarity of Morgan fingerprints (radius 2, 2048 bits); None when either does not parse."""
    from rdkit import DataStructs

    from naturelm.tasks.metrics import morgan_fingerprints

    if not a or not b:
        return None
    fa, fb = morgan_fingerprints([a, b])
    if fa is None or fb is None:
        return None
    return float(DataStructs.TanimotoSimilarity(fa, fb))


def check_property_targets(targets: dict[str, float], gens: list[Generation]) -> list[Generation]:
    """The RDKit value of every targeted property, met when within the task's tolerance of the target."""
    from naturelm.tasks.property_to_molecule import TOLERANCE, measure

    for g in gens:
        for prop, target in targets.items():
            value = measure(g.canonical, prop) if g.valid else None
            if value is None:
                g.checks.append(Check(prop, False, target=target, detail="no molecule to measure"))
                continue
            tol = TOLERANCE[prop]
            met = abs(value - target) <= tol + 1e-9
            g.checks.append(Check(prop, met, value=round(value, 4), target=target,
                                  detail=f"{prop} {value:.3g}, target {target:g} ± {tol:g} (RDKit)"))
    return gens


def check_optimization(smiles: str, prop: str, direction: str, delta: float, gens: list[Generation]) -> list[Generation]:
    """An optimised molecule differs from the input and moves `prop` in `direction` by at least `delta`;
    its similarity to the input is reported."""
    from naturelm.tasks.property_optimization import improved
    from naturelm.tasks.property_to_molecule import measure

    before = measure(smiles, prop)
    for g in gens:
        g.checks.append(_changed(smiles, g))
        after = measure(g.canonical, prop) if g.valid else None
        if after is None or before is None:
            g.checks.append(Check(prop, False, detail="no molecule to measure"))
        else:
            moved = after - before
            right_way = moved > 0 if direction == "increase" else moved < 0
            ok = right_way and improved(before, after, direction, delta)
            way = "right" if right_way else "wrong"
            g.checks.append(Check(prop, ok, value=round(after, 4), target=f"{direction} by >= {delta:g} from {before:.3g}",
                                  detail=f"{prop} {before:.3g} -> {after:.3g} ({moved:+.3g}, the {way} direction; "
                                         f"asked: {direction} by at least {delta:g})"))
        g.checks.append(_similarity(smiles, g))
    return gens


def _changed(smiles: str, g: Generation) -> Check:
    same = g.valid and g.canonical == smiles
    return Check("changed", g.valid and not same,
                 detail="returns the input unchanged" if same else ("a new molecule" if g.valid else "does not parse"))


def _similarity(smiles: str, g: Generation) -> Check:
    sim = tanimoto(smiles, g.canonical) if g.valid else None
    return Check("similarity", None, value=None if sim is None else round(sim, 3), required=False,
                 detail="" if sim is None else f"Tanimoto {sim:.2f} to the input (Morgan r=2)")


@lru_cache(maxsize=None)
def _oracle(name: str):
    from naturelm.tasks.oracles import get_oracle

    return get_oracle(name, progress=False)


def oracle_or_reason(name: str):
    """(oracle, None) or (None, why it is unavailable): a missing oracle leaves a check undecided, not an error."""
    try:
        return _oracle(name), None
    except (DataSourceMissing, NatureLMError, ImportError) as exc:
        return None, f"the {name} oracle is unavailable: {exc}"


def check_bbb_optimization(smiles: str, gens: list[Generation]) -> list[Generation]:
    """The BBB oracle's P(crosses) of each edit: met when >= 0.5; the input's value, the oracle's held-out AUROC."""
    oracle, why = oracle_or_reason("bbb")
    p_in = oracle.predict([smiles])[0] if oracle else None
    probs = oracle.predict([g.canonical if g.valid else None for g in gens]) if oracle else [None] * len(gens)
    for g, p in zip(gens, probs):
        g.checks.append(_changed(smiles, g))
        if oracle is None:
            g.checks.append(Check("bbb_oracle", None, detail=why))
        elif p is None:
            g.checks.append(Check("bbb_oracle", False, detail="no molecule to score"))
        else:
            g.checks.append(Check("bbb_oracle", p >= 0.5, value=round(p, 3), target=">= 0.5",
                                  detail=f"oracle P(crosses the BBB) {p:.2f} (input {p_in:.2f}); "
                                         f"oracle held-out AUROC {oracle.heldout_auroc:.2f}"))
        g.checks.append(_similarity(smiles, g))
    return gens


# ---------------------------------------------------------------------------------------------- sequences
def finished(g: Generation) -> Check:
    """The answer closed its tag (the model stopped) rather than running out of tokens."""
    from naturelm.language.tags import TAGS

    if g.tag is None:
        return Check("finished", False, detail="no tagged answer")
    done = TAGS[g.tag].close in g.raw
    n = len(g.canonical or g.entity)
    return Check("finished", done, value=n,
                 detail="the sequence ends with its closing tag" if done else
                 f"truncated at {n} units: the token budget ran out before the closing tag (raise max_new_tokens)")


SOLUBLE_WORDS = re.compile(r"\b(in)?soluble\b", re.I)


def check_proteins(description: str | None, gens: list[Generation]) -> list[Generation]:
    """Finished or truncated, length, the solubility oracle's P(soluble); a description asking for (in)solubility
    is checked with it, any other description is unverified (no tool checks it)."""
    oracle, why = oracle_or_reason("soluble")
    probs = oracle.predict([g.canonical if g.valid else None for g in gens]) if oracle else [None] * len(gens)
    wish = SOLUBLE_WORDS.search(description or "")
    for g, p in zip(gens, probs):
        g.checks.append(finished(g))
        g.checks.append(Check("length", None, value=len(g.canonical or g.entity), required=False,
                              detail=f"{len(g.canonical or g.entity)} residues"))
        note = why if oracle is None else (f"oracle P(soluble) {p:.2f}; held-out AUROC {oracle.heldout_auroc:.2f}"
                                           if p is not None else "no sequence to score")
        if wish:
            want_soluble = not wish.group(1)
            ok = None if oracle is None else (p is not None and (p >= 0.5) == want_soluble)
            g.checks.append(Check("solubility", ok, value=None if p is None else round(p, 3),
                                  target=">= 0.5" if want_soluble else "< 0.5", detail=note))
        else:
            g.checks.append(Check("solubility", None, value=None if p is None else round(p, 3), required=False,
                                  detail=note))
        rest = SOLUBLE_WORDS.sub("", description or "").strip(" ,.;")
        if rest:
            g.checks.append(Check("description", None, target=description,
                                  detail=f"unverified: no tool checks {rest!r}"))
    return gens


def check_guides(dna: str, gens: list[Generation]) -> list[Generation]:
    """Each guide's site in the target: position, strand and PAM, or 'not in target'; 17-24 nt."""
    from naturelm.tasks.guide_rna import GUIDE_LENGTHS, find_target_site

    for g in gens:
        spacer = g.canonical if g.valid else None
        site = find_target_site(spacer, dna) if spacer else None
        if site is None:
            g.checks.append(Check("target_site", False, detail="not in target: the guide occurs on neither strand"))
        else:
            value = {"position": site.position, "strand": site.strand, "pam": site.pam}
            pam = f"PAM {site.pam}" + ("" if site.has_pam else " is not NGG")
            g.checks.append(Check("target_site", site.has_pam, value=value,
                                  detail=f"{site.strand} strand at {site.position}, {pam}"))
        n = len(spacer or "")
        g.checks.append(Check("length", n in GUIDE_LENGTHS, value=n, target="17-24 nt", detail=f"{n} nt"))
    return gens


# ---------------------------------------------------------------------------------------------- materials
def material_formula(g: Generation) -> str | None:
    from naturelm.errors import EntityError
    from naturelm.language.codecs import material_to_formula

    try:
        return material_to_formula(g.canonical or g.entity)[0] if (g.canonical or g.entity) else None
    except EntityError:
        return None


def check_materials(elements: list[str] | None, prop: str | None, target: float | None,
                    gens: list[Generation]) -> list[Generation]:
    """SMACT with the alloy shortcut (required) and without it (reported); element fidelity against requested
    elements; a property target is unverified (no offline property model)."""
    from naturelm.language.codecs import smact_valid
    from naturelm.tasks.metrics import element_fidelity

    for g in gens:
        formula = material_formula(g)
        strict = bool(formula) and smact_valid(formula, alloy_shortcut=False)
        lenient = bool(formula) and smact_valid(formula, alloy_shortcut=True)
        g.checks.append(Check("smact", lenient, value=formula,
                              detail=f"SMACT {'valid' if lenient else 'invalid'} (all-metal alloys count as valid)"))
        g.checks.append(Check("smact_strict", strict, required=False,
                              detail=f"SMACT {'valid' if strict else 'invalid'} with the charge test applied to "
                                     "alloys too"))
        if elements:
            precision, recall = element_fidelity(elements, formula or "")
            ok = precision == 1.0 and recall == 1.0
            g.checks.append(Check("elements", ok, value={"precision": round(precision, 3), "recall": round(recall, 3)},
                                  target=sorted(elements),
                                  detail=f"element precision {precision:.2f}, recall {recall:.2f}"))
        if prop is not None:
            g.checks.append(Check(prop, None, target=target,
                                  detail=f"unverified: no offline model predicts {prop}"))
    return gens


# ---------------------------------------------------------------------------------------------- classification
BBB_QUESTION = re.compile(r"blood.?brain|\bBBB\b", re.I)


def classification_checks(question: str, p_model: float) -> tuple[list[Check], str | None]:
    """Checks of a yes/no answer: for a BBB question about a tagged molecule, the BBB oracle's P(yes), its held-out
    AUROC and whether model and oracle agree; other questions are unverified. Also returns the tagged entity."""
    from naturelm.language import find_entities

    spans = [s for s in find_entities(question) if s.tag.domain != "text"]
    mol = next((s.text for s in spans if s.tag.domain == "molecule"), None)
    if not (BBB_QUESTION.search(question) and mol):
        return [Check("oracle", None, detail="unverified: no oracle answers this question")], mol
    oracle, why = oracle_or_reason("bbb")
    if oracle is None:
        return [Check("oracle", None, detail=why)], mol
    p = oracle.predict([mol])[0]
    if p is None:
        return [Check("oracle", False, detail="the oracle cannot read the molecule")], mol
    agree = (p >= 0.5) == (p_model >= 0.5)
    return [Check("oracle", agree, value=round(p, 3),
                  detail=f"BBB oracle P(yes) {p:.2f} vs model {p_model:.2f}: "
                         f"{'agree' if agree else 'disagree'}; oracle held-out AUROC {oracle.heldout_auroc:.3f}")], mol


# ---------------------------------------------------------------------------------------------- cross-domain
def check_ligands(gene: str | None, gens: list[Generation]) -> list[Generation]:
    """Molecules for a target: the target's affinity oracle (naturelm.tasks.protein_to_molecule.package_oracle:
    predicted p_affinity >= 6, i.e. 1 uM or better) when the target is a known one, else unverified; QED reported."""
    from naturelm.tasks.protein_to_molecule import ACTIVE, package_oracle

    oracle, why = None, "unverified: no measured affinities for this protein (give target= a MoleculeACE target)"
    if gene is not None:
        try:
            oracle = package_oracle(gene)
        except DataSourceMissing as exc:
            why = f"unverified: {exc}"
    smiles = [g.canonical if g.valid else None for g in gens]
    preds = iter(oracle.predict([s for s in smiles if s]) if oracle else [])
    for g, s in zip(gens, smiles):
        if oracle is None:
            g.checks.append(Check("affinity_oracle", None if s else False, target=gene, detail=why))
            continue
        p = next(preds) if s else None
        rho = "n/a" if oracle.heldout_spearman is None else f"{oracle.heldout_spearman:.2f}"
        stats = (f"{gene} random-forest oracle, held-out Spearman {rho} "
                 f"({oracle.n_train} train / {oracle.n_heldout} held-out molecules)")
        g.checks.append(Check("affinity_oracle", p is not None and p >= ACTIVE,
                              value=None if p is None else round(p, 2), target=f"p_affinity >= {ACTIVE}",
                              detail=stats if p is not None else "no molecule to score"))
        if s:
            from rdkit.Chem import QED

            from naturelm.language.codecs import mol_from_smiles

            g.checks.append(Check("qed", None, value=round(QED.qed(mol_from_smiles(s)), 3), required=False,
                                  detail="drug-likeness (RDKit QED)"))
    return gens


def check_translation(dna: str, gens: list[Generation]) -> list[Generation]:
    """Each protein against Biopython's translation of the coding sequence; Biopython's answer (source "biopython")
    is added when no answer agrees, so a correct translation always comes back."""
    from naturelm.generate.postprocess import to_generation
    from naturelm.language.tags import wrap
    from naturelm.tools.translation import translate_cds

    tool = translate_cds(dna)
    for g in gens:
        agree = bool(g.valid and g.canonical == tool)
        g.checks.append(Check("biopython_translation", agree, value=g.canonical if g.valid else None, target=tool,
                              detail="equals Biopython's translation (table 11)" if agree else
                              "differs from Biopython's translation (table 11)"))
    if tool and not any(g.check("biopython_translation").passed for g in gens):
        g = to_generation(wrap("protein", tool), float("nan"))
        g.source, g.verified_by = "biopython", "biopython"
        g.checks.append(Check("biopython_translation", True, value=tool, target=tool,
                              detail="Biopython's own translation: the model's answers disagreed"))
        gens.append(g)
    return gens


def check_back_translation(protein: str, gens: list[Generation]) -> list[Generation]:
    """Each gene translated back by Biopython: a complete coding sequence that encodes exactly the protein."""
    from naturelm.tools.translation import is_cds, translate_cds

    for g in gens:
        dna = g.canonical if g.valid else None
        back = translate_cds(dna) if dna else None
        g.checks.append(Check("complete_cds", is_cds(dna), detail="start codon .. stop codon, whole codons"))
        g.checks.append(Check("encodes_protein", back == protein, value=back, target=protein,
                              detail="Biopython's translation of the answer (table 11)"))
    return gens


def check_rbp_rna(by: str, name: str, gens: list[Generation]) -> list[Generation]:
    """The best site of the protein's ATtRACT matrices in each RNA: a binding site when it scores above 0 and at
    least SITE_FRACTION of its matrix's consensus score (naturelm.tasks.protein_to_rna)."""
    from naturelm.tasks.protein_to_rna import SITE_FRACTION, motif_set
    from naturelm.tasks.rna import clean_rna

    mset = motif_set(by, name)
    for g in gens:
        rna = clean_rna(g.canonical) if g.valid else None
        if rna is None:
            g.checks.append(Check("binding_site", False, detail="no RNA to scan"))
            continue
        score, matrix, start = mset.best_hit(rna)
        found = mset.has_site(rna, SITE_FRACTION)
        value = None if matrix is None else {"logodds": round(score, 2), "matrix": matrix, "start": start}
        g.checks.append(Check("binding_site", found, value=value, target=f">= {SITE_FRACTION} x consensus score",
                              detail=f"best of {len(mset)} ATtRACT matrices of {by} {name}"))
    return gens
