"""Verified naming answers: every name says where it came from and whether OPSIN confirmed it.

A name is *verified* when OPSIN parses it to the InChIKey of the query molecule. A SMILES answer
is *verified* when it is OPSIN's own parse of the query name (or has the same InChIKey as it).
Unverifiable answers are returned flagged `verified=False`, after all verified ones.
"""
from __future__ import annotations

from dataclasses import dataclass

from naturelm.errors import ConfigError, EntityError
from naturelm.tools.namers import NAMERS

NAME_METHODS = ("auto", "model", "rules")
SMILES_METHODS = ("auto", "opsin", "model")


@dataclass(frozen=True)
class NameAnswer:
    """An IUPAC name for a molecule; source is "model", "nispo" or "openclatura"."""

    name: str
    source: str
    verified: bool


@dataclass(frozen=True)
class SmilesAnswer:
    """A canonical SMILES for a name; source is "opsin" or "model"."""

    smiles: str
    source: str
    verified: bool


def _dedupe(answers: list, key) -> list:
    seen, out = set(), []
    for a in answers:
        if key(a) not in seen:
            seen.add(key(a))
            out.append(a)
    return out


def smiles_to_iupac_verified(
    smiles: str,
    model_candidates: list[str] | None = None,
    k: int = 5,
    method: str = "auto",
    namers: tuple[str, ...] = NAMERS,
) -> list[NameAnswer]:
    """Up to k names for `smiles`, verified answers first.

    method="model": the model's candidates only; "rules": the rule-based namers only;
    "auto": verified model candidates, then verified namer names, then the unverified rest.
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
    checked = [NameAnswer(n, src, got is not None and inchikey(got) == key) for (n, src), got in zip(answers, parsed)]
    ordered = [a for a in checked if a.verified] + [a for a in checked if not a.verified]
    return _dedupe(ordered, lambda a: a.name)[:k]


def iupac_to_smiles_verified(
    name: str,
    model_candidates: list[str] | None = None,
    k: int = 5,
    method: str = "auto",
) -> list[SmilesAnswer]:
    """Up to k canonical SMILES for `name`: OPSIN's exact parse first, then the model's RDKit-valid candidates.

    method="opsin": OPSIN only (empty when it cannot parse the name); "model": the model's candidates only;
    "auto": both, OPSIN first. A model candidate is verified only when it matches OPSIN's parse.
    """
    from naturelm.tools.opsin import canonical, inchikey, names_to_smiles

    if method not in SMILES_METHODS:
        raise ConfigError(f"method must be one of {SMILES_METHODS}, got {method!r}")
    answers = []
    got = names_to_smiles([name])[0] if name and name.strip() else None  # also checks model answers
    opsin_key = inchikey(got)
    if method in ("auto", "opsin") and got is not None:
        answers.append(SmilesAnswer(got, "opsin", True))
    if method in ("auto", "model"):
        for cand in model_candidates or []:
            smi = canonical(cand)
            if smi is not None:
                answers.append(SmilesAnswer(smi, "model", opsin_key is not None and inchikey(smi) == opsin_key))
    ordered = [a for a in answers if a.verified] + [a for a in answers if not a.verified]
    return _dedupe(ordered, lambda a: inchikey(a.smiles))[:k]
