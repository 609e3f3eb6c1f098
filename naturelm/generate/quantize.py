"""Weight-only int8 / int4 quantization of a causal LM for CPU decoding, on PyTorch's own kernels.

`quantize(model, "int8")` replaces every `nn.Linear` (the LM head included) by an `Int8Linear` and the token
embedding by an `Int8Embedding`; `"int4"` replaces the linear layers by `Int4Linear` (embedding in int8). The
norms stay float32 and so do the activations between layers: only the matrix products change.

- int8: symmetric, one scale per output channel; `torch._weight_int8pack_mm` (bfloat16 activations, int8
  weights read once per step: a quarter of the fp32 bytes).
- int4: asymmetric, groups of `INT4_GROUP` input channels, each with a scale and a zero point;
  `torch._weight_int4pack_mm_for_cpu` (the tinygemm layout; an eighth of the fp32 bytes plus the group scales).

Both kernels are in core PyTorch (CPU, AVX2 and AVX-512 builds) and need bfloat16 activations to be fast, so a
quantized layer rounds its input to bfloat16 and returns its output in the input's dtype. Decoding a model that is
bound by reading its weights (a 1B model on a laptop CPU) gets faster in proportion to the bytes saved; a model
small enough to stay in cache does not (see docs/inference.md for the measured numbers).
"""
from __future__ import annotations

import torch

from naturelm.errors import ConfigError

MODES = ("int8", "int4")
INT4_GROUP = 32  # input channels per int4 scale / zero point
INT4_TILE = 16  # the int4 kernel packs output channels in tiles of 16 (padded here)
INT4_INNER_K_TILES = 2


class Int8Linear(torch.nn.Module):
    """`nn.Linear` with int8 weights (per-output-channel symmetric scale), bfloat16 matrix product."""

    def __init__(self, linear):
        super().__init__()
        w = linear.weight.detach().float()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        scale = w.abs().amax(1).clamp(min=1e-12) / 127.0
        self.register_buffer("weight", torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
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
        scale = w.abs().amax(1).clamp(min=1e-12) / 127.0
        self.register_buffer("weight", torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)

    def forward(self, ids):
        return self.weight[ids].float() * self.scale[ids][..., None]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


def quantize(model, mode: str | None):
    """The model with its linear layers and token embedding quantized in place (`mode` "int8" or "int4"; None:
    unchanged). Other parameters become float32. Returns the model."""

    if mode is None:
        return model
    if mode not in MODES:
        raise ConfigError(f"quantize must be one of {', '.join(MODES)} or None, not {mode!r}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ConfigError("weight-only int8/int4 quantization runs on CPU; on a GPU load in bfloat16 (quantize=None)")
    layer = Int8Linear if mode == "int8" else Int4Linear
    embed = model.get_input_embeddings()
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(module, child_name, layer(child))
            elif child is embed:
                setattr(module, child_name, Int8Embedding(child))
    for p in model.parameters():
        p.data = p.data.float()
    model.config.naturelm_quantize = mode
    return model


def quantized_mode(model) -> str | None:
    """The quantization a model was given by `quantize` (None: none)."""
    return getattr(model.config, "naturelm_quantize", None)


def weight_bytes_per_token(model) -> int:
    """Bytes of weights one decode step reads at batch 1: every linear layer (the LM head included), one
    embedding row, and the other parameters (norms)."""

    total = 0
    embed = model.get_input_embeddings()
    for module in model.modules():
        if module is embed:
            w = module.weight
            total += w[0].numel() * w.element_size() + (4 if isinstance(module, Int8Embedding) else 0)
        elif isinstance(module, (Int8Linear, Int4Linear, torch.nn.Linear)):
            total += sum(b.numel() * b.element_size() for b in module.buffers(recurse=False))
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
        elif not list(module.children()):
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return total
