"""Render the data tables of the NatureLM-tiny model card from the committed results JSON.

    python bench/tiny_card.py                              # print every table
    python bench/tiny_card.py --check                      # exit 1 naming each block of the card that differs
    python bench/tiny_card.py --write                      # rewrite the blocks of docs/model-card.md in place

A block is the text between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in docs/model-card.md
(bench/doc_blocks.py); TABLES below says what each holds, and is the whole spec. A row is a tuple of cell
templates: `{SOURCE/key/key...:FORMAT}` reads one value, where SOURCE names a committed file and a place in it (SOURCES), the keys walk the JSON from there and
FORMAT is a Python format spec (`.2f`; `.0%`: 0.82 -> 82%) or one of FORMATS (`pct1`: 0.397 -> 39.7; `minutes`).
A `*` in the last key matches several keys, formatted by `min.2f` / `max.2f`. Negative numbers print with U+2212,
as the card writes them. Text outside braces is copied as is (row labels, the v1 column, targets, bold). A row
may instead be a function of `get` (a value computed from several keys). A missing key or a null raises
DataFileError naming the file and the key: no cell is ever left blank or made up. Only a key ending in `?`
(`{row/val_loss?:.3f}`) may hold null, printed as an em dash; its absence still raises.

After a retraining: point SOURCES at the new runs, edit the rows whose labels or judgements changed, then --write.
"""
from __future__ import annotations

import fnmatch
import json
import string
import sys
from pathlib import Path

from naturelm.errors import ConfigError, DataFileError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/doc_blocks.py, also when imported
import doc_blocks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = "bench/results"
CARD = REPO / "docs" / "model-card.md"

# name: (file under bench/results, path inside it). A cell {name/k1/k2} reads file[path...][k1][k2].
EVAL = "naturelm_tiny_eval.json"  # bench/tiny_eval_summary.py over the `naturelm eval` runs of `make naturelm-tiny`
SOURCES = {
    "retro": ("retro_ranking_test.json", "top_k"),  # full test set, RetroSim's top-10 ranked (--model-beams 0)
    "retro_run": ("retro_ranking_test.json", ""),  # its weight and n
    "retrolf": ("retro_ranking_test_leak-free.json", "top_k"),  # the same with the leak-free RetroSim index
    "beams": ("retro_ranking_test_beams.json", "top_k"),  # the full test set, + the model's 10 beams
    "beams_run": ("retro_ranking_test_beams.json", ""),
    "valid": ("retro_ranking_valid.json", ""),  # the weight chosen on 300 validation reactions
    "gen": (EVAL, "runs/eval-gen/results/naturelm-tiny"),  # T = 0.7, 200 samples / prompts
    "t05": (EVAL, "runs/eval-t05/results/naturelm-tiny"),  # --temperature 0.5
    "p2m": (EVAL, "runs/eval-p2m/results/naturelm-tiny"),
    "t100": (EVAL, "runs/eval-tasks100/results/naturelm-tiny"),
    "cross": (EVAL, "runs/eval-cross/results"),  # the model and its baselines
    "fwd": (EVAL, "runs/eval-fwd/results"),  # templates, the model, the model ranking the templates' candidates
    "comp": (EVAL, "runs/eval-comp/results"),  # composition -> material: smact, the model, smact ranked by the model
    "naming": (EVAL, "runs/eval-naming/results"),  # the model and the naming tools
    "curve": ("tiny_curve.json", "rows"),
    "leaked": ("retrosim_uspto50k_only-leaked.json", ""),  # standard index, the 91 leaked test reactions
    "leakfree": ("retrosim_uspto50k_leak-free_only-leaked.json", ""),
    "full": ("retrosim_uspto50k.json", ""),  # the full test set (its n_test)
}

TOPK = ("top_1", "top_3", "top_5", "top_10")  # bench/retro_ranking.py's keys
LEAK_TOPK = ("top1", "top3", "top5", "top10")  # bench/retrosim_uspto50k.py's keys
M = "naturelm-tiny"


