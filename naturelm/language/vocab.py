"""The science vocabulary: tag tokens and every domain's prefixed tokens, in one fixed order."""
from __future__ import annotations

import functools
from importlib import resources

from naturelm.language.codecs import CODECS
from naturelm.language.tags import DOMAINS, RESERVED_TOKENS, SPACE_GROUP_TOKENS, tag_strings


@functools.lru_cache(maxsize=1)
def molecule_units() -> tuple[str, ...]:
    """Molecule token units: fixed SMILES units plus bracket atoms harvested from real corpora (assets)."""
    harvested = resources.files("naturelm.language").joinpath("assets/molecule_units.txt")
    extra = harvested.read_text().split() if harvested.is_file() else []
    return tuple(CODECS["molecule"].vocabulary(extra))


def domain_tokens(domain: str) -> list[str]:
    """Prefixed tokens of one domain, e.g. `<a>A`; materials also carry the space-group tokens."""
    prefix = DOMAINS[domain].prefix
    units = molecule_units() if domain == "molecule" else CODECS[domain].vocabulary()
    tokens = [prefix + u for u in units]
    if domain == "material":
        tokens += list(SPACE_GROUP_TOKENS)
    return tokens


@functools.lru_cache(maxsize=1)
def science_tokens() -> tuple[str, ...]:
    """Every token NatureLM adds to a text vocabulary: tags, reserved block, then each domain's tokens."""
    out = list(tag_strings()) + list(RESERVED_TOKENS)
    for domain in ("molecule", "protein", "dna", "rna", "material"):
        out += domain_tokens(domain)
    return tuple(dict.fromkeys(out))
