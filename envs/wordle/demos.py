"""Demonstrations for supervised fine-tuning on Wordle: the expert solver's games (one
single-turn conversation per turn: the prompt the env showed and the solver's answer, exactly
what a policy sees when it plays), games on practice secrets, and spelling conversations.

A conversation is a list of ``{"role", "content"}`` messages, as ``agents``' SFT reads them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from envs.wordle.env import WordleEnv
from envs.wordle.lexicon import load_lexicon
from envs.wordle.policies import SolverPolicy, format_action, shared_solver

Conversation = list[dict[str, str]]


def wordle_solver_conversations(
    env_kwargs: dict[str, Any], answers: Sequence[str] | None = None, think: str = "facts",
    opener: str | None = None,
) -> list[Conversation]:
    """The expert solver's games, one conversation per turn, for the given secret answers.

    The solver plays with the env's full lexicon (it does not know about a train/held-out
    split), so the demonstrations are its real games on the training answers. ``opener``
    fixes its first guess.
    """
    env = WordleEnv(**env_kwargs)
    policy = SolverPolicy(env.lexicon, env.hard_mode, think=think, opener=opener)
    targets = list(answers) if answers is not None else list(env.lexicon.answers)
    conversations: list[Conversation] = []
    for seed, answer in enumerate(tqdm(targets, desc="solver games", unit="game", file=sys.stderr,
                                       disable=None, leave=False)):
        obs, _ = env.reset(seed=seed, options={"answer": answer})
        done = False
        while not done:
            (action,), _ = policy.act([obs])
            conversations.append([{"role": "user", "content": obs}, {"role": "assistant", "content": action}])
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    return conversations


def wordle_practice_conversations(
    env_kwargs: dict[str, Any], count: int, seed: int = 0, think: str = "facts",
    skip_prompts: frozenset[str] | set[str] = frozenset(),
) -> list[Conversation]:
    """The expert solver's games on *practice* secrets: allowed words that are never answers.

    ``count`` secrets are drawn (with ``seed``) from the env's allowed list minus its answers,
    so no answer, trained on or held out, is ever a secret here. The solver plays them on a
    lexicon whose answers are those practice words, opening with the real lexicon's opener
    so both kinds of game start from the same board. Turns whose prompt is in
    ``skip_prompts`` are dropped: a board the answer games reach keeps their expert move
    (the two solvers know different answer lists, so on a shared board they may disagree).
    """
    lexicon = load_lexicon(env_kwargs.get("answers"), env_kwargs.get("allowed"))
    answers = set(lexicon.answers)
    pool = [w for w in lexicon.allowed if w not in answers]
    if not pool:
        raise ValueError("practice games need allowed words that are not answers; this lexicon has none")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    secrets = sorted(pool[i] for i in rng.permutation(len(pool))[:count])
    opener = shared_solver(lexicon, bool(env_kwargs.get("hard_mode", False))).opener
    practice_kwargs = {**env_kwargs, "answers": pool, "allowed": list(lexicon.allowed)}
    conversations = wordle_solver_conversations(practice_kwargs, secrets, think=think, opener=opener)
    return [c for c in conversations if c[0]["content"] not in skip_prompts]


SPELLING_PROMPT = "Write any word this game accepts."


def wordle_spelling_conversations(env_kwargs: dict[str, Any]) -> list[Conversation]:
    """One conversation per word the env accepts: a fixed request, no board, answered by that
    word in the action format. The vocabulary a pretrained model brings: answers are not
    marked among the allowed guesses and no game is played, so no answer is ever a secret."""
    lexicon = load_lexicon(env_kwargs.get("answers"), env_kwargs.get("allowed"))
    return [[{"role": "user", "content": SPELLING_PROMPT},
             {"role": "assistant", "content": format_action(word, "")}] for word in lexicon.allowed]
