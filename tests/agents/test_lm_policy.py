"""LMPolicy: sampling records, teacher-forced scoring, save/load, LoRA and checkpoint errors.

A tiny configuration of the default architecture keeps these fast; the default size itself
is checked without running it.
"""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.core.checkpoint import CheckpointError
from agents.core.policy import Policy
from agents.core.rollout import EpisodeSpec, play_episodes
from agents.policies.lm.model import default_model_config, load_pretrained
from agents.policies.lm.policy import LMPolicy, SamplingConfig, _NoRepeatInCompletion

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 2}
PROMPTS = ["soare 01020\ncrane 20001\n", "hi", "Rules: ✓ → keep  it\n\n<think>x</think><guess>crane</guess>"]




def tiny_policy(seed: int = 0, **sampling) -> LMPolicy:
    sampling_config = SamplingConfig(**{"max_new_tokens": 8, **sampling})
    return LMPolicy.default(seed=seed, device="cpu", sampling=sampling_config, **TINY)


@pytest.fixture(scope="module")
def policy() -> LMPolicy:
    return tiny_policy()


def test_default_model_size_is_documented_and_small() -> None:
    config = default_model_config()
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("llama", 192, 4)
    with torch.device("meta"):  # count parameters without allocating them
        from transformers import LlamaForCausalLM

        n = sum(p.numel() for p in LlamaForCausalLM(config).parameters())
    assert 1_500_000 < n < 2_200_000  # the 1.8M documented in agents/lm/model.py


def test_is_a_policy_and_defaults_to_cpu_without_cuda(policy: LMPolicy) -> None:
    assert isinstance(policy, Policy)
    if not torch.cuda.is_available():
        assert policy.device.type == "cpu"
        assert next(policy.model.parameters()).dtype == torch.float32


def test_same_seed_same_weights_different_seed_different() -> None:
    a, b, c = tiny_policy(1), tiny_policy(1), tiny_policy(2)
    wa, wb, wc = (next(p.model.parameters()) for p in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_generate_works_on_the_raw_model(policy: LMPolicy) -> None:
    ids = torch.tensor([policy.encode_prompts(["hi"])[0]])
    out = policy.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=5,
                                do_sample=False, pad_token_id=policy.tokenizer.pad_token_id)
    assert ids.shape[1] < out.shape[1] <= ids.shape[1] + 5
    assert torch.equal(out[0, : ids.shape[1]], ids[0])


def test_act_records_tokens_consistent_with_texts_and_rescoring(policy: LMPolicy) -> None:
    torch.manual_seed(0)
    texts, logp = policy.act(PROMPTS)
    assert len(texts) == len(PROMPTS) and logp.shape == (len(PROMPTS),)
    assert policy.last_tokens is not None and len(policy.last_tokens) == len(PROMPTS)
    for text, total, turn, prompt in zip(texts, logp, policy.last_tokens, PROMPTS, strict=True):
        assert list(turn.prompt_ids) == policy.encode_prompts([prompt])[0]
        assert 1 <= len(turn.completion_ids) <= 8
        assert policy.tokenizer.decode(list(turn.completion_ids), skip_special_tokens=True) == text
        assert total == pytest.approx(sum(turn.logprobs))
        assert all(lp <= 0 for lp in turn.logprobs)
    # Teacher forcing the sampled ids (right-padded, no cache) reproduces the sampling log-probs
    # (left-padded, KV cache): same positions, same distribution.
    rescored = policy.log_prob_tokens(policy.last_tokens)
    assert rescored.requires_grad
    np.testing.assert_allclose(rescored.detach().numpy(), logp, rtol=1e-4, atol=1e-4)
    batch = policy.batch_turns(policy.last_tokens)
    per_token = policy.token_logprobs(batch["input_ids"], batch["attention_mask"]).detach()
    for row, turn in enumerate(policy.last_tokens):
        got = per_token[row][batch["loss_mask"][row].bool()].numpy()
        np.testing.assert_allclose(got, turn.logprobs, atol=1e-4)


