"""Small molecules and reactions: SMILES regex tokens, RDKit validation and canonical forms."""
from __future__ import annotations

import functools
import re

from naturelm.errors import EntityError
from naturelm.language.codecs.base import Codec

# Schwaller et al. SMILES regex (paper §1).
SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|\%[0-9]{2}|[0-9])"
)

ELEMENTS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo "
    "Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl "
    "Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
).split()

# Units outside brackets, plus the characters an unseen bracket atom falls back to (so any regex-valid SMILES round-trips).
_BASE_UNITS = ["Br", "B", "Cl", "C", "N", "O", "S", "P", "F", "I", "b", "c", "n", "o", "s", "p", "(", ")", ".", "=", "#",
               "-", "+", "\\", "/", ":", "~", "@", "?", ">", "*", "$"] + [str(i) for i in range(10)] + [f"%{i:02d}" for i in range(10, 100)]
_FALLBACK_CHARS = sorted(set("[]@+-:0123456789Hh*.#=") | set("".join(ELEMENTS)) | set("".join(ELEMENTS).lower()))


# RDKit's SMILES writer recurses per atom: 'C' * 20000 kills the process (SIGSEGV) and 10,000 atoms take ~9 s.
# Longer SMILES are refused before RDKit sees them.
MAX_SMILES_CHARS = 4096


@functools.cache
def _rdkit():
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


def mol_from_smiles(smiles):
    """RDKit Mol of a SMILES, or None when it is not a string, is longer than MAX_SMILES_CHARS (RDKit never sees
    it) or does not parse. The one guarded entry to `Chem.MolFromSmiles` for text from users and files; RDKit's
    log is silenced. As with RDKit, '' gives an empty Mol (no atoms)."""
    if not isinstance(smiles, str) or len(smiles) > MAX_SMILES_CHARS:
        return None
    return _rdkit().MolFromSmiles(smiles)


def smiles_tokens(smiles: str, domain: str = "molecule") -> list[str]:
    """Split SMILES into regex tokens; characters the regex cannot cover raise EntityError with their position."""
    if not isinstance(smiles, str):
        raise EntityError(domain, repr(smiles), None, "expected a string")
    if len(smiles) > MAX_SMILES_CHARS:
        raise EntityError(domain, smiles, MAX_SMILES_CHARS, f"longer than {MAX_SMILES_CHARS} characters, the most "
                                                            "RDKit is given")
    tokens = SMILES_REGEX.findall(smiles)
    if tokens and len("".join(tokens)) == len(smiles):
        return tokens
    tokens, pos = [], 0
    for m in SMILES_REGEX.finditer(smiles):
        if m.start() != pos:
            raise EntityError(domain, smiles, pos, f"unexpected character {smiles[pos]!r}")
        tokens.append(m.group())
        pos = m.end()
    if pos != len(smiles):
        raise EntityError(domain, smiles, pos, f"unexpected character {smiles[pos]!r}")
    if not tokens:
        raise EntityError(domain, smiles, 0, "empty SMILES")
    return tokens


def parse_smiles(smiles: str, domain: str = "molecule"):
    """RDKit Mol or EntityError (regex first, so the error names a position where it can)."""
    smiles_tokens(smiles, domain)
    Chem = _rdkit()
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise EntityError(domain, smiles, None, "RDKit cannot parse this SMILES")
    return mol


def strip_atom_maps(smiles: str) -> str:
    """The same molecule without atom-map numbers, canonical.

    Stereo that only the map numbers made real is dropped: the unmapped SMILES is parsed again, so a centre whose
    neighbours become identical (`[CH3:1][C@H:2]([CH3:3])[OH:4]` -> `CC(C)O`) loses its mark.
    """
    Chem = _rdkit()
    mol = parse_smiles(smiles)
    if any(atom.GetAtomMapNum() for atom in mol.GetAtoms()):
        for atom in mol.GetAtoms():
            atom.SetAtomMapNum(0)
        mol = parse_smiles(Chem.MolToSmiles(mol))
    return Chem.MolToSmiles(mol)


def canonical_smiles(smiles: str) -> str:
    """Canonical isomeric RDKit SMILES with atom maps removed; raises EntityError when invalid."""
    return strip_atom_maps(smiles)


def canonical_reactant_set(smiles: str) -> str:
    """Each component canonical, sorted, joined by '.' (how retrosynthesis answers are compared)."""
    parts = [p for p in smiles.split(".") if p]
    if not parts:
        raise EntityError("molecule", smiles, 0, "empty reactant set")
    return ".".join(sorted(canonical_smiles(p) for p in parts))


def try_canonical(smiles: str, reactant_set: bool = False) -> str | None:
    """Canonical form, or None when invalid (for scoring model outputs)."""
    try:
        return canonical_reactant_set(smiles) if reactant_set else canonical_smiles(smiles)
    except EntityError:
        return None


class MoleculeCodec(Codec):
    """`<mol>` and the reaction tags: one token per atom, bracket atom, bond, branch or ring digit."""

    domain = "molecule"

    def tokenize(self, content: str) -> list[str]:
        return smiles_tokens("".join(content.split()))

    def canonicalize(self, content: str) -> str:
        return canonical_reactant_set(content) if "." in content else canonical_smiles(content)

    def vocabulary(self, extra: list[str] | None = None) -> list[str]:
        units = list(dict.fromkeys(_BASE_UNITS + _FALLBACK_CHARS + [f"[{e}]" for e in ELEMENTS] + list(extra or [])))
        return units


def split_unknown(token: str, known: set[str]) -> list[str]:
    """A bracket atom outside the vocabulary as single characters, so the SMILES still round-trips."""
    return [token] if token in known else list(token)


def parse_reaction(rxn: str) -> tuple[str, str, str]:
    """`reactants>reagents>products` → canonical (reactants, reagents, products) with maps stripped."""
    parts = rxn.split(">")
    if len(parts) != 3:
        raise EntityError("reaction", rxn, None, "expected 'reactants>reagents>products'")
    out = []
    for i, p in enumerate(parts):
        p = p.strip()
        if not p:
            out.append("")
            continue
        out.append(canonical_reactant_set(p))
    if not out[0] or not out[2]:
        raise EntityError("reaction", rxn, None, "reactants and products must not be empty")
    return out[0], out[1], out[2]
