"""The Wordle text interface: prompts the env shows, and parsing of what a model answers.

Feedback symbols: ✓ right spot, - wrong spot, x absent. A full prompt explains the game;
a compact prompt is only the history, one short line per guess, for small models trained
from scratch (about 12 characters a guess instead of several hundred for the rules).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SYMBOLS = {2: "✓", 1: "-", 0: "x"}
_FROM_SYMBOL = {v: k for k, v in SYMBOLS.items()}
PROMPT_STYLES = ("full", "compact")

# Case- and whitespace-tolerant; the last complete tag pair in the text counts. The two tags
# are found separately (each scan linear) so adversarial input cannot make matching quadratic.
_OPEN_TAG = re.compile(r"<\s*guess\s*>", re.IGNORECASE)
_CLOSE_TAG = re.compile(r"<\s*/\s*guess\s*>", re.IGNORECASE)
_MAX_GUESS_CHARS = 64

RULES = """You are playing Wordle. Find the secret 5-letter English word in {max_guesses} guesses.
Each guess must be a valid 5-letter word. After each guess, every letter gets feedback:
  ✓ = the letter is in the word and in the right spot
  - = the letter is in the word but in a different spot
  x = the letter is not in the word
A letter that appears twice in your guess is marked "-" only as often as it is still unmatched in the word.{hard}
"""
HARD_RULE = "\nHard mode: every ✓ letter must stay in its spot and every - letter must be reused."
FORMAT = ("Think step by step inside <think> </think>, then give your guess inside <guess> </guess>, "
          "for example: <think>reasoning</think><guess>crane</guess>")


@dataclass(frozen=True)
class ParsedGuess:
    """The word inside the last ``<guess>`` tag, or why there is none."""

    word: str | None
    error: str | None = None


def _last(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    last = None
    for last in matches:  # noqa: B007 (we want the final match)
        pass
    return last


def parse_guess(text: str) -> ParsedGuess:
    """Extract the guessed word. Never raises, whatever the input."""
    if not isinstance(text, str):
        return ParsedGuess(None, f"action must be a string, got {type(text).__name__}")
    close = _last(_CLOSE_TAG.finditer(text))
    opening = _last(_OPEN_TAG.finditer(text, 0, close.start())) if close else None
    if close is None or opening is None:
        return ParsedGuess(None, "no <guess>…</guess> tag")
    raw = text[opening.end() : close.start()].strip()
    if len(raw) > _MAX_GUESS_CHARS:
        return ParsedGuess(None, f"guess is {len(raw)} characters long")
    if not raw.isascii():
        # !a, not !r: the reason is shown in the next prompt, which must stay inside the
        # observation space's charset (printable ASCII plus a few symbols).
        return ParsedGuess(None, f"guess {raw!a} has non-ASCII characters")
    word = raw.lower()
    if not word.isalpha():
        return ParsedGuess(None, f"guess {raw!r} must contain only letters")
    return ParsedGuess(word)


def marks_to_symbols(marks: Sequence[int]) -> str:
    return "".join(SYMBOLS[m] for m in marks)


def history_line(guess: str, marks: Sequence[int], style: str) -> str:
    if style == "compact":
        return f"{guess} {marks_to_symbols(marks)}"
    cells = " ".join(f"{c.upper()}({SYMBOLS[m]})" for c, m in zip(guess, marks, strict=True))
    return f"{guess.upper()} → {cells}"


@functools.lru_cache(maxsize=16)
def _rules(max_guesses: int, hard_mode: bool) -> str:
    return RULES.format(max_guesses=max_guesses, hard=HARD_RULE if hard_mode else "")


def render_prompt(
    history: Sequence[tuple[str, Sequence[int]]],
    *,
    style: str = "full",
    max_guesses: int = 6,
    hard_mode: bool = False,
    invalid: str | None = None,
) -> str:
    """The observation for the next turn."""
    lines = [history_line(g, m, style) for g, m in history]
    if style == "compact":
        if invalid:
            lines.append(f"! {invalid}")
        return "\n".join(lines)
    parts = [_rules(max_guesses, hard_mode)]
    if lines:
        parts.append("Your guesses so far:\n" + "\n".join(lines) + "\n")
    else:
        parts.append("You have not guessed yet.\n")
    if invalid:
        parts.append(f"Your last answer was not accepted: {invalid}. It did not use up a guess.\n")
    parts.append(f"Guesses left: {max_guesses - len(history)}.\n{FORMAT}")
    return "\n".join(parts)


_COMPACT_LINE = re.compile(r"^([a-z]{5}) ([✓x-]{5})$")
_FULL_LINE = re.compile(r"^([A-Z]{5}) → ((?:[A-Z]\([✓x-]\) ?){5})$")


def parse_history(prompt: str) -> list[tuple[str, tuple[int, ...]]]:
    """Recover (guess, marks) pairs from a prompt rendered by :func:`render_prompt`.

    Scripted policies see only observations; this lets the expert solver act on a prompt.
    """
    history = []
    for line in prompt.splitlines():
        line = line.strip()
        if m := _COMPACT_LINE.match(line):
            history.append((m.group(1), tuple(_FROM_SYMBOL[s] for s in m.group(2))))
        elif m := _FULL_LINE.match(line):
            symbols = re.findall(r"\(([✓x-])\)", m.group(2))
            history.append((m.group(1).lower(), tuple(_FROM_SYMBOL[s] for s in symbols)))
    return history
