"""One typed config per algorithm, built from the shared key groups of :mod:`agents.core.config`
(optimizer, checkpoints, logging, language-model setup, task split), so every key is declared
and documented once; a trainer with another default redeclares a key with ``inherited(...)``.

This module imports neither torch nor transformers: ``python -m agents.train --help`` lists
every key from here, and a config error surfaces before any model loads.
"""

from __future__ import annotations

import math
from typing import Any

from agents.core.config import (
    CheckpointSettings,
    LanguageModelSettings,
    LoggingSettings,
    OptimizerSettings,
    PeriodicCheckpointSettings,
    field,
    inherited,
    settings,
)
from agents.policies.activations import ACTIVATIONS
from agents.policies.lm.sampling import SamplingConfig


def _at_least(config: Any, minimum: int, *names: str) -> None:
    for name in names:
        if getattr(config, name) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {getattr(config, name)}")


def _one_of(config: Any, name: str, allowed: tuple[str, ...] | dict[str, Any]) -> None:
    if getattr(config, name) not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(config, name)!r}")


@settings
class TaskSplitSettings:
    """A deterministic train / held-out split of the env's task list (``all_tasks``)."""

    train_task_fraction: float = field(1.0, help="train on this share of the env's tasks (Wordle answers, GSM8K problems); the rest is held out and evaluated separately")
    split_seed: int = field(0, help="seed of the train / held-out task split (the same seed splits alike in every agent)")

    def __post_init__(self) -> None:
        if not 0 < self.train_task_fraction <= 1:
            raise ValueError(f"train_task_fraction must be in (0, 1], got {self.train_task_fraction}")


@settings
class GaussianMLPSettings:
    """A new Gaussian MLP policy (a policy from --init keeps its own shape)."""

    hidden: list[int] = field(default_factory=lambda: [256, 256], help="hidden layer sizes of a new policy")
    activation: str = field("tanh", help=f"hidden activation of a new policy: {' | '.join(ACTIVATIONS)}")
    init_log_std: float = field(-1.0, help="initial log standard deviation of a new policy")

    def __post_init__(self) -> None:
        _one_of(self, "activation", ACTIVATIONS)


# ------------------------------------------------------------------------------ sft (language models)
THINK_MODES = ("none", "count", "facts")
DATA_PARALLEL = ("ddp", "fsdp")


@settings
class SFTConfig(TaskSplitSettings, LanguageModelSettings, OptimizerSettings, PeriodicCheckpointSettings,
                LoggingSettings):
    data: str = field("solver", help="'solver' (Wordle expert games), 'solutions' (GSM8K worked solutions), 'hh:PATH' (HH-RLHF JSONL) or a JSONL path of messages / prompt+completion")
    keep_calculator: bool = field(False, help="GSM8K solutions: keep the <<a*b=c>> calculator annotations")
    no_repeat_ngram_size: int = field(0, help="saved with the policy: when it acts, no run of N tokens occurs twice in a completion (0 = off; breaks greedy phrase loops of small models)")
    think: str = field("none", help="Wordle solver demos: what goes in <think>: none | count | facts")
    spelling: bool = field(False, help="Wordle solver demos: also one conversation per allowed guess (no board; answers unmarked among them) that writes the word: the vocabulary a pretrained model would bring")
    practice_games: int = field(0, help="Wordle solver demos: also N solver games whose secrets are allowed words that are never answers (spelling beyond the answer list; no held-out answer is a secret)")
    max_steps: int = field(3500, help="optimizer steps (the training budget)")
    batch_size: int = field(64, help="conversations per micro-batch")
    grad_accum_steps: int = field(1, help="micro-batches per optimizer step")
    min_lr_ratio: float = field(0.1, help="final learning rate as a fraction of the peak (cosine decay)")
    warmup_steps: int = field(100, help="linear warmup steps")
    weight_decay: float = inherited(0.01)
    max_length: int = field(1024, help="longest tokenized conversation; longer ones are cut from the right")
    val_ratio: float = field(0.02, help="share of conversations held out for eval/loss and eval/accuracy")
    eval_every: int = field(500, help="validate every N steps (and keep the best checkpoint)")
    data_parallel: str = field("ddp", help="how several processes (torchrun) hold the model: ddp (a full copy each; gradients averaged) or fsdp (weights, gradients and optimizer state sharded by torch's fully_shard: full fine-tuning of models too large for one device; lora_r=0 only). One process ignores it")

    def __post_init__(self) -> None:
        TaskSplitSettings.__post_init__(self)
        _one_of(self, "think", THINK_MODES)
        _one_of(self, "data_parallel", DATA_PARALLEL)
        if self.data_parallel == "fsdp" and self.lora_r:
            raise ValueError("data_parallel=fsdp shards full fine-tuning (lora_r=0); LoRA trains a small adapter "
                             "that every process holds whole: use data_parallel=ddp")
        if not 0 <= self.val_ratio < 1:
            raise ValueError(f"val_ratio must be in [0, 1), got {self.val_ratio}")
        _at_least(self, 0, "no_repeat_ngram_size", "practice_games")
        _at_least(self, 1, "max_steps", "batch_size", "grad_accum_steps", "eval_every", "save_every", "log_every",
                  "max_new_tokens")


