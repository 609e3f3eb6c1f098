"""Instruction templates (several phrasings per task, paper §3 shapes) and the builders of instruction records.

Every record is `{"task", "instruction", "response", "meta"}`; `meta` holds the gold facts evaluation needs
(see docs/architecture.md, "Task names and instruction records"). Builders are pure functions of their
inputs and a seeded `random.Random`, so a build is reproducible.
"""
from __future__ import annotations

import random
from typing import Iterable

from naturelm.data.retrieval import fingerprint_matrix, reaction_sides, tanimoto_neighbours
from naturelm.data.splits import mol_key
from naturelm.errors import ConfigError, EntityError
from naturelm.language.tags import TAGS, wrap

TASKS = (
    "retrosynthesis", "retrosynthesis_rag", "forward", "forward_rag", "smiles_to_iupac", "iupac_to_smiles",
    "molecule_generation", "protein_generation", "rna_generation", "material_generation",
    "property_to_molecule", "property_optimization", "bbb_classification", "bbb_optimization",
    "text_to_protein", "composition_to_material", "property_to_material", "guide_rna",
    "protein_to_molecule", "dna_to_protein", "protein_to_dna", "protein_to_rna",
)

TEMPLATES: dict[str, list[str]] = {
    "retrosynthesis": [
        "Please suggest possible reactants for the given product {product}",
        "What reactants could be used to synthesize {product}?",
        "Propose a single-step retrosynthesis for the product {product}.",
        "Given the product {product}, which reactants would produce it?",
    ],
    "retrosynthesis_rag": [
        "{neighbours}\nPlease suggest possible reactants for the given product {product}",
        "Here are similar known reactions:\n{neighbours}\nWhat reactants could be used to synthesize {product}?",
        "{neighbours}\nUsing these similar reactions as a guide, propose reactants for {product}.",
    ],
    "forward": [
        "What can be produced when these reactants combine? {reactants}",
        "Predict the product of the reaction between {reactants}.",
        "Given the reactants {reactants}, what is the main product?",
    ],
    "forward_rag": [
        "{neighbours}\nWhat can be produced when these reactants combine? {reactants}",
        "Here are similar known reactions:\n{neighbours}\nPredict the product of the reaction between {reactants}.",
        "{neighbours}\nUsing these similar reactions as a guide, predict the main product of {reactants}.",
    ],
    "smiles_to_iupac": [
        "What is the IUPAC name of {mol}?",
        "Give the systematic IUPAC name of the molecule {mol}.",
        "Translate the SMILES {mol} into its IUPAC name.",
    ],
    "iupac_to_smiles": [
        "Give the structure of {name}.",
        "Convert the IUPAC name {name} into a molecule.",
        "What molecule is named {name}?",
    ],
    "molecule_generation": ["<mol>"],
    "protein_generation": ["<protein>"],
    "rna_generation": ["<rna>"],
    "material_generation": ["<material>"],
    "property_to_molecule": [
        "Generate a molecule with {property_text}.",
        "Design a compound with {property_text}.",
        "Propose a molecule that has {property_text}.",
    ],
    "property_optimization": [
        "Given the molecule {mol}, propose adjustments that can {direction} its {property_name} value by at least "
        "{delta} while keeping the structure similar.",
        "Modify {mol} to {direction} its {property_name} by at least {delta}.",
        "Optimize the molecule {mol}: {direction} the {property_name} by at least {delta}.",
    ],
    "bbb_classification": [
        "Can {mol} traverse the blood-brain barrier?",
        "Is the molecule {mol} able to penetrate the blood-brain barrier?",
        "Does {mol} cross the blood-brain barrier?",
    ],
    "bbb_optimization": [
        "Adjust the molecule {mol} to facilitate its passage through the blood-brain barrier.",
        "Modify {mol} so that it can cross the blood-brain barrier.",
        "Optimize {mol} to improve its blood-brain barrier permeability.",
    ],
    "text_to_protein": [
        "Generate a {label} protein sequence.",
        "I require a {label} protein sequence, kindly generate one.",
        "Design a protein that is {label}.",
    ],
    "composition_to_material": [
        "Build a material that has {elements}",
        "Generate a material composed of {elements}.",
        "Propose a crystal made of the elements {elements}.",
    ],
    "property_to_material": [
        "Build a material with {property_text}.",
        "Generate a material with {property_text}.",
        "Design an inorganic material that has {property_text}.",
    ],
    "guide_rna": [
        "Generate a guide RNA for targeting the DNA sequence {dna}",
        "Design a CRISPR-Cas9 guide RNA that targets {dna}",
        "Propose a guide RNA spacer for the DNA sequence {dna}",
    ],
    # {target}: TARGET_TEXT filled with a tagged pocket sequence or the target's name (naturelm.data.cross_domain)
    "protein_to_molecule": [
        "Design a molecule that binds to {target}.",
        "Generate a compound with high binding affinity for {target}.",
        "Propose a small-molecule ligand of {target}.",
        "Give a drug-like molecule that is active against {target}.",
    ],
    "dna_to_protein": [
        "Translate the coding sequence {dna} into its protein sequence.",
        "What protein does the gene {dna} encode?",
        "Give the amino acid sequence encoded by {dna}.",
    ],
    "protein_to_dna": [
        "Give a coding DNA sequence for the protein {protein}.",
        "Back-translate the protein {protein} into a gene.",
        "Design a gene that encodes {protein}.",
    ],
    # {rbp}: RBP_TEXT filled with a gene name, a gene id or an RNA-binding domain family
    "protein_to_rna": [
        "Generate an RNA sequence that is bound by {rbp}.",
        "Design an RNA that {rbp} recognises.",
        "Propose an RNA carrying a binding site of {rbp}.",
    ],
}
TARGET_TEXT = {"sequence": "the protein {protein}", "name": "the {name} ({gene})"}
RBP_TEXT = {"gene": "the RNA-binding protein {gene}", "gene_id": "the RNA-binding protein with gene id {gene_id}",
            "family": "an RNA-binding protein of the {family} family"}

