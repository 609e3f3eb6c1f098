"""The fast decode paths (shared prompt cache, live rows only, pruned beams, batched rank) against the original
implementations kept in tests/generate_reference.py, on a tiny random Llama: same candidates, same scores."""
from __future__ import annotations

import math

import pytest

from generate_reference import reference_beams, reference_logprobs, reference_rank
from naturelm.api import instruction
from naturelm.errors import ConfigError
from naturelm.generate import engine as engine_mod

pytestmark = pytest.mark.usefixtures("one_thread")

PRODUCTS = ["CC(=O)Nc1ccc(O)cc1", "O=C(O)c1ccccc1OC(C)=O", "CN1CCC[C@H]1c1cccnc1", "NC(=O)c1cnccn1",
            "CC(C)Cc1ccc(C(C)C(=O)O)cc1"]
PROMPTS = [instruction("retrosynthesis", product=p) for p in PRODUCTS]


def _assert_same(old, new, tol=1e-4):
    assert len(old) == len(new)
    for a, b in zip(old, new):
        assert [(g.key, g.raw, g.valid) for g in a] == [(g.key, g.raw, g.valid) for g in b]
        assert [g.score for g in a] == pytest.approx([g.score for g in b], abs=tol)


@pytest.fixture(params=["shared_prompt", "model_cache"])
def decoder_kind(request, monkeypatch):
    """Run a test on both decoders: the Llama shared-prompt one and the model's own KV cache."""
    if request.param == "model_cache":
        monkeypatch.setattr(engine_mod._LlamaDecoder, "supports", staticmethod(lambda model: False))
    return request.param


@pytest.fixture
def bias(lm):
    """`bias(token_string, value)`: add value to that token's logit (restored after the test)."""
    handles = []

    def add(token: str, value: float):
        tid = lm.tokenizer.token_to_id(token)

        def hook(module, inputs, output):
            output[..., tid] += value
            return output

        handles.append(lm.model.get_output_embeddings().register_forward_hook(hook))

    yield add
    for h in handles:
        h.remove()


@pytest.mark.parametrize("k, max_new, batch", [(4, 20, 16), (3, 9, 2), (5, 32, 16)])
@pytest.mark.parametrize("close_bias", [0.0, 0.5, 1.0])
def test_beams_equal_the_original_search(lm, decoder_kind, bias, k, max_new, batch, close_bias):
    """close_bias > 0: answers close at many lengths, so beams are pruned and prompts leave the batch early."""
    bias("</reactants>", close_bias)
    old = reference_beams(lm, PROMPTS, k, max_new, batch_size=batch)
    new = lm.generate(PROMPTS, num_beams=k, max_new_tokens=max_new, expect="reactants", batch_size=batch)
    _assert_same(old, new)
    assert all(len(row) == k for row in new)  # the budget forces every SMILES closed: k distinct answers each


def test_unconstrained_beams_equal_the_original_search(lm, decoder_kind, bias):
    """No grammar: hypotheses end at EOS (made likely here) or run out of budget and are kept unfinished."""
    bias(lm.tokenizer.id_to_token(lm.tokenizer.eos_token_id), 1.0)
    unfinished = 0
    for max_new in (3, 6, 12):
        old = reference_beams(lm, PROMPTS[:3], 3, max_new, expect=None, constrained=False)
        new = lm.generate(PROMPTS[:3], num_beams=3, max_new_tokens=max_new, constrained=False)
        _assert_same(old, new)
        hyps = lm.engine.beam(lm.engine.encode(PROMPTS[:3]), 6, max_new, constrained=False)
        unfinished += sum(not h.finished for row in hyps for h in row)
    assert unfinished  # some answers are beams that never stopped


def test_constrained_free_beams_equal_the_original_search(lm, decoder_kind, bias):
    """No forced tag: answers may open a tag late (too late to close it) or stop at EOS; budgets from tiny up."""
    bias("<reactants>", 3.0)
    bias("</reactants>", 1.0)
    bias(lm.tokenizer.id_to_token(lm.tokenizer.eos_token_id), 1.0)
    prompts = PROMPTS[:3] + ["Hi"]
    for max_new in (1, 2, 3, 5, 8):
        _assert_same(reference_beams(lm, prompts, 3, max_new, expect=None),
                     lm.generate(prompts, num_beams=3, max_new_tokens=max_new))


def test_closes_in_time(lm):
    cons = lm.engine.constraints(True)
    inside = cons.start([cons.open_of["reactants"]])  # an atom and the closing tag still to write
    assert cons.closes_in_time(inside, 2) and not cons.closes_in_time(inside, 1)
    assert not cons.closes_in_time(cons.start([]), 100)  # outside any tag nothing forces an end
    assert not lm.engine.constraints(False).closes_in_time(inside, 100)