# ------------------------------------------------------------------------------ sft (Gaussian MLP: bc)
BC_LABELS = ("reference", "feedforward")
BC_LOSSES = ("mse", "nll")


@settings
class BCConfig(GaussianMLPSettings, OptimizerSettings, PeriodicCheckpointSettings, LoggingSettings):
    data: str = field("mocap", help="'mocap': demonstrations extracted from the env's clip (HumanoidMimic); or an .npz with arrays observations, actions[, groups]")
    labels: str = field("feedforward", help="mocap action labels: 'reference' (the next reference pose) | 'feedforward' (+ inverse-dynamics torques and root-tilt feedback)")
    reference_states: int = field(1000, help="mocap: teacher-forced reference states (phases on a regular grid)")
    noisy_episodes: int = field(200, help="mocap: expert rollouts with action noise from random phases, every state labelled (DART)")
    noise_std: float = field(0.05, help="mocap: std of the Gaussian action noise of those rollouts (normalised action units)")
    horizon: int = field(60, help="mocap: longest noisy-expert / DAgger rollout (control steps)")
    kp_tilt: float = field(100.0, help="mocap feedforward labels: root-tilt feedback stiffness (1/s^2)")
    kd_tilt: float = field(20.0, help="mocap feedforward labels: root-tilt feedback damping (1/s)")
    dagger_rounds: int = field(4, help="mocap: DAgger rounds after the first fit (roll out the policy, label its states, train on all)")
    dagger_episodes: int = field(60, help="mocap: policy rollouts per DAgger round")
    min_log_std: float = field(-3.0, help="floor of the fitted log standard deviation")
    loss: str = field("mse", help="'mse': squared error of the mean, then log_std = log residual RMS | 'nll': joint Gaussian NLL")
    max_steps: int = field(6000, help="optimizer steps in all, split evenly over the first fit and each DAgger round (the learning rate decays by cosine to 10% within each round)")
    batch_size: int = field(256, help="state-action pairs per minibatch")
    val_ratio: float = field(0.1, help="share of rollouts (groups) held out for eval/loss")
    eval_every: int = field(200, help="validate every N steps")
    patience: int = field(8, help="stop a round after this many validations without a new best (0: never)")
    save_every: int = inherited(1000)
    log_every: int = inherited(50)

    def __post_init__(self) -> None:
        GaussianMLPSettings.__post_init__(self)
        _one_of(self, "labels", BC_LABELS)
        _one_of(self, "loss", BC_LOSSES)
        if not 0 <= self.val_ratio < 1:
            raise ValueError(f"val_ratio must be in [0, 1), got {self.val_ratio}")
        _at_least(self, 1, "max_steps", "batch_size", "eval_every", "save_every", "log_every", "horizon")
        _at_least(self, 0, "dagger_rounds", "dagger_episodes", "reference_states", "noisy_episodes", "patience")


# ------------------------------------------------------------------------------ grpo
ESTIMATORS = ("grpo", "dr_grpo", "rloo", "reinforce_pp")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
TURN_CREDITS = ("episode", "return_to_go")
BUDGET_CLOCKS = ("wall", "cpu")