NEIGHBOUR_LINE = "Similar reaction: {product} → {reactants}"
# Retrieval-augmented directions: (task, query field, answer field, neighbour line);
# the fields are both Reaction attributes and tag names.
# direction -> (task, neighbour line); which side is searched and which answered is retrieval's `reaction_sides`
RAG_DIRECTIONS = {
    "retro": ("retrosynthesis_rag", NEIGHBOUR_LINE),
    "forward": ("forward_rag", "Similar reaction: {reactants} → {product}"),
}

# Property phrasings: the value is rounded the way the text shows it, and `meta.target` holds that value.
MOLECULE_PROPERTIES = ("QED", "HBA", "HBD", "FSP3", "RotBonds", "TPSA", "LogP")
PROPERTY_TEXT = {
    "QED": ("QED {v:.2f}", 2),
    "HBA": ("{v:d} hydrogen bond acceptors", 0),
    "HBD": ("{v:d} hydrogen bond donors", 0),
    "FSP3": ("a fraction of sp3 carbons (FSP3) of {v:.2f}", 2),
    "RotBonds": ("{v:d} rotatable bonds", 0),
    "TPSA": ("TPSA {v:.0f}", 0),
    "LogP": ("LogP {v:.1f}", 1),
}
OPTIMIZATION = {  # property -> (name in text, minimum improvement)
    "QED": ("QED", 0.1),
    "LogP": ("LogP", 1.0),
    "HBD": ("number of hydrogen bond donors", 1),
}
MATERIAL_TEXT = {
    "band_gap": ("a band gap of {v:.2f} eV", 2),
    "formation_energy": ("a formation energy of {v:.3f} eV/atom", 3),
    "bulk_modulus": ("a bulk modulus of {v:.2f} GPa", 2),
}
SOLUBILITY_LABELS = {1: "soluble", 0: "insoluble"}
SPACER_LENGTHS = (17, 18, 19, 20, 20, 20, 20, 21, 22, 23, 24)


