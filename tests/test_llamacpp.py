"""Decoding on llama.cpp (naturelm.generate.llamacpp): the GGUF file computes the checkpoint's function, its
decoder keeps the rows' histories through any reordering, and greedy, beam search, sampling and constrained
decoding hold on it."""
from __future__ import annotations

import os

import pytest

from decoding_checks import PRODUCTS, beam_search_holds, constrained_decoding_holds
from naturelm.api import NatureLM, instruction
from naturelm.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")
from naturelm.generate import llamacpp  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def gguf_cache(tmp_path_factory):
    """The GGUF cache of this module's loads (`$NATURELM_CACHE/gguf`), in a temporary folder."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("cache")
        mp.setenv("NATURELM_CACHE", str(root))
        yield root / "gguf"


@pytest.fixture(scope="module", params=["gguf-f16", "gguf-q8_0"])
def glm(request, tiny_checkpoint):
    return NatureLM.load(tiny_checkpoint, quantize=request.param)


def _prompts(lm, n=4):
    return lm.engine.encode([instruction("retrosynthesis", product=p) for p in PRODUCTS[:n]])


def test_permute_pairs_each_heads_halves():
    """HF rotates (x_i, x_{i + d/2}) together, llama.cpp (x_{2i}, x_{2i + 1}): head rows 0..3 -> 0, 2, 1, 3."""
    w = torch.arange(8.0)[:, None]  # 2 heads of dimension 4
    assert llamacpp._permute(w, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_rope_factors_of_scaled_rope():
    """llama.cpp divides each frequency by its factor: the plain frequencies over the model's (linear: the factor)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    plain = LlamaConfig(hidden_size=64, num_attention_heads=4, rope_parameters={"rope_type": "default",
                                                                              "rope_theta": 10000.0})
    linear = LlamaConfig(hidden_size=64, num_attention_heads=4, rope_parameters={
        "rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0})
    assert llamacpp._rope_factors(LlamaRotaryEmbedding(plain), 10000.0, 16) is None
    assert llamacpp._rope_factors(LlamaRotaryEmbedding(linear), 10000.0, 16).tolist() == pytest.approx([4.0] * 8)


@pytest.mark.parametrize("rope", [{"rope_type": "default"}, {"rope_type": "linear", "factor": 4.0},
                                  {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 64}])
def test_gguf_computes_the_hf_function(rope):
    """A random Llama (untied head, RoPE plain or scaled) written as fp16 GGUF: llama.cpp's logits at the end of a
    100-token prompt equal HF's up to fp16 rounding, so names, the q/k permutation and the RoPE factors are right."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, rope_parameters={"rope_theta": 5000.0, **rope})
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 300, (1, 100), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = model(input_ids=ids).logits[0, -1]
    got = llamacpp.LlamaCpp.from_model(model, "gguf-f16").decoder([ids[0].tolist()], room=1, rows=1).logits[0]
    assert ((got - ref).norm() / ref.norm()).item() < 0.01


def test_prompt_logits_match_the_checkpoint(lm, glm):
    """The last prompt token's logits from llama.cpp equal the fp32 model's up to the format's rounding."""
    ids = _prompts(lm)
    x, mask, pos = lm.engine._left_pad(ids)
    with torch.inference_mode():
        ref = lm.model(input_ids=x, attention_mask=mask, position_ids=pos).logits[:, -1].float()
    got = glm.engine.native.decoder(ids, room=4, rows=len(ids)).logits
    rel = ((got - ref).norm() / ref.norm()).item()
    assert rel < {"gguf-f16": 0.01, "gguf-q8_0": 0.03}[glm.engine.native.fmt]
    assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_reordered_rows_keep_their_histories(lm, glm):
    """Any reordering (a row copied to several, rows dropped, rows swapped) gives every row the logits of its own
    history: the same steps through the PyTorch decoder agree."""
    ids = _prompts(lm, 2)
    # rows stay grouped by prompt, in prompt order (as beam search keeps them); the last step drops prompt 0
    steps = [([0, 0, 1, 1, 1], [5, 6, 7, 8, 9]), ([1, 0, 4, 2], [10, 11, 12, 13]), (None, [14, 15, 16, 17]),
             ([1, 3], [18, 19]), ([0, 0, 0, 1, 1, 1], [20, 21, 22, 23, 24, 25]), ([2, 5], [26, 27]), ([1], [28])]
    with torch.inference_mode():
        ref, got = lm.engine.decoder(ids, room=8, rows=8), glm.engine.native.decoder(ids, room=8, rows=8)
        for src, toks in steps:
            s = None if src is None else torch.tensor(src)
            a, b = ref.step(s, torch.tensor(toks)), got.step(s, torch.tensor(toks))
            assert a.shape == b.shape
            assert ((a - b).norm() / a.norm()).item() < 0.03
            assert (a.argmax(-1) == b.argmax(-1)).float().mean().item() >= 0.5


def test_greedy_agrees_with_fp32(lm, glm):
    ids = _prompts(lm)
    ref = lm.engine.sample(ids, 1, 0.0, 1.0, 16, False)
    got = glm.engine.sample(ids, 1, 0.0, 1.0, 16, False)
    same = sum(x == y for (r,), (g,) in zip(ref, got) for x, y in zip(r.ids, g.ids))
    assert same / sum(len(r.ids) for (r,) in ref) >= 0.9


def test_beam_search_holds(glm):
    beam_search_holds(glm)


def test_constrained_decoding_holds(glm):
    constrained_decoding_holds(glm)


def test_two_decoders_at_once(lm, glm):
    """A decoder made while another holds the kept context gets its own: both give their prompts' logits."""
    ids = _prompts(lm, 2)
    first = glm.engine.native.decoder(ids[:1], room=4, rows=1)
    second = glm.engine.native.decoder(ids[1:], room=4, rows=1)
    alone = glm.engine.native.decoder(ids, room=4, rows=2)
    for one, row in ((first, 0), (second, 1)):  # batched, the kernels round differently
        assert ((one.logits[0] - alone.logits[row]).norm() / alone.logits[row].norm()).item() < 0.01
        assert one.logits[0].argmax() == alone.logits[row].argmax()


def test_errors_are_typed(tiny_checkpoint, glm, tmp_path):
    with pytest.raises(ConfigError, match="gguf-q8_0"):
        NatureLM.load(tmp_path / "missing", quantize="gguf-q2")
    with pytest.raises(ConfigError, match="device='cpu'"):
        NatureLM.load(tiny_checkpoint, device="cuda", quantize="gguf-q8_0")
    with pytest.raises(ConfigError, match="at most 256 rows"):
        glm.engine.native.decoder([[1, 2]], room=4, rows=300)
    with pytest.raises(ConfigError, match="GGUF format"):
        llamacpp.write_gguf(glm.model, tmp_path / "x.gguf", "gguf-q3")
    from transformers import MixtralConfig, MixtralForCausalLM

    moe = MixtralForCausalLM(MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, num_key_value_heads=1, num_local_experts=2))
    with pytest.raises(ConfigError, match="Llama-architecture"):
        llamacpp.write_gguf(moe, tmp_path / "moe.gguf")
    from transformers import LlamaConfig, LlamaForCausalLM

    biased = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, attention_bias=True))
    with pytest.raises(ConfigError, match="biases"):
        llamacpp.write_gguf(biased, tmp_path / "biased.gguf")
    ids = _prompts(glm, 1)
    dec = glm.engine.native.decoder(ids, room=1, rows=1)
    with pytest.raises(ConfigError, match="KV cache"):  # asked for room 1, given far more than the cells left
        for _ in range(5000):
            dec.step(None, torch.tensor([5]))
    assert glm.generate(instruction("retrosynthesis", product=PRODUCTS[0]), num_beams=2, max_new_tokens=8)


