"""What a prompt asks for, held while decoding: per-prompt masks on top of the grammar, and rejection of draws.

A `Request` acts inside one tag of the answer. It may narrow the grammar's mask (`allowed`: only the requested
elements in a material, only spacers that sit next to a PAM in the target DNA, no bond a SMILES atom has no
valence left for) and it may reject a finished answer (`accept`: SMACT without the alloy shortcut, RDKit
validity, RDKit properties within tolerance), in which case the engine draws that answer again (at most
`max_draws` draws, `naturelm.generate.engine.Engine.generate`; `Generation.draws` says how many it took). Where a mask would leave a row nothing to write, the
grammar's mask is used instead and the final check decides.

`request_for(task, prompt)` reads the request out of a prompt written with the task's templates, so the same
constraints hold for `NatureLM.design_material(...)` and for `naturelm eval` on the test instructions.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

# Aromatic atoms: the most neighbours each may have in an aromatic ring (RDKit's valence rules cover the rest).
AROMATIC_NEIGHBOURS = {"b": 3, "c": 3, "n": 3, "o": 2, "s": 3, "p": 3, "se": 3, "as": 3, "te": 3}
BOND_ORDER = {"-": 1, "=": 2, "#": 3, ":": 1, "/": 1, "\\": 1, "~": 1}
_BRACKET_RE = re.compile(r"^\[(\d*)([A-Z][a-z]?|[a-z][a-z]?|\*)(@*)(H\d*)?([+-]+\d*)?(?::\d+)?\]$")


class Request:
    """Base: no mask, every answer accepted. `tag`: the answer tag it acts in; `what`: one line for the checks."""

    tag: str = ""
    what: str = ""

    def bind(self, cons) -> "Request":
        """Token ids and masks for one engine's tokenizer (`naturelm.generate.constraints.Constraints`)."""
        self.cons = cons
        return self

    def start(self):
        return None

    def advance(self, rs, tid: int):
        return rs

    def allowed(self, rs, remaining: int, logits=None):
        """Bool mask of what may come next inside `tag` (None: no restriction). `logits`: the row's next-token
        logits, for a request that follows what the model is about to do (most ignore them)."""
        return None

    def accept(self, gen) -> bool:
        """Whether a finished answer (a checked Generation) meets the request; else it is drawn again."""
        return gen.valid


# ---------------------------------------------------------------------------------------------- materials
def cell_atom_bound(card: dict | None) -> int:
    """The most atoms per cell a requested material may have: the bound the data build learned from the training
    cells (`materials.atoms_per_cell_bound` of a data card, e.g. a checkpoint's data_card.json), else the material
    codec's limit."""
    from naturelm.language.codecs.material import MAX_ATOMS

    bound = ((card or {}).get("materials") or {}).get("atoms_per_cell_bound")
    return int(bound) if isinstance(bound, int) and bound > 0 else MAX_ATOMS


