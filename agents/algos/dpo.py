"""Direct preference optimisation (DPO, IPO, robust DPO) of a language-model policy on pairs of
replies to one prompt, against a frozen reference.

Reads top to bottom:

1. pairs     text pairs (HH-RLHF rows, or preference JSON lines: ``agents.core.demonstrations``)
             are rendered with the policy's chat template: the prompt (every earlier turn) is
             context only, the *final* assistant turn of each side is what is scored. Pairs mined
             from the project's own episode logs (``rl_log``) are token-exact: the logged prompt
             and completion ids of every turn, never re-tokenised; per task (or GRPO group) the
             best return against the worst, kept when the gap is at least ``min_return_gap``.
             Every filter counts what it dropped (``dpo.json``); nothing left is an error.
2. reference the frozen model the policy is measured against: with LoRA the same model with the
             adapter switched off (as GRPO does), otherwise a snapshot of the starting weights
             (the ``--init`` checkpoint; kept in the run folder so a resumed run uses the same).
             Its log-probs are computed once per pair and cached.
3. loss      h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)), per pair:
             ``sigmoid``  -(1 - e) log s(beta h) - e log s(-beta h)   (DPO; e > 0: conservative DPO)
             ``robust``   (-(1 - e) log s(beta h) + e log s(-beta h)) / (1 - 2e)   (Chowdhury et al.)
             ``ipo``      (h - 1 / (2 beta))^2
             log pi(y) is the sum over the reply's tokens, or their mean (``length_normalize``).
             At the first step the policy is its reference: h = 0 and the sigmoid loss is log 2.
4. update    AdamW, warmup + cosine learning rate, gradient clipping; dropout off (the policy and
             its reference must agree exactly before the first step).
5. evaluate  every ``eval_every`` steps (and before the first and after the last) on a fixed
             held-out share of the pairs: preference accuracy (implicit reward beta * (log pi -
             log pi_ref) of the chosen reply above the rejected one; a tie counts one half),
             mean margin, the chosen and rejected log-probs (both tend to fall), the policy's own
             preference (log pi alone) and the KL to the reference along the held-out replies.

Checkpoints (``save_every``) hold the position in the data and resume exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from agents.algos.configs import DPOConfig
from agents.core.batching import bucketed_batches
from agents.core.checkpoint import write_json_atomic
from agents.core.demonstrations import (
    DataError,
    PreferenceData,
    hh_preferences,
    read_preferences_jsonl,
)
from agents.core.optim import adamw, cosine_lr, set_lr
from agents.core.policy import PolicyAgent
from agents.core.run import REFERENCE_DIR, load_trainer_state, reference_of
from agents.core.trajectory import Episode, TurnTokens, read_episodes
from agents.policies.lm.policy import LMPolicy
from agents.policies.lm.tokenizer import encode_chat, encode_prompt, pad_right


# ------------------------------------------------------------------------------ pairs
@dataclasses.dataclass(frozen=True)
class TokenPair:
    """Two replies to one prompt as token rows: one row per scored turn (prompt ids + completion
    ids; a text pair has one row per side, an episode one per turn it played)."""

    chosen: tuple[TurnTokens, ...]
    rejected: tuple[TurnTokens, ...]

    @property
    def length(self) -> int:
        return sum(len(t.prompt_ids) + len(t.completion_ids) for t in (*self.chosen, *self.rejected))


@dataclasses.dataclass
class Pairs:
    """Token pairs to train on and what each filter kept or dropped on the way (``dpo.json``)."""

    pairs: list[TokenPair]
    report: dict[str, Any]


def _turn(prompt_ids: Sequence[int], completion_ids: Sequence[int]) -> TurnTokens:
    return TurnTokens(tuple(prompt_ids), tuple(completion_ids), (0.0,) * len(completion_ids))


def final_reply_ids(tokenizer: Any, prompt: list[dict[str, str]], reply: str) -> tuple[list[int], list[int]] | str:
    """(prompt ids, ids of the final assistant turn) of ``prompt`` + ``reply`` rendered with the
    chat template, or why that fails. The prompt ids are what the policy is given when it acts
    (ending with the generation prompt); earlier assistant turns are part of them, never scored."""
    prompt_ids = encode_prompt(tokenizer, prompt)
    try:
        ids, mask = encode_chat(tokenizer, [*prompt, {"role": "assistant", "content": reply}])
    except ValueError:
        return "template"
    if ids[: len(prompt_ids)] != prompt_ids:
        return "prompt_tokenization"  # the prompt renders differently once the reply follows
    scored = [i for i in range(len(prompt_ids), len(ids)) if mask[i]]
    if not scored:
        return "empty_completion"
    return prompt_ids, ids[len(prompt_ids) : scored[-1] + 1]


def tokenize_pairs(tokenizer: Any, data: PreferenceData, max_length: int) -> Pairs:
    """Text pairs -> token pairs. A reply longer than ``max_length`` minus its prompt is cut from
    the right (counted); a prompt that leaves no room skips its pair (counted)."""
    skipped: Counter[str] = Counter(data.skipped)
    pairs, truncated = [], 0
    for pair in data.pairs:
        first = final_reply_ids(tokenizer, pair.prompt, pair.chosen)
        second = final_reply_ids(tokenizer, pair.prompt, pair.rejected)
        if isinstance(first, str) or isinstance(second, str):
            skipped[first if isinstance(first, str) else str(second)] += 1
            continue
        (prompt_ids, chosen), (_, rejected) = first, second
        room = max_length - len(prompt_ids)
        if room <= 0:
            skipped["prompt_too_long"] += 1
            continue
        truncated += int(len(chosen) > room or len(rejected) > room)
        chosen, rejected = chosen[:room], rejected[:room]
        if chosen == rejected:
            skipped["identical"] += 1
            continue
        pairs.append(TokenPair((_turn(prompt_ids, chosen),), (_turn(prompt_ids, rejected),)))
    report = {"rows_read": data.read, "pairs": len(pairs), "replies_truncated": truncated,
              **{f"skipped_{k}": v for k, v in sorted(skipped.items())}}
    return Pairs(pairs, report)


def log_paths(rl_log: Sequence[str]) -> list[Path]:
    """The logs named by ``rl_log``: episodes.jsonl files or run folders that hold one."""
    paths = []
    for name in rl_log:
        path = Path(name)
        path = path / "episodes.jsonl" if path.is_dir() else path
        if not path.is_file():
            raise DataError(f"rl_log {name!r}: no such episodes.jsonl (give an RL run's log or its run folder)")
        paths.append(path)
    return paths


def _group_key(episode: Episode, within: str) -> tuple[Any, ...]:
    assert episode.tokens is not None
    task = (episode.env_id, tuple(episode.tokens[0].prompt_ids))  # same task = same first prompt, exactly
    grpo = episode.info.get("grpo") if isinstance(episode.info, dict) else None
    if within == "group" and isinstance(grpo, dict) and "group" in grpo and "iteration" in grpo:
        return (*task, grpo["iteration"], grpo["group"])
    return task


def mine_pairs(episodes: Iterable[Episode], within: str = "group", min_return_gap: float = 0.0,
               max_length: int = 10**9) -> Pairs:
    """Per task (or GRPO group): the best-return episode against the worst one, token-exact.

    Counted on the way: episodes read, without token ids, with a non-finite return; groups with
    one episode, with all returns equal, with a gap below ``min_return_gap``, whose two episodes
    played the same tokens, with a turn longer than ``max_length``; the pairs kept.
    """
    counts: Counter[str] = Counter()
    groups: dict[tuple[Any, ...], list[Episode]] = defaultdict(list)
    for episode in episodes:
        counts["episodes_read"] += 1
        if not episode.tokens or not any(t.completion_ids for t in episode.tokens):
            counts["episodes_without_tokens"] += 1
            continue
        if not math.isfinite(episode.return_):
            counts["episodes_nonfinite_return"] += 1
            continue
        groups[_group_key(episode, within)].append(episode)
    pairs = []
    for members in groups.values():
        counts["groups"] += 1
        if len(members) < 2:
            counts["groups_single_episode"] += 1
            continue
        best = max(members, key=lambda e: e.return_)
        worst = min(members, key=lambda e: e.return_)
        gap = best.return_ - worst.return_
        if gap <= 0:
            counts["groups_all_returns_equal"] += 1
            continue
        if gap < min_return_gap:
            counts["groups_gap_below_min"] += 1
            continue
        chosen = tuple(t for t in best.tokens or () if t.completion_ids)
        rejected = tuple(t for t in worst.tokens or () if t.completion_ids)
        if [t.completion_ids for t in chosen] == [t.completion_ids for t in rejected]:
            counts["pairs_identical"] += 1
            continue
        if any(len(t.prompt_ids) + len(t.completion_ids) > max_length for t in (*chosen, *rejected)):
            counts["pairs_too_long"] += 1
            continue
        pairs.append(TokenPair(chosen, rejected))
    counts["pairs"] = len(pairs)
    return Pairs(pairs, {"pair_within": within, "min_return_gap": min_return_gap, **counts})


def check_ids_fit(pairs: Sequence[TokenPair], policy: LMPolicy, where: str) -> None:
    """Logged ids must come from this policy's tokenizer: ids past its vocabulary would index
    nothing (or train nonsense)."""
    vocab = policy.vocab_size
    for pair in pairs:
        for turn in (*pair.chosen, *pair.rejected):
            bad = [i for i in (*turn.prompt_ids, *turn.completion_ids) if not 0 <= i < vocab]
            if bad:
                raise DataError(f"{where}: token id(s) {sorted(set(bad))[:5]} outside this model's vocabulary "
                                f"(0..{vocab - 1}); the logs come from a different model than --init")


def load_pairs(policy: LMPolicy, cfg: DPOConfig) -> Pairs:
    """The pairs ``cfg`` names (``data`` or ``rl_log``), tokenised for ``policy``; an error that
    says what each filter dropped when none is left."""
    if cfg.rl_log:
        paths = log_paths(cfg.rl_log)
        episodes = list(read_episodes(paths))
        pairs = mine_pairs(episodes, cfg.pair_within, cfg.min_return_gap, cfg.max_length)
        check_ids_fit(pairs.pairs, policy, ", ".join(map(str, paths)))
        first = next((e for e in episodes if e.tokens), None)
        if first is not None and first.tokens and \
                list(first.tokens[0].prompt_ids) != policy.encode_prompts([first.observations[0]])[0]:
            raise DataError(f"{paths[0]}: the logged prompt ids differ from this model's tokenisation of the same "
                            "prompt; the logs come from a different model or tokenizer than --init")
        pairs.report = {"source": "rl_log", "logs": list(map(str, paths)), **pairs.report}
    elif cfg.data is None:
        raise DataError("no preference pairs named: set data=hh:PATH (HH-RLHF), data=PATH (preference JSONL) "
                        "or rl_log=runs/<rl run>/episodes.jsonl (--data / --rl-log on the command line)")
    else:
        data = hh_preferences(cfg.data[3:]) if cfg.data.startswith("hh:") else read_preferences_jsonl(cfg.data)
        pairs = tokenize_pairs(policy.tokenizer, data, cfg.max_length)
        pairs.report = {"source": cfg.data, **pairs.report}
    if not pairs.pairs:
        counts = ", ".join(f"{k} {v}" for k, v in pairs.report.items() if isinstance(v, int) and v)
        raise DataError(f"no preference pairs left to train on ({counts})" + (
            "; lower min_return_gap, or log more episodes per task" if cfg.rl_log else ""))
    return pairs


# ------------------------------------------------------------------------------ the loss
def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, loss: str = "sigmoid",
             label_smoothing: float = 0.0) -> torch.Tensor:
    """The per-pair loss of scores (log-probs) of the chosen and rejected replies."""
    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    if loss == "ipo":
        return (h - 1 / (2 * beta)) ** 2
    agree, flip = F.logsigmoid(beta * h), F.logsigmoid(-beta * h)
    if loss == "sigmoid":
        return -(1 - label_smoothing) * agree - label_smoothing * flip
    if loss == "robust":
        return (-(1 - label_smoothing) * agree + label_smoothing * flip) / (1 - 2 * label_smoothing)
    raise ValueError(f"unknown DPO loss {loss!r}")


def pair_rows(pairs: Sequence[TokenPair]) -> list[tuple[TurnTokens, int]]:
    """Every row of the pairs with its side: the chosen reply of pair k is side k, the rejected
    one side ``len(pairs) + k``."""
    return [(t, k) for k, p in enumerate(pairs) for t in p.chosen] + \
        [(t, len(pairs) + k) for k, p in enumerate(pairs) for t in p.rejected]


def side_logprobs(policy: LMPolicy, pairs: Sequence[TokenPair], module: Any = None,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(chosen log-probs, rejected log-probs, chosen token counts, rejected token counts), each
    ``(len(pairs),)``: every row of both sides in one forward pass, summed per side."""
    rows = pair_rows(pairs)
    batch = pad_right([[*t.prompt_ids, *t.completion_ids] for t, _ in rows],
                      [[0] * len(t.prompt_ids) + [1] * len(t.completion_ids) for t, _ in rows],
                      policy.tokenizer.pad_token_id)
    # Replies start at their prompt's end: no row scores a column before the shortest prompt's.
    first_reply = min(len(t.prompt_ids) for t, _ in rows)
    logprobs = policy.token_logprobs(batch["input_ids"], batch["attention_mask"], 1.0, module=module,
                                     score_from=first_reply)
    mask = batch["loss_mask"].to(logprobs.device, logprobs.dtype)
    owner = torch.tensor([k for _, k in rows], device=logprobs.device)
    sums = torch.zeros(2 * len(pairs), device=logprobs.device).index_add(0, owner, (logprobs * mask).sum(-1))
    counts = torch.zeros(2 * len(pairs), device=logprobs.device).index_add(0, owner, mask.sum(-1))
    return sums[: len(pairs)], sums[len(pairs):], counts[: len(pairs)], counts[len(pairs):]


