"""Weight-only fp16 / int8 / int4 quantization of a causal LM for CPU decoding, on PyTorch's own kernels.

`quantize(model, "int8")` replaces every `nn.Linear` by an `Int8Linear` (the LM head by an `Int8Head`) and the
token embedding by an `Int8Embedding`; `"int4"` replaces the linear layers by `Int4Linear` (LM head and embedding
in int8); `"int8-dynamic"` replaces them by `Int8DynamicLinear` (the LM head by an `Int8DynamicHead`, the
embedding as for int8); `"fp16"`
replaces every linear layer, the LM head included, by an `Fp16Linear` and keeps the embedding. The norms stay float32
and so do the activations between layers: only the matrix products change.

- fp16: float16 weights, float32 activations and sums, through fbgemm's packed fp16 GEMM
  (`torch.fbgemm_linear_fp16_weight`): half the fp32 bytes, and on an AVX2 CPU about 3x faster than the fp32 BLAS
  at batch 1 for a small model (MKL's small-batch path is slow there). Each weight is rounded to float16 (11-bit
  significand), so the answers stay closest to fp32 of all modes.

- int8: symmetric, one scale per output channel; `torch._weight_int8pack_mm` (bfloat16 activations, int8
  weights read once per step: a quarter of the fp32 bytes).
- int4: asymmetric, groups of `INT4_GROUP` input channels, each with a scale and a zero point;
  `torch._weight_int4pack_mm_for_cpu` (the tinygemm layout; an eighth of the fp32 bytes plus the group scales).
- int8-dynamic: the same int8 weights, and the activations quantized to int8 on the fly (one scale per call),
  through fbgemm's `quantized::linear_dynamic` (float32 in and out). On an AVX2 CPU it computes about twice as
  fast as the int8 kernel above, which converts every weight to bfloat16 in software, at the cost of 8-bit
  activations (less agreement with fp32: docs/inference.md). Given calibration sequences (`NatureLM.load` passes
  its `calibration_prompts`), a Llama model's activation outliers are first migrated into the weights
  (SmoothQuant, `smooth_layer`): the fp32 function is unchanged and the 8-bit activations lose less.

The int8/int4 kernels are in core PyTorch (CPU, AVX2 and AVX-512 builds) and need bfloat16 activations to be
fast, so such a layer rounds its input to bfloat16 and returns its output in the input's dtype. The LM head's
bfloat16 output would decide near-ties between tokens by rounding, so `Int8Head` recomputes the logits of each
row's `HEAD_REFINE` best tokens from its int8 weights in float32. Decoding a model that is
bound by reading its weights (a 1B model on a laptop CPU) gets faster in proportion to the bytes saved; a model
small enough to stay in cache does not (see docs/inference.md for the measured numbers).
"""
from __future__ import annotations

import warnings

import torch

from naturelm.errors import ConfigError

MODES = ("fp16", "int8", "int4", "int8-dynamic")
INT4_GROUP = 32  # input channels per int4 scale / zero point
INT4_TILE = 16  # the int4 kernel packs output channels in tiles of 16 (padded here)
INT4_INNER_K_TILES = 2
HEAD_REFINE = 8  # best tokens per row whose logits Int8Head / Int8DynamicHead recompute in float32


def _int8_rows(w):
    """Symmetric per-row int8 of float32 `w`: (int8 weight, bfloat16 scale), rounded against the bfloat16 scale
    the kernels multiply by (so weight * scale is the nearest int8 grid point to w)."""
    scale = (w.abs().amax(1).clamp(min=1e-12) / 127.0).to(torch.bfloat16)
    return torch.round(w / scale.float()[:, None]).clamp_(-127, 127).to(torch.int8), scale


class Int8Linear(torch.nn.Module):
    """`nn.Linear` with int8 weights (per-output-channel symmetric scale), bfloat16 matrix product."""

    def __init__(self, linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight, scale = _int8_rows(linear.weight.detach().float())
        self.register_buffer("weight", weight)
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().float(), requires_grad=False)

    def forward(self, x):
        y = torch._weight_int8pack_mm(x.reshape(-1, self.in_features).to(torch.bfloat16), self.weight, self.scale)
        y = y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def dequantized(self):
        """The float32 weight this layer multiplies by (for checks)."""
        return self.weight.float() * self.scale.float()[:, None]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


