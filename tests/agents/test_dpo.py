"""DPO agent: the losses against hand-computed values, log 2 at the first step, HH pairs parsed
and masked to the final reply, pairs mined from a hand-made episode log, a tiny run that raises
held-out preference accuracy, exact resume, and bad input counted or refused with exit 2."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from toy_envs import make_target_env  # tests/agents is on sys.path (rootdir-less test modules)

from agents.algos.configs import DPOConfig, GRPOConfig
from agents.algos.dpo import (
    DPOAgent,
    dpo_loss,
    final_reply_ids,
    load_pairs,
    mine_pairs,
    side_logprobs,
    tokenize_pairs,
)
from agents.algos.grpo import GRPOAgent
from agents.cli.pipeline import Stage, read_pipeline, stage_run
from agents.cli.train import main as train_main
from agents.core.config import ConfigError, build
from agents.core.demonstrations import (
    DataError,
    PreferenceData,
    PreferencePair,
    hh_pair,
    hh_preferences,
    read_preferences_jsonl,
)
from agents.core.run import Run, resumable_checkpoint
from agents.core.trajectory import Episode, TurnTokens, read_episodes, write_episodes
from agents.policies.lm.policy import LMPolicy

ROOT = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64, "num_attention_heads": 2,
        "num_key_value_heads": 2}


def tiny_policy(seed: int = 0) -> LMPolicy:
    return LMPolicy.default(seed=seed, device="cpu", **TINY)


# ------------------------------------------------------------------------------ the loss
def scores(*values: float) -> list[torch.Tensor]:
    return [torch.tensor([v], dtype=torch.float64) for v in values]


def test_losses_match_hand_computed_values() -> None:
    # policy chosen -1, rejected -2; reference -1.5 for both: h = 0.5 - (-0.5) = 1.
    pc, pr, rc, rr = scores(-1.0, -2.0, -1.5, -1.5)
    # beta 0.5: -log s(0.5) = log(1 + e^-0.5) = 0.474077; -log s(-0.5) = 0.974077
    assert float(dpo_loss(pc, pr, rc, rr, 0.5, "sigmoid")) == pytest.approx(0.474077, abs=1e-6)
    # conservative DPO, e = 0.1: 0.9 * 0.474077 + 0.1 * 0.974077 = 0.524077
    assert float(dpo_loss(pc, pr, rc, rr, 0.5, "sigmoid", 0.1)) == pytest.approx(0.524077, abs=1e-6)
    # robust, e = 0.1: (0.9 * 0.474077 - 0.1 * 0.974077) / 0.8 = 0.411577
    assert float(dpo_loss(pc, pr, rc, rr, 0.5, "robust", 0.1)) == pytest.approx(0.411577, abs=1e-6)
    # ipo, beta 0.25: (h - 1 / (2 * 0.25))^2 = (1 - 2)^2 = 1; beta 1: (1 - 0.5)^2 = 0.25
    assert float(dpo_loss(pc, pr, rc, rr, 0.25, "ipo")) == pytest.approx(1.0)
    assert float(dpo_loss(pc, pr, rc, rr, 1.0, "ipo")) == pytest.approx(0.25)
    # the policy is its reference: log 2 for sigmoid and robust, whatever beta and e
    for loss, eps in (("sigmoid", 0.0), ("sigmoid", 0.2), ("robust", 0.3)):
        assert float(dpo_loss(*scores(-3.0, -7.0, -3.0, -7.0), 2.0, loss, eps)) == pytest.approx(math.log(2))


def synthetic_pairs(n: int, seed: int) -> PreferenceData:
    """Prompt: a random word; chosen: 'yes ' + a random tail, rejected: 'no ' + the same tail."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        word = "".join(rng.choice("abcdefghij") for _ in range(5))
        tail = "".join(rng.choice("klmnop") for _ in range(4))
        pairs.append(PreferencePair([{"role": "user", "content": word}], "yes " + tail, "no " + tail))
    return PreferenceData(pairs, n)


