"""Inorganic materials: SMACT validity, uniqueness, novelty vs training compositions, element fidelity, cell size.

SMACT validity is reported twice: `smact_validity` with SMACT's all-metal alloy shortcut (SMACT's default and the
paper's metric: a composition of metals only passes unchecked) and `smact_validity_no_alloy_shortcut` (metals must
pass the charge-neutrality and electronegativity tests too). Novelty compares reduced formulas (the composition,
not the cell size or space group) with the formulas of the training responses of the material tasks.
`within_atoms_bound` is the share of ALL samples that parse and hold no more atoms per cell than the largest
bound learned from the training cells (`materials.atoms_per_cell_bound` of the data card: their 99th percentile). composition -> material adds element precision
and recall of the requested elements (`naturelm.tasks.metrics.element_fidelity`) and the share using exactly the
requested set, SMACT as each request asks it (`smact_validity_as_requested`: no alloy shortcut unless every
requested element is a metal) and the share of requests some SMACT-valid composition of them (no shortcut, within
the bound) exists for (`charge_balance_possible`), and `formula_match` (the answer's reduced formula is the record's)
with the median atoms per cell of answers and records. No property oracle exists offline, so `property_to_material` reports validity, uniqueness and
novelty only.
"""
from __future__ import annotations

import re
import warnings

from naturelm.tasks.base import Context, Example, Task, entity_of, first_entities, register
from naturelm.tasks.metrics import element_fidelity, novelty, uniqueness, validity

MATERIAL_TASKS = ("material_generation", "composition_to_material", "property_to_material")


def parse_material(content: str | None) -> tuple[str, str, set[str]] | None:
    """(canonical material, reduced formula, elements) or None when it cannot be parsed."""
    from pymatgen.core import Composition

    from naturelm.errors import EntityError
    from naturelm.language.codecs import get_codec, material_to_formula

    if not content:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about noble gases without electronegativity
            canon = get_codec("material").canonicalize(content)
            formula, _ = material_to_formula(canon)
            comp = Composition(formula)
    except (EntityError, ValueError):
        return None
    return canon, comp.reduced_formula, {str(e) for e in comp.elements}


def requested_elements(meta: dict) -> set[str]:
    """The `elements` of a record: a list, or a string like 'Li, Ti, O'."""
    els = meta.get("elements", [])
    return set(re.findall(r"[A-Z][a-z]?", els) if isinstance(els, str) else els)


def training_formulas(ctx: Context) -> set[str] | None:
    """Reduced formulas of the training responses of the material tasks (None when no data dir)."""
    responses = ctx.train_responses(MATERIAL_TASKS)
    if responses is None:
        return None
    return {p[1] for p in (parse_material(entity_of(r)) for r in responses) if p}


def atoms_bound(ctx: Context) -> int | None:
    """The atoms-per-cell bound recorded by the data build (99th percentile of training cells), None when unknown."""
    card = ctx.data_card() or {}
    return (card.get("materials") or {}).get("atoms_per_cell_bound")


def material_metrics(parsed: list, reference: set[str] | None, max_atoms: int | None = None) -> dict:
    """SMACT validity (with / without the alloy shortcut) over all samples, uniqueness of valid materials, novelty
    of valid reduced formulas, and the share of all samples within `max_atoms` atoms per cell (None: unknown)."""
    from naturelm.language.codecs import atoms_in_cell, smact_valid

    ok = [p is not None and smact_valid(p[1]) for p in parsed]
    strict = [p is not None and smact_valid(p[1], alloy_shortcut=False) for p in parsed]
    valid = [p for p, v in zip(parsed, ok) if v]
    n = len(parsed)
    return {
        "smact_validity": validity(ok),
        "smact_validity_no_alloy_shortcut": validity(strict),
        "uniqueness": uniqueness([p[0] for p in valid]),
        "novelty": novelty([p[1] for p in valid], reference) if reference is not None else None,
        "within_atoms_bound": (validity([p is not None and atoms_in_cell(p[0]) <= max_atoms for p in parsed])
                               if max_atoms is not None else None),
        "atoms_per_cell_bound": max_atoms,
        "n": n,
    }


