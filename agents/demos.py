"""Demonstration data for SFT: chat conversations (lists of ``{"role", "content"}`` messages).

Sources:
- JSON lines of ``{"messages": [...]}`` or ``{"prompt": ..., "completion": ...}``;
- the Wordle expert solver (one single-turn conversation per turn: the prompt the env showed
  and the solver's answer, exactly what the policy sees when it plays);
- Anthropic HH-RLHF text (``\\n\\nHuman: … \\n\\nAssistant: …``), parsed into turns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.jsonl import read_json_lines

Conversation = list[dict[str, str]]
ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """Demonstration data is malformed; the message names the file and line."""


def validate_conversation(messages: Any, where: str) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise DataError(f"{where}: message {i} must be an object with string 'role' and 'content'")
        if message.get("role") not in ROLES:
            raise DataError(f"{where}: message {i} has role {message.get('role')!r}; expected one of {ROLES}")
        out.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(f"{where}: the conversation has no assistant turn (nothing to learn from)")
    return out


def read_conversations_jsonl(path: str | Path) -> list[Conversation]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    conversations = []
    for where, row in read_json_lines(path, DataError):
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        if "messages" in row:
            conversations.append(validate_conversation(row["messages"], where))
        elif "prompt" in row and "completion" in row:
            if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
                raise DataError(f"{where}: 'prompt' and 'completion' must be strings")
            conversations.append([{"role": "user", "content": row["prompt"]},
                                  {"role": "assistant", "content": row["completion"]}])
        else:
            raise DataError(f"{where}: expected 'messages' or 'prompt'+'completion' keys, got {sorted(row)}")
    if not conversations:
        raise DataError(f"{path}: no conversations (the file is empty)")
    return conversations


_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def parse_hh(text: str) -> Conversation:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` -> user/assistant messages (multi-turn)."""
    pieces = _HH_TURN.split(text)
    if len(pieces) < 3 or pieces[0].strip():
        raise DataError("HH text must start with '\\n\\nHuman:' and alternate speakers")
    messages = []
    for speaker, content in zip(pieces[1::2], pieces[2::2], strict=True):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    return messages


def hh_conversations(path: str | Path, field: str = "chosen") -> list[Conversation]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"HH data file {str(path)!r} does not exist")
    conversations = []
    for where, row in read_json_lines(path, DataError):
        try:
            conversation = parse_hh(row[field])
        except (KeyError, TypeError, DataError) as err:
            raise DataError(f"{where}: not an HH-RLHF record ({err})") from err
        if any(m["role"] == "assistant" and m["content"] for m in conversation):
            conversations.append(conversation)
    if not conversations:
        raise DataError(f"{path}: no conversations")
    return conversations


def split_answers(answers: Sequence[str], train_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train / held-out split of Wordle answers (same seed -> same split)."""
    if not 0 < train_fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    order = np.random.default_rng(seed).permutation(len(answers))
    cut = round(train_fraction * len(answers))
    train = sorted(answers[i] for i in order[:cut])
    held_out = sorted(answers[i] for i in order[cut:])
    return train, held_out


def wordle_solver_conversations(
    env_kwargs: dict[str, Any], answers: Sequence[str] | None = None, think: str = "facts",
    batch_size: int = 256, opener: str | None = None,
) -> list[Conversation]:
    """The expert solver's games, one conversation per turn, for the given secret answers.

    The solver plays with the env's full lexicon (it does not know about a train/held-out
    split), so the demonstrations are its real games on the training answers. ``opener``
    fixes its first guess.
    """
    import gymnasium as gym

    import envs  # noqa: F401
    from agents.rollout import EpisodeSpec, play_episodes
    from envs.wordle.policies import SolverPolicy

    def make() -> gym.Env:
        return gym.make("Wordle-v0", **env_kwargs)

    probe = make().unwrapped
    policy = SolverPolicy(probe.lexicon, probe.hard_mode, think=think, opener=opener)
    targets = list(answers) if answers is not None else list(probe.lexicon.answers)
    specs = [EpisodeSpec(seed=i, options={"answer": a}) for i, a in enumerate(targets)]
    episodes = play_episodes(make, policy, specs, batch_size=batch_size)
    return [
        [{"role": "user", "content": obs}, {"role": "assistant", "content": act}]
        for episode in episodes
        for obs, act in zip(episode.observations, episode.actions, strict=True)
    ]


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
    from envs.wordle.lexicon import load_lexicon
    from envs.wordle.policies import shared_solver

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
    from envs.wordle.lexicon import load_lexicon
    from envs.wordle.policies import format_action

    lexicon = load_lexicon(env_kwargs.get("answers"), env_kwargs.get("allowed"))
    return [[{"role": "user", "content": SPELLING_PROMPT},
             {"role": "assistant", "content": format_action(word, "")}] for word in lexicon.allowed]


def gsm8k_solution_conversations(env_kwargs: dict[str, Any], keep_calculator: bool = False) -> list[Conversation]:
    """One conversation per problem: the env's prompt and the dataset's worked solution
    (``<<48/2=24>>`` calculator annotations stripped unless ``keep_calculator``)."""
    from envs.gsm8k.env import GSM8KEnv, ReferenceSolutionPolicy

    env = GSM8KEnv(**env_kwargs)
    policy = ReferenceSolutionPolicy(env, keep_calculator=keep_calculator)
    prompts = [env.prompt(i) for i in range(len(env.problems))]
    completions, _ = policy.act(prompts)
    return [[{"role": "user", "content": p}, {"role": "assistant", "content": c}]
            for p, c in zip(prompts, completions, strict=True)]
