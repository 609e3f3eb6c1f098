"""2 processes on CPU (torchrun, gloo) give the same losses as 1 process with the same global batch."""

from __future__ import annotations

import subprocess
import sys

from test_train_data import make_data
from test_train_loop import REPO, env1, recipe, run_inprocess


def test_two_processes_match_one_process(tmp_path):
    from naturelm.train.metrics import read_metrics

    data = make_data(tmp_path / "data", n_mols=80)
    # SFT: variable-length, padded pairs, so the token-mean must be global, not a mean of per-process means
    cfg = recipe(tmp_path / "r.yaml", data, train={"max_steps": 3, "micro_batch_size": 2}, log={"eval_every": 0},
                 ckpt={"every": 0})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "naturelm.train.cli", "sft", "--config", str(cfg), "--out", str(tmp_path / "two")]
    done = subprocess.run(cmd, cwd=REPO, env=env1(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = run_inprocess("sft", cfg, tmp_path / "one", ["train.grad_accum=2"])  # 1 x 2 x 2 = 2 x 1 x 2
    two, one = read_metrics(tmp_path / "two"), read_metrics(tmp_path / "one")
    assert summary["processes"] == 1 and '"processes": 2' in (tmp_path / "two" / "run.json").read_text()
    assert [r["step"] for r in two] == [r["step"] for r in one] == [1, 2, 3]
    for a, b in zip(two, one):
        assert abs(a["loss"] - b["loss"]) < 1e-5 and a["tokens"] == b["tokens"]
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-4
