"""One input record -> a validated, canonical entry: its dedup key, its leakage keys and its document texts.

The domain codec (naturelm.language.codecs) validates and canonicalises; a record it refuses raises `Rejected`
with a short reason (the codec's reason with the record-specific parts — characters, numbers — replaced by `…`),
so the card can count rejections per reason and source.

- dedup key: `DOMAIN:canonical form` (molecules: canonical isomeric RDKit SMILES; reactions: canonical reactant set
  `>>` canonical product; materials: the canonical token string, space group included; text: sha1 of the
  whitespace-normalised text). Two records with one key are one entry.
- leakage keys: the keys of naturelm.data.splits (the ones the leakage check of `naturelm data build` and the
  evaluation test sets use), so a test molecule, sequence or composition is found in any domain.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from naturelm.errors import EntityError, NatureLMError

# a quoted character or element, a number, (details), the element a formula error names
_SPECIFIC = re.compile(r"'[^']{0,3}'|\([^)]*\)|\d+(\.\d+)?|(?<=\bof )[A-Z][a-z]?\b")


class Rejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Entry:
    key: str
    leak: object  # () -> tuple of leakage keys; called only when test entities are excluded (InChI is costly)
    texts: tuple[str, ...]

    @property
    def leak_keys(self) -> tuple[str, ...]:
        return tuple(self.leak())


def reason_of(exc: Exception) -> str:
    """A rejection reason that groups records: the codec's reason without record-specific parts."""
    reason = exc.reason if isinstance(exc, EntityError) else str(exc) or type(exc).__name__
    return " ".join(_SPECIFIC.sub("…", reason).split())[:80]


def make_entry(domain: str, fields: dict, max_chars: int | None = None) -> Entry:
    """Validate and canonicalise one record, or raise Rejected."""
    if fields.get("value") is None:
        raise Rejected(fields.get("error", "no value"))
    value = fields["value"].strip()
    if not value:
        raise Rejected("empty")
    if max_chars is not None and len(value) > max_chars:
        raise Rejected(f"longer than max_chars={max_chars}")
    try:
        return _MAKERS[domain](value, fields.get("spacegroup"))
    except Rejected:
        raise
    except (NatureLMError, ValueError) as exc:
        raise Rejected(reason_of(exc)) from None


def _molecule(value: str, _sg) -> Entry:
    from naturelm.data.splits import mol_key
    from naturelm.language.codecs import get_codec
    from naturelm.language.tags import wrap

    smi = get_codec("molecule").canonicalize(value)
    return Entry(f"molecule:{smi}", lambda: (mol_key(smi),), (wrap("mol", smi),))


def _reaction(value: str, _sg) -> Entry:
    """`reactants>reagents>product` (or `reactants>>product`): both directions, as the built-in corpus writes them.
    Leakage keys: the reactant set, the product and every single molecule in them (a test molecule is never seen,
    not even as a reagent of a training reaction)."""
    from naturelm.data.splits import mol_key
    from naturelm.language.codecs import parse_reaction
    from naturelm.language.tags import wrap

    reactants, _, product = parse_reaction(value.split()[0])  # a USPTO `|f:…|` extension after a space is dropped
    fwd = f"{wrap('reactants', reactants)} → {wrap('product', product)}"
    back = f"{wrap('product', product)} ⇐ {wrap('reactants', reactants)}"
    def leak():
        return sorted({mol_key(reactants), mol_key(product), *(mol_key(m) for m in f"{reactants}.{product}".split("."))})

    return Entry(f"reaction:{reactants}>>{product}", leak, (fwd, back))


def _sequence(domain: str):
    def make(value: str, _sg) -> Entry:
        from naturelm.data.splits import nt_key, protein_key
        from naturelm.language.codecs import get_codec
        from naturelm.language.tags import wrap

        seq = get_codec(domain).canonicalize(value)  # DNA: a U is refused (and counted) by the codec
        if domain == "rna":
            seq = seq.replace("T", "U")  # rRNA databases write T
        leak = protein_key(seq) if domain == "protein" else nt_key(seq)
        return Entry(f"{domain}:{seq}", lambda: (leak,), (wrap(domain, seq),))

    return make


def _material(value: str, sg) -> Entry:
    from naturelm.data.splits import material_key
    from naturelm.language.codecs import formula_to_material, get_codec
    from naturelm.language.tags import wrap

    spacegroup = None
    if sg not in (None, "", "None", "nan"):
        try:
            spacegroup = int(float(sg))
        except ValueError:
            raise Rejected("space group is not a number") from None
    if "<sg" in value:  # already in the material token form
        material = get_codec("material").canonicalize(value)
    else:
        material = formula_to_material(value, spacegroup)
    return Entry(f"material:{material}", lambda: (material_key(material),), (wrap("material", material),))


def _text(value: str, _sg) -> Entry:
    """Plain text with tagged entities; tags must pair up and every entity must pass its domain codec."""
    from naturelm.data.splits import text_keys
    from naturelm.language.codecs import CODECS
    from naturelm.language.tags import split_tagged

    text = " ".join(value.split())
    for seg in split_tagged(text):  # TagError on unpaired tags
        if seg.tag is not None and seg.tag.domain in CODECS and seg.text.strip():
            CODECS[seg.tag.domain].tokenize(seg.text)  # EntityError as the tokenizer would raise it
    return Entry("text:" + hashlib.sha1(text.encode()).hexdigest(), lambda: sorted(text_keys(text)), (text,))


_MAKERS = {"molecule": _molecule, "reaction": _reaction, "protein": _sequence("protein"), "dna": _sequence("dna"),
           "rna": _sequence("rna"), "material": _material, "text": _text}
