"""Decoding on llama.cpp: a Llama checkpoint written as GGUF and run through llama-cpp-python's C API, fed the
NatureTokenizer's ids.

`NatureLM.load(path, quantize="gguf-q8_0")` writes the model's weights to a GGUF file (`write_gguf`: llama.cpp's
tensor names, the query/key rows permuted to llama.cpp's RoPE layout, the frequency factors of scaled RoPE, and no
vocabulary: ids go in, logits come out) in one of llama.cpp's formats (`FORMATS`: fp16, 8-bit or 4-bit blocks of
32 weights, each block with its own scale) and loads it (`LlamaCpp`). The decoding loops stay the engine's
(greedy, sampling, beam search, constrained decoding, prompt requests): `LlamaCpp.decoder` gives them the same
`logits` / `step(src, tokens)` contract as the PyTorch decoders in `naturelm.generate.engine`, with one llama.cpp
sequence per row in one KV cache, where a beam that forks shares its history's cells with its parent (llama.cpp's
`seq_cp` tags cells, it copies nothing). Scoring (`Engine.logprobs`) keeps running on the PyTorch model.
`NatureLM.load` keeps each checkpoint's GGUF in the cache folder (`cache_path`), so the next load skips the
conversion.

llama-cpp-python compiles llama.cpp when it installs (`make setup` does it: a C/C++ compiler and CMake).
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import tempfile
import threading
import weakref
from pathlib import Path

from naturelm.errors import ConfigError, DataSourceMissing

INSTALL_HINT = ("pip install llama-cpp-python==0.3.36 gguf==0.19.0 (llama-cpp-python compiles llama.cpp: it needs "
                "a C/C++ compiler and CMake); `make setup` installs both")
FORMATS = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0", "gguf-q4_0": "Q4_0"}  # quantize= mode -> GGML type
MAX_SEQS = 256  # llama.cpp's limit on sequences in one context (LLAMA_MAX_SEQ): the most rows a decoder can hold
# rows per decoder when `Engine.generate` splits a batch: in one KV cache every row attends over all rows' cells
# (masked), so attention grows with the square of the rows (NatureLM-tiny, 24 retrosyntheses of 20 beams: 0.61 s
# per product with 12 prompts per decoder, 0.35 s with 3)
BATCH_ROWS = 64
CONVERTER = "1"  # write_gguf's output version, part of the cache key (`cache_path`): change it when the output does


LOG = logging.getLogger("naturelm.llamacpp")
_LOG_CALLBACK = None  # llama.cpp's messages to LOG: errors, and warnings as debug (kept alive here: C holds it)


def _imports():
    global _LOG_CALLBACK
    try:
        import gguf
        import llama_cpp
    except ImportError:
        raise DataSourceMissing("llama-cpp-python", INSTALL_HINT) from None
    if _LOG_CALLBACK is None:
        def log(level, text, _):
            if level == 4:  # GGML_LOG_LEVEL_ERROR (warnings, level 3, go to debug: ours are expected ones)
                LOG.error(text.decode("utf-8", "replace").rstrip())
            elif level == 3:
                LOG.debug(text.decode("utf-8", "replace").rstrip())

        _LOG_CALLBACK = llama_cpp.llama_log_callback(log)
        llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
    return gguf, llama_cpp


def _permute(w, heads: int):
    """Query or key rows from HF's RoPE layout (rotate-half: each head's first and second halves pair up) to
    llama.cpp's (adjacent pairs), as llama.cpp's own convert_hf_to_gguf.py does."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, path: str | os.PathLike, fmt: str = "gguf-q8_0") -> Path:
    """Write a Llama-architecture HF model as a GGUF file llama.cpp runs, in `fmt` (`FORMATS`): matrices in that
    format (norms stay float32; a matrix whose rows do not split into blocks of 32 stays float16). Returns the path."""
    import numpy as np
    import torch

    from naturelm.generate.quantize import bias_free_llama

    gguf, _ = _imports()
    if fmt not in FORMATS:
        raise ConfigError(f"GGUF format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    cfg = model.config
    if getattr(cfg, "model_type", None) != "llama":
        raise ConfigError(f"llama.cpp decoding takes Llama-architecture checkpoints, not {cfg.model_type!r}")
    if not bias_free_llama(model):
        raise ConfigError("llama.cpp decoding: this converter writes Llama layers without biases; the checkpoint has "
                          "attention or MLP biases (load it without quantize=, or with a PyTorch mode)")
    rotary = model.model.rotary_emb
    if getattr(rotary, "attention_scaling", 1.0) != 1.0:
        raise ConfigError(f"llama.cpp decoding: RoPE type {rotary.rope_type!r} scales attention; not supported here")
    qtype = getattr(gguf.GGMLQuantizationType, FORMATS[fmt])
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = model.model.layers[0].self_attn.head_dim
    theta = _theta(cfg)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(model.get_output_embeddings().weight.shape[0])
    writer.add_tokenizer_model("none")  # no vocabulary: the NatureTokenizer's ids are fed as they are
    writer.add_file_type({"F16": gguf.LlamaFileType.MOSTLY_F16, "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                          "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[FORMATS[fmt]])

    def add(name: str, tensor, matrix: bool = True) -> None:
        a = tensor.detach().float().cpu().numpy()
        if not matrix:
            writer.add_tensor(name, a.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16 or a.shape[-1] % 32:
            writer.add_tensor(name, a.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)

    with torch.no_grad():
        base = model.model
        add("token_embd.weight", base.embed_tokens.weight)
        for i, layer in enumerate(base.layers):
            a, m = layer.self_attn, layer.mlp
            add(f"blk.{i}.attn_norm.weight", layer.input_layernorm.weight, matrix=False)
            add(f"blk.{i}.attn_q.weight", _permute(a.q_proj.weight, heads))
            add(f"blk.{i}.attn_k.weight", _permute(a.k_proj.weight, kv_heads))
            add(f"blk.{i}.attn_v.weight", a.v_proj.weight)
            add(f"blk.{i}.attn_output.weight", a.o_proj.weight)
            add(f"blk.{i}.ffn_norm.weight", layer.post_attention_layernorm.weight, matrix=False)
            add(f"blk.{i}.ffn_gate.weight", m.gate_proj.weight)
            add(f"blk.{i}.ffn_up.weight", m.up_proj.weight)
            add(f"blk.{i}.ffn_down.weight", m.down_proj.weight)
        add("output_norm.weight", base.norm.weight, matrix=False)
        head = model.get_output_embeddings().weight
        if head.data_ptr() != base.embed_tokens.weight.data_ptr():  # tied: llama.cpp reuses token_embd
            add("output.weight", head)
        factors = _rope_factors(rotary, theta, head_dim)
        if factors is not None:
            writer.add_tensor("rope_freqs.weight", factors)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def cache_path(checkpoint: Path, fmt: str) -> Path:
    """Where a checkpoint directory's GGUF in `fmt` is kept: `$NATURELM_CACHE/gguf/` (else ~/.cache/naturelm/gguf/),
    named by a hash of the directory's resolved path, its config and weight files' names, sizes and modification
    times, the format and `CONVERTER`: a changed checkpoint or converter gets a new file."""
    from naturelm.data.sources.common import cache_dir

    files = sorted(f for f in checkpoint.iterdir() if f.is_file() and (
        f.name == "config.json" or f.suffix in (".safetensors", ".bin") or f.name.endswith(".index.json")))
    stamp = [str(checkpoint.resolve()), fmt, CONVERTER] + [(f.name, f.stat().st_size, f.stat().st_mtime_ns)
                                                            for f in files]
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:20]
    return cache_dir("gguf") / f"{checkpoint.name}-{fmt}-{key}.gguf"


def step_bytes(path: str | os.PathLike) -> int:
    """Bytes of weights one decode step reads at batch 1 from a GGUF file: every tensor, the token embedding as one
    row unless it is the LM head too (no `output.weight`: tied)."""
    gguf, _ = _imports()
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    total = sum(int(t.n_bytes) for t in tensors.values())
    embed = tensors.get("token_embd.weight")
    if embed is not None and "output.weight" in tensors:
        total -= int(embed.n_bytes) - int(embed.n_bytes) // int(embed.shape[-1])
    return total


def _theta(cfg) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))


