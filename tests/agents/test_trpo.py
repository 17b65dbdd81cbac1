"""TRPO: conjugate gradient, GAE against hand-computed values (truncation bootstraps, termination
does not), the Fisher-vector product against the explicit Gauss-Newton Fisher of a Gaussian, a
trust-region step, final observations on truncation, the BC -> TRPO hand-off, a 2k-step smoke run
on HumanoidMimic-v1, exact resume and sync == async vector envs. Tiny nets, one thread.
"""

from __future__ import annotations

import shutil
import types

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.algos.bc import BCAgent, BCConfig
from agents.algos.trpo import (
    TRPOAgent,
    TRPOConfig,
    conjugate_gradient,
    fisher_vector_product,
    gae,
)
from agents.core.config import ConfigError, build, read_yaml
from agents.core.loading import load_policy
from agents.core.run import TRAINER_STATE, Run
from agents.core.trajectory import read_episodes
from agents.policies.mlp import GaussianMLPPolicy

TINY = {"critic_hidden": [16], "critic_epochs": 1, "critic_minibatch": 64}


def pendulum_policy(seed: int = 0) -> GaussianMLPPolicy:
    torch.manual_seed(seed)
    return GaussianMLPPolicy(3, 1, hidden=[16], init_log_std=0.0, metadata={"env_id": "Pendulum-v1"})


def make_pendulum() -> gym.Env:
    return gym.make("Pendulum-v1")


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------ maths
def test_conjugate_gradient_solves_an_spd_system() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 6))
    a = torch.tensor(m @ m.T + 6 * np.eye(6))
    b = torch.tensor(rng.normal(size=6))
    x = conjugate_gradient(lambda v: a @ v, b, iters=6)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a.numpy(), b.numpy()), rtol=1e-8, atol=1e-10)
    # a zero right-hand side stops at once with x = 0
    assert torch.equal(conjugate_gradient(lambda v: a @ v, torch.zeros(6, dtype=torch.float64), 6),
                       torch.zeros(6, dtype=torch.float64))


def test_gae_bootstraps_on_truncation_and_not_on_termination() -> None:
    # Episode 1: steps 0-1, cut by the time limit at step 1 (V(final obs) = 0.9).
    # Episode 2: steps 2-3, terminated at step 3.
    rewards = np.array([1.0, 1.0, 1.0, 1.0])
    values = np.array([0.5, 0.4, 0.3, 0.2])
    next_values = np.array([0.4, 0.9, 0.2, 0.1])
    terminated = np.array([False, False, False, True])
    truncated = np.array([False, True, False, False])
    adv, ret = gae(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=0.8)
    # deltas: 1 + .9*.4 - .5 = .86; 1 + .9*.9 - .4 = 1.41; 1 + .9*.2 - .3 = .88; 1 - .2 = .8
    expected = [0.86 + 0.72 * 1.41, 1.41, 0.88 + 0.72 * 0.8, 0.8]
    np.testing.assert_allclose(adv, expected)
    np.testing.assert_allclose(ret, np.array(expected) + values)
    # had step 1 terminated instead, it would not bootstrap: delta = 1 - .4
    adv_term, _ = gae(rewards, values, next_values, terminated | truncated, np.zeros(4, bool), 0.9, 0.8)
    assert adv_term[1] == pytest.approx(0.6)
    # the last step of a rollout, mid-episode, bootstraps from the next observation
    adv_end, _ = gae([1.0], [0.5], [0.7], [False], [False], 0.9, 0.8)
    assert adv_end[0] == pytest.approx(1 + 0.9 * 0.7 - 0.5)


def test_gae_handles_envs_independently() -> None:
    rewards = np.array([[1.0, 0.0], [1.0, 2.0]])
    values = np.array([[0.5, 0.1], [0.4, 0.2]])
    next_values = np.array([[0.4, 0.2], [0.9, 0.3]])
    terminated = np.array([[False, True], [False, False]])
    truncated = np.array([[False, False], [True, False]])
    adv, _ = gae(rewards, values, next_values, terminated, truncated, 0.9, 0.8)
    for e in range(2):
        single, _ = gae(rewards[:, e], values[:, e], next_values[:, e], terminated[:, e], truncated[:, e], 0.9, 0.8)
        np.testing.assert_allclose(adv[:, e], single)
    assert adv[0, 1] == pytest.approx(0.0 - 0.1)  # terminated: no bootstrap, no look-ahead


