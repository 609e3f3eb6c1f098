"""Atomic, keep-last-N checkpoints of the full training state (model, optimizer, scheduler, RNG, step).

A checkpoint is `ROOT/step_0000040/` written as `ROOT/.tmp_step_0000040/` and renamed with `os.replace`
once complete, so a killed run leaves either a whole checkpoint or none. `accelerator.save_state` writes the
model / optimizer / registered scheduler and every process's RNG states (sharded under FSDP / ZeRO-3).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

STATE_FILE = "trainer_state.json"


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    found = []
    for d in root.glob("step_*") if root.is_dir() else []:
        if (d / STATE_FILE).is_file() and d.name[5:].isdigit():
            found.append((int(d.name[5:]), d))
    return sorted(found)


def save_checkpoint(accelerator, root: str | Path, step: int, state: dict, keep_last: int) -> Path:
    """Write the training state after `step` completed steps; all processes call this."""
    root = Path(root)
    final, tmp = root / f"step_{step:07d}", root / f".tmp_step_{step:07d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp_step_*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in list_checkpoints(root)[: -max(1, keep_last)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_latest(accelerator, root: str | Path) -> dict | None:
    """Restore the newest complete checkpoint into the prepared objects; returns its trainer state or None."""
    found = list_checkpoints(root)
    if not found:
        return None
    step, path = found[-1]
    accelerator.load_state(str(path))
    return json.loads((path / STATE_FILE).read_text())
