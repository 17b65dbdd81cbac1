"""Wordle-v0: the NYT word game as a text environment for language-model policies."""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.protocol import ActionKind
from envs.wordle.feedback import cached_pattern_matrix, feedback
from envs.wordle.lexicon import WORD_LENGTH, Lexicon, load_lexicon
from envs.wordle.policies import RandomWordPolicy, SolverPolicy
from envs.wordle.rewards import (
    FORMAT_NOT_A_WORD,
    FORMAT_UNPARSABLE,
    FORMAT_VALID,
    FORMAT_WRONG_LENGTH,
    REWARD_MODES,
    feedback_use,
    information_gain,
)
from envs.wordle.text import PROMPT_STYLES, parse_guess, render_prompt

TEXT_CHARSET = string.printable + "✓→…‘’“”"
MAX_PROMPT_CHARS = 4096
MAX_ACTION_CHARS = 4096
_ANSI = {2: "\x1b[1;97;42m", 1: "\x1b[1;97;43m", 0: "\x1b[1;97;100m"}


class WordleEnv(gym.Env):
    """
    ## Description
    Wordle with the exact New York Times rules. The env picks a secret five-letter answer;
    the agent has ``max_guesses`` (6) tries. Each valid guess gets per-letter feedback:
    ✓ right letter in the right spot, ``-`` in the word elsewhere, ``x`` absent; a repeated
    letter is marked ``-`` only as many times as it is still unmatched in the answer.
    The agent is a language model: observations are prompts and actions are the model's raw
    text, in which the last ``<guess>word</guess>`` counts.

    ## Action Space
    ``spaces.Text(max_length=4096)`` over printable ASCII plus ``✓→…‘’“”``. Any string is
    accepted by ``step``: text without a parsable guess, a wrong length, a word outside the
    allowed list or (hard mode) a guess ignoring a hint is an *invalid action*. Invalid
    actions do not use up a guess; ``info["invalid_reason"]`` says why. After ``max_invalid``
    (2) of them, the next one ends the episode as a loss.

    ## Observation Space
    ``spaces.Text(max_length=4096)``: the complete prompt for the next turn.

    | ``prompt_style`` | content |
    |---|---|
    | ``"full"`` (default) | the rules, each past guess as ``CRANE → C(x) R(-) A(✓) N(x) E(x)``, a note on the last invalid answer, guesses left and the required format ``<think>…</think><guess>word</guess>``; for instruction-tuned models |
    | ``"compact"`` | one line per past guess, ``crane x-✓xx``, and ``! reason`` after an invalid answer; for small models trained from scratch |

    ## Rewards
    ``reward="win"`` (default) or ``"shaped"``. Every term is in ``info["reward_terms"]``.

    | term | mode | value |
    |---|---|---|
    | ``win`` | both | 1 when the guess is the answer, else 0 |
    | ``format`` | shaped | 1 valid guess; 0.5 five letters but not an allowed word (or breaks hard mode); 0.1 a tagged guess of the wrong length; 0 no parsable guess |
    | ``feedback`` | shaped | per letter: +0.2 kept in a known ✓ spot, +0.1 known letter in a new spot, -0.2 known letter in a spot already marked ``-``, -0.5 letter known absent, +0.05 untried letter (0 for invalid actions) |
    | ``info_gain`` | shaped | (H0 - E[H after the guess]) / H0 over the answers still possible, H in bits (0 for invalid actions and when one answer is left) |

    | ``invalid`` | both, when ``invalid_penalty`` > 0 | ``-invalid_penalty`` for an invalid action, else 0 |

    The reward of a step is the sum of its terms. ``invalid_penalty`` charges each misspelt
    or disallowed guess directly: under ``"win"`` alone an invalid action costs nothing until
    it loses the game, so a policy learns little about spelling from the wins it still gets.

    ## Starting State
    The answer is drawn uniformly from ``answers`` with ``self.np_random``;
    ``options={"answer": "crane"}`` pins it (it must be one of the answers).

    ## Episode End
    Terminated when the answer is guessed, after ``max_guesses`` valid guesses, or at the
    invalid action after ``max_invalid`` earlier ones. No truncation.

    ## Info
    ``reset`` and every ``step`` return:

    | key | value |
    |---|---|
    | ``guesses`` | the valid guesses so far, in order |
    | ``patterns`` | their feedback, one list of five marks per guess (2 ✓, 1 ``-``, 0 ``x``) |
    | ``candidates_remaining`` | answers still consistent with the feedback |
    | ``invalid_count`` | invalid actions so far |
    | ``won`` | whether the last valid guess was the answer |
    | ``answer`` | the secret word; only once the episode has ended |
    | ``reward_terms`` | ``step`` only: the reward terms of this step (see Rewards) |
    | ``invalid_reason`` | ``step`` only, after an invalid action: why it was invalid |

    ## Stable-Baselines3
    SB3 and sb3-contrib support only ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``
    and ``Dict`` spaces, so they cannot train on ``Text`` spaces (their ``check_env`` says
    "must be a numpy array"; ``PPO(...)`` fails with "'NoneType' object is not iterable").
    Train language-model policies on Wordle with this package's agents (``sft``, ``grpo``,
    ``filtered``); ``HumanoidMimic-v1`` is the env for SB3.

    ## Arguments
    | argument | default | meaning |
    |---|---|---|
    | ``answers`` | package lexicon | path (one word per line) or list of possible answers |
    | ``allowed`` | package lexicon | path or list of accepted guesses; the answers are always accepted |
    | ``reward`` | ``"win"`` | ``"win"`` or ``"shaped"`` |
    | ``prompt_style`` | ``"full"`` | ``"full"`` or ``"compact"`` |
    | ``hard_mode`` | ``False`` | revealed hints must be used in later guesses |
    | ``max_guesses`` | 6 | valid guesses per game |
    | ``max_invalid`` | 2 | invalid actions tolerated per game |
    | ``invalid_penalty`` | 0.0 | subtracted from the reward of each invalid action (term ``invalid``) |
    | ``render_mode`` | ``None`` | ``"ansi"`` (coloured board as a string) or ``"human"`` (printed) |

    The package lexicon needs no download: lowercase five-letter entries of Webster's 2nd
    (package ``english-words``) ranked by ``wordfreq``; answers are the 2,315 most frequent,
    allowed guesses add the 6,000 most frequent five-letter tokens. The official NYT lists can
    be passed as ``answers=``/``allowed=`` paths.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "render_fps": 1}  # noqa: RUF012  (an instance attribute of gymnasium.Env)
    action_kind: ClassVar[ActionKind] = "text"  # envs.protocol: agents choose the policy by it
    metrics_key: ClassVar[str] = "wordle"  # where evaluation summaries put summarize_episodes

    def __init__(
        self,
        answers: str | Path | Sequence[str] | None = None,
        allowed: str | Path | Sequence[str] | None = None,
        reward: str = "win",
        prompt_style: str = "full",
        hard_mode: bool = False,
        max_guesses: int = 6,
        max_invalid: int = 2,
        invalid_penalty: float = 0.0,
        render_mode: str | None = None,
    ):
        if reward not in REWARD_MODES:
            raise ValueError(f"reward must be one of {REWARD_MODES}, got {reward!r}")
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if max_guesses < 1 or max_invalid < 0:
            raise ValueError("max_guesses must be >= 1 and max_invalid >= 0")
        if not (math.isfinite(invalid_penalty) and invalid_penalty >= 0):
            raise ValueError(f"invalid_penalty must be a finite number >= 0, got {invalid_penalty}")
        self.lexicon: Lexicon = load_lexicon(answers, allowed)
        self.reward_mode = reward
        self.prompt_style = prompt_style
        self.hard_mode = hard_mode
        self.max_guesses = max_guesses
        self.max_invalid = max_invalid
        self.invalid_penalty = float(invalid_penalty)
        self.render_mode = render_mode
        # The rules take ~1 kB; each past guess adds one history line (< 40 characters).
        prompt_chars = max(MAX_PROMPT_CHARS, 1536 + 48 * max_guesses)
        self.observation_space = spaces.Text(max_length=prompt_chars, min_length=0, charset=TEXT_CHARSET)
        self.action_space = spaces.Text(max_length=MAX_ACTION_CHARS, min_length=0, charset=TEXT_CHARSET)
        self._patterns: np.ndarray | None = None
        self._answer: str | None = None
        self._history: list[tuple[str, tuple[int, ...]]] = []
        self._candidates = np.arange(len(self.lexicon.answers))
        self._invalid_count = 0
        self._last_invalid: str | None = None
        self._done = False

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"answer"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; supported: 'answer'")
        if "answer" in options:
            answer = str(options["answer"]).strip().lower()
            if answer not in self.lexicon.answer_index:
                raise ValueError(f"options['answer']={options['answer']!r} is not one of the env's answers")
        else:
            answer = self.lexicon.answers[int(self.np_random.integers(len(self.lexicon.answers)))]
        self._answer = answer
        self._history = []
        self._candidates = np.arange(len(self.lexicon.answers))
        self._invalid_count = 0
        self._last_invalid = None
        self._done = False
        if self.render_mode == "human":
            self.render()
        return self._prompt(), self._info()

    def step(self, action: Any):
        if self._answer is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode has ended; call reset() to start a new one")
        guess, invalid, format_score = self._validate(action)
        terms = {"win": 0.0}
        if self.reward_mode == "shaped":
            terms.update(format=format_score, feedback=0.0, info_gain=0.0)
        if self.invalid_penalty:
            terms["invalid"] = -self.invalid_penalty if invalid is not None else 0.0
        if invalid is not None:
            self._invalid_count += 1
            self._last_invalid = invalid
            terminated = self._invalid_count > self.max_invalid
        else:
            assert guess is not None
            marks = feedback(guess, self._answer)
            if self.reward_mode == "shaped":
                terms["feedback"] = feedback_use(guess, self._history)
                row = self.patterns[self.lexicon.allowed_index[guess]]
                terms["info_gain"] = information_gain(row, self._candidates)
            self._history.append((guess, marks))
            row = self.patterns[self.lexicon.allowed_index[guess]]
            self._candidates = self._candidates[row[self._candidates] == row[self.lexicon.answer_index[self._answer]]]
            self._last_invalid = None
            won = guess == self._answer
            terms["win"] = 1.0 if won else 0.0
            terminated = won or len(self._history) >= self.max_guesses
        self._done = terminated
        info = self._info()
        info["reward_terms"] = terms
        if invalid is not None:
            info["invalid_reason"] = invalid
        if self.render_mode == "human":
            self.render()
        return self._prompt(), float(sum(terms.values())), terminated, False, info

    def render(self) -> str | None:
        lines = []
        for guess, marks in self._history:
            lines.append(" ".join(f"{_ANSI[m]} {c.upper()} \x1b[0m" for c, m in zip(guess, marks, strict=True)))
        lines += [" ".join(" _ " for _ in range(WORD_LENGTH))] * (self.max_guesses - len(self._history))
        if self._last_invalid:
            lines.append(f"(invalid: {self._last_invalid})")
        board = "\n".join(lines)
        if self.render_mode == "human":
            print(board + "\n")
            return None
        return board

    def __getstate__(self) -> dict[str, Any]:
        # The pattern matrix (27 MB for the package lexicon) is shared by the envs of a process
        # and cached on disk: a pickled env (sent to a worker process) reloads it when needed.
        state = self.__dict__.copy()
        state["_patterns"] = None
        return state

    @property
    def answer(self) -> str | None:
        """The secret of the current episode (None before ``reset``). Observations never show it;
        it is for people and tools, e.g. the terminal game reveals it when a player gives up."""
        return self._answer

    # -- helpers ----------------------------------------------------------------------------
    @property
    def patterns(self) -> np.ndarray:
        """Pattern codes of every allowed guess against every answer (cached per lexicon)."""
        if self._patterns is None:
            self._patterns = cached_pattern_matrix(self.lexicon.allowed, self.lexicon.answers, self.lexicon.digest)
        return self._patterns

    def _validate(self, action: Any) -> tuple[str | None, str | None, float]:
        parsed = parse_guess(action)
        if parsed.word is None:
            return None, parsed.error, FORMAT_UNPARSABLE
        word = parsed.word
        if len(word) != WORD_LENGTH:
            return None, f"{word!r} has {len(word)} letters, not {WORD_LENGTH}", FORMAT_WRONG_LENGTH
        if word not in self.lexicon.allowed_index:
            return None, f"{word!r} is not in the word list", FORMAT_NOT_A_WORD
        if self.hard_mode and (broken := hard_mode_violation(word, self._history)):
            return None, broken, FORMAT_NOT_A_WORD
        return word, None, FORMAT_VALID

    def _prompt(self) -> str:
        return render_prompt(self._history, style=self.prompt_style, max_guesses=self.max_guesses,
                             hard_mode=self.hard_mode, invalid=self._last_invalid)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "guesses": [g for g, _ in self._history],
            "patterns": [list(m) for _, m in self._history],
            "candidates_remaining": len(self._candidates),
            "invalid_count": self._invalid_count,
            "won": bool(self._history) and self._history[-1][0] == self._answer,
        }
        if self._done:
            info["answer"] = self._answer
        return info

    # -- capabilities agents use (envs.protocol) ------------------------------------------------
    def all_tasks(self) -> list[dict[str, Any]]:
        """Every answer once, in lexicon order (``--episodes all``)."""
        return [{"answer": a} for a in self.lexicon.answers]

    @staticmethod
    def summarize_episodes(episodes: Sequence[Any]) -> dict[str, Any]:
        wins = [e for e in episodes if e.info.get("won")]
        histogram = {str(k): 0 for k in range(1, 7)} | {"fail": 0}
        for e in episodes:
            key = str(len(e.info.get("guesses", []))) if e.info.get("won") else "fail"
            histogram[key] = histogram.get(key, 0) + 1
        return {
            "win_rate": len(wins) / len(episodes) if episodes else 0.0,
            "mean_guesses": float(np.mean([len(e.info["guesses"]) for e in wins])) if wins else None,
            "guess_histogram": histogram,
            "invalid_actions": int(sum(e.info.get("invalid_count", 0) for e in episodes)),
        }

    @staticmethod
    def progress_postfix(episodes: Sequence[Any]) -> dict[str, str]:
        wins = sum(bool(e.info.get("won")) for e in episodes)
        return {"win": f"{wins / max(len(episodes), 1):.1%}"}

    @property
    def scripted_policies(self) -> dict[str, Any]:
        return {"solver": SolverPolicy.for_env, "random": RandomWordPolicy.for_env}


def hard_mode_violation(word: str, history: Sequence[tuple[str, Sequence[int]]]) -> str | None:
    """NYT hard mode: why ``word`` ignores a revealed hint, or None when it uses them all."""
    ordinals = ("1st", "2nd", "3rd", "4th", "5th")
    for guess, marks in history:
        for i, (letter, mark) in enumerate(zip(guess, marks, strict=True)):
            if mark == 2 and word[i] != letter:
                return f"hard mode: {ordinals[i]} letter must be {letter.upper()}"
        needed: dict[str, int] = {}
        for letter, mark in zip(guess, marks, strict=True):
            if mark >= 1:
                needed[letter] = needed.get(letter, 0) + 1
        for letter, count in needed.items():
            if word.count(letter) < count:
                return f"hard mode: guess must contain {letter.upper()}" + (f" {count} times" if count > 1 else "")
    return None
