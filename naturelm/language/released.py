"""The released NatureLM checkpoints' vocabularies (microsoft/NatureLM-1B, -1B-Inst, -8x7B, -8x7B-Inst), rebuilt
from the files as downloaded, without their remote code.

The released tokenizer code adds the science vocabulary at load time, after the base text vocabulary:
- Llama 3 base (1B/8B): `[PAD]`, `<unk>`, 126 tag tokens, 1,746 science tokens, 109 extras (130,239 ids);
- Mixtral base (8x7B): `[PAD]`, the same tags, science tokens and extras, then 4,096 DNA 6-mers (38,078 ids).
Tokens the files already hold keep their ids (a folder whose `tokenizer.json` was saved after loading gives the
same vocabulary). The tag and science lists come from the folder's `science_tokens.py` when it holds them as list
literals (parsed with `ast`, never executed), else from this package's copy (assets/released_*.txt).
"""
from __future__ import annotations

import ast
import functools
import itertools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from naturelm.errors import ConfigError
from naturelm.language.rules import RELEASED_PROMPT, TextRules

ENTITY_TAGS_1B = ("mol", "product", "reactants", "fragA", "fragB", "protein", "antibody", "dna", "rna", "material")
ENTITY_TAGS_8X7B = ENTITY_TAGS_1B + ("reagent", "cf1", "cf2", "fcf", "dna6mer")
LISTS_FILE = "science_tokens.py"
TAG_LIST_NAME, SCIENCE_LIST_NAME = "SCIENCE_TAG_TOKENS", "SCIENCE_TOKENS"


@dataclass(frozen=True)
class Family:
    """One base vocabulary of the released checkpoints."""

    name: str
    base_size: int  # ids of the base text vocabulary (its special tokens included)
    specials: dict  # role -> token string
    added_specials: tuple[str, ...]  # added before the tags
    dna_kmers: bool
    rules: TextRules


LLAMA3 = Family("llama3", 128256,
                {"pad": "[PAD]", "bos": "<|begin_of_text|>", "eos": "<|end_of_text|>", "unk": "<unk>"},
                ("[PAD]", "<unk>"), False,
                TextRules("released-llama3", ENTITY_TAGS_1B, "all", RELEASED_PROMPT, (), True))
MIXTRAL = Family("mixtral", 32000, {"pad": "[PAD]", "bos": "<s>", "eos": "</s>", "unk": "<unk>"},
                 ("[PAD]",), True,
                 TextRules("released-mixtral", ENTITY_TAGS_8X7B, "spaces", RELEASED_PROMPT, ("dna6mer",), True))
FAMILIES = {f.name: f for f in (LLAMA3, MIXTRAL)}
LAYOUT_HINT = ("a released NatureLM folder holds the Llama 3 `tokenizer.json` (1B/8B) or the Mixtral sentencepiece "
               "`tokenizer.model` (8x7B, with or without `tokenizer.json`); see docs/released-checkpoints.md")


@functools.lru_cache(maxsize=1)
def packaged_lists() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tag tokens, science tokens) of the released code, in id order: this package's copy."""
    assets = resources.files("naturelm.language").joinpath("assets")
    tags = tuple(assets.joinpath("released_tag_tokens.txt").read_text().split())
    science = tuple(assets.joinpath("released_science_tokens.txt").read_text().split())
    return tags, science


def lists_from_source(source: str) -> tuple[list[str], list[str]] | None:
    """(tags, science) from the text of a `science_tokens.py` that assigns both as list literals and never changes
    them afterwards; None otherwise (the caller falls back to the packaged lists). Nothing is executed."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found: dict[str, list[str]] = {}
    assigns = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in (TAG_LIST_NAME, SCIENCE_LIST_NAME):
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    return None
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    return None
                found[name] = value
                assigns.add(id(node.targets[0]))
    if set(found) != {TAG_LIST_NAME, SCIENCE_LIST_NAME}:
        return None
    for node in ast.walk(tree):  # appended to, extended, re-read from a file...: the literal is not the list
        if isinstance(node, ast.Name) and node.id in found and id(node) not in assigns:
            return None
    return found[TAG_LIST_NAME], found[SCIENCE_LIST_NAME]


def token_lists(folder: str | Path | None = None) -> tuple[list[str], list[str], str]:
    """(tags, science tokens, where from): the folder's `science_tokens.py` when readable as data, else ours."""
    if folder is not None:
        file = Path(folder) / LISTS_FILE
        if file.is_file():
            parsed = lists_from_source(file.read_text(encoding="utf-8", errors="replace"))
            if parsed is not None:
                return parsed[0], parsed[1], str(file)
    tags, science = packaged_lists()
    return list(tags), list(science), "naturelm/language/assets"


def extra_tokens(dna_kmers: bool) -> list[str]:
    """The tokens the released code adds after the science list (before skipping those already present)."""
    out = [f"<a>{chr(65 + i)}" for i in range(26)]
    out += [t for c in "ACTGURYSWKMBDHVN" for t in (f"<d>{c}", f"<r>{c}")]
    out += [f"<i>{c}" for c in "0123456789()+-"]
    out += [t for i in range(26) for t in (f"<i>{chr(65 + i)}", f"<i>{chr(97 + i)}")]
    if dna_kmers:
        out += ["<d>" + "".join(p) for p in itertools.product("ATCG", repeat=6)]
    return out


def added_order(family: Family, tags: list[str], science: list[str]) -> list[str]:
    """Every token the released code adds, in its order (duplicates included; the first occurrence counts)."""
    return list(family.added_specials) + list(tags) + list(science) + extra_tokens(family.dna_kmers)


