"""Task endpoints: /v1/tasks/{task} validates the input entity, calls the NatureLM task method, returns JSON.

Inputs are checked before the model sees them (413 when too long, 422 naming the domain and position when
invalid) and canonicalised. Results carry raw text, entity, canonical form, validity, score and the tool that
verified them, plus domain details: formula, space group and SMACT check for materials, ViennaRNA MFE
structure for RNA. Requests for the same task and options are batched into one worker-thread call.
"""
from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from naturelm.errors import ApiError, EntityError, NatureLMError
from naturelm.generate.cancel import Cancelled
from naturelm.language import find_entities
from naturelm.language.codecs import canonical_reactant_set, canonical_smiles, get_codec
from naturelm.serve.schema import MIN_TEMPERATURE, Checked, Seed, Temperature, Text

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

PROPERTIES = ("QED", "HBA", "HBD", "FSP3", "RotBonds", "TPSA", "LogP")
MATERIAL_PROPERTIES = ("band_gap", "formation_energy", "bulk_modulus")


class _Req(Checked):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_new_tokens: int | None = Field(None, ge=1, description="generation length (default: the server's)")


class _Sampled(_Req):
    temperature: Temperature | None = Field(None, ge=0.0, le=2.0,
                                            description=f"sampling temperature: 0 (greedy) or {MIN_TEMPERATURE} to 2")
    seed: Seed | None = None


class Retrosynthesis(_Req):
    product: Text = Field(description="product SMILES (atom maps are stripped)", examples=["CC(=O)Nc1ccc(O)cc1"])
    k: int = Field(5, ge=1, description="number of distinct reactant sets")
    method: Literal["auto", "model", "ranked", "rag"] = Field(
        "auto", description="'model': the model's beams; 'ranked': RetroSim's candidates ranked by the model; "
                            "'rag': retrieval-augmented beams; 'auto': ranked when the checkpoint opts in and a "
                            "RetroSim is found, else model. Each result's `source` says which was used.")


class Forward(_Req):
    reactants: Text = Field(description="reactant SMILES joined by '.'", examples=["CC(=O)Cl.Nc1ccc(O)cc1"])
    k: int = Field(1, ge=1)


class SmilesToIupac(_Req):
    smiles: Text = Field(examples=["OC(=O)c1ccccc1OC(C)=O"])
    k: int = Field(1, ge=1)


class IupacToSmiles(_Req):
    name: Text = Field(min_length=1, examples=["2-acetyloxybenzoic acid"])
    k: int = Field(1, ge=1)


class GenerateMolecules(_Sampled):
    properties: dict[Literal[PROPERTIES], float] = Field(default_factory=dict, examples=[{"QED": 0.8}],
                                                         description="target properties; empty for unconditional")
    n: int = Field(4, ge=1)


class OptimizeMolecule(_Sampled):
    smiles: Text = Field(examples=["CCOc1ccccc1C(=O)O"])
    goal: Text = Field(min_length=1, examples=["increase QED"],
                      description="'increase QED', 'decrease LogP', 'increase HBD' or 'bbb' (blood-brain barrier)")
    n: int = Field(4, ge=1)


class DesignProtein(_Sampled):
    description: Text = Field("", examples=["soluble"], description="e.g. 'soluble'; empty for unconditional")
    n: int = Field(1, ge=1)


class DesignRNA(_Sampled):
    n: int = Field(1, ge=1)


class DesignMaterial(_Sampled):
    elements: list[Text] | None = Field(None, max_length=118, examples=[["Li", "Fe", "P", "O"]])
    property: Literal[MATERIAL_PROPERTIES] | None = None
    target: float | None = None
    n: int = Field(4, ge=1)
    method: Literal["auto", "model", "ranked"] = Field(
        "auto", description="elements only: 'ranked' (and 'auto'): SMACT's charge-balanced compositions ranked by the "
                            "model; 'model': the model's samples under the request's constraints. Each result's "
                            "`source` says which was used.")


