"""GRPO: estimators against hand-computed values, loss masks on a multi-turn transcript, the
reference KL at step 0, bad input (NaN / inf rewards, all-equal groups, empty masks, cut
completions), episode records, exact resume, and a tiny deterministic run that learns a
text bandit. Tiny models, one thread: the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_envs import make_target_env  # tests/agents is on sys.path (rootdir-less test modules)

from agents.algos.grpo import (
    GRPOAgent,
    GRPOConfig,
    baselines_and_scales,
    build_rows,
    clipped_loss,
    group_advantages,
    k3_kl,
    turn_advantages,
)
from agents.core.config import ConfigError, build, read_yaml
from agents.core.rollout import EpisodeSpec, play_episodes
from agents.core.run import TRAINER_STATE, Run, resumable_checkpoint
from agents.core.trajectory import Episode, TurnTokens, read_episodes
from agents.policies.lm.policy import LMPolicy
from agents.policies.lm.tokenizer import encode_prompt

LETTERS = "abcdefghijklmnopqrstuvwxyz"  # a dense reward: most groups have mixed returns
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64,
        "num_attention_heads": 2, "num_key_value_heads": 2}




def tiny_policy(seed: int = 0) -> LMPolicy:
    torch.manual_seed(seed)
    return LMPolicy.default(seed, device="cpu", **TINY)


def small_config(**overrides) -> GRPOConfig:
    values = {"iterations": 2, "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 4,
              "learning_rate": 1e-2} | overrides
    return GRPOConfig(**values)


# ------------------------------------------------------------------------------ estimators
RETURNS = [[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 2.0], [2.0, 2.0, 2.0]]


def test_grpo_divides_by_the_group_sample_std() -> None:
    a = group_advantages(RETURNS, "grpo", eps=0.0)
    # [1,0,0,1]: mean 0.5, sample std sqrt(1/3); [3,1,2]: mean 2, sample std 1.
    s = math.sqrt(1 / 3)
    np.testing.assert_allclose(a[0], [0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s])
    np.testing.assert_allclose(a[1], [1.0, -1.0, 0.0])
    np.testing.assert_array_equal(a[2], [0.0, 0.0, 0.0])


def test_dr_grpo_only_centres() -> None:
    a = group_advantages(RETURNS, "dr_grpo")
    np.testing.assert_allclose(a[0], [0.5, -0.5, -0.5, 0.5])
    np.testing.assert_allclose(a[1], [1.0, -1.0, 0.0])
    np.testing.assert_array_equal(a[2], [0.0, 0.0, 0.0])


def test_rloo_uses_the_leave_one_out_mean() -> None:
    a = group_advantages(RETURNS, "rloo")
    np.testing.assert_allclose(a[0], [1 - 1 / 3, -2 / 3, -2 / 3, 1 - 1 / 3])
    np.testing.assert_allclose(a[1], [3 - 1.5, 1 - 2.5, 2 - 2.0])
    np.testing.assert_array_equal(a[2], [0.0, 0.0, 0.0])


def test_reinforce_pp_centres_then_whitens_over_the_live_groups() -> None:
    a = group_advantages(RETURNS, "reinforce_pp", eps=0.0)
    # Centred: [.5,-.5,-.5,.5] and [1,-1,0]; batch mean 0, population std sqrt(3/7).
    s = math.sqrt(3 / 7)
    np.testing.assert_allclose(a[0], np.array([0.5, -0.5, -0.5, 0.5]) / s)
    np.testing.assert_allclose(a[1], np.array([1.0, -1.0, 0.0]) / s)
    np.testing.assert_array_equal(a[2], [0.0, 0.0, 0.0])
    flat = np.concatenate(a[:2])
    assert abs(flat.mean()) < 1e-12 and abs(flat.std() - 1) < 1e-12


@pytest.mark.parametrize("estimator", ["grpo", "dr_grpo", "rloo", "reinforce_pp"])
def test_all_equal_groups_have_zero_scale(estimator: str) -> None:
    assert all(s == 0 for _, s in baselines_and_scales([[1.0] * 4, [0.0, 0.0]], estimator))


def test_turn_advantages_episode_and_return_to_go() -> None:
    rewards = [0.5, 0.0, 1.0]
    assert turn_advantages(rewards, baseline=0.5, scale=2.0, credit="episode") == [2.0, 2.0, 2.0]
    # Returns-to-go 1.5, 1.0, 1.0.
    assert turn_advantages(rewards, baseline=0.5, scale=2.0, credit="return_to_go") == [2.0, 1.0, 1.0]


def test_clipped_loss_and_k3() -> None:
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.0, 1.5, 0.5, 1.5]))
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, clipped = clipped_loss(new, old, adv, epsilon=0.2, epsilon_high=0.28)
    # ratio 1.5 with A>0 is clipped to 1.28; 0.5 with A<0 clipped to 0.8; 1.5 with A<0 not clipped.
    torch.testing.assert_close(loss, torch.tensor([-1.0, -1.28, 0.8, 1.5]))
    assert clipped.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert float(k3_kl(new, new).abs().max()) == 0.0
    assert bool((k3_kl(new, old) > 0)[1:].all())


def test_config_rejects_bad_values() -> None:
    for bad in ({"estimator": "ppo"}, {"loss_agg": "sum"}, {"group_size": 1}, {"temperature": 0.0},
                {"turn_credit": "gae"}, {"beta": -1.0}):
        with pytest.raises(ValueError):
            GRPOConfig(**bad)


def test_wordle_yaml_builds() -> None:
    values = read_yaml("configs/wordle_grpo.yaml")
    assert values["agent"] == "grpo"
    config = build(GRPOConfig, values["grpo"], "grpo")
    assert config.group_size >= 2
    with pytest.raises(ConfigError):
        build(GRPOConfig, {"nope": 1}, "grpo")


# ------------------------------------------------------------------------------ multi-turn masks
def test_multi_turn_rows_train_only_the_sampled_completion_ids() -> None:
    policy = tiny_policy()
    make = make_target_env(turns=3)
    episodes = play_episodes(make, policy, [EpisodeSpec(seed=1)] * 2, deterministic=False)
    special = set(policy.tokenizer.all_special_ids)
    for ep in episodes:
        assert ep.tokens is not None and len(ep.tokens) == 3
        for obs, action, turn in zip(ep.observations, ep.actions, ep.tokens, strict=True):
            # Re-tokenising the transcript reproduces the sampled ids, except for special
            # tokens sampled mid-completion (dropped from the text the env sees): that drift
            # is why GRPO trains on the recorded ids.
            assert list(turn.prompt_ids) == encode_prompt(policy.tokenizer, obs)
            ids = list(policy.tokenizer(action, add_special_tokens=False)["input_ids"])
            assert ids == [t for t in turn.completion_ids if t not in special]
    # Turn 2's prompt holds turn 1's completion (as environment text): masked there.
    advantages = [[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]
    rows, empty = build_rows(episodes, advantages, "token-mean", norm_tokens=4)
    assert empty == 0 and len(rows) == 6
    batch = policy.batch_turns([r.turn for r in rows])
    for k, row in enumerate(rows):
        n_prompt, n_completion = len(row.turn.prompt_ids), len(row.turn.completion_ids)
        mask = batch["loss_mask"][k].tolist()
        assert mask[:n_prompt] == [0] * n_prompt
        assert mask[n_prompt : n_prompt + n_completion] == [1] * n_completion
        assert sum(mask) == n_completion
        assert batch["input_ids"][k, n_prompt : n_prompt + n_completion].tolist() == list(row.turn.completion_ids)
    total = sum(len(r.turn.completion_ids) for r in rows)
    assert math.isclose(sum(r.weight * len(r.turn.completion_ids) for r in rows), 1.0)
    assert all(math.isclose(r.weight, 1 / total) for r in rows)


def test_multi_turn_episodes_train_every_policy_turn_with_returns_to_go(tmp_path) -> None:
    seen: list[dict[str, float]] = []
    run = Run(tmp_path, tensorboard=False)
    config = small_config(iterations=1, prompts_per_step=3, turn_credit="return_to_go", estimator="dr_grpo")
    GRPOAgent(tiny_policy(), config, run=run, seed=0).learn(
        make_target_env(turns=3, target=LETTERS), callback=lambda i, m: seen.append(m))
    episodes = list(read_episodes(run.episodes_path))
    trained = [e for e in episodes if e.info["grpo"]["trained"]]
    assert trained and seen[0]["train/trained_tokens"] == sum(
        len(t.completion_ids) for e in trained for t in e.tokens or ())
    for e in trained:
        to_go = np.cumsum(e.rewards[::-1])[::-1]
        advantages = e.info["grpo"]["turn_advantages"]
        # dr_grpo: A_t = G_t - mean of the group's episode returns, the same baseline every turn.
        np.testing.assert_allclose(np.asarray(advantages) - to_go, advantages[0] - to_go[0], atol=1e-9)


def test_micro_batching_and_row_order_do_not_change_the_update() -> None:
    """update() sorts rows by length so micro-batches pad less; the step must equal the one
    taken on a single batch of the rows in their original order."""
    episodes = play_episodes(make_target_env(turns=3), tiny_policy(), [EpisodeSpec(seed=s) for s in range(4)],
                             deterministic=False)
    rows, _ = build_rows(episodes, [[1.0] * 3, [-1.0] * 3, [0.5] * 3, [-0.5] * 3], "token-mean", norm_tokens=4)
    assert len({len(r.turn.prompt_ids) + len(r.turn.completion_ids) for r in rows}) > 1  # lengths differ

    def step(micro_batch_size: int, ordered_rows) -> list[torch.Tensor]:
        policy = tiny_policy()
        agent = GRPOAgent(policy, small_config(micro_batch_size=micro_batch_size), seed=0)
        params = policy.trainable_parameters()
        agent.update(ordered_rows, torch.optim.SGD(params, lr=1.0), params)
        return [p.detach().clone() for p in params]

    whole = step(len(rows), rows)
    for got in (step(3, rows), step(2, rows[::-1])):
        for a, b in zip(whole, got, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(whole, [p.detach() for p in tiny_policy().trainable_parameters()],
                                                         strict=True))  # the step did move the weights


@pytest.mark.parametrize("loss_agg", ["seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_sequence_aggregations_weight_each_episode_equally(loss_agg: str) -> None:
    def turn(n: int) -> TurnTokens:
        return TurnTokens((1, 2), tuple(range(10, 10 + n)), (0.0,) * n)

    def episode(*lengths: int) -> Episode:
        turns = tuple(turn(n) for n in lengths)
        return Episode("toy", 0, ("p",) * len(turns), ("a",) * len(turns), (0.0,) * len(turns),
                       True, False, tokens=turns)

    episodes = [episode(2, 3), episode(5), episode(0)]  # the last has an empty loss mask
    rows, empty = build_rows(episodes, [[1.0, 1.0], [1.0], [1.0]], loss_agg, norm_tokens=10)
    assert empty == 1 and len(rows) == 3
    per_episode = [sum(r.weight * len(r.turn.completion_ids) for r in rows if r.episode == e) for e in (0, 1)]
    if loss_agg == "seq-mean-token-mean":
        assert per_episode == pytest.approx([0.5, 0.5])
    else:
        assert per_episode == pytest.approx([5 / 20, 5 / 20])
        assert all(r.weight == pytest.approx(1 / 20) for r in rows)


# ------------------------------------------------------------------------------ the reference
def test_kl_is_zero_at_step_zero_with_the_adapter_disabled_reference() -> None:
    policy = tiny_policy()
    policy.enable_lora(r=4, alpha=8)
    seen: list[dict[str, float]] = []
    agent = GRPOAgent(policy, small_config(iterations=1, beta=0.1, prompts_per_step=4), seed=0)
    agent.learn(make_target_env(target=LETTERS), callback=lambda i, m: seen.append(m))
    assert seen[0]["train/trained_tokens"] > 0, "the toy run must produce a batch to train on"
    assert seen[0]["train/kl"] == pytest.approx(0.0, abs=1e-7)
    # On-policy: teacher-forced log-probs equal the sampling ones, so ratios are 1, nothing clips.
    assert seen[0]["train/ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert seen[0]["train/clip_frac"] == 0.0
    assert policy._reference_model is None  # no second copy with LoRA


def test_full_fine_tuning_keeps_a_frozen_reference_and_kl_grows() -> None:
    policy = tiny_policy()
    seen: list[dict[str, float]] = []
    agent = GRPOAgent(policy, small_config(iterations=4, beta=0.1, prompts_per_step=4), seed=0)
    agent.learn(make_target_env(target=LETTERS), callback=lambda i, m: seen.append(m))
    assert policy._reference_model is not None
    assert seen[0]["train/trained_tokens"] > 0
    assert seen[0]["train/kl"] == pytest.approx(0.0, abs=1e-7)
    assert seen[-1]["train/kl"] > 0


def test_a_bf16_checkpoint_trains_float32_weights() -> None:
    policy = tiny_policy()
    policy.model.to(torch.bfloat16)
    GRPOAgent(policy, small_config(iterations=1, prompts_per_step=2), seed=0).learn(make_target_env(target=LETTERS))
    assert {p.dtype for p in policy.model.parameters()} == {torch.float32}


# ------------------------------------------------------------------------------ bad input
def test_nonfinite_rewards_and_all_equal_groups_are_counted_not_fatal() -> None:
    def reward(action: str, turn: int) -> float:
        if "a" in action:
            return math.nan
        return math.inf if "b" in action else float(len(action) % 2)

    seen: list[dict[str, float]] = []
    agent = GRPOAgent(tiny_policy(), small_config(iterations=4, prompts_per_step=4), seed=0)
    agent.learn(make_target_env(reward_fn=reward), callback=lambda i, m: seen.append(m))
    assert len(seen) == 4
    assert sum(m["rollout/nonfinite_rewards"] for m in seen) > 0
    assert all(math.isfinite(m["train/loss"]) for m in seen if "train/loss" in m)

    seen.clear()
    agent = GRPOAgent(tiny_policy(), small_config(iterations=2, prompts_per_step=3), seed=0)
    agent.learn(make_target_env(reward_fn=lambda action, turn: 1.0), callback=lambda i, m: seen.append(m))
    assert [m["rollout/zero_adv_groups"] for m in seen] == [3.0, 3.0]
    assert all(m["train/trained_tokens"] == 0 and "train/loss" not in m for m in seen)


def test_completions_cut_at_max_new_tokens_are_counted() -> None:
    seen: list[dict[str, float]] = []
    agent = GRPOAgent(tiny_policy(), small_config(iterations=1, max_new_tokens=1), seed=0)
    agent.learn(make_target_env(), callback=lambda i, m: seen.append(m))
    assert seen[0]["rollout/completion_tokens_mean"] == 1.0
    assert 0.0 < seen[0]["rollout/unfinished_frac"] <= 1.0


# ------------------------------------------------------------------------------ records and resume
def test_episode_records_checkpoints_and_exact_resume(tmp_path) -> None:
    config = small_config(iterations=4, save_every=2)
    full: list[dict[str, float]] = []
    run = Run(tmp_path / "full", tensorboard=False)
    GRPOAgent(tiny_policy(), config, run=run, seed=3).learn(make_target_env(), callback=lambda i, m: full.append(m))
    assert (run.final_dir / "policy.json").is_file()
    rows = [json.loads(line) for line in run.episodes_path.read_text().splitlines()]
    assert len(rows) == 4 * 2 * 4
    for row in rows:
        grpo = row["info"]["grpo"]
        assert len(row["tokens"]) == len(grpo["loss_mask"]) == len(grpo["turn_advantages"]) == 1
        turn, mask = row["tokens"][0], grpo["loss_mask"][0]
        assert len(mask) == len(turn["prompt_ids"]) + len(turn["completion_ids"])
        assert sum(mask) == (len(turn["completion_ids"]) if grpo["trained"] else 0)
    assert len(list(read_episodes(run.episodes_path))) == len(rows)

    checkpoint = resumable_checkpoint(run.dir)
    assert checkpoint is not None and checkpoint.name == "step_2" and (checkpoint / TRAINER_STATE).is_file()
    assert_resume_matches(config, run, full, checkpoint, tmp_path / "resumed")


def assert_resume_matches(config: GRPOConfig, run: Run, full: list[dict[str, float]], checkpoint, resumed_dir,
                          **env_kwargs) -> None:
    """Resuming ``checkpoint`` replays the full run's later iterations and ends on its weights."""
    resumed: list[dict[str, float]] = []
    policy = LMPolicy.load(checkpoint, device="cpu")
    agent = GRPOAgent(policy, config, run=Run(resumed_dir, tensorboard=False), seed=3)
    agent.learn(make_target_env(**env_kwargs), resume_from=checkpoint, callback=lambda i, m: resumed.append(m))
    done = int(checkpoint.name.removeprefix("step_"))
    assert [m["train/iteration"] for m in resumed] == [float(i) for i in range(done + 1, config.iterations + 1)]
    for a, b in zip(full[done:], resumed, strict=True):
        assert a["rollout/return_mean"] == b["rollout/return_mean"]
        # an iteration whose groups all tie trains nothing and logs no loss, in both runs alike
        assert ("train/loss" in a) == ("train/loss" in b)
        for key in ("train/loss", "train/kl"):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-9), key
    final = LMPolicy.load(run.final_dir, device="cpu")
    for (name, p), q in zip(final.model.named_parameters(), policy.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)


