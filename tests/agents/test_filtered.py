"""The reward-filtered agent: filtering (threshold, top fraction, dedup), the no-episode error,
checkpoint discovery, logs that do not fit, the CLI flags, and tiny filtered runs on Wordle
(language model, the GRPO log format) and the humanoid (Gaussian MLP). Tiny models, one thread.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.algos.filtered import (
    FilteredAgent,
    FilteredConfig,
    FilterError,
    check_logs_fit_policy,
    expand_logs,
    find_checkpoint,
    lm_nll,
    return_threshold,
    select_episodes,
    select_from_logs,
)
from agents.cli.filtered import build_parser, run_settings
from agents.core.checkpoint import CheckpointError
from agents.core.config import ConfigError, build
from agents.core.rollout import EpisodeSpec, play_episodes
from agents.core.trajectory import Episode, TurnTokens, read_episodes, write_episodes
from agents.policies.lm.policy import LMPolicy

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64,
        "num_attention_heads": 2, "num_key_value_heads": 2}
ANSWERS = ["crane", "slate", "pious", "ghost", "lemon", "brick", "eagle", "tried"]
WORDLE_KWARGS = {"answers": ANSWERS, "prompt_style": "compact"}


COMMON_KEYS = {"env", "policy", "episodes", "mean_return", "std_return", "mean_length"}


def evaluate_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    from agents.cli.evaluate import main

    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def episode(ret: float, actions: tuple = ("a",), seed: int = 0, env_id: str = "Wordle-v0",
            tokens: tuple[TurnTokens, ...] | None = None) -> Episode:
    rewards = (ret,) + (0.0,) * (len(actions) - 1)
    return Episode(env_id, seed, tuple(f"obs{i}" for i in range(len(actions))), tuple(actions), rewards,
                   True, False, tokens=tokens)


# ------------------------------------------------------------------------------ filtering
def test_threshold_keeps_returns_at_or_above_it() -> None:
    eps = [episode(r, (f"a{i}",)) for i, r in enumerate([0.0, 1.0, 0.5, 1.0, -2.0])]
    selection = select_episodes(eps, min_reward=0.5)
    assert [e.return_ for e in selection.kept] == [1.0, 0.5, 1.0]
    assert selection.threshold == 0.5 and selection.read == 5 and selection.unique == 5
    assert selection.returns["min"] == -2.0 and selection.returns["max"] == 1.0


def test_top_fraction_keeps_the_best_and_ties_at_the_cut() -> None:
    eps = [episode(r, (f"a{i}",)) for i, r in enumerate([0.1, 0.9, 0.5, 0.7, 0.3, 0.5, 0.2, 0.8, 0.4, 0.6])]
    assert sorted(e.return_ for e in select_episodes(eps, top_fraction=0.3).kept) == [0.7, 0.8, 0.9]
    # 0.5 appears twice: the cut at the 5th best keeps both 0.5s (six episodes)
    assert len(select_episodes(eps, top_fraction=0.5).kept) == 6
    assert len(select_episodes(eps, top_fraction=0.01).kept) == 1  # never less than one


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=40), st.floats(0.01, 1.0))
def test_top_fraction_keeps_at_least_its_share_and_only_the_best(returns: list[float], fraction: float) -> None:
    threshold = return_threshold(returns, top_fraction=fraction)
    kept = [r for r in returns if r >= threshold]
    dropped = [r for r in returns if r < threshold]
    assert len(kept) >= math.ceil(fraction * len(returns))
    assert not dropped or min(kept) > max(dropped)


def test_dedup_keeps_one_copy_of_identical_transcripts() -> None:
    same_a = episode(1.0, ("crane", "slate"), seed=1)
    same_b = episode(1.0, ("crane", "slate"), seed=7)  # another seed, same game
    other = episode(1.0, ("crane", "pious"), seed=1)
    selection = select_episodes([same_a, same_b, other], min_reward=1.0)
    assert selection.kept == [same_a, other] and selection.unique == 2
    assert len(select_episodes([same_a, same_b, other], min_reward=1.0, dedup=False).kept) == 3


def test_dedup_of_float_trajectories_read_from_a_packed_log(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(5, 6)).astype(np.float32), rng.uniform(-1, 1, (5, 2)).astype(np.float32)

    def box(o: np.ndarray, a: np.ndarray, seed: int) -> Episode:
        return Episode(env_id="HumanoidMimic-v1", seed=seed, observations=o, actions=a, rewards=(1.0,) * len(o),
                       terminated=True, truncated=False)

    nudged = actions.copy()
    nudged[2, 1] = np.nextafter(nudged[2, 1], np.float32(2))  # one action differs in its last bit
    write_episodes(tmp_path / "log.jsonl", [box(obs, actions, 0), box(obs, actions, 1), box(obs, nudged, 2),
                                            box(obs[:4], actions[:4], 3)])
    selection = select_from_logs([tmp_path / "log.jsonl"], top_fraction=1.0)
    assert [e.seed for e in selection.kept] == [0, 2, 3] and selection.unique == 3


def test_non_finite_returns_are_never_kept() -> None:
    eps = [episode(math.inf, ("x",)), episode(1.0, ("y",))]
    selection = select_episodes(eps, top_fraction=1.0)
    assert [e.actions for e in selection.kept] == [("y",)] and selection.nonfinite == 1


def test_nothing_passing_prints_the_distribution_and_a_threshold_that_works() -> None:
    eps = [episode(r, (f"a{i}",)) for i, r in enumerate([0.0, 0.0, 0.25, 0.5, 1.0])]
    with pytest.raises(FilterError) as err:
        select_episodes(eps, min_reward=2.0)
    message = str(err.value)
    for fragment in ("no episode has return >= 2", "min 0", "25% 0", "median 0.25", "75% 0.5", "max 1",
                     "--min-reward 0.5 (keeps 2)", "--top-fraction"):
        assert fragment in message, message


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=30))
def test_the_suggested_threshold_keeps_something(returns: list[float]) -> None:
    eps = [episode(r, (f"a{i}",)) for i, r in enumerate(returns)]
    with pytest.raises(FilterError, match=r"Try --min-reward (\S+)") as err:
        select_episodes(eps, min_reward=max(returns) + 1)
    suggested = float(str(err.value).split("Try --min-reward ")[1].split()[0])
    assert select_episodes(eps, min_reward=suggested).kept


def test_config_needs_exactly_one_threshold() -> None:
    with pytest.raises(ConfigError, match="exactly one of min_reward"):
        build(FilteredConfig, {}, "filtered")
    with pytest.raises(ConfigError, match="exactly one of min_reward"):
        build(FilteredConfig, {"min_reward": 1, "top_fraction": 0.5}, "filtered")
    with pytest.raises(ConfigError, match="top_fraction must be in"):
        build(FilteredConfig, {"top_fraction": 1.5}, "filtered")
    assert build(FilteredConfig, {"top_fraction": 0.2}, "filtered").epochs == 3


# ------------------------------------------------------------------------------ logs and checkpoints
def test_logs_expand_globs_run_folders_and_each_file_once(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_episodes(tmp_path / name / "episodes.jsonl", [episode(1.0, (name,))])
    pattern = str(tmp_path / "*" / "episodes.jsonl")
    paths = expand_logs([pattern, str(tmp_path / "a"), str(tmp_path / "b" / "episodes.jsonl")])
    assert paths == [tmp_path / "a" / "episodes.jsonl", tmp_path / "b" / "episodes.jsonl"]
    with pytest.raises(FilterError, match="matches no file"):
        expand_logs([str(tmp_path / "nope*" / "episodes.jsonl")])
    with pytest.raises(FilterError, match="does not exist"):
        expand_logs([str(tmp_path / "missing.jsonl")])


def test_logs_of_different_envs_are_refused(tmp_path: Path) -> None:
    write_episodes(tmp_path / "w.jsonl", [episode(1.0, env_id="Wordle-v0")])
    write_episodes(tmp_path / "g.jsonl", [episode(1.0, env_id="GSM8K-v0")])
    with pytest.raises(FilterError, match=r"different envs.*GSM8K-v0 in .*g\.jsonl.*Wordle-v0 in .*w\.jsonl"):
        select_from_logs([tmp_path / "w.jsonl", tmp_path / "g.jsonl"], top_fraction=1.0)
    with pytest.raises(FilterError, match="the logs are from Wordle-v0 but this run's env is GSM8K-v0"):
        select_from_logs([tmp_path / "w.jsonl"], top_fraction=1.0, env_id="GSM8K-v0")


def test_filtering_logs_in_two_passes_keeps_what_filtering_in_memory_keeps(tmp_path: Path) -> None:
    eps = [episode(r, (f"a{i % 7}",), seed=i) for i, r in enumerate([0.3, 0.9, 0.1, 0.9, 0.5, 0.7, 0.2, 0.8, 0.4])]
    write_episodes(tmp_path / "one.jsonl", eps[:5])
    write_episodes(tmp_path / "two.jsonl", eps[3:])  # overlapping logs: repeats across files
    from_logs = select_from_logs([tmp_path / "one.jsonl", tmp_path / "two.jsonl"], top_fraction=0.4)
    in_memory = select_episodes(eps[:5] + eps[3:], top_fraction=0.4)
    assert from_logs.kept == in_memory.kept and from_logs.report()["episodes_unique"] == 7
    assert from_logs.env_id == "Wordle-v0" and from_logs.logs == (str(tmp_path / "one.jsonl"), str(tmp_path / "two.jsonl"))


def _checkpoint(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "policy.json").write_text('{"kind": "lm"}')
    return path


def test_checkpoint_discovery_prefers_final_then_the_newest_complete_step(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(FilterError, match="holds no checkpoint"):
        find_checkpoint(run)
    _checkpoint(run / "checkpoints" / "step_9")
    _checkpoint(run / "checkpoints" / "step_10")  # newer: 10 > 9 numerically, not as text
    (run / "checkpoints" / "step_11").mkdir()  # no policy.json: not a checkpoint
    (run / "checkpoints" / "step_x").mkdir()
    found, why = find_checkpoint(run)
    assert found == run / "checkpoints" / "step_10" and "step 10" in why and "no final/" in why
    _checkpoint(run / "final")
    assert find_checkpoint(run) == (run / "final", "the run's final/")
    assert find_checkpoint(run / "checkpoints" / "step_9")[0] == run / "checkpoints" / "step_9"
    with pytest.raises(FilterError, match="does not exist"):
        find_checkpoint(tmp_path / "missing")


def tiny_lm(seed: int = 0) -> LMPolicy:
    torch.manual_seed(seed)
    return LMPolicy.default(seed, device="cpu", **TINY)


def test_log_without_tokens_for_a_language_model_is_refused() -> None:
    with pytest.raises(FilterError, match="carry no token ids"):
        check_logs_fit_policy([episode(1.0)], tiny_lm(), [Path("x.jsonl")])


def test_tokens_of_another_tokenizer_are_refused() -> None:
    policy = tiny_lm()
    wrong = TurnTokens((1, 2, 3), (4,), (0.0,))
    with pytest.raises(FilterError, match="different model or tokenizer"):
        check_logs_fit_policy([episode(1.0, ("a",), tokens=(wrong,))], policy, [Path("x.jsonl")])


def test_token_ids_outside_the_vocabulary_are_refused() -> None:
    policy = tiny_lm()
    prompt = tuple(policy.encode_prompts(["obs0"])[0])
    beyond = TurnTokens(prompt, (policy.vocab_size + 3,), (0.0,))
    with pytest.raises(FilterError, match="outside this checkpoint's vocabulary"):
        check_logs_fit_policy([episode(1.0, ("a",), tokens=(beyond,))], policy, [Path("x.jsonl")])


def test_token_log_for_an_mlp_policy_is_refused() -> None:
    from agents.policies.mlp import GaussianMLPPolicy

    policy = GaussianMLPPolicy(3, 2, hidden=(8,))
    with pytest.raises(FilterError, match="language-model episodes"):
        check_logs_fit_policy([episode(1.0, ("a",), tokens=(TurnTokens((1,), (2,), (0.0,)),))], policy,
                              [Path("x.jsonl")])
    vectors = Episode("X", 0, ([0.0] * 4,), ([0.0, 0.0],), (1.0,), True, False)
    with pytest.raises(FilterError, match="do not fit the policy"):
        check_logs_fit_policy([vectors], policy, [Path("x.jsonl")])


# ------------------------------------------------------------------------------ the CLI flags
def test_short_cli_flags_map_onto_the_train_cli() -> None:
    args = build_parser().parse_args([
        "--rl-log", "runs/a/episodes.jsonl", "--rl-log", "runs/b*/episodes.jsonl", "--top-fraction", "0.2",
        "--rl-model-dir", "runs/a", "--epochs", "2", "--lr", "3e-4", "--batch-size", "8", "--output-dir", "out",
        "--env", "Wordle-v0", "--config", "configs/wordle_filtered.yaml"])
    config_file, flags, overrides = run_settings(args)
    assert config_file == "configs/wordle_filtered.yaml"
    assert flags["agent"] == "filtered" and flags["run_dir"] == "out" and flags["env"] == "Wordle-v0"
    assert overrides == {"rl_log": ["runs/a/episodes.jsonl", "runs/b*/episodes.jsonl"], "top_fraction": 0.2,
                         "min_reward": None, "rl_model_dir": "runs/a", "epochs": 2, "learning_rate": 3e-4,
                         "batch_size": 8}
    with pytest.raises(SystemExit):  # one threshold or the other
        build_parser().parse_args(["--min-reward", "1", "--top-fraction", "0.2"])


# ------------------------------------------------------------------------------ Wordle runs
def solver_and_random_log(policy: LMPolicy, path: Path) -> list[Episode]:
    """Wordle episodes with the token records GRPO writes: the solver's games (won) and random
    words (lost), each turn tokenised by ``policy`` as if it had sampled the text."""
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.wordle.policies import RandomWordPolicy, SolverPolicy

    def make() -> gym.Env:
        return gym.make("Wordle-v0", **WORDLE_KWARGS)

    probe = make().unwrapped
    specs = [EpisodeSpec(seed=i, options={"answer": a}) for i, a in enumerate(ANSWERS)]
    games = play_episodes(make, SolverPolicy(probe.lexicon, think="none"), specs, batch_size=8)
    games += play_episodes(make, RandomWordPolicy(probe.lexicon, seed=0), specs[:4], batch_size=4)
    eos = policy.tokenizer.eos_token_id
    logged = []
    for game in games:
        turns = []
        for obs, action in zip(game.observations, game.actions, strict=True):
            ids = [*policy.tokenizer(action, add_special_tokens=False)["input_ids"], eos]
            turns.append(TurnTokens(tuple(policy.encode_prompts([obs])[0]), tuple(ids), (0.0,) * len(ids)))
        logged.append(dataclasses.replace(game, tokens=tuple(turns)))
    write_episodes(path, logged + logged[:2])  # two repeats, as overlapping logs would have
    return logged


@pytest.fixture(scope="module")
def wordle_rl_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RL run folder: config.yaml, a checkpoint (no final/: an interrupted run) and its log."""
    run = tmp_path_factory.mktemp("rl") / "grpo"
    policy = tiny_lm()
    policy.save(run / "checkpoints" / "step_2")
    solver_and_random_log(policy, run / "episodes.jsonl")
    (run / "config.yaml").write_text(yaml.safe_dump({"env": "Wordle-v0", "agent": "grpo",
                                                     "env_kwargs": WORDLE_KWARGS}))
    return run