class Int8Head(Int8Linear):
    """The LM head as an `Int8Linear`, with each row's `HEAD_REFINE` highest logits recomputed in float32 from
    the int8 weights (float32 activations, float32 sums): the bfloat16 rounding of the kernel's input and output
    no longer decides which token is best; the other logits (they only enter the softmax) keep it."""

    def forward(self, x):
        y = super().forward(x)
        return y if self.bias is not None else _refine_best(y, x, self.weight, self.scale)


def _refine_best(y, x, weight, scale):
    """`y` (logits from int8 `weight` rows times `scale`) with each row's `HEAD_REFINE` highest logits recomputed
    in float32 from the int8 weights and float32 `x`."""
    if y.shape[-1] <= HEAD_REFINE:
        return y
    flat, xs = y.reshape(-1, y.shape[-1]), x.reshape(-1, 1, x.shape[-1]).float()
    top = flat.topk(HEAD_REFINE, dim=-1).indices  # (rows, k)
    rows = weight.index_select(0, top.reshape(-1)).view(*top.shape, x.shape[-1]).float()
    exact = (xs * rows).sum(-1) * scale.float()[top]
    return flat.scatter(1, top, exact.to(flat.dtype)).reshape(y.shape)


class Int8DynamicLinear(torch.nn.Module):
    """`nn.Linear` with int8 weights (per-output-channel symmetric scale) and int8 activations quantized per call
    (fbgemm `quantized::linear_dynamic`, float32 in and out). Holds only fbgemm's packed weight."""

    def __init__(self, linear, keep: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight, scale = _int8_rows(linear.weight.detach().float())
        if keep:  # the int8 rows themselves too (Int8DynamicHead recomputes its best logits from them)
            self.register_buffer("weight", weight)
            self.register_buffer("scale", scale)
        with warnings.catch_warnings():  # quantized tensors are deprecated upstream; torch is pinned (2.13)
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch._make_per_channel_quantized_tensor(weight, scale.double(),
                                                               torch.zeros(len(scale), dtype=torch.long), 0)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x):
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, self.in_features).float(), self.packed, True)
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def dequantized(self):
        """The float32 weight this layer multiplies by (for checks)."""
        return torch.ops.quantized.linear_unpack(self.packed)[0].dequantize()

    def packed_bytes(self) -> int:
        """Bytes of the int8 weight it reads per call (fbgemm's packing adds per-column sums)."""
        return self.in_features * self.out_features + 8 * self.out_features

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights and activations"


class Fp16Linear(torch.nn.Module):
    """`nn.Linear` with float16 weights in fbgemm's packed layout, float32 input, sums and output
    (`torch.fbgemm_linear_fp16_weight`). Holds only the packed weight (and the bias, zeros when the layer has none:
    the kernel takes one)."""

    def __init__(self, linear=None, weight=None):
        super().__init__()
        w = (linear.weight if weight is None else weight).detach().float()
        self.out_features, self.in_features = w.shape
        bias = None if linear is None or linear.bias is None else linear.bias.detach().float()
        self.has_bias = bias is not None
        self.register_buffer("bias", bias if bias is not None else torch.zeros(self.out_features), persistent=False)
        # fbgemm's fp16 GEMM is marked deprecated upstream (with the quantized engine); torch is pinned (2.13), where
        # it is the fastest float product on AVX2. Its warnings fire once per process: spent here, in silence.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.packed = torch.fbgemm_pack_gemm_matrix_fp16(w.contiguous())
            self(torch.zeros(1, self.in_features))

    def forward(self, x):
        y = torch.fbgemm_linear_fp16_weight(x.reshape(-1, self.in_features).float(), self.packed, self.bias)
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def dequantized(self):
        """The float32 weight this layer multiplies by (its float16 values): the kernel applied to the identity
        (exact: one product per sum), less the bias."""
        eye = torch.eye(self.in_features)
        return (torch.fbgemm_linear_fp16_weight(eye, self.packed, torch.zeros(self.out_features))).t().contiguous()

    def packed_bytes(self) -> int:
        """Bytes of the float16 weight it reads per call."""
        return 2 * self.in_features * self.out_features

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp16 weights"