class ChargeBalance:
    """Which counts of the requested elements can still become a SMACT-valid composition within a number of atoms.

    `smact_charge_states` gives the oxidation-state assignments `o` under which SMACT judges these elements: counts
    `c` (each >= 1) are valid exactly when `o . c == 0` for one of them. From partial counts `p` with `room` atoms
    left, a valid composition is reachable when, for some `o`, writing one atom of each missing element and then
    at most the rest of `room` atoms can bring the charge `o . p` to zero: `fewest_atoms` of o's states for the
    opposite charge is within the room left. The test is exact, so decoding that only writes atoms that keep a
    valid composition reachable, and closes only on valid counts, writes a SMACT-valid composition.
    """

    def __init__(self, elements: tuple[str, ...], max_atoms: int, alloy_shortcut: bool):
        import numpy as np

        from naturelm.language.codecs.material import smact_charge_states

        states = smact_charge_states(tuple(elements), alloy_shortcut)
        self.free = states is None  # every composition is valid (one element, or the alloy shortcut)
        self.states = np.array(states or (), np.int64).reshape(-1, len(elements))
        self.max_atoms = max_atoms
        self.span = max_atoms * int(np.abs(self.states).max(initial=1))  # |charge| of max_atoms atoms at most
        sets: dict = {}  # distinct sets of states -> row of min_atoms
        self.set_of = np.array([sets.setdefault(frozenset(o), len(sets)) for o in map(tuple, self.states)], np.int64)
        tables = [fewest_atoms(tuple(sorted(int(v) for v in s)), max_atoms, self.span) for s in sets]
        self.min_atoms = np.stack(tables) if tables else np.zeros((0, 2 * self.span + 1), np.int16)
        self.feasible = self.free or self.reachable(np.zeros(len(elements), np.int64), max_atoms)

    def valid(self, counts) -> bool:
        """Whether counts (each >= 1) make a SMACT-valid composition."""
        import numpy as np

        counts = np.asarray(counts, np.int64)
        return bool(counts.min() >= 1 and (self.free or (self.states @ counts == 0).any()))

    def completion(self, counts, room: int) -> int | None:
        """The fewest atoms to add to `counts` for valid counts with every element present (None: more than
        `room`)."""
        import numpy as np

        counts = np.asarray(counts, np.int64)
        missing = counts == 0
        forced = int(missing.sum())
        if self.free:
            return forced if forced <= room else None
        charge = self.states @ counts + self.states[:, missing].sum(1)
        index = self.span - charge
        inside = (index >= 0) & (index <= 2 * self.span)
        if not inside.any():
            return None
        best = forced + int(self.min_atoms[self.set_of[inside], index[inside]].min())
        return best if best <= room else None

    def reachable(self, counts, room: int) -> bool:
        """Whether adding at most `room` atoms to `counts` can give valid counts with every element present."""
        return self.completion(counts, room) is not None


@functools.lru_cache(maxsize=4096)
def fewest_atoms(values: tuple[int, ...], max_atoms: int, span: int):
    """Fewest atoms (at most `max_atoms`; `max_atoms + 1`: more), each of a charge in `values`, whose charges sum
    to each charge in [-span, span] (index: charge + span). Breadth-first; the charges reached are the bits of a
    Python int. Shared by every request whose oxidation-state sets repeat (cached)."""
    import numpy as np

    size = 2 * span + 1
    nbytes = (size + 7) // 8
    best = np.full(size, max_atoms + 1, np.int16)
    best[span] = 0
    frontier = seen = 1 << span
    everything = (1 << size) - 1
    for atoms in range(1, max_atoms + 1):
        nxt = 0
        for v in values:
            nxt |= frontier << v if v >= 0 else frontier >> -v
        nxt &= everything & ~seen
        if not nxt:
            break
        bits = np.unpackbits(np.frombuffer(nxt.to_bytes(nbytes, "little"), np.uint8), bitorder="little")[:size]
        best[bits.astype(bool)] = atoms
        seen |= nxt
        frontier = nxt
    best.flags.writeable = False
    return best