# ---------------------------------------------------------------------------------------------- reading a folder
def _is_sentencepiece(path: Path) -> bool:
    head = path.read_bytes()[:64]
    return bool(head) and head[:1] == b"\n"  # field 1 (pieces), length-delimited; tiktoken files are base64 text


def _family_of(tok) -> Family | None:
    if tok.token_to_id("<|begin_of_text|>") == 128000:
        return LLAMA3
    if tok.token_to_id("<s>") == 1 and tok.token_to_id("▁the") is not None:
        return MIXTRAL
    return None


def read_base(folder: str | Path):
    """(family, text tokenizer, {token: id} the files already add beyond the base, which file it came from).

    Llama 3: `tokenizer.json` as it is (its added tokens are matched in text, as by the released fast tokenizer).
    Mixtral: the sentencepiece `tokenizer.model` when present (the released code runs the slow tokenizer), else
    `tokenizer.json` without its added NatureLM tokens (the slow tokenizer spells those out in text).
    """
    from tokenizers import Tokenizer

    from naturelm.language.base_vocab import sentencepiece_tokenizer, tiktoken_tokenizer

    folder = Path(folder)
    tj, tm = folder / "tokenizer.json", folder / "tokenizer.model"
    text = Tokenizer.from_file(str(tj)) if tj.is_file() else None
    family = _family_of(text) if text is not None else None
    if family is None and tm.is_file():
        family = MIXTRAL if _is_sentencepiece(tm) else LLAMA3
    if family is None:
        raise ConfigError(f"{folder}: no Llama 3 or Mixtral base tokenizer found; {LAYOUT_HINT}")
    file_added: dict[str, int] = {}
    if text is not None:
        file_added = {t.content: int(i) for i, t in text.get_added_tokens_decoder().items() if i >= family.base_size}
    extra = folder / "added_tokens.json"
    if extra.is_file():
        file_added.update({k: int(v) for k, v in json.loads(extra.read_text(encoding="utf-8")).items()
                           if int(v) >= family.base_size})
    source = "tokenizer.json"
    if family is MIXTRAL and tm.is_file():
        text, source = sentencepiece_tokenizer(tm), "tokenizer.model"
    elif family is MIXTRAL and file_added:
        doc = json.loads(tj.read_text(encoding="utf-8"))
        doc["added_tokens"] = [t for t in doc["added_tokens"] if t["id"] < family.base_size]
        text = Tokenizer.from_str(json.dumps(doc))
    elif text is None:
        text, source = tiktoken_tokenizer(tm), "tokenizer.model"
    bos = family.specials["bos"]
    size = text.get_vocab_size(with_added_tokens=family is MIXTRAL)
    expected = family.base_size if family is MIXTRAL else family.base_size - 256
    if size != expected or text.token_to_id(bos) is None:
        raise ConfigError(f"{folder}/{source}: not the {family.name} base vocabulary of the released NatureLM "
                          f"({size} ids, expected {expected} with {bos!r}); {LAYOUT_HINT}")
    return family, text, file_added, source


def released_vocabulary(base, family: Family, tags: list[str], science: list[str], file_added: dict[str, int]
                        ) -> dict[str, int]:
    """NatureLM's added tokens -> ids: the files' ids where they have them, else the next id in the released order;
    tokens of the base vocabulary keep their base ids (the released code skips them)."""
    base_vocab = base.get_vocab(with_added_tokens=True)
    ids = dict(file_added)
    next_id = max([*base_vocab.values(), *ids.values()]) + 1
    out: dict[str, int] = {}
    for token in added_order(family, tags, science):
        if token in out:
            continue
        if token in base_vocab:
            out[token] = base_vocab[token]
        elif token in ids:
            out[token] = ids[token]
        else:
            out[token], next_id = next_id, next_id + 1
    for token, tid in ids.items():  # anything else the files add (kept, so ids line up with the embeddings)
        out.setdefault(token, tid)
    return out


def with_added_tokens(base, vocab: dict[str, int], special: set[str]):
    """The base tokenizer plus `vocab` as added tokens at their ids (Llama 3: the released fast tokenizer matches
    them in text, e.g. `<reagent>` and `<num>`, which are not entity tags there). Modifies `base`."""
    from tokenizers import AddedToken

    todo = sorted(((tid, token) for token, tid in vocab.items() if base.token_to_id(token) is None))
    runs: list[tuple[bool, list[str]]] = []  # consecutive tokens of one kind go in one call (one matcher rebuild)
    for _, token in todo:
        if runs and runs[-1][0] == (token in special):
            runs[-1][1].append(token)
        else:
            runs.append((token in special, [token]))
    for is_special, tokens in runs:
        added = [AddedToken(t, special=is_special, normalized=False) for t in tokens]
        base.add_special_tokens(added) if is_special else base.add_tokens(added)
    wrong = [(t, base.token_to_id(t), tid) for tid, t in todo if base.token_to_id(t) != tid]
    if wrong:
        raise ConfigError(f"added tokens did not get the released ids (token, got, expected): {wrong[:3]}")
    return base


def check_config_vocab(folder: Path, n: int) -> None:
    """A released folder's config.json must have room for the rebuilt vocabulary (more rows, e.g. padding, are
    fine: the ids are those of the released tokenizer)."""
    cfg = folder / "config.json"
    if cfg.is_file():
        size = json.loads(cfg.read_text()).get("vocab_size")
        if size is not None and int(size) < n:
            raise ConfigError(f"{folder}: the rebuilt released vocabulary has {n} ids but config.json says "
                              f"vocab_size={size}; the folder's tokenizer files or science_tokens.py do not match "
                              f"its weights")