def _rope_factors(rotary, theta: float, head_dim: int):
    """llama.cpp's per-frequency divisors (`rope_freqs`) of a scaled RoPE (linear, llama3): the plain RoPE's
    frequencies over the model's own; None when they are the plain ones."""
    import numpy as np
    import torch

    plain = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    factors = (plain / rotary.inv_freq.double().cpu()).numpy().astype(np.float32)
    return None if np.allclose(factors, 1.0, rtol=1e-6) else factors


class LlamaCpp:
    """A GGUF model loaded into llama.cpp, with one reusable context (KV cache) for its decoders."""

    def __init__(self, path: str | os.PathLike, threads: int = 1, fmt: str | None = None):
        _, self.L = _imports()
        self.fmt = fmt  # the GGUF format it was written in (`FORMATS`), when known
        self.L.llama_backend_init()
        params = self.L.llama_model_default_params()
        params.load_mode = 0  # LLAMA_LOAD_MODE_NONE, read into memory: the file may be a temporary one
        self.model = self.L.llama_model_load_from_file(os.fsencode(path), params)
        if not self.model:
            raise ConfigError(f"llama.cpp could not load {path} (not a GGUF file it reads)")
        self.vocab = self.L.llama_vocab_n_tokens(self.L.llama_model_get_vocab(self.model))
        self.threads = threads
        self.step_bytes = step_bytes(path)  # weight bytes one step reads at batch 1
        self.weight_bytes = int(self.L.llama_model_size(self.model))  # its weights in memory
        # the context kept for the next decoder, when there is one: [(context, its memory, its batch, cells,
        # sequences, batch size)]
        self._kept: list[tuple] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _close, self.L, self.model, self._kept)  # at exit too, while modules still exist

    @classmethod
    def from_model(cls, model, fmt: str = "gguf-q8_0", threads: int = 1, cache: Path | None = None) -> "LlamaCpp":
        """`model` written as GGUF in `fmt` and loaded. `cache`: the file to keep it in (`cache_path`), loaded as
        it is when it exists, else written there (to a temporary name, then renamed: a crash or a concurrent load
        never leaves half a file); None, or a cache folder that cannot be written: a temporary file, removed."""
        if cache is not None and cache.is_file():
            return cls(cache, threads, fmt)
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                part = cache.with_name(f"{cache.name}.{os.getpid()}.part")
                os.replace(write_gguf(model, part, fmt), cache)
                return cls(cache, threads, fmt)
            except OSError as exc:
                LOG.warning("GGUF cache %s not written (%s); converting to a temporary file", cache, exc)
        with tempfile.TemporaryDirectory(prefix="naturelm-gguf-") as tmp:
            return cls(write_gguf(model, Path(tmp) / "model.gguf", fmt), threads, fmt)

    def _new_context(self, cells: int, seqs: int, batch: int):
        L = self.L
        params = L.llama_context_default_params()
        params.n_ctx, params.n_seq_max = cells, seqs
        params.n_batch = params.n_ubatch = batch
        params.n_threads = params.n_threads_batch = self.threads
        # rows of a prompt share its cells (seq_cp copies no data); one cache stream per sequence measured slower,
        # a fork copying the whole stream (24 tiny retrosyntheses: 0.42 s each against 0.30 s; beam 10: 134 / 93 ms)
        params.kv_unified = True
        params.no_perf = True
        ctx = L.llama_init_from_model(self.model, params)
        if not ctx:
            raise ConfigError(f"llama.cpp could not make a context of {cells} cells for {seqs} rows")
        return ctx, L.llama_get_memory(ctx), L.llama_batch_init(batch, 0, 1), cells, seqs, batch

    def _acquire(self, cells: int, seqs: int, batch: int):
        """A context with room for `cells` KV cells, `seqs` sequences and `batch` tokens per call, emptied: the
        kept one (grown when too small) unless another decoder holds it, then a private one."""
        if not self._lock.acquire(blocking=False):
            return self._new_context(cells, seqs, batch), False
        if self._kept and (self._kept[0][3] < cells or self._kept[0][4] < seqs or self._kept[0][5] < batch):
            old = self._kept.pop()
            _free(self.L, old)
            cells, seqs, batch = max(cells, old[3]), max(seqs, old[4]), max(batch, old[5])
        if not self._kept:
            self._kept.append(self._new_context(cells, seqs, batch))
        else:
            self.L.llama_memory_clear(self._kept[0][1], True)
        return self._kept[0], True

    def _release(self, held, kept: bool) -> None:
        if kept:
            self._lock.release()
        else:
            _free(self.L, held)

    def decoder(self, prompt_ids: list[list[int]], room: int, rows: int) -> "_LlamaCppDecoder":
        """A decoder over the prompts (rows at first: the prompts) that will hold at most `rows` rows writing at
        most `room` tokens each."""
        if rows > MAX_SEQS:
            raise ConfigError(f"llama.cpp decodes at most {MAX_SEQS} rows at once, not {rows}")
        return _LlamaCppDecoder(self, prompt_ids, room, rows)