def topk(source: str, row: str, bold: int = 0) -> tuple[str, ...]:
    """Top-1/3/5/10 in percent of one row of a bench/retro_ranking.py run; the first `bold` cells in bold."""
    return tuple(("**{}**" if i < bold else "{}").format(f"{{{source}/{row}/{k}:pct1}}") for i, k in enumerate(TOPK))


def ranked(source: str, label: str, bold: int = 0, run: str = "retro_run"):
    """A row of RetroSim's candidates ranked at the run's own weight (the key holds the weight)."""
    def row(get):
        w = get(f"{run}/weight")
        cells = [number(get(f"{source}/union, w={w}/{k}"), "pct1") for k in TOPK]
        return (label.format(w=w), *[f"**{c}**" if i < bold else c for i, c in enumerate(cells)])
    return row


def own_beams_row(key: str, label: str):
    """A row of the beams run whose key and label hold the run's weight."""
    def row(get):
        w = get("beams_run/weight")
        return (label.format(w=w), *(number(get(f"beams/{key.format(w=w)}/{k}"), "pct1") for k in TOPK))
    return row


def worth_on_full_test_set(get) -> tuple[str, ...]:
    """Points of the whole test set lost when the leaked reactions are scored with the leak-free index."""
    n, total = get("leaked/n_test"), get("full/n_test")
    lost = [-(get(f"leaked/retrosim/{k}") - get(f"leakfree/retrosim/{k}")) * n / total for k in LEAK_TOPK]
    return (f"worth on the full test set (hits lost / {total:,})", *(number(x, ".2f") for x in lost))


def leak(source: str) -> tuple[str, ...]:
    """Top-1/3/5/10 (already in percent) of a bench/retrosim_uspto50k.py run."""
    return tuple(f"{{{source}/retrosim/{k}:.1f}}" for k in LEAK_TOPK)


