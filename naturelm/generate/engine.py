"""The decode loop: batched, left-padded, KV-cached greedy / sampling / beam search with constrained decoding.

The prompts run through `model(...)`; then one step per token, on Llama models over the model's weights directly
(`_LlamaDecoder`: pre-allocated caches written in place, RoPE from a table, no per-step module machinery), else
through `model(...)` with its cache. Positions follow HF `generate` (cumsum of the attention mask), so greedy
output equals `model.generate` greedy on the same prompts. Generation stops at EOS or at the
closing tag of the entity being written.

Beam search runs each prompt once and then only its live beams: finished prompts leave the batch, beams that can
no longer reach the k best distinct answers are dropped, and on Llama models the prompt's keys/values are kept
once for all its beams (`_LlamaDecoder`). Its answers and scores are those of the plain search (kept in
tests/generate_reference.py) up to float rounding; `logprobs` likewise runs each distinct prompt once.
"""
from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, replace

from naturelm.errors import ConfigError
from naturelm.generate.cancel import checkpoint
from naturelm.generate.constraints import Constraints
from naturelm.generate.postprocess import Check, Generation, dedup, is_empty, to_generation
from naturelm.language.tags import split_tagged

NEG_INF = float("-inf")
GROW = 16  # the per-row cache of written tokens grows by this many at a time
MAX_DRAWS = 8  # draws per answer before one its request rejects is returned as it is (its checks say what failed)


@dataclass
class Decoded:
    """Token ids written after the prompt (stop token included), their summed log-probability, and whether it stopped."""

    ids: list[int]
    score: float
    finished: bool


def beam_width(k: int) -> int:
    """Beams actually run to return k distinct candidates after canonicalisation."""
    return k if k <= 1 else 2 * k


class _CacheDecoder:
    """Live rows over the model's own KV cache: the prompts once, then one token per row and step.

    `step(src, tokens)`: row i of the new batch continues row src[i] of the previous one (after the prompt
    forward, the rows are the prompts) with tokens[i]; src None: row i continues row i. Returns next-token
    logits (rows, vocab), float32.
    """

    def __init__(self, engine, ids, mask, pos):
        self.engine, self.mask, self.pos = engine, mask, pos[:, -1:]
        self.logits, self.cache = engine._forward(ids, mask, pos, None)
        self.logits = self.logits[:, -1]

    def step(self, src, tokens):
        import torch

        if src is not None:
            self.cache.reorder_cache(src)
            self.mask, self.pos = self.mask[src], self.pos[src]
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(tokens), 1))], dim=1)
        self.pos = self.pos + 1
        logits, self.cache = self.engine._forward(tokens[:, None], self.mask, self.pos, self.cache)
        return logits[:, -1]