class Int8DynamicHead(Int8DynamicLinear):
    """The LM head as an `Int8DynamicLinear` (int8 activations: about twice as fast as `Int8Head`'s bfloat16
    kernel on an AVX2 CPU, a 130,239 x 2048 head at batch 1: 40 ms against 80 ms), with each row's `HEAD_REFINE`
    highest logits recomputed in float32 from its int8 weights (kept beside fbgemm's packed copy), as `Int8Head`
    does: 8-bit activations no longer decide which token is best."""

    def __init__(self, linear):
        super().__init__(linear, keep=True)

    def forward(self, x):
        return _refine_best(super().forward(x), x, self.weight, self.scale)


class Int4Linear(torch.nn.Module):
    """`nn.Linear` with int4 weights (groups of INT4_GROUP input channels, asymmetric), bfloat16 matrix product."""

    def __init__(self, linear, group: int = INT4_GROUP):
        super().__init__()
        self.in_features, self.out_features, self.group = linear.in_features, linear.out_features, group
        if self.in_features % group:
            raise ConfigError(f"int4 needs input features divisible by {group}, not {self.in_features}")
        w = linear.weight.detach().float()
        rows = -(-self.out_features // INT4_TILE) * INT4_TILE  # output channels padded to whole tiles
        if rows != self.out_features:
            w = torch.cat([w, w.new_zeros(rows - self.out_features, self.in_features)])
        g = w.view(rows, -1, group)
        low, high = g.amin(-1), g.amax(-1)
        scale = ((high - low) / 15.0).clamp(min=1e-12)
        q = torch.round((g - low[..., None]) / scale[..., None]).clamp_(0, 15).to(torch.int32).view(rows, -1)
        self.register_buffer("packed", torch._convert_weight_to_int4pack_for_cpu(q, INT4_INNER_K_TILES))
        # the kernel computes (q - 8) * scale + zero: zero = low + 8 * scale; layout (groups, rows, 2)
        sz = torch.stack([scale, low + 8 * scale], -1).transpose(0, 1).contiguous()
        self.register_buffer("scales_and_zeros", sz.to(torch.bfloat16))
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().float(), requires_grad=False)

    def forward(self, x):
        y = torch._weight_int4pack_mm_for_cpu(x.reshape(-1, self.in_features).to(torch.bfloat16), self.packed,
                                              self.group, self.scales_and_zeros)
        y = y[:, :self.out_features].to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def dequantized(self):
        """The float32 weight this layer multiplies by (for checks): the kernel applied to the identity."""
        eye = torch.eye(self.in_features, dtype=torch.bfloat16)
        y = torch._weight_int4pack_mm_for_cpu(eye, self.packed, self.group, self.scales_and_zeros)
        return y[:, :self.out_features].float().t().contiguous()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int4 groups of {self.group}"


class Int8Embedding(torch.nn.Module):
    """Token embedding with int8 rows (per-row symmetric scale); looks up and scales the rows asked for."""

    def __init__(self, embedding):
        super().__init__()
        w = embedding.weight.detach().float()
        self.num_embeddings, self.embedding_dim = w.shape
        self.padding_idx = embedding.padding_idx
        weight, scale = _int8_rows(w)
        self.register_buffer("weight", weight)
        self.register_buffer("scale", scale.float())

    def forward(self, ids):
        return self.weight[ids].float() * self.scale[ids][..., None]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