class GuideRNA(_Sampled):
    dna: Text = Field(examples=["ATGCTGACCGGTTACAGGCTAGCTAGCTGGACCTAGGTCGAGG"])
    n: int = Field(4, ge=1)


class DesignLigand(_Sampled):
    protein: Text | None = Field(None, description="protein (pocket) sequence", examples=[None])
    target: Text | None = Field(None, description="target gene symbol or name (MoleculeACE's 30 targets)",
                               examples=["DRD3"])
    n: int = Field(4, ge=1)


class TranslateDNA(_Req):
    dna: Text = Field(description="a coding sequence (start .. stop)", examples=["ATGAAAGCACTGGTTTAA"])
    k: int = Field(1, ge=1)


class BackTranslate(_Sampled):
    protein: Text = Field(examples=["MKALV"])
    n: int = Field(2, ge=1)


class RNAForProtein(_Sampled):
    rbp: Text = Field(min_length=1, description="the RNA-binding protein", examples=["HNRNPA1"])
    by: Literal["gene", "gene_id", "family"] = Field("gene", description="what `rbp` names (ATtRACT fields)")
    n: int = Field(4, ge=1)


class Classify(Checked):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    question: Text = Field(min_length=1,
                          examples=["Can <mol>CN1CCC[C@H]1c1cccnc1</mol> traverse the blood-brain barrier?"])


@dataclass(frozen=True)
class TaskSpec:
    """One endpoint: request model, input check (returns the canonical input), and the model call.

    `call(model, inputs, count, gen)` gets a list of inputs when `batched` (the method takes lists: one engine
    call for the whole batch), else one input.
    """

    name: str
    summary: str
    request: type[BaseModel]
    prepare: Callable[[Any, Callable[[str, str], str]], dict]
    call: Callable[[Any, Any, int, dict], Any]
    count: str | None = None  # the field holding k/n (bounded by --max-n)
    batched: bool = False
    long_answers: bool = False  # answers (proteins) need the server's whole --max-new-tokens budget by default


def _smiles(v: str, check) -> str:
    return canonical_smiles(check(v, "smiles"))


def _check_tagged(text: str, required: bool = False) -> str:
    """Entities inside free text (`<mol>…</mol>`, `<protein>…</protein>`) must be valid in their domain;
    `required`: the text must tag at least one (a question about nothing tagged is a 422)."""
    spans = [span for span in find_entities(text) if span.tag.domain != "text"]
    for span in spans:
        get_codec(span.tag.domain).canonicalize(span.text)
    if required and not spans:
        raise EntityError("question", text, reason="no tagged entity: wrap what the question is about in its tag, "
                                                   "e.g. 'Can <mol>CCO</mol> cross the blood-brain barrier?'")
    return text


def _prep_material(r: DesignMaterial, check) -> dict:
    from pymatgen.core import Element

    if r.elements is None and r.property is None:
        raise ApiError(422, "give elements (a composition) or property with target", param="elements")
    if r.elements is not None and r.property is not None:
        raise ApiError(422, "give elements or property/target, not both", param="property")
    if (r.property is None) != (r.target is None):
        raise ApiError(422, "property and target go together", param="target")
    if r.method == "ranked" and r.elements is None:
        raise ApiError(422, "method 'ranked' ranks compositions of requested elements: give elements", param="method")
    check(", ".join(r.elements or []), "elements")  # the elements joined count against the input limit
    for i, e in enumerate(r.elements or []):
        if not Element.is_valid_symbol(e):
            raise EntityError("material", " ".join(r.elements), i, f"{e!r} is not an element symbol")
    return {"elements": r.elements, "property": r.property, "target": r.target, "method": r.method}


