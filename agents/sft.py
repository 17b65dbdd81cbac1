"""Supervised fine-tuning (behaviour cloning) of a language-model policy on conversations.

Reads top to bottom: tokenize once -> length-bucketed batches -> masked next-token loss on
assistant tokens only (every assistant turn) -> AdamW with warmup + cosine decay, gradient
clipping and accumulation -> periodic validation (loss, token accuracy), best / step / final
checkpoints, TensorBoard logs. A checkpoint holds the policy plus the optimizer and position
in the data, so an interrupted run resumes exactly where its last checkpoint left it.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from agents.config import field
from agents.demos import Conversation
from agents.lm.policy import DEFAULT_LORA_TARGETS, LMPolicy
from agents.lm.tokenizer import encode_chat, pad_right
from agents.policy import PolicyAgent
from agents.run import Run, load_trainer_state


@dataclasses.dataclass
class SFTConfig:
    data: str = field("solver", help="'solver' (Wordle expert games), 'solutions' (GSM8K worked solutions), 'hh:PATH' (HH-RLHF JSONL) or a JSONL path of messages / prompt+completion")
    keep_calculator: bool = field(False, help="GSM8K solutions: keep the <<a*b=c>> calculator annotations")
    max_new_tokens: int = field(64, help="longest completion when the trained policy acts (saved with it; evaluation uses it)")
    no_repeat_ngram_size: int = field(0, help="saved with the policy: when it acts, no run of N tokens occurs twice in a completion (0 = off; breaks greedy phrase loops of small models)")
    think: str = field("none", help="Wordle solver demos: what goes in <think>: none | count | facts")
    train_answer_fraction: float = field(1.0, help="Wordle: share of answers used for demos; the rest is held out and evaluated separately")
    split_seed: int = field(0, help="seed of the deterministic train / held-out answer split")
    spelling: bool = field(False, help="Wordle solver demos: also one conversation per allowed guess (no board; answers unmarked among them) that writes the word: the vocabulary a pretrained model would bring")
    practice_games: int = field(0, help="Wordle solver demos: also N solver games whose secrets are allowed words that are never answers (spelling beyond the answer list; no held-out answer is a secret)")
    max_steps: int = field(3500, help="optimizer steps (the training budget)")
    batch_size: int = field(64, help="conversations per micro-batch")
    grad_accum_steps: int = field(1, help="micro-batches per optimizer step")
    learning_rate: float = field(1e-3, help="peak learning rate (AdamW)")
    min_lr_ratio: float = field(0.1, help="final learning rate as a fraction of the peak (cosine decay)")
    warmup_steps: int = field(100, help="linear warmup steps")
    weight_decay: float = field(0.01, help="AdamW weight decay")
    max_grad_norm: float = field(1.0, help="gradient clipping norm")
    max_length: int = field(1024, help="longest tokenized conversation; longer ones are cut from the right")
    val_ratio: float = field(0.02, help="share of conversations held out for eval/loss and eval/accuracy")
    eval_every: int = field(500, help="validate every N steps (and keep the best checkpoint)")
    save_every: int = field(500, help="write checkpoints/step_N every N steps")
    keep_checkpoints: int = field(2, help="step checkpoints kept on disk")
    log_every: int = field(20, help="log train/* every N steps")
    lora_r: int = field(0, help="LoRA rank; 0 trains all weights")
    lora_alpha: float = field(16.0, help="LoRA scaling alpha")
    lora_dropout: float = field(0.05, help="LoRA dropout")
    lora_targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS), help="module names LoRA adapts")
    model_config: dict[str, Any] = field(default_factory=dict, help="overrides of the built-in model's LlamaConfig (e.g. hidden_size)")

    def __post_init__(self) -> None:
        if self.think not in ("none", "count", "facts"):
            raise ValueError(f"think must be none, count or facts, got {self.think!r}")
        if not 0 <= self.val_ratio < 1:
            raise ValueError(f"val_ratio must be in [0, 1), got {self.val_ratio}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size must be >= 0 (0 = off), got {self.no_repeat_ngram_size}")
        if self.practice_games < 0:
            raise ValueError(f"practice_games must be >= 0, got {self.practice_games}")
        for name in ("max_steps", "batch_size", "grad_accum_steps", "eval_every", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclasses.dataclass(frozen=True)
class TokenizedSet:
    """Conversations as token ids and assistant-token loss masks (tokenized once)."""

    ids: list[list[int]]
    masks: list[list[int]]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, policy: LMPolicy, conversations: Sequence[Conversation], max_length: int) -> TokenizedSet:
        ids, masks, cut_off = [], [], 0
        for conversation in conversations:
            row, mask = encode_chat(policy.tokenizer, conversation)
            row, mask = row[:max_length], mask[:max_length]
            if not any(mask):
                cut_off += 1  # the prompt alone fills max_length: nothing of the reply survives
                continue
            ids.append(row)
            masks.append(mask)
        if not ids:
            raise ValueError(f"no conversation has assistant tokens within max_length={max_length}; raise max_length")
        if cut_off:
            print(f"warning: skipped {cut_off} of {len(conversations)} conversations whose assistant turns "
                  f"start beyond max_length={max_length}", file=sys.stderr)
        return cls(ids, masks)

    def batch(self, indices: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
        return pad_right([self.ids[i] for i in indices], [self.masks[i] for i in indices], pad_id)


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffle, sort by length inside windows of 64 batches, then shuffle the batch order:
    near-equal lengths per batch (little padding) while every epoch stays random."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    window = batch_size * 64
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [[int(i) for i in b] for b in batches]


def masked_loss(policy: LMPolicy, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss, correct predictions, scored tokens) over assistant tokens of a batch."""
    input_ids = batch["input_ids"].to(policy.device)
    attention = batch["attention_mask"].to(policy.device)
    mask = batch["loss_mask"].to(policy.device)[:, 1:].bool()
    count = mask.sum()
    if count == 0:
        raise ValueError("a batch has an empty loss mask: no assistant tokens to train on")
    with policy.autocast():
        logits = policy.model(input_ids=input_ids, attention_mask=attention, use_cache=False).logits[:, :-1]
    targets = input_ids[:, 1:]
    picked = logits[mask].float()
    loss = F.cross_entropy(picked, targets[mask])
    correct = (picked.argmax(-1) == targets[mask]).sum()
    return loss, correct, count


