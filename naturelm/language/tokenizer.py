"""NatureTokenizer: byte-level BPE for text, domain codecs for the entities inside tags."""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Iterable

from naturelm.errors import ConfigError, EntityError
from naturelm.language.codecs import CODECS
from naturelm.language.codecs.molecule import ELEMENTS, split_unknown
from naturelm.language.rules import NATURELM_RULES, TextRules
from naturelm.language.tags import DOMAINS, SPACE_GROUP_TOKENS, SPECIAL_TOKENS, TAGS, Tag, split_tagged
from naturelm.language.vocab import science_tokens

CONFIG_FILE = "naturelm_tokenizer.json"
TEXT_FILE = "tokenizer.json"
_SG = frozenset(SPACE_GROUP_TOKENS)
_ELEMENTS = frozenset(ELEMENTS)


class NatureTokenizer:
    """Text through BPE, `<tag>entity</tag>` spans through their codec into prefixed tokens.

    >>> tok = NatureTokenizer()
    >>> tok.decode(tok.encode("Reactants: <reactants>CC(=O)O.OCC</reactants>"))
    'Reactants: <reactants>CC(=O)O.OCC</reactants>'
    """

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            path = resources.files("naturelm.language").joinpath("assets/default_tokenizer")
        self._load(Path(str(path)))

    # ----------------------------------------------------------------- construction
    def _load(self, path: Path) -> None:
        from tokenizers import Tokenizer

        cfg_file, text_file = path / CONFIG_FILE, path / TEXT_FILE
        if not cfg_file.is_file() or not text_file.is_file():
            raise ConfigError(f"{path} is not a NatureTokenizer directory (needs {CONFIG_FILE} and {TEXT_FILE})")
        cfg = json.loads(cfg_file.read_text())
        self._init(Tokenizer.from_file(str(text_file)), cfg["science"], cfg["specials"], cfg.get("new_token_ids", []),
                   cfg.get("source", "default"), TextRules.from_dict(cfg.get("rules")))

    def _init(self, text, science: dict[str, int], specials: dict[str, str], new_token_ids, source: str,
              rules: TextRules = NATURELM_RULES) -> None:
        self._text = text
        self.source = source
        self.rules = rules
        self.tags: dict[str, Tag] = {name: TAGS[name] for name in rules.tags}  # the tags this tokenizer splits on
        self._tag_by_string = {s: t for t in self.tags.values() for s in (t.open, t.close)}
        if rules.released:  # the released code sets split_special_tokens: `<s>` in text is spelled out
            text.encode_special_tokens = True
        self._science = dict(science)
        self.new_token_ids = sorted(int(i) for i in new_token_ids)
        self.specials = dict(specials)
        vocab = text.get_vocab(with_added_tokens=True)
        self._id_to_text = {i: t for t, i in vocab.items()}
        self._id_to_science = {i: t for t, i in self._science.items()}
        self._vocab_size = max([*vocab.values(), *self._science.values()]) + 1
        ids = {}
        for role, token in self.specials.items():
            tid = self.token_to_id(token)
            if tid is None:
                raise ConfigError(f"special token {role}={token!r} is not in the vocabulary")
            ids[role] = tid
        self.pad_token_id, self.bos_token_id = ids["pad"], ids["bos"]
        self.eos_token_id, self.unk_token_id = ids["eos"], ids["unk"]
        self.special_ids = frozenset(ids.values())
        self._known_mol_units = {t[3:] for t in self._science if t.startswith("<m>")}
        self._kmers = {t[3:] for t in self._science if t.startswith("<d>") and len(t) > 4}
        self._domain_ids: dict[str, list[int]] = {}
        missing = [t for tag in self.tags.values() for t in (tag.open, tag.close) if t not in self._science]
        if missing:
            raise ConfigError(f"tag tokens {missing[:4]} of the text rules {rules.name!r} are not in the vocabulary")

    @classmethod
    def _from_parts(cls, text, science, specials, new_token_ids, source, rules=NATURELM_RULES) -> "NatureTokenizer":
        obj = cls.__new__(cls)
        obj._init(text, science, specials, new_token_ids, source, rules)
        return obj

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "NatureTokenizer":
        """Load a directory written by `save_pretrained` (also a checkpoint directory of ours)."""
        return cls(path)

    @classmethod
    def for_checkpoint(cls, path: str | os.PathLike) -> "NatureTokenizer":
        """The tokenizer of a checkpoint folder: ours (`naturelm_tokenizer.json`) or a released NatureLM one."""
        return cls.from_pretrained(path) if (Path(path) / CONFIG_FILE).is_file() else cls.from_released(path)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write `tokenizer.json` (text BPE) and `naturelm_tokenizer.json` (science tokens and specials)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._text.save(str(path / TEXT_FILE))
        cfg = {"format": "naturelm-tokenizer/1", "source": self.source, "specials": self.specials,
               "new_token_ids": self.new_token_ids, "science": self._science}
        if self.rules != NATURELM_RULES:  # absent: NatureLM's own rules (what files without the field mean)
            cfg["rules"] = self.rules.to_dict()
        (path / CONFIG_FILE).write_text(json.dumps(cfg, indent=1, ensure_ascii=False))

    @classmethod
    def expand(cls, hf_dir: str | os.PathLike) -> "NatureTokenizer":
        """Add the tag and science tokens to an existing HF tokenizer directory (e.g. Llama 3, Mixtral).

        Tokens the base vocabulary already has keep their ids; the rest get new ids after it, listed in `new_token_ids`.
        """
        text, base_specials = _read_hf_text_tokenizer(Path(hf_dir))
        return cls.expand_text(text, base_specials, "expanded")

    @classmethod
    def expand_text(cls, text, base_specials: dict[str, str], source: str) -> "NatureTokenizer":
        """Expand a `tokenizers.Tokenizer` (see `expand`); missing special tokens are added too."""
        vocab = text.get_vocab(with_added_tokens=True)
        next_id = max(vocab.values()) + 1
        science, new_ids = {}, []
        specials = {role: base_specials.get(role) or default for role, default in SPECIAL_TOKENS.items()}
        wanted = [s for s in specials.values() if s not in vocab] + list(science_tokens())
        for token in dict.fromkeys(wanted):
            if token in vocab:
                science[token] = vocab[token]
            else:
                science[token], next_id = next_id, next_id + 1
                new_ids.append(science[token])
        return cls._from_parts(text, science, specials, new_ids, source)

    @classmethod
    def from_released(cls, checkpoint_dir: str | os.PathLike) -> "NatureTokenizer":
        """A released NatureLM checkpoint folder as downloaded (naturelm.language.released): the base tokenizer files
        (Llama 3 `tokenizer.json`, or Mixtral `tokenizer.model` with or without `tokenizer.json`), the science
        vocabulary rebuilt in the released order (ids the files already hold are kept), and the released text rules.
        No remote code runs; the folder's `science_tokens.py` is only parsed.
        """
        from naturelm.language import released

        path = Path(checkpoint_dir)
        if not path.is_dir():
            raise ConfigError(f"{path} is not a directory; {released.LAYOUT_HINT}")
        family, base, file_added, base_source = released.read_base(path)
        tags, science, lists_source = released.token_lists(path)
        vocab = released.released_vocabulary(base, family, tags, science, file_added)
        if family.rules.strip == "all":  # Llama 3: the fast tokenizer matches every added token in text
            text = released.with_added_tokens(base, vocab, set(family.added_specials))
        else:  # Mixtral: the slow tokenizer spells text out with sentencepiece, added tokens included
            text = base
        tok = cls._from_parts(text, vocab, dict(family.specials), [],
                              f"released-{family.name} ({base_source}; lists: {lists_source})", family.rules)
        released.check_config_vocab(path, len(tok))
        return tok

    # ----------------------------------------------------------------- vocabulary
    def __len__(self) -> int:
        return self._vocab_size

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def token_to_id(self, token: str) -> int | None:
        tid = self._science.get(token)
        return tid if tid is not None else self._text.token_to_id(token)

    def id_to_token(self, token_id: int) -> str:
        tok = self._id_to_science.get(token_id) or self._id_to_text.get(token_id)
        if tok is None:
            raise KeyError(f"id {token_id} is outside this vocabulary (size {len(self)})")
        return tok

    def tag_token_id(self, tag_string: str) -> int:
        """Id of an open or close tag string such as `<mol>`."""
        tid = self._science.get(tag_string)
        if tid is None:
            raise KeyError(f"{tag_string!r} is not a tag token of this vocabulary")
        return tid

    def domain_token_ids(self, domain: str) -> list[int]:
        """Ids that may appear inside a tag of the domain (closing tags excluded): the vocabulary's tokens with the
        domain's prefix (materials: element symbols and space groups)."""
        if domain not in self._domain_ids:
            prefix = DOMAINS[domain].prefix
            toks = [t for t in self._science if prefix and t.startswith(prefix)]
            if domain == "material":
                toks = [t for t in toks if t[3:] in _ELEMENTS] + [t for t in self._science if t in _SG]
            self._domain_ids[domain] = sorted(self._science[t] for t in toks)
        return list(self._domain_ids[domain])

    @property
    def science_token_ids(self) -> frozenset[int]:
        """Ids of every NatureLM token (tags, entity tokens, added specials) in this vocabulary."""
        return frozenset(self._science.values())

    def format_prompt(self, instruction: str) -> str:
        """The instruction in this tokenizer's prompt format (its text rules)."""
        return self.rules.format_prompt(instruction)

    # ----------------------------------------------------------------- encoding
    def _text_ids(self, text: str) -> list[int]:
        text = self.rules.span(text)
        return self._text.encode(text, add_special_tokens=False).ids if text else []

    def _entity_tokens(self, tag: Tag, content: str) -> list[str]:
        domain = tag.domain
        if domain == "text":
            return [self._id_to_text[i] for i in self._text_ids(content)]
        if not content.strip():
            return []
        prefix = DOMAINS[domain].prefix
        if tag.name in self.rules.kmer_tags:
            units = _kmers(CODECS[domain].tokenize(content), self._kmers)
        elif domain == "material" and (self.rules.released or tag.name != "material"):
            if tag.name == "material":
                CODECS[domain].tokenize(content)  # validates; the released rules add no `<sgNone>`
            units = content.split()
        else:
            units = CODECS[domain].tokenize(content)
        if domain == "molecule" and not self.rules.released:  # an unseen bracket atom spelled out (released: <unk>)
            units = [u for unit in units for u in split_unknown(unit, self._known_mol_units)]
        return [u if u in _SG else prefix + u for u in units]

    def _segments(self, text: str):
        return split_tagged(text, allow_unclosed=self.rules.released, tags=self.rules.tags)

    def tokenize(self, text: str) -> list[str]:
        """Token strings: BPE pieces for text, tag tokens, prefixed entity tokens."""
        out: list[str] = []
        for seg in self._segments(text):
            if seg.tag is None:
                out += [self._id_to_text[i] for i in self._text_ids(seg.text)]
            else:
                out += [seg.tag.open, *self._entity_tokens(seg.tag, seg.text)]
                out += [seg.tag.close] if seg.start + len(seg.text) < len(text) else []
        return out

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Ids of a text with tagged entities; invalid entity characters raise EntityError, bad tags TagError."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a string, got {type(text).__name__}")
        ids: list[int] = [self.bos_token_id] if add_bos else []
        for seg in self._segments(text):
            if seg.tag is None:
                ids += self._text_ids(seg.text)
                continue
            ids.append(self._science[seg.tag.open])
            if seg.tag.domain == "text":
                ids += self._text_ids(seg.text)
            else:
                try:
                    toks = self._entity_tokens(seg.tag, seg.text)
                except EntityError as err:
                    pos = None if err.position is None else seg.start + err.position
                    raise EntityError(err.domain, text, pos, err.reason) from None
                ids += [self._science.get(t, self.unk_token_id) for t in toks]
            if seg.start + len(seg.text) < len(text):  # closed (released rules: a final tag may stay open)
                ids.append(self._science[seg.tag.close])
        if add_eos:
            ids.append(self.eos_token_id)
        return ids

    def encode_batch(self, texts: Iterable[str], **kw) -> list[list[int]]:
        return [self.encode(t, **kw) for t in texts]

    def __call__(self, texts: str | list[str], padding: bool = True, max_length: int | None = None,
                 truncation: bool = False, return_tensors: str | None = None, padding_side: str = "right",
                 add_bos: bool = False, add_eos: bool = False) -> dict:
        """Batch encoding with padding and attention masks (`return_tensors="pt"` for torch tensors)."""
        single = isinstance(texts, str)
        batch = [self.encode(t, add_bos=add_bos, add_eos=add_eos) for t in ([texts] if single else texts)]
        if max_length is not None:
            too_long = [i for i, ids in enumerate(batch) if len(ids) > max_length]
            if too_long and not truncation:
                raise ValueError(f"sequence {too_long[0]} has {len(batch[too_long[0]])} tokens > max_length={max_length}")
            batch = [ids[:max_length] for ids in batch]
        width = max((len(ids) for ids in batch), default=0)
        input_ids, masks = [], []
        for ids in batch:
            pad = [self.pad_token_id] * (width - len(ids)) if padding else []
            mask = [1] * len(ids)
            if padding_side == "left":
                input_ids.append(pad + ids), masks.append([0] * len(pad) + mask)
            else:
                input_ids.append(ids + pad), masks.append(mask + [0] * len(pad))
        if return_tensors == "pt":
            import torch

            input_ids, masks = torch.tensor(input_ids, dtype=torch.long), torch.tensor(masks, dtype=torch.long)
        out = {"input_ids": input_ids, "attention_mask": masks}
        if single and return_tensors is None:
            out = {k: v[0] for k, v in out.items()}
        return out

    # ----------------------------------------------------------------- decoding
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text with tags; entity prefixes stripped, no whitespace inside entity spans (materials: single spaces)."""
        parts: list[str] = []
        text_buf: list[int] = []
        units: list[str] | None = None
        open_tag: Tag | None = None

        def flush_text() -> None:
            if text_buf:
                s = self._text.decode(text_buf, skip_special_tokens=False)
                if units is not None and open_tag.domain != "text":
                    units.extend(s.split())
                else:
                    parts.append(s)
                text_buf.clear()

        for tid in self._checked_ids(ids):
            if tid in self.special_ids:
                if not skip_special_tokens:
                    flush_text()
                    parts.append(self.id_to_token(tid))
                continue
            tok = self._id_to_science.get(tid)
            if tok is None:
                text_buf.append(tid)
                continue
            flush_text()
            tag = self._tag_by_string.get(tok)
            if tag is not None and tok == tag.open:
                if units is not None:  # a new tag while one is open: close the dangling entity as is
                    parts.append(self._render(open_tag, units))
                open_tag, units = tag, []
                parts.append(tok)
            elif tag is not None:
                if units is not None:
                    parts.append(self._render(open_tag, units))
                units, open_tag = None, None
                parts.append(tok)
            elif units is not None and tok[:3] in _PREFIXES:
                units.append(tok[3:])
            elif units is not None and tok in _SG:
                units.append(tok)
            else:
                parts.append(tok[3:] if tok[:3] in _PREFIXES else tok)
        flush_text()
        if units is not None:
            parts.append(self._render(open_tag, units))
        return "".join(parts)

    def _checked_ids(self, ids: Iterable[int]) -> list[int]:
        """Ids as ints, or InputError for a non-integer or an id outside the vocabulary (never silently dropped)."""
        import numbers

        from naturelm.errors import InputError

        out = []
        for i, tid in enumerate(ids):
            if isinstance(tid, bool) or not isinstance(tid, numbers.Integral) and not (
                    hasattr(tid, "item") and isinstance(tid.item(), int)):
                raise InputError(f"ids[{i}]", f"expected an integer token id, not {type(tid).__name__}")
            tid = int(tid)
            if not 0 <= tid < len(self):
                raise InputError(f"ids[{i}]", f"id {tid} is outside this vocabulary (size {len(self)})")
            out.append(tid)
        return out

    @staticmethod
    def _render(tag: Tag, units: list[str]) -> str:
        return CODECS[tag.domain].detokenize(units) if tag.domain in CODECS else "".join(units)

    def batch_decode(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]


def _kmers(units: list[str], kmers: set[str], k: int = 6) -> list[str]:
    """Nucleotides cut greedily from the left into k-mers where the vocabulary has them, else one by one."""
    seq, out, i = "".join(units), [], 0
    while i < len(seq):
        if seq[i:i + k] in kmers:
            out.append(seq[i:i + k])
            i += k
        else:
            out.append(seq[i])
            i += 1
    return out


_PREFIXES = frozenset(d.prefix for d in DOMAINS.values() if d.prefix)


def _read_hf_text_tokenizer(path: Path):
    """A `tokenizers.Tokenizer` and its special-token strings from an HF tokenizer directory."""
    from tokenizers import Tokenizer

    file = path / TEXT_FILE
    if not file.is_file():
        raise ConfigError(f"{path}: no {TEXT_FILE}; pass an HF tokenizer directory with a fast tokenizer file")
    text = Tokenizer.from_file(str(file))
    specials: dict[str, str] = {}
    cfg_file = path / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    smap_file = path / "special_tokens_map.json"
    if smap_file.is_file():
        cfg = {**json.loads(smap_file.read_text()), **cfg}
    for role in SPECIAL_TOKENS:
        value = cfg.get(f"{role}_token")
        if isinstance(value, dict):
            value = value.get("content")
        if value:
            specials[role] = value
    return text, specials
