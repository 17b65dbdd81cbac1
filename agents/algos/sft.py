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

from agents.algos.configs import SFTConfig
from agents.core import distributed, fsdp
from agents.core.batching import bucketed_batches
from agents.core.demonstrations import Conversation
from agents.core.optim import adamw, cosine_lr, set_lr
from agents.core.policy import PolicyAgent
from agents.core.run import load_trainer_state
from agents.policies.lm.policy import LMPolicy
from agents.policies.lm.tokenizer import encode_chat, pad_right


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

    def scored(self, indices: Sequence[int]) -> int:
        """Tokens the loss scores in these conversations (each one's first token predicts nothing)."""
        return sum(sum(self.masks[i][1:]) for i in indices)


def masked_loss(policy: LMPolicy, batch: dict[str, torch.Tensor], module: torch.nn.Module | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed loss, correct predictions, scored tokens) over the assistant tokens of a batch;
    the forward pass runs through ``module`` (the training wrapper of several processes) if given."""
    input_ids = batch["input_ids"].to(policy.device)
    attention = batch["attention_mask"].to(policy.device)
    mask = batch["loss_mask"].to(policy.device)[:, 1:].bool()
    count = mask.sum()
    if count == 0:
        raise ValueError("a batch has an empty loss mask: no assistant tokens to train on")
    with policy.autocast():
        logits = (module or policy.model)(input_ids=input_ids, attention_mask=attention, use_cache=False).logits[:, :-1]
    targets = input_ids[:, 1:]
    picked = logits[mask].float()
    loss = F.cross_entropy(picked, targets[mask], reduction="sum")
    correct = (picked.argmax(-1) == targets[mask]).sum()
    return loss, correct, count


class SFTAgent(PolicyAgent):
    """Behaviour cloning for language-model policies."""

    policy: LMPolicy
    config: SFTConfig

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
        policy.model.train()
        # Several processes: DDP, or FSDP sharding the model in place (it replaces the parameters,
        # so the optimizer is built after). One process: the model itself.
        sharded = cfg.data_parallel == "fsdp" and distributed.size() > 1
        module = fsdp.shard(policy.model) if sharded else distributed.wrap(policy.model)
        params = policy.trainable_parameters()
        optimizer = adamw(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))

        def lr_at(step: int) -> float:
            return cosine_lr(step, budget, cfg.learning_rate, cfg.warmup_steps, cfg.min_lr_ratio)

        step, epoch, cursor, best_val = 0, 0, 0, math.inf
        if resume_from is not None:
            state = load_trainer_state(resume_from, optimizer, self.run,
                                       restore_optimizer=lambda saved: fsdp.load_optimizer_state(policy.model, optimizer, saved))
            step, epoch, cursor = int(state["step"]), int(state["epoch"]), int(state["cursor"])
            best_val = float(state["best_val"])

        lengths = [len(x) for x in train.ids]
        batches = bucketed_batches(lengths, cfg.batch_size, self.seed + epoch)
        pad_id = policy.tokenizer.pad_token_id
        bar = tqdm(total=budget, initial=step, desc="sft", unit="step", file=sys.stderr,
                   disable=None if distributed.is_main() else True)
        metrics: dict[str, float] = {}
        window_loss, window_tokens, window_start, tokens_seen = 0.0, 0, time.perf_counter(), 0
        while step < budget:
            set_lr(optimizer, lr_at(step))
            optimizer.zero_grad(set_to_none=True)
            for micro in range(cfg.grad_accum_steps):
                if cursor >= len(batches):
                    epoch, cursor = epoch + 1, 0
                    batches = bucketed_batches(lengths, cfg.batch_size, self.seed + epoch)
                # Every rank holds the same batches and trains on its share of each; the loss is
                # normalised by the tokens of the whole batch, so any number of processes makes
                # the same step (DDP averages the ranks' gradients: hence the factor size()).
                indices = batches[cursor]
                cursor += 1
                mine = distributed.shard(indices)
                batch = train.batch(mine or indices[:1], pad_id)  # a rank with no share still syncs, at weight 0
                loss_sum, _, count = masked_loss(policy, batch, module)
                scale = distributed.size() / (train.scored(indices) * cfg.grad_accum_steps) if mine else 0.0
                with distributed.syncing(module, last=micro == cfg.grad_accum_steps - 1):
                    (loss_sum * scale).backward()
                if mine:
                    window_loss += float(loss_sum.detach())
                    window_tokens += int(count)
                    tokens_seen += int(batch["attention_mask"].sum())
            grad_norm = fsdp.to_float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            optimizer.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == budget:
                elapsed = time.perf_counter() - window_start
                loss_all, scored_all, seen_all = distributed.total([window_loss, window_tokens, tokens_seen])
                metrics = {"train/loss": loss_all / max(scored_all, 1), "train/lr": lr_at(step - 1),
                           "train/grad_norm": grad_norm, "train/epoch": epoch + cursor / max(len(batches), 1),
                           "train/tokens_per_s": seen_all / max(elapsed, 1e-9)}
                self._log(metrics, step)
                bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", refresh=False)
                window_loss, window_tokens, window_start, tokens_seen = 0.0, 0, time.perf_counter(), 0
            if len(val) and (step % cfg.eval_every == 0 or step == budget):
                val_metrics = self.validate(val)
                self._log(val_metrics, step)
                metrics.update(val_metrics)
                if val_metrics["eval/loss"] < best_val:
                    best_val = val_metrics["eval/loss"]
                    weights = fsdp.full_weights(policy.model)  # every rank takes part when sharded
                    if self.run is not None:
                        policy.save(self.run.dir / "best", weights=weights)
                policy.model.train()
            if callback is not None:
                callback(step, metrics)
            if step % cfg.save_every == 0 and step < budget:
                # Gathered from every rank when sharded (collectives); rank 0 writes.
                weights = fsdp.full_weights(policy.model)
                optimizer_state = fsdp.optimizer_state(policy.model, optimizer)
                if self.run is not None:
                    self.run.save_training_checkpoint(
                        step, policy, optimizer, {"step": step, "epoch": epoch, "cursor": cursor, "best_val": best_val},
                        keep=cfg.keep_checkpoints, optimizer_state=optimizer_state, weights=weights)
        bar.close()
        # Evaluation generates a different number of tokens on every rank: it runs on whole weights.
        policy.model = fsdp.gathered(policy.model)
        policy.model.eval()
        if self.run is not None:
            policy.save(self.run.final_dir)
        return metrics

    @torch.no_grad()
    def validate(self, val: TokenizedSet) -> dict[str, float]:
        self.policy.model.eval()
        total_loss, correct, count = 0.0, 0, 0
        order = sorted(range(len(val)), key=lambda i: len(val.ids[i]))
        # With a real model a validation pass takes minutes on a CPU: show where it is. Several
        # processes each score a share of the batches.
        mine = distributed.shard(range(0, len(order), self.config.batch_size))
        # A sharded model gathers its weights in every forward: every rank runs as many (the
        # ones short of batches score one again and drop it).
        rounds = max(distributed.gather([len(mine)])) if fsdp.is_sharded(self.policy.model) else len(mine)
        for k in tqdm(range(rounds), desc="validation", unit="batch", file=sys.stderr,
                      disable=None if distributed.is_main() else True, leave=False):
            start = mine[k] if k < len(mine) else 0
            batch = val.batch(order[start : start + self.config.batch_size], self.policy.tokenizer.pad_token_id)
            loss_sum, right, n = masked_loss(self.policy, batch)
            if k < len(mine):
                total_loss += float(loss_sum)
                correct += int(right)
                count += int(n)
        loss_all, correct_all, count_all = distributed.total([total_loss, correct, count])
        return {"eval/loss": loss_all / max(count_all, 1), "eval/accuracy": correct_all / max(count_all, 1)}