class _MaterialTask(Task):
    domain = "material"
    headline = ("smact_validity", "uniqueness", "novelty")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        parsed = [parse_material(m) for m in first_entities(preds)]
        out = material_metrics(parsed, training_formulas(ctx), atoms_bound(ctx))
        notes = []
        if out["novelty"] is None:
            notes.append("novelty needs --data (training materials)")
        if out["within_atoms_bound"] is None:
            notes.append("within_atoms_bound needs --data whose card records materials.atoms_per_cell_bound")
        if notes:
            out["notes"] = notes
        return out


@register
class MaterialGeneration(_MaterialTask):
    name = "material_generation"
    kind = "unconditional"
    open_tag = "<material>"
    default_n = 1000


@register
class CompositionToMaterial(_MaterialTask):
    name = "composition_to_material"
    kind = "sample"
    samples = 1
    fallback_templates = ("Build a material that has {elements}",)
    headline = ("smact_validity", "element_precision", "element_recall", "novelty")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        """Adds mean element precision / recall over ALL samples (invalid = 0) and the share whose element set is
        exactly the requested one."""
        out = super().score(examples, preds, ctx)
        pr = []
        for ex, first in zip(examples, first_entities(preds), strict=True):
            p = parse_material(first)
            pr.append(element_fidelity(requested_elements(ex.meta), p[1] if p else None))
        n = len(pr)
        out["element_precision"] = sum(p for p, _ in pr) / n if n else 0.0
        out["element_recall"] = sum(r for _, r in pr) / n if n else 0.0
        out["element_exact"] = sum(p == r == 1.0 for p, r in pr) / n if n else 0.0
        out.update(requested_smact(examples, preds, atoms_bound(ctx)))
        out.update(record_formula_match(examples, preds))
        return out


def record_formula_match(examples: list[Example], preds) -> dict:
    """`formula_match`: the share of requests whose first answer has the reduced formula of the record's own
    material (LiFePO4 for a record `Li4Fe4P4O16`; an invalid answer, or a record without a parsable material, counts
    as no match), and `atoms_per_cell_median`: the median atoms per cell of the first answers that parse (None:
    none does), beside the records' own (`record_atoms_per_cell_median`) — what the element and SMACT rates do
    not see: whether the answer is the compound, and cell-sized like the data."""
    import statistics

    from naturelm.language.codecs import atoms_in_cell

    matched, atoms, gold_atoms = [], [], []
    for ex, first in zip(examples, first_entities(preds), strict=True):
        p, gold = parse_material(first), parse_material(entity_of(ex.response))
        matched.append(p is not None and gold is not None and p[1] == gold[1])
        if p is not None:
            atoms.append(atoms_in_cell(p[0]))
        if gold is not None:
            gold_atoms.append(atoms_in_cell(gold[0]))
    return {"formula_match": validity(matched),
            "atoms_per_cell_median": statistics.median(atoms) if atoms else None,
            "record_atoms_per_cell_median": statistics.median(gold_atoms) if gold_atoms else None}


def requested_smact(examples: list[Example], preds, max_atoms: int | None) -> dict:
    """SMACT as each request asks it (`smact_validity_as_requested`: without the alloy shortcut unless every
    requested element is a metal, as `naturelm.tasks.requests.ElementsRequest` holds it; invalid = 0), and the
    share of requests for which some composition of exactly the requested elements within `max_atoms` atoms
    (None: the codec's limit) passes SMACT without the alloy shortcut (`charge_balance_possible`): the most
    `smact_validity_no_alloy_shortcut` can be while element precision and recall are 100%."""
    from naturelm.language.codecs import smact_valid
    from naturelm.language.codecs.material import MAX_ATOMS
    from naturelm.tasks.requests import ChargeBalance, all_metals

    bound = max_atoms or MAX_ATOMS
    asked, possible = [], []
    for ex, first in zip(examples, first_entities(preds), strict=True):
        els = tuple(sorted(requested_elements(ex.meta)))
        p = parse_material(first)
        alloy = bool(els) and all_metals(els)
        asked.append(p is not None and smact_valid(p[1], alloy_shortcut=alloy))
        possible.append(bool(els) and ChargeBalance(els, bound, alloy_shortcut=False).feasible)
    return {"smact_validity_as_requested": validity(asked), "charge_balance_possible": validity(possible)}


@register
class PropertyToMaterial(_MaterialTask):
    name = "property_to_material"
    kind = "sample"
    samples = 1
    fallback_templates = ("Build a material with a {property} of {target}.",)
