"""GRPO throughput: our ``GRPOAgent.learn`` against TRL's ``GRPOTrainer``; GRPO-LoRA vs SFT peak memory. Prints JSON.

    python bench/grpo_throughput.py                    # 12 minutes on the shared 2-core machine at load ~3
    python bench/grpo_throughput.py --quick            # 1 round of 1 + 2 steps, 1 memory step per child
    python bench/grpo_throughput.py --skip-throughput  # only the peak-memory subprocesses (--skip-memory: the reverse)
    python bench/grpo_throughput.py --device cuda --model-shape qwen2.5-0.5b --lora-r 16 --skip-memory

``--model-shape`` trains a randomly initialised model of a published shape (``bench/model_shapes.py``:
Qwen2.5-0.5B / 1.5B, with a local tokenizer, ``--shape-tokenizer``) instead of the built-in one: the
speed of the real checkpoint without a download. On CUDA each side's throughput run also reports its
peak GPU memory (``torch.cuda.max_memory_allocated``, reset before the side's run).

Everything runs at the priority it is started with: when other jobs hold both cores, a run takes
hours; then trust the per-CPU-second numbers, not the wall-clock ones.

Needs GSM8K in ``../shared/data/gsm8k/train.jsonl`` (or ``--data FILE``) and, for the peer,
``pip install trl datasets`` (the ``bench`` extra); without TRL the peer is reported as skipped.

**Throughput.** Both sides train the same model, ``LMPolicy.default(seed=0)`` (built fresh for every
run, fp32, ``--device``, default CPU), with its character tokenizer and chat template, on the same
single-step task with the same settings:

- Task: GSM8K-v0 prompts (the env's question + "Let's think step by step ..." instruction, as one
  user message) and the GSM8K reward (1 if the strict ``#### n`` answer is right) plus a dense
  shaping term, ``0.1 x`` the share of digit characters in the completion. The shaping is needed
  because an untrained model never answers right: with the exact-match reward alone every group
  has equal rewards, our agent skips such groups (zero advantage, no forward/backward at all) while
  TRL still runs its update with zero advantages, which would flatter our number. With the shaping
  every group has spread, so both sides train on all completions. Ours gets it from a
  ``gym.Wrapper`` around ``gym.make("envs:GSM8K-v0", data_path=...)``, TRL from a reward function
  computing the same number from the completion text and the reference answer.
- The same prompts in the same order: the bench replays our agent's prompt draw
  (``GRPOAgent.prompt_specs`` -> env ``reset(seed)`` -> problem index) and gives TRL those
  problems as its dataset, in that order, with ``shuffle_dataset=False``.
- ``--prompts-per-step`` (8) prompts x G = ``--group-size`` (8) completions per optimizer step;
  ``mu`` / ``num_iterations`` = 1; micro-batches of ``--micro-batch-size`` (32) completions with
  gradient accumulation to one optimizer step (TRL: ``per_device_train_batch_size`` = micro-batch,
  ``gradient_accumulation_steps`` = prompts x G / micro-batch, so it generates once per step for
  all 64 completions, as ours does).
- Exactly ``--max-new-tokens`` (64) completion tokens each: end-of-turn is suppressed until then
  (``min_new_tokens`` = max: ours through ``model.generation_config.min_new_tokens``, which
  ``generate`` merges into the policy's own config; TRL through ``generation_kwargs``). Both
  report their mean completion length, so this is checked, not assumed.
- Sampling: temperature 1, top-p 1, top-k off; loss: PPO-clipped token-level surrogate, epsilon 0.2,
  token-mean over the step (ours ``loss_agg="token-mean"``; TRL ``loss_type="dapo"``), group-std
  advantages (ours ``estimator="grpo"``; TRL ``scale_rewards="group"``), ``--beta`` (0: no reference
  model on either side), learning rate 1e-5 constant, AdamW betas (0.9, 0.99), grad-norm clip 1.
- Ours: the real ``GRPOAgent.learn`` with no run folder (no TensorBoard, no checkpoints, no
  episodes.jsonl), timed through its ``callback``. Generation goes through ``play_episodes``, which
  builds one env per episode of the batch every step (as in any training run).
- TRL: ``GRPOTrainer`` with ``use_vllm=False``, ``gradient_checkpointing=False`` (TRL's default is
  True, ours has none), ``bf16`` on CUDA only (float32 weights with bf16 autocast, as ours runs
  there; fp32 on CPU like ours), ``fp16=False``, ``use_cpu`` on CPU,
  ``log_completions=False``, no eval, no saving, ``logging_steps`` past the end, ``report_to=[]``,
  ``dataloader_num_workers=0``; everything else is TRL's default (``adamw_torch_fused``, its
  fused LM head for log-probs, its per-token entropy metric). Timed through a ``TrainerCallback``.
- Timing: ``--warmup`` (1) optimizer steps untimed, then the wall time of the next ``--steps`` (3)
  (end of step ``warmup`` to end of step ``warmup + steps``). ``episodes_per_s`` = completions
  trained per second. Rounds alternate which side goes first; ``ratio_episodes_per_s`` = best round
  of ours / best round of TRL (shared machines: each side's least-disturbed round), plus the median
  of per-round ratios and the ratio per CPU-second of this process. Goal: >= 1.0. Each side's
  time is split into generation (ours: ``play_episodes``, env building included; TRL:
  ``_generate_and_score_completions``) and the rest (update), in wall and process-CPU seconds
  (CPU seconds hold up better when other jobs take the cores); ours also reports the CPU time
  spent building envs, and ``ratio_per_cpu_s_without_env_build`` estimates the ratio without it.

**Peak memory.** Fresh subprocesses (so peaks do not mix), same model (``--memory-model-config``
overrides the built-in size, default none), ``--memory-steps`` (2) optimizer steps each:

- SFT: ``SFTAgent.learn`` with its defaults (full fine-tuning, batch 64, max length 1024, AdamW) on
  GSM8K worked solutions (``data="solutions"``, the first 512 problems).
- GRPO-LoRA: ``GRPOAgent.learn`` with its defaults (8 prompts x 8, micro-batch 32, 64 new tokens)
  and ``lora_r=8``, ``beta=0.04`` (the KL reference is the adapter-disabled base, so its forward
  is in the peak) on ``GSM8K-v0`` with the shaped reward above (no ``min_new_tokens`` here).
- CUDA: ``torch.cuda.max_memory_allocated``. CPU: peak RSS (``VmHWM``) of the child (whole process:
  Python, torch, data, envs, model, activations), measured twice. With glibc's default allocator
  the RSS high-water mark depends on how freed activation memory is retained in the heap (its
  mmap threshold grows as large blocks are freed), which inflated GRPO's peak by about 2 GB in
  our runs; so the headline (``ratio_grpo_lora_over_sft``) runs both children with
  ``MALLOC_MMAP_THRESHOLD_=131072`` (large blocks are mmapped and returned when freed: RSS
  follows live memory, the CPU analogue of ``max_memory_allocated``), and the glibc-default pair
  is reported as well. ``base_rss_mb`` is the RSS once imports are done and the model is built;
  ``train_rss_mb`` the increment above it. Goal: GRPO-LoRA peak <= 1.3x the SFT peak.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym
import torch

from agents.algos.grpo import GRPOAgent, GRPOConfig
from agents.policies.lm.policy import LMPolicy
from bench.model_shapes import DEFAULT_TOKENIZER, SHAPES, describe, shaped_policy
from envs.gsm8k.answer import extract_answer
from envs.gsm8k.env import GSM8KEnv

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
GOAL_RATIO_VS_TRL = 1.0
GOAL_MEMORY_RATIO = 1.3
DIGIT_SHAPING = 0.1  # weight of the dense digit-share term added to the GSM8K reward
# Weight per character of a completion-length term (--length-shaping; 0 unless set, or a shaped model):
# a random model with a BPE tokenizer rarely samples digits, so without it whole groups can tie and
# our agent would skip them while TRL trains on them.
SHAPING = {"length": 0.0}
SHAPED_MODEL_LENGTH_SHAPING = 1e-3
LEARNING_RATE = 1e-5
ADAM_BETAS = (0.9, 0.99)  # ours; TRL gets the same through adam_beta1 / adam_beta2
SFT_PROBLEMS = 512
MEMORY_LORA_R = 8
MEMORY_BETA = 0.04
# Allocations of at least this many bytes get their own mmap and go back to the OS when freed, so
# RSS follows live memory (setting the variable also turns off glibc's dynamic threshold).
MMAP_THRESHOLD = 128 * 1024
warnings.filterwarnings("ignore", category=FutureWarning)


# ------------------------------------------------------------------------------ the task
def digit_share(text: str) -> float:
    return sum(c.isdigit() for c in text) / max(len(text), 1)


def shaping(text: str) -> float:
    """The dense terms: digit share, and (``--length-shaping``) the completion's length in characters."""
    return DIGIT_SHAPING * digit_share(text) + SHAPING["length"] * len(text)