def _prep_ligand(r: DesignLigand, check) -> dict:
    """Exactly one of protein / target (an empty string counts as not given)."""
    protein, target = (r.protein or "").strip() or None, (r.target or "").strip() or None
    if (protein is None) == (target is None):
        raise ApiError(422, "give protein (a sequence) or target (a gene symbol or name), not both", param="protein")
    if protein is not None:
        return {"protein": get_codec("protein").canonicalize(check(protein, "protein")), "target": None}
    from naturelm.data.sources.moleculeace import TARGETS

    check(target, "target")
    if not any(target.lower() in (g.lower(), nm.lower()) for g, nm in TARGETS.values()):
        raise ApiError(422, f"unknown target {target!r}; known gene symbols: "
                            f"{', '.join(sorted(g for g, _ in TARGETS.values()))}", param="target")
    return {"protein": None, "target": target}


def _retro(m, xs: list[dict], k: int, gen: dict) -> list:
    """One retrosynthesis call per method in the batch; a method that fails (e.g. 'ranked' with no RetroSim)
    fails only its own requests."""
    out: list = [None] * len(xs)
    for method in dict.fromkeys(x["method"] for x in xs):
        idx = [i for i, x in enumerate(xs) if x["method"] == method]
        try:
            res = m.retrosynthesis([xs[i]["product"] for i in idx], k=k, method=method, **gen)
        except Cancelled:
            raise
        except NatureLMError as exc:  # e.g. one product over RetroSim's budget: each product alone
            res = [exc] if len(idx) == 1 else [_retro(m, [xs[i]], k, gen)[0] for i in idx]
        for i, r in zip(idx, res):
            out[i] = r
    return out


def _material(m, i: dict, n: int, gen: dict):
    if i["elements"] is not None:
        return m.design_material(elements=i["elements"], n=n, method=i["method"], **gen)
    return m.design_material(property=i["property"], value=i["target"], n=n, method=i["method"], **gen)


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("retrosynthesis", "Reactant sets that make a product (canonical, sorted; model beams or RetroSim's "
             "candidates ranked by the model).", Retrosynthesis,
             lambda r, c: {"product": _smiles(r.product, c), "method": r.method}, _retro, "k", True),
    TaskSpec("forward", "The product of a set of reactants.", Forward,
             lambda r, c: {"reactants": canonical_reactant_set(c(r.reactants, "reactants"))},
             lambda m, xs, k, g: m.forward([x["reactants"] for x in xs], k=k, **g), "k", True),
    TaskSpec("smiles_to_iupac", "IUPAC names of a molecule (model and rule namers, checked back with OPSIN).",
             SmilesToIupac, lambda r, c: {"smiles": _smiles(r.smiles, c)},
             lambda m, xs, k, g: m.smiles_to_iupac([x["smiles"] for x in xs], k=k, **g), "k", True),
    TaskSpec("iupac_to_smiles", "SMILES of an IUPAC name (model, with OPSIN's parse first).", IupacToSmiles,
             lambda r, c: {"name": c(r.name, "name").strip()},
             lambda m, xs, k, g: m.iupac_to_smiles([x["name"] for x in xs], k=k, **g), "k", True),
    TaskSpec("generate_molecules", "Molecules, unconditional or with target properties.", GenerateMolecules,
             lambda r, c: {"properties": dict(r.properties)},
             lambda m, i, n, g: m.generate_molecules(n=n, **i["properties"], **g), "n"),
    TaskSpec("optimize_molecule", "Edit a molecule towards a goal.", OptimizeMolecule,
             lambda r, c: {"smiles": _smiles(r.smiles, c), "goal": c(r.goal, "goal")},
             lambda m, i, n, g: m.optimize_molecule(i["smiles"], i["goal"], n=n, **g), "n"),
    TaskSpec("design_protein", "Protein sequences for a description (empty: unconditional); each says whether it "
             "finished or was truncated.", DesignProtein,
             lambda r, c: {"description": _check_tagged(c(r.description, "description"))},
             lambda m, i, n, g: m.design_protein(i["description"] or None, n=n, **g), "n", long_answers=True),
    TaskSpec("design_rna", "RNA sequences (unconditional), with their ViennaRNA MFE structure.", DesignRNA,
             lambda r, c: {}, lambda m, i, n, g: m.design_rna(n=n, **g), "n"),
    TaskSpec("design_material", "Materials from a composition or a property target (SMACT-checked).", DesignMaterial,
             _prep_material, _material, "n"),
    TaskSpec("guide_rna", "Guide RNAs for a DNA target.", GuideRNA,
             lambda r, c: {"dna": get_codec("dna").canonicalize(c(r.dna, "dna"))},
             lambda m, i, n, g: m.guide_rna(i["dna"], n=n, **g), "n"),
    TaskSpec("design_ligand", "Molecules for a protein sequence or a named target (RDKit-checked).", DesignLigand,
             _prep_ligand, lambda m, i, n, g: m.design_ligand(protein=i["protein"], target=i["target"], n=n, **g), "n"),
    TaskSpec("translate_dna", "The protein of a coding sequence, checked against Biopython's translation.",
             TranslateDNA, lambda r, c: {"dna": get_codec("dna").canonicalize(c(r.dna, "dna"))},
             lambda m, i, k, g: m.translate_dna(i["dna"], k=k, **g), "k"),
    TaskSpec("back_translate", "Coding sequences for a protein, each translated back by Biopython.", BackTranslate,
             lambda r, c: {"protein": get_codec("protein").canonicalize(c(r.protein, "protein"))},
             lambda m, i, n, g: m.back_translate(i["protein"], n=n, **g), "n"),
    TaskSpec("rna_for_protein", "RNAs for an RNA-binding protein, each scored with its ATtRACT motifs.",
             RNAForProtein, lambda r, c: {"rbp": c(r.rbp, "rbp").strip(), "by": r.by},
             lambda m, i, n, g: m.rna_for_protein(i["rbp"], by=i["by"], n=n, **g), "n"),
    TaskSpec("classify", "p(Yes) / (p(Yes) + p(No)) for a yes/no question about a tagged entity, with an oracle's "
             "probability and held-out AUROC where one answers it.", Classify,
             lambda r, c: {"question": _check_tagged(c(r.question, "question"), required=True)},
             lambda m, xs, _, g: m.classify_checked([x["question"] for x in xs]), None, True),
)}


