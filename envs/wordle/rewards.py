"""Reward terms for Wordle-v0 (see the env docstring for the table).

``"win"``: 1 when the guess solves the puzzle, else 0.
``"shaped"``: the terms of the Predibase / DeepLearning.AI GRPO course, which give a model
partial credit long before it can win: format, use of earlier feedback, information gain,
plus the win bonus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

REWARD_MODES = ("win", "shaped")

FORMAT_VALID, FORMAT_NOT_A_WORD, FORMAT_WRONG_LENGTH, FORMAT_UNPARSABLE = 1.0, 0.5, 0.1, 0.0


def feedback_use(guess: str, history: Sequence[tuple[str, Sequence[int]]]) -> float:
    """How well ``guess`` respects what earlier feedback revealed, letter by letter.

    +0.2 a letter kept in a spot known correct (✓); +0.1 a letter known present placed in a
    spot not yet tried for it; -0.2 a letter known present put back in a spot where it was
    marked ``-``; -0.5 a letter known absent; +0.05 a letter never tried before.
    """
    correct: dict[int, str] = {}
    wrong_spots: dict[str, set[int]] = {}
    present: set[str] = set()
    absent: set[str] = set()
    tried: set[str] = set()
    for word, marks in history:
        for i, (letter, mark) in enumerate(zip(word, marks, strict=True)):
            tried.add(letter)
            if mark == 2:
                correct[i] = letter
                present.add(letter)
            elif mark == 1:
                wrong_spots.setdefault(letter, set()).add(i)
                present.add(letter)
        for letter, mark in zip(word, marks, strict=True):
            # An x on a letter also marked ✓/- elsewhere only caps its count; not "absent".
            if mark == 0 and letter not in present:
                absent.add(letter)
    score = 0.0
    for i, letter in enumerate(guess):
        if correct.get(i) == letter:
            score += 0.2
        elif letter in wrong_spots and i in wrong_spots[letter]:
            score -= 0.2
        elif letter in present:
            score += 0.1
        elif letter in absent:
            score -= 0.5
        elif letter not in tried:
            score += 0.05
    return score


def information_gain(pattern_row: np.ndarray, candidates: np.ndarray) -> float:
    """(H0 - E[H after the guess]) / H0 over the remaining candidates (0 when one is left).

    ``pattern_row`` holds the guess's pattern codes against every answer; ``candidates`` the
    indices of answers still possible.
    """
    n = len(candidates)
    if n <= 1:
        return 0.0
    counts = np.bincount(pattern_row[candidates], minlength=243)
    counts = counts[counts > 0]
    expected_after = float((counts * np.log2(counts)).sum() / n)
    h0 = math.log2(n)
    return (h0 - expected_after) / h0
