"""The one registry of algorithms: name, the actions it takes, its config class, its agent class
and what it learns from. ``python -m agents.train`` chooses an agent here and nowhere else.

Agent classes are named as ``"module:Class"`` and imported when a run starts (they import torch),
so ``--help`` and config checks stay light. Every agent is built the same way,
``Agent(policy, config, run=run, seed=seed)``, and trained with
``agent.learn(make_env, demos=data, resume_from=checkpoint)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from agents.algos.configs import BCConfig, DPOConfig, FilteredConfig, GRPOConfig, SFTConfig, TRPOConfig
from agents.core.config import ConfigError
from envs.protocol import ActionKind

# What an agent's learn() gets as demos: conversations or mocap demonstrations the command line
# builds, nothing (it plays the env), the episodes it selects from an RL run's logs, or preference
# pairs (from a file, or mined from an RL run's logs) it loads for the policy.
LearnsFrom = Literal["demonstrations", "environment", "episode_logs", "preferences"]


@dataclass(frozen=True)
class Algorithm:
    name: str
    action_kinds: tuple[ActionKind, ...]  # the envs it trains on: text (language models), box (MLPs)
    config: type
    agent: str  # "module:Class"
    learns_from: LearnsFrom
    summary: str
    distributed: bool = False  # runs under torchrun with several processes (agents.core.distributed)

    def agent_class(self) -> Any:
        module, name = self.agent.split(":")
        return getattr(importlib.import_module(module), name)


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("sft", ("text",), SFTConfig, "agents.algos.sft:SFTAgent", "demonstrations",
              "supervised fine-tuning of a language model on conversations", distributed=True),
    Algorithm("sft", ("box",), BCConfig, "agents.algos.bc:BCAgent", "demonstrations",
              "behaviour cloning (+ DAgger) of a Gaussian MLP", distributed=True),
    Algorithm("grpo", ("text",), GRPOConfig, "agents.algos.grpo:GRPOAgent", "environment",
              "group-relative policy optimisation (GRPO, Dr. GRPO, RLOO, REINFORCE++)", distributed=True),
    Algorithm("trpo", ("box",), TRPOConfig, "agents.algos.trpo:TRPOAgent", "environment",
              "trust-region policy optimisation with a GAE critic"),
    Algorithm("filtered", ("text", "box"), FilteredConfig, "agents.algos.filtered:FilteredAgent", "episode_logs",
              "reward-filtered fine-tuning of an RL checkpoint on its best logged episodes", distributed=True),
    Algorithm("dpo", ("text",), DPOConfig, "agents.algos.dpo:DPOAgent", "preferences",
              "direct preference optimisation (DPO, IPO, robust) on preference pairs or pairs mined from episode logs"),
)
NAMES: tuple[str, ...] = tuple(dict.fromkeys(a.name for a in ALGORITHMS))


def lookup(name: str, action_kind: ActionKind) -> Algorithm:
    """The algorithm ``name`` for an env with ``action_kind`` actions; a clear error otherwise."""
    if name not in NAMES:
        raise ConfigError(f"unknown agent {name!r}; available: {', '.join(NAMES)}")
    for algorithm in ALGORITHMS:
        if algorithm.name == name and action_kind in algorithm.action_kinds:
            return algorithm
    fits = [a.name for a in ALGORITHMS if action_kind in a.action_kinds]
    needs = "Box (continuous) actions, e.g. --env HumanoidMimic-v1" if action_kind == "text" else \
        "text actions, e.g. --env Wordle-v0"
    raise ConfigError(f"agent {name!r} needs {needs}; on this env use: {', '.join(dict.fromkeys(fits))}")
