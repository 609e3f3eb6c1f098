"""Deterministic batch schedules over the built data layout.

Every dataset maps a step number to the example indices of that step's *global* batch
(`global_batch(step)`), so the data position is the step itself: resuming at step s, or
splitting the same global batch over more processes, sees exactly the same examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from naturelm.errors import ConfigError, DataFileError, DataSourceMissing, EntityError, TagError
from naturelm.train.entity_check import CachedVerdicts, EntityCheck, cache_places

IGNORE = -100


def load_tokenizer(cfg: dict):
    """The tokenizer for a run: data.tokenizer, else the model.init dir's, else DATA/tokenizer, else the shipped one."""
    from naturelm.language.tokenizer import CONFIG_FILE, NatureTokenizer

    candidates = [cfg["data"].get("tokenizer"), cfg["model"].get("init"),
                  cfg["data"]["dir"] and Path(cfg["data"]["dir"]) / "tokenizer"]
    for path in candidates:
        if path and (Path(path) / CONFIG_FILE).is_file():
            return NatureTokenizer.from_pretrained(path)
    if cfg["data"].get("tokenizer"):
        raise ConfigError(f"data.tokenizer={cfg['data']['tokenizer']} is not a NatureTokenizer directory")
    return NatureTokenizer()


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataSourceMissing(str(path), f"{what}: build it with `naturelm data build --recipe tiny --out DIR` "
                                           "and pass `--set data.dir=DIR`")
    return path


def token_map(path: Path) -> np.ndarray:
    """A uint32 token file, memory-mapped; DataFileError when its size is not whole uint32 ids or it is missing."""
    try:
        return np.memmap(path, dtype=np.uint32, mode="r")
    except (OSError, ValueError) as exc:
        raise DataFileError(path, f"not a uint32 token file ({exc})") from None


def check_token_ids(path, tokens: np.ndarray, vocab_size: int, chunk: int = 1 << 24) -> None:
    """DataFileError naming the file and the first token id at or beyond `vocab_size` (found before training, not
    as an index error at the step that reads it)."""
    for start in range(0, len(tokens), chunk):
        part = np.asarray(tokens[start : start + chunk])
        if part.size and int(part.max()) >= vocab_size:
            at = int(np.flatnonzero(part >= vocab_size)[0])
            raise DataFileError(path, f"token id {int(part[at])} at token {start + at} is beyond the vocabulary of "
                                      f"{vocab_size} tokens; was the corpus built with another tokenizer?")


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


