"""`naturelm data corpus`: plan a file-corpus build, run its datatrove stages, write the index and the card.

The same stages run on a laptop (datatrove's LocalPipelineExecutor: `workers` processes) and on a cluster
(SlurmPipelineExecutor / RayPipelineExecutor: one job array per stage, chained by dependencies; the last stage
writes the card). See docs/data.md.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from naturelm.data.filecorpus.inputs import DOMAINS, Input, expand, file_format, parse_input
from naturelm.data.filecorpus.steps import (
    DedupTokenize,
    Mix,
    ParseRecords,
    WriteShards,
    _write_json,
    copy_rates,
    h64,
    load_plan,
    merged_dedup_stats,
    read_stats,
)
from naturelm.errors import ConfigError

BUCKET_BYTES = 32 << 20  # input bytes (compressed files count x4) per dedup bucket: bounds a task's memory


@dataclass
class CorpusSpec:
    """Everything a corpus build depends on (the YAML recipe form has the same fields)."""

    inputs: list[Input]
    seed: int = 0
    weights: dict[str, float] = field(default_factory=dict)  # {} : every document once
    tokens: int | None = None  # token budget of the training split (None: the unique training tokens)
    max_repeats: int = 4
    valid_fraction: float = 0.01
    block_size: int = 512
    max_chars: int | None = None  # longer records are rejected (and counted)
    exclude: list[str] = field(default_factory=list)  # built data dirs / instruction JSONL / key files
    buckets: int | None = None  # None: from the input size
    tokenizer: str | None = None  # a NatureTokenizer directory (default: the shipped vocabulary)

    def __post_init__(self):
        bad = sorted(set(self.weights) - set(DOMAINS))
        if bad:
            raise ConfigError(f"weights for unknown domains {bad}; domains are {DOMAINS}")
        if any(w < 0 for w in self.weights.values()):
            raise ConfigError("domain weights must be >= 0")
        if not self.inputs:
            raise ConfigError("no inputs: pass --input DOMAIN=PATH (or `inputs:` in the recipe)")
        if not 0 <= self.valid_fraction < 1:
            raise ConfigError("valid_fraction must be in [0, 1)")


def parse_weights(items: list[str]) -> dict[str, float]:
    """`protein=0.45 rna=0.19` or `protein=0.45,rna=0.19` -> dict."""
    out = {}
    for item in (x for s in items for x in s.split(",") if x):
        d, eq, w = item.partition("=")
        try:
            out[d.strip()] = float(w)
        except ValueError:
            raise ConfigError(f"--weights {item!r}: expected DOMAIN=NUMBER") from None
        if not eq:
            raise ConfigError(f"--weights {item!r}: expected DOMAIN=NUMBER")
    return out


def load_spec(path: str | Path, extra_inputs: list[Input] = (), **overrides) -> CorpusSpec:
    """A YAML recipe: `inputs: [{domain, path, format?, column?, ...} | "DOMAIN=PATH"]`, plus CorpusSpec fields."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"corpus recipe {path} not found")
    cfg = yaml.safe_load(path.read_text()) or {}
    known = set(CorpusSpec.__dataclass_fields__)
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown corpus recipe fields {unknown} (known: {sorted(known)})")
    base = path.parent
    inputs = []
    for item in cfg.pop("inputs", []) or []:
        inp = parse_input(item) if isinstance(item, str) else Input(**item)
        if "://" not in inp.path and not Path(inp.path).is_absolute():  # relative to the recipe file
            inp = Input(**{**inp.to_dict(), "path": str(base / inp.path)})
        inputs.append(inp)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return CorpusSpec(inputs=inputs + list(extra_inputs), **cfg)


# ------------------------------------------------------------------ plan


def _exclusion_keys(sources: list[str]) -> tuple[list[int], list[dict]]:
    """64-bit hashes of the test entity keys named by each source, and what each source gave."""
    from naturelm.data.splits import record_keys

    hashes, report = [], []
    for src in sources:
        p = Path(src)
        files = [p / "instructions" / "test.jsonl"] if p.is_dir() else [p]
        n = 0
        for f in files:
            if not f.is_file():
                raise ConfigError(f"--exclude {src}: expected a built data dir (instructions/test.jsonl), an "
                                  "instruction JSONL or a key file (one `mol:…`/`protein:…` key per line)")
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    keys = record_keys(json.loads(line)) if line.startswith("{") else {line}
                    hashes.extend(h64("leak", k) for k in keys)
                    n += len(keys)
        report.append({"source": src, "keys": n})
    return hashes, report