def shaped_reward(completion: str, reference: str) -> float:
    """The GSM8K reward (strict ``#### n`` answer == reference) plus the dense shaping terms."""
    return float(extract_answer(completion, "strict") == reference) + shaping(completion)


class ShapedGSM8K(gym.Wrapper):
    """GSM8K-v0 whose reward also carries the digit-share term (``reward_terms["digits"]``)."""

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        bonus = shaping(action if isinstance(action, str) else "")
        info = {**info, "reward_terms": {**info.get("reward_terms", {}), "digits": bonus}}
        return obs, float(reward) + bonus, terminated, truncated, info


def make_env_fn(data: Path) -> Callable[[], gym.Env]:
    import envs  # noqa: F401  (registers GSM8K-v0)

    def make() -> gym.Env:
        return ShapedGSM8K(gym.make("envs:GSM8K-v0", data_path=str(data)))

    return make


# --model / --model-shape / --shape-tokenizer / --lora-r: both sides build the same.
MODEL: dict[str, Any] = {"name": None, "shape": None, "tokenizer": DEFAULT_TOKENIZER, "lora_r": 0}


def make_policy(device: str, model_config: dict[str, Any], max_new_tokens: int | None) -> LMPolicy:
    """The model under test: the built-in model from seed 0 (float32 weights on every device),
    ``--model`` or ``--model-shape`` (+ LoRA of ``--lora-r``); ``max_new_tokens`` set: no end-of-turn
    before that many."""
    torch.manual_seed(0)
    if MODEL["shape"] is not None:
        policy = shaped_policy(MODEL["shape"], MODEL["tokenizer"], device)
    elif MODEL["name"] is None:
        policy = LMPolicy.default(seed=0, device=device, **model_config)
    else:
        policy = LMPolicy.from_pretrained(MODEL["name"], device=device)
    if MODEL["lora_r"]:
        policy.enable_lora(MODEL["lora_r"], 2 * MODEL["lora_r"], 0.0)
    if max_new_tokens is not None:
        # generate() fills every field the policy's fresh GenerationConfig leaves unset from here.
        base = policy.model.get_base_model() if policy.lora is not None else policy.model
        base.generation_config.min_new_tokens = max_new_tokens
    return policy


