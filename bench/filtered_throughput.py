"""Filtered agent: seconds per epoch at batch 32 vs batch 1 on the same kept Wordle turns.

The kept data are the expert solver's won games on ``--games`` answers, recorded as the token
ids a language-model policy would have sampled (the form GRPO logs), fine-tuned into the
built-in model (or ``--model-config`` overrides). Both batch sizes start from the same weights
and train one epoch on identical turns; prints one JSON object.

    OMP_NUM_THREADS=2 python bench/filtered_throughput.py --games 200
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

import gymnasium as gym
import torch

import envs  # noqa: F401
from agents.algos.filtered import FilteredAgent, FilteredConfig, select_episodes
from agents.core.rollout import EpisodeSpec, play_episodes
from agents.core.trajectory import Episode, TurnTokens
from agents.policies.lm.policy import LMPolicy
from envs.wordle.policies import SolverPolicy


def solver_games_with_tokens(policy: LMPolicy, games: int) -> list[Episode]:
    def make() -> gym.Env:
        return gym.make("Wordle-v0", prompt_style="compact")

    probe = make().unwrapped
    answers = probe.lexicon.answers[:games]
    specs = [EpisodeSpec(seed=i, options={"answer": a}) for i, a in enumerate(answers)]
    played = play_episodes(make, SolverPolicy(probe.lexicon, think="none"), specs, batch_size=64)
    eos = policy.tokenizer.eos_token_id
    logged = []
    for game in played:
        turns = []
        for obs, action in zip(game.observations, game.actions, strict=True):
            ids = [*policy.tokenizer(action, add_special_tokens=False)["input_ids"], eos]
            turns.append(TurnTokens(tuple(policy.encode_prompts([obs])[0]), tuple(ids), (0.0,) * len(ids)))
        logged.append(dataclasses.replace(game, tokens=tuple(turns)))
    return logged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=200, help="solver games (Wordle answers) kept")
    parser.add_argument("--model-config", default="{}", help="JSON overrides of the built-in model config")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = LMPolicy.default(0, device="cpu", **json.loads(args.model_config))
    kept = select_episodes(solver_games_with_tokens(base, args.games), min_reward=1.0).kept
    result: dict[str, float | int] = {"episodes": len(kept), "parameters": base.num_parameters(),
                                      "torch_threads": torch.get_num_threads()}
    for batch_size in (32, 1):
        policy = copy.deepcopy(base)
        config = FilteredConfig(min_reward=1.0, epochs=1, batch_size=batch_size, val_fraction=0.0)
        agent = FilteredAgent(policy, config, seed=0)
        agent.learn(demos=kept[:10])  # warm-up (allocator, kernels), untimed
        samples = agent.samples(kept)
        metrics = agent.learn(demos=kept)
        tokens = sum(samples.lengths)  # prompt + completion ids of every kept turn, no padding
        result["turns"], result["tokens"] = samples.size, tokens
        result[f"epoch_s_batch{batch_size}"] = round(metrics["train/epoch_s"], 3)
        result[f"tokens_per_s_batch{batch_size}"] = round(tokens / metrics["train/epoch_s"])
    result["speedup_batch32_vs_batch1"] = round(result["epoch_s_batch1"] / result["epoch_s_batch32"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
