"""RetroSim baseline on a small USPTO-50k training subset: oracle (template seen → gold in top-10), anti-oracle
(no applicable template → no gold), the Predictor protocol, save/load, and the bench's top-k scorer."""
import importlib.util
from pathlib import Path

import pytest

from naturelm.data.sources.uspto50k import load_uspto50k
from naturelm.errors import ConfigError, DataSourceMissing
from naturelm.tasks.baselines.base import Candidate, Predictor
from naturelm.tasks.baselines.retrosim import RetroSim

N_ORACLE, N_FILLER = 6, 500


def _bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "retrosim_uspto50k.py"
    spec = importlib.util.spec_from_file_location("bench_retrosim_uspto50k", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data():
    try:
        d = load_uspto50k()
    except DataSourceMissing as e:
        pytest.skip(str(e))
    return d.split("train"), d.split("test")


@pytest.fixture(scope="module")
def oracle_setup(data):
    """Test reactions whose template occurs in training, and a model fitted on those training reactions + filler."""
    train, test = data
    by_template = {}
    for r in train:
        by_template.setdefault(r.template, []).append(r)
    chosen = [r for r in test if r.template in by_template][:N_ORACLE]
    subset = [x for r in chosen for x in by_template[r.template]]
    seen = {id(x) for x in subset}
    subset += [x for x in train[:N_FILLER] if id(x) not in seen]
    return chosen, RetroSim(processes=1, progress=False).fit(subset)


def test_predictor_protocol(oracle_setup):
    _, model = oracle_setup
    assert isinstance(model, Predictor) and model.name == "retrosim"
    assert model.supports("retrosynthesis") and not model.supports("forward_synthesis")
    with pytest.raises(ConfigError):
        model.predict("forward_synthesis", ["CCO"], 5)
    with pytest.raises(ConfigError):
        RetroSim().propose("CCO")  # not fitted


def test_oracle_gold_in_top10_when_template_seen(oracle_setup):
    chosen, model = oracle_setup
    preds = model.predict("retrosynthesis", [r.product for r in chosen], 10)
    assert len(preds) == len(chosen)
    for r, cands in zip(chosen, preds):
        texts = [c.text for c in cands]
        assert all(isinstance(c, Candidate) and c.source == "retrosim" for c in cands)
        assert len(texts) == len(set(texts)) <= 10
        assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
        assert r.reactants in texts, f"{r.product}: gold {r.reactants} not in {texts}"
    acc = _bench()._topk_accuracy([[c.text for c in p] for p in preds], [r.reactants for r in chosen])
    assert acc["top10"] == 100.0


def test_anti_oracle_no_applicable_template_no_gold(data):
    from rdchiral.main import rdchiralRunText

    train, test = data
    target = test[0]

    def applies(template):
        try:
            return bool(rdchiralRunText(template, target.product))
        except Exception:
            return False

    subset = [r for r in train[:300] if not applies(r.template)]
    model = RetroSim(processes=1, progress=False).fit(subset)
    preds = model.predict("retrosynthesis", [target.product], 10)
    assert preds == [[]]
    assert _bench()._topk_accuracy([[c.text for c in p] for p in preds], [target.reactants])["top10"] == 0.0


def test_invalid_product_gives_empty_candidates(oracle_setup):
    _, model = oracle_setup
    assert model.predict("retrosynthesis", ["C1CC", ""], 10) == [[], []]


def test_multiprocess_and_save_load_match_single_process(oracle_setup, tmp_path):
    chosen, model = oracle_setup
    products = [r.product for r in chosen]
    single = model.predict("retrosynthesis", products, 5)
    model.save(tmp_path / "retrosim")
    loaded = RetroSim.load(tmp_path / "retrosim", processes=2, progress=False)
    assert len(loaded) == len(model)
    parallel = loaded.predict("retrosynthesis", products, 5)
    assert [[(c.text, round(c.score, 9)) for c in p] for p in parallel] == \
           [[(c.text, round(c.score, 9)) for c in p] for p in single]


def test_topk_scorer_oracle_anti_oracle_and_invalid():
    topk = _bench()._topk_accuracy
    golds = ["CC(=O)O.NCc1ccccc1", "Oc1ccccc1"]
    assert topk([[g] for g in golds], golds) == {"top1": 100.0, "top3": 100.0, "top5": 100.0, "top10": 100.0}
    # order of reactants and SMILES spelling do not matter: the sets are canonicalised
    assert topk([["NCc1ccccc1.OC(C)=O"], ["c1ccccc1O"]], golds)["top1"] == 100.0
    assert topk([["CCO"], ["CCN"]], golds)["top10"] == 0.0
    assert topk([[], ["C1CC", "not smiles"]], golds)["top10"] == 0.0  # empty and invalid count as wrong
    # strict ranking: an invalid or duplicate candidate still takes its slot
    ranked = topk([["C1CC", "CCO", "OCC", "Oc1ccccc1"]], ["Oc1ccccc1"])
    assert ranked["top3"] == 0.0 and ranked["top5"] == 100.0