def grpo_config(args: argparse.Namespace, iterations: int) -> GRPOConfig:
    return GRPOConfig(iterations=iterations, prompts_per_step=args.prompts_per_step, group_size=args.group_size,
                      estimator="grpo", mu=1, beta=args.beta, learning_rate=LEARNING_RATE, temperature=1.0,
                      top_p=1.0, max_new_tokens=args.max_new_tokens, micro_batch_size=args.micro_batch_size,
                      loss_agg="token-mean", log_episodes=False, save_every=10**9)


def prompt_schedule(args: argparse.Namespace, iterations: int) -> list[int]:
    """GSM8K problem indices our agent draws, in order (``prompts_per_step`` per iteration)."""
    # The draw depends on the seed and the config only, so the small built-in model stands in.
    agent = GRPOAgent(LMPolicy.default(seed=0, device="cpu"), grpo_config(args, iterations), seed=0)
    env = GSM8KEnv(data_path=args.data)
    indices = []
    for iteration in range(iterations):
        for spec in agent.prompt_specs(iteration, None)[:: args.group_size]:
            indices.append(env.reset(seed=spec.seed, options=dict(spec.options) or None)[1]["index"])
    return indices


# ------------------------------------------------------------------------------ timing
class StepClock:
    """End-of-step wall and process-CPU timestamps, 1-based: ``ends[k]`` is when optimizer step k finished."""

    def __init__(self) -> None:
        self.ends: dict[int, float] = {}
        self.cpu: dict[int, float] = {}

    def mark(self, step: int) -> None:
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()  # the step's kernels have run, not just been queued
        self.ends[step] = time.perf_counter()
        self.cpu[step] = time.process_time()


