"""TRPO throughput: env steps/s of our TRPO (``agents.algos.trpo``) against sb3-contrib's ``TRPO`` with
the same network, batch, env and update settings. Prints one JSON object.

    python bench/trpo_throughput.py            # 3 rounds of 1 + 5 iterations of 8 x 256 steps (~4-8 min)
    python bench/trpo_throughput.py --quick    # 1 round of 1 + 2 iterations of 4 x 256 steps (~1 min)

Both sides:
- the env (default ``HumanoidMimic-v1``, walk): ``n_envs`` copies stepped in one process
  (ours: Gymnasium's ``SyncVectorEnv``; SB3: ``DummyVecEnv`` + ``Monitor``), ``n_steps`` steps each
  per iteration;
- the policy: a [256, 256] tanh MLP for the action mean with a state-independent log-std (init
  -1.0), observations normalised by running statistics clipped to +-10 (ours: inside the policy;
  SB3: ``VecNormalize(norm_obs=True, norm_reward=False)``); the critic: a separate [256, 256] tanh MLP;
- the update: GAE(0.99, 0.95), advantages whitened, 10 conjugate-gradient iterations, damping
  0.1, target KL 0.01, 10 line-search steps shrinking by 0.8, the critic fitted with Adam (lr
  1e-3) for ``critic_epochs`` passes of ``critic_minibatch`` samples (SB3's ``n_critic_updates``
  and ``batch_size``);
- ``torch.set_num_threads(--threads)`` (default 1), the same seed, no TensorBoard or episode logs.

Timing: one warm-up iteration, then the wall time of ``--iterations`` whole iterations (collect
+ update), from the end of the warm-up iteration on (ours: ``learn``'s callback after each
iteration; SB3: rollout-start timestamps of a callback, so each timed iteration spans one
rollout and the ``train()`` after it). ``update_s`` is the time outside collection per
iteration (ours: GAE + critic + policy step + observation statistics; SB3: ``train()``, its
GAE being inside its rollout). Rounds alternate which side goes first; the reported ratio is
the median of per-round ratios ``ours / SB3`` of env steps/s. Goal: >= 1.0.
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

import numpy as np
import torch

from agents.algos.trpo import TRPOAgent, TRPOConfig
from agents.core.envs import make_env_fn
from agents.policies.mlp import GaussianMLPPolicy

HIDDEN = [256, 256]


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"n_envs": args.n_envs, "n_steps": args.n_steps, "gamma": 0.99, "gae_lambda": 0.95,
            "target_kl": 0.01, "cg_iters": 10, "cg_damping": 0.1, "line_search_steps": 10,
            "line_search_backtrack": 0.8, "critic_lr": 1e-3, "critic_epochs": args.critic_epochs,
            "critic_minibatch": args.critic_minibatch}


def run_ours(args: argparse.Namespace, seed: int) -> dict[str, float]:
    make = make_env_fn(args.env, {})
    probe = make()
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy.for_env(probe, hidden=HIDDEN, activation="tanh", init_log_std=-1.0)
    probe.close()
    config = TRPOConfig(**settings(args), critic_hidden=HIDDEN, critic_activation="tanh", log_episodes=False,
                        save_every=10**6)
    agent = TRPOAgent(policy, config, run=None, seed=seed)
    ends: list[float] = []
    updates: list[float] = []

    def on_iteration(_iteration: int, metrics: dict[str, float]) -> None:
        ends.append(time.perf_counter())
        updates.append(metrics["train/update_s"])

    batch = args.n_envs * args.n_steps
    agent.learn(make, budget=(1 + args.iterations) * batch, callback=on_iteration)
    seconds = ends[-1] - ends[0]
    return {"steps_per_s": args.iterations * batch / seconds, "seconds": seconds,
            "update_s_per_iteration": float(np.mean(updates[1:])),
            "collect_s_per_iteration": (seconds - float(np.sum(updates[1:]))) / args.iterations}


def run_sb3(args: argparse.Namespace, seed: int) -> dict[str, float]:
    from sb3_contrib import TRPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    s = settings(args)

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.starts: list[float] = []
            self.ends: list[float] = []

        def _on_rollout_start(self) -> None:
            self.starts.append(time.perf_counter())

        def _on_rollout_end(self) -> None:
            self.ends.append(time.perf_counter())

        def _on_step(self) -> bool:
            return True

    venv = make_vec_env(make_env_fn(args.env, {}), n_envs=args.n_envs, seed=seed, vec_env_cls=DummyVecEnv)
    venv = VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=10.0, gamma=s["gamma"])
    model = TRPO(
        "MlpPolicy", venv, learning_rate=s["critic_lr"], n_steps=s["n_steps"], batch_size=s["critic_minibatch"],
        gamma=s["gamma"], gae_lambda=s["gae_lambda"], cg_max_steps=s["cg_iters"], cg_damping=s["cg_damping"],
        line_search_shrinking_factor=s["line_search_backtrack"], line_search_max_iter=s["line_search_steps"],
        n_critic_updates=s["critic_epochs"], normalize_advantage=True, target_kl=s["target_kl"],
        policy_kwargs={"net_arch": {"pi": HIDDEN, "vf": HIDDEN}, "activation_fn": torch.nn.Tanh,
                       "log_std_init": -1.0},
        seed=seed, device="cpu", verbose=0)
    clock = Clock()
    batch = args.n_envs * args.n_steps
    # warm-up + timed iterations, and one more rollout start to close the last timed iteration
    model.learn(total_timesteps=(2 + args.iterations) * batch, callback=clock)
    venv.close()
    first, last = 1, 1 + args.iterations  # rollout k starts iteration k (0 = warm-up)
    seconds = clock.starts[last] - clock.starts[first]
    update = [clock.starts[k + 1] - clock.ends[k] for k in range(first, last)]
    return {"steps_per_s": args.iterations * batch / seconds, "seconds": seconds,
            "update_s_per_iteration": float(np.mean(update)),
            "collect_s_per_iteration": (seconds - float(np.sum(update))) / args.iterations}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HumanoidMimic-v1", help="Box-action env id (default: %(default)s)")
    parser.add_argument("--n-envs", type=int, default=8, help="envs per side (default: %(default)s)")
    parser.add_argument("--n-steps", type=int, default=256, help="steps per env per iteration (default: %(default)s)")
    parser.add_argument("--critic-epochs", type=int, default=10, help="critic passes per iteration (default: %(default)s)")
    parser.add_argument("--critic-minibatch", type=int, default=128, help="critic minibatch (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations after one warm-up (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median ratio counts (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="1 round, 4 envs, 2 timed iterations")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.n_envs, args.iterations = 1, 4, 2
    if min(args.n_envs, args.n_steps, args.iterations, args.rounds, args.threads) < 1:
        print("error: --n-envs, --n-steps, --iterations, --rounds and --threads must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rounds = []
    for r in range(args.rounds):
        order = ("ours", "sb3") if r % 2 == 0 else ("sb3", "ours")
        result: dict[str, Any] = {"order": list(order)}
        for side in order:
            result[side] = run_ours(args, seed=r) if side == "ours" else run_sb3(args, seed=r)
            print(f"round {r + 1} {side}: {result[side]['steps_per_s']:.1f} steps/s", file=sys.stderr)
        result["ratio"] = result["ours"]["steps_per_s"] / result["sb3"]["steps_per_s"]
        rounds.append(result)

    def median(side: str, key: str) -> float:
        return round(statistics.median(r[side][key] for r in rounds), 3)

    import sb3_contrib
    import stable_baselines3

    report = {
        "env": args.env, "network": {"policy": HIDDEN, "critic": HIDDEN, "activation": "tanh"},
        "settings": settings(args), "iterations_timed": args.iterations, "rounds": args.rounds,
        "threads": args.threads, "quick": args.quick,
        "ours": {k: median("ours", k) for k in rounds[0]["ours"]},
        "sb3_contrib": {k: median("sb3", k) for k in rounds[0]["sb3"]},
        "ratio_steps_per_s": round(statistics.median(r["ratio"] for r in rounds), 3),
        "round_ratios": [round(r["ratio"], 3) for r in rounds],
        "goal": ">= 1.0",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "stable_baselines3": stable_baselines3.__version__, "sb3_contrib": sb3_contrib.__version__},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
