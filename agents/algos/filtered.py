"""Reward-filtered post-training: keep the logged episodes whose return clears a threshold,
then fine-tune the RL checkpoint on them with the policy's own likelihood.

Reads top to bottom:

1. read      one or more ``episodes.jsonl`` logs (globs and run folders allowed), all of one env;
2. filter    drop exact repeats (same transcript: the observations and actions), then keep the
             episodes with return >= ``min_reward``, or the best ``top_fraction`` of them (ties
             at the cut are kept). Nothing kept: an error that prints the return distribution
             and a threshold that would keep something;
3. start     from the RL run's ``final/``, else its newest ``checkpoints/step_N`` (printed);
4. update    ``epochs`` passes of minibatch negative log-likelihood with AdamW:
             language-model policies: every kept turn's recorded prompt ids + completion ids
             (exactly what GRPO sampled and trained on, no re-tokenisation), loss on the
             completion ids only, through the policy's own ``batch_turns`` / ``token_logprobs``;
             Gaussian MLP policies: ``-policy.log_prob(obs, action)`` of every kept step
             (observation normalisation stays as the RL run left it);
5. save      ``policy.save(final/)``: the RL agent's format, so evaluate, render and the next
             stage load it unchanged. Each epoch but the last ends with a checkpoint that resumes
             exactly (``python -m agents.train --resume <run>``).

Every kept turn / step is one sample; ``batch_size`` samples make one optimizer step. The
selection (logs, checkpoint, threshold, counts, return quartiles) is written to ``filter.json``.

``python -m agents.filtered --rl-log runs/<grpo run>/episodes.jsonl --min-reward 1`` is the
short form of ``python -m agents.train --agent filtered --rl-log ...``.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from agents.algos.configs import FilteredConfig
from agents.core import distributed
from agents.core.batching import bucketed_batches
from agents.core.checkpoint import MANIFEST, write_json_atomic
from agents.core.config import RunConfig
from agents.core.envs import make_env_fn
from agents.core.loading import load_policy
from agents.core.optim import adamw
from agents.core.policy import PolicyAgent
from agents.core.run import Run, checkpoint_run_config, load_trainer_state, run_folder_of
from agents.core.tasks import TaskSplit, read_split
from agents.core.trajectory import Episode, TurnTokens, read_episodes

_STEP_DIR = re.compile(r"^step_(\d+)$")


class FilterError(ValueError):
    """The logs, the threshold or the checkpoint do not allow a filtered run; says what to do."""


# ------------------------------------------------------------------------------ reading
def expand_logs(patterns: Sequence[str]) -> list[Path]:
    """Log files named by paths, globs or run folders (``<dir>/episodes.jsonl``), each once, in order."""
    if not patterns:
        raise FilterError("no RL logs given: set rl_log (--rl-log runs/<rl run>/episodes.jsonl; globs allowed)")
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise FilterError(f"rl_log {pattern!r} matches no file")
        for match in map(Path, matches):
            if match.is_dir():
                match = match / "episodes.jsonl"
            if not match.is_file():
                raise FilterError(f"rl_log {str(match)!r} does not exist (expected an episodes.jsonl log)")
            if match.resolve() not in {p.resolve() for p in paths}:
                paths.append(match)
    return paths


# ------------------------------------------------------------------------------ filtering
def transcript_key(episode: Episode) -> str:
    """Identity of an episode for deduplication: its env, observations and actions."""
    digest = hashlib.sha1(episode.env_id.encode("utf-8"))
    for part in (episode.observations, episode.actions):
        if part and all(isinstance(row, np.ndarray) for row in part):
            # float vectors (a humanoid's, read from a packed log): hash the bytes, not their text
            rows = np.stack(list(part))
            digest.update(f"|{rows.dtype.str}{rows.shape}|".encode("ascii"))
            digest.update(np.ascontiguousarray(rows).tobytes())
        else:
            digest.update(json.dumps(part, ensure_ascii=False, separators=(",", ":"), default=_plain).encode("utf-8"))
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """numpy values in episodes built in memory (logs read back hold plain lists already)."""
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else str(value)


def return_threshold(returns: Sequence[float], min_reward: float | None = None,
                     top_fraction: float | None = None) -> float:
    """``min_reward`` itself, or the return of the last episode inside the top fraction."""
    if min_reward is not None:
        return float(min_reward)
    if top_fraction is None or not returns:
        raise ValueError("return_threshold needs min_reward, or top_fraction and some returns")
    ranked = sorted(returns, reverse=True)
    return float(ranked[max(1, math.ceil(top_fraction * len(ranked))) - 1])


def quartiles(returns: Sequence[float]) -> dict[str, float]:
    q = np.quantile(np.asarray(returns, dtype=float), [0.0, 0.25, 0.5, 0.75, 1.0])
    return {"min": float(q[0]), "q25": float(q[1]), "median": float(q[2]), "q75": float(q[3]), "max": float(q[4])}


def describe_returns(returns: Sequence[float] | dict[str, float]) -> str:
    """``min 0, 25% 0, median 0, 75% 1, max 1`` of returns (or of their :func:`quartiles`)."""
    q = returns if isinstance(returns, dict) else quartiles(returns)
    return (f"min {q['min']:.4g}, 25% {q['q25']:.4g}, median {q['median']:.4g}, "
            f"75% {q['q75']:.4g}, max {q['max']:.4g}")


def suggest_threshold(returns: Sequence[float]) -> float:
    """The upper quartile, or the best return when that is also the worst (a tied bottom)."""
    q = quartiles(returns)
    return q["q75"] if q["q75"] > q["min"] else q["max"]


def _at_most(value: float) -> str:
    """A short text of ``value`` that does not round above it (a threshold must keep what it says)."""
    short = f"{value:.6g}"
    return short if float(short) <= value else repr(value)


@dataclasses.dataclass(frozen=True)
class Selection:
    """The kept episodes and how they were chosen (written to ``filter.json``)."""

    kept: list[Episode]
    threshold: float
    read: int
    unique: int
    nonfinite: int
    returns: dict[str, float]  # quartiles of the unique episodes' returns
    kept_returns: dict[str, float]
    logs: tuple[str, ...] = ()
    env_id: str = ""
    checkpoint: str = ""  # the checkpoint fine-tuned

    def report(self) -> dict[str, Any]:
        return {"logs": list(self.logs), "checkpoint": self.checkpoint, "threshold": self.threshold,
                "episodes_read": self.read, "episodes_unique": self.unique,
                "episodes_nonfinite": self.nonfinite, "episodes_kept": len(self.kept),
                "returns": self.returns, "kept_returns": self.kept_returns}


def choose(returns: Sequence[float], keys: Sequence[str], min_reward: float | None = None,
           top_fraction: float | None = None, dedup: bool = True) -> tuple[list[int], dict[str, Any]]:
    """Indices of the episodes to keep (first copy of each key when ``dedup``, finite return >=
    the threshold) and the statistics of the choice. Nothing kept raises :class:`FilterError`
    with the return distribution and a threshold to try."""
    seen: set[str] = set()
    unique = []
    for index, key in enumerate(keys):
        if not dedup or key not in seen:
            seen.add(key)
            unique.append(index)
    finite = [i for i in unique if math.isfinite(returns[i])]
    if not finite:
        raise FilterError(f"none of the {len(returns)} logged episodes has a finite return")
    finite_returns = [returns[i] for i in finite]
    threshold = return_threshold(finite_returns, min_reward, top_fraction)
    kept = [i for i in finite if returns[i] >= threshold]
    if not kept:
        suggestion = suggest_threshold(finite_returns)
        would_keep = sum(r >= suggestion for r in finite_returns)
        raise FilterError(
            f"no episode has return >= {threshold:g} ({len(finite)} unique episodes; returns: "
            f"{describe_returns(finite_returns)}). Try --min-reward {_at_most(suggestion)} (keeps {would_keep}) "
            f"or --top-fraction 0.25" + ("; but every episode has the same return, so no threshold selects "
                                         "among them: train the RL stage longer or use a reward that separates "
                                         "episodes" if min(finite_returns) == max(finite_returns) else ""))
    stats = {"threshold": threshold, "read": len(returns), "unique": len(unique),
             "nonfinite": len(unique) - len(finite), "returns": quartiles(finite_returns),
             "kept_returns": quartiles([returns[i] for i in kept])}
    return kept, stats


def select_episodes(episodes: Sequence[Episode], min_reward: float | None = None,
                    top_fraction: float | None = None, dedup: bool = True) -> Selection:
    """Deduplicate, then keep the episodes with return >= the threshold (see :func:`choose`)."""
    kept, stats = choose([e.return_ for e in episodes], [transcript_key(e) for e in episodes],
                         min_reward, top_fraction, dedup)
    return Selection([episodes[i] for i in kept], **stats, env_id=episodes[0].env_id if episodes else "")


def select_from_logs(paths: Sequence[Path], min_reward: float | None = None, top_fraction: float | None = None,
                     dedup: bool = True, env_id: str | None = None) -> Selection:
    """:func:`select_episodes` over logs too large to hold: a first pass reads each episode's
    return, env and transcript key, a second keeps the chosen episodes only (a humanoid log
    holds every observation of every episode). All logs must come from one env (``env_id``
    when given)."""
    returns: list[float] = []
    keys: list[str] = []
    envs: dict[str, list[str]] = {}
    for path in paths:
        for episode in read_episodes(path):
            returns.append(episode.return_)
            keys.append(transcript_key(episode))
            files = envs.setdefault(episode.env_id, [])
            if str(path) not in files:
                files.append(str(path))
    if len(envs) > 1:
        listing = "; ".join(f"{env} in {', '.join(files)}" for env, files in sorted(envs.items()))
        raise FilterError(f"the logs come from different envs ({listing}); filter one env at a time")
    if not returns:
        raise FilterError(f"no episodes in {', '.join(map(str, paths))}")
    log_env = next(iter(envs))
    if env_id is not None and log_env != env_id:
        raise FilterError(f"the logs are from {log_env} but this run's env is {env_id}; pass --env {log_env}")
    kept, stats = choose(returns, keys, min_reward, top_fraction, dedup)
    wanted = set(kept)
    episodes = (e for path in paths for e in read_episodes(path))
    chosen = [e for index, e in enumerate(episodes) if index in wanted]
    return Selection(chosen, **stats, logs=tuple(map(str, paths)), env_id=log_env)


# ------------------------------------------------------------------------------ the checkpoint
def find_checkpoint(rl_model_dir: str | Path) -> tuple[Path, str]:
    """(checkpoint directory, why it was chosen): the folder itself when it is a checkpoint, else
    its ``final/``, else its newest ``checkpoints/step_N`` that holds a ``policy.json``."""
    root = Path(rl_model_dir)
    if not root.is_dir():
        raise FilterError(f"rl_model_dir {str(root)!r} does not exist")
    if (root / MANIFEST).is_file():
        return root, "the given checkpoint"
    if (root / "final" / MANIFEST).is_file():
        return root / "final", "the run's final/"
    steps = sorted((int(m.group(1)), p) for p in (root / "checkpoints").glob("step_*")
                   if (m := _STEP_DIR.match(p.name)) and (p / MANIFEST).is_file())
    if steps:
        return steps[-1][1], f"the newest checkpoint, step {steps[-1][0]} (the run has no final/)"
    raise FilterError(f"{root} holds no checkpoint: no final/ and no checkpoints/step_N with {MANIFEST}; "
                      "point rl_model_dir at an RL run folder")


def default_rl_model_dir(logs: Sequence[Path]) -> Path:
    """The run folder that holds the logs, when they all sit in one folder."""
    parents = {p.resolve().parent for p in logs}
    if len(parents) != 1:
        raise FilterError("the logs sit in several folders: set rl_model_dir (--rl-model-dir) to the RL run "
                          "whose checkpoint to fine-tune")
    return logs[0].parent


def trained_env(checkpoint: Path, policy: Any) -> tuple[str | None, dict[str, Any] | None]:
    """(env id, env kwargs) the checkpoint was trained on, where recorded: the policy's metadata
    (MLP policies) or its run's ``config.yaml``."""
    config = checkpoint_run_config(checkpoint)
    env_id = (getattr(policy, "metadata", None) or {}).get("env_id") or config.get("env")
    return env_id, config.get("env_kwargs")