class ElementsRequest(Request):
    """A material of exactly the requested elements, each at least once, at most `max_atoms` atoms per cell, and
    SMACT-valid (without the alloy shortcut unless every requested element is a metal) by construction where any
    such composition exists: an atom is written only while a valid composition stays reachable (`ChargeBalance`),
    and the composition closes only on one. Which valid stoichiometry is written is the model's choice."""

    tag = "material"

    def __init__(self, elements, max_atoms: int):
        from naturelm.errors import ConfigError

        self.elements = element_symbols(elements)
        self.max_atoms = max_atoms
        if self.max_atoms < len(self.elements):
            raise ConfigError(f"{len(self.elements)} elements cannot fit in {self.max_atoms} atoms per cell")
        self.alloy = all_metals(self.elements)
        self.charge = ChargeBalance(self.elements, self.max_atoms, alloy_shortcut=self.alloy)
        if self.charge.free:
            smact = "SMACT-valid without a check (" + (
                "one element)" if len(self.elements) == 1 else "alloy shortcut: all requested elements are metals)")
        elif self.charge.feasible:
            smact = ("charge-balanced while decoding: only counts that can still reach a SMACT-valid composition "
                     "(ICSD-24 oxidation states, Pauling test), closing only on one; the model picks which")
        else:
            smact = (f"no SMACT-valid composition of these elements has at most {self.max_atoms} atoms, "
                     "so charge balance is not held")
        self.what = (f"only {', '.join(self.elements)}, each at least once, at most {self.max_atoms} atoms per cell; "
                     + smact)

    def bind(self, cons) -> "ElementsRequest":
        from naturelm.language.tags import DOMAINS

        self.cons = cons
        prefix = DOMAINS["material"].prefix
        self.ids = {cons.tok_id(prefix + e): j for j, e in enumerate(self.elements)}
        if None in self.ids:
            from naturelm.errors import ConfigError

            raise ConfigError(f"the tokenizer has no material token for some of {self.elements}")
        self.finish = cons._mask(list(cons.sg_ids) + [cons.close_of["material"]])
        self._masks: dict = {}
        return self

    def start(self):
        return (0,) * len(self.elements)  # atoms written of each requested element

    def advance(self, rs, tid: int):
        return self._plus(rs, tid) if tid in self.ids else rs

    def allowed(self, rs, remaining: int, logits=None):
        """The requested elements within the bound, charge-balanced (see the class). Where the composition cannot
        close yet and `logits` make stopping likelier than going on (the model would end the composition here),
        only atoms on a shortest way to a valid composition: it ends at the valid stoichiometry nearest to where
        the model meant to stop, rather than growing towards the atoms bound."""
        room = min(self.max_atoms - sum(rs), remaining - 1)  # atoms still allowed; the closing tag needs one token
        held = self.charge.feasible and not self.charge.free
        key = (rs, room) if held else (tuple(c > 0 for c in rs), rs.count(0) >= room, room <= 0)
        entry = self._masks.get(key)
        if entry is None:
            entry = self._mask(rs, room)
            if len(self._masks) < 65536:
                self._masks[key] = entry
        mask, elements, closes = entry
        if logits is None or not held or closes:
            return mask
        import torch

        if torch.logsumexp(logits[self.finish], 0) < torch.logsumexp(logits[elements], 0):
            return mask
        nearest = self._masks.get((rs, room, "nearest"))
        if nearest is None:
            nearest = self._nearest(rs, room, mask)
            self._masks[(rs, room, "nearest")] = nearest
        return nearest

    def _mask(self, rs, room: int):
        """(mask, the requested elements that fit regardless of charge, whether the composition may close)."""
        missing = rs.count(0)
        if room <= 0:
            ids = []
        elif missing >= room:  # only the missing elements still fit
            ids = [i for i, j in self.ids.items() if not rs[j]]
        else:
            ids = list(self.ids)
        elements = self.cons._mask(ids)
        close = not missing
        if self.charge.feasible and not self.charge.free:
            held = [i for i in ids if self.charge.reachable(self._plus(rs, i), room - 1)]
            held_close = close and self.charge.valid(rs)
            if held or held_close:  # else (too few tokens left to balance) hold the elements alone
                ids, close = held, held_close
        mask = self.cons._mask(ids)
        return (mask | self.finish if close else mask), elements, close

    def _nearest(self, rs, room: int, mask):
        """The allowed atoms after which a valid composition is one atom nearer (the first steps of the shortest
        completions); `mask` itself where there is none."""
        need = self.charge.completion(rs, room)
        if not need:
            return mask
        ids = [i for i in self.ids if bool(mask[i]) and self.charge.completion(self._plus(rs, i), room - 1) == need - 1]
        return self.cons._mask(ids) if ids else mask

    def _plus(self, rs, tid: int):
        j = self.ids[tid]
        return rs[:j] + (rs[j] + 1,) + rs[j + 1:]

    def accept(self, gen) -> bool:
        from naturelm.language.codecs import material_to_formula, smact_valid

        if not gen.valid or gen.tag != self.tag:
            return False
        formula, _ = material_to_formula(gen.canonical)
        return smact_valid(formula, alloy_shortcut=self.alloy)


def element_symbols(elements) -> tuple[str, ...]:
    """The distinct requested elements, sorted; ConfigError when none is given or one is no element symbol."""
    from naturelm.errors import ConfigError
    from naturelm.language.codecs.molecule import ELEMENTS

    given = list(elements)
    symbols = tuple(sorted(set(given)))
    unknown = [e for e in symbols if e not in ELEMENTS]
    if not symbols or unknown:
        raise ConfigError(f"requested elements {given}: {unknown or 'none given'} are not element symbols")
    return symbols


