"""Inorganic materials: SMACT validity, uniqueness, novelty vs training compositions, element precision.

Novelty compares reduced formulas (the composition, not the cell size or space group) with the formulas of
the training responses of the material tasks. No property oracle exists offline, so `property_to_material`
reports validity, uniqueness and novelty only.
"""
from __future__ import annotations

import re
import warnings

from naturelm.tasks.base import Context, Example, Task, entity_of, first_entities, register
from naturelm.tasks.metrics import novelty, uniqueness, validity

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


def material_metrics(parsed: list, reference: set[str] | None) -> dict:
    """SMACT validity over all samples, uniqueness of valid materials, novelty of valid reduced formulas."""
    from naturelm.language.codecs import smact_valid

    ok = [p is not None and smact_valid(p[1]) for p in parsed]
    valid = [p for p, v in zip(parsed, ok) if v]
    return {
        "smact_validity": validity(ok),
        "uniqueness": uniqueness([p[0] for p in valid]),
        "novelty": novelty([p[1] for p in valid], reference) if reference is not None else None,
        "n": len(parsed),
    }


class _MaterialTask(Task):
    domain = "material"
    headline = ("smact_validity", "uniqueness", "novelty")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        parsed = [parse_material(m) for m in first_entities(preds)]
        out = material_metrics(parsed, training_formulas(ctx))
        if out["novelty"] is None:
            out["notes"] = ["novelty needs --data (training materials)"]
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
    headline = ("smact_validity", "element_precision", "novelty")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        out = super().score(examples, preds, ctx)
        precision = []
        for ex, first in zip(examples, first_entities(preds), strict=True):
            p = parse_material(first)
            wanted = requested_elements(ex.meta)
            precision.append(len(p[2] & wanted) / len(p[2]) if p else 0.0)
        out["element_precision"] = sum(precision) / len(precision) if precision else 0.0
        return out


@register
class PropertyToMaterial(_MaterialTask):
    name = "property_to_material"
    kind = "sample"
    samples = 1
    fallback_templates = ("Build a material with a {property} of {target}.",)
