"""Run logging: tqdm bar, `metrics.jsonl`, TensorBoard events and the loss-curve PNG."""

from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def read_metrics(out: str | Path) -> list[dict]:
    """The logged rows of a run directory."""
    path = Path(out) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RunLog:
    """Logs on the main process only; on resume, rows after the restored step are dropped."""

    def __init__(self, out: str | Path, enabled: bool, total_steps: int, start_step: int = 0,
                 tensorboard: bool = True, desc: str = "train"):
        self.out, self.enabled = Path(out), enabled
        self.bar = self.writer = None
        if not enabled:
            return
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.out) if r["step"] <= start_step]
        (self.out / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept))
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"), purge_step=start_step + 1)
        self.bar = tqdm(total=total_steps, initial=start_step, desc=desc, dynamic_ncols=True)

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.out / METRICS_FILE, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{key}", value, row["step"])
        shown = {k: (f"{v:.4f}" if isinstance(v, float) and k != "tokens_per_s" else v)
                 for k, v in row.items() if k in ("loss", "val_loss", "tokens_per_s")}
        if "tokens_per_s" in shown:
            shown["tokens_per_s"] = f"{row['tokens_per_s']:.0f}"
        self.bar.set_postfix(shown, refresh=False)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if not self.enabled:
            return
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def plot_losses(out: str | Path, path: str | Path | None = None) -> Path | None:
    """Loss (and validation loss) against step as a PNG; None when nothing was logged."""
    rows = read_metrics(out)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path or Path(out) / "loss.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label="train")
    val = [r for r in rows if "val_loss" in r]
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="valid")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
