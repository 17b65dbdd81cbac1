"""Demonstrations for supervised fine-tuning on GSM8K: each problem's prompt answered by the
dataset's worked solution, as a ``{"role", "content"}`` conversation."""

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
    prompts = [env.prompt(i) for i in (range(len(env.problems)) if indices is None else indices)]
    completions, _ = policy.act(prompts)
    return [[{"role": "user", "content": p}, {"role": "assistant", "content": c}]
            for p, c in zip(prompts, completions, strict=True)]