V1 = "v1 (2.7 CPU-h)"
TABLES = {
    "retro-test": dict(
        header=("system (USPTO-50k test, class unknown)", "top-1", "top-3", "top-5", "top-10"),
        rows=[
            ("RetroSim, standard index (no training)", *topk("retro", "retrosim")),
            ("RetroSim, leak-free index", *topk("retrolf", "retrosim")),
            ranked("retro", "**NatureLM-tiny ranks RetroSim's top-10 (w = {w}), standard index — the shipped "
                   "`retrosynthesis()`**", bold=3),
            ranked("retrolf", "NatureLM-tiny ranks RetroSim's top-10 (w = {w}), leak-free index"),
            ("NatureLM-tiny alone ranks RetroSim's top-10 (w = 0)", *topk("retro", "union, w=0.0")),
            ("*v1: ranked (w = 3.0) / alone (w = 0)*", "*40.7 / 25.3*", "*62.3 / 49.5*", "*70.8 / 62.5*",
             "*78.1 / 78.1*"),
            ("*paper: NatureLM 1B / 8B / 8x7B*", "*68.6 / 70.2 / 71.9*", "*86.8 / 85.9 / 87.4*", "", ""),
            ("*literature: RetroSim (Coley 2017)*", "*37.3*", "*54.7*", "*63.3*", "*74.1*"),
        ]),
    "retro-beams": dict(
        header=("all {beams_run/n:,} test products", "top-1", "top-3", "top-5", "top-10"),
        rows=[
            ("**NatureLM-tiny's own 10 beams (plain model)**", *topk("beams", "model beams", bold=1)),
            ("RetroSim on the same products", *topk("beams", "retrosim")),
            own_beams_row("retrosim candidates ranked, w={w}", "RetroSim's top-10 ranked by the model (w = {w})"),
            own_beams_row("union, w={w}", "union of the model's beams and RetroSim's top-10, ranked (w = {w})"),
            ("*v1's own beams, the same products*", "*1.3*", "*4.3*", "*6.2*", "*8.9*"),
        ]),
    "retro-leak-free": dict(
        header=("RetroSim on those {leaked/n_test} reactions", "top-1", "top-3", "top-5", "top-10"),
        rows=[
            ("standard index", *leak("leaked")),
            ("leak-free index", *leak("leakfree")),
            worth_on_full_test_set,
        ]),
    "forward": dict(
        header=("system (first {fwd/templates/forward/n:,} USPTO-50k test reactions)", "top-1", "top-3",
                "valid top-1", "distinct answers"),
        rows=[
            (f"reaction templates from the training reactions (rdchiral, applied forward)",
             "{fwd/templates/forward/top_1:pct1}", "{fwd/templates/forward/top_3:pct1}",
             "{fwd/templates/forward/valid_top_1:.0%}", "{fwd/templates/forward/mean_distinct:.2f}"),
            ("NatureLM-tiny alone (beam search)", f"{{fwd/{M}/forward/top_1:pct1}}",
             f"{{fwd/{M}/forward/top_3:pct1}}", f"{{fwd/{M}/forward/valid_top_1:.0%}}",
             f"{{fwd/{M}/forward/mean_distinct:.2f}}"),
            ("**NatureLM-tiny ranks the templates' candidates and its own beams by the round trip**",
             f"**{{fwd/{M}+templates (ranked)/forward/top_1:pct1}}**",
             f"**{{fwd/{M}+templates (ranked)/forward/top_3:pct1}}**",
             f"{{fwd/{M}+templates (ranked)/forward/valid_top_1:.0%}}",
             f"{{fwd/{M}+templates (ranked)/forward/mean_distinct:.2f}}"),
            ("*v1 alone (first 60)*", "*3.3*", "", "*92%*", ""),
        ]),
    "composition": dict(
        header=("composition → material (first {comp/smact/composition_to_material/n} test requests)",
                "formula = the record's", "median atoms per cell (records: "
                "{comp/smact/composition_to_material/record_atoms_per_cell_median:.0f})",
                "element precision / recall", "SMACT-valid without the shortcut", "SMACT-valid as requested"),
        rows=[(label, f"{{comp/{row}/composition_to_material/formula_match:.1%}}",
               f"{{comp/{row}/composition_to_material/atoms_per_cell_median:.0f}}",
               f"{{comp/{row}/composition_to_material/element_precision:.0%}} / "
               f"{{comp/{row}/composition_to_material/element_recall:.0%}}",
               f"{{comp/{row}/composition_to_material/smact_validity_no_alloy_shortcut:.1%}}",
               f"{{comp/{row}/composition_to_material/smact_validity_as_requested:.1%}}")
              for label, row in (("SMACT's charge-balanced compositions, the tool's own order", "smact"),
                                 ("NatureLM-tiny, sampled under the prompt's constraints", M),
                                 ("**NatureLM-tiny ranks SMACT's compositions — the shipped `design_material()`**",
                                  f"{M}+smact (ranked)"))]),
    "tasks": dict(
        header=("task (n)", "NatureLM-tiny v2", V1, "target (issue 19) / paper"),
        rows=[
            ("unconditional molecules, T = 0.7 ({gen/molecule_generation/n})",
             "validity **{gen/molecule_generation/validity:.1%}**, uniqueness "
             "**{gen/molecule_generation/uniqueness:.1%}**; novelty {gen/molecule_generation/novelty:.1%} vs every "
             "training molecule, {gen/molecule_generation/novelty_moses_train:.1%} vs MOSES train; IntDiv "
             "{gen/molecule_generation/internal_diversity:.3f}; FCD {gen/molecule_generation/fcd:.1f} (floor at this "
             "n: {gen/molecule_generation/fcd_reference_same_n:.1f})",
             "validity 82%, uniqueness 99%; novelty vs MOSES train 86.1%; IntDiv 0.823; FCD 14.8 (floor 13.2)",
             "≥ 95% valid and ≥ 95% unique; paper 94.9–98.8% valid"),
            ("unconditional molecules, T = 0.5 ({t05/molecule_generation/n})",
             "validity {t05/molecule_generation/validity:.1%}, uniqueness {t05/molecule_generation/uniqueness:.1%}, "
             "IntDiv {t05/molecule_generation/internal_diversity:.3f}",
             "validity 94%, uniqueness 94%", "—"),
            ("unconditional materials, T = 0.7 ({gen/material_generation/n})",
             "SMACT-valid {gen/material_generation/smact_validity:.1%} with the all-metal alloy shortcut, "
             "**{gen/material_generation/smact_validity_no_alloy_shortcut:.1%}** without; "
             "{gen/material_generation/within_atoms_bound:.0%} within {gen/material_generation/atoms_per_cell_bound} "
             "atoms per cell; uniqueness {gen/material_generation/uniqueness:.0%}, novelty "
             "{gen/material_generation/novelty:.0%}",
             "SMACT 59.5% / 25.5% without the shortcut; 71% within 112 atoms", "paper 49.2–66.1% SMACT-valid"),
            ("unconditional materials, T = 0.5 ({t05/material_generation/n})",
             "SMACT-valid {t05/material_generation/smact_validity:.1%} / "
             "{t05/material_generation/smact_validity_no_alloy_shortcut:.1%} without the shortcut; uniqueness "
             "{t05/material_generation/uniqueness:.0%}",
             "SMACT 85%, uniqueness 51%", "—"),
            ("composition → material, the model sampled under the prompt's constraints "
             f"({{comp/{M}/composition_to_material/n}}; the shipped ranked answer: next section)",
             f"requested-element precision **{{comp/{M}/composition_to_material/element_precision:.0%}}**, recall "
             f"**{{comp/{M}/composition_to_material/element_recall:.0%}}**; SMACT-valid as requested (alloy shortcut "
             f"only for all-metal requests) **{{comp/{M}/composition_to_material/smact_validity_as_requested:.1%}}**, "
             f"without the shortcut {{comp/{M}/composition_to_material/smact_validity_no_alloy_shortcut:.1%}} "
             f"(ceiling: {{comp/{M}/composition_to_material/charge_balance_possible:.0%}} of requests admit a "
             f"charge-balanced composition); median {{comp/{M}/composition_to_material/atoms_per_cell_median:.0f}} "
             f"atoms per cell (records {{comp/{M}/composition_to_material/record_atoms_per_cell_median:.0f}}): every "
             f"answer runs to the {{comp/{M}/composition_to_material/atoms_per_cell_bound}}-atom bound",
             "unconstrained: precision 9.6%; constrained: 100% / 100%, SMACT 55% / 17% without the shortcut",
             "100% precision, ≥ 90% recall, ≥ 80% SMACT-valid without the shortcut; paper 8x7B 81.6% / 97.7%"),
            ("property → material ({t100/property_to_material/n})",
             "SMACT-valid {t100/property_to_material/smact_validity:.0%} / "
             "{t100/property_to_material/smact_validity_no_alloy_shortcut:.0%} without the shortcut; "
             "{t100/property_to_material/within_atoms_bound:.0%} within the atoms bound",
             "SMACT 53%", "—"),
            ("guide RNA ({gen/guide_rna/n})",
             "valid (a 17–24 nt spacer next to an NGG PAM in the given DNA) **{gen/guide_rna/validity:.0%}**; "
             "the reference spacer {gen/guide_rna/spacer_match:.1%}",
             "0%", "≥ 95% valid; paper 0.77–0.96"),
            ("unconditional proteins ({t100/protein_generation/n})",
             "{t100/protein_generation/validity:.0%} valid, mean length {t100/protein_generation/length_mean:.0f}, "
             "uniqueness {t100/protein_generation/uniqueness:.0%}, diversity "
             "{t100/protein_generation/diversity:.2f} (clusters at 50% identity, 80% coverage)",
             "99% valid, diversity 1.00", "—"),
            ("unconditional RNA ({t100/rna_generation/n})",
             "{t100/rna_generation/validity:.0%} valid; MFE {t100/rna_generation/mfe_mean:.2f} vs "
             "{t100/rna_generation/mfe_shuffled_mean:.2f} kcal/mol for {t100/rna_generation/shuffles_per_sequence} "
             "dinucleotide shuffles each: difference {t100/rna_generation/mfe_difference_mean:.2f} ± "
             "{t100/rna_generation/mfe_difference_std:.2f} (sd), {t100/rna_generation/below_shuffled:.0%} below "
             "their controls",
             "+0.55 ± 2.83, 39% below", "—"),
            ("text → protein ({t100/text_to_protein/n}; k-mer oracle AUROC "
             "{t100/text_to_protein/oracle_heldout_auroc:.2f})",
             "success {t100/text_to_protein/success:.0%}; the oracle calls "
             "{t100/text_to_protein/called_soluble_when_asked_opposite:.0%} of answers to *insoluble* prompts "
             "soluble and {t100/text_to_protein/called_insoluble_when_asked_opposite:.0%} of answers to *soluble* "
             "prompts insoluble (conditioning gain {t100/text_to_protein/conditioning_gain:+.2f})",
             "success 52% (oracle calls ~68% soluble whatever was asked)", "paper 0.64–0.81"),
            ("property → molecule ({p2m/property_to_molecule/n} prompts × 10)",
             "validity {p2m/property_to_molecule/validity:.1%}; Spearman "
             "{p2m/property_to_molecule/spearman_*:min.2f} … {p2m/property_to_molecule/spearman_*:max.2f} per "
             "property", "validity 82.4%; Spearman −0.18 … 0.20", "paper: TPSA Spearman > 0.8"),
            ("property optimisation ({t100/property_optimization/n})",
             "success {t100/property_optimization/success:.0%} (paper's criterion), "
             "**{t100/property_optimization/success_constrained:.0%}** with Tanimoto ≥ "
             "{t100/property_optimization/similarity_constraint} to the input",
             "51% (paper's criterion); issue 15: 51% → 34% constrained", "paper 8x7B 0.66–0.80 (no similarity rule)"),
            ("BBB classification ({t100/bbb_classification/n}; split by connectivity)",
             "AUROC {t100/bbb_classification/auroc:.2f}, accuracy {t100/bbb_classification/accuracy:.0%}",
             "AUROC 0.68 (stereo variants of test molecules in training)", "paper 8x7B 73.7 (MoleculeNet BBBP)"),
            ("BBB optimisation ({t100/bbb_optimization/n}; oracle held-out AUROC "
             "{t100/bbb_optimization/oracle_heldout_auroc:.3f} random split, "
             "{t100/bbb_optimization/oracle_heldout_auroc_scaffold:.3f} scaffold split)",
             "success {t100/bbb_optimization/success:.0%} (paper's criterion), "
             "**{t100/bbb_optimization/success_constrained:.0%}** with Tanimoto ≥ "
             "{t100/bbb_optimization/similarity_constraint} to the input",
             "64% (paper's criterion); issue 15's draw: 60% → 6% constrained", "paper 0.48–0.55 (no similarity rule)"),
            ("SMILES → IUPAC / IUPAC → SMILES ({naming/naturelm-tiny/smiles_to_iupac/n})",
             "{naming/naturelm-tiny/smiles_to_iupac/top_1:.2f} / {naming/naturelm-tiny/iupac_to_smiles/top_1:.2f} "
             "(tools: nispo {naming/nispo/smiles_to_iupac/top_1:.2f}, openclatura "
             "{naming/openclatura/smiles_to_iupac/top_1:.2f}, OPSIN {naming/opsin/iupac_to_smiles/top_1:.2f})",
             "0.00 / 0.00", "paper 8x7B top-5 0.607 / 0.704"),
        ]),
    "cross": dict(
        header=("cross-domain task (n)", "NatureLM-tiny v2", "baseline beside it", "what the baseline is"),
        rows=[
            ("protein → molecule ({cross/naturelm-tiny/protein_to_molecule/n})",
             f"valid {{cross/{M}/protein_to_molecule/validity:.0%}}, oracle-active "
             f"{{cross/{M}/protein_to_molecule/oracle_active_target:.0%}} for the target, similarity to held-out "
             f"binders {{cross/{M}/protein_to_molecule/sim_heldout_target:.2f}}",
             "retrieval: {cross/ligand_retrieval/protein_to_molecule/oracle_active_target:.0%} / "
             "{cross/ligand_retrieval/protein_to_molecule/sim_heldout_target:.2f}; random training ligand: "
             "{cross/ligand_random/protein_to_molecule/oracle_active_target:.0%} / "
             "{cross/ligand_random/protein_to_molecule/sim_heldout_target:.2f}",
             "the nearest training protein's ligands (its index holds training pairs only); a random training ligand"),
            ("DNA → protein ({cross/naturelm-tiny/dna_to_protein/n})",
             f"exact {{cross/{M}/dna_to_protein/exact:.0%}}, per residue {{cross/{M}/dna_to_protein/per_residue:.0%}}",
             "Biopython translation: exact {cross/biopython/dna_to_protein/exact:.0%}",
             "the genetic code (the tool answers; the model is a demonstration)"),
            ("protein → DNA ({cross/naturelm-tiny/protein_to_dna/n})",
             f"valid CDS {{cross/{M}/protein_to_dna/valid_cds:.0%}}, translates back per residue "
             f"{{cross/{M}/protein_to_dna/per_residue:.0%}}",
             "back-translation: valid CDS {cross/biopython/protein_to_dna/valid_cds:.0%}", "Biopython"),
            ("protein → RNA ({cross/naturelm-tiny/protein_to_rna/n})",
             f"motif log-odds {{cross/{M}/protein_to_rna/logodds_mean:.2f}} vs "
             f"{{cross/{M}/protein_to_rna/logodds_shuffled_mean:.2f}} shuffled, above shuffled "
             f"{{cross/{M}/protein_to_rna/above_shuffled:.0%}}, binding site found "
             f"{{cross/{M}/protein_to_rna/site_found:.0%}}",
             "—", "a shuffled control of each answer"),
        ]),
    "curve": dict(
        header=("stage", "step", "SFT time (min)", "validation loss (where measured)", "greedy top-1", "ranked top-1",
                "RetroSim top-1"),
        each="curve",  # one row per item of curve's list; {row/key} reads the item
        rows=[("{row/stage}", "{row/step}", "{row/train_seconds:minutes}", "{row/val_loss?:.3f}",
               "{row/greedy_top_1:.2f}", "{row/ranked_top_1:.2f}", "{row/retrosim_top_1:.2f}")]),
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
        if field_name.endswith("?"):  # optional: a null prints as an em dash (a missing key still raises)
            try:
                return self.results.get(field_name[:-1]), field_name
            except DataFileError as err:
                if not str(err).endswith("is null"):
                    raise
                return None, field_name
        return self.results.get(field_name), field_name

    def format_field(self, value, spec):
        if value is None:
            return "—"
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


def blocks(results: Results, tables: dict = TABLES) -> dict[str, str]:
    """Each table's block body (a blank line ends a table in every renderer)."""
    return {name: render(table, results) + "\n\n" for name, table in tables.items()}


def update(card_text: str, tables: dict, results: Results) -> tuple[str, list[str]]:
    """The card with every block re-rendered, and the names of the blocks whose text changed."""
    return doc_blocks.replace(card_text, blocks(results, tables), "docs/model-card.md")


if __name__ == "__main__":
    doc_blocks.cli(__doc__, CARD, lambda: blocks(Results()), "bench/tiny_card.py")