def test_exact_resume_with_a_kl_reference_in_full_fine_tuning(tmp_path) -> None:
    # The shipped config's case: beta > 0 without LoRA keeps a frozen copy as the KL reference;
    # a resumed run must measure KL to the initial weights, not to the checkpoint's.
    config = small_config(iterations=4, save_every=2, beta=0.5, learning_rate=5e-2)
    full: list[dict[str, float]] = []
    run = Run(tmp_path / "full", tensorboard=False)
    GRPOAgent(tiny_policy(), config, run=run, seed=3).learn(
        make_target_env(target=LETTERS), callback=lambda i, m: full.append(m))
    assert (run.dir / "reference" / "config.json").is_file()
    assert any(m.get("train/kl", 0.0) > 0 for m in full[2:])  # the reference is not the checkpoint
    assert_resume_matches(config, run, full, run.dir / "checkpoints" / "step_2", tmp_path / "resumed", target=LETTERS)


def test_resume_without_the_saved_reference_is_a_clear_error(tmp_path) -> None:
    config = small_config(iterations=2, save_every=1, beta=0.1)
    run = Run(tmp_path / "run", tensorboard=False)
    GRPOAgent(tiny_policy(), config, run=run, seed=0).learn(make_target_env())
    shutil.rmtree(run.dir / "reference")
    checkpoint = run.dir / "checkpoints" / "step_1"
    with pytest.raises(FileNotFoundError, match="no reference/"):
        GRPOAgent(LMPolicy.load(checkpoint, device="cpu"), config, seed=0).learn(
            make_target_env(), resume_from=checkpoint)