@pytest.mark.parametrize("lora", [False, True])
def test_the_loss_is_log_2_at_the_first_step(lora: bool) -> None:
    policy = tiny_policy()
    if lora:
        policy.enable_lora(r=4, alpha=8, target_modules=("q_proj", "v_proj"))
    pairs = tokenize_pairs(policy.tokenizer, synthetic_pairs(8, 0), 64)
    config = DPOConfig(data="unused", max_steps=1, batch_size=8, val_ratio=0.0, log_every=1)
    seen: dict[str, float] = {}
    DPOAgent(policy, config, seed=0).learn(None, demos=pairs, callback=lambda step, m: seen.update(m))
    assert seen["train/loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert seen["train/accuracy"] == 0.5  # every pair a tie: counted one half


# ------------------------------------------------------------------------------ HH pairs and masks
def test_a_multi_turn_hh_row_scores_only_its_final_reply() -> None:
    chosen = "\n\nHuman: hi there\n\nAssistant: hello!\n\nHuman: a joke?\n\nAssistant: Why not."
    rejected = "\n\nHuman: hi there\n\nAssistant: hello!\n\nHuman: a joke?\n\nAssistant: No."
    pair = hh_pair(chosen, rejected)
    assert isinstance(pair, PreferencePair)
    assert pair.prompt == [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello!"},
                           {"role": "user", "content": "a joke?"}]
    assert (pair.chosen, pair.rejected) == ("Why not.", "No.")

    policy = tiny_policy()
    tokenizer = policy.tokenizer
    found = final_reply_ids(tokenizer, pair.prompt, pair.chosen)
    assert not isinstance(found, str)
    prompt_ids, reply_ids = found
    # The earlier assistant turn is context; the final reply (with its end-of-turn token) is scored.
    assert tokenizer.decode(reply_ids) == "Why not.<|end|>"
    assert "hello!" in tokenizer.decode(prompt_ids) and tokenizer.decode(prompt_ids).endswith("<|assistant|>")

    pairs = tokenize_pairs(tokenizer, PreferenceData([pair], 1), 512)
    (token_pair,) = pairs.pairs
    (row,) = token_pair.rejected
    assert tokenizer.decode(row.completion_ids) == "No.<|end|>" and row.prompt_ids == tuple(prompt_ids)
    # side_logprobs sums exactly the reply tokens: compare with the per-token log-probs by hand.
    _, rejected_lp, n_chosen, n_rejected = side_logprobs(policy, pairs.pairs)
    ids = torch.tensor([[*row.prompt_ids, *row.completion_ids]])
    per_token = policy.token_logprobs(ids, torch.ones_like(ids))
    assert float(rejected_lp[0].detach()) == pytest.approx(float(per_token[0, len(row.prompt_ids):].sum().detach()), abs=1e-5)
    assert (int(n_chosen[0]), int(n_rejected[0])) == (len("Why not.") + 1, len("No.") + 1)


def test_scoring_from_a_column_skips_only_the_columns_before_it() -> None:
    policy = tiny_policy()
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 15], [2, 20, 21, 22, 23, 0, 0]])
    attention = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    full = policy.token_logprobs(ids, attention).detach()
    part = policy.token_logprobs(ids, attention, score_from=3).detach()
    assert torch.equal(part[:, :3], torch.zeros(2, 3))
    assert torch.allclose(part[:, 3:], full[:, 3:], atol=1e-6) and full[:, 3:].abs().sum() > 0


