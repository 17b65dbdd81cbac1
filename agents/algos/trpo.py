"""Trust-region policy optimisation (TRPO) of a Gaussian MLP policy on any Box-action env.

Reads top to bottom, one iteration at a time (Schulman et al. 2015, with a GAE critic):

1. collect    ``n_envs`` copies of the env in a Gymnasium vector env (``SyncVectorEnv``, or
              ``AsyncVectorEnv`` with ``vector_env: async``; autoreset in the same step) play
              ``n_steps`` steps each with actions sampled from the policy. The policy's
              observation-normalisation statistics (its own buffers, as BC left them) stay fixed
              while collecting and are updated from the batch at the end of the iteration.
2. advantages the critic values every observation and every *next* observation (the real final
              observation where an episode ended) in two batched passes; GAE(gamma, lambda) then
              bootstraps through truncations (time limit, end of the rollout) and stops at
              terminations: ``delta_t = r_t + gamma V(s'_t) (1 - terminated_t) - V(s_t)`` and the
              recursion is cut wherever an episode ended.
3. critic     ``critic_epochs`` passes of minibatch Adam on the squared error to the
              lambda-returns (standardised by running return statistics with
              ``normalize_returns``). Starting from a checkpoint (BC), the first
              ``critic_warmup_iterations`` iterations stop here: the first policy step then uses a
              critic that has seen the policy.
4. policy     one natural-gradient step: the surrogate ``mean(ratio * A)`` gradient ``g``, the
              Fisher-vector product as the Hessian-vector product of the mean KL (double
              backprop, ``cg_damping`` added; on every ``fisher_subsample``-th transition),
              ``cg_iters`` conjugate-gradient iterations for ``s = F^-1 g``, the largest step
              ``sqrt(2 target_kl / s^T F s)``, and a backtracking line search
              (``line_search_backtrack ** k``) that accepts the first step with
              ``KL <= target_kl`` and a better surrogate, else keeps the old weights.
5. log        ``rollout/*`` and ``train/*`` on TensorBoard (x-axis = env steps), finished
              episodes to ``episodes.jsonl`` (observations and executed, i.e. clipped, actions as
              packed float32 arrays, rewards, reward-term sums, the final
              ``info`` with the iteration: the ``filtered`` agent later fine-tunes on the
              (observation, action) pairs of high-return episodes), checkpoints.

Exact resume: a checkpoint holds the policy (its own format, loadable by evaluate / render),
the critic and its optimizer, the torch RNG and the counters. The vector env is reset with
seeds drawn from ``(seed, iteration)`` at the start of every ``save_every``-iteration segment
(an episode still running there is cut and bootstrapped like a time limit), so a run resumed
from a checkpoint sees the same episodes as one that never stopped; episodes logged after the
checkpoint are cut from ``episodes.jsonl`` (``Run.rollback``), not logged twice.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec
from torch import nn
from tqdm import tqdm

from agents.algos.configs import TRPOConfig
from agents.core.envs import EnvFactory, as_make_env
from agents.core.policy import PolicyAgent
from agents.core.run import Run, load_trainer_state
from agents.core.trajectory import Episode
from agents.policies.mlp import GaussianMLPPolicy, build_mlp, merge_moments


# ------------------------------------------------------------------------------ the maths
def gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
        truncated: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates and lambda-returns, time on axis 0 (``[T]`` or ``[T, n_envs]``).

    ``next_values[t]`` is V of the observation after step t: the real final observation where the
    episode ended there. A terminated step has no future (no bootstrap); a truncated one (time
    limit) bootstraps from V(final observation) like any other step. Either way the recursion
    stops at the episode boundary; the last step of the rollout bootstraps from V(next obs).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    alive = 1.0 - np.asarray(terminated, dtype=np.float64)
    continues = 1.0 - np.logical_or(terminated, truncated).astype(np.float64)
    deltas = rewards + gamma * np.asarray(next_values, dtype=np.float64) * alive - values
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        running = deltas[t] + gamma * lam * continues[t] * running
        advantages[t] = running
    return advantages, advantages + values


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int,
                       tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given only ``x -> A x``."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    r_dot = r @ r
    for _ in range(iters):
        if r_dot <= tol:
            break
        ap = matvec(p)
        alpha = r_dot / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        new_r_dot = r @ r
        p = r + (new_r_dot / r_dot) * p
        r_dot = new_r_dot
    return x


def flat_grad(output: torch.Tensor, params: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    grads = torch.autograd.grad(output, params, **kwargs)
    return torch.cat([g.reshape(-1) for g in grads])


def set_flat_(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy a flat vector into the parameters in place (their own storage: a parameter that became
    a view into one shared vector would change BLAS alignment, and results in the last bit)."""
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def _single_threaded(make_env: EnvFactory) -> gym.Env:
    """An async vector env's worker: its env on one torch (and torch BLAS) thread."""
    torch.set_num_threads(1)
    return make_env()


