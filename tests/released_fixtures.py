"""Released-layout NatureLM folders built from the REAL base vocabularies, for tests.

The Llama 3 tiktoken file comes from PyPI `llama-models` (llama_models/llama3/tokenizer.model) and the Mistral v0.1
sentencepiece model from `mistral-common` (mistral_common/data/tokenizer.model.v1); both are installed --no-deps by
`make setup` (requirements-data.txt) and only read as files. Weights are tiny random LlamaForCausalLM (vocab
130,239) / MixtralForCausalLM (vocab 38,078). The folders are laid out as the Hugging Face repos are: base tokenizer
files, `science_tokens.py` holding the lists as list literals, `nlm_tokenizer.py` (a trap: executing any of it fails)
and a `tokenizer_config.json` whose auto_map points at that remote code. Built once per machine under
$NATURELM_CACHE (default ~/.cache/naturelm)/released-fixtures/<key>.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

FORMAT = "4"  # bump when the layout below changes
VARIANTS_1B = ("1b", "1b-added")  # tokenizer.json of the base only / with the science tokens already added
VARIANTS_8X7B = ("8x7b-model", "8x7b-json", "8x7b-json-added", "8x7b-json-only-added")
VARIANTS = VARIANTS_1B + VARIANTS_8X7B
TRAP = 'raise SystemExit("{name} is remote code: NatureLM must parse it as data, never execute it")\n'


def _package_file(package: str, rel: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    f = Path(list(spec.submodule_search_locations)[0]) / rel
    return f if f.is_file() else None


def base_files() -> tuple[Path, Path] | None:
    """(Llama 3 tiktoken file, Mistral sentencepiece model), or None when the packages are missing."""
    llama = _package_file("llama_models", "llama3/tokenizer.model")
    mistral = _package_file("mistral_common", "data/tokenizer.model.v1")
    return (llama, mistral) if llama and mistral else None


def cache_root() -> Path:
    return Path(os.environ.get("NATURELM_CACHE") or Path.home() / ".cache" / "naturelm") / "released-fixtures"


def _science_tokens_py(tags: list[str], science: list[str]) -> str:
    return ("# The released NatureLM token lists (as in the Hugging Face repos' science_tokens.py).\n"
            f"SCIENCE_TAG_TOKENS = {json.dumps(tags, ensure_ascii=False)}\n\n"
            f"SCIENCE_TOKENS = {json.dumps(science, ensure_ascii=False)}\n\n" + TRAP.format(name="science_tokens.py"))


def _tiny_llama(path: Path, vocab_size: int, bos: int, eos: int, pad: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                      bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(path)


def _tiny_mixtral(path: Path, vocab_size: int, bos: int, eos: int, pad: int) -> None:
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    cfg = MixtralConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=2, num_key_value_heads=1, num_local_experts=4, num_experts_per_tok=2,
                        max_position_embeddings=1024, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                        tie_word_embeddings=False)
    MixtralForCausalLM(cfg).save_pretrained(path)


def _remote_code_files(folder: Path, tags: list[str], science: list[str], specials: dict) -> None:
    (folder / "science_tokens.py").write_text(_science_tokens_py(tags, science), encoding="utf-8")
    (folder / "nlm_tokenizer.py").write_text(TRAP.format(name="nlm_tokenizer.py"))
    cfg = {"auto_map": {"AutoTokenizer": ["nlm_tokenizer.NatureLMTokenizer", None]},
           **{f"{role}_token": tok for role, tok in specials.items()}}
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1))


def _build(root: Path, llama_file: Path, mistral_file: Path) -> None:
    from naturelm.language import NatureTokenizer
    from naturelm.language.base_vocab import sentencepiece_tokenizer, tiktoken_tokenizer
    from naturelm.language.released import token_lists

    tags, science, _ = token_lists()
    # 1B: Llama 3 base tokenizer.json (as Meta's HF repos hold it), tiny Llama weights
    llama = tiktoken_tokenizer(llama_file)
    weights = root / "_llama"
    for name in VARIANTS_1B:
        folder = root / name
        folder.mkdir(parents=True)
        llama.save(str(folder / "tokenizer.json"))
        _remote_code_files(folder, tags, science, {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>"})
    tok = NatureTokenizer.from_released(root / "1b")
    tok._text.save(str(root / "1b-added" / "tokenizer.json"))  # the science tokens as added tokens of the file
    _tiny_llama(weights, len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    # 8x7B: the sentencepiece model, with or without a tokenizer.json, tiny Mixtral weights
    sp = sentencepiece_tokenizer(mistral_file)
    for name in VARIANTS_8X7B:
        folder = root / name
        folder.mkdir(parents=True)
        if name != "8x7b-json-only-added":
            shutil.copy(mistral_file, folder / "tokenizer.model")
        if name == "8x7b-json":
            sp.save(str(folder / "tokenizer.json"))
        _remote_code_files(folder, tags, science, {"bos": "<s>", "eos": "</s>", "unk": "<unk>"})
    tok8 = NatureTokenizer.from_released(root / "8x7b-model")
    added = json.loads(sp.to_str())
    for token, tid in sorted(tok8._science.items(), key=lambda kv: kv[1]):
        if tid >= 32000:
            added["added_tokens"].append({"id": tid, "content": token, "single_word": False, "lstrip": False,
                                          "rstrip": False, "normalized": False, "special": token == "[PAD]"})
    for name in ("8x7b-json-added", "8x7b-json-only-added"):
        (root / name / "tokenizer.json").write_text(json.dumps(added, ensure_ascii=False))
    weights8 = root / "_mixtral"
    _tiny_mixtral(weights8, len(tok8), tok8.bos_token_id, tok8.eos_token_id, tok8.pad_token_id)
    for names, src in ((VARIANTS_1B, weights), (VARIANTS_8X7B, weights8)):
        for name in names:
            for f in src.iterdir():
                shutil.copy(f, root / name / f.name)
        shutil.rmtree(src)


def released_folders() -> dict[str, Path] | None:
    """{variant: folder} of every released-layout fixture (built once, then cached); None without the packages."""
    files = base_files()
    if files is None:
        return None
    digest = hashlib.sha256(FORMAT.encode())
    for f in files:
        digest.update(f.read_bytes())
    here = Path(__file__).resolve().parents[1] / "naturelm" / "language"
    for rel in ("base_vocab.py", "assets/released_tag_tokens.txt", "assets/released_science_tokens.txt"):
        digest.update((here / rel).read_bytes())
    root = cache_root() / digest.hexdigest()[:16]
    if not (root / "done").is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="building-", dir=root.parent))
        try:
            _build(tmp, *files)
            (tmp / "done").write_text("ok\n")
            try:
                tmp.rename(root)
            except OSError:  # built meanwhile by another process
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {name: root / name for name in VARIANTS}
