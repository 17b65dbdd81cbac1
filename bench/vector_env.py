"""TRPO's rollouts: env steps/s of our TRPO on HumanoidMimic with the env's own vector env
(``vector_env: auto``: one process, all copies' rewards in one call), Gymnasium's
``SyncVectorEnv`` (one process, one env at a time) and ``AsyncVectorEnv`` (one worker process per
env, each on one torch thread), at 1, 2 and 4 envs. Prints one JSON object.

    python bench/vector_env.py                 # 2 rounds x 9 arms, 1 + 3 iterations each (~6 min)
    python bench/vector_env.py --quick         # 1 round, 1 + 1 iterations

Every arm trains the same policy from the same seed on batches of ``--batch`` transitions per
iteration (``n_steps = batch / n_envs``), so only the way the env steps are spread changes.
The main process runs torch on ``--threads`` threads (default 1) in every arm. Timing: the wall
time of the iterations after a warm-up iteration (collect + update, as ``bench/trpo_throughput.py``).
Rounds reverse the order of the arms; the median over rounds counts. The fastest arm is the one
configs/mimic_walk_trpo.yaml should name.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym
import numpy as np
import torch

from agents.algos.trpo import TRPOAgent, TRPOConfig
from agents.core.envs import make_env_fn
from agents.policies.mlp import GaussianMLPPolicy

HIDDEN = [256, 256]


def run_arm(env_id: str, mode: str, n_envs: int, batch: int, iterations: int, seed: int) -> dict[str, float]:
    make = make_env_fn(env_id, {})
    probe = make()
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy.for_env(probe, hidden=HIDDEN, activation="tanh", init_log_std=-1.0)
    probe.close()
    config = TRPOConfig(n_envs=n_envs, n_steps=batch // n_envs, vector_env=mode, fisher_subsample=4,
                        critic_epochs=5, critic_minibatch=256, critic_hidden=HIDDEN, log_episodes=False,
                        save_every=10**6)
    agent = TRPOAgent(policy, config, run=None, seed=seed)
    ends: list[float] = []
    updates: list[float] = []

    def on_iteration(_iteration: int, metrics: dict[str, float]) -> None:
        ends.append(time.perf_counter())
        updates.append(metrics["train/update_s"])

    steps = n_envs * config.n_steps
    agent.learn(make, budget=(1 + iterations) * steps, callback=on_iteration)
    seconds = ends[-1] - ends[0]
    return {"steps_per_s": iterations * steps / seconds,
            "collect_s_per_iteration": (seconds - float(np.sum(updates[1:]))) / iterations,
            "update_s_per_iteration": float(np.mean(updates[1:]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HumanoidMimic-v1", help="Box-action env id (default: %(default)s)")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 2, 4], help="env counts (default: 1 2 4)")
    parser.add_argument("--batch", type=int, default=2048, help="transitions per iteration (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations after a warm-up (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, the arm order reversed each time (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process (default: %(default)s)")
    parser.add_argument("--modes", nargs="+", default=["auto", "sync", "async"], choices=["auto", "sync", "async"],
                        help="TRPO vector_env values to time (default: all three; auto = the env's own vector env)")
    parser.add_argument("--quick", action="store_true", help="1 round, 1 timed iteration")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.iterations = 1, 1
    if min(args.batch, args.iterations, args.rounds, args.threads, *args.envs) < 1 or \
            any(args.batch % n for n in args.envs):
        print("error: counts must be >= 1 and --batch a multiple of every --envs value", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    arms = [(mode, n) for n in args.envs for mode in args.modes]
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, float]]] = {f"{m}_{n}": [] for m, n in arms}
    for r in range(args.rounds):
        for mode, n in arms if r % 2 == 0 else arms[::-1]:
            result = run_arm(args.env, mode, n, args.batch, args.iterations, seed=r)
            results[f"{mode}_{n}"].append(result)
            print(f"round {r + 1} {mode} x{n}: {result['steps_per_s']:.1f} steps/s", file=sys.stderr)
    summary: dict[str, Any] = {
        arm: {key: round(statistics.median(x[key] for x in runs), 3) for key in runs[0]}
        for arm, runs in results.items()
    }
    fastest = max(summary, key=lambda arm: summary[arm]["steps_per_s"])
    baseline = summary.get("sync_1", {}).get("steps_per_s")
    report = {
        "env": args.env, "batch": args.batch, "iterations_timed": args.iterations, "rounds": args.rounds,
        "threads": args.threads, "cpus": os.cpu_count(), "arms": summary, "fastest": fastest,
        "speedup_over_sync_1": {arm: round(v["steps_per_s"] / baseline, 3) for arm, v in summary.items()}
        if baseline else None,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "gymnasium": gym.__version__},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
