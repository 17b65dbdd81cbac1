"""Group-relative policy optimisation (GRPO) of a language-model policy on a text env.

Reads top to bottom, one iteration at a time:

1. collect   draw ``prompts_per_step`` env seeds; play ``group_size`` episodes from each
             (same seed -> same Wordle answer / same question), all in lockstep so the model
             samples the whole batch at once. ``act`` records the sampled ids and their
             log-probs, and those exact ids are trained on (no re-tokenisation drift).
2. advantages episode returns -> one advantage per episode by ``estimator``:
             ``grpo``          A = (R - mean_group) / (std_group + eps)
             ``dr_grpo``       A = R - mean_group                       (Dr. GRPO: no std)
             ``rloo``          A = R - mean of the *other* episodes of the group
             ``reinforce_pp``  A = R - mean_group, then whitened over the batch (REINFORCE++)
             Every policy token of an episode gets its advantage (``turn_credit="episode"``), or
             each turn gets its return-to-go in place of R (``turn_credit="return_to_go"``).
3. update    ``mu`` optimizer steps on the batch: PPO-clipped ratio against the sampling
             log-probs, optional k3 KL to the reference (LoRA: the adapter-disabled model;
             full fine-tuning: a frozen copy), aggregated by ``loss_agg``.
4. log       ``rollout/*`` and ``train/*`` on TensorBoard (x-axis = env steps), every episode
             with its token ids, sampling log-probs, loss masks and advantages to
             ``episodes.jsonl``; checkpoints that resume exactly.

A multi-turn episode is one sample: each of its turns is a row (prompt ids + completion ids,
loss mask = the completion ids), so environment and prompt tokens are never trained on.

Bad input never crashes a run: a non-finite reward drops its episode (counted in
``rollout/nonfinite_rewards``); a group whose rewards are all equal has zero advantage and is
skipped (``rollout/zero_adv_groups``); a turn with no completion tokens has an empty loss mask
and is skipped (``train/empty_rows``); completions cut at ``max_new_tokens`` without closing
their turn are trained like any other sample and counted (``rollout/unfinished_frac``); the
env itself scores a reply without a closing tag as an invalid action.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from agents.algos.configs import ESTIMATORS, GRPOConfig
from agents.core import distributed
from agents.core.envs import EnvFactory, as_make_env
from agents.core.evaluation import summarize
from agents.core.optim import adamw, set_lr
from agents.core.policy import PolicyAgent
from agents.core.rollout import EpisodeSpec, play_episodes
from agents.core.run import REFERENCE_DIR, Run, load_trainer_state, reference_of
from agents.core.tasks import Task, read_task_options, split_tasks
from agents.core.trajectory import Episode, TurnTokens
from agents.policies.lm.policy import LMPolicy
from agents.policies.lm.sampling import SamplingConfig
from envs.protocol import episode_metrics, task_list

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # what max_minutes measures


# ------------------------------------------------------------------------------ advantages
def baselines_and_scales(returns: Sequence[Sequence[float]], estimator: str,
                         eps: float = 1e-4) -> list[tuple[np.ndarray, float]]:
    """Per group: each episode's baseline b_i and the group's scale s, so A_i = (R_i - b_i) * s.

    ``grpo``: b = group mean, s = 1 / (sample std + eps). ``dr_grpo``: b = group mean, s = 1.
    ``rloo``: b_i = mean of the other returns, s = 1. ``reinforce_pp``: b = group mean, then the
    centred returns of all live groups are whitened (batch mean folded into b, s = 1 / (std + eps)).
    A group whose returns are all equal has s = 0 (zero advantage under every estimator).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    out: list[tuple[np.ndarray, float]] = []
    for group in returns:
        r = np.asarray(group, dtype=np.float64)
        if len(r) < 2 or np.ptp(r) == 0:
            out.append((r.copy(), 0.0))
        elif estimator == "grpo":
            out.append((np.full_like(r, r.mean()), 1.0 / (r.std(ddof=1) + eps)))
        elif estimator == "rloo":
            out.append(((r.sum() - r) / (len(r) - 1), 1.0))
        else:  # dr_grpo, and reinforce_pp before whitening
            out.append((np.full_like(r, r.mean()), 1.0))
    if estimator == "reinforce_pp":
        live = [np.asarray(g, dtype=np.float64) - b for g, (b, s) in zip(returns, out, strict=True) if s]
        if live:
            flat = np.concatenate(live)
            mean, scale = flat.mean(), 1.0 / (flat.std() + eps)
            out = [(b + mean, scale) if s else (b, s) for b, s in out]
    return out