def prompt_elements(prompt: str) -> list[str] | None:
    """The element symbols a `composition_to_material` instruction names (one of its templates filled in), in the
    order written; None when the prompt is no such instruction. Words that are no element symbol are skipped."""
    from naturelm.language.codecs.molecule import ELEMENTS

    fields = _template_fields("composition_to_material", prompt)
    if not fields:
        return None
    return [e for e in re.findall(r"[A-Z][a-z]?", fields["elements"]) if e in ELEMENTS]


def all_metals(elements) -> bool:
    """Whether every element is a metal (pymatgen): such a request is an alloy, where SMACT's shortcut applies."""
    from pymatgen.core import Element

    return all(Element(e).is_metal for e in elements)


# ---------------------------------------------------------------------------------------------- guide RNA
class SpacerRequest(Request):
    """A spacer copied from the target DNA (either strand) immediately 5' of an NGG PAM, 17-24 nt, as RNA:
    decoding walks a trie of every such spacer, so nothing else can be written."""

    tag = "rna"

    def __init__(self, dna: str):
        from naturelm.errors import ConfigError
        from naturelm.tasks.guide_rna import target_spacers

        self.spacers = target_spacers(dna)
        if not self.spacers:
            raise ConfigError("the target DNA has no NGG PAM with 17 nt before it on either strand: no guide can target it")
        self.prefixes = {s[:i] for s in self.spacers for i in range(len(s) + 1)}
        self.what = f"a 17-24 nt spacer of the target next to an NGG PAM ({len(self.spacers)} possible)"

    def bind(self, cons) -> "SpacerRequest":
        from naturelm.language.tags import DOMAINS

        self.cons = cons
        prefix = DOMAINS["rna"].prefix
        self.ids = {cons.tok_id(prefix + b): b for b in "ACGU"}
        self.letter = {i: b for i, b in self.ids.items() if i is not None}
        self.close = cons.close_of["rna"]
        self._masks: dict = {}
        return self

    def start(self):
        return ""

    def advance(self, rs, tid: int):
        return rs + self.letter.get(tid, "?")

    def allowed(self, rs, remaining: int, logits=None):
        mask = self._masks.get(rs)
        if mask is None:
            ids = [i for i, b in self.letter.items() if rs + b in self.prefixes and remaining > 1]
            mask = self.cons._mask(ids + ([self.close] if rs in self.spacers else []))
            if len(self._masks) < 4096:
                self._masks[rs] = mask
        return mask

    def accept(self, gen) -> bool:
        # the canonical RNA may hold U (or T, which the RNA codec tolerates): compare in RNA letters
        return gen.valid and gen.tag == self.tag and gen.canonical.replace("T", "U") in self.spacers


# ---------------------------------------------------------------------------------------------- molecules
@dataclass(frozen=True)
class Valence:
    """Valence left while writing a SMILES: of the atom the next bond attaches to (`cur`, None: none yet), of the
    atoms branches were opened at (`stack`), the pending bond order, and whether a branch was just opened."""

    cur: int | None = None
    stack: tuple = ()
    bond: int = 1
    opened: bool = False
    bracket: bool = False  # inside a bracket atom spelled out token by token (not tracked)
    rings: tuple = ()  # (ring label token, bond order) of the open ring bonds


def atom_valence(unit: str) -> int:
    """Bonds a SMILES atom may form (8: unlimited, as far as this check knows).

    Aliphatic atoms: the largest valence RDKit allows the element (for a charged atom, the isoelectronic element:
    N+ like C, O- like F), less the bracket's hydrogens; elements RDKit does not check get 8. Aromatic atoms: the
    most neighbours they take in a ring (`AROMATIC_NEIGHBOURS`), one more per positive and one less per negative
    charge on n/o/s/p, less hydrogens.
    """
    m = _BRACKET_RE.match(unit) if unit.startswith("[") else None
    if unit.startswith("[") and not m:
        return 8
    el, h, charge = (m.group(2), m.group(4), m.group(5) or "") if m else (unit, None, "")
    if el == "*":
        return 8
    hs = 0 if not h else (int(h[1:]) if len(h) > 1 else 1)
    sign = charge[:1]
    size = (int(charge[1:]) if charge[1:].isdigit() else len(charge)) if charge else 0
    net = size if sign == "+" else -size
    if el.islower():
        base = AROMATIC_NEIGHBOURS.get(el)
        if base is None:
            return 8
        if el in ("n", "o", "s", "p"):
            base += net
        return max(0, base - hs)
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    try:
        z = table.GetAtomicNumber(el)
    except Exception:  # RDKit raises a RuntimeError-like error for unknown symbols
        return 8
    own = list(table.GetValenceList(z))
    iso = z - net
    allowed = list(table.GetValenceList(iso)) if net and 1 <= iso <= 118 else own
    if -1 in own or -1 in allowed or not allowed:
        return 8
    return max(0, max(allowed) - hs)


