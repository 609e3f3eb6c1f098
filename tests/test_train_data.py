"""Training data: a tiny built-data directory (shared by the training tests), packing, SFT masking, bucketing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

NCI = Path(__import__("rdkit").__file__).parent / "Data" / "NCI" / "first_5K.smi"


def real_smiles(n: int) -> list[str]:
    """The first n RDKit-parsable single-component SMILES of RDKit's NCI sample (real molecules)."""
    from rdkit import Chem

    out = []
    for line in NCI.read_text().splitlines():
        smi = line.split()[0] if line.split() else ""
        mol = Chem.MolFromSmiles(smi) if smi and "." not in smi else None
        if mol is not None and mol.GetNumHeavyAtoms() <= 30:
            out.append(Chem.MolToSmiles(mol))
        if len(out) >= n:
            break
    return out


def make_data(root: Path, n_mols: int = 400, block_size: int = 64, tok=None) -> Path:
    """A built-data directory in the documented layout, from real molecules and RDKit properties."""
    from rdkit import Chem
    from rdkit.Chem import Descriptors, QED

    from naturelm.language.tokenizer import NatureTokenizer

    tok = tok or NatureTokenizer()
    smiles = real_smiles(n_mols)
    docs = []
    records = []
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        docs.append(f"The molecule <mol>{smi}</mol> has molecular weight {Descriptors.MolWt(mol):.1f}.")
        if i % 2:
            records.append({"task": "property_to_molecule", "instruction": f"Generate a molecule with QED {QED.qed(mol):.2f}.",
                            "response": f"<mol>{smi}</mol>", "meta": {}})
        else:
            records.append({"task": "molecule_donors", "instruction": f"How many hydrogen bond donors does <mol>{smi}</mol> have?",
                            "response": f"{Descriptors.NumHDonors(mol)}.", "meta": {}})
    ids = []
    for d in docs:
        ids += tok.encode(d) + [tok.eos_token_id]
    arr = np.array(ids, dtype=np.uint32)
    (root / "pretrain").mkdir(parents=True, exist_ok=True)
    cut = int(len(arr) * 0.9)
    arr[:cut].tofile(root / "pretrain" / "train.bin")
    arr[cut:].tofile(root / "pretrain" / "valid.bin")
    (root / "pretrain" / "meta.json").write_text(json.dumps({"block_size": block_size, "n_tokens": len(arr),
                                                             "tokenizer": "default"}))
    (root / "instructions").mkdir(exist_ok=True)
    split = {"train": records[: int(len(records) * 0.8)], "valid": records[int(len(records) * 0.8) : int(len(records) * 0.9)],
             "test": records[int(len(records) * 0.9) :]}
    for name, recs in split.items():
        (root / "instructions" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    tok.save_pretrained(root / "tokenizer")
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def test_packed_blocks_cover_the_stream_and_shift_by_one(data_dir):
    from naturelm.train.data import PackedBlocks

    blocks = PackedBlocks(data_dir, "train", None, global_batch=4, seed=0)
    assert blocks.block_size == 64
    stream = np.fromfile(data_dir / "pretrain" / "train.bin", dtype=np.uint32)
    batch = blocks.collate([0, 3])
    assert batch["input_ids"].shape == (2, 64)
    assert batch["input_ids"][1].tolist() == stream[3 * 64 : 4 * 64].tolist()
    assert batch["labels"][1].tolist() == stream[3 * 64 + 1 : 4 * 64 + 1].tolist()
    # one epoch of steps visits every block exactly once (up to the incomplete last batch)
    seen = [i for s in range(blocks.batches_per_epoch) for i in blocks.global_batch_indices(s)]
    assert len(seen) == len(set(seen)) == blocks.batches_per_epoch * 4
    assert blocks.global_batch_indices(5) == PackedBlocks(data_dir, "train", None, 4, 0).global_batch_indices(5)


def test_sft_loss_covers_response_and_eos_only(data_dir):
    from naturelm.language.prompts import format_prompt
    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.train.data import IGNORE, SFTData

    tok = NatureTokenizer()
    data = SFTData(data_dir, "train", tok, max_length=512, global_batch=4, seed=0)
    rec = json.loads((data_dir / "instructions" / "train.jsonl").read_text().splitlines()[0])
    batch = data.collate([0])
    ids, labels, mask = batch["input_ids"][0], batch["labels"][0], batch["attention_mask"][0]
    n_prompt = len(tok.encode(format_prompt(rec["instruction"]), add_bos=True))
    n = int(mask.sum())
    targets = labels[labels != IGNORE].tolist()
    assert targets == tok.encode(rec["response"], add_eos=True)
    assert tok.decode(targets) == rec["response"]
    assert (labels[: n_prompt - 1] == IGNORE).all() and (labels[n:] == IGNORE).all()
    assert ids.shape[0] % 8 == 0 and data.units([0]) == len(targets)


def test_task_repeats_oversample_only_the_named_tasks(data_dir):
    from collections import Counter

    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.train.config import load_config
    from naturelm.train.data import SFTData

    tok = NatureTokenizer()
    records = [json.loads(line) for line in (data_dir / "instructions" / "train.jsonl").read_text().splitlines()]
    counts = Counter(r["task"] for r in records)
    plain = SFTData(data_dir, "train", tok, 512, global_batch=4, seed=0)
    repeated = SFTData(data_dir, "train", tok, 512, global_batch=4, seed=0, task_repeats={"property_to_molecule": 3})
    assert len(plain) + plain.skipped == len(records)
    assert len(repeated) + repeated.skipped == len(records) + 2 * counts["property_to_molecule"]
    cfg = load_config(None, ["data.task_repeats={property_to_molecule: 3}"])  # free keys, not a fixed section
    assert cfg["data"]["task_repeats"] == {"property_to_molecule": 3}


def test_bucketing_cuts_padding_against_random_batches(data_dir):
    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.train.data import SFTData, bucketed_schedule

    data = SFTData(data_dir, "train", NatureTokenizer(), 512, global_batch=8, seed=0)
    lengths = data.lengths

    def padding(batches):
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    bucketed = bucketed_schedule(lengths, 8, seed=0, epoch=0, window=64)
    rng = np.random.default_rng(0).permutation(len(lengths))
    random = [rng[k : k + 8] for k in range(0, len(rng) - 7, 8)]
    assert sorted(np.concatenate(bucketed).tolist()) == sorted(np.concatenate(random).tolist())
    assert padding(bucketed) < 0.5 * padding(random)
    assert [b.tolist() for b in bucketed] != [b.tolist() for b in bucketed_schedule(lengths, 8, 0, 1, 64)]


def test_missing_data_names_the_build_command(tmp_path):
    from naturelm.errors import DataSourceMissing
    from naturelm.train.data import PackedBlocks

    with pytest.raises(DataSourceMissing, match="naturelm data build"):
        PackedBlocks(tmp_path, "train", 64, 4, 0)


def test_unconditional_records_train_raw_from_the_opening_tag():
    """Instruction = bare `<rna>` (paper: the prompt is just the opening tag): `<s><rna>` prompt, rest is target."""
    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.train.data import IGNORE, encode_pair

    tok = NatureTokenizer()
    ids, labels = encode_pair(tok, "<rna>", "<rna>GGAUCC</rna>")
    assert ids[:2] == [tok.bos_token_id, tok.tag_token_id("<rna>")] and labels[:2] == [IGNORE, IGNORE]
    targets = labels[2:]
    assert targets == ids[2:] and targets[-1] == tok.eos_token_id
    assert tok.decode(targets, skip_special_tokens=False).startswith("GGAUCC</rna>")
    ids2, labels2 = encode_pair(tok, "Generate an RNA.", "<rna>GGAUCC</rna>")
    n_prompt = sum(1 for x in labels2 if x == IGNORE)
    assert tok.decode(ids2[:n_prompt]) == "Instruction: Generate an RNA.\n\n\nResponse: "
    assert tok.decode(ids2[n_prompt:]) == "<rna>GGAUCC</rna>"