def test_recorded_logprobs_follow_the_sampling_temperature() -> None:
    hot = tiny_policy(temperature=2.0)
    torch.manual_seed(1)
    _, logp = hot.act(PROMPTS)
    np.testing.assert_allclose(hot.log_prob_tokens(hot.last_tokens).detach().numpy(), logp, atol=1e-4)
    at_one = hot.log_prob_tokens(hot.last_tokens, temperature=1.0).detach().numpy()
    assert not np.allclose(at_one, logp, atol=1e-3)


def test_act_stops_at_end_of_turn_and_strips_it(policy: LMPolicy) -> None:
    eos = policy.tokenizer.eos_token_id

    def favour_end_of_turn(module, inputs, logits):
        return logits.index_add(-1, torch.tensor([eos]), torch.full((*logits.shape[:-1], 1), 100.0))

    hook = policy.model.get_output_embeddings().register_forward_hook(favour_end_of_turn)
    try:
        torch.manual_seed(0)
        texts, logp = policy.act(PROMPTS)
    finally:
        hook.remove()
    assert texts == [""] * len(PROMPTS)
    assert all(turn.completion_ids == (eos,) for turn in policy.last_tokens)
    np.testing.assert_allclose(logp, 0.0, atol=1e-4)


def test_deterministic_act_is_greedy_and_repeatable(policy: LMPolicy) -> None:
    texts_a, logp_a = policy.act(PROMPTS, deterministic=True)
    texts_b, logp_b = policy.act(PROMPTS, deterministic=True)
    assert texts_a == texts_b
    np.testing.assert_allclose(logp_a, logp_b, atol=1e-6)
    # Greedy: each recorded token is the argmax of its teacher-forced distribution.
    batch = policy.batch_turns(policy.last_tokens)
    with torch.no_grad():
        logits = policy.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    turn = policy.last_tokens[0]
    start = len(turn.prompt_ids)
    for k, token in enumerate(turn.completion_ids):
        assert int(logits[0, start + k - 1].argmax()) == token


def test_small_top_p_samples_the_top_token(policy: LMPolicy) -> None:
    greedy, _ = policy.act(PROMPTS, deterministic=True)
    narrow = tiny_policy(top_p=1e-6)
    torch.manual_seed(3)
    sampled, _ = narrow.act(PROMPTS)
    assert sampled == greedy


def test_log_prob_of_text_matches_the_chat_template_assistant_mask(policy: LMPolicy) -> None:
    completions = ["<think>ok</think><guess>crane</guess>", "a  b\nc"]
    obs = PROMPTS[:2]
    scores = policy.log_prob(obs, completions)
    conversations = [[{"role": "user", "content": o}, {"role": "assistant", "content": c}]
                     for o, c in zip(obs, completions, strict=True)]
    batch = policy.encode_chats(conversations)
    per_token = policy.token_logprobs(batch["input_ids"], batch["attention_mask"])
    expected = (per_token * batch["loss_mask"]).sum(-1)
    torch.testing.assert_close(scores, expected, atol=1e-4, rtol=1e-4)
    # Differentiable: SFT/GRPO backpropagate through it.
    scores.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.model.parameters())
    policy.model.zero_grad(set_to_none=True)


def test_token_logprobs_ignore_padding_side(policy: LMPolicy) -> None:
    ids = policy.encode_prompts(["abc"])[0]
    pad = policy.tokenizer.pad_token_id
    right = torch.tensor([[*ids, pad, pad]])
    left = torch.tensor([[pad, pad, *ids]])
    mask_r = torch.tensor([[1] * len(ids) + [0, 0]])
    mask_l = mask_r.flip(-1)
    with torch.no_grad():
        lr = policy.token_logprobs(right, mask_r)[0, : len(ids)]
        ll = policy.token_logprobs(left, mask_l)[0, 2:]
    torch.testing.assert_close(lr, ll, atol=1e-5, rtol=1e-5)
    assert lr[0] == 0 and (lr[1:] < 0).all()


