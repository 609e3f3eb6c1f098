"""Render the data tables of the NatureLM-tiny model card from the committed results JSON.

    python bench/tiny_card.py                              # print every table
    python bench/tiny_card.py --check                      # exit 1 naming each block of the card that differs
    python bench/tiny_card.py --write docs/model-card.md   # rewrite the blocks in place

A block is the text between `<!-- card:NAME -->` and `<!-- /card:NAME -->` in docs/model-card.md; TABLES below
says what each holds, and is the whole spec. A row is a tuple of cell templates: `{SOURCE/key/key...:FORMAT}` reads
one value, where SOURCE names a committed file and a place in it (SOURCES), the keys walk the JSON from there and
FORMAT is a Python format spec (`.2f`; `.0%`: 0.82 -> 82%) or one of FORMATS (`pct1`: 0.397 -> 39.7; `minutes`).
A `*` in the last key matches several keys, formatted by `min.2f` / `max.2f`. Negative numbers print with U+2212,
as the card writes them. Text outside braces is copied as is (row labels, the stage D column, targets, bold). A row
may instead be a function of `get` (a value computed from several keys). A missing key or a null raises
DataFileError naming the file and the key: no cell is ever left blank or made up.

After a retraining: point SOURCES at the new runs, edit the rows whose labels or judgements changed, then --write.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import re
import string
import sys
from pathlib import Path

from naturelm.errors import ConfigError, DataFileError

REPO = Path(__file__).resolve().parents[1]
RESULTS = "bench/results"
CARD = REPO / "docs" / "model-card.md"

# name: (file under bench/results, path inside it). A cell {name/k1/k2} reads file[path...][k1][k2].
SOURCES = {
    "retro": ("retro_ranking_test.json", "top_k"),  # bench/retro_ranking.py --split test --weight 3.0
    "t07": ("naturelm_tiny_eval.json", "runs/eval-tasks/results/naturelm-tiny"),  # T = 0.7, 200 samples
    "t05": ("naturelm_tiny_eval.json", "runs/eval-t05/results/naturelm-tiny"),  # --temperature 0.5
    "p2m": ("naturelm_tiny_eval.json", "runs/eval-p2m/results/naturelm-tiny"),
    "t100": ("naturelm_tiny_eval.json", "runs/eval-tasks100/results/naturelm-tiny"),
    "fwd": ("naturelm_tiny_eval.json", "runs/eval-fwd/results/naturelm-tiny"),
    "naming": ("naturelm_tiny_eval.json", "runs/eval-naming/results"),  # the model and the naming tools
    "curve": ("tiny_curve.json", "rows"),
    "leaked": ("retrosim_uspto50k_only-leaked.json", ""),  # standard index, the 91 leaked test reactions
    "leakfree": ("retrosim_uspto50k_leak-free_only-leaked.json", ""),
    "full": ("retrosim_uspto50k.json", ""),  # the full test set (its n_test)
}

TOPK = ("top_1", "top_3", "top_5", "top_10")  # bench/retro_ranking.py's keys
LEAK_TOPK = ("top1", "top3", "top5", "top10")  # bench/retrosim_uspto50k.py's keys


def retro(row: str) -> tuple[str, ...]:
    """Top-1/3/5/10 in percent of one row of retro_ranking_test.json."""
    return tuple(f"{{retro/{row}/{k}:pct1}}" for k in TOPK)


def worth_on_full_test_set(get) -> tuple[str, ...]:
    """Points of the whole test set lost when the leaked reactions are scored with the leak-free index."""
    n, total = get("leaked/n_test"), get("full/n_test")
    lost = [-(get(f"leaked/retrosim/{k}") - get(f"leakfree/retrosim/{k}")) * n / total for k in LEAK_TOPK]
    return (f"worth on the full test set (hits lost / {total:,})", *(number(x, ".2f") for x in lost))


def leak(source: str) -> tuple[str, ...]:
    """Top-1/3/5/10 (already in percent) of a bench/retrosim_uspto50k.py run."""
    return tuple(f"{{{source}/retrosim/{k}:.1f}}" for k in LEAK_TOPK)


TABLES = {
    "retro-test": dict(
        header=("system", "top-1", "top-3", "top-5", "top-10"),
        rows=[
            ("RetroSim (our implementation, no training)", *retro("retrosim")),
            ("NatureLM-tiny beams, its own candidates (plain model)", *retro("model beams")),
            ("**NatureLM-tiny ranks RetroSim's top-10 (w = 3.0) — the shipped `retrosynthesis()`**",
             "**{retro/retrosim candidates ranked, w=3.0/top_1:pct1}**",
             "**{retro/retrosim candidates ranked, w=3.0/top_3:pct1}**",
             "**{retro/retrosim candidates ranked, w=3.0/top_5:pct1}**",
             "{retro/retrosim candidates ranked, w=3.0/top_10:pct1}"),
            ("NatureLM-tiny alone ranks RetroSim's top-10 (w = 0)", *retro("retrosim candidates ranked, w=0.0")),
            ("union of model beams + RetroSim, ranked (w = 3.0)", *retro("union, w=3.0")),
            ("union, model alone ranks (w = 0)", *retro("union, w=0.0")),
            # not in any committed JSON: stage D's run, the paper, the literature
            ("*stage D (2.0 CPU-h, w = 8.0): own beams / ranked*", "*0.9 / 40.3*", "*2.8 / 62.6*", "*4.0 / 71.2*",
             "*6.5 / 78.1*"),
            ("*paper: NatureLM 1B / 8B / 8x7B*", "*68.6 / 70.2 / 71.9*", "*86.8 / 85.9 / 87.4*", "", ""),
            ("*literature: RetroSim (Coley 2017)*", "*37.3*", "*54.7*", "*63.3*", "*74.1*"),
        ]),
    "retro-leak-free": dict(
        header=("RetroSim on those {leaked/n_test} reactions", "top-1", "top-3", "top-5", "top-10"),
        rows=[
            ("standard index", *leak("leaked")),
            ("leak-free index", *leak("leakfree")),
            worth_on_full_test_set,
        ]),
    "tasks": dict(
        header=("task", "NatureLM-tiny (2.7 CPU-h, stage E)", "stage D (2.0 CPU-h)", "target (issue 7) / paper"),
        rows=[  # the stage D and target columns are text: no committed JSON holds stage D's runs
            ("unconditional molecules, T = 0.7 ({t07/molecule_generation/n})",
             "validity **{t07/molecule_generation/validity:.0%}**, "
             "uniqueness {t07/molecule_generation/uniqueness:.0%}, novelty {t07/molecule_generation/novelty:.0%}†, "
             "IntDiv {t07/molecule_generation/internal_diversity:.2f}†",
             "76% (100)", "target ≥ 90% / ≥ 90% — **validity missed at T = 0.7**"),
            ("unconditional molecules, T = 0.5 ({t05/molecule_generation/n}; `--temperature 0.5`)",
             "validity **{t05/molecule_generation/validity:.0%}**, "
             "uniqueness **{t05/molecule_generation/uniqueness:.0%}**, "
             "novelty {t05/molecule_generation/novelty:.0%}†, "
             "IntDiv {t05/molecule_generation/internal_diversity:.2f}†",
             "—", "target **met at T = 0.5**; paper 94.9–98.8%"),
            ("unconditional materials, T = 0.7 ({t07/material_generation/n})",
             "SMACT-valid **{t07/material_generation/smact_validity:.0%}**, uniqueness "
             "{t07/material_generation/uniqueness:.0%}, novelty {t07/material_generation/novelty:.0%}",
             "59% (200)", "target ≥ 60% — **missed at T = 0.7** (a second draw of 200: 62%)"),
            ("unconditional materials, T = 0.5 ({t05/material_generation/n})",
             "SMACT-valid **{t05/material_generation/smact_validity:.0%}**, uniqueness "
             "{t05/material_generation/uniqueness:.0%}, novelty {t05/material_generation/novelty:.0%}",
             "—", "target met at T = 0.5, at half the uniqueness; paper 49.2–66.1%"),
            ("unconditional proteins ({t100/protein_generation/n})",
             "{t100/protein_generation/validity:.0%} in alphabet, "
             "mean length {t100/protein_generation/length_mean:.0f}, "
             "uniqueness {t100/protein_generation/uniqueness:.0%}, diversity {t100/protein_generation/diversity:.1f}",
             "100% (30)", "target 100% — met"),
            ("unconditional RNA ({t100/rna_generation/n})",
             "{t100/rna_generation/validity:.0%} in alphabet; MFE {t100/rna_generation/mfe_mean:.1f} vs "
             "{t100/rna_generation/mfe_shuffled_mean:.1f} kcal/mol for shuffled controls (ViennaRNA), "
             "{t100/rna_generation/below_shuffled:.0%} below their control",
             "100% (30)", "target 100% — met"),
            ("property → molecule ({p2m/property_to_molecule/n} prompts × 10)",
             "validity {p2m/property_to_molecule/validity:.1%}; "
             "Spearman {p2m/property_to_molecule/spearman_*:min.2f} … "
             "{p2m/property_to_molecule/spearman_*:max.2f} per property",
             "75.5%", "paper: TPSA Spearman > 0.8"),
            ("property optimisation ({t100/property_optimization/n})",
             "success {t100/property_optimization/success:.0%} "
             "(per sample {t100/property_optimization/success_per_sample:.1%}; "
             "the paper's criterion, no similarity constraint)",
             "46.7% (30)", "paper 8x7B 0.66–0.80"),
            ("BBB classification ({t100/bbb_classification/n})",
             "AUROC {t100/bbb_classification/auroc:.2f}, accuracy {t100/bbb_classification/accuracy:.0%}",
             "0.81 (30)", "paper 8x7B 73.7 (MoleculeNet BBBP)"),
            ("BBB optimisation ({t100/bbb_optimization/n}; oracle held-out AUROC "
             "{t100/bbb_optimization/oracle_heldout_auroc:.3f} random split, 0.824 scaffold split)",
             "success {t100/bbb_optimization/success:.0%} (the paper's criterion; the Tanimoto ≥ 0.4 constrained "
             "success is not re-measured)",
             "53.3% (30)", "paper 0.48–0.55"),
            ("text → protein ({t100/text_to_protein/n}; "
             "k-mer oracle AUROC {t100/text_to_protein/oracle_heldout_auroc:.2f})",
             "{t100/text_to_protein/validity:.0%} valid, success {t100/text_to_protein/success:.0%}",
             "50% (30)", "paper 0.64–0.81"),
            ("composition → material ({t100/composition_to_material/n})",
             "SMACT-valid {t100/composition_to_material/smact_validity:.0%}, element precision "
             "{t100/composition_to_material/element_precision:.1%}",
             "73% (30)", "paper 8x7B 81.6% / 97.7%"),
            ("property → material ({t100/property_to_material/n})",
             "SMACT-valid {t100/property_to_material/smact_validity:.0%}", "53% (30)", "—"),
            ("forward prediction ({fwd/forward/n}) / forward_rag ({fwd/forward_rag/n})",
             "top-1 {fwd/forward/top_1:.1%} / {fwd/forward_rag/top_1:.1%}; valid {fwd/forward/valid_top_1:.0%} / "
             "{fwd/forward_rag/valid_top_1:.0%}",
             "0% / 0%", "paper 8x7B ~ 90%+"),
            ("SMILES → IUPAC / IUPAC → SMILES ({naming/naturelm-tiny/smiles_to_iupac/n})",
             "{naming/naturelm-tiny/smiles_to_iupac/top_1:.2f} / {naming/naturelm-tiny/iupac_to_smiles/top_1:.2f} "
             "(tools: nispo {naming/nispo/smiles_to_iupac/top_1:.2f}, openclatura "
             "{naming/openclatura/smiles_to_iupac/top_1:.2f}, OPSIN {naming/opsin/iupac_to_smiles/top_1:.2f})",
             "0.00 / 0.00", "paper 8x7B top-5 0.607 / 0.704"),
            ("guide RNA ({t100/guide_rna/n})", "validity {t100/guide_rna/validity:.0%}", "0%", "paper 0.77–0.96"),
        ]),
    "curve": dict(
        header=("stage", "step", "SFT time (min)", "greedy top-1", "ranked top-1 (w = 3.0)", "RetroSim top-1"),
        each="curve",  # one row per item of curve's list; {row/key} reads the item
        rows=[("{row/stage}", "{row/step}", "{row/train_seconds:minutes}", "{row/greedy_top_1:.2f}",
               "{row/ranked_top_1:.2f}", "{row/retrosim_top_1:.2f}")]),
}

FORMATS = {  # named formats, beside Python's own
    "pct1": lambda v: f"{100 * v:.1f}",  # a fraction as percent, no % sign: 0.397 -> 39.7
    "minutes": lambda v: f"{v / 60:.0f}",  # seconds as whole minutes
}


def number(value, spec: str) -> str:
    """One value formatted by a named or Python format spec; negative numbers with U+2212."""
    text = FORMATS[spec](value) if spec in FORMATS else format(value, spec)
    return text.replace("-", "−") if isinstance(value, (int, float)) and not isinstance(value, bool) else text


class Results:
    """The committed JSON files, read once; `get("source/key/...")` is one value or raises DataFileError."""

    def __init__(self, root: Path = REPO, sources: dict = SOURCES):
        self.root, self.sources, self._files = Path(root), dict(sources), {}

    def _file(self, name: str):
        if name not in self._files:
            path = self.root / RESULTS / name
            if not path.is_file():
                raise DataFileError(f"{RESULTS}/{name}", "not found: the card's tables are generated from it")
            self._files[name] = json.loads(path.read_text())
        return self._files[name]

    def get(self, field: str):
        source, _, rest = field.partition("/")
        if source not in self.sources:
            raise ConfigError(f"bench/tiny_card.py: unknown source {source!r} in {{{field}}}: see SOURCES")
        file, base = self.sources[source]
        keys = [k for k in base.split("/") + rest.split("/") if k]
        value, where = self._file(file), []
        for i, key in enumerate(keys):
            if "*" in key and i == len(keys) - 1 and isinstance(value, dict):
                matched = [v for k, v in value.items() if fnmatch.fnmatchcase(k, key)]
                if not matched or None in matched:
                    raise DataFileError(f"{RESULTS}/{file}", f"no non-null key matches {'/'.join(keys)}")
                return matched
            where.append(key)
            if isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            elif isinstance(value, dict) and key in value:
                value = value[key]
            else:
                raise DataFileError(f"{RESULTS}/{file}", f"missing key {'/'.join(where)}")
        if value is None:
            raise DataFileError(f"{RESULTS}/{file}", f"key {'/'.join(keys)} is null")
        return value


class _Cells(string.Formatter):
    def __init__(self, results: Results):
        self.results = results

    def get_field(self, field_name, args, kwargs):
        return self.results.get(field_name), field_name

    def format_field(self, value, spec):
        if isinstance(value, list):  # a `*` key: min.2f / max.2f
            pick, spec = spec[:3], spec[3:]
            if pick not in ("min", "max"):
                raise ConfigError(f"bench/tiny_card.py: a `*` key needs a min/max format, not {pick + spec!r}")
            value = min(value) if pick == "min" else max(value)
        return number(value, spec)


def render(table: dict, results: Results) -> str:
    """The markdown of one table: header, separator, one line per row."""
    cells = _Cells(results)
    line = lambda row: "|" + "|".join(f" {cells.format(c)} " if c else " " for c in row) + "|"  # noqa: E731
    rows = []
    for spec in table["rows"]:
        if "each" in table:  # {row/key} -> {SOURCE/i/key} for each item i of the source's list
            each = table["each"]
            n = len(results.get(each))
            rows += [line([c.replace("{row/", f"{{{each}/{i}/") for c in spec]) for i in range(n)]
        else:
            rows.append(line(spec(results.get) if callable(spec) else spec))
    head = table["header"]
    return "\n".join([line(head), "|" + "---|" * len(head), *rows])


MARKER = re.compile(r"(<!-- card:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /card:(?P=name) -->)", re.S)


def update(card_text: str, tables: dict, results: Results) -> tuple[str, list[str]]:
    """The card with every block re-rendered, and the names of the blocks whose text changed."""
    found = [m.group("name") for m in MARKER.finditer(card_text)]
    unknown, absent = sorted(set(found) - set(tables)), sorted(set(tables) - set(found))
    if unknown or absent:
        raise DataFileError("docs/model-card.md",
                            f"card blocks without a table: {unknown}; tables without a block: {absent}")
    changed = []

    def fill(m: re.Match) -> str:
        new = render(tables[m.group("name")], results) + "\n\n"  # a blank line ends the table in every renderer
        if new != m.group("body"):
            changed.append(m.group("name"))
        return m.group(1) + new + m.group(4)

    return MARKER.sub(fill, card_text), changed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", nargs="?", const=CARD, type=Path, metavar="CARD",
                    help=f"exit 1 if a block of CARD (default {CARD.relative_to(REPO)}) differs from its JSON")
    ap.add_argument("--write", type=Path, metavar="CARD", help="rewrite the blocks of CARD from the JSON")
    args = ap.parse_args()
    results = Results()
    if not (args.check or args.write):
        for name, table in TABLES.items():
            print(f"<!-- card:{name} -->\n{render(table, results)}\n<!-- /card:{name} -->\n")
        return
    path = args.write or args.check
    shown = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
    text, changed = update(path.read_text(), TABLES, results)
    if args.write:
        path.write_text(text)
        print(f"{shown}: rewrote {', '.join(changed) or 'nothing (already up to date)'}")
    elif changed:
        sys.exit(f"{shown}: blocks differ from bench/results: {', '.join(changed)} "
                 f"(python bench/tiny_card.py --write {shown})")
    else:
        print(f"{shown}: every block matches bench/results")


if __name__ == "__main__":
    main()