def template_texts() -> list[str]:
    """Every template string (task phrasings, the neighbour line, property phrasings): BPE training text."""
    texts = [t for task in TASKS for t in TEMPLATES[task]] + [NEIGHBOUR_LINE, RAG_DIRECTIONS["forward"][1]]
    texts += [p for p, _ in PROPERTY_TEXT.values()] + [p for p, _ in MATERIAL_TEXT.values()]
    texts += [n for n, _ in OPTIMIZATION.values()] + list(SOLUBILITY_LABELS.values()) + ["Yes.", "No."]
    texts += list(TARGET_TEXT.values()) + list(RBP_TEXT.values())
    return texts


def record(task: str, instruction: str, response: str, meta: dict | None = None) -> dict:
    """One instruction record."""
    return {"task": task, "instruction": instruction, "response": response, "meta": meta or {}}


def _phrase(task: str, rng: random.Random, **fields) -> str:
    return rng.choice(TEMPLATES[task]).format(**fields)


def _rounded(value: float, digits: int):
    return int(round(value)) if digits == 0 else round(float(value), digits)


def property_text(prop: str, value: float) -> tuple[str, float | int]:
    """(`"4 hydrogen bond donors"`, 4): the text of a molecule property target and the value it states."""
    fmt, digits = PROPERTY_TEXT[prop]
    v = _rounded(value, digits)
    return fmt.format(v=v), v


def material_property_text(prop: str, value: float) -> tuple[str, float]:
    """(`"a band gap of 1.33 eV"`, 1.33)."""
    fmt, digits = MATERIAL_TEXT[prop]
    v = _rounded(value, digits)
    return fmt.format(v=v), v


# ------------------------------------------------------------------ molecules: properties and similarity


def molecule_properties(smiles: str) -> dict[str, float] | None:
    """QED, HBA, HBD, FSP3, RotBonds, TPSA, LogP from RDKit (None when the SMILES does not parse)."""
    from rdkit.Chem import QED, Crippen, rdMolDescriptors

    from naturelm.language.codecs import mol_from_smiles

    mol = mol_from_smiles(smiles)
    if mol is None:
        return None
    return {
        "QED": QED.qed(mol), "HBA": rdMolDescriptors.CalcNumHBA(mol), "HBD": rdMolDescriptors.CalcNumHBD(mol),
        "FSP3": rdMolDescriptors.CalcFractionCSP3(mol), "RotBonds": rdMolDescriptors.CalcNumRotatableBonds(mol),
        "TPSA": rdMolDescriptors.CalcTPSA(mol), "LogP": Crippen.MolLogP(mol),
    }


# ------------------------------------------------------------------ reactions


def randomized_smiles(smiles: str, n: int, seed: int) -> list[str]:
    """n randomized SMILES of a molecule or a '.'-joined set (RDKit doRandom, seeded); components shuffled too."""
    from rdkit import Chem

    from naturelm.language.codecs import mol_from_smiles

    rng = random.Random(seed)
    parts = [mol_from_smiles(p) for p in smiles.split(".")]
    if any(m is None for m in parts):
        raise EntityError("molecule", smiles, None, "RDKit cannot parse this SMILES")
    variants = [Chem.MolToRandomSmilesVect(m, n, randomSeed=seed + i) for i, m in enumerate(parts)]
    out = []
    for c in range(n):
        comps = [v[c] for v in variants]
        rng.shuffle(comps)
        out.append(".".join(comps))
    return out


