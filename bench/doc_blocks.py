"""Blocks of a markdown document generated from the committed bench/results JSON, so numbers are never retyped.

A block is the text between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`. A writer (bench/tiny_card.py
for docs/model-card.md, bench/cpu_inference_doc.py for docs/inference.md) renders each of its blocks from JSON and
hands them to `cli`, which prints them, rewrites them in place (`--write`) or exits 1 naming each block that differs
from its JSON (`--check`, run by the tests).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

from naturelm.errors import DataFileError

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)


def replace(text: str, blocks: dict[str, str], where: str) -> tuple[str, list[str]]:
    """`text` with each block's body replaced by `blocks[name]`, and the names of the blocks whose text changed.
    Every block of the document needs a body and every body a block (DataFileError naming `where` otherwise)."""
    found = [m.group("name") for m in MARKER.finditer(text)]
    unknown, absent = sorted(set(found) - set(blocks)), sorted(set(blocks) - set(found))
    if unknown or absent:
        raise DataFileError(where, f"generated blocks without a writer: {unknown}; written blocks without a place: "
                                   f"{absent}")
    changed = []

    def fill(m: re.Match) -> str:
        if blocks[m.group("name")] != m.group("body"):
            changed.append(m.group("name"))
        return m.group(1) + blocks[m.group("name")] + m.group(4)

    return MARKER.sub(fill, text), changed


def cli(description: str, doc: Path, render: Callable[[], dict[str, str]], writer: str,
        argv: list[str] | None = None) -> None:
    """Print the blocks, or `--write [DOC]` them into DOC, or `--check [DOC]` that DOC holds them (exit 1 if not)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    shown_default = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc
    ap.add_argument("--check", nargs="?", const=doc, type=Path, metavar="DOC",
                    help=f"exit 1 if a block of DOC (default {shown_default}) differs from its JSON")
    ap.add_argument("--write", nargs="?", const=doc, type=Path, metavar="DOC",
                    help=f"rewrite the blocks of DOC (default {shown_default}) from the JSON")
    args = ap.parse_args(argv)
    blocks = render()
    if not (args.check or args.write):
        for name, body in blocks.items():
            print(f"<!-- generated:{name} -->\n{body}<!-- /generated:{name} -->\n")
        return
    path = args.write or args.check
    shown = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
    text, changed = replace(path.read_text(), blocks, str(shown))
    if args.write:
        path.write_text(text)
        print(f"{shown}: rewrote {', '.join(changed) or 'nothing (already up to date)'}")
    elif changed:
        sys.exit(f"{shown}: blocks differ from bench/results: {', '.join(changed)} (python {writer} --write {shown})")
    else:
        print(f"{shown}: every block matches bench/results")
