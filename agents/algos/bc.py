"""Behaviour cloning of a Gaussian MLP policy (the ``sft`` agent on Box-action envs).

Reads top to bottom: demonstrations (a fixed set, or a source that can also relabel the
states a policy visits) -> observation normalisation from the demonstrations -> train / validation
split by rollout -> minibatch regression with Adam -> validation every ``eval_every`` steps,
early stopping on the validation loss with ``patience``, best weights kept -> optional DAgger
rounds (roll out the current policy, label what it visits, aggregate, train on) -> ``final/``.

The loss (``loss="mse"``, the default) is the squared error of the action mean: a plain
regression of the expert's action (the joint Gaussian NLL would re-weight every dimension's
gradient by ``1/sigma^2``, letting the most predictable dimensions dominate and speeding up or
stalling learning as sigma moves). ``log_std`` is then fitted in closed form at the end of each
round: the log of each dimension's residual RMS on the held-out states (the training states
when nothing is held out), floored at ``min_log_std``; an honest spread for sampling or RL
fine-tuning. ``loss="nll"`` trains mean and ``log_std`` jointly on the Gaussian NLL instead.

A checkpoint (``checkpoints/step_N``) holds the policy, the optimizer, the counters, the best
weights of the current round and the number of demonstrations used; the demonstrations
themselves (including DAgger's) are in ``demonstrations.npz`` of the run folder, so an
interrupted run resumes exactly where its last checkpoint left it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from agents.algos.configs import BCConfig
from agents.core import distributed
from agents.core.demonstrations import demo_arrays
from agents.core.optim import adamw, cosine_lr, set_lr
from agents.core.policy import PolicyAgent
from agents.core.run import load_trainer_state
from agents.policies.mlp import GaussianMLPPolicy

DEMOS_FILE = "demonstrations.npz"


class DemoSource(Protocol):
    """Where demonstrations come from when the agent may ask for more (``envs.mimic.demos.MimicDemoSource``).
    Both methods return an object with ``observations``, ``actions`` and ``groups`` arrays."""

    def demonstrations(self) -> Any: ...

    def dagger(self, policy: Any, episodes: int, seed: int, group_offset: int | None = None) -> tuple[Any, dict[str, float]]: ...


def validation_mask(groups: np.ndarray, val_ratio: float, seed: int) -> np.ndarray:
    """Held-out samples: whole groups, chosen by a hash of (group, seed), so the split of existing
    groups never changes when DAgger adds new ones."""
    if val_ratio <= 0:
        return np.zeros(len(groups), dtype=bool)
    unique = np.unique(groups)
    # splitmix64 of (group, seed): a uniform draw per group, independent of which other groups exist
    x = unique.astype(np.uint64) + np.uint64(seed % 2**32) * np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    draws = (x ^ (x >> np.uint64(31))).astype(np.float64) / 2.0**64
    held = unique[draws < val_ratio]
    if len(held) == 0 and len(unique) > 1:  # tiny sets: hold out one group rather than none
        held = unique[[int(np.argmin(draws))]]
    if len(held) == len(unique):
        held = held[:-1]
    return np.isin(groups, held)


def _save_demos(run_dir: Path, obs: np.ndarray, act: np.ndarray, groups: np.ndarray) -> None:
    tmp = run_dir / f".{DEMOS_FILE}.tmp.npz"
    np.savez(tmp, observations=obs, actions=act, groups=groups)
    os.replace(tmp, run_dir / DEMOS_FILE)


class BCAgent(PolicyAgent):
    """Behaviour cloning (with optional DAgger) for :class:`GaussianMLPPolicy`."""

    policy: GaussianMLPPolicy
    config: BCConfig

    # -- public interface -----------------------------------------------------------------
    def learn(self, env_or_factory: Any = None, budget: int | None = None, demos: Any = None,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              resume_from: str | Path | None = None) -> dict[str, float]:
        """Fit the policy to ``demos`` (a :class:`DemoSource`, a record with observations / actions
        [/ groups], or an .npz path) for ``budget`` optimizer steps (default ``config.max_steps``).
        The env is not needed: a source brings its own for DAgger."""
        cfg, policy = self.config, self.policy
        if demos is None:
            raise ValueError("behaviour cloning needs demonstrations: pass demos= (a source, arrays or an .npz path)")
        budget = budget or cfg.max_steps
        source: DemoSource | None = demos if hasattr(demos, "dagger") else None
        rounds = 1 + (cfg.dagger_rounds if source is not None else 0)
        round_budget = [budget // rounds + (1 if r < budget % rounds else 0) for r in range(rounds)]

        params = [p for p in policy.parameters() if p.requires_grad]
        optimizer = adamw(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        counters = {"step": 0, "round": 0, "round_step": 0, "epoch": 0, "cursor": 0, "bad_evals": 0,
                    "best_val": math.inf, "num_demos": 0}
        best_state: dict[str, torch.Tensor] | None = None
        if resume_from is not None:
            if self.run is None or not (self.run.dir / DEMOS_FILE).is_file():
                raise ValueError(f"cannot resume from {resume_from}: the run's {DEMOS_FILE} is missing")
            state = load_trainer_state(resume_from, optimizer, self.run)
            best_state = state.pop("best_state", None)
            counters.update({k: state[k] for k in counters})
            obs, act, groups = (a[: int(counters["num_demos"])] for a in demo_arrays(self.run.dir / DEMOS_FILE))
        else:
            obs, act, groups = demo_arrays(source.demonstrations() if source is not None else demos)
            self._check_sizes(obs, act)
            if float(policy.obs_count) == 0:  # a policy from --init keeps the statistics it was trained with
                policy.update_obs_stats(obs)
            counters["num_demos"] = len(obs)
            if self.run is not None:
                _save_demos(self.run.dir, obs, act, groups)
        print(f"behaviour cloning on {len(obs):,} state-action pairs ({len(np.unique(groups)):,} groups), "
              f"{rounds} round(s)", file=sys.stderr)

        done = sum(round_budget[: int(counters["round"])]) + int(counters["round_step"])  # early stops skip ahead
        bar = tqdm(total=budget, initial=done, desc="bc", unit="step", file=sys.stderr, disable=None)
        metrics: dict[str, float] = {}
        while counters["round"] < rounds:
            rnd = int(counters["round"])
            if rnd > 0 and counters["round_step"] == 0:  # (a resumed round has its DAgger data already)
                assert source is not None
                new, stats = source.dagger(policy, cfg.dagger_episodes, seed=self.seed + 1000 * rnd,
                                           group_offset=int(groups.max()) + 1)
                new_obs, new_act, new_groups = demo_arrays(new)
                obs, act, groups = (np.concatenate(p) for p in ((obs, new_obs), (act, new_act), (groups, new_groups)))
                counters["num_demos"] = len(obs)
                if self.run is not None:
                    _save_demos(self.run.dir, obs, act, groups)
                self._log({f"rollout/{k}": v for k, v in stats.items()} | {"train/demonstrations": len(obs)},
                          int(counters["step"]))
                tqdm.write(f"DAgger round {rnd}: +{len(new_obs):,} labelled states ({len(obs):,} in all); "
                           + ", ".join(f"{k} {v:.3g}" for k, v in stats.items()), file=sys.stderr)
            metrics = self._train_round(obs, act, groups, optimizer, counters, best_state, round_budget[rnd],
                                        bar, callback)
            best_state = None
            counters.update(round=rnd + 1, round_step=0, epoch=0, cursor=0, bad_evals=0, best_val=math.inf)
        bar.close()
        if self.run is not None:
            policy.save(self.run.final_dir)
        return metrics

    def _train_round(self, obs: np.ndarray, act: np.ndarray, groups: np.ndarray, optimizer: torch.optim.Optimizer,
                     counters: dict[str, Any], best_state: dict[str, torch.Tensor] | None, steps: int, bar: tqdm,
                     callback: Callable[[int, dict[str, float]], None] | None) -> dict[str, float]:
        """One round: minibatches until ``steps`` or early stopping; ends on the best weights."""
        cfg, policy, rnd = self.config, self.policy, int(counters["round"])
        held = validation_mask(groups, cfg.val_ratio, self.seed)
        device = policy.device
        train_obs = torch.as_tensor(obs[~held], device=device)
        train_act = torch.as_tensor(act[~held], device=device)
        val_obs, val_act = torch.as_tensor(obs[held], device=device), torch.as_tensor(act[held], device=device)
        n_train = len(train_obs)
        per_epoch = max(1, math.ceil(n_train / cfg.batch_size))

        def lr_at(k: int) -> float:
            return cosine_lr(k, steps, cfg.learning_rate, warmup=0, min_ratio=0.1)

        def order(epoch: int) -> np.ndarray:
            return np.random.default_rng([self.seed, rnd, epoch]).permutation(n_train)

        perm = order(int(counters["epoch"]))
        metrics: dict[str, float] = {}
        window: list[tuple[float, float, int]] = []
        window_start = time.perf_counter()
        policy.train()
        # Several processes: gradients averaged over ranks (the squared error leaves log_std untouched).
        module = distributed.wrap(policy, unused_parameters=cfg.loss == "mse")
        while counters["round_step"] < steps:
            if counters["cursor"] >= per_epoch:
                counters["epoch"], counters["cursor"] = counters["epoch"] + 1, 0
                perm = order(int(counters["epoch"]))
            start = int(counters["cursor"]) * cfg.batch_size
            batch: list[int] = perm[start : start + cfg.batch_size].tolist()
            counters["cursor"] += 1
            set_lr(optimizer, lr_at(int(counters["round_step"])))
            # As in sft: every rank holds the batch and trains on its share, normalised by the
            # whole batch (DDP averages the ranks' gradients, hence the factor size()).
            mine = distributed.shard(batch)
            idx = torch.as_tensor(mine or batch[:1], device=device)
            loss_sum, mse, nll = self._loss(train_obs[idx], train_act[idx], module)
            optimizer.zero_grad(set_to_none=True)
            (loss_sum * (distributed.size() / len(batch) if mine else 0.0)).backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm))
            optimizer.step()
            with torch.no_grad():
                policy.log_std.clamp_(min=cfg.min_log_std)
            window.append((mse, nll, len(mine)) if mine else (0.0, 0.0, 0))
            counters["step"] += 1
            counters["round_step"] += 1
            step = int(counters["step"])
            bar.update(1)
            last = counters["round_step"] >= steps
            if step % cfg.log_every == 0 or last:
                elapsed = time.perf_counter() - window_start
                mse_all, nll_all, seen = distributed.total([sum(w[0] for w in window), sum(w[1] for w in window),
                                                            sum(w[2] for w in window)])
                metrics = {"train/loss": (nll_all if cfg.loss == "nll" else mse_all) / max(seen, 1),
                           "train/nll": nll_all / max(seen, 1),
                           "train/log_std": float(policy.log_std.detach().mean()), "train/grad_norm": grad_norm,
                           "train/lr": lr_at(int(counters["round_step"]) - 1), "train/round": rnd,
                           "train/epoch": counters["epoch"] + counters["cursor"] / per_epoch,
                           "train/steps_per_s": len(window) / max(elapsed, 1e-9)}
                self._log(metrics, step)
                bar.set_postfix(round=rnd, loss=f"{metrics['train/loss']:.4g}", refresh=False)
                window, window_start = [], time.perf_counter()
            stop = False
            if len(val_obs) and (counters["round_step"] % cfg.eval_every == 0 or last):
                val = self.validate(val_obs, val_act)
                self._log(val, step)
                metrics.update(val)
                if val["eval/loss"] < counters["best_val"]:
                    counters["best_val"], counters["bad_evals"] = val["eval/loss"], 0
                    best_state = {k: v.detach().clone() for k, v in policy.state_dict().items()}
                    if self.run is not None:
                        policy.save(self.run.dir / "best")
                else:
                    counters["bad_evals"] += 1
                    stop = cfg.patience > 0 and counters["bad_evals"] >= cfg.patience
                policy.train()
            if callback is not None:
                callback(step, metrics)
            if stop:
                tqdm.write(f"round {rnd}: early stop at step {step} (no better eval/loss in {cfg.patience} "
                           f"validations; best {counters['best_val']:.4g})", file=sys.stderr)
                bar.update(steps - int(counters["round_step"]))
                break
            if self.run is not None and step % cfg.save_every == 0:
                state = {**counters, "best_state": best_state or {}}
                self.run.save_training_checkpoint(step, policy, optimizer, state, keep=cfg.keep_checkpoints)
        if best_state:
            policy.load_state_dict(best_state)
        policy.eval()
        if cfg.loss == "mse":
            fit_obs, fit_act = (val_obs, val_act) if len(val_obs) else (train_obs, train_act)
            with torch.no_grad():
                residual_rms = (policy(fit_obs) - fit_act).pow(2).mean(0).sqrt()
                policy.log_std.copy_(residual_rms.clamp_min(1e-12).log().clamp_min(cfg.min_log_std))
            metrics["train/log_std"] = float(policy.log_std.detach().mean())
        return metrics

    def _loss(self, obs: torch.Tensor, act: torch.Tensor, module: Any = None) -> tuple[torch.Tensor, float, float]:
        """(loss to minimise, squared error of the mean per action dimension, Gaussian NLL), each
        summed over the samples. ``module``: the DDP wrapper of several processes."""
        policy = self.policy
        mean = (module or policy)(obs)
        log_std = policy.log_std
        mse = (mean - act).pow(2).sum() / policy.act_dim
        if self.config.loss == "nll":
            nll = -torch.distributions.Normal(mean, log_std.exp()).log_prob(act).sum()
            return nll, float(mse.detach()), float(nll.detach())
        with torch.no_grad():  # log_std is fitted in closed form after the round; reported only
            nll = -torch.distributions.Normal(mean, log_std.exp()).log_prob(act).sum()
        return mse, float(mse.detach()), float(nll)

    @torch.no_grad()
    def validate(self, obs: torch.Tensor, act: torch.Tensor) -> dict[str, float]:
        """``eval/mse`` (squared error of the mean per action dim), ``eval/nll`` (per sample) and
        ``eval/loss``, the one of the two that is trained (early stopping watches it)."""
        self.policy.eval()
        mse, nll = 0.0, 0.0
        for start in range(0, len(obs), 4096):
            o, a = obs[start : start + 4096], act[start : start + 4096]
            dist = self.policy.distribution(o)
            mse += float((dist.mean - a).pow(2).sum())
            nll += float(-dist.log_prob(a).sum())
        metrics = {"eval/mse": mse / (len(obs) * self.policy.act_dim), "eval/nll": nll / len(obs)}
        return {"eval/loss": metrics["eval/nll" if self.config.loss == "nll" else "eval/mse"], **metrics}

    # -- internals --------------------------------------------------------------------------
    def _check_sizes(self, obs: np.ndarray, act: np.ndarray) -> None:
        if obs.shape[1] != self.policy.obs_dim or act.shape[1] != self.policy.act_dim:
            raise ValueError(f"demonstrations have observations of size {obs.shape[1]} and actions of size "
                             f"{act.shape[1]}; the policy takes {self.policy.obs_dim} and gives {self.policy.act_dim}")

