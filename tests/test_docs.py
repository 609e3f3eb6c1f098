"""Docs that run as written: every fenced block of README.md and docs/**/*.md is checked or run.

A block may be preceded by a marker comment, `<!-- docs-test: DIRECTIVE | DIRECTIVE ... -->`:
  output               the block shows output, a file listing or a layout: not run
  skip REASON          not run, for the reason given (cluster-only, downloads, placeholders ...)
  slow                 run only under `-m slow` (the default suite runs the unmarked blocks)
  replace OLD NEW      substitute before running (e.g. a doc's `runs/sft` -> the shipped checkpoint)
  drop TEXT            leave out the lines containing TEXT (e.g. a server that would never return)
  requires uspto50k    skipped when USPTO-50k is not found (../shared/data/uspto50k or $NATURELM_USPTO50K)
Unmarked shell and Python blocks run in the default suite, so they must be quick. Every `naturelm` command line
in every shell block (run or not) must parse against the real CLI (options and arguments exist, required ones are
given), and long commands must show `--limit` or state their time in a comment.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO, USPTO_DIR

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?:<!--\s*docs-test:(?P<marker>.*?)-->\s*\n)?^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.S | re.M)
SHELL, PYTHON = {"bash", "sh", "shell", "console"}, {"python", "py"}
DATA_LANGS = {"json", "yaml", "text", "txt", "toml"}
MODES = {"output", "skip", "slow"}
TIME = re.compile(r"\b\d+(\.\d+)?\s*(s|sec|seconds?|min|minutes?|h|hours?|CPU-hours?)\b")
LONG = re.compile(r"^naturelm (eval(?! (--list|compare))|data build|train \w+)")
MAX_QUICK_STEPS = 1000  # a training config with at most this many steps counts as quick


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    body: str
    modes: set[str] = field(default_factory=set)
    reason: str = ""
    replace: list[tuple[str, str]] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def kind(self) -> str:
        if self.lang in SHELL:
            return "shell"
        if self.lang in PYTHON:
            return "python"
        if self.lang in DATA_LANGS:
            return "data"
        return "unknown"

    def runnable(self) -> str:
        text = self.body
        for old, new in self.replace:
            text = text.replace(old, new)
        return "\n".join(line for line in text.splitlines() if not any(d in line for d in self.drop))


def parse_marker(block: Block, marker: str) -> None:
    for directive in filter(None, (d.strip() for d in marker.split("|"))):
        words = shlex.split(directive)
        head = words[0]
        if head in MODES:
            block.modes.add(head)
            if head == "skip":
                block.reason = " ".join(words[1:])
        elif head == "replace" and len(words) == 3:
            block.replace.append((words[1], words[2]))
        elif head == "drop" and len(words) == 2:
            block.drop.append(words[1])
        elif head == "requires" and words[1:] == ["uspto50k"]:
            block.requires.append("uspto50k")
        else:
            raise ValueError(f"unknown docs-test directive {directive!r}")


def blocks() -> list[Block]:
    out = []
    for path in DOCS:
        text = path.read_text()
        for m in FENCE.finditer(text):
            b = Block(path, text[:m.start("body")].count("\n"), m.group("lang").lower(), m.group("body"))
            parse_marker(b, m.group("marker") or "")
            out.append(b)
    return out


BLOCKS = blocks()


def shell_commands(body: str) -> list[str]:
    """Command lines of a shell block: continuations joined, comments and blank lines dropped."""
    lines, current = [], ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        code = current.split(" #")[0].strip() if not current.lstrip().startswith("#") else ""
        if code:
            lines.append((code, current))
        current = ""
    return lines


def naturelm_argv(command: str) -> list[str] | None:
    """The `naturelm ...` arguments of a command line (also `python -m naturelm.X.cli` and `accelerate launch ...
    -m naturelm.train.cli`), None for other commands. Placeholders in brackets ([--k 10]) are dropped."""
    command = re.sub(r"\s\[[^\]]*\]", "", command)
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if words and words[0] == "naturelm":
        return words[1:]
    for i, w in enumerate(words[:-1]):
        if w == "-m" and words[i + 1].startswith("naturelm"):
            module = words[i + 1]
            prefix = {"naturelm.cli": [], "naturelm.train.cli": ["train"], "naturelm.serve.cli": ["serve"],
                      "naturelm.eval.cli": ["eval"], "naturelm.data.cli": ["data"]}.get(module)
            return None if prefix is None else prefix + words[i + 2:]
    return None


def test_every_block_is_run_checked_or_skipped_with_a_reason():
    assert len(BLOCKS) > 20
    for b in BLOCKS:
        if "skip" in b.modes:
            assert b.reason, f"{b.id}: `skip` needs a reason"
        if b.kind == "unknown":
            assert b.modes & {"output", "skip"}, (
                f"{b.id}: a block without a language must be marked `<!-- docs-test: output -->` or `skip REASON`, "
                "or get a language (bash, python, json) so that it is run or checked")


def _click_command():
    import typer

    from naturelm.cli import app

    return typer.main.get_command(app)


COMMAND_LINES = [(b, code, full) for b in BLOCKS if b.kind == "shell" for code, full in shell_commands(b.runnable())]


@pytest.mark.parametrize("block,code,full", [c for c in COMMAND_LINES if naturelm_argv(c[1]) is not None],
                         ids=lambda x: x.id if isinstance(x, Block) else None)
def test_documented_naturelm_commands_parse(block, code, full):
    """Options and arguments exist and required ones are given (the CLI's own parser, nothing runs)."""
    import click

    args = [re.sub(r"\$\{?\w+\}?", "0", a) for a in naturelm_argv(code)]  # $RANK, $HOST placeholders
    command = _click_command()
    while isinstance(command, click.Group) and args and args[0] in command.commands:
        command, args = command.commands[args[0]], args[1:]
    if "..." in args:
        pytest.skip(f"{block.id}: elided arguments")
    try:
        command.make_context(command.name, list(args))
    except click.exceptions.Exit:
        pass
    except click.UsageError as exc:
        pytest.fail(f"{block.id}: `{code}` does not parse: {exc.format_message()}")


@pytest.mark.parametrize("block,code,full", [c for c in COMMAND_LINES if LONG.match(c[1])],
                         ids=lambda x: x.id if isinstance(x, Block) else None)
def test_long_commands_show_limit_or_state_their_time(block, code, full):
    if " train " in f" {code} " and _config_steps(code) <= MAX_QUICK_STEPS:
        return
    assert "--limit" in code or "max_steps" in code or TIME.search(full) or TIME.search(block.body.split(code)[0][-300:]), (
        f"{block.id}: `{code}` takes long: show --limit (or train.max_steps) or state its time in a comment")


def _config_steps(code: str) -> float:
    """train.max_steps of a `naturelm train ... --config F` line (an override with --set wins; inf without)."""
    import yaml

    words = shlex.split(code)
    for i, w in enumerate(words[:-1]):
        if w == "--set" and words[i + 1].startswith("train.max_steps="):
            return float(words[i + 1].split("=", 1)[1])
    if "--config" not in words:
        return float("inf")
    path = REPO / words[words.index("--config") + 1]
    if not path.is_file():
        return float("inf")
    steps = (yaml.safe_load(path.read_text()) or {}).get("train", {}).get("max_steps")
    return float(steps) if steps else float("inf")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "python"], ids=lambda b: b.id)
