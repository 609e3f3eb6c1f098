"""The one table of NatureLM tag pairs and domain token prefixes (paper §1)."""
from __future__ import annotations

import re
import functools
from dataclasses import dataclass

from naturelm.errors import TagError


@dataclass(frozen=True)
class Domain:
    """A kind of entity: its token prefix marks the same character as a different token per domain."""

    name: str
    prefix: str  # "" for text (BPE)


@dataclass(frozen=True)
class Tag:
    """A tag pair wrapping one entity of a domain."""

    name: str
    domain: str

    @property
    def open(self) -> str:
        return f"<{self.name}>"

    @property
    def close(self) -> str:
        return f"</{self.name}>"


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain("text", ""),
        Domain("molecule", "<m>"),
        Domain("protein", "<a>"),
        Domain("dna", "<d>"),
        Domain("rna", "<r>"),
        Domain("material", "<i>"),
    )
}

TAGS: dict[str, Tag] = {
    t.name: t
    for t in (
        Tag("mol", "molecule"),
        Tag("product", "molecule"),
        Tag("reactants", "molecule"),
        Tag("reagent", "molecule"),
        Tag("fragA", "molecule"),
        Tag("fragB", "molecule"),
        Tag("protein", "protein"),
        Tag("antibody", "protein"),
        Tag("dna", "dna"),
        Tag("rna", "rna"),
        Tag("material", "material"),
        Tag("num", "text"),
        Tag("ans", "text"),
        # entity tags of the released NatureLM-8x7B (naturelm.language.released): chemical formulas as written
        # (`<i>` items, digits included) and DNA in greedy 6-mers
        Tag("cf1", "material"),
        Tag("cf2", "material"),
        Tag("fcf", "material"),
        Tag("dna6mer", "dna"),
    )
}
# The tags NatureLM's own tokenizers split on (the default tokenizer and every checkpoint written by this package
# without a recorded tag set, e.g. the shipped NatureLM-tiny).
NATURELM_TAGS: tuple[str, ...] = ("mol", "product", "reactants", "reagent", "fragA", "fragB", "protein", "antibody",
                                  "dna", "rna", "material", "num", "ans")

SPACE_GROUP_TOKENS: tuple[str, ...] = tuple(f"<sg{i}>" for i in range(1, 231)) + ("<sgNone>",)
RESERVED_TOKENS: tuple[str, ...] = tuple(f"<reserved_{i}>" for i in range(100))
SPECIAL_TOKENS = {"pad": "<pad>", "bos": "<s>", "eos": "</s>", "unk": "<unk>"}

_BY_STRING: dict[str, tuple[Tag, bool]] = {
    **{t.open: (t, True) for t in TAGS.values()},
    **{t.close: (t, False) for t in TAGS.values()},
}


def tag_strings() -> list[str]:
    """Every open and close tag string, in table order."""
    return [s for t in TAGS.values() for s in (t.open, t.close)]


def wrap(tag_name: str, content: str) -> str:
    """`<tag>content</tag>`."""
    tag = TAGS[tag_name]
    return f"{tag.open}{content}{tag.close}"


@dataclass(frozen=True)
class Segment:
    """A piece of tagged text: plain text (tag None) or the content of one tag pair."""

    text: str
    tag: Tag | None
    start: int  # offset of `text` in the source string


@functools.lru_cache(maxsize=16)
def _tag_re(names: tuple[str, ...] | None) -> re.Pattern:
    tags = TAGS.values() if names is None else [TAGS[n] for n in names]
    return re.compile("|".join(re.escape(s) for t in tags for s in (t.open, t.close)))


def split_tagged(text: str, allow_unclosed: bool = False, tags: tuple[str, ...] | None = None) -> list[Segment]:
    """Split text into plain-text and entity segments; nested, mismatched or stray tags raise TagError.

    With allow_unclosed, a final open tag without its close (a generation in progress) yields its content.
    `tags`: the tag names that split (a tokenizer's own set, `NatureTokenizer.tags`); None: every tag of TAGS.
    Other tag strings stay in the text.
    """
    segments: list[Segment] = []
    pos, open_tag, open_at = 0, None, 0
    for m in _tag_re(None if tags is None else tuple(tags)).finditer(text):
        tag, is_open = _BY_STRING[m.group()]
        if is_open:
            if open_tag is not None:
                raise TagError(f"nested tag {tag.open} inside {open_tag.open}", m.start(), text)
            if m.start() > pos:
                segments.append(Segment(text[pos : m.start()], None, pos))
            open_tag, open_at = tag, m.end()
        else:
            if open_tag is None:
                raise TagError(f"closing tag {tag.close} without an opening tag", m.start(), text)
            if tag is not open_tag:
                raise TagError(f"mismatched closing tag {tag.close} for {open_tag.open}", m.start(), text)
            segments.append(Segment(text[open_at : m.start()], open_tag, open_at))
            open_tag = None
        pos = m.end()
    if open_tag is not None:
        if not allow_unclosed:
            raise TagError(f"unclosed tag {open_tag.open}", open_at, text)
        segments.append(Segment(text[open_at:], open_tag, open_at))
    elif pos < len(text):
        segments.append(Segment(text[pos:], None, pos))
    return segments


def find_entities(text: str) -> list[Segment]:
    """The entity spans of a text (model output included), whitespace inside spans removed except for materials."""
    out = []
    for s in split_tagged(text, allow_unclosed=True):
        if s.tag is None:
            continue
        content = " ".join(s.text.split()) if s.tag.domain == "material" else "".join(s.text.split())
        out.append(Segment(content, s.tag, s.start))
    return out