@settings
class GRPOConfig(TaskSplitSettings, LanguageModelSettings, OptimizerSettings, PeriodicCheckpointSettings):
    iterations: int = field(200, help="collect -> update iterations (the training budget)")
    prompts_per_step: int = field(8, help="env seeds (tasks) per iteration")
    group_size: int = field(8, help="episodes per seed (G); advantages are relative within a group")
    estimator: str = field("grpo", help="advantage estimator: grpo | dr_grpo | rloo | reinforce_pp")
    adv_eps: float = field(1e-4, help="added to the group std (grpo) or batch std (reinforce_pp) before dividing")
    turn_credit: str = field("episode", help="multi-turn credit: episode (every turn gets the episode advantage) | return_to_go")
    mu: int = field(1, help="optimizer steps per collected batch (old log-probs = the sampling log-probs)")
    epsilon: float = field(0.2, help="PPO clip range: ratio kept within [1 - epsilon, 1 + epsilon_high]")
    epsilon_high: float | None = field(None, help="upper clip range (DAPO clip-higher); default = epsilon")
    loss_agg: str = field("token-mean", help="token-mean | seq-mean-token-mean | seq-mean-token-sum-norm")
    loss_norm_tokens: int = field(0, help="seq-mean-token-sum-norm: divide each episode's token sum by this (0 = max_new_tokens)")
    beta: float = field(0.0, help="KL penalty to the reference model (k3 estimator); 0 = no reference needed")
    learning_rate: float = inherited(1e-5)
    warmup_steps: int = field(0, help="linear warmup in optimizer steps (constant learning rate after it)")
    micro_batch_size: int = field(32, help="turns (rows) per forward/backward pass; gradients accumulate")
    temperature: float = field(1.0, help="sampling temperature (log-probs and ratios use the same temperature)")
    top_p: float = field(1.0, help="nucleus sampling mass")
    rollout_batch_size: int = field(0, help="episodes played in lockstep (0 = prompts_per_step * group_size)")
    task_pool: str | None = field(None, help="JSON-lines file of reset options to draw training tasks from, one per line (repeat a line to weight it; e.g. {\"answer\": \"crane\"}); default: the env's own draw, or the training share of its tasks")
    max_minutes: float = field(0.0, help="time budget: stop after the iteration that passes it, evaluations included (0 = no limit; a resumed run counts the time already spent)")
    budget_clock: str = field("wall", help="what max_minutes measures: wall (elapsed time) | cpu (this process's CPU time, all threads: fair on a shared machine)")
    eval_every: int = field(0, help="every N iterations play the eval tasks greedily and log eval/<set>/* (0 = never)")
    eval_set_size: int = field(256, help="episodes per periodic evaluation set: with a task split, this many held-out and as many training tasks; otherwise this many fixed seeds")
    save_every: int = inherited(50)
    log_episodes: bool = field(True, help="append every collected episode (tokens, log-probs, loss masks, advantages) to episodes.jsonl")
    lora_dropout: float = inherited(0.0)  # dropout is off during updates: on-policy ratios must be 1

    def __post_init__(self) -> None:
        TaskSplitSettings.__post_init__(self)
        for name, allowed in (("estimator", ESTIMATORS), ("loss_agg", LOSS_AGGREGATIONS),
                              ("turn_credit", TURN_CREDITS), ("budget_clock", BUDGET_CLOCKS)):
            _one_of(self, name, allowed)
        if self.max_minutes < 0 or self.eval_every < 0 or self.eval_set_size < 1:
            raise ValueError("max_minutes and eval_every must be >= 0 and eval_set_size >= 1")
        _at_least(self, 1, "iterations", "prompts_per_step", "mu", "micro_batch_size", "save_every", "max_new_tokens")
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: advantages compare episodes within a group")
        if self.epsilon <= 0 or (self.epsilon_high is not None and self.epsilon_high <= 0):
            raise ValueError("epsilon and epsilon_high must be > 0")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.task_pool is not None and self.train_task_fraction < 1:
            raise ValueError("give task_pool or train_task_fraction < 1, not both: the pool is what trains")
        SamplingConfig(self.temperature, self.top_p, self.max_new_tokens)  # validates the three


# ------------------------------------------------------------------------------ trpo
VECTOR_ENVS = ("auto", "sync", "async")