def _details(g: dict) -> dict:
    """Domain facts the playground draws: formula, space group and SMACT check; RNA MFE structure."""
    from naturelm.language.codecs import material_to_formula, smact_valid
    from naturelm.serve.draw import MAX_FOLD, rna_fold

    entity = g.get("canonical") or g.get("entity") or ""
    try:
        if g.get("tag") == "material":
            formula, sg = material_to_formula(entity)
            return {"formula": formula, "spacegroup": sg, "smact_valid": smact_valid(formula)}
        if g.get("tag") == "rna" and g.get("valid") and len(entity) <= MAX_FOLD:
            structure, mfe = rna_fold(entity)
            return {"structure": structure, "mfe": mfe}
    except EntityError:
        pass  # an unparsable entity has no details; `valid` already says so
    return {}


def _as_dict(g) -> dict:
    d = g.to_dict()
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in d.items()}


def _seeded(spec: TaskSpec, gen: dict) -> dict:
    """Sampling tasks without a request seed draw a fresh one per call (new samples on every request)."""
    if issubclass(spec.request, _Sampled) and "seed" not in gen:
        gen["seed"] = random.randrange(2**31)
    return gen


def _shape(result) -> object:
    """A task method's answer as JSON: a classification becomes its dict; generations become dicts with details,
    each with its `source`, `checks` and `meets_request`."""
    if isinstance(result, Exception):
        return result
    if hasattr(result, "p_yes"):
        return result.to_dict()
    return [{**d, **_details(d)} for d in map(_as_dict, result)]


def run_batch(model, key: tuple, inputs: list) -> list:
    """Worker-thread side: one call for a batched task, else one call per item (failures kept per item).
    Results are shaped here too, so folding RNA or checking SMACT never blocks the event loop."""
    _, name, count, gen = key[:4]
    spec = TASKS[name]
    if spec.batched:
        return [_shape(r) for r in spec.call(model, inputs, count, dict(gen))]
    out = []
    for inp in inputs:
        try:
            out.append(_shape(spec.call(model, inp, count, _seeded(spec, dict(gen)))))
        except (NatureLMError, ValueError) as exc:
            out.append(exc)
    return out


