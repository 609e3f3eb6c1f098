"""`naturelm data corpus`: file inputs -> validated, deduplicated, test-free, mixed, sharded token files (datatrove),
and the sharded pre-training loader."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from test_train_data import NCI

SITE = Path(np.__file__).parents[1]
SOLUBLE = SITE / "aaanalysis" / "_data" / "benchmarks" / "SEQ_SOLUBLE.tsv"
MP_EFORM = SITE / "crabnet" / "data" / "matbench" / "mp_e_form.csv"
LET7A = "UGGGAUGAGGUAGUAGGUUGUAUAGUUUUAGGGUCACACCCACCACUGGGAGAUAACUAUACAAUCUACUGUCUUUCCUA"  # hsa-let-7a-1 hairpin
MIR21 = "UGUCGGGUAGCUUAUCAGACUGAUGUUGACUGUUGAAUCUCAUGGCAACACCAGUCGAUGGGCUGUCUGACA"  # hsa-mir-21 hairpin


def write_inputs(root: Path) -> dict[str, Path]:
    """Small real inputs in every supported format, with known bad rows and duplicates."""
    from pymatgen.core import Lattice, Structure

    root.mkdir(parents=True, exist_ok=True)
    nci = [line for line in NCI.read_text().splitlines() if line.strip()][:120]
    (root / "mols.smi").write_text("\n".join(nci + ["C1CC", "CC(C)(C)(C)(C)C", "OCC", "CCO", "# a comment"]) + "\n")
    if not SOLUBLE.is_file() or not MP_EFORM.is_file():
        pytest.skip("aaanalysis / crabnet data packages not installed (make setup)")
    seqs = [line.split("\t")[2] for line in SOLUBLE.read_text().splitlines()[1:41]]
    with gzip.open(root / "prot.fa.gz", "wt") as f:
        for i, s in enumerate(seqs):
            f.write(f">sol{i}\n{s[:60]}\n{s[60:]}\n")
        f.write(">bad\nMKT1LV\n>empty\n")
    (root / "rna").mkdir()
    (root / "rna" / "a.fa").write_text(f">let-7a-1\n{LET7A}\n")
    (root / "rna" / "b.fa").write_text(f">mir-21 as DNA letters\n{MIR21.replace('U', 'T')}\n>let-7a-1 again\n{LET7A}\n")
    rows = MP_EFORM.read_text().splitlines()[1:31]
    (root / "mat.csv").write_text("formula,target\n" + "\n".join(rows + ["Xx2O,1.0", "Li0.5O,1.0", rows[0]]) + "\n")
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    (root / "cif").mkdir()
    (root / "cif" / "nacl.cif").write_text(nacl.to(fmt="cif"))
    (root / "cif" / "broken.cif").write_text("data_broken\n_cell_length_a 5\n")
    (root / "rxn.csv").write_text(
        "id,reactants>reagents>production\n"
        "1,CC(=O)O.OCC>>CC(=O)OCC\n"
        "2,Brc1ccccc1.OB(O)c1ccccc1>[Pd]>c1ccc(-c2ccccc2)cc1\n"
        "3,[CH3:1][OH:2]>>[CH3:1][O:2]C\n"
        "4,not a reaction\n")
    (root / "text.jsonl").write_text(
        json.dumps({"text": "Ethanol, <mol>CCO</mol>, is a common solvent."}) + "\n"
        + json.dumps({"text": "The  let-7a precursor\n<rna>" + LET7A + "</rna> folds into a hairpin."}) + "\n"
        + json.dumps({"text": "broken <mol>CCO"}) + "\n" + json.dumps({"other": 1}) + "\n")
    return {"molecule": root / "mols.smi", "protein": root / "prot.fa.gz", "rna": root / "rna" / "*.fa",
            "material": root / "mat.csv", "material_cif": root / "cif", "reaction": root / "rxn.csv",
            "text": root / "text.jsonl"}


def spec_for(files: dict, **kw):
    from naturelm.data.filecorpus.inputs import Input
    from naturelm.data.filecorpus.pipeline import CorpusSpec

    inputs = [Input(d.split("_")[0], str(p)) for d, p in files.items()]
    return CorpusSpec(inputs=inputs, **{"valid_fraction": 0.1, "block_size": 16, **kw})


def documents(out: Path, split: str) -> list[str]:
    """The decoded documents of a split, in stream order."""
    from naturelm.data.shards import shard_paths
    from naturelm.language.tokenizer import NatureTokenizer

    tok = NatureTokenizer.from_pretrained(out / "tokenizer")
    ids = np.concatenate([np.fromfile(p, dtype=np.uint32) for p, _ in shard_paths(out / "pretrain", split)])
    cuts = np.flatnonzero(ids == tok.eos_token_id)
    assert len(cuts) and cuts[-1] == len(ids) - 1  # every document ends with EOS
    return [tok.decode(d.tolist()) for d in np.split(ids, cuts + 1)[:-1]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from naturelm.data.filecorpus.pipeline import build_corpus

    root = tmp_path_factory.mktemp("corpus")
    files = write_inputs(root / "in")
    card = build_corpus(spec_for(files, buckets=2), root / "out", workers=1)
    return files, root / "out", card


def test_every_record_is_counted_and_rejections_have_reasons(built):
    _, out, card = built
    src = card["sources"]
    for s in src.values():
        assert s["read"] == s["kept"] + s["rejected_total"] + s["excluded_test_entities"]
        assert s["unique"] == s["kept"] - s["duplicates"]
    by_domain = {s["domain"]: s for s in src.values() if s["files"] == 1 or s["domain"] == "rna"}
    mol = by_domain["molecule"]
    assert mol["read"] == 124 and mol["duplicates"] >= 1  # OCC and CCO are one molecule
    assert mol["rejected"]["RDKit cannot parse this SMILES"] == 2  # C1CC (open ring), pentavalent carbon
    prot = by_domain["protein"]
    assert (prot["read"], prot["kept"]) == (42, 40)
    assert prot["rejected"] == {"character … is not in the alphabet ABCDEFGHIJKLMNOPQRSTUVWXYZ": 1, "empty": 1}
    rna = by_domain["rna"]
    assert (rna["files"], rna["read"], rna["duplicates"]) == (2, 3, 1)
    mat = next(s for k, s in src.items() if k.endswith("mat.csv"))
    assert mat["rejected"] == {"… is not an element": 1, "non-integer amount … of …": 1}
    from naturelm.language.codecs import formula_to_material

    formulas = [r.split(",")[0] for r in MP_EFORM.read_text().splitlines()[1:31]]
    assert mat["unique"] == len({formula_to_material(f) for f in formulas}) < mat["kept"] == 31  # polymorphs + a repeat
    cif = next(s for k, s in src.items() if k.endswith("cif"))
    assert (cif["files"], cif["kept"], cif["rejected"]) == (2, 1, {"unreadable CIF (ValueError)": 1})
    rxn = next(s for k, s in src.items() if k.endswith("rxn.csv"))
    assert (rxn["kept"], rxn["rejected"]) == (3, {"expected 'reactants>reagents>products'": 1})
    text = next(s for k, s in src.items() if k.endswith("text.jsonl"))
    assert text["rejected"] == {"unclosed tag <mol> at position …": 1, "no string field 'text'": 1}
    assert card["exclusion"]["test_entity_keys"] == 0 and "NOT removed" in card["exclusion"]["note"]


def test_documents_are_canonical_unique_and_complete(built):
    from naturelm.language.codecs import canonical_smiles

    _, out, card = built
    docs = documents(out, "train") + documents(out, "valid")
    assert len(docs) == len(set(docs))  # exact dedup, every document once without weights
    assert sum(s["unique"] for s in card["sources"].values()) + 3 == len(docs)  # 3 reactions give 2 documents each
    mols = [d[5:-6] for d in docs if d.startswith("<mol>") and d.endswith("</mol>")]
    assert all(canonical_smiles(m) == m for m in mols) and "CCO" in mols
    assert "<material>Na Na Na Na Cl Cl Cl Cl <sg225></material>" in docs  # the CIF: cell composition + spglib
    assert f"<rna>{MIR21}</rna>" in docs and f"<rna>{LET7A}</rna>" in docs  # DNA letters of an RNA input -> U
    assert "<reactants>CC(=O)O.CCO</reactants> → <product>CCOC(C)=O</product>" in docs
    assert "<product>CCOC(C)=O</product> ⇐ <reactants>CC(=O)O.CCO</reactants>" in docs
    assert "<reactants>CO</reactants> → <product>COC</product>" in docs  # atom maps stripped
    assert f"The let-7a precursor <rna>{LET7A}</rna> folds into a hairpin." in docs
    # the index and card agree with the files
    index = json.loads((out / "pretrain" / "index.json").read_text())
    n_train = sum(s["tokens"] for s in index["splits"]["train"])
    assert n_train == card["pretrain"]["train"]["tokens"] == sum(d["tokens"]["train"] for d in card["domains"].values())
    assert len(documents(out, "valid")) == card["pretrain"]["valid"]["documents"] > 0


def test_identical_output_for_1_and_2_workers_and_any_bucket_count(built, tmp_path):
    from naturelm.data.filecorpus.pipeline import build_corpus

    files, out, card = built
    card2 = build_corpus(spec_for(files, buckets=3), tmp_path / "w2", workers=2, tasks=3)
    assert card2["sha256"] == card["sha256"]
    assert card2["totals"] == card["totals"] and card2["domains"] == card["domains"]
    assert card2["pretrain"]["train"]["shards"] == 3 and card["pretrain"]["train"]["shards"] == 2
    assert not (tmp_path / "w2" / "work" / "parsed").exists()  # intermediate files removed


def test_test_entities_are_excluded_by_key(built, tmp_path):
    from naturelm.data.filecorpus.pipeline import build_corpus

    files, out, _ = built
    data = tmp_path / "built"  # a `naturelm data build` layout: its test records name the entities
    (data / "instructions").mkdir(parents=True)
    (data / "instructions" / "test.jsonl").write_text(
        json.dumps({"task": "molecule_generation", "instruction": "<mol>", "response": "<mol>CCO</mol>", "meta": {}}) + "\n")
    keys = tmp_path / "keys.txt"
    keys.write_text(f"nt:{LET7A.replace('U', 'T')}\nmaterial:Cl Cl Cl Cl Na Na Na Na\n")
    card = build_corpus(spec_for(files, buckets=2, exclude=[str(data), str(keys)]), tmp_path / "out", workers=1)
    docs = documents(tmp_path / "out", "train") + documents(tmp_path / "out", "valid")
    assert not [d for d in docs if "CCO</" in d or ">CCO<" in d or LET7A in d or "<sg225>" in d]
    by_src = {k.rsplit("/", 1)[-1]: s["excluded_test_entities"] for k, s in card["sources"].items()}
    # ethanol: the SMILES file (twice: OCC, CCO), the reaction with ethanol, the text about it; let-7a: 2 RNA records
    # and the text; NaCl: the CIF (Na4Cl4 has the key of the excluded element multiset)
    assert by_src == {"mols.smi": 2, "prot.fa.gz": 0, "*.fa": 2, "mat.csv": 0, "cif": 1, "rxn.csv": 1, "text.jsonl": 2}
    assert card["exclusion"]["test_entity_keys"] == 3


def test_copy_rates_hand_computed():
    from naturelm.data.filecorpus.steps import copy_rates

    plan = {"weights": {"protein": 3.0, "molecule": 1.0}, "tokens": 800, "max_repeats": 4}
    tokens = {"protein": 300, "molecule": 100, "rna": 50}
    assert copy_rates(plan, tokens) == {"protein": 2.0, "molecule": 2.0, "rna": 0.0}  # 600/300, 200/100, weight 0
    assert copy_rates({**plan, "tokens": None}, tokens) == {"protein": 1.125, "molecule": 1.125, "rna": 0.0}
    assert copy_rates({**plan, "tokens": 8000}, tokens)["molecule"] == 4.0  # capped at max_repeats
    assert copy_rates({**plan, "weights": {}}, tokens) == {"protein": 1.0, "molecule": 1.0, "rna": 1.0}


def test_weights_repeat_and_drop_whole_domains(built, tmp_path):
    from naturelm.data.filecorpus.pipeline import build_corpus

    files, _, base = built
    mol = base["domains"]["molecule"]["unique_tokens"]["train"]
    prot = base["domains"]["protein"]["unique_tokens"]["train"]
    # budget = 2 x molecule + 1 x protein tokens, weights in the same ratio: integer rates, so exact counts
    card = build_corpus(spec_for(files, buckets=2, weights={"molecule": 2 * mol, "protein": prot},
                                 tokens=2 * mol + prot), tmp_path / "out", workers=1)
    d = card["domains"]
    assert d["molecule"]["copies_per_document"] == 2.0 and d["protein"]["copies_per_document"] == 1.0
    assert d["molecule"]["tokens"]["train"] == 2 * mol and d["protein"]["tokens"]["train"] == prot
    assert d["rna"]["tokens"]["train"] == 0 and d["text"]["tokens"]["train"] == 0  # no weight: left out
    assert d["molecule"]["tokens"]["valid"] == d["molecule"]["unique_tokens"]["valid"]  # valid: once
    train = documents(tmp_path / "out", "train")
    mols = [x for x in train if x.startswith("<mol>")]
    assert len(mols) == 2 * len(set(mols))


def test_sharded_blocks_cover_an_epoch_once_and_resume_at_any_step(built):
    from naturelm.data.shards import shard_paths
    from naturelm.train.data import ShardedBlocks

    _, out, _ = built
    data = ShardedBlocks(out, "train", 16, 4, seed=3)
    steps = data.batches_per_epoch
    seen = [i for s in range(steps) for i in data.global_batch_indices(s)]
    assert len(seen) == len(set(seen)) == steps * 4 and set(seen) <= set(range(len(data)))
    assert len(data) == sum((n - 1) // 16 for _, n in shard_paths(out / "pretrain", "train"))
    fresh = ShardedBlocks(out, "train", 16, 4, seed=3)  # a resumed run: a new loader asked for step s
    for s in (steps + 1, 5, 0, steps - 1):
        assert fresh.global_batch_indices(s) == data.global_batch_indices(s)
    assert data.global_batch_indices(steps) != data.global_batch_indices(0)  # reshuffled next epoch
    stream = np.concatenate([np.fromfile(p, dtype=np.uint32) for p, _ in shard_paths(out / "pretrain", "train")])
    first_len = (shard_paths(out / "pretrain", "train")[0][1] - 1) // 16
    batch = data.collate([0, first_len])  # block 0 of shard 0 and block 0 of shard 1
    assert batch["input_ids"][0].tolist() == stream[:16].tolist()
    off = shard_paths(out / "pretrain", "train")[0][1]
    assert batch["input_ids"][1].tolist() == stream[off : off + 16].tolist()
    assert batch["labels"][:, :-1].tolist() == batch["input_ids"][:, 1:].tolist()


def test_pretrain_trains_from_the_corpus_and_resumes_after_sigkill(built, tmp_path):
    """`naturelm train pretrain` on the shards: killed after a checkpoint and resumed, the same losses."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_train_loop import REPO, env1, recipe, run_inprocess

    from naturelm.train.metrics import read_metrics

    _, out, _ = built
    cfg = recipe(tmp_path / "r.yaml", out, train={"max_steps": 6, "micro_batch_size": 2},
                 data={"block_size": 16}, log={"every": 1, "eval_every": 3, "eval_batches": 1},
                 ckpt={"every": 2, "keep_last": 2})
    run_inprocess("pretrain", cfg, tmp_path / "ref")
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "naturelm.train.cli", "pretrain", "--config", str(cfg), "--out", str(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**env1(), "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while not (killed / "checkpoints" / "step_0000002").is_dir():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (killed / "model.safetensors").exists()
    summary = run_inprocess("pretrain", cfg, killed)
    assert summary["resumed_from"] in (2, 4)

    def key(rows):
        return [(r["step"], r["loss"], r["tokens"], r.get("val_loss")) for r in rows]

    ref = read_metrics(tmp_path / "ref")
    assert key(read_metrics(killed)) == key(ref) and len(ref) == 6
    assert "val_loss" in ref[2]  # the valid shards are evaluated
    assert os.path.isfile(killed / "model.safetensors")


def test_cli_recipe_yaml_with_relative_inputs(built, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from naturelm.cli import app

    files, out, card = built
    root = files["molecule"].parent
    recipe = root / "corpus.yaml"  # paths in a recipe are relative to the recipe file
    recipe.write_text(yaml.safe_dump({
        "inputs": [{"domain": d.split("_")[0], "path": str(p.relative_to(root))} for d, p in files.items() if d != "text"]
        + ["text=text.jsonl::column=text"],
        "valid_fraction": 0.1, "block_size": 16, "buckets": 2}))
    res = CliRunner().invoke(app, ["data", "corpus", "--recipe", str(recipe), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "records read" in res.output and "rejected in" in res.output
    assert json.loads((tmp_path / "o" / "card.json").read_text())["sha256"] == card["sha256"]
    bad = CliRunner().invoke(app, ["data", "corpus", "--input", "enzyme=x.fa", "--out", str(tmp_path / "b")])
    assert bad.exit_code != 0 and "unknown domain 'enzyme'" in str(bad.exception)


def test_cluster_executors_chain_the_same_stages(built, tmp_path):
    from naturelm.data.filecorpus.pipeline import STAGES, make_executors, plan_build
    from naturelm.errors import ConfigError

    files, _, _ = built
    work = plan_build(spec_for(files, buckets=2), tmp_path / "out")
    execs = make_executors(work, tmp_path / "out", "slurm", tasks=16, workers=1, partition="cpu", time="01:00:00")
    assert [type(e).__name__ for e in execs] == ["SlurmPipelineExecutor"] * len(STAGES)
    assert [e.tasks for e in execs] == [16, 2, 2, 2, 1]
    assert all(b.depends is a for a, b in zip(execs, execs[1:]))
    with pytest.raises(ConfigError, match="slurm-partition"):
        make_executors(work, tmp_path / "out", "slurm")


def test_bucket_files_hold_bounded_bytes_and_append_in_order(tmp_path):
    from naturelm.data.filecorpus.steps import BucketFiles

    out = BucketFiles(lambda b: tmp_path / f"{b}.txt", limit=10)
    for i in range(30):
        out.write(i % 3, f"{i},".encode())
        assert out.size < 10
    out.flush()
    assert (tmp_path / "0.txt").read_text() == "".join(f"{i}," for i in range(0, 30, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.txt", "1.txt", "2.txt"]
    again = BucketFiles(lambda b: tmp_path / f"{b}.txt")  # a retried task starts its files over
    again.write(0, b"x")
    again.flush()
    assert (tmp_path / "0.txt").read_text() == "x"


def test_work_units_cover_every_record_once_for_any_task_count():
    from naturelm.data.filecorpus.steps import work_units

    plan = {"files": [[["big.smi", 1000]], [["a.fa", 90], ["b.fa", 60], ["c.fa", 5]], [["d.csv", 300]]]}
    records = {(i, j): 50 for i, fl in enumerate(plan["files"]) for j in range(len(fl))}
    for world in (1, 2, 3, 5):
        seen = [(i, j, r) for rank in range(world) for i, j, stride, off in work_units(plan, rank, world)
                for r in range(records[(i, j)]) if r % stride == off]
        assert sorted(seen) == sorted((i, j, r) for (i, j), n in records.items() for r in range(n))
    assert [u[2] for u in work_units(plan, 0, 2) if u[:2] == (0, 0)] == [2]  # the big file is shared
