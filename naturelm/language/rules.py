"""A tokenizer's text rules: which tags it splits on, how text between tags is cut, and its prompt format.

NatureLM's own tokenizers keep text spans as written and prompt with `...Response: `; the released NatureLM
checkpoints (naturelm.language.released) strip the text around entity tags and prompt with `...Response:`.
A tokenizer records its rules in `naturelm_tokenizer.json` ("rules"); a file without them gets `NATURELM_RULES`,
which is how every checkpoint of this package was written before the field existed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from naturelm.errors import ConfigError
from naturelm.language.tags import NATURELM_TAGS, TAGS

NATURELM_PROMPT = "Instruction: {instruction}\n\n\nResponse: "
RELEASED_PROMPT = "Instruction: {instruction}\n\n\nResponse:"
STRIP_MODES = ("none", "all", "spaces")


@dataclass(frozen=True)
class TextRules:
    """How text becomes tokens around tags (see the module docstring)."""

    name: str = "naturelm"
    tags: tuple[str, ...] = NATURELM_TAGS  # tag names that split text; other tag strings are text
    strip: str = "none"  # text spans: "none" as written, "all" `.strip()` (Llama 3 base), "spaces" `.strip(" ")`
    prompt: str = NATURELM_PROMPT  # `{instruction}` is replaced by the stripped instruction
    kmer_tags: tuple[str, ...] = ()  # tags whose DNA is cut greedily into 6-mer tokens where the vocabulary has them
    released: bool = False  # the released tokenizers' entity rules: units as written (no `<sgNone>` added,
    # unknown units are `<unk>`), a final tag may stay open, special-token strings in text are spelled out

    def __post_init__(self):
        unknown = [t for t in self.tags if t not in TAGS]
        if unknown:
            raise ConfigError(f"text rules {self.name!r}: unknown tags {unknown}; known: {sorted(TAGS)}")
        if self.strip not in STRIP_MODES:
            raise ConfigError(f"text rules {self.name!r}: strip must be one of {STRIP_MODES}, not {self.strip!r}")
        if "{instruction}" not in self.prompt:
            raise ConfigError(f"text rules {self.name!r}: the prompt format {self.prompt!r} has no {{instruction}}")

    def span(self, text: str) -> str:
        """A text span as the tokenizer encodes it."""
        if self.strip == "all":
            return text.strip()
        if self.strip == "spaces":
            return text.strip(" ")
        return text

    def format_prompt(self, instruction: str) -> str:
        return self.prompt.replace("{instruction}", instruction.strip())

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict | None) -> "TextRules":
        if not d:
            return NATURELM_RULES
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise ConfigError(f"unknown text-rule fields {extra}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


NATURELM_RULES = TextRules()