def retrosynthesis_records(reactions, rng: random.Random, augment: int = 0, seed: int = 0) -> list[dict]:
    """Product -> canonical reactant set; `augment` extra copies with a randomized product SMILES."""
    out = []
    for r in reactions:
        meta = {"product": r.product, "reactants": r.reactants, "rxn_class": r.rxn_class}
        inputs = [r.product] + (randomized_smiles(r.product, augment, seed + _stable(r.product)) if augment else [])
        for smi in inputs:
            out.append(record("retrosynthesis", _phrase("retrosynthesis", rng, product=wrap("product", smi)),
                              wrap("reactants", r.reactants), dict(meta)))
    return out


def forward_records(reactions, rng: random.Random, augment: int = 0, seed: int = 0) -> list[dict]:
    """Reactant set -> canonical product; `augment` extra copies with randomized reactant SMILES."""
    out = []
    for r in reactions:
        meta = {"reactants": r.reactants, "product": r.product}
        inputs = [r.reactants] + (randomized_smiles(r.reactants, augment, seed + _stable(r.reactants)) if augment else [])
        for smi in inputs:
            out.append(record("forward", _phrase("forward", rng, reactants=wrap("reactants", smi)),
                              wrap("product", r.product), dict(meta)))
    return out


def rag_records(queries, train, rng: random.Random, k: int = 3, train_fp=None, direction: str = "retro") -> list[dict]:
    """Records with the k most similar TRAIN reactions in the prompt, never the query's own reaction.

    direction "retro" (task retrosynthesis_rag): product -> reactants, neighbours by product similarity, none with
    the query's product. "forward" (task forward_rag): reactants -> product, neighbours by reactant-set similarity,
    none with the query's reactant set or product. Molecules are compared by connectivity (`splits.mol_key`), so a
    stereoisomer of the query's product is excluded too. `train_fp` (the `fingerprint_matrix` of the train side searched:
    products for retro, reactant sets for forward) can be passed to reuse it across calls."""
    task, query, answer, _ = rag_direction(direction)
    if not queries:
        return []
    t_fp = train_fp if train_fp is not None else fingerprint_matrix([getattr(r, query) for r in train])
    q_fp = fingerprint_matrix([getattr(r, query) for r in queries])
    same: dict[str, set[int]] = {}  # a query or answer molecule (by connectivity) -> train rows holding it on that side
    for j, r in enumerate(train):
        same.setdefault(f"q:{mol_key(getattr(r, query))}", set()).add(j)
        if direction == "forward":
            same.setdefault(f"a:{mol_key(getattr(r, answer))}", set()).add(j)

    def exclude(i: int) -> set[int]:
        q = queries[i]
        return same.get(f"q:{mol_key(getattr(q, query))}", set()) | same.get(f"a:{mol_key(getattr(q, answer))}", set())

    hits = tanimoto_neighbours(q_fp, t_fp, k, exclude=exclude)
    out = []
    for q, nb in zip(queries, hits):
        neighbours = [{query: getattr(train[j], query), answer: getattr(train[j], answer), "similarity": round(s, 4)}
                      for j, s in nb]
        meta = {query: getattr(q, query), answer: getattr(q, answer), "rxn_class": q.rxn_class,
                "neighbours": neighbours}
        text = _phrase(task, rng, neighbours=neighbour_lines(neighbours, direction),
                       **{query: wrap(query, getattr(q, query))})
        out.append(record(task, text, wrap(answer, getattr(q, answer)), meta))
    return out


def neighbour_lines(neighbours: list[dict], direction: str = "retro") -> str:
    """The neighbour lines of a retrieval-augmented prompt, one per reaction:
    `Similar reaction: <product>…</product> → <reactants>…</reactants>` (retro) or
    `Similar reaction: <reactants>…</reactants> → <product>…</product>` (forward)."""
    line = rag_direction(direction)[3]
    return "\n".join(line.format(product=wrap("product", n["product"]), reactants=wrap("reactants", n["reactants"]))
                     for n in neighbours)


