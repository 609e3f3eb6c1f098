"""The measured tables of docs/inference.md's CPU section, written from bench/results/cpu_inference.json.

The block `<!-- generated:cpu-inference -->` of docs/inference.md is written from the JSON (bench/doc_blocks.py),
so the numbers the docs quote are the JSON's, never retyped.

    python bench/cpu_inference_doc.py            # print the block
    python bench/cpu_inference_doc.py --check    # exit 1 if docs/inference.md's block differs from the JSON
    python bench/cpu_inference_doc.py --write    # rewrite it
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/doc_blocks.py, also when imported
import doc_blocks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cpu_inference.json"
DOC = ROOT / "docs" / "inference.md"
NAMES = {"hf_fp32": "HF `generate` fp32", "ours_fp32": "ours fp32", "ours_fp16": "ours fp16",
         "ours_int8": "ours int8", "ours_int8dyn": "ours int8-dynamic", "ours_int4": "ours int4",
         "ours_gguf_f16": "ours on llama.cpp, gguf-f16", "ours_gguf_q8_0": "ours on llama.cpp, gguf-q8_0",
         "ours_gguf_q4_0": "ours on llama.cpp, gguf-q4_0"}
QUANTIZED = tuple(p for p in NAMES if p not in ("hf_fp32", "ours_fp32"))
MODES = [("greedy_b1", "greedy batch 1"), ("greedy_b8", "greedy batch 8"), ("beam10", "beam 10 (like for like)"),
         ("beam10_distinct", "beam 10, 20 beams (API)"), ("sample10", "sampling n=10")]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def throughput(section: dict, extra: bool = False) -> list[str]:
    """Ratios to HF fp32: wall clock, CPU time in parentheses; HF's row gives its absolute tokens/s."""
    paths = section["paths"]
    cols = [label for _, label in MODES] + (["batch 1, decode only", "peak RSS", "fraction of bandwidth bound"]
                                           if extra else [])
    lines = ["| path | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for p, name in NAMES.items():
        if p not in paths:
            continue
        row, vs = paths[p], paths[p]["vs_hf_fp32"]
        cells = []
        for mode, _ in MODES:
            if p == "hf_fp32":
                cells.append("—" if mode == "beam10_distinct" else
                             f"1.00× ({row[f'{mode}_tokens_per_s']:.2f} tok/s)")
            elif f"{mode}_tokens_per_s" not in vs:
                cells.append("not run")
            else:
                cells.append(f"{vs[f'{mode}_tokens_per_s']:.2f}× ({vs[f'{mode}_tokens_per_cpu_s']:.2f}×)")
        if extra:
            cells.append(f"{vs['greedy_b1_decode_tokens_per_s']:.2f}×")
            cells.append(f"{vs['peak_rss']:.2f}× ({_gb(row['peak_rss_bytes'])})")
            cells.append(f"{row['fraction_of_bound']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def agreement(section: dict, retro: bool) -> list[str]:
    a = section["greedy_token_agreement_with_fp32"]
    cols = ["teacher-forced top-1", "free-running, same position"]
    if retro:
        cols += [f"retro top-1 = fp32 ({section['retro_products']} products)", "retro top-1 valid"]
    lines = ["| path | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for p in [p for p in QUANTIZED if p in a["teacher_forced_top1"]]:
        cells = [_pct(a["teacher_forced_top1"][p]), _pct(a["free_running_position_match"][p])]
        if retro:
            cells += [_pct(section["retro_top1_agreement_with_fp32"][p]), _pct(section["retro_top1_valid"][p])]
        lines.append(f"| {NAMES[p]} | " + " | ".join(cells) + " |")
    if retro:
        lines.append(f"| ours fp32 | — | — | — | {_pct(section['retro_top1_valid']['ours_fp32'])} |")
    return lines


def settings_line(s: dict) -> str:
    load = s.get("load_average_at_start") or [float("nan")]
    end = s.get("load_average_at_end") or s.get("load_average_now") or [float("nan")]
    return (f"{s.get('rounds')} rounds planned, torch {s.get('torch')}, CPU affinity {s.get('cpu_affinity')}, "
            f"load average {load[0]:.1f} at start and {end[0]:.1f} at the end" + (f"; {s['note']}" if s.get("note") else ""))


def _threads(section: dict, asked) -> str:
    """The torch threads a section ran with (recorded since the runs pass them to NatureLM.load)."""
    n = section.get("threads", asked)
    return f"{n} thread" + ("s" if n != 1 else "")


def render(data: dict) -> str:
    out = ["<!-- written by bench/cpu_inference_doc.py from bench/results/cpu_inference.json -->", ""]
    settings = data.get("settings_by_section", {})
    tiny = data.get("tiny")
    bigs = ["1b"] * ("1b" in data) + sorted(k for k in data if k.startswith("1b_"))
    if tiny:
        s = settings.get("tiny", {})
        out += [f"**NatureLM-tiny** ({len(tiny['rounds'])} rounds, {s.get('tiny_tokens')} new tokens, "
                f"{_threads(tiny, s.get('tiny_threads'))}): ratio to HF `generate` fp32 eager, wall clock (CPU "
                "time of the process in parentheses)", ""]
        out += throughput(tiny) + [""]
        out += ["Agreement with our fp32 greedy answers (trained weights; 20 prompts × up to "
                f"{tiny['greedy_token_agreement_with_fp32']['tokens']} tokens; both definitions in the JSON's "
                "`definitions`):", ""]
        out += agreement(tiny, retro="retro_products" in tiny) + [""]
    for name in bigs:
        big, s = data[name], settings.get(name, {})
        load = big["loading"]
        out += [f"**1B-shaped Llama** (vocabulary 130,239, random weights, seed 0; {len(big.get('rounds', []))} "
                f"rounds, {s.get('big_tokens')} new tokens, {_threads(big, s.get('big_threads'))} for HF and ours, "
                "short raw prompts):", ""]
        out += ["| path | weights in memory | bytes read per decode step | load (+ quantize) |", "|---|---|---|---|"]
        for p in [p for p in ("ours_fp32",) + QUANTIZED if p in load]:
            step = big.get("paths", {}).get(p, {}).get("weight_bytes_per_step")
            out.append(f"| {NAMES[p].replace('ours ', '')} | {_gb(load[p]['model_bytes'])} | "
                       f"{_gb(step) if step else '—'} | {load[p]['load_s']:.0f} s |")
        out += [""]
        if "paths" in big:
            out += ["Ratio to HF `generate` fp32 eager, wall clock (CPU time in parentheses); the fraction of the "
                    "bandwidth bound is batch-1 decode tokens/s ÷ (read bandwidth measured just before ÷ weight "
                    "bytes per step):", ""]
            out += throughput(big, extra=True) + [""]
        if "greedy_token_agreement_with_fp32" in big:
            out += ["Agreement with fp32 on the random 1B (meaningless as a quality measure: "
                    f"{big['greedy_token_agreement_with_fp32'].get('note', '')}):", ""]
            out += agreement(big, retro=False) + [""]
        else:
            out += ["Agreement on the random 1B: not measured in this run (see the notes below).", ""]
    for name in ["tiny"] + bigs:
        for key, note in (data.get(name) or {}).items():
            if key.endswith("_note") and key != "peak_rss_note" and isinstance(note, str):
                out += [f"- {name}, {key.replace('_', ' ')}: {note}"]
    for name in ["tiny"] + bigs:
        if name in settings:
            out += [f"- {name}: {settings_line(settings[name])}"]
    return "\n".join(out) + "\n\n"


if __name__ == "__main__":
    doc_blocks.cli(__doc__, DOC, lambda: {"cpu-inference": render(json.loads(RESULTS.read_text()))},
                   "bench/cpu_inference_doc.py")