def test_cli_generate_on_llamacpp(tiny_checkpoint):
    import json

    from typer.testing import CliRunner

    from naturelm.cli import app

    res = CliRunner().invoke(app, ["generate", "--model", str(tiny_checkpoint), "--quantize", "gguf-q8_0", "--json",
                                   "--beams", "2", "--max-new-tokens", "12", "<mol>", "--raw"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) >= 1


def test_server_on_llamacpp(tiny_checkpoint):
    """`naturelm serve --quantize gguf-q8_0` loads through `load_model`; completions come back from llama.cpp."""
    from fastapi.testclient import TestClient

    from naturelm.serve.app import ServeConfig, create_app
    from naturelm.serve.backends import load_model

    model = load_model(tiny_checkpoint, "engine", quantize="gguf-q8_0")
    assert model.engine.native is not None and model.engine.native.fmt == "gguf-q8_0"
    with TestClient(create_app(model, ServeConfig(model_name="tiny", default_new_tokens=8))) as c:
        assert c.get("/health").json()["decoding"] == "llama.cpp gguf-q8_0"
        r = c.post("/v1/completions", json={"prompt": "<mol>", "max_tokens": 8, "n": 2, "temperature": 0.7})
        assert r.status_code == 200, r.text
        assert len(r.json()["choices"]) == 2


def test_the_gguf_is_kept_per_checkpoint(tiny_checkpoint, gguf_cache, monkeypatch, tmp_path, caplog):
    """The second load reads the kept file (no conversion) and computes the same logits; a changed checkpoint gets
    a new file; a cache folder that cannot be written falls back to a temporary file."""
    import shutil

    first = NatureLM.load(tiny_checkpoint, quantize="gguf-q4_0")
    kept = list(gguf_cache.glob("*-gguf-q4_0-*.gguf"))
    assert len(kept) == 1 and not list(gguf_cache.glob("*.part"))
    ids = _prompts(first, 1)
    with monkeypatch.context() as m:
        m.setattr(llamacpp, "write_gguf", lambda *a, **k: pytest.fail("converted again"))
        again = NatureLM.load(tiny_checkpoint, quantize="gguf-q4_0")
    assert torch.equal(first.engine.native.decoder(ids, room=1, rows=1).logits,
                       again.engine.native.decoder(ids, room=1, rows=1).logits)
    changed = tmp_path / "changed"
    shutil.copytree(tiny_checkpoint, changed)
    assert llamacpp.cache_path(changed, "gguf-q4_0") != kept[0]  # another directory
    before = llamacpp.cache_path(changed, "gguf-q4_0")
    weights = changed / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert llamacpp.cache_path(changed, "gguf-q4_0") != before  # new weights
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("NATURELM_CACHE", str(blocked))
    with caplog.at_level("WARNING", logger="naturelm.llamacpp"):
        lm = NatureLM.load(tiny_checkpoint, quantize="gguf-q4_0")
    assert "not written" in caplog.text
    assert torch.equal(lm.engine.native.decoder(ids, room=1, rows=1).logits,
                       first.engine.native.decoder(ids, room=1, rows=1).logits)