def plan_build(spec: CorpusSpec, out: str | Path) -> Path:
    """Expand the inputs, write WORK/plan.json, the exclusion key file and the tokenizer; returns WORK.

    A WORK folder left by an earlier build with the same plan is kept (its finished tasks are skipped: a
    killed build resumes); any other is removed.
    """
    import numpy as np

    from naturelm.language.tokenizer import NatureTokenizer

    out = Path(out)
    work = out / "work"
    files = [expand(inp) for inp in spec.inputs]
    for inp, fl in zip(spec.inputs, files):
        for path, _ in fl:
            file_format(inp, path)  # fails early on a file whose format cannot be told
    size = sum(s * (4 if p.endswith((".gz", ".bz2", ".xz", ".zst")) else 1) for fl in files for p, s in fl)
    buckets = spec.buckets or max(1, math.ceil(size / BUCKET_BYTES))
    hashes, excl_report = _exclusion_keys(spec.exclude)
    tok = NatureTokenizer.from_pretrained(spec.tokenizer) if spec.tokenizer else NatureTokenizer()
    tmp = out / ".tokenizer.tmp"
    tok.save_pretrained(tmp)
    tok_sha = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in sorted(tmp.iterdir()))).hexdigest()
    shutil.rmtree(tmp)
    plan = {"inputs": [inp.to_dict() for inp in spec.inputs], "files": files, "seed": spec.seed,
            "weights": spec.weights, "tokens": spec.tokens, "max_repeats": spec.max_repeats,
            "valid_fraction": spec.valid_fraction, "block_size": spec.block_size, "max_chars": spec.max_chars,
            "buckets": buckets, "exclude": excl_report, "exclude_keys": len(set(hashes)),
            "tokenizer_sha256": tok_sha}
    old = work / "plan.json"
    if old.is_file() and json.loads(old.read_text()) != plan:
        shutil.rmtree(work)
    if (out / "pretrain").exists() and not old.is_file():
        shutil.rmtree(out / "pretrain")
    work.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(work / "tokenizer")
    np.save(work / "exclude.npy", np.unique(np.array(hashes, dtype=np.uint64)))
    _write_json(old, plan)
    return work


# ------------------------------------------------------------------ executors


STAGES = ("parse", "dedup", "mix", "shards", "card")


def stage_pipelines(work: Path, out: Path) -> dict[str, list]:
    return {"parse": [ParseRecords(str(work))], "dedup": [DedupTokenize(str(work))], "mix": [Mix(str(work))],
            "shards": [WriteShards(str(work), str(out))], "card": [WriteCard(str(work), str(out))]}


def stage_tasks(plan: dict, tasks: int) -> dict[str, int]:
    b = plan["buckets"]
    return {"parse": max(1, tasks), "dedup": b, "mix": b, "shards": b, "card": 1}


