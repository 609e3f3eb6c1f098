"""Crystal receptors of PyPI `dockstring==0.3.4` (Apache-2.0; DUD-E structures): 58 `<GENE>_target.pdbqt` files
with their docking box `<GENE>_conf.txt`.

The sequence of a receptor is read from its CA atoms in residue order (Amber protonation names mapped back:
HIE/HID/HIP -> H, CYX/CYM -> C, ASH -> D, GLH -> E, LYN -> K); other residues (cofactors such as HEM, FAD, NAP,
metal ions) are skipped and counted. It is the crystallised domain, with gaps where residues were not resolved.
"""
from __future__ import annotations

import functools
from pathlib import Path

from naturelm.data.sources.common import (Loaded, SourceReport, dist_version, finite_number, guarded_reads,
                                          open_text, package_file, read_lines)
from naturelm.errors import DataFileError

HINT = "pip install --no-deps dockstring==0.3.4"
THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G", "HIS": "H",
    "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S", "THR": "T", "TRP": "W",
    "TYR": "Y", "VAL": "V", "HIE": "H", "HID": "H", "HIP": "H", "CYX": "C", "CYM": "C", "ASH": "D", "GLH": "E",
    "LYN": "K", "MSE": "M",
}


def targets_dir() -> Path:
    return package_file("dockstring", "resources/targets", HINT)


def pdbqt_sequence(lines, path=None) -> tuple[str, int, list[str]]:
    """(one-letter sequence from CA atoms in file order, number of chain gaps, skipped residue names).

    A gap is a jump of more than one in the residue number within a chain (unresolved residues). Unreadable
    bytes are a DataFileError naming the file and line (`guarded_reads`)."""
    seq, gaps, skipped = [], 0, []
    last: tuple[str, int] | None = None
    seen: set[tuple] = set()
    where = path if path is not None else getattr(lines, "name", "<pdbqt>")
    number = 0
    for number, line in guarded_reads(enumerate(lines, 1), where, lambda: number):
        if not line.startswith(("ATOM", "HETATM")):
            continue
        name, resn, chain = line[12:16].strip(), line[17:20].strip(), line[21:22]
        try:
            resi = int(line[22:26])
        except ValueError:
            continue
        res_id = (chain, resi, line[26:27])
        if resn not in THREE_TO_ONE:
            if res_id not in seen:
                seen.add(res_id)
                skipped.append(resn)
            continue
        if name != "CA" or res_id in seen:
            continue
        seen.add(res_id)
        if last is not None and last[0] == chain and resi - last[1] > 1:
            gaps += 1
        last = (chain, resi)
        seq.append(THREE_TO_ONE[resn])
    return "".join(seq), gaps, skipped


def docking_box(path: Path) -> dict[str, float]:
    """`center_x … size_z` of a dockstring `<GENE>_conf.txt`; DataFileError naming the line of a value that is
    not a finite number."""
    box = {}
    for number, line in read_lines(path):
        if "=" in line:
            k, v = (x.strip() for x in line.split("=", 1))
            box[k] = finite_number(v)
            if box[k] is None:
                raise DataFileError(path, f"{k} = {v[:40]!r} is not a finite number", number)
    return box


def load_dockstring_targets(genes: set[str] | None = None) -> Loaded:
    """`{"gene", "sequence", "gaps", "skipped", "box"}` per receptor (only `genes` when given)."""
    folder = targets_dir()
    report = SourceReport("dockstring:targets", dist_version("dockstring"), str(folder))
    records = []
    for pdbqt in sorted(folder.glob("*_target.pdbqt")):
        gene = pdbqt.name[: -len("_target.pdbqt")]
        if genes is not None and gene not in genes:
            continue
        report.read += 1
        with open_text(pdbqt, newline=None) as f:
            seq, gaps, skipped = pdbqt_sequence(f, pdbqt)
        if len(seq) < 20:
            report.reject("no_protein_chain")
            continue
        conf = folder / f"{gene}_conf.txt"
        records.append({"gene": gene, "sequence": seq, "gaps": gaps, "skipped": sorted(set(skipped)),
                        "box": docking_box(conf) if conf.is_file() else {}})
    report.kept = len(records)
    return Loaded(records, report)


@functools.lru_cache(maxsize=1)
def pocket_sequences() -> dict[str, str]:
    """Pocket sequence of every dockstring receptor by gene (read once; empty when dockstring is absent)."""
    from naturelm.errors import DataSourceMissing

    try:
        return {r["gene"]: r["sequence"] for r in load_dockstring_targets().records}
    except DataSourceMissing:
        return {}