def check_logs_fit_policy(episodes: Sequence[Episode], policy: Any, logs: Sequence[Path]) -> None:
    """Language-model policies train on recorded token ids; MLP policies on float vectors."""
    names = ", ".join(map(str, logs))
    with_tokens = sum(e.tokens is not None for e in episodes)
    if policy.kind == "lm":
        if with_tokens < len(episodes):
            raise FilterError(
                f"{len(episodes) - with_tokens} of {len(episodes)} kept episodes in {names} carry no token ids; a "
                "language-model policy is fine-tuned on the ids it sampled, which GRPO logs (logs of MLP or "
                "scripted policies have none)")
        # Ids from another tokenizer would train nonsense (or index past the vocabulary).
        vocab = policy.vocab_size
        for episode in episodes:
            for turn in episode.tokens or ():
                bad = [i for i in (*turn.prompt_ids, *turn.completion_ids) if not 0 <= i < vocab]
                if bad:
                    raise FilterError(f"{names}: a kept episode (seed {episode.seed}) holds token id(s) "
                                      f"{sorted(set(bad))[:5]} outside this checkpoint's vocabulary (0..{vocab - 1}); "
                                      "the logs come from a different model than the checkpoint")
        first = episodes[0]
        if first.tokens and list(first.tokens[0].prompt_ids) != policy.encode_prompts([first.observations[0]])[0]:
            raise FilterError(f"{names}: the logged prompt ids differ from this checkpoint's tokenisation of the "
                              "same prompt; the logs come from a different model or tokenizer than the checkpoint")
        return
    if with_tokens:
        raise FilterError(f"{names} holds language-model episodes (token ids) but the checkpoint is a "
                          f"{policy.kind!r} policy; give the logs of that policy's RL run")
    obs_dim, act_dim = getattr(policy, "obs_dim", None), getattr(policy, "act_dim", None)
    sample = episodes[0]
    try:
        obs_shape = np.asarray(sample.observations, dtype=np.float32).shape
        act_shape = np.asarray(sample.actions, dtype=np.float32).shape
    except (TypeError, ValueError) as err:
        raise FilterError(f"{names}: observations and actions are not float vectors ({err})") from err
    if (obs_dim is not None and obs_shape[1:] != (obs_dim,)) or (act_dim is not None and act_shape[1:] != (act_dim,)):
        raise FilterError(f"{names}: observations {obs_shape[1:]} and actions {act_shape[1:]} do not fit the "
                          f"policy (obs_dim {obs_dim}, act_dim {act_dim})")


