"""Fixtures shared by the env tests.

Wordle: the official NYT lists live beside the repository in ``../shared/data/wordle`` (they are
never copied into the project); tests that need them skip when they are absent. The pattern
matrix / opener cache is the normal one (``$POSTTRAIN_GYM_CACHE`` or the user cache dir) and is
shared by every test and subprocess of the session: the solver's opener search over the
official lists costs tens of seconds cold, so a per-test cache would blow the time budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
WORDLE_DATA = SHARED_DATA / "wordle"


@pytest.fixture(scope="session")
def official_lists() -> tuple[Path, Path]:
    """(answers.txt, allowed_guesses.txt) of the official NYT game, or skip."""
    answers, allowed = WORDLE_DATA / "answers.txt", WORDLE_DATA / "allowed_guesses.txt"
    if not (answers.is_file() and allowed.is_file()):
        pytest.skip(f"official Wordle lists not found in {WORDLE_DATA} (answers.txt, allowed_guesses.txt)")
    return answers, allowed


@pytest.fixture(scope="session")
def official_lexicon(official_lists):
    from envs.wordle.lexicon import load_lexicon

    return load_lexicon(*official_lists)
