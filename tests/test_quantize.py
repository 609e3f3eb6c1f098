"""Weight-only fp16 / int8 / int4 quantization (naturelm.generate.quantize) on the tiny random Llama: the layers compute
what they claim, quantized answers agree with fp32, and constrained decoding and beam search still hold."""
from __future__ import annotations

import copy

import pytest

from decoding_checks import PRODUCTS, beam_search_holds, constrained_decoding_holds
from naturelm.api import NatureLM, instruction
from naturelm.errors import ConfigError

torch = pytest.importorskip("torch")
from naturelm.generate import quantize as q  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["fp16", "int8", "int4", "int8-dynamic"])
def qlm(request, tiny_checkpoint):
    return NatureLM.load(tiny_checkpoint, quantize=request.param)


def _linear(n_out, n_in, seed=0):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(n_in, n_out, bias=True)
    torch.nn.init.normal_(layer.weight, std=0.05)
    return layer


def test_int8_layer_by_hand():
    """Per output channel: scale = max |w| / 127, weight = round(w / scale); y = (x @ (q * scale).T) + b."""
    layer = torch.nn.Linear(32, 2, bias=False)  # the kernel wants at least a few input channels
    layer.weight.data = torch.zeros(2, 32)
    layer.weight.data[:, :2] = torch.tensor([[1.27, -0.5], [0.1, 0.2]])
    ql = q.Int8Linear(layer)
    assert ql.weight[:, :2].tolist() == [[127, -50], [64, 127]] and not ql.weight[:, 2:].any()
    assert ql.scale.float().tolist() == pytest.approx([0.01, 0.2 / 127], rel=4e-3)  # stored in bfloat16
    y = ql(torch.tensor([[1.0, 2.0] + [0.0] * 30]))
    assert y.dtype == torch.float32
    assert y[0].tolist() == pytest.approx([1.27 - 1.0, 0.1 + 0.4], rel=1e-2)


def test_fp16_layer_by_hand():
    """Each weight rounded to float16 (1/3 -> 0.333251953125, 2049 -> 2048), float32 input and sums, plus the bias."""
    layer = torch.nn.Linear(3, 2, bias=True)
    layer.weight.data = torch.tensor([[1 / 3, 2049.0, 0.0], [0.1, 0.0, -1.0]])
    layer.bias.data = torch.tensor([0.5, -0.25])
    ql = q.Fp16Linear(layer)
    w16 = [[0.333251953125, 2048.0, 0.0], [0.0999755859375, 0.0, -1.0]]
    assert ql.dequantized().tolist() == w16
    y = ql(torch.tensor([[3.0, 1.0, 2.0]]))
    assert y.dtype == torch.float32
    assert y[0].tolist() == pytest.approx([3 * w16[0][0] + 2048.0 + 0.5, 3 * w16[1][0] - 2.0 - 0.25], abs=1e-4)
    assert y[0, 1].item() != pytest.approx(0.3 - 2.0 - 0.25, abs=1e-6)  # not the float32 weight 0.1
    assert ql.packed_bytes() == 2 * 3 * 2


def test_fused_fp16_product_equals_its_parts():
    """The decode step's fused q/k/v (a new packed copy of the fp16 weights) computes the three layers' outputs."""
    from naturelm.generate.engine import _fuse

    parts = [q.Fp16Linear(torch.nn.Linear(64, n, bias=False)) for n in (32, 16, 16)]
    x = torch.randn(5, 64)
    want = torch.cat([m(x) for m in parts], dim=-1)
    assert torch.allclose(_fuse(parts, copies=True)(x), want, atol=1e-6)
    assert torch.allclose(_fuse(parts, copies=False)(x), want, atol=1e-6)  # large models: called one by one
    assert not torch.allclose(_fuse(parts[::-1], copies=True)(x), want, atol=1e-3)  # anti-oracle: another order


@pytest.mark.parametrize("cls, tol, act_tol", [(q.Int8Linear, 0.01, 0.02), (q.Int4Linear, 0.1, 0.02),
                                                (q.Int8DynamicLinear, 0.01, 0.05), (q.Fp16Linear, 1e-3, 1e-3)])
def test_quantized_layer_multiplies_by_its_dequantized_weight(cls, tol, act_tol):
    layer = _linear(40, 64)  # 40 output channels: int4 pads them to whole tiles of 16 and cuts the output back
    ql = cls(layer)
    w = ql.dequantized()
    assert w.shape == layer.weight.shape
    assert (w - layer.weight).norm() / layer.weight.norm() < tol  # oracle: close to the float weight
    x = torch.randn(3, 5, 64)
    y = ql(x)
    assert y.shape == (3, 5, 40)
    want = x @ w.t() + layer.bias
    assert (y - want).norm() / want.norm() < act_tol  # bfloat16 activations (int8-dynamic: int8 activations)
    off = q.Int8Linear(_linear(40, 64, seed=1))  # anti-oracle: another layer's weights are far off
    assert (off(x) - want).norm() / want.norm() > 0.5