class _LlamaDecoder:
    """`_CacheDecoder` for Llama-architecture models: each step runs the model's own weights directly (no module,
    cache object or mask building per step), with the prompts prefilled by the model itself.

    Per step and layer: one RMSNorm op, the fused q/k/v product, RoPE from a precomputed table (`_LlamaWeights`)
    applied to queries and keys together, attention, the output product, one RMSNorm, the fused gate/up product,
    SiLU, the down product. Two layouts of the keys and values:

    - one row per prompt (`fan_out=False`, e.g. greedy): each row's cache holds its prompt and room for the tokens
      it writes, filled in place; attention is one `scaled_dot_product_attention` call.
    - several rows per prompt (beams, n samples): each prompt's keys/values are stored once for all its rows and
      only the tokens written since the prompt are cached per row, so reordering beams copies those alone;
      attention over the prompt runs as one matrix product per prompt for all its rows (`_attend`).

    Same arithmetic as the model's layers up to float rounding (greedy equals HF `generate`: tests).
    """

    def __init__(self, engine, ids, mask, pos, room: int = GROW, fan_out: bool = True):
        import torch

        self.w = engine.llama_weights()
        logits, cache = engine._forward(ids, mask, pos, None)
        self.logits = logits[:, -1]
        pk = [layer.keys for layer in cache.layers]  # per layer (prompts, kv heads, prompt length, head dim)
        pv = [layer.values for layer in cache.layers]
        pmask = torch.zeros(mask.shape, dtype=pk[0].dtype, device=mask.device).masked_fill(mask == 0, NEG_INF)
        self.pos = pos[:, -1]
        self.written = 0  # tokens written since the prompt (the same for every row)
        self.room, self.fan_out, self.plen = max(1, room), fan_out, ids.shape[1]
        self.w.cover(int(self.pos.max()) + 1 + self.room)
        if fan_out:
            self.pk, self.pv, self.pmask = pk, pv, pmask
            self.row_prompt = torch.arange(len(ids), device=mask.device)  # prompt of each row
            # the tokens written since the prompt, every layer's keys and values in one block (rows, kv heads,
            # layers, keys | values, room, head dim), so reordering rows is one copy; two such blocks are kept
            # and each reorder copies from one into the other (a fresh megabyte block per step costs more in
            # page faults than the copy); g: the current block's live rows, gk/gv: its per-layer views
            self.blocks, self.g, self.gk, self.gv = None, None, None, None
            self.shape = None  # (rows per prompt, slot of each row) of the current batch, see `_prompt_slots`
        else:  # per layer (rows, kv heads, prompt length + room, head dim), filled in place
            self.k = [_copy(k, self.plen, None, self.plen + self.room) for k in pk]
            self.v = [_copy(v, self.plen, None, self.plen + self.room) for v in pv]
            self.mask = pmask.new_zeros((len(ids), self.plen + self.room))
            self.mask[:, :self.plen] = pmask

    @staticmethod
    def supports(model) -> bool:
        return (getattr(model.config, "model_type", None) == "llama" and hasattr(model, "model")
                and getattr(model.model.rotary_emb, "rope_type", "default") in STATIC_ROPE)

    def step(self, src, tokens):
        import torch

        w, rows, t = self.w, len(tokens), self.written
        if src is not None:
            self.pos = self.pos[src]
        self.pos = self.pos + 1
        if self.fan_out:
            self._reorder_shared(src, rows, t)
        else:
            self._reorder_own(src, t)
        self.written = t + 1
        x = w.embed(tokens)
        rope = w.rope(self.pos, x.dtype)  # (rows, 1, 2 * head dim): cos | sin with rotate-half's signs
        cos, sin = rope[..., :w.head_dim], rope[..., w.head_dim:]
        half, rms_norm = w.head_dim // 2, torch.nn.functional.rms_norm
        for i, L in enumerate(w.layers):
            qkv = L.qkv(rms_norm(x, L.ln1.shape, L.ln1, L.eps))
            qk = qkv[:, :L.qk_width].view(rows, -1, w.head_dim)
            qk = qk * cos + qk.roll(half, -1) * sin  # RoPE of queries and keys at once
            q, k, v = qk[:, :L.heads], qk[:, L.heads:], qkv[:, L.qk_width:].view(rows, -1, w.head_dim)
            out = self._attend_shared(i, q, k, v, t) if self.fan_out else self._attend_own(i, q, k, v, t)
            x = x + L.o(out.reshape(rows, -1))
            gate_up = L.gate_up(rms_norm(x, L.ln2.shape, L.ln2, L.eps))
            x = x + L.down(torch.nn.functional.silu(gate_up[:, :L.inter]) * gate_up[:, L.inter:])
        return w.head(rms_norm(x, w.norm.shape, w.norm, w.eps)).float()

    # ------------------------------------------------------------------ one row per prompt
    def _reorder_own(self, src, t):
        import torch

        used = self.plen + t
        if src is not None:  # rows that stopped leave (src keeps the others, in order)
            self.k = [_copy(k, used, src, k.shape[2]) for k in self.k]
            self.v = [_copy(v, used, src, v.shape[2]) for v in self.v]
            self.mask = self.mask.index_select(0, src)
        if used == self.k[0].shape[2]:  # full: room for GROW more
            self.w.cover(int(self.pos.max()) + 1 + GROW)
            self.k = [_copy(k, used, None, used + GROW) for k in self.k]
            self.v = [_copy(v, used, None, used + GROW) for v in self.v]
            self.mask = torch.cat([self.mask, self.mask.new_zeros((len(self.mask), GROW))], dim=1)

    def _attend_own(self, i, q, k, v, t):
        import torch

        end = self.plen + t
        self.k[i][:, :, end], self.v[i][:, :, end] = k, v
        return torch.nn.functional.scaled_dot_product_attention(
            q[:, :, None], self.k[i][:, :, :end + 1], self.v[i][:, :, :end + 1],
            attn_mask=self.mask[:, None, None, :end + 1], scale=self.w.scaling, enable_gqa=True)

    # ------------------------------------------------------------------ several rows per prompt
    def _reorder_shared(self, src, rows, t):
        if src is not None:
            self.row_prompt = self.row_prompt[src]
        if src is not None or self.g is None or t == self.g.shape[4]:  # copies only the tokens written
            import torch

            k0 = self.pk[0]
            if self.blocks is None or t == self.g.shape[4] or rows > len(self.blocks[0]):  # (re)allocate both
                room = max(self.room, t + GROW)
                if t + GROW > self.room:
                    self.w.cover(int(self.pos.max()) + 1 + GROW)
                shape = (max(rows, 0 if self.blocks is None else len(self.blocks[0])), k0.shape[1], len(self.pk), 2,
                         room, k0.shape[3])
                blocks = [k0.new_empty(shape), k0.new_empty(shape)]
            else:
                blocks = self.blocks[::-1]  # the spare block becomes the current one
            g = blocks[0][:rows]
            if t:  # index_select writes straight into the other block (one copy for all layers)
                if src is None:
                    g[..., :t, :] = self.g[..., :t, :]
                else:
                    torch.index_select(self.g[..., :t, :], 0, src, out=g[..., :t, :])
            self.blocks, self.g = blocks, g
            self.gk, self.gv = [g[:, :, i, 0] for i in range(g.shape[2])], [g[:, :, i, 1] for i in range(g.shape[2])]
        if src is not None or self.shape is None:  # which rows belong to which prompt: only changes with src
            self.shape = self._prompt_slots(rows)

    def _attend_shared(self, i, q, k, v, t):
        self.gk[i][:, :, t], self.gv[i][:, :, t] = k, v
        width, slot = self.shape
        return self._attend(q, self.gk[i][:, :, :t + 1], self.gv[i][:, :, :t + 1], self.pk[i], self.pv[i],
                            self.w.scaling, slot, width)

    def _prompt_slots(self, rows: int):
        """(width, slot): the most rows any prompt has, and each row's slot when every prompt's rows are padded to
        `width` (None when all prompts have `width` rows). Prompts without rows leave the prompt cache."""
        import torch

        prompts, inverse, counts = torch.unique_consecutive(self.row_prompt, return_inverse=True, return_counts=True)
        if len(prompts) < self.pk[0].shape[0]:  # prompts that finished leave the prompt cache
            self.pk = [k.index_select(0, prompts) for k in self.pk]
            self.pv = [v.index_select(0, prompts) for v in self.pv]
            self.pmask = self.pmask.index_select(0, prompts)
            self.row_prompt = inverse
        width = int(counts.max())
        if int(counts.min()) == width:
            return width, None
        first = torch.cumsum(counts, 0) - counts  # rows per prompt differ: pad each prompt's rows to `width` slots
        return width, inverse * width + torch.arange(rows, device=inverse.device) - first[inverse]

    def _attend(self, q, gk, gv, pk, pv, scaling, slot, width):
        """Attention of one query per row over its prompt (shared, masked padding) and its own written tokens."""
        import torch

        rows, n_kv, dim = q.shape[0], pk.shape[1], q.shape[-1]
        n_p, plen = pk.shape[0], pk.shape[2]
        q = q.view(rows, n_kv, -1, dim) * scaling  # (rows, kv heads, query heads per kv head, dim)
        groups = q.shape[2]
        qs = q if slot is None else q.new_zeros((n_p * width, n_kv, groups, dim)).index_copy_(0, slot, q)
        qs = qs.view(n_p, width, n_kv, groups, dim).transpose(1, 2).reshape(n_p, n_kv, width * groups, dim)
        sp = torch.matmul(qs, pk.transpose(2, 3)).add_(self.pmask[:, None, None, :])
        sp = sp.view(n_p, n_kv, width, groups, plen).transpose(1, 2).reshape(n_p * width, n_kv, groups, plen)
        if slot is not None:
            sp = sp.index_select(0, slot)
        sg = torch.matmul(q, gk.transpose(2, 3))
        w = torch.softmax(torch.cat([sp, sg], dim=-1), dim=-1, dtype=torch.float32).to(q.dtype)
        wp, wg = w[..., :plen], w[..., plen:]
        if slot is not None:
            wp = wp.new_zeros((n_p * width, n_kv, groups, plen)).index_copy_(0, slot, wp)
        wp = wp.reshape(n_p, width, n_kv, groups, plen).transpose(1, 2).reshape(n_p, n_kv, width * groups, plen)
        op = torch.matmul(wp, pv).view(n_p, n_kv, width, groups, dim).transpose(1, 2)
        op = op.reshape(n_p * width, n_kv, groups, dim)
        if slot is not None:
            op = op.index_select(0, slot)
        return op + torch.matmul(wg, gv)


