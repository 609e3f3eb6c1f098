"""Inorganic materials: each element repeated by its count in the cell, then a space-group token."""
from __future__ import annotations

import functools

from naturelm.errors import EntityError
from naturelm.language.codecs.base import Codec
from naturelm.language.codecs.molecule import ELEMENTS
from naturelm.language.tags import SPACE_GROUP_TOKENS

MAX_ATOMS = 256
_ELEMENT_SET = frozenset(ELEMENTS)
_SG_SET = frozenset(SPACE_GROUP_TOKENS)


def spacegroup_token(spacegroup: int | None) -> str:
    """`<sg225>` for 225, `<sgNone>` when unknown."""
    if spacegroup is None:
        return "<sgNone>"
    if not isinstance(spacegroup, int) or not 1 <= spacegroup <= 230:
        raise EntityError("material", str(spacegroup), None, "space group must be an integer 1–230")
    return f"<sg{spacegroup}>"


@functools.lru_cache(maxsize=None)
def _electronegativity(element: str) -> float:
    """Pauling electronegativity, 99 where pymatgen has none (NaN)."""
    from pymatgen.core import Element

    x = Element(element).X
    return x if x == x else 99.0


def _order(elements: list[str]) -> list[str]:
    return sorted(elements, key=lambda e: (_electronegativity(e), e))


def _parse(content: str) -> tuple[dict[str, int], str]:
    if not isinstance(content, str):
        raise EntityError("material", repr(content), None, "expected a string")
    items = content.split()
    if not items:
        raise EntityError("material", content, 0, "empty material")
    sg = "<sgNone>"
    if items[-1].startswith("<sg"):
        sg = items.pop()
        if sg not in _SG_SET:
            raise EntityError("material", content, content.rfind(sg), f"unknown space-group token {sg!r}")
    if not items:
        raise EntityError("material", content, 0, "no elements before the space group")
    if len(items) > MAX_ATOMS:
        raise EntityError("material", content[:80], None, f"more than {MAX_ATOMS} atoms")
    counts: dict[str, int] = {}
    offset = 0
    for item in items:
        offset = content.find(item, offset)
        if item not in _ELEMENT_SET:
            raise EntityError("material", content, offset, f"{item!r} is not an element symbol")
        counts[item] = counts.get(item, 0) + 1
        offset += len(item)
    return counts, sg


def _render(counts: dict[str, int], sg: str) -> str:
    return " ".join([e for e in _order(list(counts)) for _ in range(counts[e])] + [sg])


def formula_to_material(formula: str, spacegroup: int | None = None) -> str:
    """`LiFePO4` → `Fe Li P O O O O <sgNone>` (pymatgen Composition; integer cell counts required)."""
    from pymatgen.core import Composition

    try:
        amounts = Composition(formula).get_el_amt_dict()
    except Exception as exc:  # pymatgen raises several types for bad formulas
        raise EntityError("material", str(formula), None, f"cannot parse formula ({exc})") from None
    counts = {}
    for el, amt in amounts.items():
        if abs(amt - round(amt)) > 1e-6 or round(amt) < 1:
            raise EntityError("material", formula, None, f"non-integer amount {amt} of {el}")
        if el not in _ELEMENT_SET:
            raise EntityError("material", formula, None, f"{el!r} is not an element")
        counts[el] = int(round(amt))
    if sum(counts.values()) > MAX_ATOMS:
        raise EntityError("material", formula, None, f"more than {MAX_ATOMS} atoms")
    return _render(counts, spacegroup_token(spacegroup))


def material_to_formula(content: str) -> tuple[str, int | None]:
    """`Li Li O <sg225>` → (`Li2O`, 225); space group None for `<sgNone>`."""
    counts, sg = _parse(content)
    formula = "".join(e + (str(counts[e]) if counts[e] > 1 else "") for e in _order(list(counts)))
    return formula, (None if sg == "<sgNone>" else int(sg[3:-1]))