def test_wordle_filtered_run_trains_on_the_won_games_and_saves_like_the_rl_agent(
        wordle_rl_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.cli.train import main

    out = tmp_path / "filtered"
    code = main(["--agent", "filtered", "--env", "Wordle-v0", "--env-kwargs", json.dumps(WORDLE_KWARGS),
                 "--set", f"rl_log={wordle_rl_run / 'episodes.jsonl'}", "--set", "min_reward=1",
                 "--set", "epochs=3", "--set", "learning_rate=3e-3", "--set", "batch_size=8",
                 "--set", "val_fraction=0", "--set", "eval_episodes=all", "--run-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"starting from {wordle_rl_run / 'checkpoints' / 'step_2'} (the newest checkpoint, step 2" in captured.err
    logged = list(read_episodes(wordle_rl_run / "episodes.jsonl"))
    unique = logged[:-2]  # the last two lines repeat the first two games
    report = json.loads((out / "filter.json").read_text())
    assert report["episodes_read"] == len(logged) and report["episodes_unique"] == len(unique)
    assert report["episodes_kept"] == sum(e.return_ >= 1 for e in unique) >= len(ANSWERS)  # every solver game
    assert report["train_samples"] == sum(e.length for e in unique if e.return_ >= 1)
    # Saved in the RL agent's format: evaluate loads it, and the kept turns became likelier.
    before = LMPolicy.load(wordle_rl_run / "checkpoints" / "step_2", device="cpu")
    after = LMPolicy.load(out / "final", device="cpu")
    turns = [t for e in logged if e.return_ >= 1 for t in e.tokens or ()]
    with torch.no_grad():
        assert float(lm_nll(after, turns)[0]) < float(lm_nll(before, turns)[0]) - 0.1
    summary = json.loads((out / "eval.json").read_text())["all"]
    assert summary["episodes"] == len(ANSWERS) and "win_rate" in summary["wordle"]
    assert list(out.glob("events.out.tfevents.*")) and (out / "checkpoints").is_dir()
    # The evaluate CLI finds the run's env and env kwargs by itself; the common schema.
    summary = evaluate_cli(["--policy", str(out / "final"), "--episodes", "3", "--json"], capsys)
    assert set(summary) == COMMON_KEYS | {"wordle"} and summary["env"] == "Wordle-v0" and summary["episodes"] == 3
    assert summary["policy"] == str(out / "final") and "win_rate" in summary["wordle"]


def test_short_cli_takes_the_env_settings_of_the_rl_run(
        wordle_rl_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.cli.filtered import main

    out = tmp_path / "short"
    code = main(["--rl-log", str(wordle_rl_run / "episodes.jsonl"), "--top-fraction", "0.5", "--epochs", "1",
                 "--batch-size", "16", "--output-dir", str(out), "--no-eval"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"env settings from {wordle_rl_run / 'config.yaml'}" in err
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["env"] == "Wordle-v0" and config["env_kwargs"] == WORDLE_KWARGS and config["agent"] == "filtered"
    assert config["filtered"]["top_fraction"] == 0.5 and config["filtered"]["min_reward"] is None
    assert config["filtered"]["batch_size"] == 16 and (out / "final" / "policy.json").is_file()


def test_filtered_run_errors_exit_2_and_create_no_run_folder(
        wordle_rl_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.cli.train import main

    log = str(wordle_rl_run / "episodes.jsonl")
    cases = [
        (["--env", "Wordle-v0", "--set", "min_reward=5"], "no episode has return >= 5"),
        (["--env", "GSM8K-v0", "--set", "min_reward=1"], "GSM8K-v0 takes no argument(s) 'answers'"),
        (["--env", "Wordle-v0", "--set", "min_reward=1", "--env-kwargs", json.dumps({**WORDLE_KWARGS, "nosuch": 1})],
         "Wordle-v0 takes no argument(s) 'nosuch'"),
        (["--env", "Wordle-v0", "--set", "min_reward=1", "--set", f"rl_model_dir={tmp_path}"], "holds no checkpoint"),
    ]
    for args, message in cases:
        out = tmp_path / "never"
        code = main(["--agent", "filtered", "--env-kwargs", json.dumps(WORDLE_KWARGS), "--set", f"rl_log={log}",
                     *args, "--run-dir", str(out)])
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1 and message in errors[0], (args, errors)
        assert not out.exists()


def test_grpo_logs_are_trained_on_their_recorded_ids_and_masks(tmp_path: Path) -> None:
    """A real (multi-turn) GRPO log: the filtered loss scores exactly the completion ids GRPO
    sampled, with GRPO's own loss masks where GRPO trained."""
    from toy_envs import make_target_env  # tests/agents is on sys.path

    from agents.algos.grpo import GRPOAgent, GRPOConfig
    from agents.core.run import Run

    policy = tiny_lm()
    run = Run(tmp_path / "grpo", tensorboard=False)
    config = GRPOConfig(iterations=1, prompts_per_step=2, group_size=4, max_new_tokens=6, learning_rate=0.0)
    GRPOAgent(policy, config, run=run, seed=0).learn(make_target_env(turns=2, target="abcdefghijklm"))
    selection = select_from_logs(expand_logs([str(run.episodes_path)]), top_fraction=1.0)
    check_logs_fit_policy(selection.kept, policy, [run.episodes_path])
    agent = FilteredAgent(policy, FilteredConfig(top_fraction=1.0, epochs=1, batch_size=4, val_fraction=0))
    samples = agent.samples(selection.kept)
    turns = [t for e in selection.kept for t in e.tokens or () if t.completion_ids]
    assert samples.size == len(turns)
    assert any(ep.info["grpo"]["trained"] for ep in selection.kept)
    for ep in selection.kept:
        for turn, mask in zip(ep.tokens or (), ep.info["grpo"]["loss_mask"], strict=True):
            batch = policy.batch_turns([turn])
            assert batch["input_ids"][0].tolist() == list(turn.prompt_ids) + list(turn.completion_ids)
            if ep.info["grpo"]["trained"]:
                assert batch["loss_mask"][0].tolist() == mask
    with torch.no_grad():
        loss, count = lm_nll(policy, turns)  # summed over the completion tokens
        expected = -policy.log_prob_tokens(turns, temperature=1.0).sum()
    assert count == sum(len(t.completion_ids) for t in turns)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    metrics = agent.learn(demos=selection.kept)
    assert math.isfinite(metrics["train/epoch_s"])


def test_a_bf16_checkpoint_trains_float32_weights(tmp_path: Path) -> None:
    # Like sft and grpo: a checkpoint loads in bf16 on a GPU, AdamW must update float32 weights.
    from toy_envs import make_target_env  # tests/agents is on sys.path

    from agents.algos.grpo import GRPOAgent, GRPOConfig
    from agents.core.run import Run

    run = Run(tmp_path / "grpo", tensorboard=False)
    config = GRPOConfig(iterations=1, prompts_per_step=2, group_size=4, max_new_tokens=6, learning_rate=0.0)
    GRPOAgent(tiny_lm(), config, run=run, seed=0).learn(make_target_env(target="abcdefghijklm"))
    kept = select_from_logs(expand_logs([str(run.episodes_path)]), top_fraction=1.0).kept
    policy = tiny_lm()
    policy.model.to(torch.bfloat16)
    FilteredAgent(policy, FilteredConfig(top_fraction=1.0, epochs=1, batch_size=4, val_fraction=0)).learn(demos=kept)
    assert {p.dtype for p in policy.model.parameters()} == {torch.float32}


# ------------------------------------------------------------------------------ the humanoid
def test_humanoid_filtered_run_clones_the_best_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gymnasium as gym

    import envs  # noqa: F401
    from agents.cli.train import main
    from agents.policies.mlp import GaussianMLPPolicy

    def make() -> gym.Env:
        return gym.make("HumanoidMimic-v1", max_episode_steps=40)

    probe = make()
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env(probe, hidden=(32,), init_log_std=-0.5)
    probe.close()
    rl = tmp_path / "trpo"
    policy.save(rl / "final")
    (rl / "config.yaml").write_text(yaml.safe_dump({"env": "HumanoidMimic-v1", "agent": "trpo",
                                                   "env_kwargs": {"motion": "walk"}}))
    games = play_episodes(make, policy, [EpisodeSpec(seed=i) for i in range(6)], batch_size=6, deterministic=False)
    write_episodes(rl / "episodes.jsonl", games)

    out = tmp_path / "filtered"
    code = main(["--agent", "filtered", "--env", "HumanoidMimic-v1", "--env-kwargs", '{"motion": "walk"}',
                 "--set", f"rl_log={rl}", "--set", "top_fraction=0.5", "--set", "epochs=3", "--set", "batch_size=16",
                 "--set", "learning_rate=3e-3", "--set", "val_fraction=0", "--set", "eval_episodes=1",
                 "--run-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    best = sorted(games, key=lambda e: e.return_, reverse=True)[:3]
    report = json.loads((out / "filter.json").read_text())
    assert report["episodes_kept"] == 3 and report["threshold"] == pytest.approx(best[-1].return_)
    assert report["train_samples"] == sum(e.length for e in best)
    after = GaussianMLPPolicy.load(out / "final")
    assert after.metadata == policy.metadata and after.obs_dim == policy.obs_dim
    np.testing.assert_array_equal(after.obs_mean.numpy(), policy.obs_mean.numpy())  # normalisation untouched
    obs = np.concatenate([np.asarray(e.observations, dtype=np.float32) for e in best])
    actions = np.concatenate([np.asarray(e.actions, dtype=np.float32) for e in best])
    with torch.no_grad():
        assert float(after.log_prob(obs, actions).mean()) > float(policy.log_prob(obs, actions).mean())
    summary = json.loads((out / "eval.json").read_text())["all"]
    assert summary["episodes"] == 1 and "mean_time_alive" in summary["mimic"]
    summary = evaluate_cli(["--policy", str(out / "final"), "--episodes", "1", "--json"], capsys)
    assert set(summary) == COMMON_KEYS | {"mimic"} and summary["env"] == "HumanoidMimic-v1"
    with pytest.raises(CheckpointError):
        GaussianMLPPolicy.load(out)  # the run folder itself is not a checkpoint


def test_an_interrupted_run_resumes_exactly_from_its_epoch_checkpoint(wordle_rl_run: Path, tmp_path: Path) -> None:
    from agents.core.run import Run, resumable_checkpoint

    kept = select_from_logs([wordle_rl_run / "episodes.jsonl"], min_reward=1.0).kept
    config = FilteredConfig(min_reward=1.0, epochs=2, batch_size=8, learning_rate=3e-3, val_fraction=0)

    def train(run_dir: Path, callback=None, resume: bool = False) -> LMPolicy:
        run = Run(run_dir, tensorboard=False)
        checkpoint = resumable_checkpoint(run_dir) if resume else None
        policy = LMPolicy.load(checkpoint or wordle_rl_run / "checkpoints" / "step_2", device="cpu")
        FilteredAgent(policy, config, run=run, seed=3).learn(demos=kept, callback=callback, resume_from=checkpoint)
        return policy

    torch.manual_seed(0)
    straight = train(tmp_path / "straight")
    steps_per_epoch = math.ceil(FilteredAgent(straight, config).samples(kept).size / config.batch_size)

    def stop_in_second_epoch(step: int, metrics: dict) -> None:
        if step == steps_per_epoch + 1:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resumed", stop_in_second_epoch)
    assert resumable_checkpoint(tmp_path / "resumed") == tmp_path / "resumed" / "checkpoints" / f"step_{steps_per_epoch}"
    resumed = train(tmp_path / "resumed", resume=True)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