def _retro_budget(inp: dict, cfg) -> dict:
    """Ranked retrosynthesis (RetroSim's similarity search and ranking) slows down sharply with product length:
    over `max_ranked_chars`, 'ranked' is refused and 'auto' takes the model's beams (`source` says so)."""
    if inp["method"] in ("ranked", "auto") and len(inp["product"]) > cfg.max_ranked_chars:
        if inp["method"] == "ranked":
            raise ApiError(413, f"product has {len(inp['product'])} characters; ranked retrosynthesis takes at most "
                                f"{cfg.max_ranked_chars} (use method 'model')", param="product",
                           code="sequence_too_long")
        return {**inp, "method": "model"}
    return inp


async def run_task(request: Request, spec: TaskSpec, req: BaseModel) -> dict:
    """Check limits, canonicalise the input (in a worker thread: RDKit), batch, call and shape one task request."""
    cfg = request.app.state.config
    count = getattr(req, spec.count) if spec.count else 0
    if count > cfg.max_n:
        raise ApiError(422, f"{spec.count}={count} exceeds the server limit {cfg.max_n}", param=spec.count)
    gen = {}
    if isinstance(req, _Req):
        default = cfg.max_new_tokens if spec.long_answers else min(cfg.task_new_tokens, cfg.max_new_tokens)
        gen["max_new_tokens"] = req.max_new_tokens or default
        if gen["max_new_tokens"] > cfg.max_new_tokens:
            raise ApiError(422, f"max_new_tokens={gen['max_new_tokens']} exceeds the server limit {cfg.max_new_tokens}",
                           param="max_new_tokens")
    if isinstance(req, _Sampled):
        gen.update({k: v for k, v in (("temperature", req.temperature), ("seed", req.seed)) if v is not None})
    cost = max(1, count) * gen.get("max_new_tokens", 1)

    def check(text: str, param: str) -> str:
        if len(text) > cfg.max_entity_chars:
            raise ApiError(413, f"{param} has {len(text)} characters; the limit is {cfg.max_entity_chars}",
                           param=param, code="sequence_too_long")
        return text

    inp = await run_in_threadpool(spec.prepare, req, check)
    if spec.name == "retrosynthesis":
        inp = _retro_budget(inp, cfg)
    start = time.perf_counter()
    key = ("task", spec.name, count, tuple(sorted(gen.items())))
    if "seed" in gen:  # a seeded request runs alone, so its samples are reproducible
        key += (uuid.uuid4().hex,)
    result = await request.app.state.batcher.submit(key, inp, cost, disconnected=request.is_disconnected)
    out = {"task": spec.name, "input": inp, "elapsed_s": round(time.perf_counter() - start, 3)}
    if spec.name == "classify":
        return {**out, **{k: v for k, v in result.items() if k != "question"}}
    return {**out, "results": result}


@router.get("")
async def list_tasks() -> dict:
    """The task endpoints and their request schemas."""
    return {"tasks": {n: {"summary": t.summary, "schema": t.request.model_json_schema()} for n, t in TASKS.items()}}


def _route(spec: TaskSpec):
    async def endpoint(request, req):
        return await run_task(request, spec, req)

    endpoint.__doc__ = spec.summary
    endpoint.__annotations__ = {"request": Request, "req": spec.request, "return": dict}  # real types, not strings
    return endpoint


for _spec in TASKS.values():
    router.add_api_route(f"/{_spec.name}", _route(_spec), methods=["POST"], name=_spec.name, summary=_spec.summary)


@router.post("/{task}", include_in_schema=False)
async def unknown_task(task: str):
    raise ApiError(404, f"unknown task {task!r}; known tasks: {', '.join(TASKS)}", param="task", code="unknown_task")
