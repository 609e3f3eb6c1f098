"""Domain codecs: validate, canonicalise and split entities into tokens."""
from __future__ import annotations

from naturelm.language.codecs.base import Codec
from naturelm.language.codecs.material import (
    MaterialCodec,
    atoms_in_cell,
    formula_to_material,
    material_to_formula,
    smact_valid,
    spacegroup_token,
)
from naturelm.language.codecs.molecule import (
    MoleculeCodec,
    canonical_reactant_set,
    canonical_smiles,
    mol_from_smiles,
    parse_reaction,
    parse_smiles,
    smiles_tokens,
    strip_atom_maps,
    try_canonical,
)
from naturelm.language.codecs.sequence import (
    DNACodec,
    ProteinCodec,
    RNACodec,
    dna_to_rna,
    reverse_complement,
    rna_to_dna,
)

CODECS: dict[str, Codec] = {
    "molecule": MoleculeCodec(),
    "protein": ProteinCodec(),
    "dna": DNACodec(),
    "rna": RNACodec(),
    "material": MaterialCodec(),
}


def get_codec(domain: str) -> Codec:
    """The codec of a domain (`molecule`, `protein`, `dna`, `rna`, `material`)."""
    try:
        return CODECS[domain]
    except KeyError:
        raise KeyError(f"no codec for domain {domain!r}; known: {sorted(CODECS)}") from None


__all__ = [
    "CODECS", "Codec", "get_codec", "MoleculeCodec", "ProteinCodec", "DNACodec", "RNACodec", "MaterialCodec",
    "canonical_smiles", "canonical_reactant_set", "strip_atom_maps", "mol_from_smiles", "parse_smiles", "parse_reaction", "smiles_tokens",
    "try_canonical", "atoms_in_cell", "formula_to_material", "material_to_formula", "smact_valid", "spacegroup_token", "dna_to_rna",
    "rna_to_dna", "reverse_complement",
]
