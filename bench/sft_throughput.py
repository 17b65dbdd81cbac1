"""SFT training throughput: our ``SFTAgent.learn`` against TRL's ``SFTTrainer``, and batch 32 vs 1. Prints JSON.

    python bench/sft_throughput.py                       # 5-12 minutes on the shared 2-core machine (load-dependent)
    python bench/sft_throughput.py --rounds 1 --steps 10 --answers 100   # quick look
    python bench/sft_throughput.py --device cuda --model-shape qwen2.5-0.5b --lora-r 16 --skip-batch-epochs

``--model-shape`` trains a randomly initialised model of a published shape (``bench/model_shapes.py``:
Qwen2.5-0.5B / 1.5B, with a local tokenizer, ``--shape-tokenizer``) instead of the built-in one: the
speed of the real checkpoint without a download. ``--device cuda``: both sides on the GPU (bf16
compute: ours through its autocast, TRL through ``bf16=True``), and each side's peak GPU memory
(``torch.cuda.max_memory_allocated``, reset before each side's run) is reported.

Needs the official lists in ``../shared/data/wordle`` (or ``--data DIR``) and, for the peer,
``pip install trl datasets`` (in the ``bench`` extra); without TRL the peer is reported as skipped.

Both sides train the same model, ``LMPolicy.default(seed=0)`` (freshly built for every run, fp32 on
CPU), with its character tokenizer and chat template, on the same data: the Wordle expert solver's
demonstrations (``prompt_style="compact"``, ``think="none"``, one single-turn conversation per turn)
for ``--answers`` official answers drawn with seed 0, at the same batch size (64) and max length
(1024), loss on assistant tokens only.

- Ours: the real ``SFTAgent.learn`` (``val_ratio=0`` so no validation, no run folder so no
  checkpoints, logging only at the last step), timed through its ``callback``.
- TRL: ``SFTTrainer`` with ``assistant_only_loss=True`` (our template has ``{% generation %}``
  markers), ``packing=False``, ``padding_free=False``, ``gradient_checkpointing=False``,
  ``bf16=False``, ``fp16=False``, ``use_cpu=True``, no eval, no saving, ``logging_steps`` past the
  end, ``dataloader_num_workers=0``, ``report_to=[]``; everything else (optimizer
  ``adamw_torch_fused``, random sampler) is TRL's default. Timed through a ``TrainerCallback``.

Timing: ``--warmup`` optimizer steps, then the wall time of the next ``--steps`` steps (from the
end of step ``warmup`` to the end of step ``warmup + steps``), so tokenization / dataset
preparation, model and optimizer setup and the first steps are excluded. Rounds alternate which
side goes first. On a shared machine the background load swings within a minute, so single
rounds can be off by 5x either way: ``ratio_tokens_per_s`` is best-of-rounds ours / best-of-rounds
TRL (each side's least-disturbed round); the median of per-round ratios and the ratio of tokens
per CPU-second of this process (``time.process_time``, less sensitive to other jobs) are reported too.

Tokens: ``tokens`` = non-pad tokens (``attention_mask`` sum) of the batches actually fed in the
timed steps, the same definition on both sides (each side's batches are recorded as they are built:
our ``masked_loss`` input, TRL's collator output). Assistant (loss) tokens and the padding share are
reported too: our length-bucketed batches carry less padding than TRL's random batches, and that
difference is part of what is measured.

Batch 32 vs batch 1 (ours only): ``learn`` with ``--warmup`` (batch 32) or 20 (batch 1) untimed
steps, then one epoch's worth of steps, ``ceil(N / batch)`` for N conversations, timed (these
steps run from inside the first epoch into the second, so they cover an epoch's number of
conversations rather than exactly each conversation once). Goal: >= 5x.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

import agents.algos.sft as sft
from agents.policies.lm.policy import LMPolicy
from agents.policies.lm.tokenizer import has_generation_marks
from bench.model_shapes import DEFAULT_TOKENIZER, SHAPES, describe, shaped_policy
from envs.wordle.demos import wordle_solver_conversations

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wordle"
GOAL_RATIO_VS_TRL = 1.3
GOAL_BATCH_SPEEDUP = 5.0
warnings.filterwarnings("ignore", category=FutureWarning)


def demonstrations(data: Path, answers: int) -> list[list[dict[str, str]]]:
    words = [w.strip() for w in (data / "answers.txt").read_text(encoding="utf-8-sig").split() if w.strip()]
    picked = sorted(np.random.default_rng(0).choice(words, size=min(answers, len(words)), replace=False).tolist())
    env_kwargs = {"prompt_style": "compact", "answers": str(data / "answers.txt"),
                  "allowed": str(data / "allowed_guesses.txt")}
    return wordle_solver_conversations(env_kwargs, answers=picked, think="none")


class StepClock:
    """End-of-step timestamps, 1-based: ``ends[k]`` is when optimizer step k finished."""

    def __init__(self) -> None:
        self.ends: dict[int, float] = {}
        self.cpu: dict[int, float] = {}

    def mark(self, step: int) -> None:
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()  # the step's kernels have run, not just been queued
        self.ends[step] = time.perf_counter()
        self.cpu[step] = time.process_time()


def window(clock: StepClock, fed: list[tuple[int, int, int]], first: int, last: int) -> dict[str, float]:
    """Throughput over optimizer steps first+1 .. last; ``fed[i]`` = (non-pad, assistant, padded) of batch i."""
    seconds = clock.ends[last] - clock.ends[first]
    cpu_seconds = clock.cpu[last] - clock.cpu[first]
    batches = fed[first:last]  # batch i (0-based) is consumed by step i + 1 (no accumulation)
    tokens = sum(b[0] for b in batches)
    assistant = sum(b[1] for b in batches)
    padded = sum(b[2] for b in batches)
    return {"seconds": seconds, "steps": last - first, "tokens": tokens, "assistant_tokens": assistant,
            "tokens_per_s": tokens / seconds, "assistant_tokens_per_s": assistant / seconds,
            "s_per_step": seconds / (last - first), "cpu_seconds": cpu_seconds,
            "tokens_per_cpu_s": tokens / cpu_seconds, "padding_share": 1 - tokens / max(padded, 1)}


# Set by --model / --model-shape / --shape-tokenizer / --lora-r / --device: both sides build the same.
MODEL: dict[str, Any] = {"name": None, "shape": None, "tokenizer": DEFAULT_TOKENIZER, "lora_r": 0, "device": "cpu"}


def make_policy(device: str | None = None) -> LMPolicy:
    """The model under test, freshly built: the built-in default, ``--model`` or ``--model-shape`` (+ LoRA)."""
    device = device or MODEL["device"]
    torch.manual_seed(0)
    if MODEL["shape"] is not None:
        policy = shaped_policy(MODEL["shape"], MODEL["tokenizer"], device)
    elif MODEL["name"] is None:
        policy = LMPolicy.default(seed=0, device=device)
    else:
        policy = LMPolicy.from_pretrained(MODEL["name"], device=device)
    if MODEL["lora_r"]:
        policy.enable_lora(MODEL["lora_r"], 2 * MODEL["lora_r"], 0.0)
    return policy


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


def run_ours(conversations: list, batch_size: int, max_length: int, warmup: int, steps: int) -> dict[str, float]:
    cuda_memory_reset()
    policy = make_policy()
    config = sft.SFTConfig(batch_size=batch_size, max_length=max_length, max_steps=warmup + steps, val_ratio=0.0,
                           log_every=10**9, eval_every=10**9, save_every=10**9, warmup_steps=1)
    agent = sft.SFTAgent(policy, config, run=None, seed=0)
    clock, fed = StepClock(), []
    original = sft.masked_loss

    def recording_loss(policy_: LMPolicy, batch: dict[str, torch.Tensor], module: Any = None):
        attention = batch["attention_mask"]
        fed.append((int(attention.sum()), int(batch["loss_mask"][:, 1:].sum()), attention.numel()))
        return original(policy_, batch, module)

    sft.masked_loss = recording_loss  # learn() looks the name up in its module at call time
    try:
        clock.mark(0)
        agent.learn(None, budget=warmup + steps, demos=conversations, callback=lambda step, _m: clock.mark(step))
    finally:
        sft.masked_loss = original
    return cuda_peak(window(clock, fed, warmup, warmup + steps))


def run_trl(conversations: list, batch_size: int, max_length: int, warmup: int, steps: int,
            scratch: Path) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    cuda_memory_reset()
    policy = make_policy()
    clock, fed = StepClock(), []
    # A template with {% generation %} marks (the built-in one) gives TRL assistant-only masks from
    # "messages"; one without (SmolLM2's ChatML) needs the prompt / completion form instead, the
    # same masks for these single-turn conversations.
    marks = has_generation_marks(policy.tokenizer)
    rows = [{"messages": c} for c in conversations] if marks else \
        [{"prompt": c[:-1], "completion": c[-1:]} for c in conversations]

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.mark(state.global_step)

    args = SFTConfig(
        output_dir=str(scratch), per_device_train_batch_size=batch_size, max_length=max_length,
        max_steps=warmup + steps, learning_rate=1e-3, assistant_only_loss=marks, packing=False,
        padding_free=False, gradient_checkpointing=False, bf16=MODEL["device"] != "cpu", fp16=False,
        use_cpu=MODEL["device"] == "cpu",
        eval_strategy="no", save_strategy="no", logging_steps=10**9, report_to=[], disable_tqdm=True,
        dataloader_num_workers=0, dataloader_pin_memory=False, seed=0)
    trainer = SFTTrainer(model=policy.model, args=args, processing_class=policy.tokenizer,
                         train_dataset=Dataset.from_list(rows),
                         callbacks=[Clock()])
    collate = trainer.data_collator

    def recording_collate(examples):
        batch = collate(examples)
        attention = batch["attention_mask"]
        fed.append((int(attention.sum()), int((batch["labels"][:, 1:] != -100).sum()), attention.numel()))
        return batch

    trainer.data_collator = recording_collate
    clock.mark(0)
    with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its summary dict; stdout is our JSON
        trainer.train()
    result: dict[str, Any] = window(clock, fed, warmup, warmup + steps)
    result["optim"] = str(getattr(args.optim, "value", args.optim))
    return cuda_peak(result)


def epoch_time(conversations: list, batch_size: int, max_length: int, warmup: int) -> dict[str, float]:
    """Our SFT: ``warmup`` untimed steps, then one epoch's worth (ceil(N / batch)) of steps timed."""
    per_epoch = math.ceil(len(conversations) / batch_size)
    result = run_ours(conversations, batch_size, max_length, warmup=warmup, steps=per_epoch)
    return {"batch_size": batch_size, "epoch_s": result["seconds"], "steps": per_epoch,
            "tokens_per_s": result["tokens_per_s"], "padding_share": result["padding_share"]}