# ------------------------------------------------------------------------------ it learns
def test_tiny_run_raises_reward_on_a_text_bandit() -> None:
    config = GRPOConfig(iterations=40, prompts_per_step=2, group_size=8, max_new_tokens=4,
                        learning_rate=1e-2, mu=2, epsilon_high=0.28)
    returns: list[float] = []
    GRPOAgent(tiny_policy(), config, seed=0).learn(
        make_target_env(target="a"), callback=lambda i, m: returns.append(m["rollout/return_mean"]))
    first, last = float(np.mean(returns[:10])), float(np.mean(returns[-10:]))
    print(f"toy bandit mean return: first 10 iterations {first:.3f}, last 10 {last:.3f}")
    assert first < 0.3 and last > 0.8, (first, last)


def test_same_seed_same_run_on_cpu() -> None:
    def returns() -> list[float]:
        out: list[float] = []
        GRPOAgent(tiny_policy(), small_config(iterations=3, prompts_per_step=3), seed=5).learn(
            make_target_env(target=LETTERS), callback=lambda i, m: out.append(m["rollout/return_mean"]))
        return out

    assert returns() == returns()


def test_wall_clock_budget_stops_after_the_iteration_that_passes_it() -> None:
    seen: list[float] = []
    GRPOAgent(tiny_policy(), small_config(iterations=50, max_minutes=1e-9, budget_clock="cpu"), seed=0).learn(
        make_target_env(), callback=lambda i, m: seen.append(m["train/iteration"]))
    assert seen == [1.0]


