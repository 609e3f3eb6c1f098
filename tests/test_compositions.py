"""The composition tool (naturelm.tasks.baselines.compositions: SMACT's charge-balanced compositions of the requested
elements), its ranking by the model (`NatureLM.design_material(method="ranked")`) and its rows in `naturelm eval
--rank` on composition_to_material."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from naturelm.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

LFPO = ["Li", "Fe", "P", "O"]


@pytest.fixture(scope="module")
def tool():
    from naturelm.tasks.baselines.compositions import SmactCompositions

    return SmactCompositions(max_atoms=112)


def _shares() -> dict:
    """Per element, each non-zero oxidation state's share of its ICSD-24 reports, read straight from SMACT's data."""
    import smact

    rows = json.loads((Path(smact.data_directory) / "oxidation_states_icsd24_counts.json").read_text())
    counts: dict = {}
    for r in rows:
        if r["oxidation_state"] != 0 and r["results_count"] > 0:
            counts.setdefault(r["element"], {})[r["oxidation_state"]] = r["results_count"]
    return {e: {s: n / sum(by.values()) for s, n in by.items()} for e, by in counts.items()}


def _formula(text: str) -> str:
    from naturelm.language.codecs import material_to_formula

    return material_to_formula(text)[0]


def test_li_fe_p_o_gives_lifepo4_first_all_valid_without_the_alloy_shortcut(tool):
    from naturelm.language.codecs import get_codec, smact_valid
    from naturelm.tasks.baselines.compositions import RANKED_CANDIDATES

    cands = tool.propose(LFPO, RANKED_CANDIDATES)
    assert len(cands) == RANKED_CANDIDATES
    assert cands[0].text == "Li Fe P O O O O <sgNone>" and cands[0].meta["formula"] == "LiFePO4"
    assert cands[0].meta["oxidation_states"] == "Fe+2 Li+1 O-2 P+5"
    sh = _shares()  # hand-computed: 4 elements / 7 atoms x geometric mean of the four states' shares
    assert cands[0].score == pytest.approx(4 / 7 * (sh["Li"][1] * sh["Fe"][2] * sh["P"][5] * sh["O"][-2]) ** 0.25)
    codec = get_codec("material")
    for c in cands:
        formula = _formula(c.text)
        assert smact_valid(formula, alloy_shortcut=False), formula
        assert set(c.text.split()[:-1]) == set(LFPO) and c.text.endswith(" <sgNone>")
        assert codec.canonicalize(c.text) == c.text  # written by the codec, in the training data's element order
        assert c.source == "smact" and 0.0 < c.score <= 1.0 and c.meta["atoms"] == len(c.text.split()) - 1
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
    assert len({_formula(c.text) for c in cands}) == len(cands)  # one formula per composition
    assert tool.propose(LFPO, RANKED_CANDIDATES) == cands  # deterministic
    # anti-oracle: a 4-atom LiFePO is SMACT-valid only with rare states (Fe+1, O-1, P-1 or P-3), so it scores lower
    low = {_formula(c.text): c.score for c in tool.propose(LFPO, 4000)}
    assert "LiFePO" in low and low["LiFePO"] < cands[0].score


def test_na_cl_gives_nacl_first_by_the_tool_score(tool):
    cands = tool.propose(["Na", "Cl"], 5)
    assert [c.text for c in cands] == ["Na Cl <sgNone>"]  # coprime counts only: no Na2Cl2; Na2Cl is not neutral
    sh = _shares()
    assert cands[0].score == pytest.approx(1.0 * math.sqrt(sh["Na"][1] * sh["Cl"][-1]))


def test_an_all_metal_request_uses_the_alloy_shortcut(tool):
    from naturelm.language.codecs import smact_valid

    cands = tool.propose(["Cu", "Zn"], 3)
    assert [c.text for c in cands] == ["Zn Cu <sgNone>", "Zn Cu Cu <sgNone>", "Zn Zn Cu <sgNone>"]  # codec order
    assert [c.score for c in cands] == pytest.approx([1.0, 2 / 3, 2 / 3])  # no states to weigh: 2 elements / atoms
    assert all(c.meta["oxidation_states"] == "alloy shortcut" for c in cands)
    assert smact_valid("CuZn") and not smact_valid("CuZn", alloy_shortcut=False)  # valid only by the shortcut


def test_an_impossible_request_gives_no_candidates(tool):
    from naturelm.data.instructions import instruction

    assert tool.propose(["He", "O"], 10) == []  # helium has no ICSD-24 oxidation state: nothing is SMACT-valid
    assert tool.propose(["Li", "Na"], 0) == []
    prompt = instruction("composition_to_material", elements="He, O")
    assert tool.predict("composition_to_material", [prompt], 10) == [[]]


def test_predict_reads_the_elements_of_the_instruction(tool):
    from naturelm.data.instructions import TEMPLATES

    for template in TEMPLATES["composition_to_material"]:
        got = tool.predict("composition_to_material", [template.format(elements="Zn, O")], 3)
        assert got == [tool.propose(["Zn", "O"], 3)] and got[0][0].text == "Zn O <sgNone>"
    assert tool.predict("composition_to_material", ["What is the weather like?"], 3) == [[]]
    with pytest.raises(ConfigError, match="composition_to_material"):
        tool.predict("forward", ["CCO"], 3)


def test_unknown_elements_raise_config_error(tool, lm):
    with pytest.raises(ConfigError, match="Xx"):
        tool.propose(["Li", "Xx"], 3)
    for method in ("ranked", "model"):
        with pytest.raises(ConfigError, match="Xx"):
            lm.design_material(elements=["Li", "Xx"], n=1, method=method)
    with pytest.raises(ConfigError, match="method"):
        lm.design_material(elements=LFPO, method="retrosim")
    with pytest.raises(ConfigError, match="elements"):
        lm.design_material(property="band_gap", value=1.5, method="ranked")


def test_ranked_design_orders_by_model_logprob_plus_weight_times_tool_score(lm, tool):
    """Hand-computed: the model's mean log-probability of each SMACT composition of Zn/O under the instruction
    (`NatureLM.rank`), + 2.0 x the tool score, best first."""
    from naturelm.data.instructions import instruction

    w = 2.0
    out = lm.design_material(elements="Zn, O", n=3, method="ranked", rank_weight=w)
    cands = tool.propose(["Zn", "O"], 30)
    logprob = {g.canonical: g.score for g in lm.rank(instruction("composition_to_material", elements="Zn, O"),
                                                     [c.text for c in cands], tag="material")}
    combined = {c.text: logprob[c.text] + w * c.score for c in cands}
    assert [g.canonical for g in out] == sorted(combined, key=lambda t: -combined[t])[:3]
    for g in out:
        assert g.source == "smact+model" and g.tag == "material" and g.valid
        assert g.score == pytest.approx(combined[g.canonical])
        assert g.meta["model_logprob"] == pytest.approx(logprob[g.canonical]) and g.meta["rank_weight"] == w
        assert g.meta["smact_score"] == pytest.approx(next(c.score for c in cands if c.text == g.canonical))
        assert g.check("elements").passed and g.check("smact").passed and g.check("smact_strict").passed
        assert g.meets_request is True


def test_ranked_design_keeps_n_and_never_pads(lm):
    from naturelm.api import MATERIAL_RANK_WEIGHT

    out = lm.design_material(elements=["Na", "Cl"], n=5)  # auto: ranked; one composition exists
    assert [g.canonical for g in out] == ["Na Cl <sgNone>"] and out[0].source == "smact+model"
    assert out[0].meta["rank_weight"] == MATERIAL_RANK_WEIGHT and out[0].meta["formula"] == "NaCl"
    assert lm.design_material(elements=["He", "O"], n=5, method="ranked") == []
    out = lm.design_material(elements=LFPO, n=4, method="ranked")
    assert len(out) == 4 and all(g.check("elements").passed and g.check("smact_strict").passed for g in out)
    model = lm.design_material(elements=["Na", "Cl"], n=2, method="model", max_new_tokens=12)
    assert len(model) == 2 and all(g.source == "model" and g.check("elements") is not None for g in model)


# ------------------------------------------------------------------------------------ naturelm eval --rank
@pytest.fixture()
def material_data(tmp_path):
    """A tiny built-data dir with composition_to_material test records."""
    from naturelm.data.instructions import instruction

    d = tmp_path / "data"
    (d / "instructions").mkdir(parents=True)
    (d / "card.json").write_text(json.dumps({"tasks": ["composition_to_material"],
                                             "materials": {"atoms_per_cell_bound": 40}}))
    gold = [(["Na", "Cl"], "Na Cl <sg225>"), (["Zn", "O"], "Zn O <sg186>")]
    test = [{"task": "composition_to_material", "instruction": instruction("composition_to_material", elements=", ".join(e)),
             "response": f"<material>{m}</material>", "meta": {"elements": sorted(e)}} for e, m in gold]
    (d / "instructions" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    (d / "instructions" / "train.jsonl").write_text("")
    return d


class IronRanker:
    """Stands in for the model: samples a wrong-element material and prefers short answers (NatureLM.rank orders
    by log-probability)."""

    name = "ranker"

    def supports(self, task):
        return task == "composition_to_material"

    def predict(self, task, inputs, k):
        from naturelm.tasks.baselines.base import Candidate

        return [[Candidate("Fe <sgNone>", -1.0, self.name)] for _ in inputs]

    def rank(self, prompt, candidates, tag=None):
        from types import SimpleNamespace

        seen = dict.fromkeys(c.text for c in candidates)
        return [SimpleNamespace(canonical=t, entity=t, score=-len(t), valid=True, source="") for t in seen]


def test_eval_rank_gives_tool_model_and_ranked_rows(material_data, tmp_path):
    """The weight of the tool score reaches the ranked row: NaCl and ZnO (prior ~1) beat the ranker's shorter
    `Fe` answer only with it."""
    from naturelm.api import MATERIAL_RANK_WEIGHT
    from naturelm.eval.harness import run_eval

    doc = run_eval(["smact"], tasks="composition_to_material", data=material_data, out=tmp_path / "m", rank=True,
                   progress=False, predictors={"ranker": IronRanker()})
    res = doc["results"]
    assert set(res) == {"smact", "ranker", "ranker+smact (ranked)"}
    assert res["smact"]["composition_to_material"]["element_precision"] == 1.0
    assert res["smact"]["composition_to_material"]["smact_validity_as_requested"] == 1.0
    assert res["ranker"]["composition_to_material"]["element_precision"] == 0.0
    ranked = res["ranker+smact (ranked)"]["composition_to_material"]
    assert ranked["element_precision"] == 1.0 and ranked["n"] == 2
    assert doc["settings"]["rank_weights"] == {"ranker+smact (ranked)": {"composition_to_material": MATERIAL_RANK_WEIGHT}}
    stored = [json.loads(line) for line in (tmp_path / "m" / "predictions" / "smact" / "composition_to_material.jsonl")
              .read_text().splitlines()]
    assert stored[0]["candidates"][0]["text"] == "Na Cl <sgNone>"  # the tool's pool, ranked by the model
    assert all(c["meta"]["atoms"] <= 40 for rec in stored for c in rec["candidates"])  # the data card's bound


def test_cli_eval_rank_on_a_tiny_checkpoint(tiny_checkpoint, material_data, tmp_path, short_generation):
    import typer
    from typer.testing import CliRunner

    from naturelm.eval.cli import app as eval_app

    root = typer.Typer()
    root.add_typer(eval_app, name="eval")
    out = tmp_path / "out"
    r = CliRunner().invoke(root, ["eval", "--model", f"{tiny_checkpoint},smact", "--rank", "--tasks",
                                  "composition_to_material", "--data", str(material_data), "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())["results"]
    name = tiny_checkpoint.name
    assert set(res) == {name, "smact", f"{name}+smact (ranked)"}
    for row in res.values():
        assert row["composition_to_material"]["n"] == 2 and "element_precision" in row["composition_to_material"]
    assert f"{name}+smact (ranked)" in (out / "report.md").read_text()
