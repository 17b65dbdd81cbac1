"""Behaviour cloning of the Gaussian MLP: the loss falls, log_std fits the residuals, early
stopping, the validation split, exact resume through DAgger rounds, and the training CLI on the
humanoid (policy and reference evaluated on the same episodes; bad checkpoints refused)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envs  # noqa: F401  (registers the ids)
from agents.algos.bc import BCAgent, BCConfig, demo_arrays, validation_mask
from agents.core.run import Run, resumable_checkpoint
from agents.policies.mlp import GaussianMLPPolicy
from envs.mimic import mocap

ROOT = Path(__file__).resolve().parents[2]
needs_clips = pytest.mark.skipif(mocap.clip_dir() is None, reason="pybullet_data ships the humanoid clips; not installed")
TINY = ["--set", "max_steps=30", "--set", "reference_states=40", "--set", "noisy_episodes=2", "--set", "horizon=8",
        "--set", "dagger_rounds=1", "--set", "dagger_episodes=2", "--set", "eval_every=5", "--set", "save_every=10",
        "--set", "hidden=[32]", "--set", "eval_episodes=2"]


class Arrays:
    def __init__(self, obs: np.ndarray, act: np.ndarray, groups: np.ndarray | None = None) -> None:
        self.observations, self.actions, self.groups = obs, act, groups


def linear_demos(n: int = 2000, noise: float = 0.1, seed: int = 0) -> Arrays:
    rng = np.random.default_rng(seed)
    obs = rng.normal(5.0, 3.0, (n, 4)).astype(np.float32)
    weights = rng.normal(size=(4, 2)) / 10
    act = ((obs - 5.0) @ weights + rng.normal(0, noise, (n, 2))).astype(np.float32)
    return Arrays(obs, act, np.arange(n) // 20)


def tiny_config(**kwargs) -> BCConfig:
    defaults = {"hidden": [32], "batch_size": 64, "eval_every": 25, "patience": 0, "dagger_rounds": 0,
                "log_every": 10, "save_every": 1000}
    return BCConfig(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def walk() -> gym.Env:
    if mocap.clip_dir() is None:
        pytest.skip("pybullet_data ships the humanoid clips; not installed")
    return gym.make("envs:HumanoidMimic-v1")


@needs_clips
def test_loss_falls_on_mocap_demonstrations(walk) -> None:
    from envs.mimic.demos import MimicDemoSource

    demos = MimicDemoSource(walk, reference_states=300, noisy_episodes=2, horizon=10, progress=False).demonstrations()

    def fresh() -> GaussianMLPPolicy:
        torch.manual_seed(0)
        return GaussianMLPPolicy.for_env(walk, hidden=(64, 64))

    untrained = fresh()
    untrained.update_obs_stats(demos.observations)  # what learn() starts from
    held = validation_mask(demos.groups, 0.1, seed=0)
    val = torch.as_tensor(demos.observations[held]), torch.as_tensor(demos.actions[held])
    initial = BCAgent(untrained, tiny_config()).validate(*val)["eval/loss"]
    train_losses: list[float] = []

    def record(step: int, metrics: dict[str, float]) -> None:
        if step % 10 == 0:
            train_losses.append(metrics["train/loss"])

    policy = fresh()
    metrics = BCAgent(policy, tiny_config(max_steps=200, learning_rate=3e-3), seed=0).learn(
        None, demos=demos, callback=record)
    assert len(train_losses) == 20 and train_losses[-1] < 0.1 * train_losses[0]
    assert metrics["eval/loss"] < 0.1 * initial  # on held-out states, not only the training ones


def test_normalisation_comes_from_the_demonstrations_and_log_std_fits_the_residuals() -> None:
    demos = linear_demos(noise=0.1)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(4, 2, hidden=(32,))
    BCAgent(policy, tiny_config(max_steps=600, learning_rate=3e-3), seed=0).learn(None, demos=demos)
    np.testing.assert_allclose(policy.obs_mean.numpy(), demos.observations.mean(0), rtol=1e-5)
    np.testing.assert_allclose(policy.obs_var.numpy(), demos.observations.var(0), rtol=1e-4)
    assert np.allclose(policy.log_std.detach().exp().numpy(), 0.1, rtol=0.3)  # the label noise
    mean, _ = policy.act(demos.observations[:200], deterministic=True)
    noise_free = (demos.observations[:200] - 5.0) @ np.linalg.lstsq(
        demos.observations - 5.0, demos.actions, rcond=None)[0]
    assert np.sqrt(np.mean((mean - noise_free) ** 2)) < 0.07  # well under the label noise (0.1)


def test_nll_loss_trains_mean_and_std_together() -> None:
    demos = linear_demos(noise=0.2)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(4, 2, hidden=(32,), init_log_std=-1.0)
    metrics = BCAgent(policy, tiny_config(max_steps=400, loss="nll", learning_rate=1e-2)).learn(None, demos=demos)
    assert metrics["eval/loss"] == metrics["eval/nll"] and metrics["eval/mse"] < 0.06
    assert np.allclose(policy.log_std.detach().exp().numpy(), 0.2, rtol=0.3)


def test_early_stopping_ends_the_round_on_the_best_weights() -> None:
    demos = linear_demos(n=400)
    policy = GaussianMLPPolicy(4, 2, hidden=(16,))
    steps: list[int] = []
    # With a zero learning rate nothing improves after the first validation.
    BCAgent(policy, tiny_config(max_steps=100, eval_every=5, patience=2, learning_rate=0.0)).learn(
        None, demos=demos, callback=lambda step, m: steps.append(step))
    assert steps[-1] == 15  # best at step 5, then two validations without a new best


def test_validation_split_holds_out_whole_groups_and_stays_put_as_groups_arrive() -> None:
    groups = np.repeat(np.arange(200), 5)
    held = validation_mask(groups, 0.2, seed=1)
    assert 0.1 < held.mean() < 0.3
    for g in range(200):
        assert len(set(held[groups == g].tolist())) == 1  # a group is all in or all out
    more = np.concatenate([groups, np.repeat(np.arange(200, 260), 5)])
    np.testing.assert_array_equal(validation_mask(more, 0.2, seed=1)[: len(groups)], held)
    assert not validation_mask(groups, 0.0, seed=1).any()
    assert validation_mask(np.array([0, 0, 1]), 0.01, seed=0).sum() in (1, 2)  # tiny sets still validate


def test_demonstration_files_and_sizes_are_checked(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", observations=np.zeros((5, 4)), actions=np.ones((5, 2)))
    obs, act, groups = demo_arrays(tmp_path / "ok.npz")
    assert obs.dtype == act.dtype == np.float32 and groups.tolist() == [0, 1, 2, 3, 4]
    np.savez(tmp_path / "no_actions.npz", observations=np.zeros((5, 4)))
    with pytest.raises(ValueError, match="lacks array"):
        demo_arrays(tmp_path / "no_actions.npz")
    np.savez(tmp_path / "short.npz", observations=np.zeros((5, 4)), actions=np.ones((4, 2)))
    with pytest.raises(ValueError, match="need observations"):
        demo_arrays(tmp_path / "short.npz")
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(ValueError, match="not a readable"):
        demo_arrays(tmp_path / "text.npz")
    with pytest.raises(ValueError, match="does not exist"):
        demo_arrays(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="the policy takes 3"):
        BCAgent(GaussianMLPPolicy(3, 2, hidden=(4,)), tiny_config()).learn(None, demos=tmp_path / "ok.npz")
    with pytest.raises(ValueError, match="labels must be"):
        BCConfig(labels="psychic")


@needs_clips
def test_resume_through_a_dagger_round_is_exact(walk, tmp_path: Path) -> None:
    from envs.mimic.demos import MimicDemoSource

    config = tiny_config(max_steps=40, eval_every=5, save_every=10, dagger_rounds=1, dagger_episodes=2, horizon=6)

    def source() -> MimicDemoSource:
        return MimicDemoSource(walk, reference_states=30, noisy_episodes=2, horizon=6, progress=False)

    def fresh() -> GaussianMLPPolicy:
        torch.manual_seed(0)
        return GaussianMLPPolicy.for_env(walk, hidden=(32,))

    whole = fresh()
    BCAgent(whole, config, run=Run(tmp_path / "whole", tensorboard=False)).learn(None, demos=source())

    def interrupt(step: int, metrics: dict) -> None:
        if step == 35:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        BCAgent(fresh(), config, run=Run(tmp_path / "cut", tensorboard=False)).learn(
            None, demos=source(), callback=interrupt)
    checkpoint = resumable_checkpoint(tmp_path / "cut")
    assert checkpoint is not None and checkpoint.name == "step_30"  # in the DAgger round
    resumed = GaussianMLPPolicy.load(checkpoint)
    BCAgent(resumed, config, run=Run(tmp_path / "cut", tensorboard=False)).learn(
        None, demos=source(), resume_from=checkpoint)
    for name, tensor in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    with np.load(tmp_path / "whole" / "demonstrations.npz") as a, np.load(tmp_path / "cut" / "demonstrations.npz") as b:
        np.testing.assert_array_equal(a["observations"], b["observations"])  # DAgger data included
    assert {p.name for p in (tmp_path / "whole").iterdir()} >= {"final", "best", "checkpoints", "demonstrations.npz"}


# ----------------------------------------------------------------------------- the training CLI


@needs_clips
def test_train_cli_clones_evaluates_against_the_reference_and_refuses_bad_checkpoints(tmp_path, capsys) -> None:
    from agents import evaluate, train

    run_dir = tmp_path / "run"
    assert train.main(["--config", str(ROOT / "configs/mimic_walk_sft.yaml"), *TINY, "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "policy vs reference, same 2 episodes" in out and "mimic.mean_time_alive" in out
    report = json.loads((run_dir / "eval.json").read_text())
    assert set(report) == {"all", "reference"}
    assert report["all"]["policy"] == "gaussian_mlp" and report["reference"]["policy"] == "reference"
    for summary in report.values():
        assert summary["episodes"] == 2 and {"mean_time_alive", "mean_reward_per_step", "mpjpe_mm"} <= set(summary["mimic"])
    starts = [[json.loads(line)["seed"] for line in (run_dir / f"eval_episodes_{name}.jsonl").read_text().splitlines()]
              for name in ("all", "reference")]
    assert starts[0] == starts[1]  # the same episodes (seeds, hence start phases)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["sft"]["labels"] == "feedforward" and config["sft"]["dagger_rounds"] == 1
    assert json.loads((run_dir / "final" / "policy.json").read_text())["metadata"]["motion"] == "walk"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(run_dir)).Reload().Tags()["scalars"]
    assert {"train/loss", "eval/loss", "rollout/ep_len_mean"} <= set(tags)
    assert train.main(["--resume", str(run_dir)]) == 0 and "already finished" in capsys.readouterr().out

    # --init continues from a BC checkpoint; bad ones are one clear error and no run folder.
    never = tmp_path / "never"
    GaussianMLPPolicy(10, 28, hidden=(4,)).save(tmp_path / "small")
    corrupt = tmp_path / "corrupt"
    GaussianMLPPolicy(224, 28, hidden=(4,)).save(corrupt)
    (corrupt / "model.safetensors").write_bytes(b"oops")
    base = ["--env", "HumanoidMimic-v1", "--agent", "sft", "--run-dir", str(never)]
    for args, message in [
        (["--init", str(tmp_path / "small")], "observations of size 10"),
        (["--init", str(corrupt)], "corrupt"),
        (["--init", str(run_dir / "final"), "--env-kwargs", '{"motion": "run"}'], "trained on motion 'walk'"),
        (["--set", "labels=psychic"], "labels must be"),
        (["--agent", "grpo"], "needs text actions"),
    ]:
        assert train.main([*base, *args]) == 2, args
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (args, errors)
        assert not never.exists()
    assert evaluate.main(["--env", "HumanoidMimic-v1", "--env-kwargs", '{"motion": "run"}',
                          "--policy", str(run_dir / "final"), "--episodes", "1"]) == 2
    assert "trained on motion 'walk'" in capsys.readouterr().err


def test_help_lists_the_behaviour_cloning_keys() -> None:
    from agents.cli.train import build_parser

    text = build_parser().format_help()
    assert "Box-action envs" in text and "dagger_rounds" in text and "kp_tilt" in text
    assert "configs/mimic_walk_sft.yaml" in text
