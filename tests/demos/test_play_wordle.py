"""The terminal Wordle demo, driven through stdin as a person would play it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = '{"answers": ["crane", "slate", "about", "pride", "eagle"]}'


def play(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "demos.play_wordle", "--env-kwargs", ANSWERS, *args],
                          input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_person_solves_after_an_invalid_word() -> None:
    result = play("--answer", "about", stdin="crane\nzzzzz\nabout\n")
    assert result.returncode == 0, result.stderr
    assert "not accepted: 'zzzzz' is not in the word list" in result.stdout
    assert "Solved: ABOUT in 2 guesses." in result.stdout


def test_giving_up_reveals_the_word_and_the_solver_can_be_watched() -> None:
    gave_up = play("--answer", "pride", stdin="crane\n")
    assert gave_up.returncode == 1 and "The word was PRIDE." in gave_up.stdout
    watched = play("--policy", "solver", "--answer", "eagle")
    assert watched.returncode == 0 and "Solved: EAGLE" in watched.stdout
    assert watched.stdout.count("policy: <think>") >= 1


def test_bad_arguments_fail_cleanly() -> None:
    result = play("--answer", "zebra")
    assert result.returncode == 2 and "error:" in result.stderr and "not one of the env's answers" in result.stderr
