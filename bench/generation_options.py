"""Generation options transformers offers, timed on GRPO-style batched sampling. Prints JSON.

    python bench/generation_options.py --device cuda --model-shape qwen2.5-0.5b --lora-r 16 --out gen.json
    python bench/generation_options.py --model-shape tiny --prompts 2 --group-size 2 --max-new-tokens 8 --calls 1

The batch of one GRPO step: ``--prompts`` GSM8K-v0 prompts (the env's prompt as one user message,
encoded with the chat template exactly as ``LMPolicy.act`` encodes it), each ``--group-size`` times,
sampled at temperature 1 (top-p 1, top-k off) to exactly ``--max-new-tokens`` tokens (end of turn
suppressed until then: ``min_new_tokens``). Every option samples the same prompt sets: one untimed
first call (compilation, CUDA-graph capture and allocator warm-up land there, reported as
``first_call_s``), then ``--calls`` timed calls, each on a different draw of prompts, as successive
GRPO steps are (so the batch's prompt width changes from call to call). A fresh model (same seed)
per option; ``tokens_per_s`` = completion tokens of the timed calls / their wall time
(``torch.cuda.synchronize`` before each clock read). Options:

- ``act_dynamic``: ``LMPolicy.act``, what GRPO runs now: ``generate`` with the dynamic KV cache and
  our logits processor that records each sampled token's log-prob.
- ``generate_dynamic``: plain ``model.generate``, dynamic cache, no log-prob recording (the cost of
  our recording is the difference from ``act_dynamic``).
- ``generate_static``: ``cache_implementation="static"`` without compilation (``disable_compile``).
- ``generate_static_compile``: static cache with transformers' automatic ``torch.compile`` of the
  decoding forward (CUDA only; transformers compiles only on accelerators). Prompts are left-padded
  to one width for all calls (the widest), so the cache shape and the compiled graph are reused:
  what a default would have to do to pay compilation once.
- ``act_static_compile``: ``LMPolicy.act`` with ``cache_implementation="static"`` passed to its
  ``generate`` (CUDA only): each call keeps its own prompt width, so a new width recompiles.
- ``generate_batch``: continuous batching (``model.generate_batch``, paged KV cache, one request per
  completion); ``returns_logprobs`` says whether sampling log-probs came back
  (``ContinuousBatchingConfig(return_logprobs=True)`` is asked for where the installed version has it).

An option that does not apply here (no CUDA, an older transformers) is reported as ``skipped``
with the reason; one that raises is reported as ``failed`` with the error; neither stops the
others. ``--option-budget-s`` stops an option's timed calls once it has used that long (marked
``cut_short``; the first call counts, and one timed call is always made). ``--out FILE`` is rewritten after every option, so a run killed part-way leaves
what it measured. With ``--lora-r`` the model carries LoRA adapters (as a GRPO-LoRA policy samples).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import transformers
from transformers import GenerationConfig

from agents.policies.lm.policy import LMPolicy
from bench.model_shapes import DEFAULT_TOKENIZER, SHAPES, describe, shaped_policy
from envs.gsm8k.env import GSM8KEnv

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
OPTIONS = ("act_dynamic", "generate_dynamic", "generate_static", "generate_batch", "generate_static_compile",
           "act_static_compile")
COMPILING = {"generate_static_compile", "act_static_compile"}
warnings.filterwarnings("ignore", category=FutureWarning)


class Skipped(Exception):
    """The option does not apply on this machine or transformers version (the message says why)."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="GSM8K JSONL (question/answer per line)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--model", default=None, help="a named model, .gguf or HF directory (instead of --model-shape)")
    parser.add_argument("--model-shape", choices=sorted(SHAPES), default=None,
                        help="a randomly initialised model of this published shape (bench/model_shapes.py)")
    parser.add_argument("--shape-tokenizer", default=DEFAULT_TOKENIZER,
                        help="tokenizer of --model-shape: a local tokenizer directory or a named model")
    parser.add_argument("--lora-r", type=int, default=0, help="LoRA adapters of this rank on the model (alpha 2r)")
    parser.add_argument("--prompts", type=int, default=8, help="GSM8K prompts per call")
    parser.add_argument("--group-size", type=int, default=8, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="every completion is exactly this long")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per option (after one untimed call)")
    parser.add_argument("--options", nargs="+", choices=OPTIONS, default=list(OPTIONS), help="which options, in order")
    parser.add_argument("--option-budget-s", type=float, default=120.0,
                        help="no further timed call of an option once it has used this long")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here (after every option)")
    args = parser.parse_args()
    if args.model and args.model_shape:
        parser.error("--model and --model-shape are alternatives")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")
    if not args.data.is_file():
        parser.error(f"no GSM8K data at {args.data}: pass --data FILE")
    if min(args.prompts, args.group_size, args.max_new_tokens, args.calls) < 1:
        parser.error("--prompts, --group-size, --max-new-tokens and --calls must be >= 1")
    return args