def _copy(cache, used: int, rows, length: int):
    """A new (rows, kv heads, `length`, head dim) cache holding the first `used` positions of `cache`'s rows
    (`rows`: the rows to take, in order; None: all); the rest is uninitialised room."""
    new = cache.new_empty((cache.shape[0] if rows is None else len(rows), cache.shape[1], length, cache.shape[3]))
    if used:
        new[:, :, :used] = cache[:, :, :used] if rows is None else cache[:, :, :used].index_select(0, rows)
    return new


STATIC_ROPE = ("default", "linear", "llama3")  # RoPE types whose angles depend on the position alone (a table)
TRANSPOSE_MAX_BYTES = 64 * 2 ** 20  # float32 models up to this size get (in, out) copies of their matrices


@dataclass
class _LlamaLayer:
    """What a decode step reads of one decoder layer: its norms' weights and its four matrix products."""

    ln1: object
    ln2: object
    eps: float
    qkv: object  # rows x hidden -> queries | keys | values
    o: object
    gate_up: object  # rows x hidden -> gate | up
    down: object
    heads: int  # query heads
    qk_width: int  # query + key columns of qkv's output
    inter: int  # MLP width (gate columns of gate_up's output)


class _LlamaWeights:
    """A Llama model's weights as one decode step reads them, taken once per engine (see `Engine.llama_weights`).

    q/k/v and gate/up are fused into one product each (`_fuse`: the model's own weights become views of the fused
    tensor). A float32 model small enough to sit in the CPU caches (`TRANSPOSE_MAX_BYTES`) also gets (in, out)
    copies of its matrices, multiplied as `x @ w`: the BLAS reads that layout faster at batch 1 (the tiny model's
    17 products per step: 2.1 ms against 3.0 ms with `F.linear`). Layers with hooks, quantized layers and larger
    models use the modules themselves. RoPE angles come from a table built by the model's own rotary module."""

    def __init__(self, model, fused):
        import torch

        base, cfg = model.model, model.config
        small = all(p.dtype == torch.float32 for p in model.parameters()) and _small(model)
        attn0 = base.layers[0].self_attn
        self.head_dim, self.scaling = attn0.head_dim, attn0.scaling
        self.layers = []
        for layer, (qkv, gate_up) in zip(base.layers, fused):
            a, m = layer.self_attn, layer.mlp
            self.layers.append(_LlamaLayer(
                layer.input_layernorm.weight, layer.post_attention_layernorm.weight,
                layer.input_layernorm.variance_epsilon, _product(qkv, small), _product(a.o_proj, small),
                _product(gate_up, small), _product(m.down_proj, small), cfg.num_attention_heads,
                (cfg.num_attention_heads + cfg.num_key_value_heads) * self.head_dim, m.gate_proj.out_features))
            if type(m.act_fn).__name__ not in ("SiLU", "SiLUActivation"):
                raise ConfigError(f"the Llama decode step computes SiLU, not {type(m.act_fn).__name__}")
        self.norm, self.eps = base.norm.weight, base.norm.variance_epsilon
        self.head = _product(model.get_output_embeddings(), small)
        embed = model.get_input_embeddings()
        self.embed = (embed if type(embed) is not torch.nn.Embedding or _hooked(embed)
                      else lambda ids, w=embed.weight: w.index_select(0, ids))
        self.rotary, self.table, self.tables = base.rotary_emb, None, {}
        self.sources = _sources(model)

    def cover(self, positions: int) -> None:
        """Make the RoPE table cover positions 0 .. positions - 1 (grown by doubling)."""
        import torch

        if self.table is not None and len(self.table) >= positions:
            return
        n = max(positions, 2 * len(self.table) if self.table is not None else 256)
        with torch.inference_mode(False), torch.no_grad():
            ids = torch.arange(n, device=self.rotary.inv_freq.device)[None]
            cos, sin = self.rotary(torch.zeros(1, dtype=torch.float32, device=ids.device), ids)
        half = cos.shape[-1] // 2
        sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)  # x*cos + roll(x)*sin == HF's rotate_half rule
        self.table, self.tables = torch.cat([cos, sin], dim=-1)[0], {}

    def rope(self, pos, dtype):
        """(rows, 1, 2 * head dim): cos | signed sin at each row's position, in `dtype` (as HF casts them)."""
        if dtype not in self.tables:
            self.tables[dtype] = self.table.to(dtype)
        return self.tables[dtype].index_select(0, pos)[:, None]


