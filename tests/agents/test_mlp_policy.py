"""GaussianMLPPolicy: the contract other agents code against (normalisation, distribution,
checkpoints that load without running code and refuse what they cannot serve)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.core.checkpoint import CheckpointError
from agents.policies.mlp import OBS_CLIP, GaussianMLPPolicy


def make_policy(obs_dim: int = 6, act_dim: int = 3, **kwargs) -> GaussianMLPPolicy:
    torch.manual_seed(0)
    return GaussianMLPPolicy(obs_dim, act_dim, hidden=(16, 16), metadata={"env_id": "Toy-v0"}, **kwargs)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=5), st.integers(0, 2**16))
def test_merged_statistics_equal_those_of_the_whole_data(sizes: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.normal(3.0, 2.0, (sum(sizes), 4)) * rng.uniform(0.1, 10, 4)
    policy = GaussianMLPPolicy(4, 2, hidden=(8,))
    start = 0
    for size in sizes:
        policy.update_obs_stats(data[start : start + size])
        start += size
    assert float(policy.obs_count) == len(data)
    np.testing.assert_allclose(policy.obs_mean.numpy(), data.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(policy.obs_var.numpy(), data.var(0), rtol=1e-9, atol=1e-9)


def test_normalisation_centres_scales_and_clips() -> None:
    policy = make_policy(obs_dim=2)
    policy.update_obs_stats(np.array([[0.0, 10.0], [2.0, 30.0]]))
    out = policy.normalize(torch.tensor([[1.0, 20.0], [1e6, -1e6]]))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out[0].numpy(), [0.0, 0.0], atol=1e-6)
    assert out[1].tolist() == [OBS_CLIP, -OBS_CLIP]
    with pytest.raises(ValueError, match="NaN"):
        policy.update_obs_stats(np.array([[np.nan, 0.0]]))


def test_act_and_log_prob_agree_with_the_distribution() -> None:
    policy = make_policy()
    obs = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    mean_actions, mean_logp = policy.act(obs, deterministic=True)
    assert mean_actions.shape == (5, 3) and mean_actions.dtype == np.float32 and mean_logp.shape == (5,)
    dist = policy.distribution(torch.as_tensor(obs))
    np.testing.assert_allclose(mean_actions, dist.mean.detach().numpy(), atol=1e-6)
    sampled, logp = policy.act(list(obs))  # a list of observations works too
    assert not np.allclose(sampled, mean_actions)
    log_prob = policy.log_prob(obs, sampled)
    np.testing.assert_allclose(log_prob.detach().numpy(), logp, rtol=1e-5)
    log_prob.sum().backward()  # differentiable, through the mean and log_std
    assert policy.log_std.grad is not None and policy.mean_net[0].weight.grad is not None
    with pytest.raises(ValueError, match=r"shape \[B, 6\]"):
        policy.act(np.zeros((2, 5)))


def test_save_load_round_trip_keeps_weights_statistics_and_metadata(tmp_path: Path) -> None:
    policy = make_policy(activation="relu", init_log_std=-0.5)
    policy.update_obs_stats(np.random.default_rng(1).normal(2, 3, (50, 6)))
    policy.save(tmp_path / "ckpt")
    manifest = json.loads((tmp_path / "ckpt" / "policy.json").read_text())
    assert manifest == {"kind": "gaussian_mlp", "obs_dim": 6, "act_dim": 3, "hidden": [16, 16],
                        "activation": "relu", "metadata": {"env_id": "Toy-v0"}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # nothing half-written beside it
    loaded = GaussianMLPPolicy.load(tmp_path / "ckpt")
    obs = np.random.default_rng(2).normal(size=(4, 6))
    np.testing.assert_array_equal(loaded.act(obs, deterministic=True)[0], policy.act(obs, deterministic=True)[0])
    assert float(loaded.obs_count) == 50 and loaded.obs_mean.dtype == torch.float64
    assert loaded.metadata == {"env_id": "Toy-v0"} and loaded.num_parameters() == policy.num_parameters()


def test_loading_a_bad_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    policy = make_policy()
    policy.save(tmp_path / "ok")
    with pytest.raises(CheckpointError, match=r"policy\.json is missing"):
        GaussianMLPPolicy.load(tmp_path)
    corrupt = tmp_path / "corrupt"
    policy.save(corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        GaussianMLPPolicy.load(corrupt)
    missing = tmp_path / "missing"
    policy.save(missing)
    (missing / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        GaussianMLPPolicy.load(missing)
    resized = tmp_path / "resized"
    policy.save(resized)
    manifest = json.loads((resized / "policy.json").read_text())
    (resized / "policy.json").write_text(json.dumps({**manifest, "obs_dim": 7}))
    with pytest.raises(CheckpointError, match="does not match"):
        GaussianMLPPolicy.load(resized)
    (resized / "policy.json").write_text(json.dumps({**manifest, "kind": "lm"}))
    with pytest.raises(CheckpointError, match="not a 'gaussian_mlp'"):
        GaussianMLPPolicy.load(resized)


def test_check_compatible_refuses_other_sizes_and_motions(tmp_path: Path) -> None:
    pytest.importorskip("pybullet_data")
    import gymnasium as gym

    from agents.core.loading import load_policy

    walk = gym.make("envs:HumanoidMimic-v1")
    policy = GaussianMLPPolicy.for_env(walk, hidden=(8,))
    assert policy.metadata == {"env_id": "HumanoidMimic-v1", "motion": "walk"}
    policy.check_compatible(walk)
    policy.save(tmp_path / "walk")
    assert isinstance(load_policy(str(tmp_path / "walk"), walk), GaussianMLPPolicy)
    with pytest.raises(CheckpointError, match="trained on motion 'walk' but the env plays 'run'"):
        load_policy(str(tmp_path / "walk"), gym.make("envs:HumanoidMimic-v1", motion="run"))
    GaussianMLPPolicy(10, 28, hidden=(8,), metadata={"env_id": "Other-v0"}).save(tmp_path / "small")
    with pytest.raises(CheckpointError, match="observations of size 10 but the env gives"):
        load_policy(str(tmp_path / "small"), walk)
    with pytest.raises(ValueError, match="activation"):
        GaussianMLPPolicy(3, 2, activation="swish")
