"""The science vocabulary: tag tokens and every domain's prefixed tokens, in one fixed order.

It covers the released NatureLM vocabulary (naturelm.language.released: its 126 tag tokens, 1,746 science tokens
and the extras its code adds), so whatever a released checkpoint can write, the default tokenizer reads and writes.
"""
from __future__ import annotations

import functools
from importlib import resources

from naturelm.language.codecs import CODECS
from naturelm.language.released import extra_tokens, packaged_lists
from naturelm.language.tags import DOMAINS, RESERVED_TOKENS, SPACE_GROUP_TOKENS, tag_strings


@functools.lru_cache(maxsize=1)
def molecule_units() -> tuple[str, ...]:
    """Molecule token units: fixed SMILES units, bracket atoms harvested from real corpora (assets), and every
    SMILES unit of the released vocabulary."""
    harvested = resources.files("naturelm.language").joinpath("assets/molecule_units.txt")
    extra = harvested.read_text().split() if harvested.is_file() else []
    released = [t[3:] for t in packaged_lists()[1] if t.startswith("<m>")]
    return tuple(CODECS["molecule"].vocabulary(extra + released))


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
    """Every token NatureLM adds to a text vocabulary: tags (ours, then the rest of the released tag block),
    reserved block, each domain's tokens, then whatever else the released vocabulary has (its extras included)."""
    released_tags, released_science = packaged_lists()
    out = list(tag_strings()) + list(released_tags) + list(RESERVED_TOKENS)
    for domain in ("molecule", "protein", "dna", "rna", "material"):
        out += domain_tokens(domain)
    out += list(released_science) + extra_tokens(dna_kmers=False)
    return tuple(dict.fromkeys(out))