class ValidMoleculeRequest(Request):
    """A SMILES whose atoms never take more bonds than their valence allows (masked while decoding), accepted
    when RDKit parses it (aromaticity and the rest are checked there, and a failing draw is drawn again)."""

    what = "bonds within each atom's valence while decoding; RDKit-valid"

    def __init__(self, tag: str = "mol"):
        self.tag = tag

    def bind(self, cons) -> "ValidMoleculeRequest":
        import torch

        self.cons = cons
        kinds = cons.kind_of
        self.valence = {i: atom_valence(u) for i, u in cons.unit.items() if kinds.get(i) == "atom"}
        self.order = {i: BOND_ORDER[u] for i, u in cons.unit.items() if kinds.get(i) == "bond"}
        self.ring = set(cons.ring_label)
        self.open_id = {i for i, k in kinds.items() if k == "open"}
        self.close_id = {i for i, k in kinds.items() if k == "close"}
        self.dot = {i for i, k in kinds.items() if k == "dot"}
        self.lbr = {i for i, k in kinds.items() if k == "lbr"}
        self.rbr = {i for i, k in kinds.items() if k == "rbr"}
        self._masks: dict = {}
        return self

    def start(self):
        return Valence()

    def advance(self, rs: Valence, tid: int):
        s = rs
        if s.bracket:  # the spelled-out bracket atom ends: its valence is not known
            return replace(s, cur=8, bond=1, opened=False, bracket=False) if tid in self.rbr else s
        if tid in self.lbr:
            return replace(s, bracket=True)
        if tid in self.valence:
            v = self.valence[tid]
            if s.cur is None:
                return replace(s, cur=v, bond=1, opened=False)
            stack = s.stack
            if s.opened and stack:  # the branch's first atom uses the branch point's valence
                stack = stack[:-1] + (stack[-1] - s.bond,)
            return replace(s, cur=v - s.bond, stack=stack, bond=1, opened=False)
        if tid in self.order:
            return replace(s, bond=self.order[tid])
        if tid in self.ring:
            opened = dict(s.rings)
            if tid in opened:  # closure: the bond takes the order written at either end
                order = max(s.bond, opened.pop(tid))
            else:
                order = opened[tid] = s.bond
            cur = None if s.cur is None else s.cur - order
            return replace(s, cur=cur, bond=1, opened=False, rings=tuple(sorted(opened.items())))
        if tid in self.open_id:
            return replace(s, stack=s.stack + (s.cur if s.cur is not None else 8,), bond=1, opened=True)
        if tid in self.close_id:
            return replace(s, cur=s.stack[-1] if s.stack else s.cur, stack=s.stack[:-1], bond=1, opened=False)
        if tid in self.dot:
            return Valence(rings=s.rings)
        return s

    def allowed(self, rs: Valence, remaining: int, logits=None):
        if rs.bracket:
            return None
        start = rs.cur is None  # the first atom (of the SMILES or after a dot) attaches to nothing
        cur = 8 if start else min(rs.cur, 8)
        heavy = tuple(label for label, order in rs.rings if max(order, rs.bond) > cur)  # closures too heavy here
        # with ring bonds open and no branch to return to, the chain must go on from the atom written next
        must_continue = bool(rs.rings) and not rs.stack
        # ... so a ring bond that leaves this atom no valence may only close the last open ring
        last_ring_only = not rs.stack and not start and cur - rs.bond < 1
        only = tuple(label for label, _ in rs.rings) if last_ring_only and len(rs.rings) == 1 else ()
        key = (start, cur, rs.bond, heavy, must_continue, last_ring_only, only)
        mask = self._masks.get(key)
        if mask is None:
            mask = self._valence_mask(start, cur, rs.bond, heavy, must_continue, last_ring_only, only)
            if len(self._masks) < 4096:
                self._masks[key] = mask
        return mask

    def _valence_mask(self, start, cur, bond, heavy, must_continue, last_ring_only, only):
        import torch

        mask = torch.ones(self.cons.vocab_size, dtype=torch.bool, device=self.cons.device)
        ban = [i for i, o in self.order.items() if o > cur] + list(heavy)
        if cur < bond:  # no valence left for the pending bond: no atom, ring bond or branch may attach
            ban += list(self.valence) + list(self.ring) + list(self.lbr)
        elif not start:  # atoms that cannot take the pending bond (and go on, when the chain must)
            need = bond + must_continue
            ban += [i for i, v in self.valence.items() if v < need]
        if cur < 1 + must_continue:  # a branch needs a bond, and the chain must go on after it while rings are open
            ban += list(self.open_id)
        if last_ring_only:
            ban += [i for i in self.ring if i not in only]
        if ban:
            mask[torch.as_tensor(sorted(set(ban)), dtype=torch.long)] = False
        return mask

    def accept(self, gen) -> bool:
        return gen.valid and gen.tag == self.tag