def prepare(run_config: RunConfig, cfg: FilteredConfig,
            resume_dir: Path | None = None) -> tuple[Any, Selection, TaskSplit | None]:
    """Read and filter the logs, find and load the checkpoint, check they belong together.

    Returns the policy, the selection and the RL run's task split (a run with held-out
    answers: the filtered run is evaluated on the same split). Everything here fails before a
    run folder exists. Resuming loads the run's own checkpoint.
    """
    logs = expand_logs(cfg.rl_log)
    selection = select_from_logs(logs, cfg.min_reward, cfg.top_fraction, cfg.dedup, env_id=run_config.env)
    log_env = selection.env_id

    if resume_dir is not None:
        checkpoint, why = Path(resume_dir), "resuming this run"
    else:
        rl_dir = Path(cfg.rl_model_dir) if cfg.rl_model_dir else default_rl_model_dir(logs)
        checkpoint, why = find_checkpoint(rl_dir)
    print(f"filtered: starting from {checkpoint} ({why})", file=sys.stderr)
    torch.manual_seed(run_config.seed)
    make_env = make_env_fn(run_config.env, run_config.env_kwargs)
    probe = make_env()
    try:
        policy = load_policy(str(checkpoint), probe, seed=run_config.seed, device=run_config.device)
    finally:
        probe.close()
    if resume_dir is None:
        env_id, trained_kwargs = trained_env(checkpoint, policy)
        if env_id is not None and env_id != log_env:
            raise FilterError(f"the checkpoint {checkpoint} was trained on {env_id} but the logs are "
                              f"from {log_env}; give the logs and the checkpoint of the same RL run")
        if trained_kwargs is not None and trained_kwargs != run_config.env_kwargs:
            print(f"warning: env_kwargs {run_config.env_kwargs} differ from the RL run's {trained_kwargs}: "
                  "the evaluation may not match the logged episodes", file=sys.stderr)
    check_logs_fit_policy(selection.kept, policy, logs)
    print(f"filtered: {selection.read} episodes from {len(logs)} log(s), {selection.unique} unique, kept "
          f"{len(selection.kept)} with return >= {selection.threshold:g} (returns: "
          f"{describe_returns(selection.returns)})", file=sys.stderr)
    selection = dataclasses.replace(selection, checkpoint=str(checkpoint))
    return policy, selection, read_split(run_folder_of(checkpoint))