class PhaseTimer:
    """Wall and process-CPU seconds of each call of one phase (generation: one call per optimizer step)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @contextlib.contextmanager
    def timing(self) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall.append(time.perf_counter() - wall)
            self.cpu.append(time.process_time() - cpu)


def window(clock: StepClock, first: int, last: int, episodes_per_step: int, new_tokens: int,
           generation: PhaseTimer, completion_lengths: list[float]) -> dict[str, float]:
    """Throughput over optimizer steps first+1 .. last; per-step lists are 0-based (step k -> index k-1)."""
    seconds = clock.ends[last] - clock.ends[first]
    cpu_seconds = clock.cpu[last] - clock.cpu[first]
    steps = last - first
    episodes = steps * episodes_per_step
    generation_s = sum(generation.wall[first:last])
    generation_cpu_s = sum(generation.cpu[first:last])
    return {"seconds": seconds, "steps": steps, "episodes": episodes, "episodes_per_s": episodes / seconds,
            "completion_tokens_per_s": episodes * new_tokens / seconds, "s_per_step": seconds / steps,
            "generation_s_per_step": generation_s / steps, "update_s_per_step": (seconds - generation_s) / steps,
            "cpu_seconds": cpu_seconds, "episodes_per_cpu_s": episodes / cpu_seconds,
            "cpu_s_per_step": cpu_seconds / steps, "generation_cpu_s_per_step": generation_cpu_s / steps,
            "update_cpu_s_per_step": (cpu_seconds - generation_cpu_s) / steps,
            "completion_tokens_mean": statistics.mean(completion_lengths[first:last])}


def cuda_memory_reset() -> None:
    """Free what an earlier run left and restart the peak counter (no-op without CUDA)."""
    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def cuda_peak(result: dict[str, Any]) -> dict[str, Any]:
    if torch.cuda.is_initialized():
        result["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def probe_policy() -> LMPolicy:
    """The model's tokenizer and parameter count (a shaped model is built on the meta device: no weights)."""
    if MODEL["shape"] is not None:
        return shaped_policy(MODEL["shape"], MODEL["tokenizer"], "meta")
    return make_policy("cpu", {}, None)


def run_ours(args: argparse.Namespace) -> dict[str, float]:
    import agents.algos.grpo

    cuda_memory_reset()
    total = args.warmup + args.steps
    policy = make_policy(args.device, {}, args.max_new_tokens)
    agent = GRPOAgent(policy, grpo_config(args, total), run=None, seed=0)
    clock, generation = StepClock(), PhaseTimer()
    lengths: list[float] = []
    trained: list[float] = []
    env_build_cpu = [0.0]  # of the current step
    env_build_per_step: list[float] = []
    make_env = make_env_fn(args.data)

    def timed_make_env() -> gym.Env:
        started = time.process_time()
        env = make_env()
        env_build_cpu[0] += time.process_time() - started
        return env

    def on_step(iteration: int, metrics: dict[str, float]) -> None:
        clock.mark(iteration)
        lengths.append(metrics["rollout/completion_tokens_mean"])
        trained.append(metrics["train/trained_episodes"])
        env_build_per_step.append(env_build_cpu[0])
        env_build_cpu[0] = 0.0

    original = agents.algos.grpo.play_episodes

    def timed_play_episodes(*a: Any, **k: Any) -> Any:
        with generation.timing():
            return original(*a, **k)

    agents.algos.grpo.play_episodes = timed_play_episodes  # learn() looks the name up in its module at call time
    try:
        torch.manual_seed(0)  # sampling draws from torch's global RNG
        clock.mark(0)
        agent.learn(timed_make_env, budget=total, callback=on_step)
    finally:
        agents.algos.grpo.play_episodes = original
    result = window(clock, args.warmup, total, args.prompts_per_step * args.group_size, args.max_new_tokens,
                    generation, lengths)
    result["env_build_cpu_s_per_step"] = statistics.mean(env_build_per_step[args.warmup:])
    result["trained_episodes_per_step"] = statistics.mean(trained[args.warmup:])
    return cuda_peak(result)