def test_fisher_vector_product_is_the_gaussian_fisher() -> None:
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(3, 2, hidden=[5], init_log_std=-0.5)
    policy.update_obs_stats(np.random.default_rng(0).normal(size=(50, 3)))
    obs = torch.randn(7, 3)
    params = [p for p in policy.parameters()]
    with torch.no_grad():
        d = policy.distribution(obs)
        old = torch.distributions.Normal(d.loc.clone(), d.scale.clone())
    kl = torch.distributions.kl_divergence(old, policy.distribution(obs)).sum(-1).mean()
    fvp = fisher_vector_product(kl, params, damping=0.0)
    # Explicit: F = mean_b J_b^T diag(1/sigma^2) J_b for the mean's weights, 2 I for log_std.
    net = [p for n, p in policy.named_parameters() if n != "log_std"]
    sizes = [p.numel() for p in net]
    rows = []
    for b in range(len(obs)):
        for j in range(2):
            mean = policy(obs[b : b + 1])[0, j]
            rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(mean, net)]))
    jac = torch.stack(rows).reshape(len(obs), 2, sum(sizes))
    inv_var = torch.exp(-2 * policy.log_std.detach())
    fisher_net = torch.einsum("bjp,j,bjq->pq", jac, inv_var, jac) / len(obs)
    names = [n for n, _ in policy.named_parameters()]
    v = torch.randn(sum(p.numel() for p in params))
    got = fvp(v).detach()
    # reassemble in named_parameters order
    offset, parts_v = 0, {}
    for n, p in policy.named_parameters():
        parts_v[n] = v[offset : offset + p.numel()]
        offset += p.numel()
    net_v = torch.cat([parts_v[n] for n in names if n != "log_std"])
    expected = {"net": fisher_net @ net_v, "log_std": 2 * parts_v["log_std"]}
    offset, got_net = 0, []
    for n, p in policy.named_parameters():
        chunk = got[offset : offset + p.numel()]
        offset += p.numel()
        if n == "log_std":
            torch.testing.assert_close(chunk, expected["log_std"], rtol=1e-4, atol=1e-5)
        else:
            got_net.append(chunk)
    torch.testing.assert_close(torch.cat(got_net), expected["net"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fisher_subsample", [1, 4])
def test_policy_step_stays_in_the_trust_region_and_improves_the_surrogate(fisher_subsample: int) -> None:
    policy = pendulum_policy()
    agent = TRPOAgent(policy, TRPOConfig(target_kl=0.005, fisher_subsample=fisher_subsample, **TINY))
    obs = torch.randn(256, 3)
    actions = torch.as_tensor(policy.act(obs.numpy())[0])
    # reward actions above the mean: the mean should move up
    adv = (actions[:, 0] - policy(obs)[:, 0]).detach()
    adv = (adv - adv.mean()) / adv.std()
    before = policy(obs).detach()
    m = agent.policy_step(obs, actions, adv)
    assert m["train/line_search_success"] == 1.0
    assert 0 < m["train/kl"] <= 0.005
    assert m["train/surrogate_gain"] > 0
    assert float((policy(obs).detach() - before).mean()) > 0
    # no signal: the line search finds no better surrogate and the weights stay
    snapshot = {k: v.clone() for k, v in policy.state_dict().items()}
    m = agent.policy_step(obs, actions, torch.zeros(256))
    assert m["train/line_search_success"] == 0.0 and m["train/kl"] == 0.0
    assert all(torch.equal(snapshot[k], v) for k, v in policy.state_dict().items())


def test_config_validation_and_the_mimic_yaml() -> None:
    with pytest.raises(ValueError, match="vector_env"):
        TRPOConfig(vector_env="threads")
    with pytest.raises(ValueError, match="max_minutes"):
        TRPOConfig(max_minutes=0)
    with pytest.raises(ConfigError, match="unknown key"):
        build(TRPOConfig, {"n_env": 4}, "trpo")
    data = read_yaml("configs/mimic_walk_trpo.yaml")
    assert data["agent"] == "trpo" and data["env"] == "HumanoidMimic-v1"
    cfg = build(TRPOConfig, data["trpo"], "trpo")
    assert cfg.target_kl == 0.01 and cfg.log_episodes


# ------------------------------------------------------------------------------ rollouts
def test_truncation_keeps_the_final_observation_for_the_bootstrap() -> None:
    policy = pendulum_policy()
    agent = TRPOAgent(policy, TRPOConfig(n_envs=1, n_steps=203, **TINY), seed=3)
    envs = agent.make_vector_env(make_pendulum)
    try:
        obs = agent.reset_envs(envs, 0)
        space = envs.single_action_space
        batch, _, finished = agent.collect(envs, obs, "Pendulum-v1", 0, (space.low, space.high))
    finally:
        envs.close()
    assert batch.truncated[:, 0].tolist().index(True) == 199 and not batch.terminated.any()
    assert len(finished) == 1 and finished[0].length == 200 and finished[0].truncated
    # next_obs[t] is obs[t+1] within an episode; at the cut, the final observation, not the reset one
    np.testing.assert_array_equal(batch.next_obs[:199, 0], batch.obs[1:200, 0])
    assert not np.allclose(batch.next_obs[199, 0], batch.obs[200, 0])
    # the final observation continues the pendulum's trajectory: cos^2 + sin^2 = 1 and |speed| <= 8
    final = batch.next_obs[199, 0]
    assert final[0] ** 2 + final[1] ** 2 == pytest.approx(1.0, abs=1e-5) and abs(final[2]) <= 8


def test_bc_checkpoint_hands_over_unchanged(tmp_path) -> None:
    """BC -> TRPO: the loaded policy acts exactly as BC left it (means, log-probs, observation
    statistics), and critic warm-up iterations leave the policy alone."""
    rng = np.random.default_rng(0)
    obs = (rng.normal(size=(400, 3)) * [1.0, 1.0, 4.0]).astype(np.float32)
    demos = types.SimpleNamespace(observations=obs, actions=np.tanh(obs[:, :1] - obs[:, 2:]).astype(np.float32))
    bc_policy = pendulum_policy()
    bc_run = Run(tmp_path / "bc", tensorboard=False)
    BCAgent(bc_policy, BCConfig(max_steps=30, batch_size=64, eval_every=10, dagger_rounds=0), run=bc_run).learn(
        demos=demos)
    probe = torch.as_tensor(obs[:32])
    actions = torch.as_tensor(rng.normal(size=(32, 1)), dtype=torch.float32)

    policy = GaussianMLPPolicy.load(bc_run.final_dir)
    assert float(policy.obs_count) == len(obs)  # the demonstrations' statistics came along
    for name in ("obs_mean", "obs_var", "obs_count"):
        assert torch.equal(getattr(policy, name), getattr(bc_policy, name))
    cfg = TRPOConfig(n_envs=2, n_steps=50, critic_warmup_iterations=2, update_obs_stats=False, **TINY)
    agent = TRPOAgent(policy, cfg, seed=0, warm_up_critic=True)
    np.testing.assert_array_equal(agent.predict(obs[0]), bc_policy.act(obs[:1], deterministic=True)[0][0])
    with torch.no_grad():
        assert torch.equal(policy(probe), bc_policy(probe))
        assert torch.equal(policy.log_prob(probe, actions), bc_policy.log_prob(probe, actions))
    seen = []
    agent.learn(make_pendulum, budget=200, callback=lambda it, m: seen.append(m["train/critic_only"]))
    assert seen == [1.0, 1.0]  # two critic-only iterations: the policy is as BC left it
    assert state_equal(policy, bc_policy)


def test_obs_stats_continue_from_bc() -> None:
    policy = pendulum_policy()
    policy.update_obs_stats(np.full((1000, 3), 5.0))
    agent = TRPOAgent(policy, TRPOConfig(n_envs=2, n_steps=50, **TINY), seed=0, warm_up_critic=True)
    agent.learn(make_pendulum, budget=100)
    assert float(policy.obs_count) == 1100  # merged, not restarted
    assert 0 < float(policy.obs_mean[0]) < 5.0


# ------------------------------------------------------------------------------ end to end
def test_smoke_2k_steps_on_the_humanoid(tmp_path) -> None:
    from agents.core.envs import make_env_fn

    make = make_env_fn("HumanoidMimic-v1", {})
    env = make()
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env(env, hidden=[16])
    cfg = TRPOConfig(n_envs=2, n_steps=200, total_steps=2000, save_every=3, **TINY)  # 5 iterations
    run = Run(tmp_path / "run", {"trpo": "smoke"})
    metrics = TRPOAgent(policy, cfg, run=run, seed=0).learn(make)
    run.close()
    assert metrics["train/iteration"] == 5 and np.isfinite(metrics["train/value_loss"])
    for tag in ("rollout/ep_len_mean", "rollout/time_alive", "rollout/reward_pose", "train/kl"):
        assert tag in metrics
    assert (run.checkpoint_dir(3) / TRAINER_STATE).is_file()
    assert list(run.dir.glob("events.out.tfevents.*"))
    loaded = load_policy(str(run.final_dir), env)  # the policy's own format: evaluate / render load it
    assert state_equal(loaded, policy)
    episodes = list(read_episodes(run.episodes_path))
    assert episodes and all(e.env_id == "HumanoidMimic-v1" for e in episodes)
    first = episodes[0]
    assert len(first.observations[0]) == 224 and len(first.actions[0]) == 28
    assert all(-1 <= a <= 1 for a in first.actions[0])  # executed (clipped) actions
    assert first.info["time_alive"] > 0 and set(first.reward_terms) == {"pose", "velocity", "end_effector", "root", "com"}
    assert first.reward_terms["pose"] <= first.length
    env.close()


def _pendulum_run(tmp_path, name: str, iterations: int, resume_from=None, policy=None, **overrides):
    # 2 iterations x 100 steps per env between re-seeded resets: one whole 200-step episode each
    cfg = TRPOConfig(n_envs=2, n_steps=100, save_every=2, keep_checkpoints=5, **(TINY | overrides))
    run = Run(tmp_path / name, tensorboard=False)
    policy = policy or pendulum_policy()
    agent = TRPOAgent(policy, cfg, run=run, seed=7)
    agent.learn(make_pendulum, budget=iterations * 200, resume_from=resume_from)
    return run, policy, agent


def test_resume_matches_an_uninterrupted_run(tmp_path) -> None:
    full, full_policy, full_agent = _pendulum_run(tmp_path, "full", 4)
    # "interrupted" after iteration 3: a copy of the run folder without final/, whose episode log
    # already holds iteration 2's episodes (logged after the step_2 checkpoint)
    shutil.copytree(full.dir, tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "final")
    checkpoint = tmp_path / "resumed" / "checkpoints" / "step_2"
    resumed, policy, agent = _pendulum_run(tmp_path, "resumed", 4, resume_from=checkpoint,
                                           policy=GaussianMLPPolicy.load(checkpoint))
    assert state_equal(policy, full_policy)
    assert state_equal(agent.critic, full_agent.critic)
    log = full.episodes_path.read_bytes()
    assert [e.info["iteration"] for e in read_episodes(full.episodes_path)] == [1, 1, 3, 3]
    assert resumed.episodes_path.read_bytes() == log  # nothing lost, nothing logged twice


def test_async_vector_env_matches_sync(tmp_path) -> None:
    _, sync_policy, _ = _pendulum_run(tmp_path, "sync", 2)
    _, async_policy, _ = _pendulum_run(tmp_path, "async", 2, vector_env="async")
    assert state_equal(sync_policy, async_policy)


def test_wall_clock_budget_stops_early() -> None:
    policy = pendulum_policy()
    agent = TRPOAgent(policy, TRPOConfig(n_envs=1, n_steps=20, max_minutes=1e-9, **TINY))
    assert agent.learn(make_pendulum, budget=10_000) == {}  # no iteration fits in the budget


def test_train_cli_runs_trpo_from_scratch_then_from_its_checkpoint(tmp_path, capsys) -> None:
    from agents.cli.train import main

    tiny = ["--set", "hidden=[16]", "--set", "critic_hidden=[16]", "--set", "n_envs=2", "--set", "n_steps=100",
            "--set", "total_steps=400", "--set", "save_every=2", "--set", "eval_episodes=2"]
    scratch = tmp_path / "scratch"
    assert main(["--env", "Pendulum-v1", "--agent", "trpo", "--run-dir", str(scratch), *tiny]) == 0
    assert (scratch / "final" / "policy.json").is_file() and (scratch / "eval.json").is_file()
    warm = tmp_path / "warm"
    assert main(["--env", "Pendulum-v1", "--agent", "trpo", "--init", str(scratch / "final"), "--run-dir", str(warm),
                 "--set", "critic_warmup_iterations=2", "--no-eval", *tiny]) == 0
    # --init: both iterations fit only the critic; the weights stay, the observation statistics grow
    before, after = GaussianMLPPolicy.load(scratch / "final"), GaussianMLPPolicy.load(warm / "final")
    after_params = dict(after.named_parameters())
    assert all(torch.equal(p, after_params[name]) for name, p in before.named_parameters())
    assert float(after.obs_count) == float(before.obs_count) + 400
    capsys.readouterr()
    assert main(["--env", "Wordle-v0", "--agent", "trpo", "--run-dir", str(tmp_path / "bad")]) == 2
    assert "needs Box" in capsys.readouterr().err


def test_resume_with_a_longer_budget_is_the_run_with_that_budget(tmp_path, capsys) -> None:
    from agents.cli.train import main

    tiny = ["--env", "Pendulum-v1", "--agent", "trpo", "--no-eval", "--set", "hidden=[16]", "--set", "critic_hidden=[16]",
            "--set", "n_envs=2", "--set", "n_steps=100", "--set", "save_every=2"]
    straight, extended = tmp_path / "straight", tmp_path / "extended"
    assert main([*tiny, "--run-dir", str(straight), "--set", "total_steps=1200"]) == 0
    assert main([*tiny, "--run-dir", str(extended), "--set", "total_steps=800"]) == 0
    shutil.rmtree(extended / "final")  # as if stopped after its step_2 checkpoint
    capsys.readouterr()
    for wrong, says in ((["--set", "hidden=[8]"], "only its budget"), (["--env", "CartPole-v1"], "--env cannot change"),
                        (["--set", "total_steps"], "key=value")):
        assert main(["--resume", str(extended), *wrong]) == 2
        assert says in capsys.readouterr().err
    assert main(["--resume", str(extended), "--no-eval", "--set", "trpo.total_steps=1200"]) == 0
    assert read_yaml(extended / "config.yaml")["trpo"]["total_steps"] == 1200
    assert state_equal(GaussianMLPPolicy.load(extended / "final"), GaussianMLPPolicy.load(straight / "final"))
    iterations = [e.info["iteration"] for e in read_episodes(extended / "episodes.jsonl")]
    assert iterations == [e.info["iteration"] for e in read_episodes(straight / "episodes.jsonl")]
    capsys.readouterr()
    assert main(["--resume", str(extended), "--set", "max_minutes=5"]) == 2  # finished: nothing to extend
    assert "--init" in capsys.readouterr().err


def test_auto_takes_the_envs_own_vector_env_and_trains_as_sync_does(tmp_path) -> None:
    """HumanoidMimic registers a vector env that computes all copies' rewards in one pass: TRPO's
    default (vector_env: auto) takes it, and two iterations train the same policy as over
    SyncVectorEnv (observations agree to ~1e-16, so the weights to float32 rounding)."""
    from agents.core.envs import make_env_fn
    from envs.mimic.vector import HumanoidMimicVectorEnv

    make = make_env_fn("HumanoidMimic-v1", {"motion": "run"})
    probe = make()
    policies = {}
    for mode in ("auto", "sync"):
        torch.manual_seed(0)
        policy = GaussianMLPPolicy.for_env(probe, hidden=[32], activation="tanh", init_log_std=-1.0)
        initial = {k: v.clone() for k, v in policy.state_dict().items()}
        agent = TRPOAgent(policy, TRPOConfig(n_envs=3, n_steps=40, vector_env=mode, **TINY), seed=5)
        envs = agent.make_vector_env(make, probe.spec)
        assert isinstance(envs.unwrapped, HumanoidMimicVectorEnv) == (mode == "auto")
        assert envs.unwrapped.envs[0].unwrapped.clip.name == "run"  # the env kwargs reach every copy
        envs.close()
        agent.learn(make, budget=2 * 3 * 40)
        policies[mode] = policy
    probe.close()
    for (name, a), b in zip(policies["auto"].state_dict().items(), policies["sync"].state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert any(not torch.equal(v, initial[k]) for k, v in policies["auto"].state_dict().items())  # it trained


def test_auto_falls_back_to_sync_for_a_vector_env_that_cannot_autoreset_in_the_same_step() -> None:
    agent = TRPOAgent(pendulum_policy(), TRPOConfig(n_envs=2, n_steps=4, **TINY))
    spec = gym.spec("CartPole-v1")  # Gymnasium's own vector entry point: next-step autoreset only
    assert spec.vector_entry_point is not None
    envs = agent.make_vector_env(lambda: gym.make("CartPole-v1"), spec)
    assert isinstance(envs, gym.vector.SyncVectorEnv) and envs.num_envs == 2
    envs.close()
