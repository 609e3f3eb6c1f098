"""SFT training throughput of the tiny config on CPU: v1's settings against improved ones, interleaved in one run.

Arms (`--arms`, each its own copy of the same initial model and optimizer, fed the same length-bucketed batches):
- `v1`: NatureLM-tiny v1's loop (1 torch thread as `make naturelm-tiny` ran it, LM head over every position);
- `labelled`: the LM head and softmax on labelled (response) positions only (`train.job.lm_loss`);
- `threads2`: 2 torch threads (`train.threads: 2`);
- `v2`: both (the tiny recipe's defaults now); `v2_compile`: v2 under torch.compile (`--compile`).
Rounds of `--steps` timed optimizer steps per arm alternate, so machine contention hits every arm alike; the
result is each arm's effective (non-padding) tokens/s and its ratio to v1 in the same run, and the share of
padding cells in the batches. `--hf` adds the old comparison with HF Trainer on padded random batches.

    python bench/train_throughput.py --data DIR --rounds 3 --steps 4
Without --data the SFT pairs are USPTO-50k retrosynthesis and forward instructions (the bulk of the tiny recipe).
Writes bench/runs/train_throughput.json (bench/results/ with --update-results, or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py
from results_path import add_output_args, output_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 2  # steps excluded from timing


class PeakRSS:
    """Samples this process's RSS in a thread; `.peak_mb` after the `with` block."""

    def __enter__(self):
        import psutil

        self.proc, self.peak, self.stop = psutil.Process(), 0, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak_mb = round(self.peak / 2**20, 1)


def matmul_peak(n: int = 1024, reps: int = 10) -> float:
    """Best fp32 matmul FLOP/s over a few timed rounds at the current thread count."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def flops_per_token(cfg, seq_len: float) -> float:
    """Training FLOPs per token: 6 x (matmul parameters incl. the LM head) + causal attention scores."""
    d, layers, ffn = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    kv = cfg.num_key_value_heads * (d // cfg.num_attention_heads)
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * ffn
    matmul = layers * per_layer + cfg.vocab_size * d
    return 6 * matmul + 6 * layers * d * seq_len  # QK^T and AV, forward + backward, causal half


def padded_fraction(data, steps: int) -> float:
    """Share of the micro-batch cells that are padding in our schedule (first `steps` steps)."""
    pad = total = 0
    for s in range(steps):
        idx = data.global_batch_indices(s)
        width = data.collate(idx)["input_ids"].shape[1]
        total += width * len(idx)
        pad += width * len(idx) - int(data.lengths[idx].sum()) + len(idx)  # inputs are length - 1
    return pad / total


def hf_trainer(data, tok, steps: int, micro: int, max_length: int, seed: int, pad_to_max: bool) -> dict:
    """HF Trainer, random batches, right-padded to the longest sequence (or to max_length)."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from naturelm.model.configs import build_model

    examples = [{"input_ids": ids, "labels": lab} for ids, lab in zip(data.ids, data.labels)]
    counts: list[int] = []
    cells: list[int] = []

    def collate(batch):
        width = max_length if pad_to_max else max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[r, :n], labels[r, :n], mask[r, :n] = torch.tensor(b["input_ids"]), torch.tensor(b["labels"]), 1
        counts.append(int(mask.sum()))
        cells.append(mask.numel())
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())

    model = build_model("tiny", tokenizer=tok, seed=seed)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=micro, max_steps=steps, learning_rate=1e-3,
                                 warmup_steps=1, weight_decay=0.1, report_to=[], save_strategy="no", logging_strategy="no",
                                 use_cpu=True, dataloader_num_workers=0, seed=seed, disable_tqdm=True,
                                 remove_unused_columns=False)
        trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collate, callbacks=[Clock()])
        with PeakRSS() as mem:
            trainer.train()
    tokens = sum(counts[WARMUP:steps])
    seconds = ends[-1] - ends[WARMUP - 1]
    return {"effective_tokens_per_s": tokens / seconds, "timed_steps": steps - WARMUP, "tokens": tokens,
            "seconds": seconds, "padded_fraction": 1 - sum(counts[:steps]) / sum(cells[:steps]), "peak_rss_mb": mem.peak_mb}


ARMS = {  # name -> (torch threads, LM head on labelled positions only, torch.compile)
    "v1": (1, False, False), "labelled": (1, True, False), "threads2": (2, False, False), "v2": (2, True, False),
    "v2_compile": (2, True, True), "compile1": (1, False, True),
}


def uspto_records(n: int, seed: int) -> list[dict]:
    """n SFT records from USPTO-50k's training split: retrosynthesis and forward instructions, alternating."""
    import random

    from naturelm.data.instructions import forward_records, retrosynthesis_records
    from naturelm.data.sources.uspto50k import load_uspto50k

    train = load_uspto50k(split="train").records[: n // 2 + 1]
    rng = random.Random(seed)
    retro, fwd = retrosynthesis_records(train, rng), forward_records(train, rng)
    return [r for pair in zip(retro, fwd) for r in pair][:n]


def arms_interleaved(data, tok, arms: list[str], rounds: int, steps: int, micro: int, seed: int) -> dict:
    """Per arm: effective tokens/s over `rounds` x `steps` timed steps (one warm-up step per arm first), arms
    alternating round by round on the same batches; each step is forward, backward, clip and AdamW as in the loop."""
    import copy

    import torch

    from naturelm.model.configs import build_model
    from naturelm.train.job import lm_loss

    base = build_model("tiny", tokenizer=tok, seed=seed)
    state = {}
    for name in arms:
        threads, labelled, compiled = ARMS[name]
        model = copy.deepcopy(base).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        run_model = torch.compile(model) if compiled else model
        state[name] = {"model": model, "run": run_model, "opt": opt, "threads": threads, "labelled": labelled,
                       "tokens": 0, "seconds": 0.0, "setup_s": 0.0}

    def step(arm, idx):
        batch = data.collate(idx)
        units = data.units(idx)
        if arm["labelled"] and arm["run"] is not arm["model"]:  # compiled: the body and head compile separately
            loss, _ = lm_loss(arm["model"], batch, labelled_logits=True)
        else:
            loss, _ = lm_loss(arm["run"], batch, labelled_logits=arm["labelled"])
        (loss / max(1, units)).backward()
        torch.nn.utils.clip_grad_norm_(arm["model"].parameters(), 1.0)
        arm["opt"].step()
        arm["opt"].zero_grad(set_to_none=True)

    before = torch.get_num_threads()
    for name in arms:  # warm-up (and compilation) outside the timing
        arm = state[name]
        torch.set_num_threads(arm["threads"])
        t0 = time.perf_counter()
        step(arm, data.global_batch_indices(0))
        arm["setup_s"] = time.perf_counter() - t0
    for r in range(rounds):
        for name in (arms if r % 2 == 0 else arms[::-1]):
            arm = state[name]
            torch.set_num_threads(arm["threads"])
            for s in range(steps):
                idx = data.global_batch_indices(1 + r * steps + s)
                t0 = time.perf_counter()
                step(arm, idx)
                arm["seconds"] += time.perf_counter() - t0
                arm["tokens"] += data.n_tokens(idx)
    torch.set_num_threads(before)
    return {name: {"threads": a["threads"], "labelled_logits": a["labelled"], "compiled": ARMS[name][2],
                   "effective_tokens_per_s": a["tokens"] / a["seconds"], "tokens": a["tokens"],
                   "seconds": round(a["seconds"], 2), "warmup_step_s": round(a["setup_s"], 2)}
            for name, a in state.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="built data dir (naturelm data build); default: USPTO-50k pairs")
    parser.add_argument("--arms", default="v1,labelled,threads2,v2")
    parser.add_argument("--compile", action="store_true", help="add the v2_compile arm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per arm and round")
    parser.add_argument("--micro", type=int, default=16)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hf", action="store_true", help="also compare with HF Trainer (padded random batches)")
    add_output_args(parser)
    a = parser.parse_args()
    a.out = str(output_path(a, "train_throughput.json"))

    import torch

    from naturelm.model.configs import get_config, param_count
    from naturelm.train.data import SFTData, load_tokenizer
    from naturelm.train.config import load_config

    cfg = load_config(None, [f"data.dir={a.data}"] if a.data else [])
    tok = load_tokenizer(cfg)
    records = None if a.data else uspto_records(a.examples, a.seed)
    data = SFTData(a.data, "train", tok, a.max_length, a.micro, a.seed, max_examples=a.examples, records=records)
    arms = a.arms.split(",") + (["v2_compile"] if a.compile else [])
    unknown = [x for x in arms if x not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; known: {list(ARMS)}")
    if "v1" not in arms:
        arms = ["v1"] + arms
    load_before = os.getloadavg()
    result_arms = arms_interleaved(data, tok, arms, a.rounds, a.steps, a.micro, a.seed)
    base = result_arms["v1"]["effective_tokens_per_s"]
    model_cfg = get_config("tiny", tokenizer=tok)
    labelled_share = float(data.n_targets.sum() / (data.lengths - 1).sum())
    result = {
        "benchmark": "train_throughput",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "load_avg_1m_before_after": [load_before[0], os.getloadavg()[0]],
                    "note": "shared machine (about 8 agents on 2 cores): absolute tokens/s are contended; the arms "
                            "alternate round by round, so their ratios are the comparison"},
        "setup": {"model": "tiny", "params": param_count(model_cfg)["total_params"],
                  "data": a.data or "USPTO-50k train: retrosynthesis + forward instructions",
                  "examples": len(data), "mean_length": float(data.lengths.mean()),
                  "labelled_share_of_positions": labelled_share, "max_length": a.max_length,
                  "micro_batch": a.micro, "rounds": a.rounds, "steps_per_round": a.steps,
                  "padded_fraction": padded_fraction(data, 1 + a.rounds * a.steps)},
        "arms": result_arms,
        "ratio_vs_v1": {name: r["effective_tokens_per_s"] / base for name, r in result_arms.items()},
    }
    if a.hf:
        longest = hf_trainer(data, tok, 12, a.micro, a.max_length, a.seed, pad_to_max=False)
        result["hf_trainer_pad_longest"] = longest
        result["flops"] = {"matmul_peak_flops": matmul_peak(),
                           "model_flops_per_token": flops_per_token(model_cfg, float(data.lengths.mean()))}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