def run_trl(args: argparse.Namespace, schedule: list[int], scratch: Path) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    env = GSM8KEnv(data_path=args.data)
    rows = [{"prompt": [{"role": "user", "content": env.prompt(i)}], "reference": env.problems[i].answer}
            for i in schedule]

    def gsm8k_shaped(completions: list, reference: list[str], **_: Any) -> list[float]:
        return [shaped_reward(c[0]["content"], r) for c, r in zip(completions, reference, strict=True)]

    total = args.warmup + args.steps
    cuda_memory_reset()
    policy = make_policy(args.device, {}, None)  # TRL passes min_new_tokens itself
    clock, generation = StepClock(), PhaseTimer()
    lengths: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.mark(state.global_step)

    per_step = args.prompts_per_step * args.group_size
    config = TRLConfig(
        output_dir=str(scratch), per_device_train_batch_size=args.micro_batch_size,
        gradient_accumulation_steps=per_step // args.micro_batch_size, num_generations=args.group_size,
        max_completion_length=args.max_new_tokens, generation_kwargs={"min_new_tokens": args.max_new_tokens},
        temperature=1.0, top_p=1.0, top_k=0, beta=args.beta, num_iterations=1, epsilon=0.2,
        loss_type="dapo", scale_rewards="group", learning_rate=LEARNING_RATE, lr_scheduler_type="constant",
        adam_beta1=ADAM_BETAS[0], adam_beta2=ADAM_BETAS[1], weight_decay=0.0, max_grad_norm=1.0,
        max_steps=total, shuffle_dataset=False, use_vllm=False, gradient_checkpointing=False,
        bf16=args.device != "cpu", fp16=False, use_cpu=args.device == "cpu", log_completions=False,
        eval_strategy="no", save_strategy="no",
        logging_steps=10**9, report_to=[], disable_tqdm=True, dataloader_num_workers=0,
        dataloader_pin_memory=False, seed=0)
    trainer = GRPOTrainer(model=policy.model, reward_funcs=[gsm8k_shaped], args=config,
                          train_dataset=Dataset.from_list(rows), processing_class=policy.tokenizer,
                          callbacks=[Clock()])
    generate_and_score = trainer._generate_and_score_completions

    def timed_generate_and_score(inputs):
        with generation.timing():
            out = generate_and_score(inputs)
        lengths.append(float(out["completion_mask"].sum(dim=1).float().mean()))
        return out

    trainer._generate_and_score_completions = timed_generate_and_score
    torch.manual_seed(0)
    clock.mark(0)
    with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its summary dict; stdout is our JSON
        trainer.train()
    result: dict[str, Any] = window(clock, args.warmup, total, per_step, args.max_new_tokens, generation, lengths)
    result["optim"] = str(getattr(config.optim, "value", config.optim))
    return cuda_peak(result)


def same_prompt_ids(args: argparse.Namespace, schedule: list[int]) -> bool:
    """Whether TRL's chat-template tokenization of a prompt equals ours (``LMPolicy.encode_prompts``)."""
    policy = probe_policy()
    text = GSM8KEnv(data_path=args.data).prompt(schedule[0])
    theirs = policy.tokenizer.apply_chat_template(conversation=[[{"role": "user", "content": text}]],
                                                  add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(theirs["input_ids"][0]) == policy.encode_prompts([text])[0]


# ------------------------------------------------------------------------------ peak memory
def proc_status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc/self/status.

    Not ``ru_maxrss``: Linux carries that over from the parent across fork + exec, so a child of a
    big process reports at least the parent's RSS. VmHWM belongs to the child's own address space.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(args: argparse.Namespace) -> None:
    """Run one side's training for ``--memory-steps`` steps and print its peak memory as one JSON line."""
    from agents.algos.sft import SFTAgent, SFTConfig
    from envs.gsm8k.demos import gsm8k_solution_conversations

    model_config = json.loads(args.memory_model_config)
    policy = make_policy(args.device, model_config, None)
    cuda = policy.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    base = proc_status_mb("VmRSS")
    torch.manual_seed(0)
    started = time.perf_counter()
    if args.memory_child == "sft":
        config = SFTConfig(data="solutions", max_steps=args.memory_steps, val_ratio=0.0, log_every=10**9,
                           eval_every=10**9, save_every=10**9)
        conversations = gsm8k_solution_conversations({"data_path": str(args.data)})[:SFT_PROBLEMS]
        SFTAgent(policy, config, run=None, seed=0).learn(None, demos=conversations)
        settings = {"batch_size": config.batch_size, "max_length": config.max_length, "lora_r": 0,
                    "conversations": len(conversations)}
    else:
        config = GRPOConfig(iterations=args.memory_steps, lora_r=MEMORY_LORA_R, beta=MEMORY_BETA, log_episodes=False,
                            save_every=10**9)
        policy.enable_lora(config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
        GRPOAgent(policy, config, run=None, seed=0).learn(make_env_fn(args.data))
        settings = {"prompts_per_step": config.prompts_per_step, "group_size": config.group_size,
                    "micro_batch_size": config.micro_batch_size, "max_new_tokens": config.max_new_tokens,
                    "lora_r": config.lora_r, "beta": config.beta}
    peak = proc_status_mb("VmHWM")
    out = {"kind": args.memory_child, "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
           "peak_rss_mb": peak, "base_rss_mb": base, "train_rss_mb": peak - base,
           "seconds": time.perf_counter() - started, "parameters": policy.num_parameters(),
           "trainable_parameters": policy.num_parameters(trainable_only=True), "settings": settings}
    if cuda:
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out), flush=True)