class PackedBlocks:
    """Fixed-length blocks of a memory-mapped uint32 token stream (`pretrain/{split}.bin`), shuffled per epoch."""

    def __init__(self, data_dir: str | Path, split: str, block_size: int | None, global_batch: int, seed: int):
        root = _require(Path(data_dir) / "pretrain", "pre-training corpus")
        meta_file = root / "meta.json"
        meta = _read_meta(meta_file) if meta_file.is_file() else {}
        self.block_size = int(block_size or meta.get("block_size") or 0)
        if self.block_size <= 0:
            raise ConfigError("no block size: set data.block_size or write block_size in pretrain/meta.json")
        self.path = _require(root / f"{split}.bin", f"{split} split")
        self.tokens = token_map(self.path)
        self.n_blocks = (len(self.tokens) - 1) // self.block_size
        if self.n_blocks < 1:
            raise ConfigError(f"{root / f'{split}.bin'} has {len(self.tokens)} tokens, fewer than one block of {self.block_size}")
        self.global_batch, self.seed = global_batch, seed
        self.batches_per_epoch = max(1, self.n_blocks // global_batch)
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n_blocks

    def check_vocab(self, vocab_size: int) -> None:
        """Every token id below `vocab_size` (DataFileError naming the first that is not)."""
        check_token_ids(self.path, self.tokens, vocab_size)

    def global_batch_indices(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.batches_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, _epoch_rng(self.seed, epoch).permutation(self.n_blocks))
        order = self._order[1]
        idx = [order[(i * self.global_batch + k) % self.n_blocks] for k in range(self.global_batch)]
        return [int(j) for j in idx]

    def collate(self, indices: list[int]) -> dict:
        import torch

        t = self.block_size
        rows = np.stack([np.asarray(self.tokens[i * t : i * t + t + 1], dtype=np.int64) for i in indices])
        rows = torch.from_numpy(rows)
        return {"input_ids": rows[:, :-1], "labels": rows[:, 1:].clone()}

    def units(self, indices: list[int]) -> int:
        """Loss-normalising units of a batch: predicted tokens."""
        return len(indices) * self.block_size

    def n_tokens(self, indices: list[int]) -> int:
        return len(indices) * self.block_size


class ShardedBlocks:
    """Fixed-length blocks of the sharded token files of `naturelm data corpus` (`pretrain/index.json`).

    Blocks never cross a shard. Epoch e visits the shards in a seeded order and each shard's blocks in a seeded
    order, so a global batch touches one or two shards: every process memory-maps only the shards its own
    micro-batches fall in (at most `open_shards` at a time), and the data position is the step itself, so a
    resumed run reads exactly the blocks it would have read.
    Block ids (for `collate`) number the blocks shard by shard in index order.
    """

    def __init__(self, data_dir: str | Path, split: str, block_size: int | None, global_batch: int, seed: int,
                 open_shards: int = 8):
        from naturelm.data.shards import read_index, shard_paths

        root = _require(Path(data_dir) / "pretrain" / "index.json", "pre-training shards").parent
        index = read_index(root)
        self.block_size = int(block_size or index.get("block_size") or 0)
        if self.block_size <= 0:
            raise ConfigError("no block size: set data.block_size or write block_size in pretrain/index.json")
        shards = shard_paths(root, split)
        counts = np.array([max(0, (n - 1) // self.block_size) for _, n in shards], dtype=np.int64)
        keep = counts > 0
        self.paths = [p for (p, _), k in zip(shards, keep) if k]
        self.sizes = [n for (_, n), k in zip(shards, keep) if k]  # tokens per shard, as the index lists them
        self.counts = counts[keep]
        self.n_blocks = int(self.counts.sum())
        if self.n_blocks < 1:
            raise ConfigError(f"{root}: the {split} shards hold fewer tokens than one block of {self.block_size}")
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])  # first block id of each shard
        self.global_batch, self.seed, self.open_shards = global_batch, seed, open_shards
        self.batches_per_epoch = max(1, self.n_blocks // global_batch)
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None
        self._perm: dict[tuple[int, int], np.ndarray] = {}
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.n_blocks

    def check_vocab(self, vocab_size: int) -> None:
        """Every shard holds the tokens its index says and only ids below `vocab_size` (DataFileError naming the
        shard otherwise)."""
        for path, count in zip(self.paths, self.sizes):
            tokens = token_map(path)
            if len(tokens) < count:
                raise DataFileError(path, f"{len(tokens)} tokens, fewer than the {count} the index lists; a truncated "
                                          "shard")
            check_token_ids(path, tokens, vocab_size)

    def _epoch_layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._epoch is None or self._epoch[0] != epoch:
            order = _epoch_rng(self.seed, epoch).permutation(len(self.paths))
            self._epoch = (epoch, order, np.concatenate([[0], np.cumsum(self.counts[order])]))
            self._perm.clear()
        return self._epoch[1], self._epoch[2]

    def global_batch_indices(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.batches_per_epoch)
        order, ends = self._epoch_layout(epoch)
        pos = np.arange(i * self.global_batch, (i + 1) * self.global_batch) % self.n_blocks
        j = np.searchsorted(ends, pos, side="right") - 1
        shards, local = order[j], pos - ends[j]
        out = np.empty(len(pos), dtype=np.int64)
        for shard in np.unique(shards):  # one or two shards per batch
            sel = shards == shard
            out[sel] = self.starts[shard] + self._shard_perm(epoch, int(shard))[local[sel]]
        return out.tolist()

    def _shard_perm(self, epoch: int, shard: int) -> np.ndarray:
        perm = self._perm.get((epoch, shard))
        if perm is None:
            if len(self._perm) >= self.open_shards:
                self._perm.pop(next(iter(self._perm)))
            perm = self._perm[(epoch, shard)] = np.random.default_rng([self.seed, epoch, shard]).permutation(
                int(self.counts[shard]))
        return perm

    def _tokens(self, shard: int) -> np.ndarray:
        m = self._maps.get(shard)
        if m is None:
            if len(self._maps) >= self.open_shards:
                self._maps.pop(next(iter(self._maps)))
            # a plain ndarray view of the map: slicing it skips np.memmap's per-slice bookkeeping
            m = self._maps[shard] = np.memmap(self.paths[shard], dtype=np.uint32, mode="r").view(np.ndarray)
        return m

    def collate(self, indices: list[int]) -> dict:
        import torch

        t = self.block_size
        idx = np.asarray(indices, dtype=np.int64)
        shards = np.searchsorted(self.starts, idx, side="right") - 1
        offsets = ((idx - self.starts[shards]) * t).tolist()
        rows = torch.from_numpy(np.stack([self._tokens(s)[o : o + t + 1] for s, o in zip(shards.tolist(), offsets)])
                                .astype(np.int64))
        return {"input_ids": rows[:, :-1], "labels": rows[:, 1:].clone()}

    def units(self, indices: list[int]) -> int:
        return len(indices) * self.block_size

    def n_tokens(self, indices: list[int]) -> int:
        return len(indices) * self.block_size


def _read_meta(path: Path) -> dict:
    from naturelm.data.sources.common import read_json

    meta = read_json(path)
    if not isinstance(meta, dict):
        raise DataFileError(path, f"expected a JSON object, got {type(meta).__name__}")
    return meta


def pretrain_blocks(data_dir: str | Path, split: str, block_size: int | None, global_batch: int, seed: int):
    """The blocks of a built corpus: sharded (`naturelm data corpus`) or one packed stream (`naturelm data build`)."""
    from naturelm.data.shards import is_sharded

    cls = ShardedBlocks if is_sharded(Path(data_dir) / "pretrain") else PackedBlocks
    return cls(data_dir, split, block_size, global_batch, seed)


def read_numbered(path: Path, required: tuple[str, ...] = (), limit: int | None = None) -> list[tuple[int, dict]]:
    """(line number, record) of a JSONL training file, checked before training starts: a line that is not a JSON
    object (a truncated file) or a record whose `required` fields are not all strings is a DataFileError naming
    the file and line."""
    from naturelm.data.sources.common import read_jsonl_records

    out = []
    for number, rec in read_jsonl_records(path):
        _require_text(path, number, rec, required)
        out.append((number, rec))
        if limit is not None and len(out) >= limit:
            break
    return out


def read_jsonl(path: Path, limit: int | None = None, required: tuple[str, ...] = ()) -> list[dict]:
    """The records of a JSONL training file (`read_numbered`, without the line numbers)."""
    return [rec for _, rec in read_numbered(path, required, limit)]


def _require_text(path, line: int, rec: dict, required: tuple[str, ...]) -> None:
    for key in required:
        if not isinstance(rec.get(key), str):
            got = "missing" if key not in rec else f"a {type(rec[key]).__name__}, not a string"
            raise DataFileError(path, f"record has no {key!r} text ({got})", line)


INVALID_ENTITY_POLICIES = ("refuse", "skip")


def bucketed_schedule(lengths: np.ndarray, global_batch: int, seed: int, epoch: int, window: int) -> list[np.ndarray]:
    """One epoch of global batches: shuffle, sort by length inside windows of `window` batches, shuffle batch order.

    Each batch is sorted by length so that a process's micro-batches hold similar lengths (little padding).
    Only full batches are kept, so every step has the same number of examples.
    """
    rng = _epoch_rng(seed, epoch)
    perm = rng.permutation(len(lengths))
    chunk = global_batch * max(1, window)
    batches = []
    for start in range(0, len(perm), chunk):
        part = perm[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[k : k + global_batch] for k in range(0, len(part) - global_batch + 1, global_batch)]
    return [batches[i] for i in rng.permutation(len(batches))]


class _Bucketed:
    """Shared schedule logic for datasets of variable-length examples with `self.lengths`."""

    lengths: np.ndarray

    def _setup(self, global_batch: int, seed: int, window: int) -> None:
        if len(self.lengths) < global_batch:
            raise ConfigError(f"{len(self.lengths)} examples, fewer than one global batch of {global_batch}")
        self.global_batch, self.seed, self.window = global_batch, seed, window
        self._epoch: tuple[int, list[np.ndarray]] | None = None
        self.batches_per_epoch = len(bucketed_schedule(self.lengths, global_batch, seed, 0, window))

    def __len__(self) -> int:
        return len(self.lengths)

    def global_batch_indices(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.batches_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, bucketed_schedule(self.lengths, self.global_batch, self.seed, epoch, self.window))
        return [int(j) for j in self._epoch[1][i]]


def pad_batch(seqs: list[list[int]], labels: list[list[int]], pad_id: int, multiple: int = 8) -> dict:
    """Right-pad to the longest sequence (rounded up to `multiple`); labels padded with -100."""
    import torch

    width = -(-(max(len(s) for s in seqs) - 1) // multiple) * multiple + 1  # model sees a multiple of 8
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    lab = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, (s, l) in enumerate(zip(seqs, labels)):
        ids[r, : len(s)] = torch.tensor(s)
        lab[r, : len(l)] = torch.tensor(l)
        mask[r, : len(s)] = 1
    # labels are already aligned to the *next* token: shift happens here, once
    return {"input_ids": ids[:, :-1], "attention_mask": mask[:, :-1], "labels": lab[:, 1:].clone()}


def encode_pair(tok, instruction: str, response: str) -> tuple[list[int], list[int]]:
    """Token ids and labels of one `Instruction: …\\n\\n\\nResponse: …` pair; loss on the response and EOS only.

    The prompt (in the tokenizer's format, `tok.format_prompt`) is encoded on its own, exactly as at inference time. Unconditional generation records
    (instruction = a bare opening tag such as `<mol>`, paper §3) are trained raw: `<s><mol>` is the
    prompt, `…</mol></s>` the target.
    """
    from naturelm.language.tags import TAGS

    opening = {t.open: t.close for t in TAGS.values()}
    bare = instruction.strip()
    if bare in opening and response.strip().startswith(bare):
        ids = tok.encode(response.strip(), add_bos=True, add_eos=True)
        n = len(tok.encode(bare + opening[bare], add_bos=True)) - 1  # BOS + the opening tag
        return ids, [IGNORE] * n + ids[n:]
    prompt, resp = tok.format_prompt(instruction), response.strip()  # the checkpoint's own prompt format
    p = tok.encode(prompt, add_bos=True)
    r = tok.encode(resp, add_eos=True)
    return p + r, [IGNORE] * len(p) + r


def encode_checked(tok, path, numbered, fields: tuple[str, ...], invalid_entities: str = "refuse",
                   verdicts: CachedVerdicts | None = None, progress: bool = False):
    """Encode every record's `fields` pairs (`encode_pair`; one pair for SFT, two for DPO) before training starts.

    A record whose text cannot be encoded (bad tags, characters outside an entity's alphabet) or holds an entity
    that is not valid (`EntityCheck`: SMILES RDKit cannot read; answered by `verdicts`, the check's cached
    verdicts of the file, when given) is invalid. `invalid_entities="refuse"` (the default) raises a
    DataFileError with their count, the first line numbers and the first reason; "skip" drops them. `progress`: a
    bar on stderr once this has taken more than two seconds. Returns ([(line, record, [(ids, labels), ...])] of the
    valid records, Counter of invalid ones by reason).
    """
    from collections import Counter

    from tqdm.auto import tqdm

    if invalid_entities not in INVALID_ENTITY_POLICIES:
        raise ConfigError(f"data.invalid_entities={invalid_entities!r}; use one of {INVALID_ENTITY_POLICIES}")
    check, kept, invalid, bad = EntityCheck(), [], Counter(), []
    for line, rec in tqdm(numbered, desc=f"checking {Path(str(path)).name}", unit="rec", delay=2.0, mininterval=1.0,
                          disable=not progress, leave=False):
        prompt, *answers = (rec[f] for f in fields)
        try:
            encoded = [encode_pair(tok, prompt, answer) for answer in answers]
            problem = check.record_problem(rec, fields) if verdicts is None else verdicts.problem(line, rec)
            reason = "invalid_entity"
        except (EntityError, TagError) as exc:
            problem, reason = str(exc), "unencodable_text"
        if problem is None:
            kept.append((line, rec, encoded))
            continue
        invalid[reason] += 1
        bad.append((line, problem))
    if verdicts is not None:
        verdicts.save()  # before a refusal: the next start refuses the same lines without RDKit
    if bad and invalid_entities == "refuse":
        lines = ", ".join(str(n) for n, _ in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise DataFileError(path, f"{len(bad)} record(s) with invalid entities or text (lines {lines}); first: "
                                  f"{bad[0][1]}. Fix the data, or pass --set data.invalid_entities=skip to train "
                                  "without them", bad[0][0])
    return kept, invalid


class SFTData(_Bucketed):
    """Instruction/response pairs from `instructions/{split}.jsonl`, one pair per sequence, length-bucketed.

    The whole file is validated before training starts (`read_numbered`, `encode_checked`): a truncated line or a
    record without `instruction`/`response` text is a DataFileError naming the line; records with invalid
    entities are refused (default) or skipped and counted (`invalid`), per `invalid_entities`. The entity check's
    verdicts are cached by the file's sha256 beside the data, else in `run_dir` (`naturelm.train.entity_check`);
    `entity_check` says what this start did. `progress`: progress bars and cache messages on stderr."""

    def __init__(self, data_dir, split: str, tok, max_length: int, global_batch: int, seed: int,
                 tasks: list[str] | None = None, max_examples: int | None = None, window: int = 64,
                 records: list[dict] | None = None, task_repeats: dict[str, int] | None = None,
                 invalid_entities: str = "refuse", run_dir=None, progress: bool = True):
        fields = ("instruction", "response")
        verdicts = None
        if records is None:
            path = _require(Path(data_dir) / "instructions" / f"{split}.jsonl", "instruction set")
            # hashed before it is read: the verdict is keyed by the bytes that are then checked
            verdicts = CachedVerdicts(path, fields, cache_places(path, data_dir, run_dir), report=progress)
            numbered = read_numbered(path, fields)
        else:
            path = "<records>"
            numbered = list(enumerate(records, 1))
            for number, rec in numbered:
                _require_text(path, number, rec, fields)
        if tasks:
            numbered = [(n, r) for n, r in numbered if r.get("task") in set(tasks)]
        if max_examples:
            numbered = numbered[: int(max_examples)]
        kept, self.invalid = encode_checked(tok, path, numbered, fields, invalid_entities, verdicts, progress)
        self.entity_check = verdicts.summary() if verdicts is not None else {"cache": None}
        self.ids, self.labels, self.skipped = [], [], 0
        for _, rec, ((ids, labels),) in kept:
            repeats = max(1, int(task_repeats.get(rec.get("task"), 1))) if task_repeats else 1
            if len(ids) > max_length:
                self.skipped += repeats
                continue
            self.ids += [ids] * repeats
            self.labels += [labels] * repeats
        self.pad_id = tok.pad_token_id
        self.lengths = np.array([len(s) for s in self.ids], dtype=np.int64)
        self.n_targets = np.array([sum(1 for x in l[1:] if x != IGNORE) for l in self.labels], dtype=np.int64)
        self._setup(global_batch, seed, window)

    def collate(self, indices: list[int]) -> dict:
        return pad_batch([self.ids[i] for i in indices], [self.labels[i] for i in indices], self.pad_id)

    def units(self, indices: list[int]) -> int:
        return int(self.n_targets[indices].sum())

    def n_tokens(self, indices: list[int]) -> int:
        return int(self.lengths[indices].sum())


class PreferenceData(_Bucketed):
    """DPO pairs `{"prompt", "chosen", "rejected"}`; a batch is the chosen rows followed by the rejected rows.

    Validated before training like SFTData: pairs without the three texts are a DataFileError naming the pair
    (line of `path`, when given), invalid ones refused or skipped per `invalid_entities`."""

    def __init__(self, pairs: list[dict], tok, max_length: int, global_batch: int, seed: int, window: int = 64,
                 path=None, invalid_entities: str = "refuse"):
        fields = ("prompt", "chosen", "rejected")
        where = path or "<preference pairs>"
        numbered = list(enumerate(pairs, 1))
        for number, pair in numbered:
            if not isinstance(pair, dict):
                raise DataFileError(where, f"expected a JSON object, got {type(pair).__name__}", number)
            _require_text(where, number, pair, fields)
        kept, self.invalid = encode_checked(tok, where, numbered, fields, invalid_entities)
        self.chosen, self.rejected, self.kept, self.skipped = [], [], [], 0
        for _, pair, (c, r) in kept:
            if max(len(c[0]), len(r[0])) > max_length:
                self.skipped += 1
                continue
            self.chosen.append(c)
            self.rejected.append(r)
            self.kept.append(pair)
        self.pad_id = tok.pad_token_id
        self.lengths = np.array([max(len(c[0]), len(r[0])) for c, r in zip(self.chosen, self.rejected)], dtype=np.int64)
        self._setup(global_batch, seed, window)

    def collate(self, indices: list[int]) -> dict:
        rows = [self.chosen[i] for i in indices] + [self.rejected[i] for i in indices]
        batch = pad_batch([r[0] for r in rows], [r[1] for r in rows], self.pad_id)
        batch["index"] = indices
        return batch

    def units(self, indices: list[int]) -> int:
        """DPO averages over pairs."""
        return len(indices)

    def n_tokens(self, indices: list[int]) -> int:
        return int(sum(len(self.chosen[i][0]) + len(self.rejected[i][0]) for i in indices))