@settings
class TRPOConfig(GaussianMLPSettings, PeriodicCheckpointSettings):
    total_steps: int = field(1_000_000, help="budget in env steps, all envs together (the run also stops at max_minutes)")
    max_minutes: float | None = field(None, help="wall-clock budget in minutes: no iteration starts that would end past it (for equal-time comparisons); null = steps only")
    n_envs: int = field(8, help="envs stepped together (Gymnasium vector env)")
    n_steps: int = field(256, help="steps per env per iteration: a batch is n_envs * n_steps transitions")
    vector_env: str = field("auto", help="auto: the env's own vector env where it registers one (gym.make_vec's choice; HumanoidMimic computes all copies' rewards in one call), else sync | sync: SyncVectorEnv, one process | async: one subprocess per env")
    gamma: float = field(0.99, help="discount factor")
    gae_lambda: float = field(0.95, help="GAE lambda (bias-variance trade-off of the advantages)")
    normalize_advantage: bool = field(True, help="whiten the advantages of each batch before the policy step")
    target_kl: float = field(0.01, help="trust region: the largest mean KL(old || new) a policy step may take")
    cg_iters: int = field(10, help="conjugate-gradient iterations for the natural-gradient direction")
    cg_damping: float = field(0.1, help="added to the Fisher matrix (times the identity) for a stable solve")
    fisher_subsample: int = field(1, help="Fisher-vector products from every k-th transition (k times cheaper conjugate gradient; gradient and line search use all)")
    line_search_steps: int = field(10, help="backtracking line-search tries before the step is rejected")
    line_search_backtrack: float = field(0.8, help="step shrink factor per line-search try")
    critic_hidden: list[int] = field(default_factory=lambda: [256, 256], help="critic MLP hidden layer sizes")
    critic_activation: str = field("tanh", help=f"critic hidden activation: {' | '.join(ACTIVATIONS)}")
    critic_lr: float = field(1e-3, help="critic Adam learning rate")
    critic_epochs: int = field(10, help="passes over the batch per critic fit")
    critic_minibatch: int = field(128, help="critic Adam minibatch size")
    normalize_returns: bool = field(True, help="the critic predicts returns standardised by running statistics (kept with it): its learning speed no longer depends on the reward scale")
    critic_warmup_iterations: int = field(5, help="when starting from a trained policy (--init): iterations that fit only the critic before the first policy step")
    update_obs_stats: bool = field(True, help="update the policy's observation-normalisation statistics from every collected batch")
    save_every: int = inherited(20)
    log_episodes: bool = field(True, help="append every finished episode (observations, actions, rewards, reward terms, info) to episodes.jsonl")

    def __post_init__(self) -> None:
        GaussianMLPSettings.__post_init__(self)
        _one_of(self, "vector_env", VECTOR_ENVS)
        _one_of(self, "critic_activation", ACTIVATIONS)
        _at_least(self, 1, "total_steps", "n_envs", "n_steps", "cg_iters", "fisher_subsample", "line_search_steps",
                  "critic_epochs", "critic_minibatch", "save_every")
        _at_least(self, 0, "critic_warmup_iterations", "keep_checkpoints")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be > 0 (or null), got {self.max_minutes}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("gamma must be in (0, 1] and gae_lambda in [0, 1]")
        if self.target_kl <= 0 or self.cg_damping < 0 or self.critic_lr <= 0:
            raise ValueError("target_kl and critic_lr must be > 0, cg_damping >= 0")
        if not 0 < self.line_search_backtrack < 1:
            raise ValueError(f"line_search_backtrack must be in (0, 1), got {self.line_search_backtrack}")
        if self.n_envs * self.n_steps < 2 and self.normalize_advantage:
            raise ValueError("normalize_advantage needs n_envs * n_steps >= 2")


# ------------------------------------------------------------------------------ filtered
@settings
class FilteredConfig(OptimizerSettings, CheckpointSettings, LoggingSettings):
    rl_log: list[str] = field(default_factory=list, help="episodes.jsonl logs of the RL run(s): paths, globs or run folders")
    min_reward: float | None = field(None, help="keep episodes with return >= this (give this or top_fraction)")
    top_fraction: float | None = field(None, help="keep the best fraction of the (deduplicated) episodes by return, ties at the cut kept")
    dedup: bool = field(True, help="keep one copy of episodes with identical transcripts (observations and actions)")
    rl_model_dir: str | None = field(None, help="RL run folder (its final/, else newest checkpoints/step_N) or a checkpoint; default: the folder holding the logs")
    epochs: int = field(3, help="passes over the kept samples (the training budget); each but the last ends with a checkpoint")
    learning_rate: float = inherited(1e-4)
    batch_size: int = field(32, help="samples per optimizer step: turns (language models) or (observation, action) steps (MLP)")
    val_fraction: float = field(0.05, help="share of kept episodes held out for eval/loss after each epoch")

    def __post_init__(self) -> None:
        if (self.min_reward is None) == (self.top_fraction is None):
            raise ValueError("give exactly one of min_reward (--min-reward) and top_fraction (--top-fraction)")
        if self.min_reward is not None and not math.isfinite(self.min_reward):
            raise ValueError(f"min_reward must be a finite number, got {self.min_reward}")
        if self.top_fraction is not None and not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        _at_least(self, 1, "epochs", "batch_size", "log_every", "keep_checkpoints")