def memory_pair(args: argparse.Namespace, fixed_mmap_threshold: bool) -> dict[str, Any]:
    """SFT and GRPO-LoRA peaks, each in a fresh subprocess, and their ratio."""
    env = dict(os.environ)
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if fixed_mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    results: dict[str, Any] = {}
    for kind in ("sft", "grpo"):
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", kind, "--data", str(args.data),
                   "--device", args.device, "--memory-steps", str(args.memory_steps),
                   "--length-shaping", str(args.length_shaping),
                   "--memory-model-config", args.memory_model_config, *(["--model", args.model] if args.model else []),
                   *(["--model-shape", args.model_shape, "--shape-tokenizer", args.shape_tokenizer]
                     if args.model_shape else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise RuntimeError(f"memory child {kind!r} failed with exit status {done.returncode}")
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps({"memory": results[kind], "fixed_mmap_threshold": fixed_mmap_threshold}),
              file=sys.stderr, flush=True)
    key = "cuda_peak_allocated_mb" if args.device.startswith("cuda") else "peak_rss_mb"
    results["ratio_grpo_lora_over_sft"] = results["grpo"][key] / results["sft"][key]
    results["ratio_train_increment"] = results["grpo"]["train_rss_mb"] / results["sft"]["train_rss_mb"]
    return results


def measure_memory(args: argparse.Namespace) -> dict[str, Any]:
    if args.device.startswith("cuda"):  # the CUDA caching allocator's own counter; glibc does not matter
        pair = memory_pair(args, fixed_mmap_threshold=False)
        ratio = pair["ratio_grpo_lora_over_sft"]
        return {"measure": "torch.cuda.max_memory_allocated", "runs": pair, "ratio_grpo_lora_over_sft": ratio,
                "goal": GOAL_MEMORY_RATIO, "met": ratio <= GOAL_MEMORY_RATIO}
    fixed = memory_pair(args, fixed_mmap_threshold=True)
    default = memory_pair(args, fixed_mmap_threshold=False)
    ratio = fixed["ratio_grpo_lora_over_sft"]
    return {"measure": "peak RSS (VmHWM) of each subprocess",
            "live_memory": {"malloc": f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}", **fixed},
            "glibc_default": {"malloc": "glibc default (dynamic mmap threshold)", **default},
            "ratio_grpo_lora_over_sft": ratio,
            "ratio_grpo_lora_over_sft_glibc_default": default["ratio_grpo_lora_over_sft"],
            "goal": GOAL_MEMORY_RATIO, "met": ratio <= GOAL_MEMORY_RATIO}