class PropertyRequest(ValidMoleculeRequest):
    """A molecule whose RDKit-computed properties are within the task's tolerance of each target."""

    def __init__(self, targets: dict[str, float], tag: str = "mol"):
        from naturelm.tasks.property_to_molecule import TOLERANCE

        super().__init__(tag)
        self.targets = dict(targets)
        self.what = ("bonds within each atom's valence while decoding; RDKit "
                     + ", ".join(f"{p} {t:g} ± {TOLERANCE[p]:g}" for p, t in self.targets.items()))

    def accept(self, gen) -> bool:
        from naturelm.tasks.property_to_molecule import TOLERANCE, measure

        if not super().accept(gen):
            return False
        for prop, target in self.targets.items():
            value = measure(gen.canonical, prop)
            if value is None or abs(value - target) > TOLERANCE[prop] + 1e-9:
                return False
        return True


# ---------------------------------------------------------------------------------------------- from prompts
def _template_fields(task: str, prompt: str) -> dict[str, str] | None:
    """The fields of `prompt` when it is one of the task's templates filled in, else None."""
    from naturelm.data.instructions import TEMPLATES

    for template in TEMPLATES.get(task, []):
        parts = re.split(r"\{(\w+)\}", template)
        pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
        m = re.fullmatch(pattern, prompt.strip(), re.S)
        if m:
            return m.groupdict()
    return None


def parse_property_text(text: str) -> dict[str, float]:
    """`QED 0.53 and TPSA 40` -> {"QED": 0.53, "TPSA": 40.0}: the phrasings of `property_text`."""
    from naturelm.data.instructions import PROPERTY_TEXT

    out = {}
    for prop, (phrase, _) in PROPERTY_TEXT.items():
        parts = re.split(r"\{v[^}]*\}", phrase)
        pattern = r"(-?\d+(?:\.\d+)?)".join(re.escape(p) for p in parts)
        m = re.search(r"(?<![\w(])" + pattern, text)
        if m:
            out[prop] = float(m.group(1))
    return out


def request_for(task: str, prompt: str, card: dict | None = None) -> Request | None:
    """The request a task's prompt makes (None: nothing to hold beyond the grammar).

    composition_to_material: the elements named, within the atoms-per-cell bound of `card` (the model's data
    card, see `cell_atom_bound`); guide_rna: the `<dna>` target; property_to_molecule: the property targets;
    molecule_generation and the molecule-writing tasks: a valid molecule.
    """
    from naturelm.errors import ConfigError

    if task == "molecule_generation" or task in ("property_optimization", "bbb_optimization"):
        return ValidMoleculeRequest()
    if task == "property_to_molecule":
        fields = _template_fields(task, prompt)
        targets = parse_property_text(fields["property_text"] if fields else prompt)
        return PropertyRequest(targets) if targets else ValidMoleculeRequest()
    if task == "composition_to_material":
        els = prompt_elements(prompt)
        try:
            return ElementsRequest(els, cell_atom_bound(card)) if els else None
        except ConfigError:
            return None
    if task == "guide_rna":
        from naturelm.language.tags import find_entities

        dna = next((s.text for s in find_entities(prompt) if s.tag.name == "dna"), None)
        try:
            return SpacerRequest(dna) if dna else None
        except ConfigError:
            return None
    return None
