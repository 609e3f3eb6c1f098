"""Verified naming answers: every name says where it came from and whether OPSIN confirmed it.

A name is *verified* when OPSIN parses it to the InChIKey of the query molecule. A SMILES answer
is *verified* when it is the reference structure of the query name (or has the same InChIKey as it): OPSIN's
parse, else, for a trivial name OPSIN cannot parse ("aspirin"), the registry's structure (PubChem names and
synonyms, naturelm.data.sources.names.registry_lookup). Unverifiable answers are returned flagged
`verified=False`, after all verified ones.
"""
from __future__ import annotations

from dataclasses import dataclass

from naturelm.errors import ConfigError, DataSourceMissing, EntityError

NAME_METHODS = ("auto", "model", "rules")
SMILES_METHODS = ("auto", "opsin", "rules", "model")


@dataclass(frozen=True)
class NameAnswer:
    """An IUPAC name for a molecule; source is "model", "nispo" or "openclatura"."""

    name: str
    source: str
    verified: bool
    parsed: str | None = None  # OPSIN's SMILES of the name (None: OPSIN cannot parse it)


@dataclass(frozen=True)
class SmilesAnswer:
    """A canonical SMILES for a name; source is "opsin", "registry" or "model". `reference` is the structure it
    was checked against and `reference_source` where that came from ("opsin" or "registry"; None: no reference,
    the answer is unverified)."""

    smiles: str
    source: str
    verified: bool
    reference: str | None = None
    reference_source: str | None = None


def _dedupe(answers: list, key) -> list:
    seen, out = set(), []
    for a in answers:
        if key(a) not in seen:
            seen.add(key(a))
            out.append(a)
    return out


# Rule namers in order of closeness to preferred IUPAC names (docs/tasks/naming.md): openclatura follows the Blue
# Book (26% of its names equal the database name); nispo writes OPSIN-friendly names ("naphthalen", "…oxan",
# esters as substituted alkanes).
IUPAC_PREFERENCE = ("openclatura", "nispo")


def smiles_to_iupac_verified(
    smiles: str,
    model_candidates: list[str] | None = None,
    k: int = 5,
    method: str = "auto",
    namers: tuple[str, ...] = IUPAC_PREFERENCE,
) -> list[NameAnswer]:
    """Up to k names for `smiles`, verified answers first; each answer's `source` names what produced it
    ("model" or the namer).

    method="model": the model's candidates only; "rules": the rule-based namers only;
    "auto": verified model candidates, then verified namer names (openclatura before nispo: closer to IUPAC),
    then the unverified rest.
    """
    from naturelm.tools.namers import name_with
    from naturelm.tools.opsin import canonical, inchikey, names_to_smiles

    if method not in NAME_METHODS:
        raise ConfigError(f"method must be one of {NAME_METHODS}, got {method!r}")
    if canonical(smiles) is None:
        raise EntityError("molecule", smiles, reason="invalid SMILES")
    answers = []  # (name, source), in preference order within each source group
    if method in ("auto", "model"):
        answers += [(n.strip(), "model") for n in (model_candidates or []) if n and n.strip()]
    if method in ("auto", "rules"):
        answers += [(n, namer) for namer in namers for n in name_with(namer, [smiles]) if n]
    key = inchikey(smiles)
    parsed = names_to_smiles([n for n, _ in answers])  # one JVM start for every candidate
    checked = [NameAnswer(n, src, got is not None and inchikey(got) == key, got) for (n, src), got in zip(answers, parsed)]
    ordered = [a for a in checked if a.verified] + [a for a in checked if not a.verified]
    return _dedupe(ordered, lambda a: a.name)[:k]


def iupac_to_smiles_verified(
    name: str,
    model_candidates: list[str] | None = None,
    k: int = 5,
    method: str = "auto",
) -> list[SmilesAnswer]:
    """Up to k canonical SMILES for `name`: the reference structure first (OPSIN's exact parse, else the registry's
    structure for a trivial name), then the model's RDKit-valid candidates checked against it.

    method="opsin": OPSIN only (empty when it cannot parse the name); "rules": OPSIN, else the registry;
    "model": the model's candidates only (still checked against the reference); "auto": "rules" then the model.
    A model candidate is verified only when it matches the reference; without one it is unverified.
    """
    from naturelm.tools.opsin import canonical, inchikey, names_to_smiles

    if method not in SMILES_METHODS:
        raise ConfigError(f"method must be one of {SMILES_METHODS}, got {method!r}")
    answers = []
    ref = names_to_smiles([name])[0] if name and name.strip() else None  # also checks model answers
    ref_source = "opsin" if ref is not None else None
    if ref is None and method != "opsin" and name and name.strip():
        ref = _registry_structure(name)
        ref_source = "registry" if ref is not None else None
    if ref is not None and (method in ("auto", "rules") or (method == "opsin" and ref_source == "opsin")):
        answers.append(SmilesAnswer(ref, ref_source, True, ref, ref_source))
    if method in ("auto", "model"):
        for cand in model_candidates or []:
            smi = canonical(cand)
            if smi is not None:
                ok = same_structure(smi, ref, ref_source)
                answers.append(SmilesAnswer(smi, "model", ok, ref, ref_source))
    ordered = [a for a in answers if a.verified] + [a for a in answers if not a.verified]
    return _dedupe(ordered, lambda a: inchikey(a.smiles))[:k]


def same_structure(smiles: str, reference: str | None, reference_source: str | None) -> bool:
    """Whether `smiles` is the reference structure: the same InChIKey as OPSIN's parse; the same connectivity
    (first InChIKey block) as a registry structure, whose table often leaves stereochemistry out."""
    from naturelm.tools.opsin import inchikey

    a, b = inchikey(smiles), inchikey(reference)
    if a is None or b is None:
        return False
    return a.split("-")[0] == b.split("-")[0] if reference_source == "registry" else a == b


def _registry_structure(name: str) -> str | None:
    """The registry's first structure for a name (None when it has none or the chemicals package is absent)."""
    from naturelm.data.sources.names import registry_lookup

    try:
        hits = registry_lookup(name, limit=1)
    except DataSourceMissing:
        return None
    return hits[0].smiles if hits else None
