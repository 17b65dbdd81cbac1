"""DPO training throughput: our ``DPOAgent.learn`` against TRL's ``DPOTrainer`` on the same HH pairs. Prints JSON.

    python bench/dpo_throughput.py                                   # built-in model, ~5 minutes on 2 busy cores
    python bench/dpo_throughput.py --model smollm2-135m-instruct --lora-r 16 --batch-size 4 --rounds 1

Needs the HH-RLHF sample in ``../shared/data/hh`` (or ``--data FILE``) and, for the peer,
``pip install trl datasets`` (in the ``bench`` extra); without TRL the peer is reported as skipped.

Both sides train the same model, freshly built for every run (``LMPolicy.default(seed=0)``, or
``--model`` with optional LoRA adapters of rank ``--lora-r``), fp32 on the CPU, with its tokenizer
and chat template, on the same pairs: the HH rows that fit a prompt + final reply shape
(``agents.core.demonstrations.hh_preferences``), given to TRL in its conversational form (prompt
messages, one assistant message per side), at the same batch size (pairs per optimizer step), the
same ``max_length`` (prompt + reply, the reply cut from the right; pairs whose prompt fills it
dropped by both), the same loss (sigmoid, beta 0.1), learning rate and AdamW.

- Ours: the real ``DPOAgent.learn`` (``val_ratio=0`` so no held-out scoring, no run folder so no
  checkpoints, logging only at the last step), timed through its ``callback``. Its reference is a
  frozen copy of the starting weights (LoRA: the adapter switched off). It caches each pair's
  reference log-probs, but the timed steps see every pair once (fewer steps than an epoch), so the
  cache never saves a forward pass here.
- TRL: ``DPOTrainer`` with ``ref_model`` a frozen copy of the same starting weights (TRL would
  reload the reference from the model's hub id, which the built-in model has none of; with LoRA
  ``ref_model=None``: the adapter switched off), ``precompute_ref_log_probs=False``,
  ``gradient_checkpointing=False``, ``bf16=False``, ``use_cpu=True``, no eval, no saving,
  ``logging_steps`` past the end, ``dataloader_num_workers=0``, ``report_to=[]``; everything else
  (optimizer ``adamw_torch_fused``, random sampler, dropout disabled) is TRL's default. Timed
  through a ``TrainerCallback``.

Timing: ``--warmup`` optimizer steps, then the wall time of the next ``--steps`` steps, so
tokenisation, model / optimizer / reference setup and the first steps are excluded. Rounds
alternate which side goes first; ``ratio_pairs_per_s`` is best-of-rounds ours / best-of-rounds
TRL (each side's least-disturbed round on a shared machine), with the median of per-round ratios
and the ratio per CPU-second of this process beside it. ``tokens`` = non-pad tokens of the
policy's training forward passes in the timed steps (both sides score the chosen and rejected
sequences of a batch in one forward): our length-bucketed batches pad less than TRL's random ones,
and that is part of what is measured. Goal: ours / TRL >= 1.0 pairs per second.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import agents.algos.dpo as dpo
from agents.algos.configs import DPOConfig
from agents.core.demonstrations import PreferenceData, hh_preferences
from agents.policies.lm.policy import LMPolicy

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh" / "harmless-base-test-500.jsonl"
GOAL_RATIO_VS_TRL = 1.0
LEARNING_RATE, BETA = 1e-5, 0.1
warnings.filterwarnings("ignore", category=FutureWarning)


class StepClock:
    """End-of-step timestamps, 1-based: ``ends[k]`` is when optimizer step k finished."""

    def __init__(self) -> None:
        self.ends: dict[int, float] = {}
        self.cpu: dict[int, float] = {}

    def mark(self, step: int) -> None:
        self.ends[step] = time.perf_counter()
        self.cpu[step] = time.process_time()


def window(clock: StepClock, fed: list[tuple[int, int]], first: int, last: int, batch_size: int) -> dict[str, float]:
    """Throughput over optimizer steps first+1 .. last; ``fed[i]`` = (non-pad, padded) tokens of batch i."""
    seconds = clock.ends[last] - clock.ends[first]
    cpu_seconds = clock.cpu[last] - clock.cpu[first]
    batches = fed[first:last]  # training forward i (0-based) is step i + 1's
    tokens, padded = sum(b[0] for b in batches), sum(b[1] for b in batches)
    pairs = batch_size * (last - first)
    return {"seconds": seconds, "steps": last - first, "pairs": pairs, "pairs_per_s": pairs / seconds,
            "tokens": tokens, "tokens_per_s": tokens / seconds, "s_per_step": seconds / (last - first),
            "cpu_seconds": cpu_seconds, "pairs_per_cpu_s": pairs / cpu_seconds,
            "padding_share": 1 - tokens / max(padded, 1)}


MODEL: dict[str, Any] = {"name": None, "lora_r": 0}  # set by --model / --lora-r: both sides build the same


def make_policy() -> LMPolicy:
    """The model under test, freshly built: the built-in default, or ``--model`` (+ LoRA)."""
    torch.manual_seed(0)
    policy = LMPolicy.default(seed=0) if MODEL["name"] is None else LMPolicy.from_pretrained(MODEL["name"], device="cpu")
    if MODEL["lora_r"]:
        policy.enable_lora(MODEL["lora_r"], 2 * MODEL["lora_r"], 0.0)
    return policy


def run_ours(data: PreferenceData, batch_size: int, max_length: int, warmup: int, steps: int) -> dict[str, Any]:
    policy = make_policy()
    config = DPOConfig(data="bench", batch_size=batch_size, max_length=max_length, max_steps=warmup + steps,
                       val_ratio=0.0, log_every=10**9, eval_every=10**9, save_every=10**9, warmup_steps=1,
                       learning_rate=LEARNING_RATE, beta=BETA, lora_r=MODEL["lora_r"])
    pairs = dpo.tokenize_pairs(policy.tokenizer, data, max_length)
    agent = dpo.DPOAgent(policy, config, run=None, seed=0)
    clock, fed = StepClock(), []
    original = dpo.side_logprobs

    def recording(policy_: LMPolicy, batch: Any, module: Any = None) -> Any:
        if torch.is_grad_enabled():  # the policy's training forward, not the reference's
            rows = dpo.pair_rows(batch)
            lengths = [len(t.prompt_ids) + len(t.completion_ids) for t, _ in rows]
            fed.append((sum(lengths), max(lengths) * len(lengths)))
        return original(policy_, batch, module)

    dpo.side_logprobs = recording  # learn() looks the name up in its module at call time
    try:
        clock.mark(0)
        agent.learn(None, budget=warmup + steps, demos=pairs, callback=lambda step, _m: clock.mark(step))
    finally:
        dpo.side_logprobs = original
    return {**window(clock, fed, warmup, warmup + steps, batch_size), "pairs_available": len(pairs.pairs)}


def run_trl(data: PreferenceData, batch_size: int, max_length: int, warmup: int, steps: int,
            scratch: Path) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    policy = make_policy()
    reference = None if MODEL["lora_r"] else copy.deepcopy(policy.model).eval().requires_grad_(False)
    clock, fed = StepClock(), []
    rows = [{"prompt": p.prompt, "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]} for p in data.pairs]

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.mark(state.global_step)

    args = TRLDPOConfig(
        output_dir=str(scratch), per_device_train_batch_size=batch_size, max_length=max_length,
        max_steps=warmup + steps, learning_rate=LEARNING_RATE, beta=BETA, loss_type=["sigmoid"],
        precompute_ref_log_probs=False, gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=True,
        eval_strategy="no", save_strategy="no", logging_steps=10**9, report_to=[], disable_tqdm=True,
        dataloader_num_workers=0, dataloader_pin_memory=False, seed=0, lr_scheduler_type="constant_with_warmup",
        warmup_steps=1)
    trainer = DPOTrainer(model=policy.model, ref_model=reference, args=args, processing_class=policy.tokenizer,
                         train_dataset=Dataset.from_list(rows), callbacks=[Clock()])
    available = len(trainer.train_dataset)
    collate = trainer.data_collator

    def recording_collate(examples):
        batch = collate(examples)
        attention = batch["attention_mask"]
        fed.append((int(attention.sum()), attention.numel()))
        return batch

    trainer.data_collator = recording_collate
    clock.mark(0)
    with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its summary dict; stdout is our JSON
        trainer.train()
    result: dict[str, Any] = window(clock, fed, warmup, warmup + steps, batch_size)
    result["optim"] = str(getattr(args.optim, "value", args.optim))
    result["pairs_available"] = available
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HH-RLHF JSONL (chosen / rejected transcripts)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per optimizer step (both sides)")
    parser.add_argument("--max-length", type=int, default=512, help="prompt + reply tokens")
    parser.add_argument("--warmup", type=int, default=2, help="optimizer steps not timed")
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="a named model, .gguf or HF directory instead of the built-in one")
    parser.add_argument("--lora-r", type=int, default=0, help="train LoRA adapters of this rank (both sides; alpha 2r)")
    args = parser.parse_args()
    MODEL.update(name=args.model, lora_r=args.lora_r)
    if not args.data.is_file():
        sys.exit(f"no {args.data}: pass --data FILE (an HH-RLHF JSONL)")

    data = hh_preferences(args.data)
    probe = make_policy()
    tokenized = dpo.tokenize_pairs(probe.tokenizer, data, args.max_length)
    params = sum(p.numel() for p in probe.model.parameters())
    lengths = [p.length for p in tokenized.pairs]
    del probe
    if (args.warmup + args.steps) * args.batch_size > len(tokenized.pairs):
        sys.exit(f"{args.warmup + args.steps} steps of {args.batch_size} pairs pass one epoch of {len(tokenized.pairs)}: "
                 "fewer steps (reference caching would then count)")

    try:
        import trl
        trl_version: str | None = trl.__version__
    except ImportError:
        trl_version = None

    rounds: list[dict[str, Any]] = []
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "dpo_throughput_trl"
    for r in range(args.rounds):
        sides = ["ours", "trl"] if r % 2 == 0 else ["trl", "ours"]
        entry: dict[str, Any] = {"order": sides}
        for side in sides:
            if side == "ours":
                entry["ours"] = run_ours(data, args.batch_size, args.max_length, args.warmup, args.steps)
            elif trl_version is not None:
                entry["trl"] = run_trl(data, args.batch_size, args.max_length, args.warmup, args.steps, scratch)
        if "trl" in entry:
            entry["ratio_pairs_per_s"] = entry["ours"]["pairs_per_s"] / entry["trl"]["pairs_per_s"]
        rounds.append(entry)
        print(json.dumps({"round": r, **entry}), file=sys.stderr, flush=True)

    def median(side: str, key: str) -> float:
        return statistics.median(e[side][key] for e in rounds)

    def best(side: str, key: str) -> float:
        return max(e[side][key] for e in rounds)

    versus: dict[str, Any] = {
        "ours_pairs_per_s_best": best("ours", "pairs_per_s"),
        "ours_pairs_per_s_median": median("ours", "pairs_per_s"),
        "ours_pairs_per_cpu_s_median": median("ours", "pairs_per_cpu_s"),
        "ours_tokens_per_s_median": median("ours", "tokens_per_s"),
        "ours_s_per_step": median("ours", "s_per_step"),
        "ours_padding_share": median("ours", "padding_share"),
        "ours_pairs_available": rounds[0]["ours"]["pairs_available"],
    }
    if trl_version is not None:
        ratios = [e["ratio_pairs_per_s"] for e in rounds]
        ratio = best("ours", "pairs_per_s") / best("trl", "pairs_per_s")
        versus.update({
            "trl_pairs_per_s_best": best("trl", "pairs_per_s"),
            "trl_pairs_per_s_median": median("trl", "pairs_per_s"),
            "trl_pairs_per_cpu_s_median": median("trl", "pairs_per_cpu_s"),
            "trl_tokens_per_s_median": median("trl", "tokens_per_s"),
            "trl_s_per_step": median("trl", "s_per_step"),
            "trl_padding_share": median("trl", "padding_share"),
            "trl_pairs_available": rounds[0]["trl"]["pairs_available"],
            "trl_optim": rounds[0]["trl"]["optim"],
            "ratio_pairs_per_s": ratio,
            "ratio_median_of_rounds": statistics.median(ratios),
            "ratio_rounds": [round(x, 3) for x in ratios],
            "ratio_pairs_per_cpu_s": median("ours", "pairs_per_cpu_s") / median("trl", "pairs_per_cpu_s"),
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
        "model": {"name": args.model or "LMPolicy.default(seed=0)", "lora_r": args.lora_r, "parameters": params,
                  "dtype": "float32", "device": "cpu"},
        "data": {"source": str(args.data), **tokenized.report, "tokens_per_pair_mean": statistics.mean(lengths),
                 "tokens_per_pair_max": max(lengths)},
        "settings": {"batch_size": args.batch_size, "max_length": args.max_length, "warmup_steps": args.warmup,
                     "timed_steps": args.steps, "rounds": args.rounds, "loss": "sigmoid", "beta": BETA,
                     "learning_rate": LEARNING_RATE,
                     "tokens": "non-pad tokens of the policy's training forward passes in the timed steps"},
        "vs_trl": versus,
        "rounds": rounds,
    }
    report["machine"]["load_average_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
