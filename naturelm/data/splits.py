"""Entity-level splits and the leakage check: no test entity may appear in any training record of any task.

Entities are compared by canonical keys: `mol:` the molecule's connectivity, the first block of its InChIKey
(stereoisomers, isotopologues and protonation states of one skeleton are one entity; a reactant set is one
multi-component key), `name:` lower-cased name, `protein:` sequence, `nt:` nucleotide sequence in DNA letters
(so an RNA and the DNA it comes from are the same entity), `material:` the element multiset (space group ignored).
"""
from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass, field

from naturelm.language.tags import find_entities

SPLITS = ("train", "valid", "test")


@functools.lru_cache(maxsize=1 << 20)
def connectivity_key(smiles: str) -> str:
    """First block of the InChIKey (the connectivity layer; stereo, isotopes and protonation live in the other blocks).

    SMILES that InChI cannot key fall back to `smiles:` + RDKit's non-isomeric canonical SMILES, and unparsable
    strings to `raw:` + the string itself, so every input has a key and equal strings share it.
    """
    from rdkit import Chem

    from naturelm.language.codecs import mol_from_smiles

    mol = mol_from_smiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        return "raw:" + smiles
    try:
        key = Chem.MolToInchiKey(mol)
    except Exception:  # InChI refuses some valid RDKit molecules (e.g. dummy atoms)
        key = ""
    if key:
        return key.split("-")[0]
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(0)
    return "smiles:" + Chem.MolToSmiles(mol, isomericSmiles=False)


def mol_key(smiles: str) -> str:
    """A molecule's (or a '.'-joined reactant set's) entity key: `mol:` + its connectivity key."""
    return "mol:" + connectivity_key(smiles)


def name_key(name: str) -> str:
    return "name:" + " ".join(name.lower().split())


def protein_key(seq: str) -> str:
    return "protein:" + seq.upper()


def nt_key(seq: str) -> str:
    return "nt:" + seq.upper().replace("U", "T")


def material_key(material: str) -> str:
    return "material:" + " ".join(sorted(t for t in material.split() if not t.startswith("<")))


_DOMAIN_KEY = {"molecule": mol_key, "protein": protein_key, "dna": nt_key, "rna": nt_key, "material": material_key}


def text_keys(text: str) -> set[str]:
    """Keys of every tagged entity in a text (contents as written: builders write canonical forms)."""
    return {_DOMAIN_KEY[s.tag.domain](s.text) for s in find_entities(text) if s.tag.domain in _DOMAIN_KEY and s.text}


def record_keys(rec: dict) -> set[str]:
    """The entities a record is about: its gold facts in `meta` and the entities of its response.

    The instruction is covered through `meta` (its query entity), so retrieval context (neighbour
    reactions from the training split) is not counted as the record's entity.
    """
    meta = rec.get("meta") or {}
    keys = text_keys(rec.get("response", ""))
    for f in ("smiles", "product", "reactants"):
        if meta.get(f):
            keys.add(mol_key(meta[f]))
    if meta.get("name"):
        keys.add(name_key(meta["name"]))
    for f in ("dna", "spacer"):
        if meta.get(f):
            keys.add(nt_key(meta[f]))
    return keys


def text_molecules(text: str) -> set[str]:
    """Canonical SMILES of every molecule in a text's molecule-domain entities (reactant sets split into molecules)."""
    from naturelm.language.codecs import try_canonical

    out = set()
    for span in find_entities(text):
        if span.tag.domain == "molecule" and span.text:
            out |= {c for part in span.text.split(".") if (c := try_canonical(part))}
    return out


def record_molecules(rec: dict) -> set[str]:
    """Canonical SMILES of every molecule a record shows a model: its instruction, response and meta molecules."""
    from naturelm.language.codecs import try_canonical

    meta = rec.get("meta") or {}
    out = text_molecules(rec.get("instruction", "")) | text_molecules(rec.get("response", ""))
    for f in ("smiles", "product", "reactants"):
        if isinstance(meta.get(f), str):
            out |= {c for part in meta[f].split(".") if (c := try_canonical(part))}
    return out


class Splitter:
    """Deterministic split of an entity key: forced splits first (e.g. the USPTO-50k standard split), else a seeded hash."""

    def __init__(self, seed: int, valid: float, test: float, forced: dict[str, str] | None = None):
        self.seed, self.valid, self.test, self.forced = seed, valid, test, dict(forced or {})

    def __call__(self, key: str) -> str:
        if key in self.forced:
            return self.forced[key]
        h = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        u = int.from_bytes(h[:8], "little") / 2**64
        return "test" if u < self.test else "valid" if u < self.test + self.valid else "train"


@dataclass
class LeakReport:
    """What the leakage check found: training records removed per task, pre-training documents removed, overlap left."""

    test_entities: int = 0
    removed: Counter = field(default_factory=Counter)
    pretrain_removed: int = 0
    overlap_after: int = 0

    def to_dict(self) -> dict:
        return {"test_entities": self.test_entities, "removed_train_records": dict(sorted(self.removed.items())),
                "removed_train_records_total": sum(self.removed.values()),
                "removed_pretrain_documents": self.pretrain_removed, "overlap_after": self.overlap_after}


def test_keys(test_records: list[dict]) -> set[str]:
    """Every entity key of the test records."""
    keys: set[str] = set()
    for r in test_records:
        keys |= record_keys(r)
    return keys


def remove_leaks(train: list[dict], test_records: list[dict], report: LeakReport | None = None) -> tuple[list[dict], LeakReport]:
    """Training records that share no entity with any test record, and a report of those removed (per task).

    `overlap_after` is recomputed on what is kept: the number of test entities still found in training (0).
    """
    report = report or LeakReport()
    keys = test_keys(test_records)
    report.test_entities = len(keys)
    kept, seen = [], set()
    for r in train:
        rk = record_keys(r)
        if rk & keys:
            report.removed[r["task"]] += 1
        else:
            kept.append(r)
            seen |= rk
    report.overlap_after = len(seen & keys)
    return kept, report


def overlap(train: list[dict], test_records: list[dict]) -> int:
    """Number of test entities that appear in any training record (what `remove_leaks` drives to 0)."""
    keys = test_keys(test_records)
    found: set[str] = set()
    for r in train:
        found |= record_keys(r) & keys
    return len(found)


def index_leaks(train, test) -> dict:
    """How a retrieval index fitted on `train` reactions (objects with product, reactants) overlaps `test`: distinct
    test products (by connectivity) that some indexed reaction produces, and indexed reactions identical to a test
    reaction (same product and reactant set by connectivity)."""
    test_products = {mol_key(r.product) for r in test}
    test_reactions = {(mol_key(r.product), mol_key(r.reactants)) for r in test}
    held = {mol_key(r.product) for r in train} & test_products
    identical = sum((mol_key(r.product), mol_key(r.reactants)) in test_reactions for r in train)
    return {"test_products_in_index": len(held), "identical_reactions_in_index": identical, "test_products": len(test_products)}


def leak_free_index(train, test) -> list:
    """The training reactions whose product is no test product (by connectivity): a retrieval index without the
    answers to the test set, reported beside the standard split's index."""
    test_products = {mol_key(r.product) for r in test}
    return [r for r in train if mol_key(r.product) not in test_products]