def quantize(model, mode: str | None, calibration: list[list[int]] | None = None):
    """The model with its linear layers and token embedding quantized in place (`mode` one of `MODES`; None:
    unchanged; "fp16" keeps the embedding float32 and gives the LM head fp16 weights too). Other parameters become
    float32. Returns the model.

    `calibration` (token id sequences; int8-dynamic on a Llama model): activation outliers are first migrated into
    the weights (`smooth_layer`, SmoothQuant), each decoder layer in float32 just before it is quantized."""

    if mode is None:
        return model
    if mode not in MODES:
        raise ConfigError(f"quantize must be one of {', '.join(MODES)} or None, not {mode!r}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ConfigError("weight-only quantization runs on CPU; on a GPU load in bfloat16 (quantize=None)")
    layer = {"fp16": Fp16Linear, "int8": Int8Linear, "int4": Int4Linear, "int8-dynamic": Int8DynamicLinear}[mode]
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()

    def replace(root):
        for module in list(root.modules()):
            for child_name, child in list(module.named_children()):
                if child is head and isinstance(child, torch.nn.Linear) and mode != "fp16":
                    setattr(module, child_name, Int8DynamicHead(child) if mode == "int8-dynamic" else Int8Head(child))
                elif isinstance(child, torch.nn.Linear):
                    setattr(module, child_name, layer(child))
                elif child is embed and mode != "fp16":
                    setattr(module, child_name, Int8Embedding(child))

    if calibration and mode == "int8-dynamic" and bias_free_llama(model):
        ranges = activation_ranges(model, calibration)
        for i, decoder_layer in enumerate(model.model.layers):
            decoder_layer.float()
            smooth_layer(decoder_layer, model.config, ranges, f"model.layers.{i}.")
            replace(decoder_layer)
        model.config.naturelm_smoothing = {"alpha": SMOOTH_ALPHA, "calibration_sequences": len(calibration)}
    replace(model)
    for p in model.parameters():
        p.data = p.data.float()
    model.config.naturelm_quantize = mode
    return model


SMOOTH_ALPHA = 0.5  # SmoothQuant's migration strength


def bias_free_llama(model) -> bool:
    """A Llama model without biases in its attention and MLP products (what `smooth_layer` handles, and what
    `naturelm.generate.llamacpp.write_gguf` converts)."""
    if getattr(model.config, "model_type", None) != "llama" or not hasattr(model, "model"):
        return False
    return all(m.bias is None for layer in model.model.layers for m in layer.modules()
               if isinstance(m, torch.nn.Linear))


def activation_ranges(model, calibration: list[list[int]]) -> dict:
    """Per linear layer of a Llama model's decoder layers (by module name), the largest |input| of each input
    channel over the calibration sequences, as float32.

    One forward pass of the decoder layers (the LM head is not run) over the sequences batched, right-padded (the
    padding comes after every real token, so no real token sees it, and its positions are not counted), each
    decoder layer converted to float32 while it runs: a bfloat16 checkpoint then multiplies in float32, fast on a
    CPU without bfloat16 units, and holds one layer's float32 copy at a time."""
    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    width = max(len(ids) for ids in calibration)
    ids = torch.full((len(calibration), width), model.config.pad_token_id or 0, dtype=torch.long, device=device)
    mask = torch.zeros((len(calibration), width), dtype=torch.long, device=device)
    for i, seq in enumerate(calibration):
        ids[i, :len(seq)], mask[i, :len(seq)] = torch.as_tensor(seq, device=device), 1
    real = mask.bool()
    ranges, hooks = {}, []
    for name, module in model.model.named_modules(prefix="model"):
        if isinstance(module, torch.nn.Linear):
            def record(m, args, name=name):
                x = args[0].detach()[real].abs().amax(0).float()
                ranges[name] = x if name not in ranges else torch.maximum(ranges[name], x)
            hooks.append(module.register_forward_pre_hook(record))
    if dtype != torch.float32:
        def to_float(layer, args, kwargs):
            layer.float()
            return _cast(args, torch.float32), _cast(kwargs, torch.float32)

        def back(layer, args, kwargs, output):
            layer.to(dtype)
            return _cast(output, dtype)

        for layer in model.model.layers:
            hooks.append(layer.register_forward_pre_hook(to_float, with_kwargs=True))
            hooks.append(layer.register_forward_hook(back, with_kwargs=True))
    try:
        with torch.no_grad():
            model.model(input_ids=ids, attention_mask=mask, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return ranges


def _cast(value, dtype):
    """`value` with every floating-point tensor in it (in tuples, lists and dicts too) cast to `dtype`."""
    if torch.is_tensor(value):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


def smoothing_scale(act, weight, alpha: float = SMOOTH_ALPHA):
    """SmoothQuant's per-input-channel scale s = act^alpha / weight^(1 - alpha) (act, weight: the channel's largest
    |activation| and |weight|): the activations are divided by s and the weights' input channels multiplied by s,
    so the product is unchanged and both ranges meet in between."""
    return (act.clamp(min=1e-5) ** alpha / weight.clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)


@torch.no_grad()
def smooth_layer(layer, config, ranges: dict, prefix: str, alpha: float = SMOOTH_ALPHA) -> None:
    """Migrate one float32 Llama decoder layer's activation outliers into its weights, in place; its function is
    unchanged (up to rounding). `ranges`: the model's `activation_ranges`; `prefix`: the layer's module name and a
    dot (`model.layers.3.`).

    q/k/v and gate/up: the RMSNorm weight in front is divided by s, the products' input channels multiplied by it.
    down: up's output rows divided by s (silu(gate) * up / s), down's input channels multiplied. o: its input channel
    (head h, dim d) comes from v's output (kv head of h, d), shared by the heads of a group, so s is taken per kv
    head and dim (over the group's largest activation and weight) and v's rows divided by it."""
    a, m = layer.self_attn, layer.mlp
    for norm, linears, key in ((layer.input_layernorm, (a.q_proj, a.k_proj, a.v_proj), "self_attn.q_proj"),
                               (layer.post_attention_layernorm, (m.gate_proj, m.up_proj), "mlp.gate_proj")):
        s = smoothing_scale(ranges[prefix + key], torch.cat([lin.weight for lin in linears]).abs().amax(0), alpha)
        norm.weight.div_(s)
        for lin in linears:
            lin.weight.mul_(s)
    s = smoothing_scale(ranges[prefix + "mlp.down_proj"], m.down_proj.weight.abs().amax(0), alpha)
    m.up_proj.weight.div_(s[:, None])
    m.down_proj.weight.mul_(s)
    kv, heads = config.num_key_value_heads, config.num_attention_heads

    def group(t):  # (kv heads, head dim): the largest over each kv head's group of query heads
        return t.view(kv, heads // kv, -1).amax(1)

    s = smoothing_scale(group(ranges[prefix + "self_attn.o_proj"]), group(a.o_proj.weight.abs().amax(0)), alpha)
    a.v_proj.weight.div_(s.reshape(-1)[:, None])
    a.o_proj.weight.mul_(s[:, None, :].expand(kv, heads // kv, s.shape[1]).reshape(-1))


def quantized_mode(model) -> str | None:
    """The quantization a model was given by `quantize` (None: none)."""
    return getattr(model.config, "naturelm_quantize", None)


def packed_bytes(model) -> int:
    """Bytes of the weights fbgemm holds packed outside the model's parameters and buffers (int8-dynamic and fp16
    layers)."""
    return sum(m.packed_bytes() for m in model.modules() if hasattr(m, "packed_bytes"))


def weight_bytes_per_token(model) -> int:
    """Bytes of weights one decode step reads at batch 1: every linear layer (the LM head included), one
    embedding row, and the other parameters (norms)."""

    total = 0
    embed = model.get_input_embeddings()
    for module in model.modules():
        if module is embed:
            w = module.weight
            total += w[0].numel() * w.element_size() + (4 if isinstance(module, Int8Embedding) else 0)
        elif hasattr(module, "packed_bytes"):
            total += module.packed_bytes()
        elif isinstance(module, (Int8Linear, Int4Linear, torch.nn.Linear)):
            total += sum(b.numel() * b.element_size() for b in module.buffers(recurse=False))
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
        elif not list(module.children()):
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return total
