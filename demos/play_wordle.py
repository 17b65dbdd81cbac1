"""Play Wordle in the terminal, or watch a policy play.

    python -m demos.play_wordle                          # you guess; type a word and Enter
    python -m demos.play_wordle --policy solver          # watch the expert solver
    python -m demos.play_wordle --policy runs/<run>/final --env-kwargs '{"prompt_style": "compact"}'

The board is the env's own ``ansi`` rendering (green = right spot, yellow = elsewhere, grey =
absent). Your words are wrapped in ``<guess>…</guess>`` and go through the same parser and
rules as a model's text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import gymnasium as gym

import envs  # noqa: F401  (registers Wordle-v0)
from agents.core.envs import parse_env_kwargs
from agents.core.loading import load_policy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demos.play_wordle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default=None, metavar="NAME_OR_DIR",
                        help="watch a policy (solver, random or a checkpoint dir) instead of playing yourself")
    parser.add_argument("--env-kwargs", default=None, metavar="JSON", help="Wordle-v0 kwargs, e.g. the official lists")
    parser.add_argument("--answer", default=None, help="pin the secret word (must be one of the answers)")
    parser.add_argument("--seed", type=int, default=None, help="seed for drawing the answer")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        env = gym.make("Wordle-v0", render_mode="ansi", **parse_env_kwargs(args.env_kwargs))
        policy = load_policy(args.policy, env, seed=args.seed) if args.policy else None
        obs, info = env.reset(seed=args.seed, options={"answer": args.answer} if args.answer else None)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("Wordle: guess the 5-letter word in 6 tries." + ("" if policy else " (Ctrl-D to give up)"))
    terminated = truncated = False
    while not (terminated or truncated):
        if policy is not None:
            (action,), _ = policy.act([obs], deterministic=True)
            print(f"policy: {action}")
        else:
            try:
                word = input("guess> ").strip()
            except EOFError:
                print(f"\nThe word was {env.unwrapped.answer.upper()}.")
                return 1
            action = f"<guess>{word}</guess>"
        obs, _, terminated, truncated, info = env.step(action)
        if "invalid_reason" in info:
            print(f"  not accepted: {info['invalid_reason']}")
        print(env.render(), "\n")
    won = info.get("won", False)
    print(f"{'Solved' if won else 'Out of guesses'}: {info['answer'].upper()} in {len(info['guesses'])} guesses.")
    return 0 if won else 1


if __name__ == "__main__":
    raise SystemExit(main())
