"""Atomic, keep-last-N checkpoints of the full training state (model, optimizer, scheduler, RNG, step), pickle-free.

A checkpoint is `ROOT/step_0000040/` written as `ROOT/.tmp_step_0000040/` and renamed with `os.replace`
once complete, so a killed run leaves either a whole checkpoint or none. `trainer_state.json` (written last) says
which layout the folder holds:

- `"format": "safetensors-json-1"` (one process or DDP: the state is replicated): `model.safetensors`,
  `optimizer.safetensors` + `optimizer.json` (tensors / everything else of the optimizer's state_dict),
  `scheduler.json`, `scaler.json` (fp16 only) and per process `rng_RANK.json` + `rng_RANK.safetensors` (Python,
  NumPy, torch and accelerator RNG states, accelerate's micro-step counter). Nothing is unpickled on resume:
  safetensors and JSON only, and a state file that does not match the live objects raises ConfigError.
- `"format": "accelerate"` (FSDP / DeepSpeed: sharded state): `accelerator.save_state`, whose optimizer, RNG and
  engine files are torch pickles (loaded by accelerate with `weights_only=True`). Not pickle-free; not verified
  here (no GPU).

A checkpoint folder without a format (written before pickle-free checkpoints) is refused, never loaded.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from naturelm.errors import ConfigError

STATE_FILE = "trainer_state.json"
FORMAT = "safetensors-json-1"
SHARDED_ENGINES = ("FSDP", "DEEPSPEED")


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    found = []
    for d in root.glob("step_*") if root.is_dir() else []:
        if (d / STATE_FILE).is_file() and d.name[5:].isdigit():
            found.append((int(d.name[5:]), d))
    return sorted(found)


def _sharded(accelerator) -> bool:
    return accelerator.distributed_type.name in SHARDED_ENGINES


def save_checkpoint(accelerator, root: str | Path, step: int, state: dict, keep_last: int,
                    model, optimizer, scheduler) -> Path:
    """Write the training state after `step` completed steps; all processes call this."""
    root = Path(root)
    final, tmp = root / f"step_{step:07d}", root / f".tmp_step_{step:07d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp_step_*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    if _sharded(accelerator):
        fmt = "accelerate"
        accelerator.save_state(str(tmp))
    else:
        fmt = FORMAT
        _save_rng(accelerator, tmp)
        if accelerator.is_main_process:
            _save_replicated(accelerator, tmp, model, optimizer)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json(tmp / "scheduler.json", scheduler.state_dict())
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, "format": fmt, "processes": accelerator.num_processes,
                                                  **state}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in list_checkpoints(root)[: -max(1, keep_last)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_latest(accelerator, root: str | Path, model, optimizer, scheduler) -> dict | None:
    """Restore the newest complete checkpoint into the prepared objects; returns its trainer state or None."""
    found = list_checkpoints(root)
    if not found:
        return None
    _, path = found[-1]
    state = _read_json(path / STATE_FILE)
    fmt = state.get("format")
    if fmt == "accelerate" and _sharded(accelerator):
        accelerator.load_state(str(path))
    elif fmt == FORMAT and not _sharded(accelerator):
        if state.get("processes") != accelerator.num_processes:
            raise ConfigError(f"checkpoint {path} was written by {state.get('processes')} processes; resume it "
                              f"with the same number (this run has {accelerator.num_processes})")
        _load_replicated(accelerator, path, model, optimizer)
        _load_rng(accelerator, path)
    else:
        raise ConfigError(f"checkpoint {path} has format {fmt!r}, which this run ({accelerator.distributed_type.name})"
                          f" cannot resume (pickle-free format {FORMAT!r} for one process / DDP, 'accelerate' for "
                          "FSDP / DeepSpeed); older checkpoints are never unpickled: delete it or start a new --out")
    scheduler.load_state_dict(_read_json(path / "scheduler.json"))
    return state


# ---- one process / DDP: safetensors + JSON --------------------------------------------------------------------------

def _save_replicated(accelerator, folder: Path, model, optimizer) -> None:
    from safetensors.torch import save_file, save_model

    save_model(accelerator.unwrap_model(model), str(folder / "model.safetensors"))
    tensors, rest = _split_tensors(optimizer.state_dict())
    save_file(tensors, str(folder / "optimizer.safetensors"))
    _write_json(folder / "optimizer.json", rest)
    if accelerator.scaler is not None:
        _write_json(folder / "scaler.json", accelerator.scaler.state_dict())


def _load_replicated(accelerator, folder: Path, model, optimizer) -> None:
    from safetensors.torch import load_file, load_model

    # read on the CPU; load_state_dict copies into the parameters wherever they live
    missing, unexpected = load_model(accelerator.unwrap_model(model), str(folder / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise ConfigError(f"checkpoint {folder} does not fit this model: missing {sorted(missing)[:5]}, "
                          f"unexpected {sorted(unexpected)[:5]}")
    live = optimizer.state_dict()
    saved = _join_tensors(load_file(str(folder / "optimizer.safetensors")), _read_json(folder / "optimizer.json"))
    if len(saved.get("param_groups", [])) != len(live["param_groups"]):
        raise ConfigError(f"checkpoint {folder}: optimizer has {len(saved.get('param_groups', []))} parameter groups,"
                          f" this run {len(live['param_groups'])}")
    for mine, theirs in zip(live["param_groups"], saved["param_groups"]):  # JSON has no tuples (AdamW betas)
        for key, value in mine.items():
            if isinstance(value, tuple) and isinstance(theirs.get(key), list):
                theirs[key] = tuple(theirs[key])
    optimizer.load_state_dict(saved)
    if accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(_read_json(folder / "scaler.json"))


def _save_rng(accelerator, folder: Path) -> None:
    import numpy as np
    import torch
    from safetensors.torch import save_file

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    rank = accelerator.process_index
    _write_json(folder / f"rng_{rank}.json", {
        "python": [version, list(internal), gauss], "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "accelerator_step": accelerator.step})
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(tensors, str(folder / f"rng_{rank}.safetensors"))


def _load_rng(accelerator, folder: Path) -> None:
    import numpy as np
    import torch
    from safetensors.torch import load_file

    rank = accelerator.process_index
    saved = _read_json(folder / f"rng_{rank}.json")
    tensors = load_file(str(folder / f"rng_{rank}.safetensors"))
    try:
        version, internal, gauss = saved["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = saved["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(tensors["torch"])
        if torch.cuda.is_available():
            torch.cuda.set_rng_state_all([tensors[f"cuda_{i}"] for i in range(torch.cuda.device_count())])
        accelerator.step = int(saved["accelerator_step"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(f"checkpoint {folder}: bad RNG state in rng_{rank}.json/.safetensors ({e})") from None


def _split_tensors(state, prefix: str = ""):
    """(flat {path: tensor}, the same structure with each tensor replaced by {"tensor": path}); dict keys become
    strings (JSON), so integer keys are marked {"int_keys": true}."""
    import torch

    if isinstance(state, torch.Tensor):
        return {prefix: state.detach().contiguous()}, {"tensor": prefix}
    if isinstance(state, dict):
        tensors, rest = {}, {}
        for k, v in state.items():
            t, r = _split_tensors(v, f"{prefix}.{k}" if prefix else str(k))
            tensors.update(t)
            rest[str(k)] = r
        if any(isinstance(k, int) for k in state):
            return tensors, {"int_keys": True, "items": rest}
        return tensors, {"items": rest}
    if isinstance(state, (list, tuple)):
        tensors, rest = {}, []
        for i, v in enumerate(state):
            t, r = _split_tensors(v, f"{prefix}.{i}")
            tensors.update(t)
            rest.append(r)
        return tensors, {"list": rest}
    if state is None or isinstance(state, (bool, int, float, str)):
        return {}, {"value": state}
    raise ConfigError(f"optimizer state {prefix!r} holds a {type(state).__name__}, which a checkpoint cannot store")


def _join_tensors(tensors: dict, rest):
    if not isinstance(rest, dict):
        raise ConfigError("bad optimizer.json in the checkpoint")
    if "tensor" in rest:
        return tensors[rest["tensor"]]
    if "items" in rest:
        conv = int if rest.get("int_keys") else str
        return {conv(k): _join_tensors(tensors, v) for k, v in rest["items"].items()}
    if "list" in rest:
        return [_join_tensors(tensors, v) for v in rest["list"]]
    return rest["value"]


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"checkpoint file {path} is missing or not JSON ({e})") from None
