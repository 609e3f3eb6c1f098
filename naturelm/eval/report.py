"""results.json -> report.md (a table per task, models side by side) and PNG plots (matplotlib, Agg)."""
from __future__ import annotations

import json
from pathlib import Path


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _metric_columns(rows: dict[str, dict]) -> list[str]:
    cols: list[str] = []
    for metrics in rows.values():
        cols += [c for c in metrics if c not in cols and c not in ("n", "error")]
    return cols + (["n"] if any("n" in m for m in rows.values()) else [])


def task_rows(doc: dict, task: str) -> dict[str, dict]:
    """{model: metrics} of one task, in model order."""
    return {m: tasks[task] for m, tasks in doc["results"].items() if task in tasks}


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def render_markdown(doc: dict, plots: dict[str, str] | None = None) -> str:
    """The Markdown report of a results document."""
    s = doc.get("settings", {})
    lines = ["# NatureLM evaluation", ""]
    lines.append(f"- models: {', '.join(f'`{m}`' for m in doc['results'])}")
    if s:
        lines.append(f"- limit: {s.get('limit')}, k: {s.get('k')}, rank: {s.get('rank')}, samples: {s.get('samples')}")
    data = doc.get("data", {})
    if data.get("dir"):
        lines.append(f"- data: `{data['dir']}` (card sha256 `{(data.get('card_sha256') or 'none')[:16]}`)")
    if doc.get("created"):
        lines.append(f"- created: {doc['created']}")
    for name, card in doc.get("oracles", {}).items():
        if "heldout_auroc" in card:
            lines.append(f"- oracle `{name}`: held-out AUROC {card['heldout_auroc']:.3f} "
                         f"({card['n_train']} train / {card['n_test']} test, {card['source']})")
        else:  # affinity regressors (protein_to_molecule)
            rho, r2 = card.get("heldout_spearman"), card.get("heldout_r2")
            lines.append(f"- oracle `{name}`: held-out Spearman {_num(rho)}, R2 {_num(r2)} "
                         f"({card['n_train']} train / {card['n_heldout']} held out)")
    for note in doc.get("notes", {}).get("_", []):
        lines.append(f"- **Note:** {note}")
    for task, info in doc.get("tasks", {}).items():
        rows = task_rows(doc, task)
        lines += ["", f"## {task}", ""]
        if info:
            lines.append(f"{info.get('n_examples')} examples, {info.get('candidates_per_input')} candidate(s) per input.")
            lines.append("")
        if not rows:
            lines.append("No model supports this task or it has no test records.")
        else:
            cols = _metric_columns(rows)
            wall = doc.get("wall_s", {})
            lines.append("| model | " + " | ".join(cols) + " | predict s |")
            lines.append("|---" * (len(cols) + 2) + "|")
            for model, metrics in rows.items():
                if "error" in metrics:
                    lines.append(f"| {model} | failed: {metrics['error']} |" + " |" * len(cols))
                    continue
                t = wall.get(model, {}).get(task, {}).get("predict")
                lines.append(f"| {model} | " + " | ".join(_fmt(metrics.get(c)) for c in cols) + f" | {_fmt(t)} |")
        for note in doc.get("notes", {}).get(task, []):
            lines += ["", f"Note: {note}"]
        if plots and task in plots:
            lines += ["", f"![{task}]({plots[task]})"]
    return "\n".join(lines) + "\n"


def plot_task(doc: dict, task: str, path: Path) -> bool:
    """A PNG for one task: top-k curves for ranked tasks, else grouped bars of the headline rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {m: r for m, r in task_rows(doc, task).items() if "error" not in r}
    info = doc.get("tasks", {}).get(task, {})
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ks = info.get("ks") or []
    if info.get("kind") == "ranked" and len(ks) > 1:
        for model, m in rows.items():
            ax.plot(ks, [m.get(f"top_{k}") or 0.0 for k in ks], marker="o", label=model)
        ax.set_xlabel("k")
        ax.set_ylabel("top-k accuracy")
        ax.set_xticks(ks)
    else:
        names = [h for h in info.get("headline", []) if any(isinstance(m.get(h), (int, float)) for m in rows.values())]
        if not names:
            plt.close(fig)
            return False
        width = 0.8 / len(rows)
        for j, (model, m) in enumerate(rows.items()):
            xs = [i + j * width for i in range(len(names))]
            ax.bar(xs, [m.get(h) or 0.0 for h in names], width=width, label=model)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names)
    ax.set_ylim(0, 1.05)
    ax.set_title(task)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(doc: dict, out: str | Path) -> Path:
    """Write OUT/report.md and OUT/plots/<task>.png; returns the report path."""
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots = {}
    for task in doc.get("tasks", {}):
        if plot_task(doc, task, out / "plots" / f"{task}.png"):
            plots[task] = f"plots/{task}.png"
    path = out / "report.md"
    path.write_text(render_markdown(doc, plots))
    return path


def merge_results(paths: list[str | Path]) -> dict:
    """Several results.json side by side; a model name seen twice gets its run folder's name appended."""
    merged: dict = {"results": {}, "wall_s": {}, "tasks": {}, "notes": {}, "oracles": {}, "sources": []}
    for p in map(Path, paths):
        doc = json.loads(p.read_text())
        merged["sources"].append({"path": str(p), "settings": doc.get("settings"), "data": doc.get("data")})
        for model, tasks in doc["results"].items():
            label = model if model not in merged["results"] else f"{model} ({p.parent.name})"
            merged["results"][label] = tasks
            merged["wall_s"][label] = doc.get("wall_s", {}).get(model, {})
        for task, info in doc.get("tasks", {}).items():
            merged["tasks"].setdefault(task, info)
        for task, notes in doc.get("notes", {}).items():
            merged["notes"].setdefault(task, [])
            merged["notes"][task] += [n for n in notes if n not in merged["notes"][task]]
        merged["oracles"].update(doc.get("oracles", {}))
    shas = {(s.get("data") or {}).get("card_sha256") for s in merged["sources"]}
    if len(shas) > 1:
        merged["notes"].setdefault("_", []).append("the compared runs used different data (card sha256 differ)")
    return merged


def compare(paths: list[str | Path], out: str | Path) -> Path:
    """Write OUT/results.json and OUT/report.md putting several runs side by side."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = merge_results(paths)
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    return write_report(doc, out)
