"""Wordle-v0: exact NYT rules, text interface, expert solver."""

from envs.wordle.env import WordleEnv, hard_mode_violation
from envs.wordle.feedback import feedback, pattern_matrix
from envs.wordle.lexicon import Lexicon, LexiconError, load_lexicon
from envs.wordle.policies import SolverPolicy
from envs.wordle.solver import WordleSolver
from envs.wordle.text import parse_guess, parse_history, render_prompt

__all__ = [
    "Lexicon",
    "LexiconError",
    "SolverPolicy",
    "WordleEnv",
    "WordleSolver",
    "feedback",
    "hard_mode_violation",
    "load_lexicon",
    "parse_guess",
    "parse_history",
    "pattern_matrix",
    "render_prompt",
]