def test_int8_dynamic_head_refines_its_best_logits():
    """The head's 8 best logits per row are x . (int8 row x scale) in float32; the others keep the kernel's
    int8-activation error (anti-oracle: without the refinement the best logits carry that error too)."""
    layer = _linear(300, 64, seed=2)
    head, plain = q.Int8DynamicHead(layer), q.Int8DynamicLinear(layer)
    x = torch.randn(4, 64)
    exact = x @ head.dequantized().t()
    y, rough = head(x), plain(x)
    top = rough.topk(q.HEAD_REFINE, dim=-1).indices  # the kernel's best 8, which the head recomputes
    assert torch.allclose(y.gather(1, top), exact.gather(1, top), atol=1e-5)
    assert not torch.allclose(rough.gather(1, top), exact.gather(1, top), atol=1e-5)
    rest = torch.ones_like(y, dtype=torch.bool).scatter(1, top, False)
    assert torch.equal(y[rest], rough[rest])


def test_smoothing_scale_by_hand():
    """s = act^alpha / weight^(1 - alpha) per input channel: act (4, 1), weight (1, 4), alpha 0.5 -> (2, 0.5);
    alpha 1 moves the whole activation range (s = act), alpha 0 none of it (s = 1 / weight)."""
    act, weight = torch.tensor([4.0, 1.0]), torch.tensor([1.0, 4.0])
    assert q.smoothing_scale(act, weight, 0.5).tolist() == [2.0, 0.5]
    assert q.smoothing_scale(act, weight, 1.0).tolist() == [4.0, 1.0]
    assert q.smoothing_scale(act, weight, 0.0).tolist() == [1.0, 0.25]
    assert q.smoothing_scale(torch.zeros(1), torch.ones(1), 0.5).tolist() == pytest.approx([1e-5 ** 0.5])


def test_smoothing_keeps_the_fp32_function(tiny_checkpoint):
    """Every decoder layer smoothed in float32: the logits stay those of the model (oracle), while the weights
    moved (anti-oracle: the norms' weights and the products' columns changed)."""
    from naturelm.api import calibration_prompts
    from naturelm.generate.engine import encode_prompts

    lm = NatureLM.load(tiny_checkpoint, dtype="float32")
    ids = torch.as_tensor(lm.engine.encode([instruction("retrosynthesis", product=PRODUCTS[0])]))
    with torch.inference_mode():
        before = lm.model(input_ids=ids).logits
    layer0 = lm.model.model.layers[0]
    norm, qw = layer0.input_layernorm.weight.clone(), layer0.self_attn.q_proj.weight.clone()
    ranges = q.activation_ranges(lm.model, encode_prompts(lm.tokenizer, calibration_prompts()[:4]))
    assert set(ranges) >= {f"model.layers.0.{k}" for k in ("self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj")}
    for i, layer in enumerate(lm.model.model.layers):
        q.smooth_layer(layer, lm.model.config, ranges, f"model.layers.{i}.")
    with torch.inference_mode():
        after = lm.model(input_ids=ids).logits
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(layer0.input_layernorm.weight, norm)
    s = norm / layer0.input_layernorm.weight  # the norm was divided by s, q's input channels multiplied by it
    torch.testing.assert_close(layer0.self_attn.q_proj.weight, qw * s)


def test_int8_dynamic_loads_smoothed(tiny_checkpoint):
    """NatureLM.load calibrates int8-dynamic on its calibration prompts; quantize without calibration does not."""
    from naturelm.api import calibration_prompts

    lm = NatureLM.load(tiny_checkpoint, quantize="int8-dynamic")
    assert lm.model.config.naturelm_smoothing == {"alpha": q.SMOOTH_ALPHA,
                                                  "calibration_sequences": len(calibration_prompts())}
    plain = NatureLM.load(tiny_checkpoint, dtype="float32")
    q.quantize(plain.model, "int8-dynamic")
    assert not hasattr(plain.model.config, "naturelm_smoothing")
    assert not hasattr(NatureLM.load(tiny_checkpoint, quantize="int8").model.config, "naturelm_smoothing")


def test_int4_needs_whole_groups():
    with pytest.raises(ConfigError, match="divisible by 32"):
        q.Int4Linear(_linear(16, 48))


def test_load_rejects_an_unknown_mode_before_loading(tmp_path):
    with pytest.raises(ConfigError, match="int8, int4"):
        NatureLM.load(tmp_path / "missing", quantize="int3")  # the mode is checked first: no DataSourceMissing