@functools.lru_cache(maxsize=65536)
def smact_valid(formula: str, alloy_shortcut: bool = True) -> bool:
    """SMACT validity (smact.screening.smact_validity, ICSD-24 oxidation states): some assignment of oxidation
    states is charge-neutral and passes the Pauling electronegativity test.

    `alloy_shortcut=True` is SMACT's default: a composition of metals only counts as valid without any check (an
    alloy). `alloy_shortcut=False` applies the charge-neutrality and electronegativity tests to metals too, so only
    a single element passes without them. An unparsable formula is invalid.
    """
    from pymatgen.core import Composition
    from smact.screening import smact_validity

    try:
        comp = Composition(formula)
    except Exception:
        return False
    try:
        return bool(smact_validity(comp, use_pauling_test=True, include_alloys=alloy_shortcut))
    except Exception:
        return False


@functools.lru_cache(maxsize=256)
def smact_charge_states(elements: tuple[str, ...], alloy_shortcut: bool = True) -> tuple[tuple[int, ...], ...] | None:
    """The oxidation-state assignments `smact_valid` tries for a composition of exactly `elements`, in that order:
    the ICSD-24 states of each element (SMACT's default filter), every combination that passes SMACT's Pauling
    test and has states of both signs (else no positive counts are neutral).

    A composition with counts `c` (each >= 1) of these elements is `smact_valid(formula, alloy_shortcut)` exactly
    when some returned `o` has `sum(o_i * c_i) == 0` (SMACT reduces the counts by their gcd first, which keeps
    neutrality, and its Pauling test does not look at counts). None: every composition of these elements is valid
    without a check (one element, or the alloy shortcut on SMACT's metals). An empty tuple: none is.
    """
    import itertools

    from smact import element_dictionary, metals
    from smact.screening import ICSD24FilterConfig, _get_icsd24_oxidation_states, pauling_test

    elements = tuple(elements)
    if len(set(elements)) == 1 or (alloy_shortcut and all(e in metals for e in elements)):
        return None
    space = element_dictionary(elements)
    smact_elements = [space[e] for e in elements]
    states = _get_icsd24_oxidation_states(smact_elements, ICSD24FilterConfig())
    if states is None:  # an element without ICSD-24 states: SMACT calls every composition of it invalid
        return ()
    electronegativities = [e.pauling_eneg for e in smact_elements]
    out = []
    for ox in itertools.product(*states):
        if not (any(x > 0 for x in ox) and any(x < 0 for x in ox)) and any(ox):
            continue
        try:
            ok = pauling_test(ox, electronegativities)
        except TypeError:  # as smact_validity: a missing electronegativity it cannot compare passes
            ok = True
        if ok:
            out.append(tuple(int(x) for x in ox))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def icsd24_state_shares() -> dict[str, dict[int, float]]:
    """Per element, the share of its ICSD-24 reports (SMACT's `oxidation_states_icsd24_counts.json`, the data
    behind the states `smact_charge_states` tries) in each non-zero oxidation state: {"Fe": {3: 0.61, 2: 0.37, ...}}."""
    from smact.screening import _get_icsd24_filter

    frame = _get_icsd24_filter().ox_states_df
    counts: dict[str, dict[int, int]] = {}
    for el, state, n in zip(frame["element"], frame["oxidation_state"], frame["results_count"]):
        if int(state) != 0 and int(n) > 0:
            counts.setdefault(str(el), {})[int(state)] = int(n)
    return {el: {st: n / sum(by.values()) for st, n in by.items()} for el, by in counts.items()}


def atoms_in_cell(content: str) -> int:
    """Number of atoms in a material's cell (`Li Li O <sg225>` → 3)."""
    counts, _ = _parse(content)
    return sum(counts.values())


class MaterialCodec(Codec):
    """`<material>`: whitespace-split element symbols and one space-group token."""

    domain = "material"

    def tokenize(self, content: str) -> list[str]:
        _, sg = _parse(content)  # validates; a missing space group becomes <sgNone>
        items = content.split()
        return items if items[-1] == sg else items + [sg]

    def detokenize(self, units: list[str]) -> str:
        return " ".join(units)

    def canonicalize(self, content: str) -> str:
        counts, sg = _parse(content)
        return _render(counts, sg)

    def vocabulary(self) -> list[str]:
        return list(ELEMENTS)