def build_policy(args: argparse.Namespace) -> LMPolicy:
    torch.manual_seed(0)
    if args.model_shape:
        policy = shaped_policy(args.model_shape, args.shape_tokenizer, args.device)
    elif args.model:
        policy = LMPolicy.from_pretrained(args.model, device=args.device)
    else:
        policy = LMPolicy.default(seed=0, device=args.device)
    if args.lora_r:
        policy.enable_lora(args.lora_r, 2 * args.lora_r, 0.0)
    policy.sampling.max_new_tokens = args.max_new_tokens
    base = policy.model.get_base_model() if policy.lora is not None else policy.model
    base.generation_config.min_new_tokens = args.max_new_tokens  # act's generate merges it in
    return policy


def prompt_sets(args: argparse.Namespace, count: int) -> list[list[str]]:
    """``count`` GRPO-style batches: ``--prompts`` problems drawn with seed c, each ``--group-size`` times."""
    env = GSM8KEnv(data_path=args.data)
    sets = []
    for c in range(count):
        picked = np.random.default_rng(c).choice(len(env.problems), size=args.prompts, replace=False)
        sets.append([env.prompt(int(i)) for i in picked for _ in range(args.group_size)])
    return sets


def sampling_config(policy: LMPolicy, args: argparse.Namespace, **extra: Any) -> GenerationConfig:
    """Sampling as ``act`` does it (temperature 1, top-k off, top-p 1), exactly ``--max-new-tokens``."""
    return GenerationConfig(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=args.max_new_tokens,
                            min_new_tokens=args.max_new_tokens, eos_token_id=policy.stop_ids(),
                            pad_token_id=policy.tokenizer.pad_token_id, bos_token_id=policy.tokenizer.bos_token_id,
                            **extra)


def left_padded(policy: LMPolicy, prompts: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(prompts), width), policy.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p)
        mask[row, width - len(p):] = 1
    return ids.to(policy.device), mask.to(policy.device)


def generate_fn(policy: LMPolicy, args: argparse.Namespace, fixed_width: int | None,
                **extra: Any) -> Callable[[list[str]], int]:
    """Plain ``model.generate`` on a left-padded batch (``fixed_width``: pad every call to it)."""
    config = sampling_config(policy, args, **extra)

    def run(texts: list[str]) -> int:
        prompts = policy.encode_prompts(texts)
        width = fixed_width or max(len(p) for p in prompts)
        ids, mask = left_padded(policy, prompts, width)
        with torch.no_grad(), policy.autocast():
            out = policy.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        return int(out.shape[0] * (out.shape[1] - width))

    return run


def act_fn(policy: LMPolicy, **generate_kwargs: Any) -> Callable[[list[str]], int]:
    """``LMPolicy.act`` as GRPO calls it; ``generate_kwargs`` are passed on to its ``model.generate``."""
    if generate_kwargs:
        # An instance attribute shadows the method: act's own call gets the extra settings.
        policy.model.generate = functools.partial(policy.model.generate, **generate_kwargs)

    def run(texts: list[str]) -> int:
        policy.act(texts)
        assert policy.last_tokens is not None
        return sum(len(t.completion_ids) for t in policy.last_tokens)

    return run


def batch_fn(policy: LMPolicy, args: argparse.Namespace, state: dict[str, Any]) -> Callable[[list[str]], int]:
    """Continuous batching: one request per completion, paged cache, in ``model.generate_batch``."""
    if not hasattr(policy.model, "generate_batch"):
        raise Skipped(f"transformers {transformers.__version__} has no generate_batch (continuous batching)")
    from transformers.generation.configuration_utils import ContinuousBatchingConfig  # only where it exists

    wanted: dict[str, Any] = {"return_logprobs": True}
    known = {f.name for f in dataclasses.fields(ContinuousBatchingConfig)}
    cb_config = ContinuousBatchingConfig(**{k: v for k, v in wanted.items() if k in known})
    config = sampling_config(policy, args)

    def run(texts: list[str]) -> int:
        prompts = policy.encode_prompts(texts)
        with torch.no_grad(), policy.autocast():
            results = policy.model.generate_batch(inputs=prompts, generation_config=config,
                                                  continuous_batching_config=cb_config)
        failed = [r.error for r in results.values() if r.error]
        if len(results) != len(prompts) or failed:
            raise RuntimeError(f"generate_batch returned {len(results)} of {len(prompts)} results; errors: {failed[:3]}")
        state["returns_logprobs"] = all(len(r.logprobs) == len(r.generated_tokens) for r in results.values())
        return sum(len(r.generated_tokens) for r in results.values())

    return run


