"""Model text -> checked answers: extract the entity, canonicalise it per domain, flag invalid, deduplicate."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from naturelm.errors import EntityError, TagError
from naturelm.language.tags import DOMAINS, TAGS, find_entities

_PREFIX_RE = re.compile("|".join(re.escape(d.prefix) for d in DOMAINS.values() if d.prefix))
_LENIENT_RE = re.compile(r"<(" + "|".join(re.escape(t) for t in TAGS) + r")>(.*?)(?=</?(?:" + "|".join(TAGS) + r")>|$)", re.S)


@dataclass
class Check:
    """One named check of an answer against what was asked (naturelm.tasks.checks makes them per task).

    passed: True or False, or None when it could not be decided (e.g. no tool can verify a free-text wish).
    `required` checks decide whether the answer meets the request; the others only report a value
    (length, an oracle score). `value` is what was measured, `target` what was asked for (when there is one).
    """

    name: str
    passed: bool | None
    value: object = None
    target: object = None
    detail: str = ""
    required: bool = True


def verdict(valid: bool, checks: list[Check]) -> bool | None:
    """Whether an answer meets its request: False when it does not parse or fails a required check, None when
    it parses but some required check could not be decided (unverified), else True."""
    required = [c.passed for c in checks if c.required]
    if not valid or False in required:
        return False
    return None if None in required else True


@dataclass
class Generation:
    """One answer: raw decoded text, the entity, its canonical form (None when invalid), validity and score.

    `valid` says only that the entity parses in its domain; `checks` say whether it answers the request and
    `meets_request` sums them up (see `verdict`). `source` names the model or tool that produced it.
    """

    raw: str
    entity: str
    tag: str | None
    canonical: str | None
    valid: bool
    score: float
    verified_by: str | None
    retries: int = 0
    source: str = "model"
    checks: list[Check] = field(default_factory=list)
    draws: int = 1  # samples drawn for this answer (rejection sampling against the prompt's request)

    @property
    def key(self) -> str:
        """What deduplication compares: the canonical form, else the entity text."""
        return self.canonical if self.canonical is not None else f"invalid:{self.entity}"

    @property
    def meets_request(self) -> bool | None:
        return verdict(self.valid, self.checks)

    def check(self, name: str) -> Check | None:
        """The check called `name`, None when the answer has none."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict:
        """JSON-ready: non-finite floats become None; `meets_request` is included."""
        return _finite({**asdict(self), "meets_request": self.meets_request})


@dataclass
class Classification:
    """A yes/no answer: the model's p(Yes) / (p(Yes) + p(No)), the answer it implies, and its checks (an oracle's
    probability and held-out AUROC where one answers the question)."""

    question: str
    p_yes: float
    answer: str
    source: str = "model"
    checks: list[Check] = field(default_factory=list)

    @property
    def meets_request(self) -> bool | None:
        return verdict(True, self.checks)

    def to_dict(self) -> dict:
        return _finite({**asdict(self), "meets_request": self.meets_request})


def _finite(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def extract(raw: str) -> tuple[str | None, str]:
    """(tag name, entity) of the first tagged span, prefixes and whitespace stripped; (None, text) without a tag."""
    try:
        spans = find_entities(raw)
        first = (spans[0].tag.name, spans[0].text) if spans else None
    except TagError:  # unconstrained output can nest or mismatch tags: take the first opened span
        m = _LENIENT_RE.search(raw)
        first = (m.group(1), m.group(2)) if m else None
    if first is None:
        return None, " ".join(_PREFIX_RE.sub("", raw).split())
    tag, content = first
    content = _PREFIX_RE.sub("", content)
    content = " ".join(content.split()) if TAGS[tag].domain == "material" else "".join(content.split())
    return tag, content


def check(tag: str | None, entity: str) -> tuple[str | None, bool, str | None]:
    """(canonical or None, valid, verified_by) of an entity written inside `tag` (None: plain text)."""
    domain = TAGS[tag].domain if tag else "text"
    if domain == "text":
        text = " ".join(entity.split())
        return (text or None), bool(text), None
    if domain == "molecule":
        from naturelm.language.codecs import try_canonical

        canon = try_canonical(entity, reactant_set=tag == "reactants" or "." in entity) if entity else None
        return canon, canon is not None, "rdkit"
    from naturelm.language.codecs import get_codec

    try:
        canon = get_codec(domain).canonicalize(entity)
    except EntityError:
        return None, False, "smact" if domain == "material" else "alphabet"
    if domain == "material":
        from naturelm.language.codecs import material_to_formula, smact_valid

        formula, _ = material_to_formula(canon)
        ok = smact_valid(formula)
        return (canon if ok else None), ok, "smact"
    return canon, True, "alphabet"


def to_generation(raw: str, score: float, retries: int = 0, expect: str | None = None) -> Generation:
    """A checked Generation from one decoded response; an answer outside the `expect`ed tag is invalid."""
    tag, entity = extract(raw)
    canonical, valid, verified_by = check(tag, entity)
    if expect is not None and tag != expect:
        canonical, valid = None, False
    return Generation(raw=raw, entity=entity, tag=tag, canonical=canonical, valid=valid, score=float(score),
                      verified_by=verified_by, retries=retries)


def dedup(gens: list[Generation], k: int | None = None) -> list[Generation]:
    """Best-scored first, one per canonical form (invalid ones by entity text), at most k."""
    seen, out = set(), []
    for g in sorted(gens, key=lambda g: -g.score if math.isfinite(g.score) else math.inf):
        if g.key not in seen:
            seen.add(g.key)
            out.append(g)
    return out if k is None else out[:k]


def is_empty(g: Generation) -> bool:
    """Immediate end: nothing was written (no text, or a tag with no content)."""
    return not g.entity.strip()
