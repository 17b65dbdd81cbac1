"""SFT agent: assistant-only masks, bucketing, loss goes down, checkpoints resume exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from agents.algos.sft import SFTAgent, SFTConfig, TokenizedSet, bucketed_batches, masked_loss
from agents.core.run import Run, resumable_checkpoint
from agents.policies.lm.policy import LMPolicy

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64, "num_attention_heads": 2,
        "num_key_value_heads": 2}




def tiny_policy(seed: int = 0) -> LMPolicy:
    return LMPolicy.default(seed=seed, device="cpu", **TINY)


def wordle_like_data(n: int = 24) -> list[list[dict[str, str]]]:
    words = ["crane", "slate", "pious", "ghost", "lemon", "brick"]
    return [[{"role": "user", "content": f"{words[i % 6]} x-✓xx" * (1 + i % 3)},
             {"role": "assistant", "content": f"<think></think><guess>{words[(i + 1) % 6]}</guess>"}]
            for i in range(n)]


def test_loss_mask_covers_exactly_every_assistant_turn() -> None:
    policy = tiny_policy()
    tok = policy.tokenizer
    conversation = [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "cd"},
                    {"role": "user", "content": "e"}, {"role": "assistant", "content": "<guess>f</guess>"}]
    data = TokenizedSet.build(policy, [conversation], max_length=512)
    ids, mask = data.ids[0], data.masks[0]
    end = tok.eos_token_id
    expected_ids = ([tok.bos_token_id, tok.convert_tokens_to_ids("<|user|>"), *tok.convert_tokens_to_ids(list("ab")), end, tok.convert_tokens_to_ids("<|assistant|>"), *tok.convert_tokens_to_ids(list("cd")), end, tok.convert_tokens_to_ids("<|user|>"), *tok.convert_tokens_to_ids(["e"]), end, tok.convert_tokens_to_ids("<|assistant|>"), *tok.convert_tokens_to_ids(["<guess>", "f", "</guess>"]), end])
    assert ids == expected_ids
    trained = [i for i, m in enumerate(mask) if m]
    # c d <|end|> (positions 6-8) and <guess> f </guess> <|end|> (positions 13-16)
    assert trained == [6, 7, 8, 13, 14, 15, 16]


def test_empty_loss_mask_is_an_error_not_a_silent_zero() -> None:
    policy = tiny_policy()
    data = TokenizedSet([[2, 10, 11, 12]], [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="empty loss mask"):
        masked_loss(policy, data.batch([0], policy.tokenizer.pad_token_id))
    short = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    long = [{"role": "user", "content": "x" * 50}, {"role": "assistant", "content": "y"}]
    with pytest.raises(ValueError, match="no conversation has assistant tokens"):
        TokenizedSet.build(policy, [long], max_length=10)
    kept = TokenizedSet.build(policy, [long, short], max_length=10)  # the long one is skipped, not truncated to nothing
    assert len(kept) == 1 and sum(kept.masks[0]) == 2


def test_bucketed_batches_cover_each_item_once_with_little_padding() -> None:
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = bucketed_batches(lengths, batch_size=16, seed=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded / sum(lengths) < 1.1  # random batches pad about 2x here
    assert bucketed_batches(lengths, 16, seed=0) == batches
    assert bucketed_batches(lengths, 16, seed=1) != batches


def test_tiny_sft_run_lowers_loss_and_writes_checkpoints(tmp_path: Path) -> None:
    policy = tiny_policy()
    config = SFTConfig(max_steps=60, batch_size=8, learning_rate=3e-3, warmup_steps=5, eval_every=20,
                       save_every=20, log_every=10, val_ratio=0.1)
    run = Run(tmp_path / "run", {"test": True})
    data = wordle_like_data()
    agent = SFTAgent(policy, config, run=run, seed=0)
    val = TokenizedSet.build(policy, data, 512)
    before = agent.validate(val)["eval/loss"]
    metrics = agent.learn(None, demos=data)
    after = agent.validate(val)["eval/loss"]
    assert after < 0.5 * before
    assert metrics["train/loss"] < before
    assert (run.final_dir / "policy.json").is_file() and (run.dir / "best" / "policy.json").is_file()
    steps = sorted(p.name for p in (run.dir / "checkpoints").iterdir())
    assert steps == ["step_20", "step_40"]  # keep_checkpoints=2; the last step is final/
    run.close()
    assert list(run.dir.glob("events.out.tfevents.*"))


def test_a_bf16_checkpoint_trains_float32_weights() -> None:
    # Checkpoints load in bf16 on a GPU; SFT must not run AdamW on bf16 weights.
    policy = tiny_policy()
    policy.model.to(torch.bfloat16)
    config = SFTConfig(max_steps=2, batch_size=8, warmup_steps=0, val_ratio=0.0)
    metrics = SFTAgent(policy, config, seed=0).learn(None, demos=wordle_like_data())
    assert {p.dtype for p in policy.model.parameters()} == {torch.float32}
    assert math.isfinite(metrics["train/loss"])


def test_resume_continues_exactly_where_the_checkpoint_left(tmp_path: Path) -> None:
    config = SFTConfig(max_steps=12, batch_size=4, learning_rate=3e-3, warmup_steps=2, save_every=6,
                       eval_every=100, val_ratio=0.0, keep_checkpoints=5)
    data = wordle_like_data(16)

    straight = tiny_policy()
    SFTAgent(straight, config, run=Run(tmp_path / "a", tensorboard=False), seed=1).learn(None, demos=data)

    class Interrupt(Exception):
        pass

    def stop_at_7(step: int, metrics: dict) -> None:
        if step == 7:
            raise Interrupt

    interrupted_run = Run(tmp_path / "b", tensorboard=False)
    with pytest.raises(Interrupt):
        SFTAgent(tiny_policy(), config, run=interrupted_run, seed=1).learn(None, demos=data, callback=stop_at_7)
    checkpoint = resumable_checkpoint(interrupted_run.dir)
    assert checkpoint is not None and checkpoint.name == "step_6"
    resumed = LMPolicy.load(checkpoint, device="cpu")
    SFTAgent(resumed, config, run=interrupted_run, seed=1).learn(None, demos=data, resume_from=checkpoint)

    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
