"""Build recipes: how much of each source to read, per-task caps, augmentation and the corpus mixture.

Built-in recipes are `tiny` (minutes on 2 cores, for NatureLM-tiny) and `full` (everything the sources
hold). A YAML file may name a `base` recipe and override any field (see configs/data_tiny.yaml).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from naturelm.errors import ConfigError

DOMAIN_WEIGHTS_TINY = {"molecule": 0.18, "reaction": 0.30, "protein": 0.12, "dna": 0.04, "rna": 0.06,
                       "material": 0.05, "cross_domain": 0.25}


@dataclass(frozen=True)
class Recipe:
    """Every knob of a data build. `None` means no limit."""

    name: str
    seed: int = 0
    valid_fraction: float = 0.05  # entity-hash split of sources without a standard split
    test_fraction: float = 0.05
    # sources
    uspto_limit: int | None = None  # reactions per split, for quick test builds only (None: the full standard split)
    moses_train: int | None = 12_000  # first rows of MOSES train.csv.gz (train pool)
    moses_test: int | None = 2_000  # first rows of MOSES test.csv.gz (test pool; the next rows are the valid pool)
    moses_valid: int | None = 1_000
    names_limit: int | None = None  # raw records per name source (robocrys, chemicals) sent to OPSIN
    naming_molecules: int = 20_000  # train-split corpus molecules (USPTO-50k, MOSES) named by the naming engine
    naming_workers: int = 1  # naming engine processes
    crabnet_limit: int | None = 10_000  # rows per CrabNet property table
    uniprot_limit: int | None = 5_000
    protein_max_len: int = 600
    # instruction sets
    train_cap: int | None = 3_000  # per task, except retrosynthesis / forward / rag / naming below
    naming_train_cap: int | None = 20_000  # verified name pairs per naming task (SMILES->IUPAC, IUPAC->SMILES)
    valid_cap: int | None = 200
    test_cap: int | None = 300
    retro_augment: int = 2  # extra training copies with a randomized product SMILES
    retro_valid_cap: int | None = 1_000  # the test split is always the full standard test set
    forward_train_cap: int | None = 20_000
    forward_augment: int = 0
    rag_k: int = 3
    rag_train_cap: int | None = 5_000
    rag_test_cap: int | None = 1_000
    forward_rag_train_cap: int | None = 5_000  # forward_rag train records (valid: valid_cap, test: rag_test_cap)
    property_pool: int | None = 4_000  # train molecules given RDKit properties (property_to_molecule, corpus text)
    optimization_min_sim: float = 0.6
    bbb_min_sim: float = 0.5
    guide_rna_per_sequence: int = 2
    # cross-domain (naturelm.data.cross_domain)
    ligand_per_target: int | None = 300  # first rows of each MoleculeACE file (None: all 48,714)
    ligand_holdout: str = "PPARD"  # the target held out whole (test only)
    cds_max_len: int | None = 360  # longest gene DNA (nt) of the central-dogma tasks (NatureLM-tiny reads 512 tokens)
    rbp_per_matrix: int = 1  # RNAs drawn per ATtRACT (gene, matrix) pair
    # pre-training corpus
    pretrain_tokens: int | None = 3_000_000  # None: every document once, weights ignored
    max_repeats: int = 4
    pretrain_valid_fraction: float = 0.01
    block_size: int = 512
    domain_weights: dict = field(default_factory=lambda: dict(DOMAIN_WEIGHTS_TINY))

    def to_dict(self) -> dict:
        return asdict(self)


RECIPES = {
    "tiny": Recipe("tiny"),
    "full": Recipe(
        "full", moses_train=400_000, moses_test=20_000, moses_valid=5_000, naming_molecules=200_000, naming_workers=2,
        crabnet_limit=None, uniprot_limit=None, protein_max_len=2048, train_cap=200_000, naming_train_cap=None, valid_cap=2_000,
        test_cap=5_000, retro_augment=4, retro_valid_cap=None, forward_train_cap=None, forward_augment=1,
        rag_train_cap=None, rag_test_cap=None, forward_rag_train_cap=None, property_pool=100_000, guide_rna_per_sequence=4,
        ligand_per_target=None, cds_max_len=3000, rbp_per_matrix=3,
        pretrain_tokens=None, max_repeats=1, block_size=8192,
    ),
}


def load_recipe(name_or_path: str) -> Recipe:
    """A built-in recipe by name, or a YAML file `{base: tiny, <field>: value, ...}`."""
    if name_or_path in RECIPES:
        return RECIPES[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"unknown recipe {name_or_path!r}: use one of {sorted(RECIPES)} or a YAML file path")
    import yaml

    cfg = yaml.safe_load(path.read_text()) or {}
    base = cfg.pop("base", "tiny")
    if base not in RECIPES:
        raise ConfigError(f"{path}: unknown base recipe {base!r}")
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown recipe fields {unknown}")
    cfg.setdefault("name", path.stem)
    return replace(RECIPES[base], **cfg)
