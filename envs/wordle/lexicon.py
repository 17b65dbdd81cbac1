"""Word lists for Wordle: the answers the game may pick and the guesses it accepts.

The package's default lexicon is built from two installed packages, so nothing is
downloaded: ``english-words`` (the lowercase entries of Webster's 2nd, which leaves proper
nouns out) ranked by ``wordfreq``'s English frequencies. Answers are the 2,315 most frequent
such five-letter words (the size of the official list); allowed guesses are every such word
plus the 6,000 most frequent five-letter alphabetic tokens (which brings in plurals).

The official NYT lists are passed as files: ``answers="…/answers.txt",
allowed="…/allowed_guesses.txt"`` (the allowed set is always the union with the answers).
Answers alone keep the package's allowed guesses: a game on a short answer list still accepts
every ordinary word, as the real game does.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WORD_LENGTH = 5
DEFAULT_ANSWER_COUNT = 2315
DEFAULT_EXTRA_COMMON = 6000


class LexiconError(ValueError):
    """A word list is empty or holds something that is not a five-letter word."""


@dataclass(frozen=True)
class Lexicon:
    """Answers (in their given order) and the sorted allowed guesses (a superset)."""

    answers: tuple[str, ...]
    allowed: tuple[str, ...]

    @functools.cached_property
    def allowed_index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.allowed)}

    @functools.cached_property
    def answer_index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.answers)}

    @functools.cached_property
    def digest(self) -> str:
        """Content hash: identifies cached pattern matrices and solver trees."""
        h = hashlib.sha256()
        h.update("\n".join(self.answers).encode())
        h.update(b"\0")
        h.update("\n".join(self.allowed).encode())
        return h.hexdigest()[:16]

    def __getstate__(self) -> dict[str, tuple[str, ...]]:
        # the cached indexes would double a pickled env; they are rebuilt on first use
        return {"answers": self.answers, "allowed": self.allowed}

    @classmethod
    def build(cls, answers: Sequence[str], allowed: Sequence[str] = ()) -> Lexicon:
        answers = tuple(dict.fromkeys(answers))
        if not answers:
            raise LexiconError("the answer list is empty")
        return cls(answers=answers, allowed=tuple(sorted(set(allowed) | set(answers))))


def _check_word(word: str, where: str) -> str:
    if len(word) != WORD_LENGTH:
        raise LexiconError(f"{where}: {word!r} has {len(word)} letters, expected {WORD_LENGTH}")
    if not (word.isascii() and word.isalpha()):
        raise LexiconError(f"{where}: {word!r} must contain only the letters a-z")
    return word.lower()


def read_word_list(source: str | Path | Sequence[str], name: str) -> list[str]:
    """Read a path (one word per line; blank lines and ``#`` comments ignored) or a list."""
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        if not path.is_file():
            raise LexiconError(f"{name} word list {str(path)!r} does not exist")
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()  # tolerate a BOM
        except UnicodeDecodeError as err:
            raise LexiconError(f"{path}: not UTF-8 text ({err})") from err
        words = [
            _check_word(line.strip(), f"{path}:{n}")
            for n, line in enumerate(lines, start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
        if not words:
            raise LexiconError(f"{path}: the {name} list is empty")
        return words
    if isinstance(source, bytes) or not isinstance(source, Sequence):
        raise LexiconError(f"{name} must be a path or a list of words, got {type(source).__name__}")
    words = [_check_word(str(w).strip(), f"{name}[{i}]") for i, w in enumerate(source)]
    if not words:
        raise LexiconError(f"the {name} list is empty")
    return words


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    from english_words import get_english_words_set  # heavy: reads word lists; not needed with user lists
    from wordfreq import top_n_list  # heavy: likewise

    dictionary = {w for w in get_english_words_set(["web2"], lower=False, alpha=True)
                  if len(w) == WORD_LENGTH and w.islower() and w.isascii()}
    ranked = [w for w in top_n_list("en", 200_000)
              if len(w) == WORD_LENGTH and w.isascii() and w.isalpha() and w.islower()]
    answers = [w for w in ranked if w in dictionary][:DEFAULT_ANSWER_COUNT]
    return Lexicon.build(answers, sorted(dictionary | set(ranked[:DEFAULT_EXTRA_COMMON])))


def load_lexicon(
    answers: str | Path | Sequence[str] | None = None,
    allowed: str | Path | Sequence[str] | None = None,
) -> Lexicon:
    """The default lexicon, or one from user lists. ``allowed`` defaults to the package
    lexicon's allowed guesses; the answers are always allowed too."""
    if answers is None and allowed is None:
        return default_lexicon()
    if answers is None:
        raise LexiconError("allowed= was given without answers=; pass both word lists")
    answer_words = read_word_list(answers, "answers")
    allowed_words = read_word_list(allowed, "allowed") if allowed is not None else default_lexicon().allowed
    return Lexicon.build(answer_words, allowed_words)
