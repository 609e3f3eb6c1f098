"""bench/material_ranking.py: the composition tool's weight of design_material(method="ranked") swept on a valid split,
the pick's tie rule, --write-weight, and bad input."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from naturelm.errors import DataFileError, DataSourceMissing

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
TASK = "composition_to_material"
# (requested elements, the record's material): the tool's top candidate is each record's formula
GOLD = [(["Na", "Cl"], "Na Cl <sg225>"), (["Zn", "O"], "Zn Zn O O <sg186>"), (["Li", "Fe", "P", "O"],
        "Li Li Li Li Fe Fe Fe Fe P P P P O O O O O O O O O O O O O O O O <sg62>")]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_material_ranking", REPO / "bench" / "material_ranking.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def data(tmp_path):
    """A built-data dir: valid holds three composition records (and a retrosynthesis one), test none."""
    from naturelm.data.instructions import instruction

    d = tmp_path / "data"
    (d / "instructions").mkdir(parents=True)
    (d / "card.json").write_text(json.dumps({"tasks": [TASK], "materials": {"atoms_per_cell_bound": 40}}))
    retro = {"task": "retrosynthesis", "instruction": instruction("retrosynthesis", product="CCO"),
             "response": "<reactants>CC=O</reactants>", "meta": {"product": "CCO"}}
    valid = [retro] + [{"task": TASK, "instruction": instruction(TASK, elements=", ".join(e)),
                        "response": f"<material>{m}</material>", "meta": {"elements": sorted(e)}} for e, m in GOLD]
    (d / "instructions" / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid))
    (d / "instructions" / "test.jsonl").write_text(json.dumps(retro) + "\n")
    (d / "instructions" / "train.jsonl").write_text("")
    return d


@pytest.fixture(scope="module")
def tool():
    from naturelm.eval.harness import load_predictor

    return load_predictor("smact")


class BigCellModel:
    """Stands in for the model: its log-probability grows with the cell, as NatureLM-tiny's mean per token does."""

    name = "bigcell"

    def rank(self, prompt, candidates, tag=None):
        seen = dict.fromkeys(c.text for c in candidates)
        return [SimpleNamespace(canonical=t, entity=t, score=len(t.split()) / 10, valid=True, source="") for t in seen]


def test_best_weight_tie_rule(bench):
    rows = [{"weight": 0.0, "formula_match": 0.5, "atoms_per_cell_median": 30, "record_atoms_per_cell_median": 10},
            {"weight": 2.0, "formula_match": 0.5, "atoms_per_cell_median": 12, "record_atoms_per_cell_median": 10},
            {"weight": 1.0, "formula_match": 0.5, "atoms_per_cell_median": 8, "record_atoms_per_cell_median": 10},
            {"weight": 5.0, "formula_match": 0.4, "atoms_per_cell_median": 10, "record_atoms_per_cell_median": 10},
            {"weight": 3.0, "formula_match": 0.5, "atoms_per_cell_median": None, "record_atoms_per_cell_median": 10}]
    # formula_match first (5.0 has the closest cells but matches less); 1.0 and 2.0 are both 2 atoms off -> 1.0
    assert bench.best_weight(rows) == 1.0
    assert bench.best_weight(rows[2:]) == 1.0 and bench.best_weight([rows[1], rows[4]]) == 2.0  # None: unknown gap
    assert bench.best_weight([rows[3], dict(rows[3], weight=8.0)]) == 5.0  # full tie: the smaller weight
    assert bench.best_weight([dict(rows[0], formula_match=0.6), rows[1]]) == 0.0


def test_sweep_rows_per_weight_and_the_tool_order_wins_against_a_big_cell_model(bench, tool, data):
    res = bench.sweep_weights(BigCellModel(), tool, data, "valid", None, [0.0, 1000.0], progress=False)
    assert res["n"] == 3 and [row["weight"] for row in res["sweep"]] == [0.0, 1000.0]
    assert list(res["sweep"][0])[:3] == ["weight", "formula_match", "atoms_per_cell_median"]
    assert res["tool_alone"]["formula_match"] == 1.0  # NaCl, ZnO, LiFePO4: the tool's first candidates
    assert res["tool_alone"]["atoms_per_cell_median"] == 2 and res["tool_alone"]["record_atoms_per_cell_median"] == 4
    zero, big = res["sweep"]
    assert zero["formula_match"] == 1 / 3  # only NaCl (its one composition) when the biggest cell wins
    assert zero["atoms_per_cell_median"] > 4 and res["model_alone"] == {k: v for k, v in zero.items() if k != "weight"}
    assert {k: v for k, v in big.items() if k != "weight"} == res["tool_alone"]  # w -> infinity: the tool's order
    assert res["best_weight"] == 1000.0


def test_cli_writes_json_and_weight_keeping_other_keys(bench, tiny_checkpoint, data, tmp_path, capsys):
    from naturelm.api import MATERIAL_RANK_WEIGHT_KEY, NatureLM

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)  # the session fixture stays untouched
    cfg = ckpt / "generation_config.json"
    before = {**(json.loads(cfg.read_text()) if cfg.is_file() else {}), "keep_me": 7}
    cfg.write_text(json.dumps(before))
    out = tmp_path / "r.json"
    res = bench.main(["--model", str(ckpt), "--data", str(data), "--split", "valid", "--weights", "0,2,1000",
                      "--write-weight", "--out", str(out)])
    doc = json.loads(out.read_text())
    assert [row["weight"] for row in doc["sweep"]] == [0.0, 2.0, 1000.0] and doc["n"] == 3
    assert doc["best_weight"] in (0.0, 2.0, 1000.0) and doc["best_weight"] == bench.best_weight(doc["sweep"])
    assert doc["best_weight"] == res["best_weight"] and doc["written"] == MATERIAL_RANK_WEIGHT_KEY
    assert set(doc["wall_s"]) >= {"tool", "model_scoring", "metrics", "load"}
    assert doc["tool_alone"]["formula_match"] == 1.0
    assert json.loads(cfg.read_text()) == {**before, MATERIAL_RANK_WEIGHT_KEY: doc["best_weight"]}
    assert NatureLM.load(ckpt).material_rank_weight == doc["best_weight"]  # what design_material reads back
    assert "best_weight" in capsys.readouterr().out


def test_a_split_without_composition_records_names_the_file(bench, tool, data):
    with pytest.raises(DataFileError) as e:
        bench.sweep_weights(BigCellModel(), tool, data, "test", None, [0.0])
    assert e.value.path == str(data / "instructions" / "test.jsonl") and TASK in str(e.value)
    (data / "instructions" / "test.jsonl").unlink()
    with pytest.raises(DataSourceMissing, match="test.jsonl"):
        bench.sweep_weights(BigCellModel(), tool, data, "test", None, [0.0])


def test_retro_split_examples_keeps_one_record_per_product(bench, data):
    from retro_ranking import split_examples  # on sys.path once bench/material_ranking.py is loaded

    from naturelm.tasks.base import get_task

    lines = (data / "instructions" / "valid.jsonl").read_text().splitlines()
    (data / "instructions" / "valid.jsonl").write_text("\n".join([lines[0]] + lines) + "\n")  # a second copy
    assert [e.query for e in split_examples(get_task("retrosynthesis"), data, "valid", None)] == ["CCO"]
    assert len(split_examples(get_task(TASK), data, "valid", 2, key=None)) == 2