# ------------------------------------------------------------------------------ the losses
def lm_nll(policy: Any, turns: Sequence[TurnTokens], module: Any = None) -> tuple[torch.Tensor, int]:
    """Summed negative log-likelihood of the completion ids given the prompt ids, and their count.
    (``module``: the training wrapper of several processes, the forward pass runs through it.)"""
    batch = policy.batch_turns(turns)
    logprobs = policy.token_logprobs(batch["input_ids"], batch["attention_mask"], temperature=1.0, module=module)
    mask = batch["loss_mask"].to(logprobs.device, logprobs.dtype)
    return -(logprobs * mask).sum(), int(mask.sum())


def mlp_nll(policy: Any, obs: torch.Tensor, actions: torch.Tensor, module: Any = None) -> tuple[torch.Tensor, int]:
    """Summed negative log-likelihood of the actions (over action dimensions and steps), and the steps."""
    mean = (module or policy)(obs)  # forward() is the action mean of raw observations
    dist = torch.distributions.Normal(mean, policy.log_std.exp().expand_as(mean))
    return -dist.log_prob(actions.to(mean.device, torch.float32)).sum(), len(obs)


# ------------------------------------------------------------------------------ the agent
class FilteredAgent(PolicyAgent):
    """Supervised fine-tuning of an RL checkpoint on its own best episodes."""

    # The command line's first step for an agent that learns from logs: select, load, check.
    prepare = staticmethod(prepare)

    config: FilteredConfig

    def __init__(self, policy: Any, config: FilteredConfig, run: Run | None = None, seed: int = 0):
        super().__init__(policy, config, run, seed)
        self.is_lm = policy.kind == "lm"

    # -- public interface -----------------------------------------------------------------
    def learn(self, env: Any = None, budget: int | None = None, demos: Selection | Sequence[Episode] | None = None,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              resume_from: str | Path | None = None) -> dict[str, float]:
        """Train for ``budget`` epochs (default ``config.epochs``) on ``demos``: a
        :class:`Selection` (its kept episodes; its report goes to ``filter.json``) or episodes.
        ``env`` is not used: the data is the logged episodes."""
        cfg = self.config
        if isinstance(demos, Selection):
            selection, episodes = demos, list(demos.kept)
        else:
            selection, episodes = None, list(demos or ())
        if not episodes:
            raise FilterError("no episodes to train on: pass demos= (a Selection or episodes)")
        budget = budget or cfg.epochs
        order = np.random.default_rng(self.seed).permutation(len(episodes))
        val_count = min(round(len(episodes) * cfg.val_fraction), len(episodes) - 1)
        train = self.samples([episodes[i] for i in order[val_count:]])
        val = self.samples([episodes[i] for i in order[:val_count]])
        if train.size == 0:
            raise FilterError("the kept episodes hold nothing to train on (no completion tokens / no steps)")
        if self.run is not None and selection is not None:
            write_json_atomic(self.run.dir / "filter.json", {**selection.report(),
                                                             "train_samples": train.size, "val_samples": val.size})

        if self.is_lm:
            self.policy.float32_trainable_parameters()  # as sft and grpo: AdamW on float32 weights
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = adamw(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        epoch, step = 0, 0
        if resume_from is not None:
            state = load_trainer_state(resume_from, optimizer, self.run)
            epoch, step = int(state["epoch"]), int(state["step"])

        steps_per_epoch = math.ceil(train.size / cfg.batch_size)
        bar = tqdm(total=budget * steps_per_epoch, initial=step, desc="filtered", unit="step",
                   file=sys.stderr, disable=None if distributed.is_main() else True)
        module = distributed.wrap(self.policy.model if self.is_lm else self.policy)  # several processes: DDP
        metrics: dict[str, float] = {}
        window_loss, window_count = 0.0, 0
        while epoch < budget:
            self.train_mode(True)
            started = time.perf_counter()
            for indices in bucketed_batches(train.lengths, cfg.batch_size, self.seed + epoch):
                # As in sft: every rank holds the batch and trains on its share, normalised by the
                # whole batch (DDP averages the ranks' gradients, hence the factor size()).
                mine = distributed.shard(indices)
                loss_sum, count = train.loss(self.policy, mine or indices[:1], module)
                loss = loss_sum * (distributed.size() / train.scored(indices) if mine else 0.0)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
                if math.isfinite(grad_norm):
                    optimizer.step()
                step += 1
                bar.update(1)
                if mine:
                    window_loss += float(loss_sum.detach())
                    window_count += count
                if step % cfg.log_every == 0:
                    loss_all, count_all = distributed.total([window_loss, window_count])
                    metrics = {"train/loss": loss_all / max(count_all, 1), "train/grad_norm": grad_norm,
                               "train/lr": cfg.learning_rate, "train/epoch": epoch + 1}
                    self._log(metrics, step)
                    bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", refresh=False)
                    window_loss, window_count = 0.0, 0
                if callback is not None:
                    callback(step, metrics)
            epoch_s = time.perf_counter() - started
            epoch += 1
            metrics = {**metrics, "train/epoch": float(epoch), "train/epoch_s": epoch_s,
                       "train/samples_per_s": train.size / max(epoch_s, 1e-9)}
            if val.size:
                metrics["eval/loss"] = self.validate(val)
            self._log(metrics, step)
            if self.run is not None and epoch < budget:
                self.run.save_training_checkpoint(step, self.policy, optimizer, {"epoch": epoch, "step": step},
                                                  keep=cfg.keep_checkpoints)
        bar.close()
        self.train_mode(False)
        if self.run is not None:
            self.policy.save(self.run.final_dir)
        return metrics

    def samples(self, episodes: Sequence[Episode]) -> _Samples:
        """Every trainable turn (language models) or step (MLP) of the episodes."""
        if self.is_lm:
            turns = [t for e in episodes for t in (e.tokens or ()) if t.completion_ids]
            return _TurnSamples(turns)
        obs = [o for e in episodes for o in e.observations]
        actions = [a for e in episodes for a in e.actions]
        device = getattr(self.policy, "device", "cpu")
        return _StepSamples(torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device),
                            torch.as_tensor(np.asarray(actions, dtype=np.float32), device=device))

    @torch.no_grad()
    def validate(self, val: _Samples) -> float:
        self.train_mode(False)
        total, count = 0.0, 0
        for start in distributed.shard(range(0, val.size, self.config.batch_size)):
            loss_sum, n = val.loss(self.policy, list(range(start, min(start + self.config.batch_size, val.size))))
            total += float(loss_sum)
            count += n
        total_all, count_all = distributed.total([total, count])
        return total_all / max(count_all, 1)

    def parameters(self) -> list[torch.nn.Parameter]:
        if self.is_lm:
            return list(self.policy.model.parameters())
        return list(self.policy.parameters())

    def train_mode(self, training: bool) -> None:
        module = self.policy.model if self.is_lm else self.policy
        module.train(training)