def rag_direction(direction: str) -> tuple[str, str, str, str]:
    """(task, query field, answer field, neighbour line) of a retrieval direction; ConfigError if unknown."""
    query, answer = reaction_sides(direction)
    task, line = RAG_DIRECTIONS[direction]
    return task, query, answer, line


def _stable(text: str) -> int:
    """A process-independent integer hash (Python's hash() is salted per process)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


# ------------------------------------------------------------------ names


def naming_records(pairs: Iterable[dict], rng: random.Random) -> list[dict]:
    """Both directions for each verified `{"smiles", "name", "inchikey"}` pair."""
    out = []
    for p in pairs:
        meta = {"smiles": p["smiles"], "name": p["name"], "inchikey": p["inchikey"]}
        out.append(record("smiles_to_iupac", _phrase("smiles_to_iupac", rng, mol=wrap("mol", p["smiles"])),
                          p["name"], dict(meta)))
        out.append(record("iupac_to_smiles", _phrase("iupac_to_smiles", rng, name=p["name"]),
                          wrap("mol", p["smiles"]), dict(meta)))
    return out


# ------------------------------------------------------------------ unconditional generation

_GEN_TAGS = {"molecule_generation": "mol", "protein_generation": "protein", "rna_generation": "rna",
             "material_generation": "material"}


def generation_records(task: str, entities: Iterable[str]) -> list[dict]:
    """Prompt = the bare opening tag; response = the tagged entity."""
    tag = _GEN_TAGS[task]
    return [record(task, TEMPLATES[task][0], wrap(tag, e)) for e in entities]


# ------------------------------------------------------------------ molecules: properties, optimisation, BBB


def property_records(mols: Iterable[tuple[str, dict]], rng: random.Random) -> list[dict]:
    """One record per molecule: a randomly chosen property, its target stated in the text, the molecule."""
    out = []
    for smi, props in mols:
        prop = rng.choice(MOLECULE_PROPERTIES)
        text, target = property_text(prop, props[prop])
        out.append(record("property_to_molecule", _phrase("property_to_molecule", rng, property_text=text),
                          wrap("mol", smi), {"property": prop, "target": target}))
    return out


def optimization_records(smiles: list[str], props_fn, rng: random.Random, min_sim: float = 0.6, k: int = 5,
                         cap: int | None = None, per_source: int = 2) -> list[dict]:
    """Pairs of similar molecules (Tanimoto >= min_sim) where the second changes QED, LogP or HBD by the delta.

    `props_fn(list of SMILES) -> {smiles: properties}` is called only for molecules that have a neighbour,
    so RDKit properties (QED is slow) are computed for candidates only. Sources are visited in a seeded order.
    """
    smiles = sorted(set(smiles))
    if len(smiles) < 2:
        return []
    fp = fingerprint_matrix(smiles)
    hits = tanimoto_neighbours(fp, fp, k, min_sim, exclude=lambda i: (i,))
    order = [i for i in range(len(smiles)) if hits[i]]
    rng.shuffle(order)
    out: list[dict] = []
    for i in order:
        if cap is not None and len(out) >= cap:
            break
        ps = props_fn([smiles[i]] + [smiles[j] for j, _ in hits[i]])
        if smiles[i] not in ps:
            continue
        options = []
        for j, sim in hits[i]:
            if smiles[j] not in ps:
                continue
            for prop, (_, delta) in OPTIMIZATION.items():
                diff = ps[smiles[j]][prop] - ps[smiles[i]][prop]
                if abs(diff) >= delta:
                    options.append((j, sim, prop, "increase" if diff > 0 else "decrease"))
        rng.shuffle(options)
        for j, sim, prop, direction in options[:per_source]:
            name, delta = OPTIMIZATION[prop]
            text = _phrase("property_optimization", rng, mol=wrap("mol", smiles[i]), direction=direction,
                           property_name=name, delta=delta)
            meta = {"smiles": smiles[i], "property": prop, "direction": direction, "delta": delta,
                    "similarity": round(sim, 4)}
            out.append(record("property_optimization", text, wrap("mol", smiles[j]), meta))
    return out if cap is None else out[:cap]


def bbb_records(mols: Iterable[dict], rng: random.Random) -> list[dict]:
    """`Can <mol>… traverse the blood-brain barrier?` -> `Yes.` / `No.` from B3DB labels."""
    return [record("bbb_classification", _phrase("bbb_classification", rng, mol=wrap("mol", m["smiles"])),
                   "Yes." if m["label"] == 1 else "No.", {"smiles": m["smiles"], "label": m["label"]})
            for m in mols]


def bbb_optimization_records(mols: list[dict], rng: random.Random, min_sim: float = 0.5, k: int = 3) -> list[dict]:
    """BBB- molecule -> its most similar BBB+ molecules (Tanimoto >= min_sim) from B3DB."""
    neg = [m["smiles"] for m in mols if m["label"] == 0]
    pos = [m["smiles"] for m in mols if m["label"] == 1]
    if not neg or not pos:
        return []
    hits = tanimoto_neighbours(fingerprint_matrix(neg), fingerprint_matrix(pos), k, min_sim)
    out = []
    for smi, nb in zip(neg, hits):
        for j, sim in nb[:1]:
            text = _phrase("bbb_optimization", rng, mol=wrap("mol", smi))
            out.append(record("bbb_optimization", text, wrap("mol", pos[j]),
                              {"smiles": smi, "similarity": round(sim, 4)}))
    return out


# ------------------------------------------------------------------ proteins, materials, RNA


def text_to_protein_records(proteins: Iterable[dict], rng: random.Random) -> list[dict]:
    """`Generate a soluble protein sequence.` -> `<protein>…</protein>` from aaanalysis SOLUBLE labels."""
    out = []
    for p in proteins:
        label = SOLUBILITY_LABELS[p["label"]]
        out.append(record("text_to_protein", _phrase("text_to_protein", rng, label=label),
                          wrap("protein", p["sequence"]), {"property": label}))
    return out


def composition_records(materials: Iterable[dict], rng: random.Random) -> list[dict]:
    """`Build a material that has Li, Ti, O` -> `<material>…</material>`."""
    out = []
    for m in materials:
        els = list(m["elements"])
        rng.shuffle(els)
        out.append(record("composition_to_material",
                          _phrase("composition_to_material", rng, elements=", ".join(els)),
                          wrap("material", m["material"]), {"elements": sorted(els)}))
    return out


def material_property_records(materials: Iterable[dict], rng: random.Random) -> list[dict]:
    """`Build a material with a band gap of 1.33 eV.` -> `<material>…</material>` from CrabNet targets."""
    out = []
    for m in materials:
        text, target = material_property_text(m["property"], m["value"])
        out.append(record("property_to_material", _phrase("property_to_material", rng, property_text=text),
                          wrap("material", m["material"]), {"property": m["property"], "target": target}))
    return out


def pam_sites(dna: str, lengths=(17, 24)) -> list[int]:
    """Positions p where dna[p:p+3] is an NGG PAM with at least the shortest spacer length of DNA before it."""
    return [p for p in range(lengths[0], len(dna) - 2) if dna[p + 1:p + 3] == "GG"]


def guide_rna_records(sequences: Iterable[dict], rng: random.Random, per_sequence: int = 1) -> list[dict]:
    """Target DNA -> spacer RNA: a 17-24 nt stretch of the DNA immediately 5' of an NGG PAM, as RNA.

    `meta` holds the DNA, the spacer (RNA letters), its start and the PAM position.
    """
    from naturelm.language.codecs import dna_to_rna

    out = []
    for s in sequences:
        dna = s["dna"]
        sites = pam_sites(dna)
        rng.shuffle(sites)
        for p in sites[:per_sequence]:
            length = min(rng.choice(SPACER_LENGTHS), p)
            spacer = dna_to_rna(dna[p - length:p])
            text = _phrase("guide_rna", rng, dna=wrap("dna", dna))
            out.append(record("guide_rna", text, wrap("rna", spacer),
                              {"dna": dna, "spacer": spacer, "start": p - length, "pam": p}))
    return out


# ------------------------------------------------------------------ cross-domain


def target_text(target: dict, by: str) -> str:
    """How a prompt names a ligand target: `by` "sequence" (its tagged pocket sequence) or "name"."""
    if by == "sequence":
        return TARGET_TEXT["sequence"].format(protein=wrap("protein", target["sequence"]))
    return TARGET_TEXT["name"].format(name=target["target_name"], gene=target["gene"])


def protein_ligand_records(pairs: Iterable[dict], targets: dict[str, dict], rng: random.Random) -> list[dict]:
    """Target -> ligand: one record per measured active `{"gene", "smiles", "p_affinity", ...}`; the prompt names
    the target by its pocket sequence (when `targets[gene]` has one) or its name, chosen at random."""
    out = []
    for p in pairs:
        t = targets[p["gene"]]
        by = rng.choice(("sequence", "name")) if t.get("sequence") else "name"
        meta = {"gene": p["gene"], "smiles": p["smiles"], "p_affinity": p["p_affinity"], "by": by,
                "holdout": p.get("holdout", "")}
        out.append(record("protein_to_molecule", _phrase("protein_to_molecule", rng, target=target_text(t, by)),
                          wrap("mol", p["smiles"]), meta))
    return out


def central_dogma_records(pairs: Iterable[dict], rng: random.Random, directions=("dna_to_protein", "protein_to_dna")
                          ) -> list[dict]:
    """Gene DNA -> protein and protein -> gene DNA from checked `{"id", "dna", "protein", "source"}` pairs."""
    out = []
    for p in pairs:
        meta = {"dna": p["dna"], "protein_sequence": p["protein"], "id": p["id"], "source": p["source"]}
        if "dna_to_protein" in directions:
            out.append(record("dna_to_protein", _phrase("dna_to_protein", rng, dna=wrap("dna", p["dna"])),
                              wrap("protein", p["protein"]), dict(meta)))
        if "protein_to_dna" in directions:
            out.append(record("protein_to_dna", _phrase("protein_to_dna", rng, protein=wrap("protein", p["protein"])),
                              wrap("dna", p["dna"]), dict(meta)))
    return out


def rbp_records(examples: Iterable[dict], rng: random.Random) -> list[dict]:
    """RBP -> RNA from `{"by", "gene", "gene_id", "family", "rna"}` (naturelm.data.cross_domain.rbp_examples):
    the prompt names the protein by gene name, gene id or family; `meta` says which (`by`) and the name (`rbp`)."""
    out = []
    for e in examples:
        rbp = RBP_TEXT[e["by"]].format(**e)
        meta = {"by": e["by"], "rbp": e[e["by"]], "gene": e["gene"]}
        out.append(record("protein_to_rna", _phrase("protein_to_rna", rng, rbp=rbp), wrap("rna", e["rna"]), meta))
    return out


def instruction(task: str, **fields) -> str:
    """The task's first phrasing (naturelm.data.instructions.TEMPLATES) filled with `fields`.

    A field named after a tag (`product`, `reactants`, `mol`, `dna`) is given bare and wrapped here.
    """
    values = {k: wrap(k, v) if k in TAGS and TAGS[k].domain != "text" else v for k, v in fields.items()}
    template = TEMPLATES[task][0]
    try:
        return template.format(**values)
    except KeyError as exc:
        raise ConfigError(f"template {template!r} of task {task!r} needs {exc}; NatureLM fills {sorted(values)}") from None
