"""The data build: layout, card contents, leakage 0, and the same sha256 on a second build."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from naturelm.data.corpus import doc, mix, write_pretrain
from naturelm.data.recipes import RECIPES, load_recipe
from naturelm.errors import ConfigError

MICRO = replace(RECIPES["tiny"], name="micro", uspto_limit=200, moses_train=300, moses_test=60, moses_valid=30,
                names_limit=20, naming_molecules=0, naming_train_cap=30, crabnet_limit=300, uniprot_limit=100, protein_max_len=300, train_cap=30, valid_cap=10,
                test_cap=10, rag_train_cap=30, rag_test_cap=20, forward_train_cap=50, property_pool=50,
                pretrain_tokens=20_000)


def test_corpus_mix_and_pack_deterministic(tmp_path):
    from naturelm.language import NatureTokenizer

    tok = NatureTokenizer()
    docs = {"molecule": [doc("molecule", f"<mol>{'C' * i}O</mol>") for i in range(1, 40)],
            "protein": [doc("protein", f"<protein>{'MKV' * i}</protein>") for i in range(1, 20)]}
    outs = []
    for run in range(2):
        enc, stats = mix(docs, {"molecule": 0.5, "protein": 0.5}, 600, tok, seed=3, max_repeats=3, progress=False)
        write_pretrain(enc, tmp_path / str(run), 0.1, 64, tok, seed=3)
        outs.append((tmp_path / str(run) / "train.bin").read_bytes())
    assert outs[0] == outs[1]
    ids = np.fromfile(tmp_path / "0" / "train.bin", dtype=np.uint32)
    assert ids[-1] == tok.eos_token_id and (ids == tok.eos_token_id).sum() > 10
    assert stats["molecule"]["tokens"] >= 300 and stats["protein"]["tokens"] >= 300
    text = tok.decode(ids[: list(ids).index(tok.eos_token_id)].tolist())
    assert text.startswith(("<mol>", "<protein>"))


def test_recipe_yaml(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("base: tiny\nretro_augment: 5\n")
    r = load_recipe(str(p))
    assert r.retro_augment == 5 and r.name == "r" and r.moses_train == RECIPES["tiny"].moses_train
    p.write_text("base: tiny\nno_such_field: 1\n")
    with pytest.raises(ConfigError):
        load_recipe(str(p))
    with pytest.raises(ConfigError):
        load_recipe("nope")


def test_cli_has_build():
    from typer.testing import CliRunner

    from naturelm.data.cli import app

    result = CliRunner().invoke(app, ["build", "--help"])
    assert result.exit_code == 0 and "--recipe" in result.output


@pytest.mark.slow
def test_micro_build_twice_same_sha256(tmp_path, uspto_dir):
    from naturelm.data.build import build
    from naturelm.data.instructions import TASKS
    from naturelm.language import NatureTokenizer

    card = build(MICRO, tmp_path / "a", uspto_path=str(uspto_dir), progress=False)
    again = build(MICRO, tmp_path / "b", uspto_path=str(uspto_dir), progress=False)
    assert card["sha256"] == again["sha256"]
    assert card["leakage"]["overlap_after"] == 0
    assert set(card["tasks"]) == set(TASKS)
    optional_missing = {s["name"] for s in card["sources"] if s.get("status") == "missing"}
    for task, counts in card["tasks"].items():
        if task in ("rna_generation", "guide_rna") and "optimir:hairpins" in optional_missing:
            continue
        assert counts["train"] > 0 and counts["test"] > 0, task
    assert card["tasks"]["retrosynthesis"]["test"] == 200
    for name in ("train", "valid", "test"):
        lines = (tmp_path / "a" / "instructions" / f"{name}.jsonl").read_text().splitlines()
        rec = json.loads(lines[0])
        assert set(rec) == {"task", "instruction", "response", "meta"}
    meta = json.loads((tmp_path / "a" / "pretrain" / "meta.json").read_text())
    ids = np.fromfile(tmp_path / "a" / "pretrain" / "train.bin", dtype=np.uint32)
    assert meta["n_tokens"] == ids.size > 0
    tok = NatureTokenizer.from_pretrained(tmp_path / "a" / "tokenizer")
    assert int(ids.max()) < len(tok)