def test_pruning_keeps_the_best_k_distinct(lm, bias):
    """Without a key every finished hypothesis comes back; with one the search stops early, same top k."""
    bias("</reactants>", 1.0)
    eng = lm.engine
    ids = eng.encode(PROMPTS)
    full = eng.beam(ids, 8, 24, True, "reactants")
    seen: dict = {}

    def key(i, hyp):
        seen[(i, tuple(hyp))] = True
        return eng.tok.decode(hyp)

    pruned = eng.beam(ids, 8, 24, True, "reactants", key=key, k=4)
    assert seen, "the key is asked for every finished hypothesis"
    assert sum(map(len, pruned)) < sum(map(len, full))

    def best(hyps):
        out, texts = [], set()
        for h in hyps:
            if eng.tok.decode(h.ids) not in texts:
                texts.add(eng.tok.decode(h.ids))
                out.append(h)
        return out[:4]

    for a, b in zip(full, pruned):
        assert [h.ids for h in best(a)] == [h.ids for h in best(b)]
        assert [h.score for h in best(a)] == pytest.approx([h.score for h in best(b)], abs=1e-4)


def test_shared_prompt_decoder_matches_the_model_cache(lm):
    """Logits of the two decoders step by step, with prompts of different lengths, uneven rows and a prompt leaving."""
    import torch

    eng = lm.engine
    ids = eng.encode(PROMPTS[:3]) + eng.encode(["<mol>C"], raw=True)
    shared, plain = eng.decoder(ids, lean=True), eng.decoder(ids, lean=False)
    assert isinstance(shared, engine_mod._LlamaDecoder)
    torch.testing.assert_close(shared.logits, plain.logits)
    g = torch.Generator().manual_seed(0)
    steps = [[0, 0, 0, 1, 2, 2, 3], [0, 1, 2, 3, 4, 5, 6], [1, 1, 2, 5, 6, 6], [0, 0, 1, 2, 2, 3, 4, 5, 5], [3, 4]]
    # then past the decoder's room (GROW written tokens: its blocks are reallocated), rows kept (None) or swapped
    steps += [None if i % 2 else [1, 0] for i in range(engine_mod.GROW + 3)]
    for src in steps:
        src = None if src is None else torch.as_tensor(src)
        tokens = torch.randint(5, len(lm.tokenizer), (2 if src is None else len(src),), generator=g)
        with torch.inference_mode():
            a, b = shared.step(src, tokens), plain.step(src, tokens)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_logprobs_equal_the_uncached_forward(lm):
    eng = lm.engine
    tok = lm.tokenizer
    p1, p2 = eng.encode(PROMPTS[:2])
    raw = eng.encode(["<mol>"], raw=True)[0]
    conts = [tok.encode("<reactants>CCO</reactants>"), tok.encode("<reactants>CC(=O)O.OCC</reactants>"), [],
             tok.encode("Yes"), tok.encode("<reactants>c1ccccc1</reactants>"), tok.encode("C)")]
    prompts = [p1, p1, p2, p2, p1, raw]
    old = reference_logprobs(eng, prompts, conts)
    for rows in (1, 3, 32):
        new = eng.logprobs(prompts, conts, rows=rows)
        assert [len(x) for x in new] == [len(c) for c in conts]
        for a, b in zip(old, new):
            assert b == pytest.approx(a, abs=1e-4)
    with pytest.raises(ConfigError, match="at least one token"):
        eng.logprobs([[]], [conts[0]])


def test_rank_equals_the_original(lm):
    from naturelm.tasks.baselines.base import Candidate

    pools = [["CC(=O)O.Nc1ccc(O)cc1", "CC(=O)Cl.Nc1ccc(O)cc1", "OC(C)=O.Oc1ccc(N)cc1", "C1CC", "  ", "not smiles"],
             [Candidate("O=C(O)c1ccccc1O.CC(=O)OC(C)=O", 0.9, "retrosim", True), "CC(=O)Cl.O=C(O)c1ccccc1O"],
             [],
             ["<reactants>CN1CCC[C@H]1c1cccnc1</reactants>", "CN1CCCC1c1cccnc1"]]
    prompts = PROMPTS[:4]
    old = [reference_rank(lm, p, c, tag="reactants") for p, c in zip(prompts, pools)]
    one = [lm.rank(p, c, tag="reactants") for p, c in zip(prompts, pools)]
    many = lm.rank(prompts, pools, tag="reactants")
    _assert_same(old, one)
    _assert_same(old, many)
    assert one[2] == [] and many[2] == []
    assert [g.source for g in one[1]] == [g.source for g in old[1]] and "retrosim" in {g.source for g in one[1]}
    invalid = [g for g in one[0] if not g.valid]
    assert invalid and all(g.canonical is None for g in invalid)
    assert all(math.isfinite(g.score) for g in one[0] if g.entity not in ("", "notsmiles"))
    with pytest.raises(ConfigError, match="one list per prompt"):
        lm.rank(prompts, pools[:2])