def _free(L, held) -> None:
    L.llama_batch_free(held[2])
    L.llama_free(held[0])


def _close(L, model, kept: list) -> None:
    for held in kept:
        _free(L, held)
    L.llama_model_free(model)


class _LlamaCppDecoder:
    """`step(src, tokens)` over llama.cpp (see `naturelm.generate.engine._CacheDecoder` for the contract): row i
    of the new batch continues row src[i] of the previous one with tokens[i]; returns float32 logits (rows, vocab).

    Each row is a llama.cpp sequence: a row whose source is taken by no earlier row keeps the source's sequence,
    every further row from the same source gets a free sequence tagged onto the source's cells, and sequences no
    row continues are removed (their cells freed unless shared)."""

    def __init__(self, native: LlamaCpp, prompt_ids: list[list[int]], room: int, rows: int):
        import numpy as np

        self.n, L = native, native.L
        rows = max(rows, len(prompt_ids))
        tokens = sum(len(p) for p in prompt_ids)
        held, kept = native._acquire(tokens + rows * (room + 1), rows, max(tokens, rows))
        weakref.finalize(self, native._release, held, kept)  # the context goes back when the decoder goes
        self.ctx, self.mem, self.batch, _, seqs, _ = held
        self.seqs = list(range(len(prompt_ids)))  # sequence of each row
        self.free = list(range(seqs - 1, len(prompt_ids) - 1, -1))  # unused sequences (popped from the end)
        self.pos = np.array([len(p) for p in prompt_ids], dtype=np.int64)  # each row's next position
        feed = [(t, j, r) for r, p in enumerate(prompt_ids) for j, t in enumerate(p)]
        last = np.cumsum([len(p) for p in prompt_ids]) - 1
        out = np.zeros(len(feed), dtype=bool)
        out[last] = True
        self.logits = self._decode(feed, out, len(prompt_ids))

    def _decode(self, feed, outputs, n_out: int):
        """Run llama.cpp on (token, position, row) triples; logits of the `outputs` ones, in order, as a tensor."""
        import numpy as np
        import torch

        L, b = self.n.L, self.batch
        b.n_tokens = len(feed)
        for i, (t, p, r) in enumerate(feed):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = t, p, 1, bool(outputs[i])
            b.seq_id[i][0] = self.seqs[r]
        rc = L.llama_decode(self.ctx, b)
        if rc != 0:
            raise ConfigError(f"llama.cpp could not decode {len(feed)} tokens (code {rc}: "
                              + ("no room left in the KV cache)" if rc == 1 else "see llama.cpp's message)"))
        ptr = L.llama_get_logits(self.ctx)
        return torch.from_numpy(np.ctypeslib.as_array(ptr, shape=(n_out, self.n.vocab)).copy())

    def step(self, src, tokens):
        import numpy as np

        if src is not None:
            self._reorder(src.tolist())
        rows = tokens.tolist()
        feed = [(t, int(self.pos[r]), r) for r, t in enumerate(rows)]
        logits = self._decode(feed, np.ones(len(rows), dtype=bool), len(rows))
        self.pos += 1
        return logits

    def _reorder(self, src: list[int]) -> None:
        L, old = self.n.L, self.seqs
        new: list[int | None] = [None] * len(src)
        taken: set[int] = set()
        for i, s in enumerate(src):  # the first row from each source keeps its sequence
            if s not in taken:
                taken.add(s)
                new[i] = old[s]
        for s, seq in enumerate(old):  # sequences no row continues
            if s not in taken:
                L.llama_memory_seq_rm(self.mem, seq, -1, -1)
                self.free.append(seq)
        for i, s in enumerate(src):  # further rows from a source: a free sequence sharing the source's cells
            if new[i] is None:
                seq = self.free.pop()
                L.llama_memory_seq_cp(self.mem, old[s], seq, -1, -1)
                new[i] = seq
        self.seqs, self.pos = new, self.pos[src]