def fisher_vector_product(kl: torch.Tensor, params: Sequence[torch.Tensor],
                          damping: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (F + damping I) v`` with F the Hessian of ``kl`` (the mean KL from the detached old
    policy, zero with zero gradient at the current weights: its Hessian there is the Fisher)."""
    grad_kl = flat_grad(kl, params, create_graph=True)

    def product(v: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_kl @ v, params, retain_graph=True) + damping * v

    return product


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 - Var(target - predicted) / Var(target): 1 is a perfect critic, 0 no better than a constant."""
    var = float(np.var(target))
    return math.nan if var == 0 else 1.0 - float(np.var(target - predicted)) / var


class Critic(nn.Module):
    """State-value MLP on the policy's normalised observations (a separate network from the policy).

    With ``normalize_returns`` the network predicts standardised returns: ``forward`` maps them
    back with running return statistics (buffers, so they travel with the critic's state dict).
    Adam moves a network's output by about ``lr`` per weight per step, so raw returns in the
    hundreds (Pendulum) would take thousands of steps just to reach the right scale.
    """

    return_mean: torch.Tensor  # buffers (saved with the critic's state dict)
    return_var: torch.Tensor
    return_count: torch.Tensor

    def __init__(self, obs_dim: int, hidden: Sequence[int], activation: str = "tanh",
                 normalize_returns: bool = True):
        super().__init__()
        self.net = build_mlp(obs_dim, hidden, 1, activation)
        self.normalize_returns = normalize_returns
        self.register_buffer("return_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("return_var", torch.ones((), dtype=torch.float64))
        self.register_buffer("return_count", torch.zeros((), dtype=torch.float64))

    def forward(self, normalized_obs: torch.Tensor) -> torch.Tensor:
        """V(s) in the env's reward units."""
        out = self.net(normalized_obs).squeeze(-1)
        if not self.normalize_returns:
            return out
        return out * self.return_var.sqrt().float() + self.return_mean.float()

    def standardized(self, normalized_obs: torch.Tensor) -> torch.Tensor:
        """The raw network output, the quantity fitted to :meth:`standardize` (returns)."""
        return self.net(normalized_obs).squeeze(-1)

    def standardize(self, returns: torch.Tensor) -> torch.Tensor:
        if not self.normalize_returns:
            return returns
        return (returns - self.return_mean.float()) / self.return_var.sqrt().float()

    @torch.no_grad()
    def update_return_stats(self, returns: np.ndarray) -> None:
        """Merge a batch of returns into the running mean / variance (parallel Welford)."""
        if not self.normalize_returns or len(returns) == 0:
            return
        count, mean, var = merge_moments(float(self.return_count), float(self.return_mean),
                                         float(self.return_var), np.asarray(returns, dtype=np.float64))
        self.return_mean.fill_(float(mean))
        self.return_var.fill_(max(float(var), 1e-8))
        self.return_count.fill_(count)


@dataclasses.dataclass
class Batch:
    """One iteration's transitions, time on axis 0 and env on axis 1."""

    obs: np.ndarray  # [T, E, obs_dim] float32, what each action answered
    actions: np.ndarray  # [T, E, act_dim] float32, as sampled (unclipped): what the log-probs are of
    rewards: np.ndarray  # [T, E] float64
    terminated: np.ndarray  # [T, E] bool
    truncated: np.ndarray  # [T, E] bool
    next_obs: np.ndarray  # [T, E, obs_dim] float32, the real final observation where an episode ended
    term_sums: dict[str, float]  # reward terms summed over all T * E steps


# ------------------------------------------------------------------------------ the agent
class TRPOAgent(PolicyAgent):
    """TRPO with a GAE critic for a ``GaussianMLPPolicy`` (``agents.policies.mlp``)."""

    policy: GaussianMLPPolicy
    config: TRPOConfig

    def __init__(self, policy: GaussianMLPPolicy, config: TRPOConfig, run: Run | None = None, seed: int = 0,
                 warm_up_critic: bool | None = None):
        """``warm_up_critic``: the first ``config.critic_warmup_iterations`` iterations fit only the
        critic. By default when the policy was trained before (it has observation statistics,
        e.g. behaviour cloning from ``--init``): a fresh critic would spoil its first steps."""
        super().__init__(policy, config, run, seed)
        if warm_up_critic is None:
            warm_up_critic = float(policy.obs_count) > 0
        self.warmup_iterations = config.critic_warmup_iterations if warm_up_critic else 0
        obs_dim = int(policy.obs_dim)
        self.critic = Critic(obs_dim, config.critic_hidden, config.critic_activation,
                             config.normalize_returns).to(policy.device)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self._open: list[dict[str, Any]] = []  # per env: the episode being played

    # -- public interface -----------------------------------------------------------------
    def learn(self, env: str | EnvFactory, budget: int | None = None, demos: Any = None,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              resume_from: str | Path | None = None) -> dict[str, float]:
        """Train for ``budget`` env steps (default ``config.total_steps``) or until ``config.max_minutes``.

        ``env`` is an env id or a zero-argument function building one env (e.g.
        ``agents.core.envs.make_env_fn(env_id, env_kwargs)``); ``n_envs`` copies are vectorised.
        ``demos`` is not used. ``callback(iteration, metrics)`` runs after every iteration.
        """
        cfg = self.config
        started = time.perf_counter()
        make_env = as_make_env(env)
        budget = budget or cfg.total_steps
        policy = self.policy
        iteration, env_steps, elapsed_before, episodes_done = 0, 0, 0.0, 0
        if resume_from is not None:
            state = load_trainer_state(resume_from, self.critic_optimizer, self.run)
            self.critic.load_state_dict(state["critic"])
            iteration, env_steps = int(state["iteration"]), int(state["env_steps"])
            elapsed_before, episodes_done = float(state["elapsed_s"]), int(state["episodes"])
            # as the run began: the resumed policy has statistics either way
            self.warmup_iterations = int(state.get("warmup_iterations", self.warmup_iterations))

        probe = make_env()
        try:
            policy.check_compatible(probe)  # wrong sizes or another clip: fail before any work
            spec = probe.spec
            env_id = spec.id if spec is not None else type(probe.unwrapped).__name__
            limit = spec.max_episode_steps if spec is not None else None
        finally:
            probe.close()
        if limit and cfg.save_every * cfg.n_steps < limit:
            print(f"warning: save_every * n_steps = {cfg.save_every * cfg.n_steps} steps per env between "
                  f"re-seeded resets is shorter than an episode ({limit}): no episode can run to its time "
                  "limit; raise save_every or n_steps", file=sys.stderr)
        envs = self.make_vector_env(make_env, spec)
        action_space = envs.single_action_space
        assert isinstance(action_space, gym.spaces.Box)  # check_compatible: a Gaussian MLP acts on Box envs
        low, high = action_space.low, action_space.high
        bounded = bool(np.all(np.isfinite(low)) and np.all(np.isfinite(high)))
        batch_steps = cfg.n_envs * cfg.n_steps
        bar = tqdm(total=budget, initial=min(env_steps, budget), desc="trpo", unit="step", unit_scale=True,
                   file=sys.stderr, disable=None)
        metrics: dict[str, float] = {}
        obs: np.ndarray | None = None
        last_iteration_s = 0.0
        try:
            while env_steps < budget:
                elapsed = elapsed_before + time.perf_counter() - started
                if cfg.max_minutes is not None and elapsed + last_iteration_s > cfg.max_minutes * 60:
                    break
                iteration_start = time.perf_counter()
                if obs is None or iteration % cfg.save_every == 0:
                    obs = self.reset_envs(envs, iteration)

                # 1. collect -------------------------------------------------------------
                batch, obs, finished = self.collect(envs, obs, env_id, iteration, (low, high) if bounded else None)
                collect_s = time.perf_counter() - iteration_start
                env_steps += batch_steps
                episodes_done += len(finished)

                # 2. advantages ----------------------------------------------------------
                update_start = time.perf_counter()
                flat_obs = torch.as_tensor(batch.obs.reshape(batch_steps, -1), device=policy.device)
                flat_actions = torch.as_tensor(batch.actions.reshape(batch_steps, -1), device=policy.device)
                values = self.values(batch.obs).reshape(cfg.n_steps, cfg.n_envs)
                next_values = self.values(batch.next_obs).reshape(cfg.n_steps, cfg.n_envs)
                advantages, returns = gae(batch.rewards, values, next_values, batch.terminated,
                                          batch.truncated, cfg.gamma, cfg.gae_lambda)

                # 3. critic (the advantages above used it as it was) --------------------------
                update = self.fit_critic(flat_obs, returns.reshape(-1), iteration)
                update["train/explained_variance"] = explained_variance(values.reshape(-1), returns.reshape(-1))

                # 4. policy ------------------------------------------------------------------
                critic_only = iteration < self.warmup_iterations
                update["train/critic_only"] = float(critic_only)
                if not critic_only:
                    adv = torch.as_tensor(advantages.reshape(-1), dtype=torch.float32, device=policy.device)
                    if cfg.normalize_advantage:
                        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    update |= self.policy_step(flat_obs, flat_actions, adv)
                if cfg.update_obs_stats:
                    policy.update_obs_stats(batch.obs.reshape(batch_steps, -1))
                iteration += 1
                update_s = time.perf_counter() - update_start
                last_iteration_s = time.perf_counter() - iteration_start
                bar.update(min(batch_steps, budget - bar.n))

                # 5. log -----------------------------------------------------------------
                metrics = {**self.rollout_metrics(batch, finished), **update,
                           "rollout/collect_steps_per_s": batch_steps / max(collect_s, 1e-9),
                           "train/steps_per_s": batch_steps / max(last_iteration_s, 1e-9),
                           "train/update_s": update_s, "train/iteration": float(iteration),
                           "train/episodes": float(episodes_done),
                           "train/elapsed_s": elapsed_before + time.perf_counter() - started}
                self._log(metrics, env_steps)
                if "rollout/ep_len_mean" in metrics:
                    postfix = {"len": f"{metrics['rollout/ep_len_mean']:.0f}"}
                    if "rollout/time_alive" in metrics:
                        postfix["alive"] = f"{metrics['rollout/time_alive']:.2f}s"
                    bar.set_postfix(postfix, refresh=False)
                if self.run is not None and cfg.log_episodes and finished:
                    self.run.log_episodes(finished)
                if callback is not None:
                    callback(iteration, metrics)
                if self.run is not None and iteration % cfg.save_every == 0 and env_steps < budget:
                    self.run.save_training_checkpoint(
                        iteration, policy, self.critic_optimizer,
                        {"iteration": iteration, "env_steps": env_steps, "episodes": episodes_done,
                         "elapsed_s": elapsed_before + time.perf_counter() - started,
                         "warmup_iterations": self.warmup_iterations, "critic": self.critic.state_dict()},
                        keep=cfg.keep_checkpoints)
        finally:
            bar.close()
            envs.close()
        if self.run is not None:
            policy.save(self.run.final_dir)
        return metrics

    # -- 1. collect ---------------------------------------------------------------------------
    def make_vector_env(self, make_env: EnvFactory, spec: EnvSpec | None = None) -> gym.vector.VectorEnv:
        """``n_envs`` copies of ``make_env``'s env (``spec``: its spec, for ``vector_env: auto``)."""
        mode = gym.vector.AutoresetMode.SAME_STEP  # final obs in info, next episode's obs returned
        if self.config.vector_env == "auto" and spec is not None and spec.vector_entry_point is not None \
                and not spec.additional_wrappers:  # (a factory that wraps the env gets SyncVectorEnv over it)
            try:
                own = gym.make_vec(spec, num_envs=self.config.n_envs, autoreset_mode=mode)
            except TypeError:  # a vector env without autoreset modes
                own = None
            if own is not None and own.metadata.get("autoreset_mode") == mode:
                return own
            if own is not None:
                own.close()
        if self.config.vector_env == "async":
            # one process per env, each on one torch thread: the cores go to the envs, not to pools
            fns = [functools.partial(_single_threaded, make_env)] * self.config.n_envs
            return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
        return gym.vector.SyncVectorEnv([make_env] * self.config.n_envs, autoreset_mode=mode)

    def reset_envs(self, envs: gym.vector.VectorEnv, iteration: int) -> np.ndarray:
        """Seeded from (seed, iteration): a resumed run starts its segment exactly as the original did.
        Episodes still running are dropped (their transitions were trained on, bootstrapped)."""
        base = int(np.random.default_rng([self.seed, iteration]).integers(2**31 - self.config.n_envs))
        obs, _ = envs.reset(seed=base)
        self._open = [self._new_episode(base + i) for i in range(self.config.n_envs)]
        return obs

    def _new_episode(self, seed: int | None) -> dict[str, Any]:
        return {"seed": seed, "obs": [], "actions": [], "rewards": [], "terms": {}}

    @torch.no_grad()
    def collect(self, envs: gym.vector.VectorEnv, obs: np.ndarray, env_id: str, iteration: int,
                bounds: tuple[np.ndarray, np.ndarray] | None) -> tuple[Batch, np.ndarray, list[Episode]]:
        """``n_steps`` vector steps from ``obs``; returns the batch, the next observations and the
        episodes that finished (cut by the time limit or terminated) during it."""
        cfg = self.config
        T, E = cfg.n_steps, cfg.n_envs
        buf_obs = np.empty((T, E, *obs.shape[1:]), dtype=np.float32)
        buf_next = np.empty_like(buf_obs)
        buf_act = np.empty((T, E, int(self.policy.act_dim)), dtype=np.float32)
        rewards = np.empty((T, E), dtype=np.float64)
        terminated = np.empty((T, E), dtype=bool)
        truncated = np.empty((T, E), dtype=bool)
        term_sums: dict[str, float] = {}
        finished: list[Episode] = []
        keep = cfg.log_episodes and self.run is not None
        for t in range(T):
            actions, _ = self.policy.act(obs, deterministic=False)
            executed = np.clip(actions, *bounds) if bounds is not None else actions
            next_obs, reward, term, trunc, infos = envs.step(executed)
            buf_obs[t], buf_act[t], rewards[t], terminated[t], truncated[t] = obs, actions, reward, term, trunc
            buf_next[t] = next_obs
            done = np.logical_or(term, trunc)
            if done.any():
                final_obs = infos["final_obs"]
                for j in np.flatnonzero(done):
                    buf_next[t, j] = final_obs[j]
            step_terms = _step_reward_terms(infos, done)
            for name, values in step_terms.items():
                term_sums[name] = term_sums.get(name, 0.0) + float(values.sum())
            for i in range(E):
                ep = self._open[i]
                if keep:
                    ep["obs"].append(obs[i])
                    ep["actions"].append(executed[i])
                ep["rewards"].append(float(reward[i]))
                for name, values in step_terms.items():
                    ep["terms"][name] = ep["terms"].get(name, 0.0) + float(values[i])
                if done[i]:
                    info = _env_info(infos["final_info"], i)
                    info.pop("reward_terms", None)
                    info["iteration"] = iteration
                    finished.append(self._episode(env_id, ep, bool(term[i]), bool(trunc[i]), info, keep))
                    self._open[i] = self._new_episode(None)
            obs = next_obs
        batch = Batch(buf_obs, buf_act, rewards, terminated, truncated, buf_next, term_sums)
        return batch, obs, finished

    def _episode(self, env_id: str, ep: dict[str, Any], terminated: bool, truncated: bool,
                 info: dict[str, Any], keep: bool) -> Episode:
        n = len(ep["rewards"])
        observations: np.ndarray | tuple[None, ...]
        actions: np.ndarray | tuple[None, ...]
        if keep:  # float32 arrays, stored packed: episodes.jsonl holds every step of every episode
            observations = np.asarray(ep["obs"], dtype=np.float32)
            actions = np.asarray(ep["actions"], dtype=np.float32)
        else:  # only the statistics are needed
            observations = actions = (None,) * n
        return Episode(env_id=env_id, seed=ep["seed"], observations=observations, actions=actions,
                       rewards=tuple(ep["rewards"]), terminated=terminated, truncated=truncated,
                       reward_terms=ep["terms"], info=info)

    # -- 2. advantages ------------------------------------------------------------------------
    @torch.no_grad()
    def values(self, obs: np.ndarray) -> np.ndarray:
        flat = torch.as_tensor(obs.reshape(-1, obs.shape[-1]), device=self.policy.device)
        return self.critic(self.policy.normalize(flat)).double().cpu().numpy()

    # -- 3. critic ------------------------------------------------------------------------------
    def fit_critic(self, obs: torch.Tensor, returns: np.ndarray, iteration: int) -> dict[str, float]:
        """Minibatch Adam on the MSE to the lambda-returns; shuffles drawn from (seed, iteration)."""
        cfg = self.config
        with torch.no_grad():
            inputs = self.policy.normalize(obs)
        self.critic.update_return_stats(returns)
        targets = self.critic.standardize(torch.as_tensor(returns, dtype=torch.float32, device=inputs.device))
        rng = np.random.default_rng([self.seed, iteration, 1])
        losses = []
        for _ in range(cfg.critic_epochs):
            order = torch.as_tensor(rng.permutation(len(targets)), device=inputs.device)
            for start in range(0, len(order), cfg.critic_minibatch):
                idx = order[start:start + cfg.critic_minibatch]
                loss = torch.nn.functional.mse_loss(self.critic.standardized(inputs[idx]), targets[idx])
                self.critic_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.critic_optimizer.step()
                losses.append(loss.item())
        # in standardised units when normalize_returns (1.0 = no better than the mean)
        return {"train/value_loss": float(np.mean(losses))}

    # -- 4. policy ------------------------------------------------------------------------------
    def policy_step(self, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor) -> dict[str, float]:
        """One natural-gradient step inside the KL trust region (conjugate gradient + line search)."""
        cfg = self.config
        policy = self.policy
        params = [p for p in policy.parameters() if p.requires_grad]
        dist = policy.distribution(obs)
        old = torch.distributions.Normal(dist.loc.detach(), dist.scale.detach())
        old_logp = old.log_prob(actions).sum(-1)

        def surrogate_and_kl(dist: torch.distributions.Normal) -> tuple[torch.Tensor, torch.Tensor]:
            ratio = torch.exp(dist.log_prob(actions).sum(-1) - old_logp)
            kl = torch.distributions.kl_divergence(old, dist).sum(-1).mean()
            return (ratio * advantages).mean(), kl

        surrogate, kl = surrogate_and_kl(dist)
        grad = flat_grad(surrogate, params, retain_graph=True)
        if cfg.fisher_subsample > 1:  # the Fisher from every k-th transition: k times cheaper products
            sub = slice(None, None, cfg.fisher_subsample)
            old_sub = torch.distributions.Normal(old.loc[sub], old.scale[sub])
            kl = torch.distributions.kl_divergence(old_sub, policy.distribution(obs[sub])).sum(-1).mean()
        fisher_vector = fisher_vector_product(kl, params, cfg.cg_damping)
        direction = conjugate_gradient(fisher_vector, grad, cfg.cg_iters)
        curvature = float(direction @ fisher_vector(direction))
        metrics = {"train/grad_norm": float(grad.norm()), "train/entropy": float(dist.entropy().sum(-1).mean().detach()),
                   "train/surrogate_gain": 0.0, "train/kl": 0.0, "train/line_search_success": 0.0,
                   "train/step_fraction": 0.0}
        metrics["train/policy_std"] = float(policy.log_std.detach().exp().mean())
        if not (math.isfinite(curvature) and curvature > 0):
            return metrics
        max_step = math.sqrt(2 * cfg.target_kl / curvature)
        before = torch.nn.utils.parameters_to_vector(params).detach().clone()
        base = float(surrogate.detach())
        with torch.no_grad():
            for k in range(cfg.line_search_steps):
                fraction = cfg.line_search_backtrack ** k
                set_flat_(params, before + fraction * max_step * direction)
                new_surrogate, new_kl = surrogate_and_kl(policy.distribution(obs))
                if float(new_kl) <= cfg.target_kl and float(new_surrogate) > base:
                    metrics |= {"train/surrogate_gain": float(new_surrogate) - base, "train/kl": float(new_kl),
                                "train/line_search_success": 1.0, "train/step_fraction": fraction}
                    break
            else:
                set_flat_(params, before)
        return metrics

    # -- 5. log ---------------------------------------------------------------------------------
    def rollout_metrics(self, batch: Batch, finished: Sequence[Episode]) -> dict[str, float]:
        """Episode means over the episodes finished this iteration (absent when none did);
        reward and reward terms per step over every collected step."""
        steps = batch.rewards.size
        metrics = {"rollout/reward_per_step": float(batch.rewards.mean()),
                   "rollout/episodes": float(len(finished))}
        for name, total in batch.term_sums.items():
            metrics[f"rollout/reward_{name}"] = total / steps
        if finished:
            metrics["rollout/ep_len_mean"] = float(np.mean([e.length for e in finished]))
            metrics["rollout/return_mean"] = float(np.mean([e.return_ for e in finished]))
            metrics["rollout/terminated_frac"] = float(np.mean([e.terminated for e in finished]))
            alive = [float(e.info["time_alive"]) for e in finished if "time_alive" in e.info]
            if alive:
                metrics["rollout/time_alive"] = float(np.mean(alive))
        return metrics



# ------------------------------------------------------------------------------ helpers
def _env_info(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """The info dict of env ``i`` out of a vector env's batched infos (``key`` + ``_key`` masks)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos.get(f"_{key}", np.ones(i + 1, dtype=bool))[i]:
            continue
        out[key] = _env_info(value, i) if isinstance(value, dict) else value[i]
    return out


def _step_reward_terms(infos: dict[str, Any], done: np.ndarray) -> dict[str, np.ndarray]:
    """Per env, this step's ``info["reward_terms"]``: from ``final_info`` where the episode ended
    (autoreset replaced that env's info with the reset info)."""
    live = infos.get("reward_terms", {})
    final = infos.get("final_info", {}).get("reward_terms", {})
    out = {}
    for name in {k for k in (*live, *final) if not k.startswith("_")}:
        values = np.zeros(len(done))
        if name in live:
            values = np.where(live[f"_{name}"], live[name], 0.0)
        if name in final:
            values = np.where(done & final[f"_{name}"], final[name], values)
        out[name] = values
    return out
