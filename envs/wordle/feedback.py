"""Exact Wordle feedback, one pair at a time or as a full guess x answer matrix.

Marks: 2 = right letter in the right spot, 1 = in the word but elsewhere, 0 = absent.
Duplicate letters follow the NYT rule: greens are matched first; then, left to right, a
letter is marked 1 only while the answer still has an unmatched copy of it.

A pattern packs five marks as a base-3 number, mark i weighted 3**i, so 242 means solved.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

import numpy as np

from envs.cache import cache_dir

SOLVED = 3**5 - 1
_WEIGHTS = 3 ** np.arange(5, dtype=np.int32)


def feedback(guess: str, answer: str) -> tuple[int, ...]:
    """Marks for ``guess`` against ``answer`` (both five lowercase letters)."""
    if len(guess) != len(answer):
        raise ValueError(f"guess {guess!r} and answer {answer!r} differ in length")
    marks = [2 if g == a else 0 for g, a in zip(guess, answer, strict=True)]
    unmatched = Counter(a for a, m in zip(answer, marks, strict=True) if m != 2)
    for i, letter in enumerate(guess):
        if marks[i] != 2 and unmatched[letter] > 0:
            marks[i] = 1
            unmatched[letter] -= 1
    return tuple(marks)


def encode(marks: Sequence[int]) -> int:
    return int(sum(m * 3**i for i, m in enumerate(marks)))


def decode(code: int) -> tuple[int, ...]:
    return tuple((int(code) // 3**i) % 3 for i in range(5))


def _letters(words: Sequence[str]) -> np.ndarray:
    return np.frombuffer("".join(words).encode("ascii"), dtype=np.uint8).reshape(len(words), 5) - ord("a")


def pattern_matrix(guesses: Sequence[str], answers: Sequence[str], chunk: int = 128) -> np.ndarray:
    """``uint8[len(guesses), len(answers)]`` of pattern codes, computed in vectorised chunks.

    Guess letter i (not green) is yellow when the answer holds more copies of it than the
    guess "uses up" before reaching i: every copy at an earlier position j < i (each is
    either green or was offered a yellow first) plus every later copy j > i that is green.
    """
    g_all, a = _letters(guesses), _letters(answers)
    counts = np.zeros((26, len(answers)), dtype=np.int8)  # counts[letter, answer]
    for j in range(5):
        np.add.at(counts, (a[:, j], np.arange(len(answers))), 1)
    same = g_all[:, :, None] == g_all[:, None, :]  # same[g, i, j]: guess letters i and j equal
    out = np.empty((len(guesses), len(answers)), dtype=np.uint8)
    for start in range(0, len(guesses), chunk):
        g = g_all[start : start + chunk]
        s = same[start : start + chunk]
        green = [g[:, j, None] == a[None, :, j] for j in range(5)]
        code = np.zeros((len(g), len(answers)), dtype=np.uint8)
        for i in range(5):
            used = s[:, i, :i].sum(axis=1, dtype=np.int8)[:, None]
            for j in range(i + 1, 5):
                if s[:, i, j].any():
                    used = used + (green[j] & s[:, i, j, None])
            yellow = ~green[i] & (counts[g[:, i]] > used)
            code += np.uint8(3**i) * (2 * green[i] + yellow).astype(np.uint8)
        out[start : start + chunk] = code
    return out


_IN_PROCESS: dict[str, np.ndarray] = {}


def cached_pattern_matrix(guesses: Sequence[str], answers: Sequence[str], digest: str) -> np.ndarray:
    """The pattern matrix (read-only), shared by every env and solver of this lexicon in the
    process (256 envs in lockstep would otherwise hold 256 copies of 30 MB), loaded from the disk
    cache when a valid copy exists, else built and saved there."""
    matrix = _IN_PROCESS.get(digest)
    if matrix is None or matrix.shape != (len(guesses), len(answers)):
        matrix = _load_or_build(guesses, answers, digest)
        matrix.flags.writeable = False
        _IN_PROCESS[digest] = matrix
    return matrix


def _load_or_build(guesses: Sequence[str], answers: Sequence[str], digest: str) -> np.ndarray:
    path = cache_dir() / f"wordle-patterns-{digest}.npy"
    shape = (len(guesses), len(answers))
    try:
        matrix = np.load(path, allow_pickle=False)
        if matrix.shape == shape and matrix.dtype == np.uint8:
            return matrix
    except (OSError, ValueError):
        pass  # missing or corrupt: rebuild below
    matrix = pattern_matrix(guesses, answers)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            np.save(handle, matrix, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the rebuild next time
    return matrix