def make_executors(work: Path, out: Path, executor: str = "local", tasks: int = 1, workers: int = 1,
                   **cluster) -> list:
    """One datatrove executor per stage. `cluster` holds Slurm options (partition, time, cpus_per_task,
    mem_per_cpu_gb, venv_path, sbatch_args) or Ray options (cpus_per_task, mem_per_cpu_gb)."""
    plan = load_plan(work)
    n = stage_tasks(plan, tasks)
    pipes = stage_pipelines(work, out)
    execs, prev = [], None
    for stage in STAGES:
        logs = str(work / "logs" / stage)
        if executor == "local":
            from datatrove.executor import LocalPipelineExecutor

            ex = LocalPipelineExecutor(pipes[stage], tasks=n[stage], workers=max(1, min(workers, n[stage])),
                                       logging_dir=logs, start_method="fork" if os.name == "posix" else "spawn")
        elif executor == "slurm":
            from datatrove.executor import SlurmPipelineExecutor

            if not cluster.get("partition"):
                raise ConfigError("--executor slurm needs --slurm-partition")
            ex = SlurmPipelineExecutor(
                pipes[stage], tasks=n[stage], time=cluster.get("time") or "04:00:00", partition=cluster["partition"],
                cpus_per_task=cluster.get("cpus_per_task") or 1, mem_per_cpu_gb=cluster.get("mem_per_cpu_gb") or 4,
                workers=workers if workers > 1 else -1, job_name=f"naturelm-corpus-{stage}", logging_dir=logs,
                depends=prev, venv_path=cluster.get("venv_path"), sbatch_args=cluster.get("sbatch_args"))
        elif executor == "ray":
            from datatrove.executor.ray import RayPipelineExecutor

            ex = RayPipelineExecutor(pipes[stage], tasks=n[stage], workers=workers if workers > 1 else -1,
                                     depends=prev, logging_dir=logs, cpus_per_task=cluster.get("cpus_per_task") or 1,
                                     mem_per_cpu_gb=cluster.get("mem_per_cpu_gb") or 4)
        else:
            raise ConfigError(f"unknown executor {executor!r}: local | slurm | ray")
        execs.append(ex)
        prev = ex
    return execs