def test_save_load_round_trip_gives_identical_outputs(policy: LMPolicy, tmp_path) -> None:
    policy.save(tmp_path / "ckpt")
    manifest = json.loads((tmp_path / "ckpt" / "policy.json").read_text())
    assert manifest["kind"] == "lm" and manifest["lora"] is None and manifest["base_model"] == "default"
    assert manifest["sampling"]["max_new_tokens"] == 8
    assert (tmp_path / "ckpt" / "model" / "model.safetensors").is_file()
    loaded = LMPolicy.load(tmp_path / "ckpt", device="cpu")
    assert loaded.sampling == policy.sampling
    torch.manual_seed(7)
    texts_a, logp_a = policy.act(PROMPTS)
    torch.manual_seed(7)
    texts_b, logp_b = loaded.act(PROMPTS)
    assert texts_a == texts_b
    np.testing.assert_allclose(logp_a, logp_b, atol=1e-6)
    assert [t.completion_ids for t in loaded.last_tokens] == [t.completion_ids for t in policy.last_tokens]


def test_load_through_the_policy_registry(policy: LMPolicy, tmp_path) -> None:
    import importlib

    from agents.core.loading import POLICY_KINDS

    module_name, class_name = POLICY_KINDS["lm"].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    policy.save(tmp_path / "c")
    assert isinstance(cls.load(tmp_path / "c", device="cpu"), LMPolicy)
    # --model may also name one of our own checkpoints.
    again = LMPolicy.from_pretrained(tmp_path / "c", device="cpu")
    assert again.act(PROMPTS, deterministic=True)[0] == policy.act(PROMPTS, deterministic=True)[0]


def test_from_pretrained_loads_a_plain_hf_directory(policy: LMPolicy, tmp_path) -> None:
    policy.model.save_pretrained(tmp_path / "hf")
    policy.tokenizer.save_pretrained(tmp_path / "hf")
    other = LMPolicy.from_pretrained(tmp_path / "hf", device="cpu")
    a, _ = policy.act(PROMPTS, deterministic=True)
    b, _ = other.act(PROMPTS, deterministic=True)
    assert a == b
    assert other.base_model == str(tmp_path / "hf")


def _perturb_adapter(policy: LMPolicy) -> None:
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)


def test_lora_train_save_load_merge_and_reference(tmp_path) -> None:
    policy = tiny_policy(seed=4)
    base_texts, base_logp = policy.act(PROMPTS, deterministic=True)
    base_turns = policy.last_tokens
    policy.enable_lora(r=4, alpha=8, dropout=0.0)
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert sum("down_proj" in n for n in trainable) and sum("q_proj" in n for n in trainable)
    _perturb_adapter(policy)
    with torch.no_grad():
        adapted = policy.log_prob_tokens(base_turns)
        with policy.reference():
            reference = policy.log_prob_tokens(base_turns)
    np.testing.assert_allclose(reference.numpy(), base_logp, atol=1e-4)
    assert not np.allclose(adapted.numpy(), base_logp, atol=1e-2)

    policy.save(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "lora" / "policy.json").read_text())["lora"]["r"] == 4
    reattached = LMPolicy.load(tmp_path / "lora", device="cpu")
    merged = LMPolicy.load(tmp_path / "lora", device="cpu", merge_lora=True)
    assert reattached.lora is not None and merged.lora is None
    assert any(p.requires_grad and "lora_" in n for n, p in reattached.model.named_parameters())
    with torch.no_grad():
        for other in (reattached, merged):
            np.testing.assert_allclose(other.log_prob_tokens(base_turns).numpy(), adapted.numpy(), atol=1e-4)
        with reattached.reference():
            np.testing.assert_allclose(reattached.log_prob_tokens(base_turns).numpy(), base_logp, atol=1e-4)
    assert reattached.act(PROMPTS, deterministic=True)[0] == policy.act(PROMPTS, deterministic=True)[0]
    assert policy.act(PROMPTS, deterministic=True)[0] != base_texts


def test_training_upcasts_only_the_trainable_weights_of_a_bf16_model() -> None:
    # A checkpoint loads in bf16 on a GPU; AdamW must still update float32 weights.
    full = tiny_policy(seed=6)
    full.model.to(torch.bfloat16)
    full.float32_trainable_parameters()
    assert {p.dtype for p in full.model.parameters()} == {torch.float32}
    assert full.model.get_output_embeddings().weight is full.model.get_input_embeddings().weight

    lora = tiny_policy(seed=6)
    lora.model.to(torch.bfloat16)
    lora.enable_lora(r=4, alpha=8, dropout=0.0)
    lora.float32_trainable_parameters()
    dtypes = {n: p.dtype for n, p in lora.model.named_parameters()}
    assert {d for n, d in dtypes.items() if "lora_" in n} == {torch.float32}
    assert {d for n, d in dtypes.items() if "lora_" not in n} == {torch.bfloat16}  # frozen base stays small
    lora.act(PROMPTS, deterministic=True)
    turns = lora.last_tokens
    assert torch.isfinite(lora.log_prob_tokens(turns)).all()