def peak_memory(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each side's largest ``torch.cuda.max_memory_allocated`` over the rounds (nothing on CPU)."""
    peaks = {f"{side}_cuda_peak_allocated_mb": max(e[side]["cuda_peak_allocated_mb"] for e in rounds)
             for side in ("ours", "trl") if all("cuda_peak_allocated_mb" in e.get(side, {}) for e in rounds)}
    if len(peaks) == 2:
        peaks["ratio_cuda_peak_ours_over_trl"] = peaks["ours_cuda_peak_allocated_mb"] / peaks["trl_cuda_peak_allocated_mb"]
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with answers.txt, allowed_guesses.txt")
    parser.add_argument("--answers", type=int, default=300, help="official answers whose solver games are the data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=3, help="optimizer steps not timed")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per side per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-batch-epochs", action="store_true", help="skip the batch 32 vs batch 1 epochs")
    parser.add_argument("--model", default=None, help="a named model, .gguf or HF directory instead of the built-in one")
    parser.add_argument("--lora-r", type=int, default=0, help="train LoRA adapters of this rank (both sides; alpha 2r)")
    parser.add_argument("--model-shape", choices=sorted(SHAPES), default=None,
                        help="a randomly initialised model of this published shape (bench/model_shapes.py)")
    parser.add_argument("--shape-tokenizer", default=DEFAULT_TOKENIZER,
                        help="tokenizer of --model-shape: a local tokenizer directory or a named model")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both sides; bf16 compute on CUDA)")
    args = parser.parse_args()
    if args.model and args.model_shape:
        parser.error("--model and --model-shape are alternatives")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")
    MODEL.update(name=args.model, shape=args.model_shape, tokenizer=args.shape_tokenizer, lora_r=args.lora_r,
                 device=args.device)
    if not (args.data / "answers.txt").is_file():
        sys.exit(f"no {args.data / 'answers.txt'}: pass --data DIR with the official Wordle lists")

    start = time.perf_counter()
    conversations = demonstrations(args.data, args.answers)
    prep_s = time.perf_counter() - start
    probe = make_policy("meta" if args.model_shape else "cpu")  # tokenizer and parameter count only
    lengths = [len(probe.tokenizer.apply_chat_template(c, tokenize=True, return_dict=True)["input_ids"])
               for c in conversations]
    params = sum(p.numel() for p in probe.model.parameters())
    del probe

    try:
        import trl
        trl_version: str | None = trl.__version__
    except ImportError:
        trl_version = None

    rounds: list[dict[str, Any]] = []
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "sft_throughput_trl"
    for r in range(args.rounds):
        sides = ["ours", "trl"] if r % 2 == 0 else ["trl", "ours"]
        entry: dict[str, Any] = {"order": sides}
        for side in sides:
            if side == "ours":
                entry["ours"] = run_ours(conversations, args.batch_size, args.max_length, args.warmup, args.steps)
            elif trl_version is not None:
                entry["trl"] = run_trl(conversations, args.batch_size, args.max_length, args.warmup, args.steps,
                                       scratch)
        if "trl" in entry:
            entry["ratio_tokens_per_s"] = entry["ours"]["tokens_per_s"] / entry["trl"]["tokens_per_s"]
        rounds.append(entry)
        print(json.dumps({"round": r, **entry}), file=sys.stderr, flush=True)

    def median(side: str, key: str) -> float:
        return statistics.median(e[side][key] for e in rounds)

    def best(side: str, key: str) -> float:
        return max(e[side][key] for e in rounds)

    versus: dict[str, Any] = {
        **peak_memory(rounds),
        "ours_tokens_per_s_best": best("ours", "tokens_per_s"),
        "ours_tokens_per_s_median": median("ours", "tokens_per_s"),
        "ours_tokens_per_cpu_s_median": median("ours", "tokens_per_cpu_s"),
        "ours_assistant_tokens_per_s": median("ours", "assistant_tokens_per_s"),
        "ours_s_per_step": median("ours", "s_per_step"),
        "ours_padding_share": median("ours", "padding_share"),
    }
    if trl_version is not None:
        ratios = [e["ratio_tokens_per_s"] for e in rounds]
        ratio = best("ours", "tokens_per_s") / best("trl", "tokens_per_s")
        versus.update({
            "trl_tokens_per_s_best": best("trl", "tokens_per_s"),
            "trl_tokens_per_s_median": median("trl", "tokens_per_s"),
            "trl_tokens_per_cpu_s_median": median("trl", "tokens_per_cpu_s"),
            "trl_assistant_tokens_per_s": median("trl", "assistant_tokens_per_s"),
            "trl_s_per_step": median("trl", "s_per_step"),
            "trl_padding_share": median("trl", "padding_share"),
            "trl_optim": rounds[0]["trl"]["optim"],
            "ratio_tokens_per_s": ratio,
            "ratio_median_of_rounds": statistics.median(ratios),
            "ratio_rounds": [round(x, 3) for x in ratios],
            "ratio_tokens_per_cpu_s": median("ours", "tokens_per_cpu_s") / median("trl", "tokens_per_cpu_s"),
            "goal": GOAL_RATIO_VS_TRL,
            "met": ratio >= GOAL_RATIO_VS_TRL,
        })
    else:
        versus["trl"] = "skipped: pip install trl datasets"

    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "transformers": __import__("transformers").__version__, "trl": trl_version,
                    "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                    "load_average": list(os.getloadavg())},
        "model": {"name": args.model or (f"random {args.model_shape}" if args.model_shape else "LMPolicy.default(seed=0)"),
                  "lora_r": args.lora_r, "parameters": params,
                  "dtype": "float32" if args.device == "cpu" else "bf16 compute (autocast / bf16=True)",
                  "device": args.device,
                  **({"shape": describe(args.model_shape, args.shape_tokenizer)} if args.model_shape else {})},
        "data": {"source": "wordle solver, compact prompt, think=none", "answers": args.answers,
                 "conversations": len(conversations), "tokens_mean": statistics.mean(lengths),
                 "tokens_max": max(lengths), "prep_s": prep_s},
        "settings": {"batch_size": args.batch_size, "max_length": args.max_length, "warmup_steps": args.warmup,
                     "timed_steps": args.steps, "rounds": args.rounds,
                     "tokens": "non-pad tokens of the batches fed in the timed steps"},
        "vs_trl": versus,
        "rounds": rounds,
    }
    if not args.skip_batch_epochs:
        big = epoch_time(conversations, 32, args.max_length, args.warmup)
        one = epoch_time(conversations, 1, args.max_length, 20)
        report["batch32_vs_batch1"] = {"batch32": big, "batch1": one, "speedup_per_epoch": one["epoch_s"] / big["epoch_s"],
                                       "goal": GOAL_BATCH_SPEEDUP,
                                       "met": one["epoch_s"] / big["epoch_s"] >= GOAL_BATCH_SPEEDUP}
    report["machine"]["load_average_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