def build_corpus(spec: CorpusSpec, out: str | Path, executor: str = "local", workers: int = 1,
                 tasks: int | None = None, keep_work: bool = False, **cluster) -> dict | None:
    """Build the corpus under `out`. Local: runs every stage and returns the card. Slurm/Ray: submits the
    chained stages and returns None (the last stage writes OUT/card.json)."""
    out = Path(out)
    t0 = time.time()
    work = plan_build(spec, out)
    execs = make_executors(work, out, executor, tasks or workers, workers, **cluster)
    if executor != "local":
        execs[-1].run()  # launches its dependencies first
        return None
    timings = {}
    for stage, ex in zip(STAGES, execs):
        t = time.time()
        ex.run()
        missing = ex.get_incomplete_ranks(skip_completed=True)
        if missing:
            raise RuntimeError(f"corpus stage {stage}: tasks {missing} did not finish (logs: {ex.logging_dir.path})")
        timings[stage] = round(time.time() - t, 2)
    card = json.loads((out / "card.json").read_text())
    card["build"] = {"seconds": round(time.time() - t0, 2), "stages": timings, "workers": workers,
                     "executor": executor}
    (out / "card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    if not keep_work:
        for sub in ("parsed", "unique", "mix"):
            shutil.rmtree(work / sub, ignore_errors=True)
    return card


# ------------------------------------------------------------------ index and card (the last stage)


class WriteCard(PipelineStep):
    name = "index and card"
    type = "naturelm-corpus"

    def __init__(self, work: str, out: str):
        super().__init__()
        self.work, self.out = work, out

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from naturelm.data.shards import FORMAT, INDEX, stream_sha256
        from naturelm.language.tokenizer import NatureTokenizer

        work, out = Path(self.work), Path(self.out)
        plan = load_plan(work)
        tok = NatureTokenizer.from_pretrained(work / "tokenizer")
        tok.save_pretrained(out / "tokenizer")
        shards = {"train": [], "valid": []}
        for st in read_stats(work, "shards"):
            for split, s in st.items():
                shards[split].append(s)
        for split in shards:
            shards[split].sort(key=lambda s: s["file"])
        pre = out / "pretrain"
        sha = {split: stream_sha256([pre / s["file"] for s in shards[split]]) for split in shards}
        index = {"format": FORMAT, "dtype": "uint32", "eos_token_id": tok.eos_token_id, "vocab_size": len(tok),
                 "block_size": plan["block_size"], "tokenizer": "../tokenizer", "stream_sha256": sha,
                 "splits": {split: [{k: s[k] for k in ("file", "tokens", "documents", "sha256")} for s in ss]
                            for split, ss in shards.items()}}
        (pre / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
        card = corpus_card(plan, work, shards, sha)
        (out / "card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")


def corpus_card(plan: dict, work: Path, shards: dict, sha: dict) -> dict:
    import datatrove

    sources: dict[str, dict] = {}
    for st in read_stats(work, "parse"):
        for src, s in st.items():
            d = sources.setdefault(src, {"read": 0, "kept": 0, "excluded_test_entities": 0, "rejected": Counter()})
            d["read"] += s["read"]
            d["kept"] += s["kept"]
            d["excluded_test_entities"] += s["excluded"]
            d["rejected"].update(s["rejected"])
    dd = merged_dedup_stats(work)
    inputs = [Input(**d) for d in plan["inputs"]]
    for inp, fl in zip(inputs, plan["files"]):
        d = sources.setdefault(inp.source, {"read": 0, "kept": 0, "excluded_test_entities": 0, "rejected": Counter()})
        d.update({"domain": inp.domain, "files": len(fl), "bytes": sum(s for _, s in fl),
                  "duplicates": dd["duplicates"].get(inp.source, 0)})
        d["unique"] = d["kept"] - d["duplicates"]
        d["rejected_total"] = sum(d["rejected"].values())
        d["rejected"] = dict(sorted(d["rejected"].items(), key=lambda kv: -kv[1]))
    train_tokens = dict(dd["tokens"]["train"])
    rates = copy_rates(plan, train_tokens)
    out_tokens = {split: Counter() for split in shards}
    for split, ss in shards.items():
        for s in ss:
            out_tokens[split].update(s["tokens_per_domain"])
    total_train = sum(out_tokens["train"].values()) or 1
    domains = {}
    for d in sorted(set(train_tokens) | set(dd["tokens"]["valid"])):
        domains[d] = {"unique_documents": {k: dd["documents"][k].get(d, 0) for k in ("train", "valid")},
                      "unique_tokens": {k: dd["tokens"][k].get(d, 0) for k in ("train", "valid")},
                      "copies_per_document": round(rates.get(d, 0.0), 4),
                      "tokens": {k: out_tokens[k].get(d, 0) for k in out_tokens},
                      "train_share": round(out_tokens["train"].get(d, 0) / total_train, 4),
                      "weight": plan["weights"].get(d)}
    totals = {k: sum(s[k] for s in sources.values()) for k in ("read", "kept", "excluded_test_entities",
                                                              "rejected_total", "duplicates", "unique")}
    return {
        "kind": "naturelm file corpus",
        "engine": {"name": "datatrove", "version": datatrove.__version__ if hasattr(datatrove, "__version__")
                   else _dist_version("datatrove"), "buckets": plan["buckets"]},
        "settings": {k: plan[k] for k in ("seed", "weights", "tokens", "max_repeats", "valid_fraction", "block_size",
                                          "max_chars")},
        "inputs": plan["inputs"],
        "sources": sources,
        "totals": totals,
        "domains": domains,
        "exclusion": {"test_entity_keys": plan["exclude_keys"], "from": plan["exclude"],
                      "note": "a record is dropped when any of its entity keys (naturelm.data.splits) is a test key"
                      if plan["exclude"] else "no --exclude given: test entities were NOT removed"},
        "pretrain": {split: {"shards": len(ss), "documents": sum(s["documents"] for s in ss),
                             "tokens": sum(s["tokens"] for s in ss)} for split, ss in shards.items()},
        "sha256": sha,
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def summary(card: dict) -> str:
    t = card["totals"]
    lines = [f"records read {t['read']:,}  kept {t['kept']:,}  rejected {t['rejected_total']:,}  "
             f"excluded (test entities) {t['excluded_test_entities']:,}  duplicates {t['duplicates']:,}"]
    for d, s in card["domains"].items():
        lines.append(f"  {d:9s} unique docs {s['unique_documents']['train']:>10,}  train tokens {s['tokens']['train']:>12,}"
                     f"  share {s['train_share']:.3f}  copies/doc {s['copies_per_document']}")
    for src, s in card["sources"].items():
        if s["rejected"]:
            top = ", ".join(f"{k}: {v}" for k, v in list(s["rejected"].items())[:3])
            lines.append(f"  rejected in {src}: {top}")
    p = card["pretrain"]
    lines.append(f"train {p['train']['tokens']:,} tokens in {p['train']['shards']} shards, valid {p['valid']['tokens']:,}; "
                 f"sha256 train {card['sha256']['train'][:16]}…")
    return "\n".join(lines)