def group_advantages(returns: Sequence[Sequence[float]], estimator: str, eps: float = 1e-4) -> list[np.ndarray]:
    """One advantage per episode, for groups of episode returns (each group: one seed)."""
    terms = baselines_and_scales(returns, estimator, eps)
    return [(np.asarray(r, dtype=np.float64) - b) * s for r, (b, s) in zip(returns, terms, strict=True)]


def turn_advantages(rewards: Sequence[float], baseline: float, scale: float, credit: str) -> list[float]:
    """The advantage of each turn of one episode.

    ``episode``: every turn gets (R - b) * s. ``return_to_go``: turn t gets (G_t - b) * s with
    G_t the rewards from turn t on, so a turn is not credited with rewards that came before it.
    """
    if credit == "episode":
        return [float((np.sum(rewards) - baseline) * scale)] * len(rewards)
    to_go = np.cumsum(np.asarray(rewards, dtype=np.float64)[::-1])[::-1]
    return [float((g - baseline) * scale) for g in to_go]


# ------------------------------------------------------------------------------ the loss
@dataclasses.dataclass
class Row:
    """One policy turn to train on: its tokens, the sampling log-probs and per-token weights."""

    turn: TurnTokens
    advantage: float
    weight: float  # the loss_agg weight of each of this row's tokens
    episode: int  # index into the batch's trained episodes


def build_rows(episodes: Sequence[Episode], advantages: Sequence[Sequence[float]], loss_agg: str,
               norm_tokens: int) -> tuple[list[Row], int]:
    """Rows (one per turn with completion tokens) and the number of empty turns skipped.

    Weights implement the aggregation so that micro-batches can simply sum ``weight * loss``:
    token-mean 1/N_tokens; seq-mean-token-mean 1/(N_episodes * n_tokens(episode));
    seq-mean-token-sum-norm 1/(N_episodes * norm_tokens). N_tokens and N_episodes count the whole
    batch of every process (``agents.core.distributed``), so N processes weigh rows as one does.
    """
    per_episode = []
    empty = 0
    for ep, adv in zip(episodes, advantages, strict=True):
        assert ep.tokens is not None
        turns = []
        for turn, a in zip(ep.tokens, adv, strict=True):
            if len(turn.completion_ids) == 0:
                empty += 1
                continue
            turns.append((turn, a))
        if turns:
            per_episode.append(turns)
    total_tokens, total_episodes = distributed.total(
        [sum(len(t.completion_ids) for turns in per_episode for t, _ in turns), len(per_episode)])
    rows: list[Row] = []
    for index, turns in enumerate(per_episode):
        n_tokens = sum(len(t.completion_ids) for t, _ in turns)
        if loss_agg == "token-mean":
            weight = 1.0 / total_tokens
        elif loss_agg == "seq-mean-token-mean":
            weight = 1.0 / (total_episodes * n_tokens)
        else:
            weight = 1.0 / (total_episodes * norm_tokens)
        rows.extend(Row(turn, float(a), weight, index) for turn, a in turns)
    return rows, empty


