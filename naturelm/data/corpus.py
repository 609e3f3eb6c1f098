"""Pre-training corpus: per-domain streams of tagged documents plus cross-domain pairs, mixed by weight,
shuffled with a seed, encoded with the NatureTokenizer and packed into flat uint32 token files.

Layout: `DIR/pretrain/{train,valid}.bin` (documents separated by EOS) and `DIR/pretrain/meta.json`.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from naturelm.data.splits import material_key, mol_key, name_key, nt_key, protein_key, text_keys
from naturelm.language.tags import wrap

DOMAINS = ("molecule", "reaction", "protein", "dna", "rna", "material", "cross_domain")


@dataclass
class Doc:
    """One pre-training document: its domain, text and the entity keys it mentions (for the leakage check)."""

    domain: str
    text: str
    keys: set[str] = field(default_factory=set)


def doc(domain: str, text: str, extra_keys: tuple[str, ...] = (), keys: set[str] | None = None) -> Doc:
    """A document; its entity keys are parsed from the text unless given."""
    return Doc(domain, text, (text_keys(text) if keys is None else set(keys)) | set(extra_keys))


# ------------------------------------------------------------------ document makers


def molecule_docs(smiles) -> list[Doc]:
    return [doc("molecule", wrap("mol", s), keys={mol_key(s)}) for s in smiles]


def reaction_docs(reactions) -> list[Doc]:
    """Each reaction forwards and backwards: `<reactants>…</reactants> → <product>…</product>` and the reverse."""
    out = []
    for r in reactions:
        keys = {mol_key(r.reactants), mol_key(r.product)}
        out.append(doc("reaction", f"{wrap('reactants', r.reactants)} → {wrap('product', r.product)}", keys=keys))
        out.append(doc("reaction", f"{wrap('product', r.product)} ⇐ {wrap('reactants', r.reactants)}", keys=keys))
    return out


_SEQ_KEY = {"protein": protein_key, "dna": nt_key, "rna": nt_key, "material": material_key}


def sequence_docs(domain: str, tag: str, seqs) -> list[Doc]:
    """One bare tagged entity per document (protein, DNA, RNA, material)."""
    return [doc(domain, wrap(tag, s), keys={_SEQ_KEY[domain](s)}) for s in seqs]


def name_docs(pairs) -> list[Doc]:
    """name <-> SMILES sentences."""
    out = []
    for i, p in enumerate(pairs):
        text = (f"The IUPAC name of {wrap('mol', p['smiles'])} is {p['name']}." if i % 2 == 0
                else f"{p['name']} has the structure {wrap('mol', p['smiles'])}.")
        out.append(doc("cross_domain", text, (name_key(p["name"]),)))
    return out


def molecule_property_docs(mols) -> list[Doc]:
    """`<mol>…</mol> has QED 0.71, 2 hydrogen bond donors, … .` from RDKit properties."""
    from naturelm.data.instructions import MOLECULE_PROPERTIES, property_text

    return [doc("cross_domain", f"{wrap('mol', s)} has " + ", ".join(property_text(p, props[p])[0]
                                                                        for p in MOLECULE_PROPERTIES) + ".")
            for s, props in mols]


def bbb_docs(mols) -> list[Doc]:
    return [doc("cross_domain", f"{wrap('mol', m['smiles'])} "
                + ("crosses the blood-brain barrier." if m["label"] else "does not cross the blood-brain barrier."))
            for m in mols]


def hydration_docs(mols) -> list[Doc]:
    """FreeSolv: `<mol>…</mol> has a hydration free energy of -3.2 kcal/mol.`"""
    return [doc("cross_domain", f"{wrap('mol', m['smiles'])} has a hydration free energy of "
                f"{m['hydration_free_energy']:.2f} kcal/mol.", keys={mol_key(m["smiles"])}) for m in mols]


def protein_description_docs(entries) -> list[Doc]:
    """UniProt names and organisms with their sequences, both orders."""
    out = []
    for i, e in enumerate(entries):
        prot = wrap("protein", e["sequence"])
        out.append(doc("cross_domain", f"{e['name']} from {e['organism']}: {prot}" if i % 2 == 0
                       else f"{prot} is {e['name']} from {e['organism']}."))
    return out


def solubility_docs(entries) -> list[Doc]:
    return [doc("cross_domain", f"{wrap('protein', e['sequence'])} is {'soluble' if e['label'] else 'insoluble'}.")
            for e in entries]


def material_property_docs(materials) -> list[Doc]:
    from naturelm.data.instructions import material_property_text

    return [doc("cross_domain", f"{wrap('material', m['material'])} has "
                f"{material_property_text(m['property'], m['value'])[0]}.") for m in materials]


def central_dogma_docs(hairpins) -> list[Doc]:
    """DNA and the RNA transcribed from it."""
    return [doc("cross_domain", f"{wrap('dna', h['dna'])} is transcribed into {wrap('rna', h['rna'])}.")
            for h in hairpins]


# ------------------------------------------------------------------ mixing and packing


def mix(docs_by_domain: dict[str, list[Doc]], weights: dict[str, float], tokens: int | None, tokenizer,
        seed: int, max_repeats: int, progress: bool = True):
    """Encode and select documents per domain until its token quota (weight x tokens), then shuffle them all.

    With `tokens=None` every document is taken once. Documents are visited in a seeded order and repeated
    (another pass, reshuffled) up to `max_repeats` times when a domain is short of its quota.
    Returns (encoded documents with EOS appended, per-domain stats).
    """
    from tqdm.auto import tqdm

    total_w = sum(weights.get(d, 0.0) for d in docs_by_domain if docs_by_domain[d]) or 1.0
    chosen: list[list[int]] = []
    stats = {}
    for domain in DOMAINS:
        docs = docs_by_domain.get(domain, [])
        quota = None if tokens is None else int(tokens * weights.get(domain, 0.0) / total_w)
        rng = random.Random(f"{seed}:corpus:{domain}")
        n_tok = n_sel = 0
        cache: dict[int, list[int]] = {}
        bar = tqdm(total=quota or len(docs), desc=f"corpus {domain}", unit="tok" if quota else "doc",
                   disable=not progress, leave=False)
        for rep in range(max_repeats if quota else 1):
            order = list(range(len(docs)))
            rng.shuffle(order)
            for i in order:
                if quota is not None and n_tok >= quota:
                    break
                if i not in cache:
                    cache[i] = tokenizer.encode(docs[i].text) + [tokenizer.eos_token_id]
                chosen.append(cache[i])
                n_tok += len(cache[i])
                n_sel += 1
                bar.update(len(cache[i]) if quota else 1)
            if quota is None or n_tok >= quota or not docs:
                break
        bar.close()
        stats[domain] = {"documents": len(docs), "selected": n_sel, "unique_selected": len(cache), "tokens": n_tok}
    random.Random(f"{seed}:corpus:mix").shuffle(chosen)
    return chosen, stats


def write_pretrain(encoded: list[list[int]], out: Path, valid_fraction: float, block_size: int, tokenizer,
                   seed: int) -> dict:
    """Split documents into train/valid (seeded hash of position), write the .bin files and meta.json."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    train, valid = [], []
    for i, ids in enumerate(encoded):
        u = int.from_bytes(hashlib.sha256(f"{seed}:valid:{i}".encode()).digest()[:8], "little") / 2**64
        (valid if u < valid_fraction else train).append(ids)
    sizes = {}
    for name, docs in (("train", train), ("valid", valid)):
        flat = np.fromiter((t for d in docs for t in d), dtype=np.uint32)
        flat.tofile(out / f"{name}.bin")
        sizes[name] = {"documents": len(docs), "tokens": int(flat.size)}
    meta = {"block_size": block_size, "n_tokens": sizes["train"]["tokens"], "n_tokens_valid": sizes["valid"]["tokens"],
            "documents": {k: v["documents"] for k, v in sizes.items()}, "dtype": "uint32",
            "eos_token_id": tokenizer.eos_token_id, "vocab_size": len(tokenizer), "tokenizer": "../tokenizer"}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta
