"""SFT training throughput of the tiny config on CPU: our loop vs a padded HF Trainer baseline, same run.

Measures, on the same instruction records, model, batch size and thread count:
- effective (non-padding) tokens/s of our length-bucketed SFT loop (`naturelm.train`) and of HF `Trainer`
  with random batches padded to the longest sequence (its default) and padded to `max_length` (fully naive);
- achieved model FLOP/s (6·N per token + attention) against the fp32 matmul peak measured in this run;
- peak resident memory (RSS) of each phase.

    python bench/train_throughput.py --data data/tiny --steps 12
Writes bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

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


def ours(data_dir: Path, steps: int, micro: int, n_examples: int, max_length: int, seed: int) -> dict:
    """Our loop on length-bucketed batches; timing from its per-step metrics."""
    from naturelm.train.config import load_config
    from naturelm.train.loop import run
    from naturelm.train.metrics import read_metrics

    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(None, [f"data.dir={data_dir}", f"data.max_examples={n_examples}", f"data.max_length={max_length}",
                                 f"seed={seed}", "model.config=tiny", f"train.max_steps={steps}",
                                 f"train.micro_batch_size={micro}", "train.warmup_steps=1", "train.lr=1e-3",
                                 "ckpt.every=0", "log.eval_every=0", "log.tensorboard=false", "log.plot=false"])
        with PeakRSS() as mem:
            run("sft", cfg, out)
        rows = read_metrics(out)
    step_tokens = [r["tokens"] - (rows[i - 1]["tokens"] if i else 0) for i, r in enumerate(rows)]
    timed = range(WARMUP, len(rows))
    tokens = sum(step_tokens[i] for i in timed)
    seconds = sum(step_tokens[i] / rows[i]["tokens_per_s"] for i in timed)
    return {"effective_tokens_per_s": tokens / seconds, "timed_steps": len(timed), "tokens": tokens,
            "seconds": seconds, "peak_rss_mb": mem.peak_mb}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "tiny"), help="built data dir (naturelm data build)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--micro", type=int, default=16)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput.json"))
    a = parser.parse_args()

    import torch

    from naturelm.model.configs import get_config, param_count
    from naturelm.train.data import SFTData, load_tokenizer
    from naturelm.train.config import load_config

    cfg = load_config(None, [f"data.dir={a.data}"])
    tok = load_tokenizer(cfg)
    data = SFTData(a.data, "train", tok, a.max_length, a.micro, a.seed, max_examples=a.examples)
    peak = matmul_peak()
    ours_r = ours(Path(a.data), a.steps, a.micro, a.examples, a.max_length, a.seed)
    ours_r["padded_fraction"] = padded_fraction(data, a.steps)
    longest = hf_trainer(data, tok, a.steps, a.micro, a.max_length, a.seed, pad_to_max=False)
    to_max = hf_trainer(data, tok, a.steps, a.micro, a.max_length, a.seed, pad_to_max=True)
    model_cfg = get_config("tiny", tokenizer=tok)
    fpt = flops_per_token(model_cfg, float(data.lengths.mean()))
    result = {
        "benchmark": "train_throughput",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "load_avg_1m": os.getloadavg()[0]},
        "setup": {"model": "tiny", "params": param_count(model_cfg)["total_params"],
                  "examples": len(data), "mean_length": float(data.lengths.mean()), "max_length": a.max_length,
                  "micro_batch": a.micro, "steps": a.steps, "timed_steps": a.steps - WARMUP, "data": str(a.data)},
        "ours_bucketed": ours_r,
        "hf_trainer_pad_longest": longest,
        "hf_trainer_pad_max_length": to_max,
        "ratio_effective_tokens_per_s": {
            "vs_pad_longest": ours_r["effective_tokens_per_s"] / longest["effective_tokens_per_s"],
            "vs_pad_max_length": ours_r["effective_tokens_per_s"] / to_max["effective_tokens_per_s"]},
        "flops": {"matmul_peak_flops": peak, "model_flops_per_token": fpt,
                  "ours_achieved_flops": fpt * ours_r["effective_tokens_per_s"],
                  "ours_fraction_of_peak": fpt * ours_r["effective_tokens_per_s"] / peak,
                  "hf_pad_longest_fraction_of_peak": fpt * longest["effective_tokens_per_s"] / peak},
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