def clipped_loss(new_logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                 epsilon: float, epsilon_high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO-clipped surrogate loss and a 0/1 tensor of where clipping was active."""
    ratio = torch.exp(new_logp - old_logp)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - epsilon, 1 + epsilon_high) * advantages
    loss = -torch.minimum(unclipped, clipped)
    return loss, (clipped < unclipped).to(loss.dtype)


def k3_kl(new_logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(policy || reference) per sampled token (>= 0, unbiased)."""
    delta = ref_logp - new_logp
    return torch.exp(delta) - delta - 1


# ------------------------------------------------------------------------------ the agent
class GRPOAgent(PolicyAgent):
    """GRPO / Dr. GRPO / RLOO / REINFORCE++ for language-model policies on text envs."""

    policy: LMPolicy
    config: GRPOConfig

    def __init__(self, policy: LMPolicy, config: GRPOConfig, run: Run | None = None, seed: int = 0):
        super().__init__(policy, config, run, seed)
        policy.sampling = SamplingConfig(config.temperature, config.top_p, config.max_new_tokens)

    # -- public interface -----------------------------------------------------------------
    def learn(self, env: str | Callable[[], gym.Env], budget: int | None = None, demos: Any = None,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              resume_from: str | Path | None = None) -> dict[str, float]:
        """Train for ``budget`` iterations (default ``config.iterations``).

        ``env`` is an env id or a zero-argument function building the env (e.g.
        ``agents.core.envs.make_env_fn(env_id, env_kwargs)``). ``demos`` is not used.
        """
        cfg = self.config
        make_env = as_make_env(env)
        budget = budget or cfg.iterations
        policy = self.policy
        pool, held_out = training_tasks(make_env, cfg)
        eval_sets = self.eval_sets(pool, held_out) if cfg.eval_every else {}
        if cfg.prompts_per_step < distributed.size():
            raise ValueError(f"prompts_per_step ({cfg.prompts_per_step}) must be at least the number of processes "
                             f"({distributed.size()}): each process plays whole groups")
        probe = make_env()  # the env's own metrics of the rollouts (envs.protocol.ScoresEpisodes)

        policy.float32_trainable_parameters()
        if cfg.beta > 0 and not policy.has_reference:
            # Full fine-tuning: the KL reference is the policy before its first update, kept in the
            # run folder so that a resumed run measures KL to the same weights.
            if resume_from is None:
                policy.freeze_reference()
                if self.run is not None:
                    policy.save_reference(self.run.dir / REFERENCE_DIR)
            else:
                policy.freeze_reference(reference_of(resume_from))
        params = policy.trainable_parameters()
        optimizer = adamw(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
        iteration, optimizer_steps, env_steps, spent_s = 0, 0, 0, 0.0
        if resume_from is not None:
            state = load_trainer_state(resume_from, optimizer, self.run)
            iteration, optimizer_steps = int(state["iteration"]), int(state["optimizer_steps"])
            env_steps, spent_s = int(state["env_steps"]), float(state.get("elapsed_s", 0.0))
            if distributed.rank() > 0:  # the checkpoint holds rank 0's sampling state: the others draw their own
                torch.manual_seed(int(np.random.SeedSequence([self.seed, distributed.rank(), iteration])
                                      .generate_state(1)[0]))
        now = CLOCKS[cfg.budget_clock]
        clock = now() - spent_s  # budget used = now() - clock, across resumes

        if eval_sets and iteration == 0:
            self._log(self.evaluate(make_env, eval_sets), env_steps)  # the starting point of the curve

        bar = tqdm(total=budget, initial=iteration, desc="grpo", unit="it", file=sys.stderr,
                   disable=None if distributed.is_main() else True)
        module = distributed.wrap(policy.model)  # several processes: gradients averaged over ranks
        metrics: dict[str, float] = {}
        while iteration < budget:
            # 1. collect ------------------------------------------------------------------
            # Several processes: each plays whole groups (g % N == rank), so advantages stay per group.
            started = time.perf_counter()
            specs = self.prompt_specs(iteration, pool)
            specs = [s for k, s in enumerate(specs) if (k // cfg.group_size) % distributed.size() == distributed.rank()]
            episodes = play_episodes(make_env, policy, specs, deterministic=False,
                                     batch_size=cfg.rollout_batch_size or len(specs))
            generation_s = time.perf_counter() - started
            env_steps += int(distributed.total([sum(e.length for e in episodes)])[0])
            if any(e.tokens is None for e in episodes):
                raise RuntimeError("the policy did not record its sampled tokens (policy.last_tokens); "
                                   "GRPO needs an LMPolicy")

            # 2. advantages ---------------------------------------------------------------
            started = time.perf_counter()
            groups, rollout_metrics = self.make_groups(episodes, probe)
            returns = [[episodes[i].return_ for i in g] for g in groups]
            terms = baselines_and_scales(returns, cfg.estimator, cfg.adv_eps)
            trained: list[Episode] = []
            trained_adv: list[list[float]] = []
            notes: dict[int, dict[str, Any]] = {}
            for g, (members, (baselines, scale)) in enumerate(zip(groups, terms, strict=True)):
                for i, baseline in zip(members, baselines, strict=True):
                    ep = episodes[i]
                    per_turn = turn_advantages(ep.rewards, float(baseline), scale, cfg.turn_credit)
                    notes[i] = {"group": g, "advantage": float((ep.return_ - baseline) * scale),
                                "turn_advantages": per_turn, "trained": scale != 0}
                    if scale != 0:  # all-equal groups carry no signal: skipped (counted in make_groups)
                        trained.append(ep)
                        trained_adv.append(per_turn)
            rows, empty_rows = build_rows(trained, trained_adv, cfg.loss_agg,
                                          cfg.loss_norm_tokens or cfg.max_new_tokens)

            # 3. update -------------------------------------------------------------------
            update_metrics = {"train/empty_rows": float(empty_rows)}
            if distributed.total([len(rows)])[0]:  # every rank steps when any rank has rows
                epochs = []
                for _ in range(cfg.mu):
                    lr = cfg.learning_rate * min(1.0, (optimizer_steps + 1) / max(cfg.warmup_steps, 1))
                    set_lr(optimizer, lr)
                    epochs.append(self.update(rows, optimizer, params, module, episodes))
                    optimizer_steps += 1
                # Averaged over the mu steps (the first one is on-policy: ratio 1, no clipping).
                update_metrics |= {k: float(np.mean([e[k] for e in epochs])) for k in epochs[0]}
                update_metrics["train/lr"] = lr
            update_s = time.perf_counter() - started
            iteration += 1
            bar.update(1)

            # 4. log ----------------------------------------------------------------------
            annotated = self.annotate(episodes, notes, iteration)
            if distributed.size() > 1:  # every rank's groups, in group order, for one log and one set of metrics
                per_group = [annotated[k:k + cfg.group_size] for k in range(0, len(annotated), cfg.group_size)]
                annotated = [e for group in distributed.gather(per_group) for e in group]
                rollout_metrics = self.make_groups(annotated, probe)[1]
                trained_count, trained_tokens = distributed.total(
                    [len(trained), sum(len(r.turn.completion_ids) for r in rows)])
            else:
                trained_count, trained_tokens = len(trained), sum(len(r.turn.completion_ids) for r in rows)
            metrics = {**rollout_metrics, **update_metrics,
                       "rollout/generation_s": generation_s, "train/update_s": update_s,
                       "train/iteration": float(iteration), "train/optimizer_steps": float(optimizer_steps),
                       f"train/{cfg.budget_clock}_minutes": (now() - clock) / 60,
                       "train/trained_episodes": float(trained_count), "train/trained_tokens": float(trained_tokens)}
            self._log(metrics, env_steps)
            bar.set_postfix(ret=f"{metrics['rollout/return_mean']:.3f}", refresh=False)
            if self.run is not None and cfg.log_episodes:
                self.run.log_episodes(annotated)
            # rank 0's clock decides for all: ranks that disagreed would wait on each other forever
            out_of_time = distributed.broadcast(bool(cfg.max_minutes) and now() - clock >= 60 * cfg.max_minutes)
            if eval_sets and (iteration % cfg.eval_every == 0 or iteration == budget or out_of_time):
                self._log(self.evaluate(make_env, eval_sets), env_steps)
            if callback is not None:
                callback(iteration, metrics)
            if out_of_time:
                print(f"\ngrpo: {cfg.budget_clock} budget of {cfg.max_minutes:g} min reached after {iteration} iterations",
                      file=sys.stderr)
                break
            if self.run is not None and iteration % cfg.save_every == 0 and iteration < budget:
                self.run.save_training_checkpoint(
                    iteration, policy, optimizer,
                    {"iteration": iteration, "optimizer_steps": optimizer_steps, "env_steps": env_steps,
                     "elapsed_s": now() - clock},
                    keep=self.config.keep_checkpoints)
        bar.close()
        probe.close()
        policy.model.eval()
        if self.run is not None:
            policy.save(self.run.final_dir)
        return metrics

    def eval_sets(self, pool: Sequence[Task] | None, held_out: Sequence[Task]) -> dict[str, list[EpisodeSpec]]:
        """Fixed greedy evaluation sets: with a task split, ``eval_set_size`` held-out tasks and as
        many training tasks (a fixed sample); otherwise ``eval_set_size`` fixed env seeds."""
        n = self.config.eval_set_size
        rng = np.random.default_rng([self.seed, 7])
        if not held_out:
            return {"eval": [EpisodeSpec(seed=10**6 + i) for i in range(n)]}

        def sample(tasks: Sequence[Task]) -> list[EpisodeSpec]:
            picked = sorted(rng.choice(len(tasks), size=min(n, len(tasks)), replace=False))
            return [EpisodeSpec(seed=10**6 + i, options=dict(tasks[j])) for i, j in enumerate(picked)]

        return {"held_out": sample(held_out), "train_tasks": sample(pool or [])}

    def evaluate(self, make_env: EnvFactory, eval_sets: dict[str, list[EpisodeSpec]]) -> dict[str, float]:
        """``eval/<set>/<metric>`` for the scalar metrics of each set, played greedily."""
        metrics: dict[str, float] = {}
        probe = make_env()
        try:
            for name, specs in eval_sets.items():
                mine = distributed.shard(specs)
                episodes = distributed.gather(play_episodes(make_env, self.policy, mine, deterministic=True,
                                                            batch_size=max(len(mine), 1)))
                flat: dict[str, Any] = {}
                for key, value in summarize(probe, episodes).items():
                    flat |= value if isinstance(value, dict) else {key: value}
                metrics |= {f"eval/{name}/{k}": float(v) for k, v in flat.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)}
        finally:
            probe.close()
        return metrics

    def prompt_specs(self, iteration: int, pool: Sequence[Task] | None) -> list[EpisodeSpec]:
        """``group_size`` copies of each of ``prompts_per_step`` specs; seeded by (seed, iteration)
        so a resumed run draws the same prompts without storing generator state."""
        cfg = self.config
        rng = np.random.default_rng([self.seed, iteration])
        seeds = rng.integers(0, 2**31 - 1, size=cfg.prompts_per_step)
        specs = []
        for s in seeds:
            options = dict(pool[int(rng.integers(len(pool)))]) if pool else {}
            specs += [EpisodeSpec(seed=int(s), options=options)] * cfg.group_size
        return specs

    def make_groups(self, episodes: Sequence[Episode], env: gym.Env) -> tuple[list[list[int]], dict[str, float]]:
        """Episode indices per group (finite returns only) and the rollout metrics, with the
        env's own scalar metrics of the episodes (Wordle: ``rollout/win_rate``, ...)."""
        g_size = self.config.group_size
        finite = [all(math.isfinite(r) for r in e.rewards) for e in episodes]
        groups, zero_adv, dropped = [], 0, 0
        for start in range(0, len(episodes), g_size):
            members = [i for i in range(start, min(start + g_size, len(episodes))) if finite[i]]
            if len(members) < 2:
                dropped += 1
                continue
            returns = [episodes[i].return_ for i in members]
            zero_adv += int(max(returns) == min(returns))
            groups.append(members)
        ok = [e for e, f in zip(episodes, finite, strict=True) if f]
        turns = [t for e in episodes for t in (e.tokens or ())]
        eos = set(self.policy.stop_ids())
        metrics = {
            "rollout/episodes": float(len(episodes)),
            "rollout/return_mean": float(np.mean([e.return_ for e in ok])) if ok else math.nan,
            "rollout/return_std": float(np.std([e.return_ for e in ok])) if ok else math.nan,
            "rollout/length_mean": float(np.mean([e.length for e in episodes])) if episodes else 0.0,
            "rollout/nonfinite_rewards": float(len(episodes) - len(ok)),
            "rollout/zero_adv_groups": float(zero_adv),
            "rollout/dropped_groups": float(dropped),
            "rollout/completion_tokens_mean": float(np.mean([len(t.completion_ids) for t in turns])) if turns else 0.0,
            "rollout/unfinished_frac": float(np.mean([not t.completion_ids or t.completion_ids[-1] not in eos
                                                      for t in turns])) if turns else 0.0,
        }
        own = episode_metrics(env, ok) if ok else None
        if own is not None:
            metrics |= {f"rollout/{k}": float(v) for k, v in own[1].items()
                        if isinstance(v, int | float) and not isinstance(v, bool)}
        for name in sorted({k for e in ok for k in e.reward_terms}):
            metrics[f"rollout/reward_{name}"] = float(np.mean([e.reward_terms.get(name, 0.0) for e in ok]))
        return groups, metrics

    def update(self, rows: Sequence[Row], optimizer: torch.optim.Optimizer, params: Sequence[torch.nn.Parameter],
               module: torch.nn.Module | None = None, episodes: Sequence[Episode] = ()) -> dict[str, float]:
        """One optimizer step over all rows (micro-batched, gradients accumulated). With several
        processes each rank steps through as many micro-batches as the busiest one (an idle
        rank replays one of its turns at weight 0) so that every backward meets its peers'."""
        cfg = self.config
        policy = self.policy
        eps_high = cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon
        temperature = policy.sampling.temperature
        # Dropout off: on-policy ratios must be exactly 1 for the clip to mean anything.
        policy.model.eval()
        optimizer.zero_grad(set_to_none=True)
        sums = {"loss": 0.0, "kl": 0.0, "clip": 0.0, "entropy": 0.0, "ratio": 0.0}
        tokens = 0
        # Micro-batches of similar length pad less. Each row's weight already carries its share
        # of the step's normalisation, so how rows are grouped does not change the gradient.
        rows = sorted(rows, key=lambda r: len(r.turn.prompt_ids) + len(r.turn.completion_ids))
        chunks = [rows[k : k + cfg.micro_batch_size] for k in range(0, len(rows), cfg.micro_batch_size)]
        real = len(chunks)  # the rest (several processes only) are weight-0 replays: not in the metrics
        if distributed.size() > 1:
            needed = max(distributed.gather([len(chunks)]))
            spare = next(Row(t, 0.0, 0.0, 0) for e in episodes for t in (e.tokens or ()) if t.completion_ids) \
                if len(chunks) < needed else None
            chunks += [[spare]] * (needed - len(chunks)) if spare is not None else []
        for number, chunk in enumerate(chunks):
            batch = policy.batch_turns([r.turn for r in chunk])
            mask = batch["loss_mask"].to(policy.device, torch.float32)
            # Sampling log-probs and per-token advantage / weight, aligned with input_ids.
            old = torch.zeros_like(mask)
            adv = torch.zeros_like(mask)
            weight = torch.zeros_like(mask)
            for k, r in enumerate(chunk):
                begin = len(r.turn.prompt_ids)
                end = begin + len(r.turn.completion_ids)
                old[k, begin:end] = torch.tensor(r.turn.logprobs, dtype=torch.float32)
                adv[k, begin:end] = r.advantage
                weight[k, begin:end] = r.weight
            new = policy.token_logprobs(batch["input_ids"], batch["attention_mask"], temperature, module=module)
            loss_tokens, clipped = clipped_loss(new, old, adv, cfg.epsilon, eps_high)
            kl = torch.zeros_like(new)
            if cfg.beta > 0:
                with torch.no_grad(), policy.reference():
                    ref = policy.token_logprobs(batch["input_ids"], batch["attention_mask"], temperature)
                kl = k3_kl(new, ref) * mask
                loss_tokens = loss_tokens + cfg.beta * kl
            loss = (loss_tokens * weight * mask).sum()
            with distributed.syncing(module, last=number == len(chunks) - 1):  # DDP averages: scale by N
                (loss * distributed.size()).backward()
            if number >= real:
                continue
            with torch.no_grad():
                sums["loss"] += float(loss)
                sums["kl"] += float((kl * mask).sum())
                sums["clip"] += float((clipped * mask).sum())
                sums["entropy"] += float(-(old * mask).sum())
                sums["ratio"] += float((torch.exp(new - old) * mask).sum())
                tokens += int(mask.sum())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        if math.isfinite(grad_norm):
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        totals = dict(zip([*sums, "tokens"], distributed.total([*sums.values(), tokens]), strict=True))
        n = max(totals["tokens"], 1)
        return {"train/loss": totals["loss"], "train/kl": totals["kl"] / n, "train/clip_frac": totals["clip"] / n,
                "train/entropy": totals["entropy"] / n, "train/ratio_mean": totals["ratio"] / n,
                "train/grad_norm": grad_norm, "train/nonfinite_grad": float(not math.isfinite(grad_norm))}

    def annotate(self, episodes: Sequence[Episode], notes: dict[int, dict[str, Any]],
                 iteration: int) -> list[Episode]:
        """Episodes with what was trained on: advantages and per-turn loss masks (over
        prompt + completion ids; ``tokens`` holds the ids and sampling log-probs)."""
        out = []
        for i, ep in enumerate(episodes):
            note = notes.get(i, {"trained": False, "skip_reason": "non-finite reward or group too small"})
            masks = [[0] * len(t.prompt_ids) + [int(note["trained"])] * len(t.completion_ids)
                     for t in ep.tokens or ()]
            out.append(dataclasses.replace(ep, info={**ep.info, "grpo": {"iteration": iteration, **note,
                                                                          "loss_mask": masks}}))
        return out


def training_tasks(make_env: EnvFactory, cfg: GRPOConfig) -> tuple[list[Task] | None, list[Task]]:
    """(tasks to train on, or None for the env's own draw; held-out tasks).

    ``task_pool`` (a file of reset options) wins; otherwise ``train_task_fraction < 1`` splits the
    env's task list exactly as the sft agent does (same ``split_seed`` -> same held-out tasks).
    """
    if cfg.task_pool is not None:
        return read_task_options(cfg.task_pool), []
    if cfg.train_task_fraction >= 1:
        return None, []
    env = make_env()
    try:
        tasks = task_list(env)
    finally:
        env.close()
    if tasks is None:
        raise ValueError("train_task_fraction < 1 needs an env with a task list (all_tasks: Wordle, GSM8K)")
    return split_tasks(tasks, cfg.train_task_fraction, cfg.split_seed)