GSM8K_TEST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gsm8k" / "test.jsonl"


@pytest.mark.parametrize(("env_id", "kwargs", "key"), [
    ("Wordle-v0", {"answers": ["crane", "slate", "pious", "ghost", "lemon", "brick", "eagle", "tried", "abbey",
                               "geese"], "prompt_style": "compact"}, "answer"),
    ("GSM8K-v0", {"data_path": str(GSM8K_TEST)}, "index"),
])
def test_periodic_evaluation_plays_fixed_held_out_and_training_tasks(env_id: str, kwargs: dict, key: str) -> None:
    # The split is of the env's task list: the same code holds out Wordle answers and GSM8K problems.
    from agents.algos.grpo import training_tasks
    from agents.core.envs import make_env_fn

    if env_id == "GSM8K-v0" and not GSM8K_TEST.is_file():
        pytest.skip(f"GSM8K data not found at {GSM8K_TEST}")
    make_env = make_env_fn(env_id, kwargs)
    fraction = 0.8 if env_id == "Wordle-v0" else 0.998  # 10 Wordle answers -> 2 held out; 1319 problems -> 3
    config = small_config(train_task_fraction=fraction, eval_every=1, eval_set_size=3, max_new_tokens=12)
    agent = GRPOAgent(tiny_policy(), config, seed=0)
    pool, held_out = training_tasks(make_env, config)
    assert pool is not None and not {t[key] for t in pool} & {t[key] for t in held_out}
    sets = agent.eval_sets(pool, held_out)
    assert [len(s) for s in sets.values()] == [len(held_out), 3]  # every held-out task, 3 training ones
    assert [s.options for s in sets["held_out"]] == held_out
    assert all(s.options in pool for s in sets["train_tasks"])
    assert sets == agent.eval_sets(pool, held_out)  # fixed across the run
    if env_id == "Wordle-v0":
        metrics = agent.evaluate(make_env, sets)
        assert 0.0 <= metrics["eval/held_out/win_rate"] <= 1.0 and metrics["eval/train_tasks/episodes"] == 3.0