def test_lora_on_a_pretrained_base_saves_only_the_adapter(policy: LMPolicy, tmp_path) -> None:
    import shutil

    policy.model.save_pretrained(tmp_path / "hf")
    policy.tokenizer.save_pretrained(tmp_path / "hf")
    tuned = LMPolicy.from_pretrained(tmp_path / "hf", device="cpu")
    tuned.enable_lora(r=2)
    _perturb_adapter(tuned)
    tuned.save(tmp_path / "ckpt")
    manifest = json.loads((tmp_path / "ckpt" / "policy.json").read_text())
    assert manifest["base_weights"] == str(tmp_path / "hf")
    assert not (tmp_path / "ckpt" / "model").exists()
    _, logp = tuned.act(PROMPTS, deterministic=True)
    _, again = LMPolicy.load(tmp_path / "ckpt", device="cpu").act(PROMPTS, deterministic=True)
    np.testing.assert_allclose(again, logp, atol=1e-5)
    shutil.rmtree(tmp_path / "hf")
    with pytest.raises(CheckpointError, match="no such local directory"):
        LMPolicy.load(tmp_path / "ckpt", device="cpu")


def test_reference_without_lora_needs_a_snapshot() -> None:
    policy = tiny_policy(seed=5)
    with pytest.raises(RuntimeError, match="freeze_reference"), policy.reference():
        pass
    policy.freeze_reference()
    _, sampled_logp = policy.act(PROMPTS)
    turns = policy.last_tokens
    with torch.no_grad():
        next(policy.model.parameters()).add_(0.5)  # "training" moves the policy away
        with policy.reference():
            ref = policy.log_prob_tokens(turns)
        moved = policy.log_prob_tokens(turns)
    np.testing.assert_allclose(ref.numpy(), sampled_logp, atol=1e-4)
    assert not np.allclose(moved.numpy(), sampled_logp, atol=1e-3)


@pytest.mark.parametrize("damage", ["truncate_weights", "drop_manifest", "bad_manifest", "drop_tokenizer",
                                    "wrong_kind", "bad_sampling"])
def test_corrupt_or_incomplete_checkpoints_raise_checkpoint_error(policy: LMPolicy, tmp_path, damage) -> None:
    ckpt = tmp_path / "ckpt"
    policy.save(ckpt)
    manifest = ckpt / "policy.json"
    if damage == "truncate_weights":
        weights = ckpt / "model" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "drop_manifest":
        manifest.unlink()
    elif damage == "bad_manifest":
        manifest.write_text("{not json")
    elif damage == "drop_tokenizer":
        for f in (ckpt / "tokenizer").iterdir():
            f.unlink()
        (ckpt / "tokenizer").rmdir()
    elif damage == "wrong_kind":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "kind": "gaussian_mlp"}))
    elif damage == "bad_sampling":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "sampling": {"temperature": -1}}))
    with pytest.raises(CheckpointError):
        LMPolicy.load(ckpt, device="cpu")


def test_missing_lora_adapter_is_reported(tmp_path) -> None:
    policy = tiny_policy(seed=6)
    policy.enable_lora(r=2)
    policy.save(tmp_path / "c")
    (tmp_path / "c" / "adapter" / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="adapter"):
        LMPolicy.load(tmp_path / "c", device="cpu")


def test_missing_model_path_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such local directory"):
        load_pretrained(tmp_path / "nope", device="cpu")
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        LMPolicy.from_pretrained(tmp_path, device="cpu")


def _repeated_runs(ids: list[int], n: int) -> int:
    runs = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(runs) - len(set(runs))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 4), prompt=st.lists(st.integers(0, 4), min_size=0, max_size=6),
       completion=st.lists(st.integers(0, 4), min_size=1, max_size=30))