def preference_metrics(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                       ref_rejected: torch.Tensor, beta: float) -> dict[str, float]:
    """Implicit rewards beta * (log pi - log pi_ref): accuracy (a tie counts 1/2), margin, means."""
    chosen, rejected = beta * (policy_chosen - ref_chosen), beta * (policy_rejected - ref_rejected)
    return {"accuracy": float(((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).mean()),
            "margin": float((chosen - rejected).mean()), "chosen_reward": float(chosen.mean()),
            "rejected_reward": float(rejected.mean()), "chosen_logp": float(policy_chosen.mean()),
            "rejected_logp": float(policy_rejected.mean())}


# ------------------------------------------------------------------------------ the agent
class DPOAgent(PolicyAgent):
    """DPO / IPO / robust DPO for language-model policies, on text pairs or mined episode pairs."""

    # The command line's data step: pairs from cfg.data or cfg.rl_log, tokenised for the policy.
    load_pairs = staticmethod(load_pairs)

    policy: LMPolicy
    config: DPOConfig

    # -- public interface -----------------------------------------------------------------
    def learn(self, env: Any = None, budget: int | None = None, demos: Pairs | Sequence[TokenPair] | None = None,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              resume_from: str | Path | None = None) -> dict[str, float]:
        """Train for ``budget`` optimizer steps (default ``config.max_steps``) on ``demos``
        (:class:`Pairs` from :func:`load_pairs`, or token pairs). ``env`` is not used."""
        cfg = self.config
        pairs = demos if isinstance(demos, Pairs) else Pairs(list(demos or ()), {})
        if not pairs.pairs:
            raise DataError("DPO needs preference pairs: pass demos= (load_pairs(policy, config))")
        budget = budget or cfg.max_steps
        policy = self.policy
        policy.sampling = dataclasses.replace(policy.sampling, max_new_tokens=cfg.max_new_tokens)
        order = np.random.default_rng(cfg.split_seed).permutation(len(pairs.pairs))
        val_count = min(round(len(order) * cfg.val_ratio), len(order) - 1)
        val = [pairs.pairs[i] for i in order[:val_count]]
        train = [pairs.pairs[i] for i in order[val_count:]]

        # The reference: LoRA's adapter switched off, or the starting weights (kept in the run).
        policy.float32_trainable_parameters()
        if not policy.has_reference:
            if resume_from is None:
                policy.freeze_reference()
                if self.run is not None:
                    policy.save_reference(self.run.dir / REFERENCE_DIR)
            else:
                policy.freeze_reference(reference_of(resume_from))
        policy.model.eval()  # dropout off: at the first step the policy and its reference agree exactly
        params = policy.trainable_parameters()
        optimizer = adamw(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

        def lr_at(step: int) -> float:
            return cosine_lr(step, budget, cfg.learning_rate, cfg.warmup_steps, cfg.min_lr_ratio)

        step, epoch, cursor, before = 0, 0, 0, {}
        if resume_from is not None:
            state = load_trainer_state(resume_from, optimizer, self.run)
            step, epoch, cursor = int(state["step"]), int(state["epoch"]), int(state["cursor"])
            before = {k: float(v) for k, v in state.get("before", {}).items()}
        report = {**pairs.report, "train_pairs": len(train), "held_out_pairs": len(val)}
        print("dpo: " + ", ".join(f"{k} {v}" for k, v in report.items() if not isinstance(v, list)), file=sys.stderr)
        if val and step == 0:
            before = self.evaluate(val)
            self._log(before, 0)  # the starting point of the curve

        lengths = [p.length for p in train]
        batches = bucketed_batches(lengths, cfg.batch_size, self.seed + epoch)
        reference_cache: dict[int, tuple[float, float]] = {}
        bar = tqdm(total=budget, initial=step, desc="dpo", unit="step", file=sys.stderr)
        metrics: dict[str, float] = {}
        window: list[dict[str, float]] = []
        window_pairs, window_start = 0, time.perf_counter()
        while step < budget:
            if cursor >= len(batches):
                epoch, cursor = epoch + 1, 0
                batches = bucketed_batches(lengths, cfg.batch_size, self.seed + epoch)
            indices = batches[cursor]
            cursor += 1
            batch = [train[i] for i in indices]
            ref_chosen, ref_rejected = self.reference_scores(batch, indices, reference_cache)
            chosen, rejected, n_chosen, n_rejected = side_logprobs(policy, batch)
            score_chosen, score_rejected = self.scores(chosen, rejected, n_chosen, n_rejected)
            losses = dpo_loss(score_chosen, score_rejected, ref_chosen, ref_rejected, cfg.beta, cfg.loss,
                              cfg.label_smoothing)
            set_lr(optimizer, lr_at(step))
            optimizer.zero_grad(set_to_none=True)
            losses.mean().backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            if math.isfinite(grad_norm):  # a non-finite gradient skips the step, not the run
                optimizer.step()
            step += 1
            bar.update(1)
            with torch.no_grad():
                window.append({"loss": float(losses.mean()), "grad_norm": grad_norm,
                               **preference_metrics(score_chosen, score_rejected, ref_chosen, ref_rejected, cfg.beta)})
            window_pairs += len(batch)
            if step % cfg.log_every == 0 or step == budget:
                elapsed = time.perf_counter() - window_start
                metrics = {f"train/{k}": float(np.mean([w[k] for w in window])) for k in window[0]}
                metrics |= {"train/lr": lr_at(step - 1), "train/epoch": epoch + cursor / max(len(batches), 1),
                            "train/pairs_per_s": window_pairs / max(elapsed, 1e-9),
                            "train/nonfinite_grad": float(not math.isfinite(grad_norm))}
                self._log(metrics, step)
                bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", acc=f"{metrics['train/accuracy']:.2f}",
                                refresh=False)
                window, window_pairs, window_start = [], 0, time.perf_counter()
            if val and (step % cfg.eval_every == 0 or step == budget):
                val_metrics = self.evaluate(val)
                self._log(val_metrics, step)
                metrics = {**metrics, **val_metrics}
            if callback is not None:
                callback(step, metrics)
            if self.run is not None and step % cfg.save_every == 0 and step < budget:
                self.run.save_training_checkpoint(step, policy, optimizer,
                                                  {"step": step, "epoch": epoch, "cursor": cursor, "before": before},
                                                  keep=cfg.keep_checkpoints)
        bar.close()
        if self.run is not None:
            after = {k: v for k, v in metrics.items() if k.startswith("eval/")}
            write_json_atomic(self.run.dir / "dpo.json", {**report, "steps": step, "before": before, "after": after})
            policy.save(self.run.final_dir)
        return metrics

    def scores(self, chosen: torch.Tensor, rejected: torch.Tensor, n_chosen: torch.Tensor,
               n_rejected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the loss compares: summed log-probs, or per-token means (``length_normalize``)."""
        if not self.config.length_normalize:
            return chosen, rejected
        return chosen / n_chosen.clamp(min=1), rejected / n_rejected.clamp(min=1)

    @torch.no_grad()
    def reference_scores(self, batch: Sequence[TokenPair], indices: Sequence[int],
                         cache: dict[int, tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's scores of the batch; each pair's computed once (the reference is frozen)."""
        missing = [k for k, i in enumerate(indices) if i not in cache]
        if missing:
            with self.policy.reference():
                c, r, nc, nr = side_logprobs(self.policy, [batch[k] for k in missing])
            sc, sr = self.scores(c, r, nc, nr)
            for k, a, b in zip(missing, sc.tolist(), sr.tolist(), strict=True):
                cache[indices[k]] = (a, b)
        device = self.policy.device
        return (torch.tensor([cache[i][0] for i in indices], device=device),
                torch.tensor([cache[i][1] for i in indices], device=device))

    @torch.no_grad()
    def evaluate(self, val: Sequence[TokenPair]) -> dict[str, float]:
        """``eval/*`` on the held-out pairs: loss, preference accuracy, margin, rewards and
        log-probs (see :func:`preference_metrics`), ``policy_accuracy`` (log pi alone prefers the
        chosen reply) and ``kl``: KL(pi || pi_ref) summed over the tokens of a held-out reply
        (exact per position, teacher-forced on the held-out replies), averaged over replies."""
        cfg = self.config
        order = sorted(range(len(val)), key=lambda i: val[i].length)
        parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        kl_sum = 0.0
        for start in range(0, len(order), cfg.batch_size):
            batch = [val[i] for i in order[start : start + cfg.batch_size]]
            mine, n = self.reply_logprobs(batch, reference=False)
            theirs, _ = self.reply_logprobs(batch, reference=True)
            kl_sum += float((mine.exp() * (mine - theirs)).sum())
            owner, targets = self._owners(batch)
            for name, table in (("policy", mine), ("reference", theirs)):
                picked = table.gather(-1, targets[:, None]).squeeze(-1)
                sums = torch.zeros(2 * len(batch), device=picked.device).index_add(0, owner, picked)
                c, r = self.scores(sums[: len(batch)], sums[len(batch):], n[: len(batch)], n[len(batch):])
                parts[name + "_c"].append(c)
                parts[name + "_r"].append(r)
        c, r, rc, rr = (torch.cat(parts[k]) for k in ("policy_c", "policy_r", "reference_c", "reference_r"))
        losses = dpo_loss(c, r, rc, rr, cfg.beta, cfg.loss, cfg.label_smoothing)
        metrics = {"loss": float(losses.mean()), **preference_metrics(c, r, rc, rr, cfg.beta),
                   "policy_accuracy": float(((c > r).float() + 0.5 * (c == r).float()).mean()),
                   "kl": kl_sum / (2 * len(val))}
        return {f"eval/{k}": v for k, v in metrics.items()}

    def _owners(self, batch: Sequence[TokenPair]) -> tuple[torch.Tensor, torch.Tensor]:
        """(side of each reply token, the token itself), in the order :meth:`reply_logprobs` gives."""
        rows = pair_rows(batch)
        owner = [k for t, k in rows for _ in t.completion_ids]
        targets = [i for t, _ in rows for i in t.completion_ids]
        device = self.policy.device
        return torch.tensor(owner, device=device), torch.tensor(targets, device=device)

    def reply_logprobs(self, batch: Sequence[TokenPair], reference: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(next-token log-distributions at every reply token of the batch, ``(tokens, vocab)``;
        reply tokens per side) of the policy or its reference: one forward pass."""
        policy = self.policy
        rows = pair_rows(batch)
        padded = pad_right([[*t.prompt_ids, *t.completion_ids] for t, _ in rows],
                           [[0] * len(t.prompt_ids) + [1] * len(t.completion_ids) for t, _ in rows],
                           policy.tokenizer.pad_token_id)
        ids, attention = padded["input_ids"].to(policy.device), padded["attention_mask"].to(policy.device)
        # Position t - 1 predicts reply token t; the output layer runs from the shortest prompt's end on.
        first_reply = max(1, min(len(t.prompt_ids) for t, _ in rows))
        where = padded["loss_mask"][:, first_reply:].bool().to(policy.device)
        with policy.reference() if reference else contextlib.nullcontext(), policy.autocast():
            logits = policy.model(input_ids=ids, attention_mask=attention, use_cache=False,
                                  logits_to_keep=ids.shape[1] - first_reply + 1).logits[:, :-1]
        counts = torch.zeros(2 * len(batch), device=policy.device)
        counts.index_add_(0, torch.tensor([k for _, k in rows], device=policy.device),
                          torch.tensor([float(len(t.completion_ids)) for t, _ in rows], device=policy.device))
        return torch.log_softmax(logits[where].float(), dim=-1), counts
