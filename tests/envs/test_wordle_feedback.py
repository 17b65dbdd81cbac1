"""Wordle feedback: hand-worked NYT duplicate-letter cases, and the vectorised matrix vs per-pair."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.wordle.feedback import SOLVED, cached_pattern_matrix, decode, encode, feedback, pattern_matrix

# The package re-exports the function `feedback`, which shadows the submodule as an attribute.
feedback_module = importlib.import_module("envs.wordle.feedback")

G, Y, X = 2, 1, 0

# Worked by hand from the NYT rule: greens first; then left to right a letter is yellow only
# while the answer still has a copy of it not already matched (green or an earlier yellow).
HAND_WORKED = [
    # guess, answer, marks
    ("speed", "abide", (X, X, Y, X, Y)),  # only one E in ABIDE: the first E takes it
    ("speed", "crepe", (X, Y, G, Y, X)),  # E@2 green uses one E, E@3 gets the other
    ("eerie", "elder", (G, Y, Y, X, X)),  # ELDER has two Es: one green, one left for E@1
    ("elder", "eerie", (G, X, X, Y, Y)),
    ("eerie", "there", (Y, X, Y, X, G)),  # E@4 green first, then E@0 takes the E@2 of THERE
    ("lolly", "hello", (X, Y, G, G, X)),  # both Ls of HELLO are green: the L@0 gets nothing
    ("hello", "lolly", (X, X, G, G, Y)),
    ("lolly", "golly", (X, G, G, G, G)),  # later greens use up every L before L@0 is looked at
    ("allee", "eagle", (Y, Y, X, Y, G)),  # one L in EAGLE: first L yellow, second grey
    ("eagle", "allee", (Y, Y, X, Y, G)),
    ("geese", "those", (X, X, X, G, G)),  # the one E of THOSE is green at the end
    ("abbey", "kebab", (Y, Y, G, Y, X)),
    ("sassy", "essay", (Y, Y, G, X, G)),
    ("crane", "crane", (G, G, G, G, G)),
    ("fghij", "crane", (X, X, X, X, X)),
]


def rule_feedback(guess: str, answer: str) -> tuple[int, ...]:
    """The rule written a second way: strike matched answer letters out of a list."""
    marks = [X] * 5
    left = list(answer)
    for i in range(5):
        if guess[i] == answer[i]:
            marks[i] = G
            left[i] = None
    for i in range(5):
        if marks[i] != G and guess[i] in left:
            marks[i] = Y
            left[left.index(guess[i])] = None
    return tuple(marks)


@pytest.mark.parametrize(("guess", "answer", "marks"), HAND_WORKED)
def test_feedback_hand_worked(guess, answer, marks):
    assert feedback(guess, answer) == marks
    assert rule_feedback(guess, answer) == marks  # the reference agrees with the hand work


@pytest.mark.parametrize(("guess", "answer", "marks"), HAND_WORKED)
def test_pattern_matrix_hand_worked(guess, answer, marks):
    code = int(pattern_matrix([guess], [answer])[0, 0])
    assert decode(code) == marks
    assert code == sum(m * 3**i for i, m in enumerate(marks))


def test_encode_decode():
    assert encode((2, 2, 2, 2, 2)) == SOLVED == 242
    assert encode((1, 0, 0, 0, 0)) == 1 and encode((0, 0, 0, 0, 1)) == 81
    for code in range(243):
        marks = decode(code)
        assert len(marks) == 5 and set(marks) <= {0, 1, 2}
        assert encode(marks) == code


def test_feedback_rejects_length_mismatch():
    with pytest.raises(ValueError, match="differ in length"):
        feedback("abcd", "abcde")


few_letters = st.text(alphabet="aeln", min_size=5, max_size=5)  # many repeats
any_letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=5, max_size=5)
words = st.one_of(few_letters, any_letters)


@given(guess=words, answer=words)
@settings(max_examples=400, deadline=None)
def test_feedback_matches_rule(guess, answer):
    marks = feedback(guess, answer)
    assert marks == rule_feedback(guess, answer)
    # invariants straight from the rule
    assert (marks == (2,) * 5) == (guess == answer)
    for letter in set(guess):
        scored = sum(1 for g, m in zip(guess, marks, strict=True) if g == letter and m > 0)
        assert scored == min(guess.count(letter), answer.count(letter))


@given(guesses=st.lists(words, min_size=1, max_size=12), answers=st.lists(words, min_size=1, max_size=12),
       chunk=st.integers(1, 5))
@settings(max_examples=150, deadline=None)
def test_pattern_matrix_equals_per_pair(guesses, answers, chunk):
    matrix = pattern_matrix(guesses, answers, chunk=chunk)
    assert matrix.shape == (len(guesses), len(answers)) and matrix.dtype == np.uint8
    expected = np.array([[encode(feedback(g, a)) for a in answers] for g in guesses], dtype=np.uint8)
    np.testing.assert_array_equal(matrix, expected)


def test_pattern_matrix_every_repeat_structure():
    # all 4**5 words over 4 letters against a handful of repeat-heavy answers: exhaustive on shapes
    import itertools

    guesses = ["".join(p) for p in itertools.product("aeln", repeat=5)]
    answers = ["eeeee", "alele", "nalle", "lllla", "enela", "aeeln"]
    matrix = pattern_matrix(guesses, answers)
    for i, g in enumerate(guesses):
        for j, a in enumerate(answers):
            assert decode(int(matrix[i, j])) == rule_feedback(g, a), (g, a)


def test_cached_pattern_matrix_builds_loads_and_repairs(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTTRAIN_GYM_CACHE", str(tmp_path))
    guesses, answers = ["crane", "slate", "eerie"], ["crane", "elder"]
    first = cached_pattern_matrix(guesses, answers, "testdigest")
    path = tmp_path / "wordle-patterns-testdigest.npy"
    assert path.is_file()
    np.testing.assert_array_equal(first, pattern_matrix(guesses, answers))
    np.testing.assert_array_equal(np.load(path), first)
    # within a process every env shares one read-only copy
    assert cached_pattern_matrix(guesses, answers, "testdigest") is first and not first.flags.writeable
    # a new process: a stored matrix of the wrong shape, or a corrupt file, is rebuilt rather than trusted
    monkeypatch.setattr(feedback_module, "_IN_PROCESS", {})
    np.save(path, np.zeros((1, 1), dtype=np.uint8))
    np.testing.assert_array_equal(cached_pattern_matrix(guesses, answers, "testdigest"), first)
    monkeypatch.setattr(feedback_module, "_IN_PROCESS", {})
    path.write_bytes(b"not a numpy file")
    np.testing.assert_array_equal(cached_pattern_matrix(guesses, answers, "testdigest"), first)
    np.testing.assert_array_equal(np.load(path), first)


def test_official_matrix_spot_checks(official_lexicon):
    lex = official_lexicon
    rng = np.random.default_rng(0)
    rows = rng.integers(len(lex.allowed), size=40)
    cols = rng.integers(len(lex.answers), size=40)
    matrix = pattern_matrix([lex.allowed[r] for r in rows], list(lex.answers))
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        assert decode(int(matrix[k, c])) == rule_feedback(lex.allowed[r], lex.answers[c])
    # the diagonal of answers against themselves is all solved, nothing else is
    sub = pattern_matrix(lex.answers[:200], lex.answers[:200])
    assert (np.diag(sub) == SOLVED).all() and (sub == SOLVED).sum() == 200
