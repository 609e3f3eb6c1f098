"""Position weight matrices of RNA-binding proteins: log-odds scores of sites, the best site of a sequence, and
sites sampled from a matrix. Rows are positions; columns A, C, G, U; the background is uniform (0.25)."""
from __future__ import annotations

import math
import random

ALPHABET = "ACGU"
FLOOR = 1e-3  # probabilities below this are read as this (a zero would give -inf)


def _log_odds(p: float) -> float:
    return math.log2(max(p, FLOOR) / 0.25)


def site_score(pwm: list[list[float]], site: str) -> float:
    """log2-odds of `site` (len(pwm) letters, ACGU) under the matrix against a uniform background."""
    return sum(_log_odds(row[ALPHABET.index(b)]) for row, b in zip(pwm, site, strict=True))


def max_score(pwm) -> float:
    """The score of the matrix's consensus (its best possible site); rows of probabilities or a log-odds table."""
    import numpy as np

    if isinstance(pwm, np.ndarray):
        return float(pwm[:, :4].max(axis=1).sum())
    return sum(_log_odds(max(row)) for row in pwm)


def log_odds_table(pwm: list[list[float]]):
    """The matrix as a numpy array of log2-odds (positions x 5; column 4, -inf, scores off-alphabet letters)."""
    import numpy as np

    return np.array([[_log_odds(p) for p in row] + [-math.inf] for row in pwm])


def window_scores(pwm, rna: str):
    """The `site_score` of every window of `rna` (numpy array, position i = window starting at i; -inf for a
    window holding a non-ACGU letter); empty when `rna` is shorter than the matrix. `pwm`: rows of probabilities
    or a `log_odds_table`."""
    import numpy as np

    table = pwm if isinstance(pwm, np.ndarray) else log_odds_table(pwm)
    w, n = len(table), len(rna) - len(table) + 1
    if n <= 0:
        return np.empty(0)
    idx = np.array([ALPHABET.find(b) if b in ALPHABET else 4 for b in rna])
    return sum(table[j, idx[j:j + n]] for j in range(w))


def best_site(pwm, rna: str) -> tuple[float, int]:
    """(best score, start) over every window of `rna` on the given strand (the first of equal bests);
    (-inf, -1) when `rna` is shorter than the matrix or holds a non-ACGU letter in every window."""
    scores = window_scores(pwm, rna)
    if not len(scores) or scores.max() == -math.inf:
        return -math.inf, -1
    i = int(scores.argmax())
    return float(scores[i]), i


def sample_site(pwm: list[list[float]], rng: random.Random) -> str:
    """A site drawn position by position from the matrix."""
    return "".join(rng.choices(ALPHABET, weights=row)[0] for row in pwm)


def consensus(pwm: list[list[float]]) -> str:
    return "".join(ALPHABET[row.index(max(row))] for row in pwm)


class MotifSet:
    """Several matrices scored together (stacked by width): the best site of an RNA over all of them."""

    def __init__(self, pwms: list[list[list[float]]], ids: list[str] | None = None):
        import numpy as np

        by_width: dict[int, list] = {}
        for i, p in enumerate(pwms):
            by_width.setdefault(len(p), []).append((ids[i] if ids else str(i), log_odds_table(p)))
        self.ids = [[i for i, _ in ts] for _, ts in sorted(by_width.items())]
        self.groups = [(w, np.stack([t for _, t in ts])) for w, ts in sorted(by_width.items())]
        self.consensus = [(w, t[:, :, :4].max(axis=2).sum(axis=1)) for w, t in self.groups]

    def __len__(self) -> int:
        return sum(len(t) for _, t in self.groups)

    def _scores(self, rna: str):
        """Per width group, (matrices x windows) scores."""
        import numpy as np

        idx = np.array([ALPHABET.find(b) if b in ALPHABET else 4 for b in rna])
        out = []
        for w, tables in self.groups:
            n = len(rna) - w + 1
            out.append(sum(tables[:, j, idx[j:j + n]] for j in range(w)) if n > 0 else np.empty((len(tables), 0)))
        return out

    def best(self, rna: str) -> float:
        """The highest site score over every window and matrix (-inf when none fits)."""
        return max((float(s.max()) for s in self._scores(rna) if s.size), default=-math.inf)

    def best_hit(self, rna: str) -> tuple[float, str | None, int]:
        """(best score, its matrix id, its start); (-inf, None, -1) when no window fits."""
        best: tuple[float, str | None, int] = (-math.inf, None, -1)
        for ids, s in zip(self.ids, self._scores(rna)):
            if s.size and float(s.max()) > best[0]:
                m, start = divmod(int(s.argmax()), s.shape[1])
                best = (float(s.max()), ids[m], start)
        return best

    def has_site(self, rna: str, fraction: float) -> bool:
        """Whether some matrix scores a window above 0 (better than background) and at >= `fraction` of its
        consensus score."""
        return any(s.size and bool(((best := s.max(axis=1)) >= fraction * c).__and__(best > 0).any())
                   for s, (_, c) in zip(self._scores(rna), self.consensus))
