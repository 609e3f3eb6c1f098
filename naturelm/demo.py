"""`naturelm demo`: a short tour of the language of nature (and of the shipped model once it exists)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

EXAMPLES = [
    ("molecule", "mol", "OC(=O)c1ccccc1OC(C)=O"),
    ("molecule", "reactants", "CC(=O)Cl.Oc1ccc(N)cc1"),
    ("protein", "protein", "MKTAYIAKQRQISFVKSHFSRQ"),
    ("dna", "dna", "ATGGCCATTGTAATGGGCCGC"),
    ("rna", "rna", "GGGAAACUUCGGUUUCCC"),
    ("material", "material", "LiFePO4"),
]


def language_tour(console: Console) -> None:
    """Tokenize, validate and canonicalise an example entity of every domain."""
    from naturelm.language import NatureTokenizer, wrap
    from naturelm.language.codecs import formula_to_material, get_codec, material_to_formula, smact_valid

    tok = NatureTokenizer()
    table = Table(title="The language of nature (default NatureTokenizer, %d ids)" % len(tok))
    for col in ("domain", "input", "canonical", "tokens", "check"):
        table.add_column(col, overflow="fold")
    for domain, tag, entity in EXAMPLES:
        if domain == "material":
            canonical = formula_to_material(entity, 62)
            formula, _ = material_to_formula(canonical)
            check = f"SMACT {'valid' if smact_valid(formula) else 'invalid'}"
        else:
            canonical = get_codec(domain).canonicalize(entity)
            check = "RDKit parsed" if domain == "molecule" else "alphabet ok"
        text = wrap(tag, canonical)
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        shown = " ".join(tok.tokenize(text)[:12]) + (" …" if len(ids) > 12 else "")
        table.add_row(domain, entity, canonical, f"{len(ids)}: {shown}", check)
    console.print(table)


def main() -> None:
    console = Console()
    language_tour(console)