# ------------------------------------------------------------------------------ dpo
DPO_LOSSES = ("sigmoid", "ipo", "robust")
PAIR_WITHIN = ("group", "task")


@settings
class DPOConfig(LanguageModelSettings, OptimizerSettings, PeriodicCheckpointSettings, LoggingSettings):
    data: str | None = field(None, help="preference pairs: 'hh:PATH' (HH-RLHF JSONL: chosen / rejected transcripts) or a JSONL path of prompt|messages, chosen, rejected rows (or rl_log)")
    rl_log: list[str] = field(default_factory=list, help="episodes.jsonl logs (or run folders) of RL runs: pairs mined per task, the best against the worst return, token-exact from the logged ids (or data)")
    pair_within: str = field("group", help="rl_log: pair episodes within one GRPO group (falls back to task where the log has no groups) | task (every logged episode of the same first prompt)")
    min_return_gap: float = field(0.0, help="rl_log: keep a pair only when best return - worst return >= this (and > 0)")
    loss: str = field("sigmoid", help="sigmoid (DPO; label_smoothing > 0: conservative DPO) | ipo (squared, target 1/(2 beta)) | robust (unbiased under label noise label_smoothing)")
    beta: float = field(0.1, help="strength of the pull to the reference: implicit reward = beta * (log pi - log pi_ref)")
    label_smoothing: float = field(0.0, help="assumed share of flipped preference labels (sigmoid, robust); in [0, 0.5)")
    length_normalize: bool = field(False, help="score a reply by its mean token log-prob instead of the sum (TRL's ipo does this)")
    max_steps: int = field(200, help="optimizer steps (the training budget)")
    batch_size: int = field(8, help="pairs per optimizer step")
    learning_rate: float = inherited(5e-6)
    warmup_steps: int = field(10, help="linear warmup steps")
    min_lr_ratio: float = field(1.0, help="final learning rate as a fraction of the peak (cosine decay; 1 = constant after warmup)")
    max_length: int = field(1024, help="longest prompt + reply in tokens: a longer text reply is cut from the right, a text pair whose prompt leaves no room and a mined pair with a longer turn are skipped")
    val_ratio: float = field(0.1, help="share of pairs held out (fixed by split_seed) for the eval/* preference metrics")
    split_seed: int = field(0, help="seed of the held-out split of the pairs (the same seed holds out the same pairs)")
    eval_every: int = field(50, help="every N steps score the held-out pairs (also before the first step and at the end)")
    lora_dropout: float = inherited(0.0)  # the reference is the adapter switched off: dropout would only add noise

    def __post_init__(self) -> None:
        _one_of(self, "loss", DPO_LOSSES)
        _one_of(self, "pair_within", PAIR_WITHIN)
        if self.data is not None and self.rl_log:  # neither: an error when the run loads its pairs
            raise ValueError("give one source of pairs: data (hh:PATH or a preference JSONL) or rl_log "
                             "(episodes.jsonl of an RL run), not both (to replace a config file's data: --set data=null)")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.loss == "ipo" and self.label_smoothing:
            raise ValueError("label_smoothing applies to the sigmoid and robust losses, not ipo")
        if not 0 <= self.val_ratio < 1:
            raise ValueError(f"val_ratio must be in [0, 1), got {self.val_ratio}")
        if self.min_return_gap < 0 or not 0 < self.min_lr_ratio <= 1:
            raise ValueError("min_return_gap must be >= 0 and min_lr_ratio in (0, 1]")
        _at_least(self, 1, "max_steps", "batch_size", "eval_every", "save_every", "log_every", "max_length")
        _at_least(self, 0, "warmup_steps")