class SFTAgent(PolicyAgent):
    """Behaviour cloning for language-model policies."""

    def __init__(self, policy: LMPolicy, config: SFTConfig, run: Run | None = None, seed: int = 0):
        self.policy = policy
        self.config = config
        self.run = run
        self.seed = seed

    # -- public interface -----------------------------------------------------------------
    def learn(self, env: Any, budget: int | None = None, demos: Sequence[Conversation] | None = None,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              resume_from: str | Path | None = None) -> dict[str, float]:
        """Train on ``demos`` for ``budget`` optimizer steps (default ``config.max_steps``)."""
        cfg = self.config
        if not demos:
            raise ValueError("SFT needs demonstrations: pass demos= (a list of conversations)")
        budget = budget or cfg.max_steps
        policy = self.policy
        policy.sampling = dataclasses.replace(policy.sampling, max_new_tokens=cfg.max_new_tokens,
                                              no_repeat_ngram_size=cfg.no_repeat_ngram_size)
        data = TokenizedSet.build(policy, demos, cfg.max_length)
        rng = np.random.default_rng(self.seed)
        val_count = round(len(data) * cfg.val_ratio) if len(data) > 1 else 0
        order = rng.permutation(len(data))
        val_idx, train_idx = order[:val_count], order[val_count:]
        train = TokenizedSet([data.ids[i] for i in train_idx], [data.masks[i] for i in train_idx])
        val = TokenizedSet([data.ids[i] for i in val_idx], [data.masks[i] for i in val_idx])

        policy.float32_trainable_parameters()
        params = policy.trainable_parameters()
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate, betas=(0.9, 0.95),
            # fused kernels on GPU; on CPU foreach (one op per group) beats per-tensor loops
            **({"fused": True} if policy.device.type == "cuda" else {"foreach": True}))

        def lr_at(step: int) -> float:
            if step < cfg.warmup_steps:
                return cfg.learning_rate * (step + 1) / cfg.warmup_steps
            progress = min(1.0, (step - cfg.warmup_steps) / max(1, budget - cfg.warmup_steps))
            cosine = 0.5 * (1 + math.cos(math.pi * progress))
            return cfg.learning_rate * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)

        step, epoch, cursor, best_val = 0, 0, 0, math.inf
        if resume_from is not None:
            state = load_trainer_state(resume_from, optimizer, self.run)
            step, epoch, cursor = int(state["step"]), int(state["epoch"]), int(state["cursor"])
            best_val = float(state["best_val"])

        lengths = [len(x) for x in train.ids]
        batches = bucketed_batches(lengths, cfg.batch_size, self.seed + epoch)
        pad_id = policy.tokenizer.pad_token_id
        bar = tqdm(total=budget, initial=step, desc="sft", unit="step", file=sys.stderr, disable=None)
        policy.model.train()
        metrics: dict[str, float] = {}
        window_loss, window_tokens, window_start, tokens_seen = 0.0, 0, time.perf_counter(), 0
        while step < budget:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            optimizer.zero_grad(set_to_none=True)
            for _ in range(cfg.grad_accum_steps):
                if cursor >= len(batches):
                    epoch, cursor = epoch + 1, 0
                    batches = bucketed_batches(lengths, cfg.batch_size, self.seed + epoch)
                batch = train.batch(batches[cursor], pad_id)
                cursor += 1
                loss, _, count = masked_loss(policy, batch)
                (loss / cfg.grad_accum_steps).backward()
                window_loss += float(loss.detach()) * int(count)
                window_tokens += int(count)
                tokens_seen += int(batch["attention_mask"].sum())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            optimizer.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == budget:
                elapsed = time.perf_counter() - window_start
                metrics = {"train/loss": window_loss / max(window_tokens, 1), "train/lr": lr_at(step - 1),
                           "train/grad_norm": grad_norm, "train/epoch": epoch + cursor / max(len(batches), 1),
                           "train/tokens_per_s": tokens_seen / max(elapsed, 1e-9)}
                self._log(metrics, step)
                bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", refresh=False)
                window_loss, window_tokens, window_start, tokens_seen = 0.0, 0, time.perf_counter(), 0
            if len(val) and (step % cfg.eval_every == 0 or step == budget):
                val_metrics = self.validate(val)
                self._log(val_metrics, step)
                metrics.update(val_metrics)
                if val_metrics["eval/loss"] < best_val and self.run is not None:
                    best_val = val_metrics["eval/loss"]
                    policy.save(self.run.dir / "best")
                policy.model.train()
            if callback is not None:
                callback(step, metrics)
            if self.run is not None and (step % cfg.save_every == 0 and step < budget):
                self.run.save_training_checkpoint(
                    step, policy, optimizer, {"step": step, "epoch": epoch, "cursor": cursor, "best_val": best_val},
                    keep=cfg.keep_checkpoints)
        bar.close()
        policy.model.eval()
        if self.run is not None:
            policy.save(self.run.final_dir)
        return metrics

    @torch.no_grad()
    def validate(self, val: TokenizedSet) -> dict[str, float]:
        self.policy.model.eval()
        total_loss, correct, count = 0.0, 0, 0
        order = sorted(range(len(val)), key=lambda i: len(val.ids[i]))
        for start in range(0, len(order), self.config.batch_size):
            batch = val.batch(order[start : start + self.config.batch_size], self.policy.tokenizer.pad_token_id)
            loss, right, n = masked_loss(self.policy, batch)
            total_loss += float(loss) * int(n)
            correct += int(right)
            count += int(n)
        return {"eval/loss": total_loss / max(count, 1), "eval/accuracy": correct / max(count, 1)}

