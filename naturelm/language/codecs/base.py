"""What every domain codec provides."""
from __future__ import annotations

from naturelm.errors import EntityError


class Codec:
    """Validate, canonicalise and split one domain's entities into (unprefixed) token units."""

    domain: str = ""

    def tokenize(self, content: str) -> list[str]:
        raise NotImplementedError

    def canonicalize(self, content: str) -> str:
        raise NotImplementedError

    def detokenize(self, units: list[str]) -> str:
        return "".join(units)

    def is_valid(self, content: str) -> bool:
        try:
            self.canonicalize(content)
        except EntityError:
            return False
        return True


class AlphabetCodec(Codec):
    """One token per letter from a fixed alphabet (proteins, nucleotides)."""

    alphabet: str = ""

    def _clean(self, content: str) -> str:
        if not isinstance(content, str):
            raise EntityError(self.domain, repr(content), None, "expected a string")
        seq = "".join(content.split()).upper()
        if not seq:
            raise EntityError(self.domain, content, 0, "empty sequence")
        if not frozenset(seq) <= frozenset(self.alphabet):  # one set test; the position only for the error
            for i, ch in enumerate(seq):
                if ch not in self.alphabet:
                    raise EntityError(self.domain, content, i, f"character {ch!r} is not in the alphabet {self.alphabet}")
        return seq

    def tokenize(self, content: str) -> list[str]:
        return list(self._clean(content))

    def canonicalize(self, content: str) -> str:
        return self._clean(content)

    def vocabulary(self) -> list[str]:
        return list(self.alphabet)
