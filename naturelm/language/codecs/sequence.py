"""Proteins, antibodies, DNA and RNA: one token per letter."""
from __future__ import annotations

from naturelm.language.codecs.base import AlphabetCodec

NUCLEOTIDES = "ACTGURYSWKMBDHVN"


class ProteinCodec(AlphabetCodec):
    """Amino acids A–Z: the 20 standard residues plus B, Z, X, U, O, J."""

    domain = "protein"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class DNACodec(AlphabetCodec):
    """IUPAC nucleotide codes. The vocabulary is the shared nucleotide alphabet, but a canonical DNA sequence has
    no U (uracil is RNA): `canonicalize` rejects it with its position."""

    domain = "dna"
    alphabet = NUCLEOTIDES

    def canonicalize(self, content: str) -> str:
        from naturelm.errors import EntityError

        seq = self._clean(content)
        if "U" in seq:
            raise EntityError(self.domain, content, seq.index("U"), "U (uracil) is RNA, not DNA; write T")
        return seq


class RNACodec(AlphabetCodec):
    """IUPAC nucleotide codes (U expected, T tolerated as the paper's shared alphabet)."""

    domain = "rna"
    alphabet = NUCLEOTIDES


def dna_to_rna(seq: str) -> str:
    """T → U."""
    return DNACodec().canonicalize(seq).replace("T", "U")


def rna_to_dna(seq: str) -> str:
    """U → T."""
    return RNACodec().canonicalize(seq).replace("U", "T")


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA sequence (IUPAC ambiguity codes complemented too)."""
    comp = str.maketrans("ACGTURYSWKMBDHVN", "TGCAAYRSWMKVHDBN")
    return DNACodec().canonicalize(seq).translate(comp)[::-1]