def test_python_blocks_compile(block):
    compile(block.runnable(), block.id, "exec")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "json" and "skip" not in b.modes], ids=lambda b: b.id)
def test_json_blocks_parse(block):
    import json

    json.loads(block.runnable().replace("…", ""))


def _run(block: Block, tmp_path: Path, timeout: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if "uspto50k" in block.requires:
        uspto = Path(env.get("NATURELM_USPTO50K") or USPTO_DIR)
        if not uspto.exists():
            pytest.skip(f"{block.id} needs USPTO-50k ({uspto} not found; set NATURELM_USPTO50K)")
        env["NATURELM_USPTO50K"] = str(uspto)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    text = block.runnable().replace("$TMP", str(tmp_path))
    if block.kind == "python":
        argv = [sys.executable, "-c", text]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", text]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{block.id} failed ({done.returncode}):\n{text}\n--- stderr\n{done.stderr[-3000:]}"


RUN = [b for b in BLOCKS if b.kind in ("shell", "python") and not b.modes & {"output", "skip"}]


@pytest.mark.parametrize("block", [b for b in RUN if "slow" not in b.modes], ids=lambda b: b.id)
def test_quick_blocks_run_as_written(block, tmp_path):
    _run(block, tmp_path, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in RUN if "slow" in b.modes], ids=lambda b: b.id)
def test_slow_blocks_run_as_written(block, tmp_path):
    _run(block, tmp_path, timeout=3600)


def test_a_build_records_whether_it_reproduces_the_shipped_card(tmp_path):
    import json

    from naturelm.data.card import compare_builds, record_reproduction

    shipped = {"sha256": {"all": "aa", "files": {"x": "1", "y": "2"}}}
    assert compare_builds(shipped, shipped)["reproduced"] is True
    other = {"sha256": {"all": "bb", "files": {"x": "1", "y": "3", "z": "4"}}}
    got = compare_builds(shipped, other)
    assert got["reproduced"] is False and got["differing_files"] == ["y", "z"]
    (tmp_path / "shipped.json").write_text(json.dumps(shipped))
    (tmp_path / "card.json").write_text(json.dumps(other))
    record_reproduction(tmp_path / "shipped.json", tmp_path / "card.json")
    assert json.loads((tmp_path / "card.json").read_text())["reproduction"]["built_sha256"] == "bb"
    card = json.loads((REPO / "checkpoints" / "naturelm-tiny" / "data_card.json").read_text())
    assert card["reproduction"]["note"]  # the shipped card says whether (and why not) `make naturelm-tiny` reproduces it