class _Samples:
    size: int
    lengths: list[int]

    def loss(self, policy: Any, indices: Sequence[int], module: Any = None) -> tuple[torch.Tensor, int]:
        """(summed loss, scored count) of the samples at ``indices``."""
        raise NotImplementedError

    def scored(self, indices: Sequence[int]) -> int:
        raise NotImplementedError


class _TurnSamples(_Samples):
    def __init__(self, turns: Sequence[TurnTokens]):
        self.turns = list(turns)
        self.size = len(self.turns)
        self.lengths = [len(t.prompt_ids) + len(t.completion_ids) for t in self.turns]

    def loss(self, policy: Any, indices: Sequence[int], module: Any = None) -> tuple[torch.Tensor, int]:
        return lm_nll(policy, [self.turns[i] for i in indices], module)

    def scored(self, indices: Sequence[int]) -> int:
        return sum(len(self.turns[i].completion_ids) for i in indices)


class _StepSamples(_Samples):
    def __init__(self, obs: torch.Tensor, actions: torch.Tensor):
        self.obs, self.actions = obs, actions
        self.size = len(obs)
        self.lengths = [1] * self.size

    def loss(self, policy: Any, indices: Sequence[int], module: Any = None) -> tuple[torch.Tensor, int]:
        index = torch.as_tensor(indices, device=self.obs.device)
        return mlp_nll(policy, self.obs[index], self.actions[index], module)

    def scored(self, indices: Sequence[int]) -> int:
        return len(indices)
