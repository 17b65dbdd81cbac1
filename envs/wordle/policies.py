"""Scripted Wordle policies: the expert solver (baseline and demonstrator) and random words.

Both act on observations alone, so one instance serves any number of envs in lockstep: the
history is read back from the prompt with :func:`envs.wordle.text.parse_history`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.wordle.lexicon import Lexicon
from envs.wordle.solver import WordleSolver
from envs.wordle.text import parse_guess, parse_history

THINK_STYLES = ("facts", "count", "none")


@functools.lru_cache(maxsize=8)
def shared_solver(lexicon: Lexicon, hard_mode: bool, opener: str | None = None) -> WordleSolver:
    """One solver (and its memoised game tree) per lexicon, mode and opener in this process."""
    return WordleSolver(lexicon, hard_mode=hard_mode, opener=opener)


def describe_constraints(history: Sequence[tuple[str, Sequence[int]]], candidates_left: int) -> str:
    """Short factual reasoning: what the feedback so far proves, and how many answers remain."""
    if not history:
        return "No feedback yet; open with a guess that splits the answers well."
    fixed: dict[int, str] = {}
    present: set[str] = set()
    absent: set[str] = set()
    for word, marks in history:
        for i, (letter, mark) in enumerate(zip(word, marks, strict=True)):
            if mark == 2:
                fixed[i] = letter
            if mark >= 1:
                present.add(letter)
        absent |= {c for c, m in zip(word, marks, strict=True) if m == 0} - present
    pattern = "".join(fixed.get(i, "_") for i in range(5))
    parts = [f"Known: {pattern}."]
    elsewhere = sorted(present - set(fixed.values()))
    if elsewhere:
        parts.append(f"Also in the word: {' '.join(elsewhere)}.")
    if absent:
        parts.append(f"Not in the word: {' '.join(sorted(absent))}.")
    parts.append(f"{candidates_left} possible answer{'s' if candidates_left != 1 else ''} left.")
    return " ".join(parts)


def format_action(guess: str, think: str) -> str:
    return f"<think>{think}</think><guess>{guess}</guess>"


class SolverPolicy:
    """The expert solver as a policy; ``think`` sets what goes inside ``<think>``:
    ``"facts"`` (constraints and answers left), ``"count"`` (answers left) or ``"none"``.
    ``opener`` fixes the first guess instead of the one searched for this lexicon."""

    def __init__(self, lexicon: Lexicon, hard_mode: bool = False, think: str = "facts",
                 opener: str | None = None):
        if think not in THINK_STYLES:
            raise ValueError(f"think must be one of {THINK_STYLES}, got {think!r}")
        self.solver = shared_solver(lexicon, hard_mode, opener)
        self.think = think

    @classmethod
    def for_env(cls, env: Any, seed: int | None = None) -> SolverPolicy:
        return cls(env.lexicon, env.hard_mode)

    def _act_one(self, prompt: str) -> str:
        history = parse_history(prompt)
        guess = self.solver.choose(history)
        if self.think == "none":
            return format_action(guess, "")
        left = len(self.solver.candidates(history))
        if self.think == "count":
            return format_action(guess, f"{left} left")
        return format_action(guess, describe_constraints(history, left))

    def act(self, obs_batch: Sequence[str], deterministic: bool = True) -> tuple[list[str], np.ndarray]:
        return [self._act_one(o) for o in obs_batch], np.zeros(len(obs_batch))

    def log_prob(self, obs_batch: Sequence[str], actions: Sequence[str]) -> np.ndarray:
        """0 where the action's guess is the solver's (it is deterministic), else -inf."""
        return np.array([
            0.0 if parse_guess(a).word == self.solver.choose(parse_history(o)) else -np.inf
            for o, a in zip(obs_batch, actions, strict=True)
        ])

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError("the solver is scripted; use --policy solver instead of saving it")


class RandomWordPolicy:
    """Uniformly random allowed words: the floor any trained policy must beat."""

    def __init__(self, lexicon: Lexicon, seed: int | None = None):
        self.lexicon = lexicon
        self.rng = np.random.default_rng(seed)

    @classmethod
    def for_env(cls, env: Any, seed: int | None = None) -> RandomWordPolicy:
        return cls(env.lexicon, seed)

    def act(self, obs_batch: Sequence[str], deterministic: bool = False) -> tuple[list[str], np.ndarray]:
        picks = self.rng.integers(len(self.lexicon.allowed), size=len(obs_batch))
        logp = np.full(len(obs_batch), -np.log(len(self.lexicon.allowed)))
        return [format_action(self.lexicon.allowed[i], "") for i in picks], logp

    def log_prob(self, obs_batch: Sequence[str], actions: Sequence[str]) -> np.ndarray:
        allowed = self.lexicon.allowed_index
        return np.array([-np.log(len(allowed)) if parse_guess(a).word in allowed else -np.inf for a in actions])

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError("the random policy is scripted; use --policy random instead of saving it")