def _small(model) -> bool:
    """Whether the model's weights (parameters and fbgemm's packed matrices) fit in `TRANSPOSE_MAX_BYTES`: small
    enough for the decode step's own copies."""
    from naturelm.generate.quantize import packed_bytes

    total = sum(p.numel() * p.element_size() for p in model.parameters())
    return total + packed_bytes(model) <= TRANSPOSE_MAX_BYTES


def _hooked(module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _product(module, transpose: bool):
    """`x -> module(x)` for 2-D float32 x, as `x @ w` over an (in, out) copy of a plain linear layer's weight when
    `transpose` (and it has no bias or hooks), as fbgemm's call itself for an fp16 layer without hooks, else the
    module itself."""
    import torch

    from naturelm.generate.quantize import Fp16Linear

    if type(module) is Fp16Linear and not _hooked(module):
        return lambda x, p=module.packed, b=module.bias: torch.fbgemm_linear_fp16_weight(x, p, b)
    if not (transpose and type(module) is torch.nn.Linear and module.bias is None and not _hooked(module)):
        return module
    with torch.inference_mode(False), torch.no_grad():
        w = module.weight.detach().t().contiguous()
    return lambda x: torch.mm(x, w)


def _sources(model) -> tuple:
    """What `_LlamaWeights` was built from: every parameter and buffer (identity and in-place version) and
    which modules have hooks; a change means rebuilding."""
    tensors = list(model.parameters()) + list(model.buffers())
    return (tuple((id(t), 0 if t.is_inference() else t._version) for t in tensors),
            tuple(id(m) for m in model.modules() if _hooked(m)))


def _fuse(linears, copies: bool = False):
    """One module computing the concatenated outputs of `linears` (same input), sharing their weights: the
    originals become views into the fused weight, so no memory is added. fp16 layers (fbgemm's packed weights
    cannot be views) are fused into a new packed copy when `copies` allows it (small models), which the decode
    step reads while the prefill keeps the originals. Linears it cannot fuse (int4, int8-dynamic, biases) are
    called one by one."""
    import torch

    from naturelm.generate.quantize import Fp16Linear, Int8Linear

    if all(type(m) is torch.nn.Linear and m.bias is None for m in linears):
        fused = torch.nn.Linear(linears[0].in_features, sum(m.out_features for m in linears), bias=False,
                                device="meta")
        fused.weight = torch.nn.Parameter(torch.cat([m.weight.detach() for m in linears]), requires_grad=False)
    elif all(type(m) is Int8Linear and m.bias is None for m in linears):
        fused = copy.copy(linears[0])
        fused._buffers = dict(fused._buffers)
        fused.weight = torch.cat([m.weight for m in linears])
        fused.scale = torch.cat([m.scale for m in linears])
        fused.out_features = sum(m.out_features for m in linears)
    elif copies and all(type(m) is Fp16Linear and not m.has_bias for m in linears):
        return Fp16Linear(weight=torch.cat([m.dequantized() for m in linears]))
    else:
        return lambda x: torch.cat([m(x) for m in linears], dim=-1)
    start = 0
    for m in linears:  # the originals now read the fused storage
        end = start + m.out_features
        if isinstance(m, Int8Linear):
            m.weight, m.scale = fused.weight[start:end], fused.scale[start:end]
        else:
            m.weight = torch.nn.Parameter(fused.weight[start:end], requires_grad=False)
        start = end
    return fused


class Engine:
    """Decoding over an HF causal LM and a NatureTokenizer."""

    def __init__(self, model, tokenizer, add_bos: bool = True):
        self.model, self.tok, self.add_bos = model.eval(), tokenizer, add_bos
        self.device = next(model.parameters()).device
        self.vocab_size = model.get_output_embeddings().out_features
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._constraints: dict[bool, Constraints] = {}
        self._fused: list | None = None
        self._llama: _LlamaWeights | None = None
        self.native = None  # a `naturelm.generate.llamacpp.LlamaCpp` of the same weights: decoding runs there

    def llama_weights(self) -> _LlamaWeights:
        """The Llama decode step's view of the weights (`_LlamaWeights`), rebuilt when a weight changed in place
        or a module gained or lost a hook since it was built."""
        import torch

        if self._fused is None:  # per layer: fused q/k/v and fused gate/up (see `_fuse`)
            copies = _small(self.model)
            with torch.inference_mode(False), torch.no_grad():  # plain tensors: the model's weights become views
                self._fused = [(_fuse([layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj], copies),
                                _fuse([layer.mlp.gate_proj, layer.mlp.up_proj], copies))
                               for layer in self.model.model.layers]
        if self._llama is None or self._llama.sources != _sources(self.model):
            self._llama = _LlamaWeights(self.model, self._fused)
        return self._llama

    def constraints(self, enabled: bool) -> Constraints:
        if enabled not in self._constraints:
            self._constraints[enabled] = Constraints(self.tok, self.vocab_size, enabled, self.device)
        return self._constraints[enabled]

    # ------------------------------------------------------------------ tensors
    def encode(self, prompts: list[str], raw: bool = False) -> list[list[int]]:
        """Prompt ids: wrapped in the instruction format unless raw, BOS first; may end inside an open tag (`<mol>`)."""
        return encode_prompts(self.tok, prompts, raw, self.add_bos)

    def _left_pad(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.as_tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _forward(self, ids, mask, pos, cache, keep: int = 1):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=keep == 1,
                         logits_to_keep=keep, **{self._cache_kw: cache})
        new_cache = out["cache"] if "cache" in out else out.get("past_key_values")
        return out.logits.float(), new_cache

    def decoder(self, prompt_ids: list[list[int]], lean: bool | None = None, room: int = GROW,
                fan_out: bool = True, rows: int | None = None):
        """Incremental decoder over the prompts (see `_CacheDecoder`): llama.cpp's when the engine has one
        (`native`) and `lean` is not False, else `_LlamaDecoder` when the architecture allows (`lean=None`: whenever
        it does). `room`: the tokens each row will likely write (caches are sized for it); `fan_out`: whether a
        prompt may have several rows (beams, n samples) or keeps exactly one; `rows`: the most rows it will hold
        (None: one per prompt)."""
        if self.native is not None and lean is not False:
            return self.native.decoder(prompt_ids, room, rows or len(prompt_ids))
        ids, mask, pos = self._left_pad(prompt_ids)
        if lean is None:
            lean = _LlamaDecoder.supports(self.model)
        if lean:
            return _LlamaDecoder(self, ids, mask, pos, room, fan_out)
        return _CacheDecoder(self, ids, mask, pos)

    def _masked(self, logits, cons: Constraints, states, remaining: int, requests=None, rstates=None):
        """Logits with disallowed ids at -inf (the constraints never leave a row with nothing allowed).

        `requests`/`rstates`: per row, a bound `Request` (or None) and its state; inside the request's tag its
        mask narrows the grammar's, unless that would leave nothing (then the grammar's mask alone applies)."""
        import torch

        if not cons.enabled:
            return logits
        masks = [cons.allowed(s, remaining) for s in states]
        if requests is not None:
            for i, (s, r) in enumerate(zip(states, requests)):
                if r is None or s.done or s.tag != r.tag:
                    continue
                extra = r.allowed(rstates[i], remaining, logits[i])
                if extra is not None:
                    both = extra if masks[i] is None else masks[i] & extra
                    if bool(both.any()):
                        masks[i] = both
        if all(m is None for m in masks):
            return logits
        ones = torch.ones(logits.shape[-1], dtype=torch.bool, device=logits.device)
        allowed = torch.stack([ones if m is None else m for m in masks])
        return torch.where(allowed, logits, NEG_INF)

    # ------------------------------------------------------------------ greedy / sampling
    def sample(self, prompt_ids: list[list[int]], n: int = 1, temperature: float = 0.7, top_p: float = 1.0,
               max_new_tokens: int = 128, constrained: bool = True, seed: int = 0, expect: str | None = None,
               requests: list | None = None) -> list[list[Decoded]]:
        """n continuations per prompt; greedy when temperature <= 0. Score: summed model log-probability.

        Each prompt is prefilled once for its n rows (`decoder`), and a row leaves the batch as soon as it stops.
        Sampling draws one uniform number per row and step from the seeded generator (inverse CDF), so a row's
        draws do not depend on which other rows are still running. `requests`: per prompt, a
        `naturelm.tasks.requests.Request` bound to `self.constraints(constrained)` (or None), whose mask applies
        inside its tag when constrained.
        """
        import torch

        cons = self.constraints(constrained)
        greedy = temperature is None or temperature <= 0
        rows = [p for p in prompt_ids for _ in range(n)]  # row r continues prompt r // n
        states = [cons.start(p, expect) for p in rows]
        reqs = [r for r in requests for _ in range(n)] if requests is not None and cons.enabled else None
        rstates = [r.start() if r is not None else None for r in reqs] if reqs is not None else None
        gen = torch.Generator(device=self.device).manual_seed(seed)
        out: list[list[int]] = [[] for _ in rows]
        scores = [0.0] * len(rows)
        done = [False] * len(rows)
        live = list(range(len(rows)))  # the rows in the batch, in batch order
        with torch.inference_mode():
            decoder = self.decoder(prompt_ids, room=max_new_tokens, fan_out=n > 1, rows=len(rows))
            prompt_of = torch.arange(len(rows), device=self.device) // n  # the decoder's rows are the prompts at first
            logits = decoder.logits if n == 1 else decoder.logits.index_select(0, prompt_of)
            for step in range(max_new_tokens):
                checkpoint()  # a server request that timed out or went away stops here
                logp = torch.log_softmax(logits, -1)
                masked = self._masked(logits, cons, [states[r] for r in live], max_new_tokens - step,
                                      None if reqs is None else [reqs[r] for r in live],
                                      None if reqs is None else [rstates[r] for r in live])
                if greedy:
                    nxt = masked.argmax(-1)
                else:
                    u = torch.rand(len(rows), generator=gen, dtype=torch.float64, device=self.device)
                    nxt = _sample_top_p(masked / temperature, top_p, u[live] if len(live) < len(rows) else u)
                picked = logp.gather(1, nxt[:, None])[:, 0].tolist()
                keep = []
                for j, (r, t) in enumerate(zip(live, nxt.tolist())):
                    out[r].append(t)
                    scores[r] += picked[j]
                    if reqs is not None and reqs[r] is not None and states[r].tag == reqs[r].tag:
                        rstates[r] = reqs[r].advance(rstates[r], t)
                    states[r] = cons.advance(states[r], t)
                    if cons.is_stop(t):
                        done[r] = True
                    else:
                        keep.append(j)
                if not keep or step == max_new_tokens - 1:
                    break
                live = [live[j] for j in keep]
                kept = torch.as_tensor(keep, device=self.device)
                if step == 0 and n > 1:  # the prompts fan out to their n rows
                    src = prompt_of.index_select(0, kept)
                else:
                    src = None if len(keep) == len(nxt) else kept
                logits = decoder.step(src, nxt if src is None else nxt.index_select(0, kept))
        decoded = [Decoded(o, s, d) for o, s, d in zip(out, scores, done)]
        return [decoded[i * n:(i + 1) * n] for i in range(len(prompt_ids))]

    # ------------------------------------------------------------------ beam search
    def beam(self, prompt_ids: list[list[int]], width: int, max_new_tokens: int = 128, constrained: bool = True,
             expect: str | None = None, length_penalty: float = 0.0, key=None, k: int | None = None
             ) -> list[list[Decoded]]:
        """Beam search with `width` beams per prompt; every finished hypothesis, best first.

        Score: summed log-probability / length**length_penalty. Beams that never stop are returned last-resort
        (finished=False) when fewer than `width` hypotheses finished. Each prompt is encoded once; only live beams
        are computed, and a prompt leaves the batch (rows and cache) as soon as its search is done.

        `key(prompt_index, ids)` and `k` (no length penalty): a beam is dropped once k distinct finished answers
        (by key) score at least as well, since none of its continuations can reach the best k distinct answers;
        those stay exactly what the full search finds, while worse hypotheses are no longer all returned.
        """
        import torch

        cons = self.constraints(constrained)
        W = width
        prune = key is not None and k is not None and not length_penalty
        norm = (lambda s, n: s / (n ** length_penalty)) if length_penalty else (lambda s, n: s)
        pools: list[list[tuple[float, list[int], bool]]] = [[] for _ in prompt_ids]
        best: list[dict] = [{} for _ in prompt_ids]  # per prompt: key -> best finished score (pruning)
        # the batch holds the live beams only: spans[i] = (prompt, first row, rows); one row per prompt at first
        spans = [(p, p, 1) for p in range(len(prompt_ids))]
        states = [cons.start(p, expect) for p in prompt_ids]
        toks: list[list[int]] = [[] for _ in prompt_ids]
        scores = torch.zeros(len(prompt_ids), dtype=torch.float64, device=self.device)
        with torch.inference_mode():
            decoder = self.decoder(prompt_ids, room=max_new_tokens, rows=len(prompt_ids) * W)
            logits = decoder.logits
            for step in range(max_new_tokens):
                checkpoint()
                # the best 2W of a prompt are among the best 2W (by log-probability) of each of its rows
                logp = torch.log_softmax(logits, -1)
                top, tid = self._masked(logp, cons, states, max_new_tokens - step).topk(min(2 * W, logits.shape[-1]))
                total = scores[:, None] + top.double()
                C = top.shape[-1]
                tid = tid.tolist()
                last = step == max_new_tokens - 1
                src, nxt, new_scores, new_spans = [], [], [], []
                for p, r0, n in spans:
                    best_s, idx = total[r0:r0 + n].reshape(-1).topk(min(2 * W, n * C))
                    live: list[tuple[float, int, int]] = []
                    for rank, (s, j) in enumerate(zip(best_s.tolist(), idx.tolist())):
                        if s == NEG_INF:
                            break
                        b = r0 + j // C
                        t = tid[b][j % C]
                        if cons.is_stop(t):
                            if rank < W:
                                hyp = toks[b] + [t]
                                pools[p].append((norm(s, len(hyp)), hyp, True))
                                if prune:
                                    h = key(p, hyp)
                                    best[p][h] = max(best[p].get(h, NEG_INF), s)
                            continue
                        live.append((s, b, t))
                        if len(live) == W:
                            break
                    if last and len(pools[p]) < W:  # beams still alive at the end: kept as unfinished
                        pools[p] += [(norm(s, len(toks[b]) + 1), toks[b] + [t], False) for s, b, t in live]
                    finished = sorted((h[0] for h in pools[p]), reverse=True)
                    if not live or (len(finished) >= W and norm(live[0][0], step + 1) <= finished[W - 1]):
                        continue  # done: its rows leave the batch
                    # pruning changes which worse hypotheses finish, hence the pool size that decides whether
                    # beams alive at the last step are kept as unfinished: only once that is settled either way
                    if prune and len(best[p]) >= k and (len(pools[p]) >= W or all(
                            cons.closes_in_time(states[b], max_new_tokens - step) for _, b, _ in live)):
                        floor = sorted(best[p].values(), reverse=True)[k - 1]
                        live = [h for h in live if h[0] > floor]
                    if live:
                        new_spans.append((p, len(src), len(live)))
                        for s, b, t in live:
                            src.append(b), nxt.append(t), new_scores.append(s)
                if not new_spans or last:
                    break
                spans = new_spans
                logits = decoder.step(torch.as_tensor(src, device=self.device),
                                      torch.as_tensor(nxt, device=self.device))
                states = [cons.advance(states[b], t) for b, t in zip(src, nxt)]
                toks = [toks[b] + [t] for b, t in zip(src, nxt)]
                scores = torch.tensor(new_scores, dtype=torch.float64, device=self.device)
        return [[Decoded(t, s, f) for s, t, f in sorted(pool, key=lambda h: -h[0])] for pool in pools]

    # ------------------------------------------------------------------ scoring
    def logprobs(self, prompt_ids: list[list[int]], continuations: list[list[int]], rows: int = 32
                 ) -> list[list[float]]:
        """Per-token log-probabilities of each continuation given its prompt.

        Each distinct prompt is run once; its cache is then copied to its continuations, which run together,
        right-padded, at least `rows` at a time (a prompt's continuations are never split).
        """
        if any(not p for p in prompt_ids):
            raise ConfigError("logprobs: every prompt needs at least one token (the BOS token, for instance)")
        index: dict[tuple, int] = {}
        which = [index.setdefault(tuple(p), len(index)) for p in prompt_ids]
        by_prompt: list[list[int]] = [[] for _ in index]
        for i, (u, c) in enumerate(zip(which, continuations)):
            if c:
                by_prompt[u].append(i)
        prompts = list(index)
        out: list[list[float]] = [[] for _ in continuations]
        chunk, n = [], 0
        for u, members in enumerate(by_prompt):
            if members:
                chunk, n = chunk + [u], n + len(members)
            if chunk and (n >= rows or u == len(prompts) - 1):
                checkpoint()
                self._score_chunk([list(prompts[v]) for v in chunk], [by_prompt[v] for v in chunk], continuations, out)
                chunk, n = [], 0
        return out

    def _score_chunk(self, prompts: list[list[int]], members: list[list[int]], continuations, out) -> None:
        """`logprobs` for a few prompts: one forward over the prompts, one over all their continuations."""
        import torch

        ids, mask, pos = self._left_pad(prompts)
        rows = torch.as_tensor([j for j, m in enumerate(members) for _ in m], device=self.device)
        conts = [continuations[i] for m in members for i in m]
        with torch.inference_mode():
            logits, cache = self._forward(ids, mask, pos, None)
            first = torch.log_softmax(logits[:, -1], -1)[rows]
            firsts = first.gather(1, torch.as_tensor([c[0] for c in conts], device=self.device)[:, None])[:, 0]
            width = max(len(c) for c in conts) - 1
            rest = None
            if width:
                feed = torch.full((len(conts), width), self.tok.pad_token_id, dtype=torch.long)  # right-padded
                target = torch.zeros((len(conts), width), dtype=torch.long)
                fed = torch.zeros((len(conts), width), dtype=torch.long)
                for i, c in enumerate(conts):
                    feed[i, :len(c) - 1] = torch.as_tensor(c[:-1], dtype=torch.long)
                    target[i, :len(c) - 1] = torch.as_tensor(c[1:], dtype=torch.long)
                    fed[i, :len(c) - 1] = 1
                feed, target, fed = feed.to(self.device), target.to(self.device), fed.to(self.device)
                cache.reorder_cache(rows)
                cont_pos = pos[rows, -1:] + 1 + torch.arange(width, device=self.device)
                logits, _ = self._forward(feed, torch.cat([mask[rows], fed], dim=1), cont_pos, cache, keep=0)
                rest = torch.log_softmax(logits, -1).gather(-1, target[..., None])[..., 0].cpu()
        firsts = firsts.cpu().tolist()
        k = 0
        for m in members:
            for i in m:
                c = continuations[i]
                out[i] = [firsts[k]] + (rest[k, :len(c) - 1].tolist() if rest is not None else [])
                k += 1

    # ------------------------------------------------------------------ results
    def _response(self, prompt: list[int], ids: list[int], cons: Constraints) -> str:
        """Decoded response; a tag the prompt left open (raw `<mol>`) is written back in front."""
        return self.tok.decode(cons.open_tail(prompt) + ids)

    def generate(self, prompts: str | list[str], n: int = 1, num_beams: int = 1, temperature: float = 0.7,
                 top_p: float = 1.0, max_new_tokens: int = 128, raw: bool = False, constrained: bool = True,
                 seed: int = 0, max_retries: int = 3, expect: str | None = None, length_penalty: float = 0.0,
                 batch_size: int = 16, requests: list | None = None, max_draws: int = MAX_DRAWS
                 ) -> list[list[Generation]]:
        """Per prompt: `num_beams` distinct beam candidates (num_beams > 1) or n samples (greedy at temperature 0).

        Empty outputs of greedy/sampling are retried with a new seed and a higher temperature (`retries` field).
        `expect`: the tag the answer must be written in (forced when constrained; anything else is invalid).
        `requests` (sampling, constrained): per prompt, a `naturelm.tasks.requests.Request` or None; its mask
        applies while decoding and a sample it does not accept is drawn again, at most `max_draws` draws in all
        (`draws` field; greedy decoding draws once).
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        ids = self.encode(prompts, raw)
        cons = self.constraints(constrained)
        if requests is not None and len(requests) != len(ids):
            raise ConfigError(f"generate: {len(ids)} prompts but {len(requests)} requests; give one per prompt")
        if requests is not None and num_beams > 1:
            raise ConfigError("generate: requests apply to sampling (num_beams=1)")
        if requests is not None and not constrained:
            requests = None
        results: list[list[Generation]] = []
        if self.native is not None:  # llama.cpp: about BATCH_ROWS rows per decoder (see there)
            from naturelm.generate.llamacpp import BATCH_ROWS

            batch_size = max(1, min(batch_size, BATCH_ROWS // (beam_width(num_beams) if num_beams > 1 else n)))
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            reqs = None if requests is None else [r.bind(cons) if r is not None else None
                                                  for r in requests[start:start + batch_size]]
            if num_beams > 1:
                checked: dict[str, Generation] = {}  # each decoded answer checked once (RDKit), score set below

                def check(i: int, hyp: list[int]) -> Generation:
                    text = self._response(chunk[i], hyp, cons)
                    if text not in checked:
                        checked[text] = to_generation(text, 0.0, expect=expect)
                    return checked[text]

                found = self.beam(chunk, beam_width(num_beams), max_new_tokens, constrained, expect, length_penalty,
                                  key=lambda i, hyp: check(i, hyp).key, k=num_beams)
                for i, hyps in enumerate(found):
                    results.append(dedup([replace(check(i, h.ids), score=h.score) for h in hyps], num_beams))
                continue
            found = self.sample(chunk, n, temperature, top_p, max_new_tokens, constrained, seed + start, expect, reqs)
            gens = [[to_generation(self._response(p, h.ids, cons), h.score, expect=expect) for h in hyps]
                    for p, hyps in zip(chunk, found)]
            self._retry(chunk, gens, temperature, top_p, max_new_tokens, constrained, seed + start, expect, max_retries,
                        reqs)
            if reqs is not None:
                if temperature is not None and temperature > 0:
                    self._redraw(chunk, gens, reqs, temperature, top_p, max_new_tokens, constrained, seed + start,
                                 expect, max_draws)
                for r, row in zip(reqs, gens):
                    for g in row if r is not None else ():
                        g.checks.append(request_check(r, g))
            results += gens
        return results

    def _retry(self, chunk, gens, temperature, top_p, max_new_tokens, constrained, seed, expect, max_retries,
               reqs=None) -> None:
        cons = self.constraints(constrained)
        for attempt in range(1, max_retries + 1):
            empty = [(i, j) for i, row in enumerate(gens) for j, g in enumerate(row) if is_empty(g)]
            if not empty:
                return
            hotter = max(temperature or 0.0, 0.7) * (1.0 + 0.5 * attempt)
            redo = self.sample([chunk[i] for i, _ in empty], 1, hotter, top_p, max_new_tokens, constrained,
                               seed + 7919 * attempt, expect, None if reqs is None else [reqs[i] for i, _ in empty])
            for (i, j), (h,) in zip(empty, redo):
                gens[i][j] = to_generation(self._response(chunk[i], h.ids, cons), h.score, attempt, expect)

    def _redraw(self, chunk, gens, reqs, temperature, top_p, max_new_tokens, constrained, seed, expect,
                max_draws: int) -> None:
        """Rejection sampling: answers their request does not accept are drawn again (new seeds, same
        temperature) until accepted or `max_draws` draws; a better draw (accepted, else valid) replaces the kept one."""
        cons = self.constraints(constrained)
        ok = {(i, j): reqs[i].accept(g) for i, row in enumerate(gens) for j, g in enumerate(row) if reqs[i] is not None}
        for draw in range(2, max_draws + 1):
            todo = [slot for slot, good in ok.items() if not good]
            if not todo:
                break
            redo = self.sample([chunk[i] for i, _ in todo], 1, temperature, top_p, max_new_tokens, constrained,
                               seed + 104729 * draw, expect, [reqs[i] for i, _ in todo])
            for (i, j), (h,) in zip(todo, redo):
                g = to_generation(self._response(chunk[i], h.ids, cons), h.score, expect=expect)
                good = reqs[i].accept(g)
                if good or (g.valid and not gens[i][j].valid):
                    gens[i][j], ok[(i, j)] = g, good
                gens[i][j].draws = draw


def request_check(request, g: Generation) -> Check:
    """What the prompt's request held while decoding, whether the answer meets it, and the draws it took
    (informative: the task's own checks decide whether the answer meets the request)."""
    met = bool(request.accept(g))
    tries = f"{g.draws} draw{'s' if g.draws > 1 else ''}"
    return Check("decoding_constraints", met, value={"draws": g.draws}, target=request.what, required=False,
                 detail=f"held while decoding: {request.what}; {tries}"
                        + ("" if met else ", none met it (the best draw is returned)"))


def open_tail(text: str, tags: tuple[str, ...] | None = None) -> str:
    """The end of a prompt from its unclosed opening tag on (`"<mol>"` for the raw prompt `<mol>`), else "".
    `tags`: the tag names that count (a tokenizer's `rules.tags`; None: every tag)."""
    segments = split_tagged(text, allow_unclosed=True, tags=tags)
    last = segments[-1] if segments else None
    if last is None or last.tag is None or text.endswith(last.tag.close):
        return ""
    return text[last.start - len(last.tag.open):]


def encode_prompts(tok, prompts: list[str], raw: bool = False, add_bos: bool = True) -> list[list[int]]:
    """Prompt ids: wrapped in the tokenizer's instruction format unless raw; a prompt may end inside an open tag."""
    out = []
    for p in prompts:
        text = p if raw else tok.format_prompt(p)
        tail = open_tail(text, tok.rules.tags)
        if not tail:
            out.append(tok.encode(text, add_bos=add_bos))
        else:  # encode with the closing tag, then drop it
            close = split_tagged(text, allow_unclosed=True, tags=tok.rules.tags)[-1].tag.close
            out.append(tok.encode(text + close, add_bos=add_bos)[:-1])
    return out


def _sample_top_p(logits, top_p: float, u):
    """One draw per row from softmax(logits) restricted to the top-p nucleus, by inverse CDF at the uniform
    numbers `u` (one per row)."""
    import torch

    probs = torch.softmax(logits.double(), -1)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(-1, descending=True)
        probs = probs.masked_fill(probs.cumsum(-1) - probs > top_p, 0.0)
    cdf = probs.cumsum(-1)
    choice = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=probs.shape[-1] - 1)
    # never a zero-probability id (a masked one), whatever the rounding at the top of the CDF
    choice = torch.where(probs.gather(1, choice) > 0, choice, probs.argmax(-1, keepdim=True))
    return (choice if order is None else order.gather(1, choice))[:, 0]


def mean_logprob(lps: list[float]) -> float:
    """Length-normalised log-probability (-inf for an empty continuation)."""
    return sum(lps) / len(lps) if lps else -math.inf
