"""Sharded token files: the on-disk format between `naturelm data corpus` and the pre-training loader.

Layout under `DIR/pretrain/`:

```
index.json            {"format": "naturelm-shards-1", "dtype": "uint32", "eos_token_id", "vocab_size", "block_size",
                       "splits": {"train": [{"file", "tokens", "documents", "sha256"}, ...], "valid": [...]},
                       "stream_sha256": {"train": ..., "valid": ...}}
train/00000.bin ...   uint32 token ids, documents separated by EOS, shards in stream order
valid/00000.bin ...
```

`stream_sha256` hashes the concatenated shards of a split in index order: it does not depend on how the
stream was cut into shards, so two builds with different shard counts can be compared.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

FORMAT = "naturelm-shards-1"
INDEX = "index.json"
DTYPE = "uint32"


def is_sharded(pretrain_dir: str | Path) -> bool:
    return (Path(pretrain_dir) / INDEX).is_file()


def read_index(pretrain_dir: str | Path) -> dict:
    from naturelm.errors import ConfigError

    from naturelm.data.sources.common import read_json
    from naturelm.errors import DataFileError

    path = Path(pretrain_dir) / INDEX
    index = read_json(path)
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        got = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise ConfigError(f"{path}: format {got!r} is not {FORMAT!r}")
    splits = index.get("splits")
    if not isinstance(splits, dict) or not all(
            isinstance(shards, list) and all(isinstance(s, dict) and isinstance(s.get("file"), str)
                                             and isinstance(s.get("tokens"), int) for s in shards)
            for shards in splits.values()):
        raise DataFileError(path, "'splits' must map each split to a list of {file, tokens} shards")
    return index


def shard_paths(pretrain_dir: str | Path, split: str) -> list[tuple[Path, int]]:
    """(path, tokens) of the non-empty shards of a split, in stream order."""
    root = Path(pretrain_dir)
    return [(root / s["file"], int(s["tokens"])) for s in read_index(root)["splits"].get(split, []) if s["tokens"] > 0]


def stream_sha256(paths: list[Path], chunk: int = 1 << 22) -> str:
    """sha256 of the files' bytes concatenated in order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()