def test_quantized_model_reads_fewer_bytes(tiny_checkpoint):
    fp32 = NatureLM.load(tiny_checkpoint).model
    sizes = {None: q.weight_bytes_per_token(fp32)}
    for mode in q.MODES:
        m = q.quantize(copy.deepcopy(fp32), mode)
        assert q.quantized_mode(m) == mode
        assert not any(isinstance(x, torch.nn.Linear) for x in m.modules())
        embedding = type(m.get_input_embeddings())
        assert embedding is (torch.nn.Embedding if mode == "fp16" else q.Int8Embedding)
        sizes[mode] = q.weight_bytes_per_token(m)
    assert sizes[None] > 1.9 * sizes["fp16"] > 1.9 * sizes["int8"]
    assert sizes[None] > 3 * sizes["int8"] > 3 * sizes["int4"]


def test_quantized_greedy_agrees_with_fp32(lm, qlm):
    """Teacher-forced top-1 over every position of the prompts, and free-running greedy answers."""
    ids = lm.engine.encode([instruction("retrosynthesis", product=p) for p in PRODUCTS])
    x, mask, _ = lm.engine._left_pad(ids)
    with torch.inference_mode():
        a = lm.model(input_ids=x, attention_mask=mask).logits
        b = qlm.model(input_ids=x, attention_mask=mask).logits
    real = mask.bool()
    agree = (a.argmax(-1) == b.argmax(-1))[real].float().mean().item()
    mode = q.quantized_mode(qlm.model)
    assert qlm.decoding == f"PyTorch {mode}"
    tolerance = {"fp16": 0.002, "int8": 0.02, "int8-dynamic": 0.08, "int4": 0.15}[mode]
    assert ((a - b)[real].norm() / a[real].norm()).item() < tolerance
    assert agree >= {"fp16": 0.99, "int8": 0.95, "int8-dynamic": 0.9, "int4": 0.8}[mode]
    if mode in ("fp16", "int8"):
        ref = lm.engine.sample(ids, 1, 0.0, 1.0, 16, False)
        got = qlm.engine.sample(ids, 1, 0.0, 1.0, 16, False)
        same = sum(x == y for (r,), (g,) in zip(ref, got) for x, y in zip(r.ids, g.ids))
        assert same / sum(len(r.ids) for (r,) in ref) >= {"fp16": 0.95, "int8": 0.8}[mode]


def test_constrained_decoding_holds_quantized(qlm):
    constrained_decoding_holds(qlm)


def test_beam_search_holds_quantized(qlm):
    beam_search_holds(qlm)


def test_cli_generate_quantized(tiny_checkpoint):
    import json

    from typer.testing import CliRunner

    from naturelm.cli import app

    res = CliRunner().invoke(app, ["generate", "--model", str(tiny_checkpoint), "--quantize", "fp16", "--json",
                                   "--beams", "2", "--max-new-tokens", "12", "<mol>", "--raw"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) >= 1
    bad = CliRunner().invoke(app, ["generate", "--model", str(tiny_checkpoint), "--quantize", "fp8", "<mol>"])
    assert bad.exit_code != 0


def test_gguf_without_llama_cpp_says_what_to_install(tiny_checkpoint, monkeypatch):
    import sys

    from naturelm.errors import DataSourceMissing

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if llama-cpp-python had not built
    with pytest.raises(DataSourceMissing, match="pip install llama-cpp-python"):
        NatureLM.load(tiny_checkpoint, quantize="gguf-q8_0")


def test_activation_ranges_batched_and_in_float32(tiny_checkpoint):
    """The ranges equal those of one full forward pass per sequence (padding not counted), and a bfloat16 copy of
    the model, calibrated layer by layer in float32, gives the same ranges up to bfloat16's rounding."""
    from naturelm.api import calibration_prompts
    from naturelm.generate.engine import encode_prompts

    lm = NatureLM.load(tiny_checkpoint, dtype="float32")
    seqs = encode_prompts(lm.tokenizer, calibration_prompts()[:5])
    assert len({len(s) for s in seqs}) > 1  # padding is exercised
    expected, hooks = {}, []
    for name, module in lm.model.model.named_modules(prefix="model"):
        if isinstance(module, torch.nn.Linear):
            def record(m, args, name=name):
                x = args[0].reshape(-1, args[0].shape[-1]).abs().amax(0)
                expected[name] = x if name not in expected else torch.maximum(expected[name], x)
            hooks.append(module.register_forward_pre_hook(record))
    with torch.inference_mode():
        for s in seqs:
            lm.model(input_ids=torch.as_tensor([s]))
    for h in hooks:
        h.remove()
    got = q.activation_ranges(lm.model, seqs)
    assert set(got) == set(expected) and "lm_head" not in got
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)
    half = copy.deepcopy(lm.model).to(torch.bfloat16)
    low = q.activation_ranges(half, seqs)
    assert all(p.dtype == torch.bfloat16 for p in half.parameters())  # each layer went back to bfloat16
    for name in expected:
        assert ((low[name] - expected[name]).norm() / expected[name].norm()).item() < 0.03