# ------------------------------------------------------------------------------ main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Settings both sides share are listed in the module docstring.")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="GSM8K JSONL (question/answer per line)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both sides: fp32 on CPU; float32 weights + bf16 autocast on CUDA)")
    parser.add_argument("--quick", action="store_true", help="1 round, 1 warm-up + 2 timed steps, 1 memory step")
    parser.add_argument("--prompts-per-step", type=int, default=8, help="GSM8K problems per optimizer step")
    parser.add_argument("--group-size", type=int, default=8, help="G: completions per prompt")
    parser.add_argument("--micro-batch-size", type=int, default=32, help="completions per forward/backward")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="every completion is exactly this long")
    parser.add_argument("--beta", type=float, default=0.0, help="KL coefficient (0: no reference model)")
    parser.add_argument("--warmup", type=int, default=1, help="optimizer steps not timed")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per side per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating which side goes first")
    parser.add_argument("--memory-steps", type=int, default=2, help="optimizer steps of each memory subprocess")
    parser.add_argument("--memory-model-config", default="{}", metavar="JSON",
                        help="LlamaConfig overrides for the memory runs, e.g. '{\"hidden_size\": 384}'")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--skip-throughput", action="store_true", help="only the peak-memory subprocesses")
    parser.add_argument("--model", default=None, help="a named model, .gguf or HF directory instead of the built-in one")
    parser.add_argument("--lora-r", type=int, default=0, help="train LoRA adapters of this rank (both sides; alpha 2r)")
    parser.add_argument("--model-shape", choices=sorted(SHAPES), default=None,
                        help="a randomly initialised model of this published shape (bench/model_shapes.py)")
    parser.add_argument("--shape-tokenizer", default=DEFAULT_TOKENIZER,
                        help="tokenizer of --model-shape: a local tokenizer directory or a named model")
    parser.add_argument("--length-shaping", type=float, default=None,
                        help="reward per completion character (default 0; 1e-3 with --model-shape)")
    parser.add_argument("--memory-child", choices=("sft", "grpo"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model and args.model_shape:
        parser.error("--model and --model-shape are alternatives")
    MODEL.update(name=args.model, shape=args.model_shape, tokenizer=args.shape_tokenizer, lora_r=args.lora_r)
    if args.length_shaping is None:
        args.length_shaping = SHAPED_MODEL_LENGTH_SHAPING if args.model_shape else 0.0
    SHAPING["length"] = args.length_shaping
    if args.quick:
        args.rounds, args.warmup, args.steps, args.memory_steps = 1, 1, 2, 1
    try:
        if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
            parser.exit(2, f"error: --device {args.device}: CUDA is not available here\n")
    except RuntimeError as err:
        parser.exit(2, f"error: --device {args.device!r} is not a torch device ({err})\n")
    if not args.data.is_file():
        parser.exit(2, f"error: no GSM8K data at {args.data}: pass --data FILE (JSONL with question/answer)\n")
    try:
        model_config = json.loads(args.memory_model_config)
    except json.JSONDecodeError as err:
        parser.exit(2, f"error: --memory-model-config is not JSON ({err})\n")
    if not isinstance(model_config, dict):
        parser.exit(2, "error: --memory-model-config must be a JSON object of LlamaConfig fields\n")
    positive = ("prompts_per_step", "micro_batch_size", "max_new_tokens", "steps", "rounds", "memory_steps")
    for name in positive:
        if getattr(args, name) < 1:
            parser.exit(2, f"error: --{name.replace('_', '-')} must be >= 1\n")
    if args.group_size < 2 or args.warmup < 0 or args.beta < 0:
        parser.exit(2, "error: --group-size must be >= 2, --warmup and --beta >= 0\n")
    if (args.prompts_per_step * args.group_size) % args.micro_batch_size:
        parser.exit(2, "error: prompts-per-step x group-size must be a multiple of --micro-batch-size "
                       "(TRL accumulates whole micro-batches into one optimizer step)\n")
    return args


def throughput(args: argparse.Namespace, trl_version: str | None) -> dict[str, Any]:
    """Both sides, ``--rounds`` times (alternating who goes first): task, settings, summary, rounds."""
    total = args.warmup + args.steps
    schedule = prompt_schedule(args, total)
    probe = probe_policy()
    env = GSM8KEnv(data_path=args.data)
    prompt_lengths = [len(ids) for ids in probe.encode_prompts([env.prompt(i) for i in schedule])]
    del probe

    rounds: list[dict[str, Any]] = []
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "grpo_throughput_trl"
    for r in range(args.rounds):
        sides = ["ours", "trl"] if r % 2 == 0 else ["trl", "ours"]
        entry: dict[str, Any] = {"order": sides}
        for side in sides:
            if side == "ours":
                entry["ours"] = run_ours(args)
            elif trl_version is not None:
                entry["trl"] = run_trl(args, schedule, scratch)
        if "trl" in entry:
            entry["ratio_episodes_per_s"] = entry["ours"]["episodes_per_s"] / entry["trl"]["episodes_per_s"]
        rounds.append(entry)
        print(json.dumps({"round": r, **entry}), file=sys.stderr, flush=True)

    def median(side: str, key: str) -> float:
        return statistics.median(e[side][key] for e in rounds)

    def best(side: str, key: str) -> float:
        return max(e[side][key] for e in rounds)

    per_side = ("s_per_step", "generation_s_per_step", "update_s_per_step", "cpu_s_per_step",
                "generation_cpu_s_per_step", "update_cpu_s_per_step", "completion_tokens_mean")
    peaks = {f"{side}_cuda_peak_allocated_mb": max(e[side]["cuda_peak_allocated_mb"] for e in rounds)
             for side in ("ours", "trl") if all("cuda_peak_allocated_mb" in e.get(side, {}) for e in rounds)}
    if len(peaks) == 2:
        peaks["ratio_cuda_peak_ours_over_trl"] = peaks["ours_cuda_peak_allocated_mb"] / peaks["trl_cuda_peak_allocated_mb"]
    versus: dict[str, Any] = {
        **peaks,
        "ours_episodes_per_s_best": best("ours", "episodes_per_s"),
        "ours_episodes_per_s_median": median("ours", "episodes_per_s"),
        "ours_episodes_per_cpu_s_median": median("ours", "episodes_per_cpu_s"),
        **{f"ours_{key}": median("ours", key) for key in per_side},
        "ours_env_build_cpu_s_per_step": median("ours", "env_build_cpu_s_per_step"),
        # Below episodes_per_step: groups with equal rewards were skipped (TRL trains on them all).
        "ours_trained_episodes_per_step": median("ours", "trained_episodes_per_step"),
    }
    if trl_version is not None:
        ratios = [e["ratio_episodes_per_s"] for e in rounds]
        ratio = best("ours", "episodes_per_s") / best("trl", "episodes_per_s")
        versus.update({
            "trl_episodes_per_s_best": best("trl", "episodes_per_s"),
            "trl_episodes_per_s_median": median("trl", "episodes_per_s"),
            "trl_episodes_per_cpu_s_median": median("trl", "episodes_per_cpu_s"),
            **{f"trl_{key}": median("trl", key) for key in per_side},
            "trl_optim": rounds[0]["trl"]["optim"],
            "ratio_episodes_per_s": ratio,
            "ratio_median_of_rounds": statistics.median(ratios),
            "ratio_rounds": [round(x, 3) for x in ratios],
            "ratio_episodes_per_cpu_s": median("ours", "episodes_per_cpu_s") / median("trl", "episodes_per_cpu_s"),
            # What-if: our CPU time per step without building the GSM8K envs (an estimate, not a run).
            "ratio_per_cpu_s_without_env_build": median("trl", "cpu_s_per_step")
            / (median("ours", "cpu_s_per_step") - median("ours", "env_build_cpu_s_per_step")),
            "goal": GOAL_RATIO_VS_TRL,
            "met": ratio >= GOAL_RATIO_VS_TRL,
        })
    else:
        versus["trl"] = "skipped: pip install trl datasets"
    return {
        "task": {"env": "GSM8K-v0 prompts (train split)", "reward": f"strict answer == reference + "
                 f"{DIGIT_SHAPING} x digit share of the completion + {SHAPING['length']} x its length in characters",
                 "data": str(args.data),
                 "prompt_tokens_mean": statistics.mean(prompt_lengths), "prompt_tokens_max": max(prompt_lengths),
                 "same_prompt_ids_as_trl": same_prompt_ids(args, schedule) if trl_version else None},
        "settings": {"prompts_per_step": args.prompts_per_step, "group_size": args.group_size,
                     "episodes_per_step": args.prompts_per_step * args.group_size,
                     "micro_batch_size": args.micro_batch_size, "max_new_tokens": args.max_new_tokens,
                     "min_new_tokens": args.max_new_tokens, "temperature": 1.0, "top_p": 1.0, "beta": args.beta,
                     "mu": 1, "epsilon": 0.2, "learning_rate": LEARNING_RATE, "warmup_steps": args.warmup,
                     "timed_steps": args.steps, "rounds": args.rounds,
                     "episodes": "completions trained in the timed steps"},
        "vs_trl": versus,
        "rounds": rounds,
    }


def main() -> None:
    args = parse_args()
    if args.memory_child:
        memory_child(args)
        return
    try:
        import trl
        trl_version: str | None = trl.__version__
    except ImportError:
        trl_version = None

    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "transformers": __import__("transformers").__version__, "trl": trl_version,
                    "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                    "load_average": list(os.getloadavg())},
        "model": {"name": args.model or (f"random {args.model_shape}" if args.model_shape else "LMPolicy.default(seed=0)"),
                  "lora_r": args.lora_r, "parameters": probe_policy().num_parameters(),
                  "dtype": "float32" if args.device == "cpu" else "bf16 compute (autocast / bf16=True)",
                  "device": args.device,
                  **({"shape": describe(args.model_shape, args.shape_tokenizer)} if args.model_shape else {})},
    }
    if not args.skip_throughput:
        report |= throughput(args, trl_version)
    if not args.skip_memory:
        report["memory"] = measure_memory(args)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
