"""Base text vocabularies of the released checkpoints as `tokenizers.Tokenizer` objects, read from the files as they
are distributed, with neither `sentencepiece` nor `tiktoken` installed.

- `sentencepiece_tokenizer(path)`: a sentencepiece BPE model (Mistral/Mixtral `tokenizer.model`) as the legacy
  HF Llama tokenizer: a `▁` prepended to the text, spaces as `▁`, BPE with byte fallback. Encoding equals
  `sentencepiece.SentencePieceProcessor.encode` (checked in tests/test_released.py).
- `tiktoken_tokenizer(path)`: Meta's Llama 3 tiktoken file (base64 token, rank per line) as a byte-level BPE with
  Llama 3's split pattern and its 256 special tokens from id 128000 (what Meta's own `tokenizer.json` holds).
"""
from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

from naturelm.errors import ConfigError

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", "<|image|>")
LLAMA3_N_SPECIALS = 256

# sentencepiece piece types (sentencepiece_model.proto)
SP_NORMAL, SP_UNKNOWN, SP_CONTROL, SP_USER_DEFINED, SP_BYTE = 1, 2, 3, 4, 6


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; value: int, bytes or float (fixed32)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = struct.unpack("<f", buf[pos:pos + 4])[0], pos + 4
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ConfigError(f"unsupported protobuf wire type {wire} in a sentencepiece model")
        yield num, wire, val


def read_sentencepiece(path: str | Path) -> dict:
    """The parts of a sentencepiece ModelProto a BPE tokenizer needs: pieces (piece, score, type), model type,
    byte fallback and the normalizer flags."""
    buf = Path(path).read_bytes()
    pieces, trainer, normalizer = [], {}, {}
    try:
        for num, _, val in _fields(buf):
            if num == 1:
                piece = {"piece": "", "score": 0.0, "type": SP_NORMAL}
                for f, _, v in _fields(val):
                    if f == 1:
                        piece["piece"] = v.decode("utf-8")
                    elif f == 2:
                        piece["score"] = v
                    elif f == 3:
                        piece["type"] = v
                pieces.append(piece)
            elif num == 2:
                trainer = {f: v for f, _, v in _fields(val)}
            elif num == 3:
                normalizer = {f: v for f, _, v in _fields(val)}
    except (IndexError, UnicodeDecodeError, struct.error) as exc:
        raise ConfigError(f"{path} is not a sentencepiece model ({exc})") from None
    if not pieces:
        raise ConfigError(f"{path} is not a sentencepiece model (no pieces)")
    return {
        "pieces": pieces,
        "model_type": trainer.get(3, 1),  # 1 unigram, 2 BPE
        "byte_fallback": bool(trainer.get(35, 0)),
        "normalizer": normalizer.get(1, b"").decode() if isinstance(normalizer.get(1, b""), bytes) else "",
        "add_dummy_prefix": bool(normalizer.get(3, 1)),
        "remove_extra_whitespaces": bool(normalizer.get(4, 1)),
    }


def sentencepiece_tokenizer(path: str | Path):
    """A sentencepiece BPE model as a `tokenizers.Tokenizer` (legacy HF Llama conversion, merges by piece score)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    sp = read_sentencepiece(path)
    if sp["model_type"] != 2:
        raise ConfigError(f"{path}: only sentencepiece BPE models are supported (model type {sp['model_type']})")
    if sp["normalizer"] not in ("", "identity") or sp["remove_extra_whitespaces"]:
        raise ConfigError(f"{path}: sentencepiece normalizer {sp['normalizer']!r} (remove_extra_whitespaces="
                          f"{sp['remove_extra_whitespaces']}) is not supported; NatureLM's Mixtral base uses 'identity'")
    pieces = sp["pieces"]
    vocab = {p["piece"]: i for i, p in enumerate(pieces)}
    unk = next((p["piece"] for p in pieces if p["type"] == SP_UNKNOWN), None)
    skip = {p["piece"] for p in pieces if p["type"] != SP_NORMAL}
    merges = []
    for p in pieces:
        piece = p["piece"]
        if piece in skip:
            continue
        local = [(piece[:i], piece[i:], p["score"]) for i in range(1, len(piece))
                 if piece[:i] in vocab and piece[i:] in vocab and piece[:i] not in skip and piece[i:] not in skip]
        merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for a, b, _ in merges], unk_token=unk, fuse_unk=True,
                               byte_fallback=sp["byte_fallback"]))
    steps = ([normalizers.Prepend("▁")] if sp["add_dummy_prefix"] else []) + [normalizers.Replace(" ", "▁")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(p["piece"], special=True, normalized=False)
                            for p in pieces if p["type"] in (SP_UNKNOWN, SP_CONTROL)])
    return tok


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table of byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tiktoken_tokenizer(path: str | Path, specials: tuple[str, ...] = LLAMA3_SPECIALS,
                       n_specials: int = LLAMA3_N_SPECIALS, pattern: str = LLAMA3_PATTERN):
    """Meta's tiktoken BPE file as a byte-level `tokenizers.Tokenizer` (merges ordered by the merged token's rank)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    ranks: dict[bytes, int] = {}
    try:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a tiktoken BPE file ({exc})") from None
    table = _bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(table[x] for x in b)

    vocab, merges = {}, []
    for token, rank in ranks.items():
        vocab[text(token)] = rank
        local = [(token[:i], token[i:], rank) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        merges += sorted(local, key=lambda m: (ranks[m[0]], ranks[m[1]]))
    merges.sort(key=lambda m: m[2])
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(text(a), text(b)) for a, b, _ in merges], fuse_unk=False,
                               ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    names = list(specials) + [f"<|reserved_special_token_{2 + i}|>" for i in range(n_specials - len(specials))]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in names])
    if tok.token_to_id(names[0]) != len(ranks):
        raise ConfigError(f"{path}: special tokens do not follow the {len(ranks)} BPE ranks")
    return tok


def tokenizer_json(tok) -> dict:
    """A `tokenizers.Tokenizer` as its JSON document."""
    return json.loads(tok.to_str())
