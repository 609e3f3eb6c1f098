"""The genetic code as a tool: Biopython translation of a coding sequence (the DNA -> protein baseline and the
check behind every central-dogma answer).

Every CDS of the data uses the standard code (NCBI table 1) or the bacterial one (table 11); they share every
sense codon and table 11's start codons include table 1's, so `translate_cds` reads both with table 11: the first
codon is read as methionine when it is a start codon, translation ends at the first stop codon.
"""
from __future__ import annotations

from naturelm.errors import DataSourceMissing

TABLE = 11
STANDARD_AA = frozenset("ACDEFGHIKLMNPQRSTVWY")


def _seq():
    try:
        from Bio.Seq import Seq
    except ImportError:
        raise DataSourceMissing("biopython", "pip install biopython") from None
    return Seq


def clean_dna(dna: str | None) -> str | None:
    """Upper-case ACGT without whitespace (U read as T), None when empty or off-alphabet."""
    if not dna:
        return None
    dna = "".join(dna.split()).upper().replace("U", "T")
    return dna if dna and set(dna) <= set("ACGT") else None


def is_cds(dna: str | None, table: int = TABLE) -> bool:
    """Whether `dna` is a complete coding sequence: a start codon, whole codons, one stop codon at the end only."""
    from Bio.Data.CodonTable import TranslationError

    dna = clean_dna(dna)
    if dna is None:
        return False
    try:
        _seq()(dna).translate(table=table, cds=True)
    except TranslationError:
        return False
    return True


def translate_cds(dna: str | None, table: int = TABLE) -> str | None:
    """The protein of a coding sequence (Biopython, NCBI `table`): a start codon read as M, up to the first stop
    (not included). Sequences that do not start with a start codon are translated codon by codon as they are;
    a trailing partial codon is ignored. None for an empty or non-ACGT sequence."""
    dna = clean_dna(dna)
    if dna is None:
        return None
    from Bio.Data.CodonTable import TranslationError

    Seq = _seq()
    try:
        return str(Seq(dna).translate(table=table, cds=True))
    except TranslationError:
        pass
    whole = dna[: len(dna) - len(dna) % 3]
    protein = str(Seq(whole).translate(table=table, to_stop=True)) if whole else ""
    from Bio.Data import CodonTable

    if protein and whole[:3] in CodonTable.unambiguous_dna_by_id[table].start_codons:
        protein = "M" + protein[1:]
    return protein


def back_translation_ok(dna: str | None, protein: str, table: int = TABLE) -> bool:
    """Whether a proposed coding sequence translates exactly to `protein` (and is a complete CDS)."""
    return is_cds(dna, table) and translate_cds(dna, table) == protein
