"""Demonstrations for supervised fine-tuning on GSM8K: each problem's prompt answered by the
dataset's worked solution, as a ``{"role", "content"}`` conversation (with the env's system
message first under ``prompt_style="chat"``, as a policy sees it when it plays)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from envs.gsm8k.env import GSM8KEnv, ReferenceSolutionPolicy

Conversation = list[dict[str, str]]


def gsm8k_solution_conversations(env_kwargs: dict[str, Any], keep_calculator: bool = False,
                                 indices: Sequence[int] | None = None) -> list[Conversation]:
    """One conversation per problem (all, or those at ``indices``): the env's prompt and the
    dataset's worked solution (``<<48/2=24>>`` calculator annotations stripped unless
    ``keep_calculator``)."""
    env = GSM8KEnv(**env_kwargs)
    policy = ReferenceSolutionPolicy(env, keep_calculator=keep_calculator)
    chosen = range(len(env.problems)) if indices is None else indices
    completions, _ = policy.act([env.prompt(i) for i in chosen])
    # With prompt_style="chat" a policy sees the env's system message too: so does its training.
    turns = [env.messages(i) if env.prompt_style == "chat" else [{"role": "user", "content": env.prompt(i)}]
             for i in chosen]
    return [[*turn, {"role": "assistant", "content": c}] for turn, c in zip(turns, completions, strict=True)]