def test_hh_rows_that_do_not_fit_are_counted_by_reason(tmp_path: Path) -> None:
    good = ("\n\nHuman: q\n\nAssistant: yes", "\n\nHuman: q\n\nAssistant: no")
    rows = [good, good,
            ("\n\nHuman: q\n\nAssistant: same", "\n\nHuman: q\n\nAssistant: same"),         # identical
            ("\n\nHuman: q\n\nAssistant: a", "\n\nHuman: other\n\nAssistant: b"),           # no shared prompt
            ("\n\nHuman: q\n\nAssistant: a", "\n\nHuman: q\n\nAssistant:"),                 # empty reply
            ("\n\nHuman: q\n\nAssistant: a\n\nHuman: more", "\n\nHuman: q\n\nAssistant: b"),  # ends with Human
            ("no markers at all", "\n\nHuman: q\n\nAssistant: b")]
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps({"chosen": c, "rejected": r}) + "\n" for c, r in rows))
    data = hh_preferences(path)
    assert len(data.pairs) == 2
    assert data.report() == {"rows_read": 7, "pairs_kept": 2, "skipped_different_prompts": 1,
                             "skipped_empty_completion": 1, "skipped_identical": 1, "skipped_no_final_reply": 1,
                             "skipped_not_hh": 1}


_text = st.text(alphabet=st.sampled_from("abc xyz.?!\n'"), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s.strip())


@settings(max_examples=60, deadline=None)
@given(turns=st.lists(st.tuples(_text, _text), min_size=1, max_size=4), chosen=_text, rejected=_text)
def test_hh_parsing_recovers_the_prompt_and_both_final_replies(turns, chosen, rejected) -> None:
    history = "".join(f"\n\nHuman: {user}\n\nAssistant: {reply}" for user, reply in turns[:-1])
    last_user = turns[-1][0]
    pair = hh_pair(f"{history}\n\nHuman: {last_user}\n\nAssistant: {chosen}",
                   f"{history}\n\nHuman: {last_user}\n\nAssistant: {rejected}")
    if chosen == rejected:
        assert pair == "identical"
        return
    assert isinstance(pair, PreferencePair)
    expected = [m for user, reply in turns[:-1] for m in ({"role": "user", "content": user},
                                                          {"role": "assistant", "content": reply})]
    assert pair.prompt == [*expected, {"role": "user", "content": last_user}]
    assert (pair.chosen, pair.rejected) == (chosen, rejected)


