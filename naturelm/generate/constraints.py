"""Constrained decoding: which token ids may come next, given what has been generated so far.

Inside an open tag only that domain's tokens and its closing tag are allowed. Inside a molecule tag a SMILES
automaton also keeps parentheses, brackets and ring closures balanced: the closing tag only becomes allowed
once every branch and ring is closed. Materials: elements, then at most one space-group token, then close.
States are small immutable tuples, so beams can share and reorder them freely.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from naturelm.language.tags import DOMAINS, TAGS

MEMO_SIZE = 1 << 16  # memoised state transitions kept (masks: a sixteenth of that)
MAX_RINGS = 9  # ring bonds open at once (USPTO-50k never exceeds 9); more are closed before new ones open
ORGANIC = frozenset("B C N O S P F I Cl Br b c n o s p *".split())
BONDS = frozenset("= # - / \\ : ~".split())


@dataclass(frozen=True)
class Smiles:
    """SMILES automaton state: last token kind, open branches, open ring labels, bracket (0 none, 1 empty, 2 filled)."""

    last: str = "start"  # start | atom | ring | bond | open | close | dot
    depth: int = 0
    rings: frozenset = frozenset()
    bracket: int = 0
    fresh: frozenset = frozenset()  # ring labels opened on the current atom (cannot close there)

    @property
    def needs_atom(self) -> bool:
        """An atom must come before the SMILES can close (after a bond/branch/dot, a ring opened here, `)` + ring)."""
        return self.last in ("start", "open", "bond", "dot") or bool(self.fresh) or (self.last == "close" and bool(self.rings))

    @property
    def need(self) -> int:
        """Fewest tokens that finish this SMILES, closing tag included."""
        return 1 + self.depth + len(self.rings) + self.needs_atom + (2 if self.bracket == 1 else self.bracket == 2)

    @property
    def closable(self) -> bool:
        return self.last in ("atom", "ring", "close") and not self.depth and not self.rings and not self.bracket


@dataclass(frozen=True)
class State:
    """Where one sequence is: outside any tag, inside `tag` (with domain sub-state), or done."""

    tag: str | None = None
    n: int = 0  # tokens written inside the current tag
    smiles: Smiles | None = None
    sg: bool = False  # material: space group written
    expect: str | None = None  # the response must open with this tag
    done: bool = False


class Constraints:
    """Per-state allowed-token masks for one tokenizer; `enabled=False` only tracks tags (for stopping)."""

    def __init__(self, tokenizer, vocab_size: int, enabled: bool = True, device="cpu"):
        import torch

        self.enabled, self.device = enabled, device
        self.vocab_size = vocab_size
        self.tok_id = tokenizer.token_to_id
        self.eos = tokenizer.eos_token_id
        tags = getattr(tokenizer, "tags", TAGS)  # the tokenizer's own tag set (its text rules)
        self.open_ids = {tokenizer.tag_token_id(t.open): t.name for t in tags.values()}
        self.close_ids = {tokenizer.tag_token_id(t.close): t.name for t in tags.values()}
        self.close_of = {name: tid for tid, name in self.close_ids.items()}
        self.open_of = {name: tid for tid, name in self.open_ids.items()}
        self.stop_ids = frozenset(self.close_ids) | {self.eos}
        self.domain_ids = {d: tokenizer.domain_token_ids(d) for d in DOMAINS if d != "text"}
        science = set(self.open_ids) | set(self.close_ids) | {i for ids in self.domain_ids.values() for i in ids}
        science |= set(tokenizer.science_token_ids)  # other tag tokens, reserved tokens: never written as text
        specials = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id, self.eos}
        n = min(len(tokenizer), vocab_size)
        self.text_ids = [i for i in range(n) if i not in science and i not in specials]
        # molecule tokens by SMILES role
        units = {i: tokenizer.id_to_token(i)[len(DOMAINS["molecule"].prefix):] for i in self.domain_ids["molecule"]}
        self.unit = units
        kinds: dict[str, list[int]] = {k: [] for k in ("atom", "ring", "bond", "open", "close", "dot", "lbr", "rbr", "inner")}
        for i, u in units.items():
            if u in ORGANIC or (len(u) > 2 and u[0] == "[" and u[-1] == "]"):
                kinds["atom"].append(i)
            elif u.isdigit() or (u[0] == "%" and u[1:].isdigit()):
                kinds["ring"].append(i)
            elif u in BONDS:
                kinds["bond"].append(i)
            elif u in ("(", ")", ".", "[", "]"):
                kinds[{"(": "open", ")": "close", ".": "dot", "[": "lbr", "]": "rbr"}[u]].append(i)
            if len(u) == 1 and u not in "[]":
                kinds["inner"].append(i)  # characters of a bracket atom spelled out one by one
        self.kind_of = {i: k for k in ("atom", "ring", "bond", "open", "close", "dot", "lbr", "rbr") for i in kinds[k]}
        self.ring_label = {i: units[i] for i in kinds["ring"]}
        self.sg_ids = frozenset(i for i in self.domain_ids["material"] if tokenizer.id_to_token(i).startswith("<sg"))
        self._torch = torch
        self._kinds = {k: self._mask(v) for k, v in kinds.items()}
        self._cache: dict = {}
        self._masks: dict = {}  # memo of `allowed` by what it depends on
        self._next: dict = {}  # memo of `advance` by (state, token)

    # ------------------------------------------------------------------ states
    def open_tail(self, prompt_ids: list[int]) -> list[int]:
        """The prompt's ids from its last unclosed opening tag on ([] when every tag is closed)."""
        open_at = None
        for pos, tid in enumerate(prompt_ids):
            if tid in self.open_ids:
                open_at = pos
            elif tid in self.close_ids:
                open_at = None
        return [] if open_at is None else list(prompt_ids[open_at:])

    def start(self, prompt_ids: list[int], expect: str | None = None) -> State:
        """State after the prompt: inside a tag when the prompt leaves one open (e.g. the raw prompt `<mol>`)."""
        tail = self.open_tail(prompt_ids)
        if not tail:
            return State(expect=expect)
        state = self._enter(State(tag=self.open_ids[tail[0]]))
        for tid in tail[1:]:
            state = self.advance(state, tid)
        return state

    def _enter(self, state: State) -> State:
        return replace(state, n=0, smiles=Smiles() if TAGS[state.tag].domain == "molecule" else None, sg=False, expect=None)

    def advance(self, state: State, tid: int) -> State:
        """The state after emitting token `tid` (memoised: states are immutable)."""
        nxt = self._next.get((state, tid))
        if nxt is None:
            if len(self._next) >= MEMO_SIZE:
                self._next.clear()
            nxt = self._next[(state, tid)] = self._advance(state, tid)
        return nxt

    def _advance(self, state: State, tid: int) -> State:
        if state.done or tid == self.eos:
            return replace(state, done=True)
        if state.tag is None:
            if tid in self.open_ids:
                return self._enter(replace(state, tag=self.open_ids[tid]))
            if tid in self.close_ids:
                return replace(state, done=True)
            return replace(state, expect=None)
        if tid in self.close_ids:  # the response's entity is closed: stop
            return replace(state, tag=None, done=True)
        if state.smiles is not None:
            return replace(state, n=state.n + 1, smiles=self._smiles_step(state.smiles, tid))
        return replace(state, n=state.n + 1, sg=state.sg or tid in self.sg_ids)

    def _smiles_step(self, s: Smiles, tid: int) -> Smiles:
        kind = self.kind_of.get(tid, "atom")
        if s.bracket:
            return replace(s, bracket=0, last="atom", fresh=frozenset()) if kind == "rbr" else replace(s, bracket=2)
        if kind == "lbr":
            return replace(s, bracket=1)
        if kind == "ring":
            label = self.ring_label[tid]
            if label in s.rings:
                return replace(s, last="ring", rings=s.rings - {label})
            return replace(s, last="ring", rings=s.rings | {label}, fresh=s.fresh | {label})
        if kind == "atom":
            return replace(s, last="atom", fresh=frozenset())
        if kind == "open":
            return replace(s, last="open", depth=s.depth + 1)
        if kind == "close":
            return replace(s, last="close", depth=s.depth - 1)
        return replace(s, last=kind)

    def closes_in_time(self, state: State, remaining: int) -> bool:
        """Whether every continuation of `state` closes within `remaining` tokens: a SMILES written under
        constraints with room to finish (see `allowed`); nothing else is forced to end."""
        return self.enabled and state.smiles is not None and not state.done and state.smiles.need <= remaining

    def is_stop(self, tid: int) -> bool:
        return tid in self.stop_ids

    # ------------------------------------------------------------------ masks
    def _mask(self, ids):
        m = self._torch.zeros(self.vocab_size, dtype=self._torch.bool, device=self.device)
        if len(ids):
            m[self._torch.as_tensor(list(ids), dtype=self._torch.long, device=self.device)] = True
        return m

    def allowed(self, state: State, remaining: int):
        """Bool mask over the vocabulary of what may come next (None: no restriction; shared, do not modify).

        `remaining` counts the tokens left including this one. A free move adds at most 2 to `Smiles.need`, and
        every finishing move (a needed atom, a ring closure, `)`, `]`, the closing tag) removes 1, so switching
        to finishing moves at `remaining <= need + 2` always closes the SMILES in time.
        """
        if not self.enabled or state.done:
            return None
        s = state.smiles
        closing = s is not None and remaining <= s.need + 2  # one more free move could add 2 to `need`: only finish
        memo = (state.tag, s, state.n > 0, state.sg, state.expect, closing)
        mask = self._masks.get(memo)
        if mask is None:
            if len(self._masks) >= MEMO_SIZE // 16:
                self._masks.clear()
            mask = self._masks[memo] = self._allowed(state, closing)
        return mask

    def _allowed(self, state: State, closing: bool):
        s = state.smiles
        if s is not None:
            if closing:
                return self._smiles_closing(s, self.close_of[state.tag])
            key = (state.tag, s.last, s.depth > 0, bool(s.rings), s.bracket, s.closable)
        else:
            key = (state.tag, state.n > 0, state.sg, state.expect)
        mask = self._cache.get(key)
        if mask is None:
            mask = self._cache[key] = self._build(state)
        if s is not None and not s.bracket and s.last in ("atom", "ring", "bond") and (s.fresh or len(s.rings) >= MAX_RINGS):
            mask = mask.clone()
            if len(s.rings) >= MAX_RINGS:  # no new ring bonds, only closures
                mask[[i for i, lab in self.ring_label.items() if lab not in s.rings]] = False
            mask[[i for i, lab in self.ring_label.items() if lab in s.fresh]] = False
        return mask

    def _build(self, state: State):
        if state.tag is None:
            if state.expect is not None:
                return self._mask([self.open_of[state.expect]])
            return self._mask(self.text_ids + list(self.open_ids) + [self.eos])
        close = self.close_of[state.tag]
        domain = TAGS[state.tag].domain
        if domain == "text":
            return self._mask(self.text_ids + ([close] if state.n else []))
        if domain == "material":
            if state.sg:
                return self._mask([close])
            elements = [i for i in self.domain_ids["material"] if i not in self.sg_ids]
            return self._mask(elements + (list(self.sg_ids) + [close] if state.n else []))
        if domain != "molecule":
            return self._mask(self.domain_ids[domain] + ([close] if state.n else []))
        return self._smiles_mask(state.smiles, close)

    def _smiles_mask(self, s: Smiles, close: int):
        k = self._kinds
        m = self._torch.zeros(self.vocab_size, dtype=self._torch.bool, device=self.device)
        if s.bracket:
            m |= k["inner"]
            if s.bracket == 2:
                m |= k["rbr"]
            return m
        m |= k["atom"] | k["lbr"]
        if s.last in ("atom", "ring", "bond"):
            m |= k["ring"]
        if s.last in ("atom", "ring", "close", "open"):
            m |= k["bond"]
        if s.last in ("atom", "ring", "close"):
            m |= k["open"]
            if s.depth:
                m |= k["close"]
            elif not s.rings:
                m |= k["dot"]
        if s.closable:
            m[close] = True
        return m

    def _smiles_closing(self, s: Smiles, close: int):
        """Out of room: only moves that finish the SMILES."""
        k = self._kinds
        m = self._torch.zeros(self.vocab_size, dtype=self._torch.bool, device=self.device)
        if s.bracket:
            return m | (k["rbr"] if s.bracket == 2 else k["inner"])
        if s.needs_atom:
            m |= k["atom"]
        if s.last in ("atom", "ring", "bond"):
            m[[i for i, lab in self.ring_label.items() if lab in s.rings and lab not in s.fresh]] = True
        if s.depth and s.last in ("atom", "ring", "close") and not s.rings:
            m |= k["close"]
        if s.closable:
            m[close] = True
        return m
