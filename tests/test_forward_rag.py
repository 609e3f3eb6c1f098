"""Retrieval-augmented forward prediction (issue 8): records, retrieval memory, task metric and the API method."""
from __future__ import annotations

import json
import random

import pytest

from naturelm.data import instructions as I
from naturelm.data.retrieval import fingerprint_matrix
from naturelm.data.sources.uspto50k import Reaction
from naturelm.errors import ConfigError
from naturelm.language import find_entities, format_prompt
from naturelm.tasks.base import Example

TRAIN = [
    Reaction("1", 6, "CC(=O)Nc1ccc(O)cc1", "CC(=O)OC(C)=O.Nc1ccc(O)cc1", "train"),
    Reaction("2", 1, "COc1ccc(CN2CCOCC2)cc1", "C1COCCN1.COc1ccc(C=O)cc1", "train"),
    Reaction("3", 1, "COc1ccc(CN2CCCCC2)cc1", "C1CCNCC1.COc1ccc(C=O)cc1", "train"),
    Reaction("4", 1, "COc1ccc(CN2CCCC2)cc1", "C1CCNC1.COc1ccc(C=O)cc1", "train"),
    Reaction("5", 1, "COc1ccc(CN2CCOCC2)cc1", "C1COCCN1.COc1ccc(CCl)cc1", "train"),  # same product as reaction 2
]
TEST = [Reaction("t1", 1, "COc1ccc(CN2CCSCC2)cc1", "C1CSCCN1.COc1ccc(C=O)cc1", "test")]


def test_forward_rag_neighbours_exclude_the_query_reaction_and_product():
    recs = I.rag_records(TRAIN[1:2], TRAIN, random.Random(0), k=3, direction="forward")
    rec = recs[0]
    nb = rec["meta"]["neighbours"]
    assert len(nb) == 3
    assert all(n["reactants"] != TRAIN[1].reactants and n["product"] != TRAIN[1].product for n in nb)
    assert {n["product"] for n in nb[:2]} == {TRAIN[2].product, TRAIN[3].product}  # the amine analogues first
    assert rec["task"] == "forward_rag" and rec["response"] == f"<product>{TRAIN[1].product}</product>"
    assert rec["meta"]["reactants"] == TRAIN[1].reactants and rec["meta"]["product"] == TRAIN[1].product
    lines = [ln for ln in rec["instruction"].splitlines() if ln.startswith("Similar reaction: ")]
    assert lines[0] == f"Similar reaction: <reactants>{nb[0]['reactants']}</reactants> → <product>{nb[0]['product']}</product>"
    assert len(lines) == 3
    query = find_entities(rec["instruction"].splitlines()[-1])
    assert [(s.tag.name, s.text) for s in query] == [("reactants", TRAIN[1].reactants)]
    format_prompt(rec["instruction"])


def test_forward_rag_neighbours_come_from_train_only_and_are_deterministic():
    recs = I.rag_records(TEST, TRAIN, random.Random(0), k=2, direction="forward")
    nb = recs[0]["meta"]["neighbours"]
    train_pairs = {(r.reactants, r.product) for r in TRAIN}
    assert nb and all((n["reactants"], n["product"]) in train_pairs for n in nb)
    assert nb[0]["similarity"] >= nb[1]["similarity"] > 0
    assert TEST[0].product not in recs[0]["instruction"].split("\n")[-1]  # the answer is never in the query line
    assert I.rag_records(TEST, TRAIN, random.Random(0), k=2, direction="forward") == recs
    fp = fingerprint_matrix([r.reactants for r in TRAIN])
    assert I.rag_records(TEST, TRAIN, random.Random(0), k=2, train_fp=fp, direction="forward") == recs


def test_retro_rag_is_unchanged_by_the_direction_parameter():
    retro = I.rag_records(TEST, TRAIN, random.Random(0), k=2)
    assert retro == I.rag_records(TEST, TRAIN, random.Random(0), k=2, direction="retro")
    assert retro[0]["task"] == "retrosynthesis_rag" and "Similar reaction: <product>" in retro[0]["instruction"]
    assert set(retro[0]["meta"]) == {"product", "reactants", "rxn_class", "neighbours"}


