"""Nearest-neighbour indexes over training entities: molecules (Morgan/Tanimoto), sequences (k-mer Jaccard),
materials (element-fraction cosine). Every query can exclude keys, so an item never retrieves itself."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from naturelm.errors import ConfigError, EntityError

FP_RADIUS, FP_BITS = 2, 2048
# retrieval direction -> (side searched, side answered) of a reaction: retro searches products, forward reactant sets
REACTION_SIDES = {"retro": ("product", "reactants"), "forward": ("reactants", "product")}


def reaction_sides(direction: str) -> tuple[str, str]:
    """(query field, answer field) of a retrieval direction; ConfigError if unknown."""
    if direction not in REACTION_SIDES:
        raise ConfigError(f"unknown retrieval direction {direction!r}; use one of {sorted(REACTION_SIDES)}")
    return REACTION_SIDES[direction]


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _save_paths(path: str | Path) -> tuple[Path, Path]:
    """(PATH.npz, PATH.json) of an index to save, their folder created."""
    npz, meta = _paths(path)
    npz.parent.mkdir(parents=True, exist_ok=True)
    return npz, meta


def _load_meta(path: str | Path, what: str, **expect) -> tuple[Path, dict]:
    """(PATH.npz, the parsed PATH.json) of a saved index; ValueError unless the JSON holds the `expect`ed values."""
    npz, meta = _paths(path)
    info = json.loads(meta.read_text())
    if any(info.get(key) != value for key, value in expect.items()):
        raise ValueError(f"{meta} is not {what}")
    return npz, info


def _top(keys: list[str], scores, k: int, exclude_keys) -> list[tuple[str, float]]:
    """The k best (key, score) pairs, highest first, ties by insertion order, skipping excluded keys."""
    scores = np.asarray(scores, dtype=np.float64)
    exclude = set(exclude_keys or ())
    n = min(len(scores), k + len(exclude))
    if n <= 0:
        return []
    idx = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    idx = idx[np.lexsort((idx, -scores[idx]))]
    return [(keys[i], float(scores[i])) for i in idx if keys[i] not in exclude][:k]


# --- molecules ------------------------------------------------------------------------------------------------

def fingerprint_matrix(smiles: list[str]):
    """Sparse 0/1 matrix (molecules x bits) of Morgan fingerprints (FP_RADIUS, FP_BITS), as `morgan_fp` gives them.

    SMILES are parsed one at a time (RDKit Mol objects take ~35 kB each; 50k of them would take 1.7 GB).
    An unparsable SMILES gives an empty row.
    """
    from scipy import sparse

    from naturelm.language.codecs import mol_from_smiles

    gen = _generator()
    rows, cols = [], []
    for i, s in enumerate(smiles):
        mol = mol_from_smiles(s)
        on = list(gen.GetFingerprint(mol).GetOnBits()) if mol is not None else []
        rows += [i] * len(on)
        cols += on
    data = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(smiles), FP_BITS))


def tanimoto_neighbours(queries, targets, k: int, min_sim: float = 0.0, exclude=None, chunk: int = 512):
    """For each query row, up to k (target index, Tanimoto) pairs, best first (ties by index), sim >= min_sim.

    `exclude(i)` gives target indices query i must not retrieve (e.g. itself, or the same molecule).
    Sparse matrix products keep this fast for tens of thousands of molecules.
    """
    q_n = np.asarray(queries.sum(axis=1)).ravel()
    t_n = np.asarray(targets.sum(axis=1)).ravel()
    tt = targets.T.tocsc()
    out = []
    for start in range(0, queries.shape[0], chunk):
        inter = (queries[start:start + chunk] @ tt).toarray()
        sims = inter / np.maximum(q_n[start:start + chunk, None] + t_n[None, :] - inter, 1e-9)
        for r, row in enumerate(sims):
            i = start + r
            for j in exclude(i) if exclude else ():
                row[j] = -1.0
            n = min(k, len(row))
            top = np.argpartition(-row, n - 1)[:n] if n < len(row) else np.arange(len(row))
            top = top[np.lexsort((top, -row[top]))]
            out.append([(int(j), float(row[j])) for j in top if row[j] >= min_sim and row[j] >= 0])
    return out


def morgan_fp(smiles: str):
    """Morgan radius-2, 2048-bit fingerprint (RDKit ExplicitBitVect) of a SMILES; EntityError if it does not parse."""
    from naturelm.language.codecs import mol_from_smiles

    mol = mol_from_smiles(smiles) if smiles else None
    if mol is None:
        raise EntityError("molecule", smiles or "", None, "RDKit cannot parse this SMILES")
    return _generator().GetFingerprint(mol)


_GEN = None


def _generator():
    global _GEN
    if _GEN is None:
        from rdkit.Chem import rdFingerprintGenerator

        _GEN = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    return _GEN


def tanimoto(fp, fps) -> list[float]:
    """Tanimoto similarity of one fingerprint against a list (RDKit BulkTanimotoSimilarity)."""
    from rdkit import DataStructs

    return DataStructs.BulkTanimotoSimilarity(fp, fps)


class FingerprintIndex:
    """Molecules by Morgan fingerprint; `query` returns (key, Tanimoto) pairs, best first."""

    def __init__(self):
        self.keys: list[str] = []
        self.smiles: list[str] = []
        self.fps: list = []

    def build(self, keys, smiles) -> "FingerprintIndex":
        """Index `smiles` under `keys` (same length); an unparsable SMILES raises EntityError naming its key."""
        keys, smiles = [str(k) for k in keys], list(smiles)
        if len(keys) != len(smiles):
            raise ValueError(f"{len(keys)} keys but {len(smiles)} SMILES")
        fps = []
        for key, s in zip(keys, smiles):
            try:
                fps.append(morgan_fp(s))
            except EntityError as e:
                raise EntityError("molecule", s or "", None, f"cannot index key {key!r}: {e.reason}") from None
        self.keys, self.smiles, self.fps = keys, smiles, fps
        return self

    def __len__(self) -> int:
        return len(self.keys)

    def similarities(self, smiles_or_fp) -> list[float]:
        """Tanimoto similarity of a query (SMILES or fingerprint) to every indexed molecule, in index order."""
        fp = morgan_fp(smiles_or_fp) if isinstance(smiles_or_fp, str) else smiles_or_fp
        return tanimoto(fp, self.fps)

    def query(self, smiles, k: int = 10, exclude_keys=()) -> list[tuple[str, float]]:
        """The k most similar indexed molecules to a SMILES (or fingerprint) as (key, similarity), skipping `exclude_keys`."""
        return _top(self.keys, self.similarities(smiles), k, exclude_keys)

    def save(self, path: str | Path) -> None:
        """Write PATH.npz (packed fingerprint bits) and PATH.json (keys, SMILES, parameters)."""
        from rdkit import DataStructs

        npz, meta = _save_paths(path)
        bits = np.zeros((len(self.fps), FP_BITS), dtype=np.uint8)
        for i, fp in enumerate(self.fps):
            DataStructs.ConvertToNumpyArray(fp, bits[i])
        np.savez_compressed(npz, bits=np.packbits(bits, axis=1))
        meta.write_text(json.dumps({"kind": "morgan", "radius": FP_RADIUS, "bits": FP_BITS,
                                    "keys": self.keys, "smiles": self.smiles}))

    @classmethod
    def load(cls, path: str | Path) -> "FingerprintIndex":
        """Read an index written by `save`."""
        from rdkit import DataStructs

        npz, info = _load_meta(path, f"a Morgan r{FP_RADIUS}/{FP_BITS} fingerprint index", kind="morgan", radius=FP_RADIUS,
                               bits=FP_BITS)
        bits = np.unpackbits(np.load(npz)["bits"], axis=1)[:, :FP_BITS]
        index = cls()
        index.keys, index.smiles = info["keys"], info["smiles"]
        for row in bits:
            fp = DataStructs.ExplicitBitVect(FP_BITS)
            fp.SetBitsFromList(np.flatnonzero(row).tolist())
            index.fps.append(fp)
        return index


# --- sequences ------------------------------------------------------------------------------------------------

class SequenceIndex:
    """Protein / DNA / RNA sequences by k-mer Jaccard similarity (an inverted index over k-mer sets)."""

    def __init__(self, k: int = 3):
        self.k = k
        self.keys: list[str] = []
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = {}

    def kmers(self, seq: str) -> set[str]:
        """The set of k-mers of an upper-cased sequence (the whole sequence when shorter than k)."""
        seq = "".join(seq.split()).upper()
        if not seq:
            raise EntityError("sequence", seq, 0, "empty sequence")
        return {seq[i:i + self.k] for i in range(max(1, len(seq) - self.k + 1))}

    def build(self, keys, sequences) -> "SequenceIndex":
        """Index `sequences` under `keys`."""
        keys, sequences = [str(k) for k in keys], list(sequences)
        if len(keys) != len(sequences):
            raise ValueError(f"{len(keys)} keys but {len(sequences)} sequences")
        self.keys, self.sizes, self.postings = keys, [], {}
        for i, seq in enumerate(sequences):
            grams = self.kmers(seq)
            self.sizes.append(len(grams))
            for g in grams:
                self.postings.setdefault(g, []).append(i)
        return self

    def __len__(self) -> int:
        return len(self.keys)

    def query(self, sequence: str, k: int = 10, exclude_keys=()) -> list[tuple[str, float]]:
        """The k most similar sequences as (key, Jaccard), skipping `exclude_keys`; items sharing no k-mer are omitted."""
        grams = self.kmers(sequence)
        shared = Counter(i for g in grams for i in self.postings.get(g, ()))
        if not shared:
            return []
        idx = list(shared)
        scores = [shared[i] / (len(grams) + self.sizes[i] - shared[i]) for i in idx]
        return _top([self.keys[i] for i in idx], scores, k, exclude_keys)

    def save(self, path: str | Path) -> None:
        """Write PATH.json."""
        _, meta = _save_paths(path)
        meta.write_text(json.dumps({"kind": "kmer", "k": self.k, "keys": self.keys, "sizes": self.sizes,
                                    "postings": self.postings}))

    @classmethod
    def load(cls, path: str | Path) -> "SequenceIndex":
        """Read an index written by `save`."""
        _, info = _load_meta(path, "a k-mer sequence index", kind="kmer")
        index = cls(info["k"])
        index.keys, index.sizes, index.postings = info["keys"], info["sizes"], info["postings"]
        return index


# --- materials ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"([A-Z][a-z]?|\(|\)|\[|\])(\d*\.?\d*)")


def element_fractions(formula: str) -> dict[str, float]:
    """Element → atomic fraction of a formula ('Fe2O3', 'Ca(OH)2', 'Li0.5CoO2') or a material sequence ('Fe Fe O <sg12>')."""
    from naturelm.language.codecs.molecule import ELEMENTS

    text = formula.strip()
    if not text:
        raise EntityError("material", formula, 0, "empty formula")
    if " " in text or text.startswith("<"):
        text = "".join(t for t in text.split() if not t.startswith("<"))
    stack: list[Counter] = [Counter()]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise EntityError("material", formula, pos, f"unexpected character {text[pos]!r}")
        sym, num = m.groups()
        count = float(num) if num not in ("", ".") else 1.0
        if sym in "([":
            stack.append(Counter())
        elif sym in ")]":
            if len(stack) == 1:
                raise EntityError("material", formula, pos, "unbalanced bracket")
            group = stack.pop()
            for e, c in group.items():
                stack[-1][e] += c * count
        else:
            if sym not in ELEMENTS:
                raise EntityError("material", formula, pos, f"{sym!r} is not an element symbol")
            stack[-1][sym] += count
        pos = m.end()
    if len(stack) != 1:
        raise EntityError("material", formula, len(text), "unbalanced bracket")
    total = sum(stack[0].values())
    if total <= 0:
        raise EntityError("material", formula, 0, "no atoms")
    return {e: c / total for e, c in stack[0].items()}


class CompositionIndex:
    """Materials by cosine similarity of element-fraction vectors."""

    def __init__(self):
        self.keys: list[str] = []
        self.formulas: list[str] = []
        self.elements: list[str] = []
        self.matrix = np.zeros((0, 0), dtype=np.float64)

    def build(self, keys, formulas) -> "CompositionIndex":
        """Index `formulas` under `keys`."""
        keys, formulas = [str(k) for k in keys], list(formulas)
        if len(keys) != len(formulas):
            raise ValueError(f"{len(keys)} keys but {len(formulas)} formulas")
        fracs = [element_fractions(f) for f in formulas]
        self.elements = sorted({e for f in fracs for e in f})
        col = {e: j for j, e in enumerate(self.elements)}
        matrix = np.zeros((len(fracs), len(self.elements)), dtype=np.float64)
        for i, f in enumerate(fracs):
            for e, x in f.items():
                matrix[i, col[e]] = x
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        self.keys, self.formulas, self.matrix = keys, formulas, matrix
        return self

    def __len__(self) -> int:
        return len(self.keys)

    def query(self, formula: str, k: int = 10, exclude_keys=()) -> list[tuple[str, float]]:
        """The k most similar materials as (key, cosine), skipping `exclude_keys`."""
        frac = element_fractions(formula)
        vec = np.array([frac.get(e, 0.0) for e in self.elements], dtype=np.float64)
        norm = np.linalg.norm(list(frac.values()))  # elements unseen in the index still count in the norm
        scores = self.matrix @ vec / norm if len(self.keys) else np.zeros(0)
        return _top(self.keys, np.clip(scores, 0.0, 1.0), k, exclude_keys)

    def save(self, path: str | Path) -> None:
        """Write PATH.npz (normalised fraction matrix) and PATH.json (keys, formulas, element columns)."""
        npz, meta = _save_paths(path)
        np.savez_compressed(npz, matrix=self.matrix)
        meta.write_text(json.dumps({"kind": "composition", "keys": self.keys, "formulas": self.formulas,
                                    "elements": self.elements}))

    @classmethod
    def load(cls, path: str | Path) -> "CompositionIndex":
        """Read an index written by `save`."""
        npz, info = _load_meta(path, "a composition index", kind="composition")
        index = cls()
        index.keys, index.formulas, index.elements = info["keys"], info["formulas"], info["elements"]
        index.matrix = np.load(npz)["matrix"]
        return index


class ReactionMemory:
    """Training reactions retrievable by similarity: the neighbours of retrieval-augmented prompts.

    direction "retro" indexes products (retrosynthesis_rag), "forward" indexes reactant sets (forward_rag)."""

    def __init__(self, products: list[str], reactants: list[str], direction: str = "retro"):
        self.direction, self.field = direction, reaction_sides(direction)[0]
        self.products, self.reactants = list(products), list(reactants)
        if len(self.products) != len(self.reactants):
            raise ValueError(f"{len(self.products)} products but {len(self.reactants)} reactant sets")
        queries = self.products if self.field == "product" else self.reactants
        self.index = FingerprintIndex().build(range(len(queries)), queries)
        self._keys_by_query: dict[str, list[str]] = {}
        for i, q in enumerate(queries):
            self._keys_by_query.setdefault(q, []).append(str(i))

    @classmethod
    def from_uspto50k(cls, path=None, direction: str = "retro") -> "ReactionMemory":
        """The USPTO-50k TRAIN split (never valid/test) as a memory."""
        from naturelm.data.sources.uspto50k import load_uspto50k

        train = load_uspto50k(path, split="train")
        return cls([r.product for r in train], [r.reactants for r in train], direction)

    def neighbours(self, query: str, k: int = 3) -> list[tuple[str, str, float]]:
        """(product, reactants, similarity) of the k reactions most similar to a product (retro) or reactant set
        (forward), never one with the query itself on that side."""
        same = self._keys_by_query.get(query, [])
        return [(self.products[int(key)], self.reactants[int(key)], s)
                for key, s in self.index.query(query, k, exclude_keys=same)]
