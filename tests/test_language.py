"""The sequence language: tag table, codecs, NatureTokenizer (issue 2)."""
from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from naturelm import EntityError, NatureTokenizer, TagError
from naturelm.language import TAGS, find_entities, split_tagged, wrap
from naturelm.language.codecs import (
    canonical_reactant_set,
    canonical_smiles,
    dna_to_rna,
    formula_to_material,
    get_codec,
    material_to_formula,
    parse_reaction,
    rna_to_dna,
    smact_valid,
    strip_atom_maps,
)
from naturelm.language.tags import SPACE_GROUP_TOKENS


def _pkg(name: str) -> Path:
    return Path(list(importlib.util.find_spec(name).submodule_search_locations)[0])


@pytest.fixture(scope="module")
def tok() -> NatureTokenizer:
    return NatureTokenizer()


def test_tag_table_has_every_paper_tag():
    for name in ("mol", "product", "reactants", "reagent", "fragA", "fragB", "protein", "antibody", "dna", "rna",
                 "material", "num", "ans"):
        assert name in TAGS
    assert TAGS["product"].open == "<product>" and TAGS["product"].close == "</product>"
    assert len(SPACE_GROUP_TOKENS) == 231 and SPACE_GROUP_TOKENS[-1] == "<sgNone>"


def test_four_different_ids_for_A(tok):
    inner = [tok.encode(wrap(t, "A"))[1] for t in ("protein", "dna", "rna")]
    text = tok.encode("A")
    assert len(text) == 1
    assert len(set(inner + text)) == 4


def test_nested_and_mismatched_tags_raise(tok):
    with pytest.raises(ValueError) as exc:
        tok.encode("<mol>C<protein>A</protein></mol>")
    assert isinstance(exc.value, TagError)
    for bad in ("<mol>CC</product>", "CC</mol>", "<mol>CC"):
        with pytest.raises(TagError):
            tok.encode(bad)


def test_entity_error_names_domain_and_position(tok):
    with pytest.raises(EntityError) as exc:
        tok.encode("hello <mol>CC&C</mol>")
    err = exc.value
    assert err.domain == "molecule" and err.position == 13 and "&" in str(err)
    with pytest.raises(EntityError) as exc:
        get_codec("protein").canonicalize("MKV1")
    assert exc.value.position == 3
    with pytest.raises(EntityError):
        get_codec("dna").canonicalize("ACGTX")


def test_molecule_round_trip_on_5000_real_molecules(tok):
    lines = (_pkg("rdkit") / "Data/NCI/first_5K.smi").read_text().splitlines()
    smiles = []
    for line in lines:
        if not line.strip():
            continue
        try:
            smiles.append(canonical_smiles(line.split()[0]))
        except EntityError:
            continue
    assert len(smiles) >= 4900
    for s in smiles:
        text = wrap("mol", s)
        assert tok.decode(tok.encode(text)) == text


def test_round_trip_real_proteins_and_materials(tok):
    import pandas as pd

    seqs = pd.read_csv(_pkg("aaanalysis") / "_data/benchmarks/SEQ_SOLUBLE.tsv", sep="\t")["sequence"].head(300)
    for seq in seqs:
        canon = get_codec("protein").canonicalize(seq)
        assert tok.decode(tok.encode(wrap("protein", canon))) == wrap("protein", canon)
    formulas = pd.read_csv(_pkg("crabnet") / "data/matbench/expt_gap.csv")["formula"].head(300)
    done = 0
    for i, f in enumerate(formulas):
        try:
            mat = formula_to_material(f, (i % 230) + 1)
        except EntityError:
            continue  # fractional (doped) compositions have no integer cell
        assert tok.decode(tok.encode(wrap("material", mat))) == wrap("material", mat)
        assert material_to_formula(mat)[1] == (i % 230) + 1
        done += 1
    assert done > 200




def test_nucleotide_conversion():
    assert dna_to_rna("ACGT") == "ACGU" and rna_to_dna("ACGU") == "ACGT"
    assert get_codec("rna").canonicalize("acg u") == "ACGU"


def test_molecule_helpers():
    assert strip_atom_maps("[CH3:1][OH:2]") == "CO"
    assert canonical_reactant_set("OCC.CC(=O)O") == "CC(=O)O.CCO"
    assert parse_reaction("[CH3:1][C:2](=O)O.OCC>>CC(=O)OCC")[0] == "CC(=O)O.CCO"
    with pytest.raises(EntityError):
        canonical_smiles("C1CC")


def test_materials_and_smact():
    assert formula_to_material("Li2O", 225) == "Li Li O <sg225>"
    assert formula_to_material("LiFePO4") == "Li Fe P O O O O <sgNone>"
    assert material_to_formula("O Li Li <sg225>") == ("Li2O", 225)
    assert get_codec("material").canonicalize("O Li Li <sg225>") == "Li Li O <sg225>"
    assert smact_valid("LiFePO4") and smact_valid("NaCl")
    assert not smact_valid("NaCl3O7")
    with pytest.raises(EntityError):
        get_codec("material").canonicalize("Li Xx <sg225>")
    with pytest.raises(EntityError):
        get_codec("material").canonicalize("Li O <sg999>")


def test_decode_strips_whitespace_inside_entities(tok):
    assert find_entities("<mol> C C ( = O ) O </mol>")[0].text == "CC(=O)O"
    segs = split_tagged("a <mol>C</mol> b")
    assert [s.tag.name if s.tag else None for s in segs] == [None, "mol", None]


def test_batch_encoding_pads_and_masks(tok):
    out = tok(["<mol>CCO</mol>", "<mol>C</mol>"], return_tensors="pt")
    assert out["input_ids"].shape == out["attention_mask"].shape
    assert out["attention_mask"][1].sum().item() == 3
    assert out["input_ids"][1, -1].item() == tok.pad_token_id
    left = tok(["<mol>CCO</mol>", "<mol>C</mol>"], padding_side="left")
    assert left["attention_mask"][1][:2] == [0, 0]


def test_save_and_load_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = NatureTokenizer.from_pretrained(tmp_path)
    text = "Instruction: name <mol>c1ccccc1</mol>\n\n\nResponse: benzene"
    assert again.encode(text) == tok.encode(text) and len(again) == len(tok)


def _tiny_hf_tokenizer_dir(path: Path, specials: dict[str, str]) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=list(specials.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t.train_from_iterator(["the product of this reaction is", "generate a molecule please"] * 20, trainer=trainer)
    path.mkdir(parents=True, exist_ok=True)
    t.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({f"{k}_token": v for k, v in specials.items()}))
    return path


def test_expand_existing_hf_tokenizer(tmp_path):
    base = _tiny_hf_tokenizer_dir(tmp_path / "base", {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>"})
    from tokenizers import Tokenizer

    base_size = Tokenizer.from_file(str(base / "tokenizer.json")).get_vocab_size()
    tok = NatureTokenizer.expand(base)
    assert tok.new_token_ids and min(tok.new_token_ids) == base_size
    assert tok.token_to_id("<m>C") in tok.new_token_ids
    assert tok.bos_token_id < base_size and tok.eos_token_id < base_size  # kept from the base
    assert tok.pad_token_id in tok.new_token_ids  # the base had none
    text = "generate a molecule <mol>CC(=O)O</mol>"
    assert tok.decode(tok.encode(text)) == text
    tok.save_pretrained(tmp_path / "expanded")
    assert NatureTokenizer.from_pretrained(tmp_path / "expanded").new_token_ids == tok.new_token_ids