def runner(name: str, policy: LMPolicy, args: argparse.Namespace, fixed_width: int,
           state: dict[str, Any]) -> Callable[[list[str]], int]:
    """The function that samples one batch of prompt texts with option ``name``; returns completion tokens."""
    if name == "act_dynamic":
        return act_fn(policy)
    if name == "generate_dynamic":
        return generate_fn(policy, args, None)
    if name == "generate_static":
        return generate_fn(policy, args, None, cache_implementation="static", disable_compile=True)
    if name == "generate_static_compile":
        return generate_fn(policy, args, fixed_width, cache_implementation="static")
    if name == "act_static_compile":
        return act_fn(policy, cache_implementation="static")
    return batch_fn(policy, args, state)


def synchronize() -> None:
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def measure(name: str, args: argparse.Namespace, sets: list[list[str]], fixed_width: int) -> dict[str, Any]:
    cuda = torch.device(args.device).type == "cuda"
    if name in COMPILING and not cuda:
        raise Skipped("transformers compiles generate's forward automatically on accelerators only (CUDA here)")
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    policy = build_policy(args)
    state: dict[str, Any] = {}
    run = runner(name, policy, args, fixed_width, state)
    torch.manual_seed(0)
    option_started = started = time.perf_counter()
    run(sets[0])
    synchronize()
    first = time.perf_counter() - started
    calls: list[float] = []
    tokens, cut_short = 0, False
    for texts in sets[1:]:
        if calls and time.perf_counter() - option_started > args.option_budget_s:
            cut_short = True  # the budget counts the first call too; one timed call is always made
            break
        synchronize()
        started = time.perf_counter()
        tokens += run(texts)
        synchronize()
        calls.append(time.perf_counter() - started)
    result: dict[str, Any] = {
        "status": "ok", "first_call_s": first, "calls_s": [round(c, 4) for c in calls], "timed_calls": len(calls),
        "completion_tokens": tokens, "tokens_per_s": tokens / sum(calls) if calls else None,
        "completion_tokens_mean": tokens / (len(calls) * len(sets[0])) if calls else None,
        "median_call_s": statistics.median(calls) if calls else None, "cut_short": cut_short,
        "returns_logprobs": name.startswith("act") or state.get("returns_logprobs", False),
    }
    if cuda:
        result["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    args = parse_args()
    sets = prompt_sets(args, args.calls + 1)
    probe = shaped_policy(args.model_shape, args.shape_tokenizer, "meta") if args.model_shape else build_policy(
        argparse.Namespace(**{**vars(args), "device": "cpu", "lora_r": 0}))
    widths = [max(len(p) for p in probe.encode_prompts(texts)) for texts in sets]
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "device": args.device,
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                    "cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
        "model": {"name": args.model or (f"random {args.model_shape}" if args.model_shape else "LMPolicy.default(seed=0)"),
                  "parameters": probe.num_parameters(), "lora_r": args.lora_r,
                  **({"shape": describe(args.model_shape, args.shape_tokenizer)} if args.model_shape else {})},
        "settings": {"prompts": args.prompts, "group_size": args.group_size, "batch": args.prompts * args.group_size,
                     "max_new_tokens": args.max_new_tokens, "min_new_tokens": args.max_new_tokens,
                     "timed_calls": args.calls, "prompt_widths": widths, "temperature": 1.0, "top_p": 1.0,
                     "top_k": "off", "option_budget_s": args.option_budget_s},
        "options": {},
    }
    del probe
    for name in args.options:
        print(f"generation option {name} ...", file=sys.stderr, flush=True)
        try:
            report["options"][name] = measure(name, args, sets, max(widths))
        except Skipped as reason:
            report["options"][name] = {"status": "skipped", "reason": str(reason)}
        except Exception as err:  # one option failing must not cost the others their numbers
            report["options"][name] = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:800]}
        print(json.dumps({name: report["options"][name]}), file=sys.stderr, flush=True)
        summarize(report)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def summarize(report: dict[str, Any]) -> None:
    speeds = {n: o["tokens_per_s"] for n, o in report["options"].items() if o["status"] == "ok" and o["tokens_per_s"]}
    if not speeds:
        return
    fastest = max(speeds, key=lambda n: speeds[n])
    report["fastest"] = fastest
    if "act_dynamic" in speeds:
        report["speedup_over_act_dynamic"] = {n: round(v / speeds["act_dynamic"], 3) for n, v in speeds.items()}


if __name__ == "__main__":
    main()