def test_unknown_direction_is_a_config_error():
    with pytest.raises(ConfigError, match="sideways"):
        I.rag_records(TEST, TRAIN, random.Random(0), direction="sideways")
    with pytest.raises(ConfigError, match="sideways"):
        I.neighbour_lines([], "sideways")


# ---------------------------------------------------------------- retrieval memory, task, API

def test_forward_memory_retrieves_by_reactant_set_and_never_the_query():
    from naturelm.data.retrieval import ReactionMemory

    memory = ReactionMemory([r.product for r in TRAIN], [r.reactants for r in TRAIN], direction="forward")
    hits = memory.neighbours(TRAIN[2].reactants, k=2)
    assert all(r != TRAIN[2].reactants for _, r, _ in hits)
    assert hits[0][:2] == (TRAIN[3].product, TRAIN[3].reactants)  # pyrrolidine analogue of the piperidine reaction
    assert all(0.0 < s < 1.0 for *_, s in hits)
    with pytest.raises(ConfigError, match="sideways"):
        ReactionMemory(["CCO"], ["CC=O"], direction="sideways")


def _examples():
    return [Example(TEST[0].reactants, meta={"reactants": TEST[0].reactants, "product": TEST[0].product}),
            Example(TRAIN[0].reactants, meta={"reactants": TRAIN[0].reactants, "product": TRAIN[0].product})]


def test_forward_rag_task_oracle_and_anti_oracle():
    from naturelm.tasks.base import Context, get_task
    from naturelm.tasks.baselines.base import Candidate

    task = get_task("forward_rag")
    assert task.templates == I.TEMPLATES["forward_rag"] and task.ks == (1, 3)
    ex = _examples()
    gold = [[Candidate(f"<product>{e.meta['product']}</product>")] for e in ex]
    assert task.score(ex, gold, Context())["top_1"] == 1.0
    other = [[Candidate(f"<product>{TRAIN[4].product}</product>"), Candidate("][")], []]  # wrong, invalid, empty
    m = task.score(ex, other, Context())
    assert m["top_1"] == m["top_3"] == 0.0 and m["valid_top_1"] == 0.5


def test_forward_rag_task_reads_its_test_records(tmp_path):
    from naturelm.tasks.base import get_task

    (tmp_path / "instructions").mkdir()
    recs = I.rag_records(TEST, TRAIN, random.Random(0), k=2, direction="forward") + I.forward_records(TEST, random.Random(0))
    (tmp_path / "instructions" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    ex = get_task("forward_rag").examples(tmp_path)
    assert [e.query for e in ex] == [TEST[0].reactants] and ex[0].meta["neighbours"]


def test_forward_rag_api_returns_generations(lm):
    from naturelm.data.retrieval import ReactionMemory
    from naturelm.generate.postprocess import Generation

    memory = ReactionMemory([r.product for r in TRAIN], [r.reactants for r in TRAIN], direction="forward")
    out = lm.forward_rag(TEST[0].reactants, k=2, n_neighbours=2, memory=memory, max_new_tokens=12)
    assert 1 <= len(out) <= 2 and all(isinstance(g, Generation) and g.tag in (None, "product") for g in out)
    batch = lm.forward_rag([TEST[0].reactants, TRAIN[0].reactants], k=1, memory=memory, max_new_tokens=8)
    assert len(batch) == 2 and all(isinstance(g, Generation) for row in batch for g in row)
    with pytest.raises(ConfigError, match="forward"):
        lm.forward_rag(TEST[0].reactants, memory=ReactionMemory(["CCO"], ["CC=O"]))


def test_forward_rag_prompt_matches_the_training_records(lm, monkeypatch):
    from naturelm.data.retrieval import ReactionMemory

    memory = ReactionMemory([r.product for r in TRAIN], [r.reactants for r in TRAIN], direction="forward")
    seen = []
    monkeypatch.setattr(lm, "_ask", lambda task, prompts, k, beams, **gen: seen.extend(prompts) or [[] for _ in prompts])
    lm.forward_rag([TEST[0].reactants], n_neighbours=2, memory=memory)
    rec = I.rag_records(TEST, TRAIN, random.Random(0), k=2, direction="forward")[0]
    lines = lambda text: [ln for ln in text.splitlines() if ln.startswith("Similar reaction")]  # noqa: E731
    assert lines(seen[0]) == lines(rec["instruction"])
    assert seen[0].endswith(f"<reactants>{TEST[0].reactants}</reactants>")