def test_preference_jsonl_takes_text_or_messages(tmp_path: Path) -> None:
    path = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "2+2?", "chosen": "4", "rejected": "5"},
            {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
             "chosen": [{"role": "assistant", "content": "hi"}], "rejected": [{"role": "assistant", "content": "yo"}]},
            {"prompt": "", "chosen": "a", "rejected": "b"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = read_preferences_jsonl(path)
    assert [p.prompt[-1]["content"] for p in data.pairs] == ["2+2?", "hi"]
    assert data.pairs[1].prompt[0] == {"role": "system", "content": "be brief"} and data.pairs[1].rejected == "yo"
    assert data.skipped == {"no_prompt": 1}
    path.write_text(json.dumps({"prompt": "x", "chosen": 3, "rejected": "b"}) + "\n")
    with pytest.raises(DataError, match=r"prefs.jsonl:1: 'chosen' and 'rejected' must be strings"):
        read_preferences_jsonl(path)


# ------------------------------------------------------------------------------ pairs from episode logs
def episode(prompt: tuple[int, ...], completion: tuple[int, ...], ret: float, iteration: int = 1,
            group: int = 0, turns: int = 1) -> Episode:
    tokens = tuple(TurnTokens(prompt + (9,) * t, completion, (-0.5,) * len(completion)) for t in range(turns))
    return Episode("GSM8K-v0", 3, ("q",) * turns, ("a",) * turns, (ret,) + (0.0,) * (turns - 1), True, False,
                   info={"grpo": {"iteration": iteration, "group": group}}, tokens=tokens)


def test_pairs_are_mined_best_against_worst_with_every_filter_counted(tmp_path: Path) -> None:
    log = tmp_path / "episodes.jsonl"
    write_episodes(log, [
        # group 0: returns 1, 0.2, 0 -> (1 vs 0)
        episode((5, 6), (10, 11), 1.0), episode((5, 6), (12,), 0.2), episode((5, 6), (13, 14, 15), 0.0),
        # group 1: all equal
        episode((7,), (10,), 0.5, group=1), episode((7,), (11,), 0.5, group=1),
        # group 2: gap 0.1 < min_return_gap 0.5
        episode((8,), (10,), 0.1, group=2), episode((8,), (11,), 0.0, group=2),
        # group 3: one episode; group 4: same tokens, different returns (a stochastic env)
        episode((9,), (10,), 1.0, group=3),
        episode((4,), (10,), 1.0, group=4), episode((4,), (10,), 0.0, group=4),
        # group 5: two-turn episodes, token-exact rows of every turn; a non-finite return is dropped
        episode((3,), (20,), 2.0, group=5, turns=2), episode((3,), (21,), 0.0, group=5, turns=2),
        episode((3,), (22,), math.nan, group=5),
    ])
    pairs = mine_pairs(read_episodes(log), "group", min_return_gap=0.5)
    assert pairs.report == {"pair_within": "group", "min_return_gap": 0.5, "episodes_read": 13,
                            "episodes_nonfinite_return": 1, "groups": 6, "groups_all_returns_equal": 1,
                            "groups_gap_below_min": 1, "groups_single_episode": 1, "pairs_identical": 1, "pairs": 2}
    first, second = pairs.pairs
    assert first.chosen == (TurnTokens((5, 6), (10, 11), (-0.5, -0.5)),)
    assert first.rejected == (TurnTokens((5, 6), (13, 14, 15), (-0.5, -0.5, -0.5)),)
    assert [t.prompt_ids for t in second.chosen] == [(3,), (3, 9)] and second.rejected[1].completion_ids == (21,)
    # Per task instead of per group: groups 0 and 1 share no prompt, so the same pairs; a too-long turn is dropped.
    assert mine_pairs(read_episodes(log), "task", 0.5, max_length=3).report["pairs_too_long"] == 1


def test_nothing_left_is_one_error_that_says_what_was_dropped(tmp_path: Path) -> None:
    policy = tiny_policy()
    prompt = tuple(policy.encode_prompts(["q"])[0])  # the logged ids are this model's
    log = tmp_path / "episodes.jsonl"
    write_episodes(log, [episode(prompt, (10,), 0.5), episode(prompt, (11,), 0.5)])
    config = DPOConfig(rl_log=[str(tmp_path)])
    with pytest.raises(DataError, match=r"no preference pairs left to train on .*groups_all_returns_equal 1"):
        load_pairs(policy, config)
    write_episodes(log, [episode((5, 6), (10,), 1.0), episode((5, 6), (11,), 0.0)], append=False)
    with pytest.raises(DataError, match="differ from this model's tokenisation"):
        load_pairs(policy, config)
    write_episodes(log, [episode(prompt, (10,), 1.0), episode(prompt, (10**6,), 0.0)], append=False)
    with pytest.raises(DataError, match=r"token id\(s\) \[1000000\] outside this model's vocabulary"):
        load_pairs(policy, config)
    with pytest.raises(ConfigError, match=r"give one source of pairs.*not both"):
        build(DPOConfig, {"data": "x.jsonl", "rl_log": ["y"]}, "dpo")
    with pytest.raises(DataError, match="no preference pairs named: set data=hh:PATH"):
        load_pairs(policy, DPOConfig())


# ------------------------------------------------------------------------------ training
def test_a_tiny_run_raises_held_out_preference_accuracy(tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = tiny_policy()
    pairs = tokenize_pairs(policy.tokenizer, synthetic_pairs(96, 1), 64)
    config = DPOConfig(data="unused", max_steps=30, batch_size=8, learning_rate=3e-3, warmup_steps=0,
                       val_ratio=0.25, eval_every=30, log_every=10, beta=0.1)
    run = Run(tmp_path / "run", tensorboard=False)
    metrics = DPOAgent(policy, config, run=run, seed=0).learn(None, demos=pairs)
    report = json.loads((run.dir / "dpo.json").read_text())
    before, after = report["before"], report["after"]
    assert report["held_out_pairs"] == 24 and report["train_pairs"] == 72
    assert before["eval/accuracy"] == 0.5 and before["eval/kl"] == pytest.approx(0.0, abs=1e-5)
    assert after["eval/accuracy"] >= 0.9 and after["eval/margin"] > 0 and after["eval/kl"] > 0
    assert after["eval/policy_accuracy"] > before["eval/policy_accuracy"]
    assert metrics["eval/loss"] < math.log(2) and (run.dir / "final" / "policy.json").is_file()
    assert (run.dir / "reference" / "config.json").is_file()  # full fine-tuning keeps its reference


def test_resume_continues_exactly_where_the_checkpoint_left(tmp_path: Path) -> None:
    data = synthetic_pairs(40, 2)
    config = DPOConfig(data="unused", max_steps=8, batch_size=8, learning_rate=3e-3, warmup_steps=2,
                       save_every=4, eval_every=100, val_ratio=0.2, keep_checkpoints=5)

    straight = tiny_policy()
    pairs = tokenize_pairs(straight.tokenizer, data, 64)
    DPOAgent(straight, config, run=Run(tmp_path / "a", tensorboard=False), seed=1).learn(None, demos=pairs)

    class Interrupt(Exception):
        pass

    def stop_at_5(step: int, metrics: dict) -> None:
        if step == 5:
            raise Interrupt

    interrupted = Run(tmp_path / "b", tensorboard=False)
    with pytest.raises(Interrupt):
        DPOAgent(tiny_policy(), config, run=interrupted, seed=1).learn(None, demos=pairs, callback=stop_at_5)
    checkpoint = resumable_checkpoint(interrupted.dir)
    assert checkpoint is not None and checkpoint.name == "step_4"
    resumed = LMPolicy.load(checkpoint, device="cpu")
    DPOAgent(resumed, config, run=interrupted, seed=1).learn(None, demos=pairs, resume_from=checkpoint)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    first = json.loads((tmp_path / "a" / "dpo.json").read_text())
    again = json.loads((tmp_path / "b" / "dpo.json").read_text())
    assert again["before"] == first["before"] and again["after"] == pytest.approx(first["after"], abs=1e-5)


def test_a_saved_reference_of_another_architecture_is_refused_before_a_step(tmp_path: Path) -> None:
    config = DPOConfig(data="unused", max_steps=4, batch_size=4, save_every=2, val_ratio=0.0)
    policy = tiny_policy()
    pairs = tokenize_pairs(policy.tokenizer, synthetic_pairs(8, 2), 64)
    run = Run(tmp_path / "run", tensorboard=False)
    DPOAgent(policy, config, run=run, seed=0).learn(None, demos=pairs)
    checkpoint = run.dir / "checkpoints" / "step_2"
    wider = LMPolicy.default(seed=0, device="cpu", **{**TINY, "intermediate_size": 96})
    wider.freeze_reference()
    wider.save_reference(run.dir / "reference")  # as if the folder were swapped for another model's
    kept = {p.name: p.stat().st_mtime_ns for p in checkpoint.iterdir()}
    with pytest.raises(ValueError, match=r"not this policy's architecture \(\d+ of another shape, e.g. "):
        DPOAgent(LMPolicy.load(checkpoint, device="cpu"), config, run=run, seed=0).learn(
            None, demos=pairs, resume_from=checkpoint)
    assert {p.name: p.stat().st_mtime_ns for p in checkpoint.iterdir()} == kept  # the checkpoint is untouched


def test_the_command_line_trains_dpo_and_refuses_what_leaves_nothing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "prefs.jsonl"
    rows = [{"prompt": p.prompt[0]["content"], "chosen": p.chosen, "rejected": p.rejected}
            for p in synthetic_pairs(20, 3).pairs] + [{"prompt": "x", "chosen": "same", "rejected": "same"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--agent", "dpo", "--set", f"model_config={json.dumps(TINY)}", "--set", "eval_episodes=0"]
    assert train_main([*common, "--data", str(data), "--set", "max_steps=2",
                       "--run-dir", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "run" / "dpo.json").read_text())
    assert report["pairs"] == 20 and report["skipped_identical"] == 1 and report["steps"] == 2
    capsys.readouterr()

    data.write_text(json.dumps({"prompt": "x", "chosen": "same", "rejected": "same"}) + "\n")
    assert train_main([*common, "--set", f"data={data}", "--run-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "error: no preference pairs left to train on (rows_read 1, skipped_identical 1)"
    assert not (tmp_path / "none").exists()

    # --rl-log / --data set the agent's key: one error for an agent without it, or for the same key twice.
    for argv, message in (
            (["--agent", "sft", "--rl-log", str(tmp_path)], "--rl-log is for the dpo and filtered agents, not 'sft'"),
            ([*common, "--rl-log", str(tmp_path), "--set", "rl_log=[x]"], "--rl-log and --set rl_log=... both given"),
            ([*common, "--data", str(data), "--rl-log", str(tmp_path)], "give one source of pairs")):
        assert train_main([*argv, "--run-dir", str(tmp_path / "refused")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "refused").exists()


# ------------------------------------------------------------------------------ pipelines
@pytest.mark.parametrize("name", ["hh", "gsm8k_dpo", "wordle_dpo"])
def test_the_dpo_pipelines_parse_and_chain(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    pipeline = read_pipeline(ROOT / "configs" / "pipelines" / f"{name}.yaml")
    assert pipeline.stages[-1].agent == "dpo"
    previous = tmp_path / pipeline.stages[-2].name
    planned = stage_run(pipeline.stages[-1], tmp_path / "dpo", previous)
    assert planned.flags["init"] == str(previous / "final")
    if pipeline.stages[-2].agent == "grpo":  # pairs from the RL stage's own logs
        assert planned.overrides["rl_log"] == [str(previous / "episodes.jsonl")]
    else:
        assert "rl_log" not in planned.overrides
    unused = Stage("x", "dpo", str(ROOT / "configs" / "hh_dpo.yaml"))
    assert "rl_log" not in stage_run(unused, tmp_path / "x", tmp_path / "grpo").overrides


def test_pairs_mined_from_a_real_grpo_log_are_its_exact_tokens_and_train(tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = tiny_policy()
    run = Run(tmp_path / "grpo", tensorboard=False)
    GRPOAgent(policy, GRPOConfig(iterations=2, prompts_per_step=2, group_size=4, max_new_tokens=4,
                                 learning_rate=1e-3), run=run, seed=0).learn(
        make_target_env(target="abcdefghijklmnopqrstuvwxyz", turns=2))
    logged = list(read_episodes(run.episodes_path))
    config = DPOConfig(rl_log=[str(run.dir)], max_steps=2, batch_size=2, val_ratio=0.0, learning_rate=1e-3)
    pairs = load_pairs(policy, config)
    report = pairs.report
    assert report["source"] == "rl_log" and report["episodes_read"] == len(logged) == 16
    assert report["groups"] == 4 and report["pairs"] == len(pairs.pairs) > 0
    assert report["pairs"] + sum(v for k, v in report.items() if k.startswith(("groups_", "pairs_"))) == 4
    by_tokens = {tuple(t for turn in e.tokens or () for t in turn.completion_ids): e for e in logged}
    for pair in pairs.pairs:  # each side is one logged episode's turns, token for token
        best = by_tokens[tuple(t for turn in pair.chosen for t in turn.completion_ids)]
        worst = by_tokens[tuple(t for turn in pair.rejected for t in turn.completion_ids)]
        assert best.return_ > worst.return_ and len(pair.chosen) == 2
        assert pair.chosen == tuple(t for t in best.tokens or () if t.completion_ids)
    DPOAgent(policy, config, seed=0).learn(None, demos=pairs)

    # The command line's --rl-log takes the run folder and mines the same pairs.
    assert train_main(["--agent", "dpo", "--set", f"model_config={json.dumps(TINY)}", "--set", "eval_episodes=0",
                       "--rl-log", str(run.dir), "--set", "max_steps=1", "--set", "val_ratio=0",
                       "--run-dir", str(tmp_path / "dpo")]) == 0
    assert json.loads((tmp_path / "dpo" / "dpo.json").read_text())["pairs"] == report["pairs"]
