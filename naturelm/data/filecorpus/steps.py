"""The corpus pipeline's datatrove steps. Each stage is one datatrove executor (local, Slurm or Ray), its tasks
write only their own files under WORK, and a stage reads only what earlier stages finished writing:

1. `ParseRecords` (any number of tasks): read the inputs (whole files, or every n-th record of a large file),
   validate and canonicalise with the domain codec, drop test entities (sorted hash file), hash each entry's key
   with the seed and append it to the key-hash bucket it falls in: WORK/parsed/BUCKET/TASK.jsonl.
2. `DedupTokenize` (one task per bucket): exact dedup by key (a key lives in one bucket; the first record in
   input order wins), entity-hash train/valid split, NatureTokenizer encoding: WORK/unique/BUCKET.bin.
3. `Mix` (one task per bucket): copies per document from the domain weights and the global token counts of
   stage 2 (integer part + a seeded coin for the fraction, at most `max_repeats`), each copy gets a seeded
   64-bit order key and goes to the order-key range (partition) it falls in: WORK/mix/SPLIT/PART/BUCKET.bin.
4. `WriteShards` (one task per partition): sort by order key, write DIR/pretrain/SPLIT/PART.bin.

Partitions cover consecutive order-key ranges, so the shards in index order are one global seeded shuffle: the
token stream depends on the inputs, the seed and the mixture only — not on workers, tasks or bucket counts.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from collections import Counter, defaultdict
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

DOMAIN_IDS = {d: i for i, d in enumerate(("protein", "dna", "rna", "molecule", "reaction", "material", "text"))}
DOMAIN_NAMES = {i: d for d, i in DOMAIN_IDS.items()}
SPLIT_NAMES = ("train", "valid")
_UNIQUE = struct.Struct("<IBBH")  # tokens, domain, split, key bytes
_MIXED = struct.Struct("<QIB")  # order key, tokens, domain


def h64(*parts) -> int:
    """A stable 64-bit hash of the parts (blake2b)."""
    return int.from_bytes(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def part_of(h: int, n: int) -> int:
    """The range of [0, 2^64) that h falls in, of n equal ranges (so partition order = hash order)."""
    return (h * n) >> 64


def load_plan(work: str | Path) -> dict:
    return json.loads((Path(work) / "plan.json").read_text())


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, sort_keys=True))
    os.replace(tmp, path)


def read_stats(work: str | Path, stage: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((Path(work) / "stats" / stage).glob("*.json"))]


def work_units(plan: dict, rank: int, world: int) -> list[tuple[int, int, int, int]]:
    """(input, file, stride, offset) units of task `rank`. A file holding at least 1/(4 x tasks) of the input is
    shared: every task reads it and takes every `world`-th record (one huge SMILES file still uses every worker).
    Smaller files go whole to the least loaded task, largest first."""
    files = [(i, j, size) for i, fl in enumerate(plan["files"]) for j, (_, size) in enumerate(fl)]
    total = sum(size for *_, size in files) or 1
    shared = [(i, j, world, rank) for i, j, size in files if world > 1 and size * 4 * world >= total]
    load = [0] * world
    mine = []
    for i, j, size in sorted(files, key=lambda f: (-f[2], f[0], f[1])):
        if world > 1 and size * 4 * world >= total:
            continue
        k = min(range(world), key=lambda t: (load[t], t))
        load[k] += max(size, 1)
        if k == rank:
            mine.append((i, j, 1, 0))
    return shared + mine


class BucketFiles:
    """Append-only files, one per bucket, written through in-memory buffers: at most `limit` bytes are held and one
    file is open at a time, however many buckets there are (thousands on a large corpus)."""

    def __init__(self, path_of, limit: int = 64 << 20):
        self.path_of, self.limit = path_of, limit
        self.buffers: dict = defaultdict(list)
        self.size = 0
        self.started: set = set()

    def write(self, bucket, data: bytes) -> None:
        self.buffers[bucket].append(data)
        self.size += len(data)
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        for bucket, parts in self.buffers.items():
            path = self.path_of(bucket)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab" if bucket in self.started else "wb") as f:
                f.write(b"".join(parts))
            self.started.add(bucket)
        self.buffers.clear()
        self.size = 0


class CorpusStep(PipelineStep):
    """A datatrove step of the corpus build; its state lives in the work folder."""

    type = "naturelm-corpus"

    def __init__(self, work: str):
        super().__init__()
        self.work = work


class ParseRecords(CorpusStep):
    name = "parse, validate, exclude test entities"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import numpy as np

        from naturelm.data.filecorpus.inputs import Input, read_records
        from naturelm.data.filecorpus.records import Rejected, make_entry

        work, plan = Path(self.work), load_plan(self.work)
        inputs = [Input(**d) for d in plan["inputs"]]
        exclude = np.load(work / "exclude.npy", mmap_mode="r") if plan["exclude_keys"] else None
        seed, n_buckets, max_chars = plan["seed"], plan["buckets"], plan["max_chars"]
        out = BucketFiles(lambda b: work / "parsed" / f"{b:05d}" / f"{rank:05d}.jsonl")
        stats: dict[str, dict] = {}

        def excluded(entry) -> bool:
            if exclude is None:  # no test keys: the (costly) leakage keys are not computed
                return False
            for k in entry.leak_keys:
                hk = np.uint64(h64("leak", k))
                i = int(np.searchsorted(exclude, hk))
                if i < len(exclude) and exclude[i] == hk:
                    return True
            return False

        for i, j, stride, offset in work_units(plan, rank, world_size):
            inp, path = inputs[i], plan["files"][i][j][0]
            st = stats.setdefault(inp.source, {"read": 0, "kept": 0, "excluded": 0, "rejected": Counter()})
            for r, fields in read_records(inp, path):
                if r % stride != offset:
                    continue
                st["read"] += 1
                try:
                    entry = make_entry(inp.domain, fields, max_chars)
                except Rejected as exc:
                    st["rejected"][exc.reason] += 1
                    continue
                if excluded(entry):
                    st["excluded"] += 1
                    continue
                st["kept"] += 1
                h = h64(seed, entry.key)
                line = json.dumps([h, i, j, r, inp.domain, entry.key, entry.texts], ensure_ascii=False) + "\n"
                out.write(part_of(h, n_buckets), line.encode())
        out.flush()
        for b in range(n_buckets):  # a task that wrote nothing to a bucket leaves no stale file from an earlier try
            p = work / "parsed" / f"{b:05d}" / f"{rank:05d}.jsonl"
            if b not in out.started and p.exists():
                p.unlink()
        for st in stats.values():
            self.stat_update("read", value=st["read"])
            self.stat_update("kept", value=st["kept"])
        _write_json(work / "stats" / "parse" / f"{rank:05d}.json", stats)


class DedupTokenize(CorpusStep):
    name = "exact dedup, train/valid split, tokenize"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import numpy as np

        from naturelm.data.filecorpus.inputs import Input
        from naturelm.language.tokenizer import NatureTokenizer

        work, plan = Path(self.work), load_plan(self.work)
        sources = [Input(**d).source for d in plan["inputs"]]
        tok = NatureTokenizer.from_pretrained(work / "tokenizer")
        eos = tok.eos_token_id
        seed, valid_fraction = plan["seed"], plan["valid_fraction"]
        for b in range(rank, plan["buckets"], world_size):
            rows = []
            for p in sorted((work / "parsed" / f"{b:05d}").glob("*.jsonl")):
                with open(p, encoding="utf-8") as f:
                    rows.extend(json.loads(line) for line in f)
            rows.sort(key=lambda row: (row[5], row[1], row[2], row[3]))  # key, then input order
            stats = {"duplicates": Counter(), "documents": defaultdict(Counter), "tokens": defaultdict(Counter)}
            last = None
            path = work / "unique" / f"{b:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".tmp"), "wb") as f:
                for _h, i, _j, _r, domain, key, texts in rows:
                    if key == last:
                        stats["duplicates"][sources[i]] += 1
                        continue
                    last = key
                    split = 1 if h64(seed, "valid", key) < valid_fraction * 2**64 else 0
                    for n, text in enumerate(texts):
                        ids = np.asarray(tok.encode(text) + [eos], dtype=np.uint32)
                        doc_key = f"{key}#{n}".encode()
                        f.write(_UNIQUE.pack(len(ids), DOMAIN_IDS[domain], split, len(doc_key)))
                        f.write(doc_key)
                        f.write(ids.tobytes())
                        stats["documents"][SPLIT_NAMES[split]][domain] += 1
                        stats["tokens"][SPLIT_NAMES[split]][domain] += len(ids)
            os.replace(path.with_suffix(".tmp"), path)
            self.stat_update("unique_entries", value=len(rows) - sum(stats["duplicates"].values()))
            _write_json(work / "stats" / "dedup" / f"{b:05d}.json", stats)


def read_unique(path: Path):
    """Yield (doc_key, domain id, split id, token bytes) from a stage-2 file."""
    data = path.read_bytes()
    pos, n = 0, len(data)
    while pos < n:
        ntok, domain, split, klen = _UNIQUE.unpack_from(data, pos)
        pos += _UNIQUE.size
        key = data[pos : pos + klen]
        pos += klen
        yield key, domain, split, data[pos : pos + 4 * ntok]
        pos += 4 * ntok


def copy_rates(plan: dict, train_tokens: dict[str, int]) -> dict[str, float]:
    """Copies per training document of each domain, from the weights and the unique tokens per domain.

    No weights: every document once. Weights without a token budget: the budget is the unique training tokens.
    """
    weights = plan["weights"]
    if not weights:
        return {d: 1.0 for d in train_tokens}
    present = {d: w for d, w in weights.items() if train_tokens.get(d, 0) > 0}
    total_w = sum(present.values()) or 1.0
    budget = plan["tokens"] or sum(train_tokens.values())
    rates = {}
    for d, n in train_tokens.items():
        quota = budget * present.get(d, 0.0) / total_w
        rates[d] = min(float(plan["max_repeats"]), quota / n) if n else 0.0
    return rates


def merged_dedup_stats(work: Path) -> dict:
    out = {"duplicates": Counter(), "documents": defaultdict(Counter), "tokens": defaultdict(Counter)}
    for st in read_stats(work, "dedup"):
        out["duplicates"].update(st["duplicates"])
        for what in ("documents", "tokens"):
            for split, per in st[what].items():
                out[what][split].update(per)
    return out


class Mix(CorpusStep):
    name = "mixture by weight, seeded order keys"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        work, plan = Path(self.work), load_plan(self.work)
        seed, parts = plan["seed"], plan["buckets"]
        rates = copy_rates(plan, dict(merged_dedup_stats(work)["tokens"]["train"]))
        for b in range(rank, plan["buckets"], world_size):
            folder = work / "mix"
            out = BucketFiles(lambda sp: folder / SPLIT_NAMES[sp[0]] / f"{sp[1]:05d}" / f"{b:05d}.bin")
            for key, domain, split, toks in read_unique(work / "unique" / f"{b:05d}.bin"):
                if split == 0:
                    rate = rates.get(DOMAIN_NAMES[domain], 0.0)
                    copies = int(rate) + (h64(seed, "mix", key) < (rate - int(rate)) * 2**64)
                else:
                    copies = 1  # valid documents once: the loss on the natural distribution
                for c in range(copies):
                    o = h64(seed, "order", key, c)
                    out.write((split, part_of(o, parts)), _MIXED.pack(o, len(toks) // 4, domain) + toks)
            out.flush()
            for split in (0, 1):  # no stale file from an earlier try of this bucket
                for p in range(parts):
                    path = folder / SPLIT_NAMES[split] / f"{p:05d}" / f"{b:05d}.bin"
                    if (split, p) not in out.started and path.exists():
                        path.unlink()


class WriteShards(CorpusStep):
    name = "sort partitions, write token shards"

    def __init__(self, work: str, out: str):
        super().__init__(work)
        self.out = out

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from naturelm.data.card import file_sha256

        work, plan = Path(self.work), load_plan(self.work)
        for p in range(rank, plan["buckets"], world_size):
            stats = {}
            for split in SPLIT_NAMES:
                docs = []
                for path in sorted((work / "mix" / split / f"{p:05d}").glob("*.bin")):
                    data = path.read_bytes()
                    pos = 0
                    while pos < len(data):
                        o, ntok, domain = _MIXED.unpack_from(data, pos)
                        pos += _MIXED.size
                        docs.append((o, data[pos : pos + 4 * ntok], domain))
                        pos += 4 * ntok
                docs.sort(key=lambda d: (d[0], d[1]))
                shard = Path(self.out) / "pretrain" / split / f"{p:05d}.bin"
                shard.parent.mkdir(parents=True, exist_ok=True)
                tokens = Counter()
                with open(shard.with_suffix(".tmp"), "wb") as f:
                    for _o, toks, domain in docs:
                        f.write(toks)
                        tokens[DOMAIN_NAMES[domain]] += len(toks) // 4
                os.replace(shard.with_suffix(".tmp"), shard)
                stats[split] = {"file": f"{split}/{p:05d}.bin", "documents": len(docs), "tokens": sum(tokens.values()),
                                "tokens_per_domain": dict(tokens), "sha256": file_sha256(shard)}
                self.stat_update(f"{split}_tokens", value=sum(tokens.values()))
            _write_json(work / "stats" / "shards" / f"{p:05d}.json", stats)