def test_no_repeat_bans_exactly_the_tokens_that_would_repeat_a_run(n, prompt, completion) -> None:
    """Fed a completion one token at a time, the banned set is the brute-force answer: the
    tokens that followed an earlier copy of the last n-1 completion tokens (prompt ignored)."""
    ban = _NoRepeatInCompletion(n, prompt_width=len(prompt))
    for t in range(len(completion) + 1):
        ids = prompt + completion[:t]
        out = ban(torch.tensor([ids]), torch.zeros(1, 5))
        done = completion[:t]
        expected = {done[i + n - 1] for i in range(len(done) - n + 1)
                    if done[i:i + n - 1] == done[len(done) - n + 1:]} if len(done) >= n - 1 else set()
        assert {int(k) for k in torch.nonzero(out[0] == float("-inf")).flatten()} == expected


def test_no_repeat_keeps_greedy_completions_free_of_repeated_runs() -> None:
    looping = tiny_policy(max_new_tokens=48)
    blocked = tiny_policy(max_new_tokens=48, no_repeat_ngram_size=3)
    looping.act(PROMPTS, deterministic=True)
    assert any(_repeated_runs(list(t.completion_ids), 3) for t in looping.last_tokens)  # untrained: loops
    blocked.act(PROMPTS, deterministic=True)
    for turn in blocked.last_tokens:
        assert _repeated_runs(list(turn.completion_ids), 3) == 0
        assert all(math.isfinite(lp) for lp in turn.logprobs)
    blocked.act(PROMPTS)  # sampling too, with log-probs of what was sampled
    for turn in blocked.last_tokens:
        assert _repeated_runs(list(turn.completion_ids), 3) == 0
        assert all(math.isfinite(lp) for lp in turn.logprobs)


def test_sampling_config_validates() -> None:
    for bad in ({"temperature": 0}, {"top_p": 0}, {"top_p": 1.5}, {"max_new_tokens": 0},
                {"no_repeat_ngram_size": -1}):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)
    assert math.isclose(SamplingConfig().temperature, 1.0)


class _EchoTextEnv(gym.Env):
    """Two-turn text env: the observation is the turn number, any completion is accepted."""

    observation_space = spaces.Text(max_length=64)
    action_space = spaces.Text(max_length=64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.turn = 0
        return f"turn {self.turn}", {}

    def step(self, action):
        self.turn += 1
        return f"turn {self.turn}", 0.0, self.turn >= 2, False, {}


def test_rollout_stores_the_sampled_tokens_on_episodes(policy: LMPolicy) -> None:
    episodes = play_episodes(_EchoTextEnv, policy, [EpisodeSpec(seed=s) for s in range(3)],
                             batch_size=3, deterministic=False)
    assert len(episodes) == 3
    for episode in episodes:
        assert episode.tokens is not None and len(episode.tokens) == 2
        for obs, action, turn in zip(episode.observations, episode.actions, episode.tokens, strict=True):
            assert list(turn.prompt_ids) == policy.encode_prompts([obs])[0]
            assert policy.tokenizer.decode(list(turn.completion_ids), skip_special_tokens=True) == action


def test_supervised_steps_on_chat_masks_teach_act_the_reply() -> None:
    # The training format (encode_chats + loss_mask) and the acting format (generation prompt,
    # stop at end-of-turn) must agree, or SFT would not transfer to act.
    policy = tiny_policy(seed=8)
    reply = "<guess>crane</guess>"
    conversations = [[{"role": "user", "content": "soare x-✓xx\n"}, {"role": "assistant", "content": reply}]]
    batch = policy.encode_chats(conversations)
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=1e-2)
    for _ in range(60):
        logprobs = policy.token_logprobs(batch["input_ids"], batch["attention_mask"])
        loss = -(logprobs * batch["loss_mask"]).sum() / batch["loss_mask"].sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.sampling.max_new_tokens = 40
    texts, _ = policy.act(["soare x-✓xx\n"], deterministic=True)
    assert texts == [reply]
    assert policy.last_tokens[0].completion_ids[-1] == policy.tokenizer.eos_token_id
