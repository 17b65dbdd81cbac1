"""HumanoidMimic env: kinematic replay reward, termination, seeding, rendering, hooks, CLIs."""

from __future__ import annotations

import copy
import json
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from agents.core.trajectory import Episode
from envs.mimic import mocap
from envs.mimic.env import REWARD_TERMS, HumanoidMimicEnv, ReferencePolicy
from envs.mimic.humanoid import BODY_NAMES

pytestmark = pytest.mark.skipif(
    mocap.clip_dir() is None,
    reason="pybullet_data (pip install pybullet) ships the humanoid clips; not installed",
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def walk() -> HumanoidMimicEnv:
    return HumanoidMimicEnv(motion="walk")


def _rollout(env, policy, steps, seed=0, phase=None):
    obs, _ = env.reset(seed=seed, options=None if phase is None else {"phase": phase})
    out = [obs]
    rewards, info, terminated, truncated = [], {}, False, False
    for _ in range(steps):
        actions, _ = policy.act([obs])
        obs, reward, terminated, truncated, info = env.step(actions[0])
        out.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(out), np.array(rewards), terminated, truncated, info


@pytest.mark.parametrize("motion", mocap.available_clips())
def test_kinematic_replay_scores_every_term_one(motion):
    env = HumanoidMimicEnv(motion=motion)
    rng = np.random.default_rng(0)
    times = [*rng.uniform(0.0, env.clip.duration, 4), env.clip.times[3], 1.7 * env.clip.duration]
    for t in times:
        env.set_state_to_reference(t)
        reward, terms, mpjpe = env._reward()
        assert set(terms) == set(REWARD_TERMS)
        for name, value in terms.items():
            assert abs(value - 1.0) < 1e-6, (motion, t, name, value)
        assert reward == pytest.approx(1.0, abs=1e-6) and mpjpe < 1e-6


def test_reward_terms_drop_when_the_pose_is_off(walk):
    walk.set_state_to_reference(0.4)
    walk.data.qpos[walk._qadr[6]] += 0.5  # flex the right hip away from the reference
    mujoco.mj_forward(walk.model, walk.data)
    mujoco.mj_subtreeVel(walk.model, walk.data)
    reward, terms, mpjpe = walk._reward()
    assert terms["pose"] < 0.99 and terms["end_effector"] < 0.99 and reward < 1.0
    assert terms["velocity"] > 0.99 and mpjpe > 10.0  # same joint rates, slightly different axes


def test_spaces_observation_and_info(walk):
    obs, info = walk.reset(seed=3, options={"phase": 0.25})
    assert walk.action_space.shape == (28,) and walk.observation_space.shape == (224,)
    assert obs.dtype == np.float32 and walk.observation_space.contains(obs)
    assert obs[0] == pytest.approx(0.25, abs=1e-6)
    assert obs[1] == pytest.approx(walk.clip.qpos_at(0.25 * walk.clip.duration)[2], abs=1e-5)
    assert walk.data.qvel.shape == (34,) and walk.model.nbody - 1 == 15
    assert walk.model.body_subtreemass[1] == pytest.approx(45.0)
    obs, reward, _, _, info = walk.step(np.zeros(28, dtype=np.float32))
    assert set(info["reward_terms"]) == set(REWARD_TERMS) and 0.0 <= reward <= 1.0
    assert reward == pytest.approx(sum(REWARD_TERMS[k][0] * v for k, v in info["reward_terms"].items()))
    assert info["time_alive"] == pytest.approx(1 / 30)
    assert info["episode_mpjpe_mm"] == pytest.approx(info["mpjpe_mm"])
    assert obs[0] == pytest.approx((0.25 + (1 / 30) / walk.clip.duration) % 1.0, abs=1e-5)


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda env: pickle.loads(pickle.dumps(env))],
                         ids=["deepcopy", "pickle"])
def test_a_copied_env_steps_on_its_own_simulation(duplicate):
    # the env keeps views of its MjData arrays: a copy must read its own data, not stale copies
    env = HumanoidMimicEnv(motion="walk")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step(rng.uniform(-0.2, 0.2, 28))
    twin = duplicate(env)
    for _ in range(3):
        action = rng.uniform(-0.2, 0.2, 28)
        ours, theirs = env.step(action), twin.step(action)
        np.testing.assert_array_equal(ours[0], theirs[0])
        assert ours[1] == theirs[1]
    twin.step(rng.uniform(-1, 1, 28))  # moving the copy leaves the original where it was
    assert not np.array_equal(twin.data.qpos, env.data.qpos)
    np.testing.assert_array_equal(env._state.xpos[0], env.data.xpos)


def test_actions_are_clipped_and_nan_is_rejected(walk):
    walk.reset(seed=0)
    walk.step(np.full(28, 5.0))
    np.testing.assert_allclose(walk.data.ctrl, walk.model.actuator_ctrlrange[:, 1])
    action = np.zeros(28)
    action[4] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity at indices \[4\]"):
        walk.step(action)
    with pytest.raises(ValueError, match="shape"):
        walk.step(np.zeros(5))


@pytest.mark.parametrize(("dtype", "size"), [(np.float32, 1.7e38), (np.float64, 1e300)])
def test_huge_real_actions_are_clipped_without_warnings(walk, dtype, size):
    walk.reset(seed=0)
    action = np.full(28, size, dtype=dtype)
    action[::2] *= -1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from the finiteness check
        walk.step(action)
    high, low = walk.model.actuator_ctrlrange[:, 1], walk.model.actuator_ctrlrange[:, 0]
    np.testing.assert_allclose(walk.data.ctrl, np.where(np.arange(28) % 2, high, low))


@pytest.mark.parametrize(("action", "fragment"), [
    (np.zeros((2, 14)), r"shape \(28,\).*got \(2, 14\)"),
    (np.zeros((28, 1)), r"shape \(28,\).*got \(28, 1\)"),
    (np.zeros((1, 28)), "shape"),
    (np.zeros(28, dtype=bool), "real numbers.*bool"),
    (np.zeros(28, dtype=complex), "real numbers.*complex"),
    (["0.0"] * 28, "real numbers.*<U3"),
    (np.array([0.0] * 27 + [None]), "real numbers.*object"),
])
def test_actions_of_another_shape_or_kind_are_rejected(walk, action, fragment):
    walk.reset(seed=0)
    with pytest.raises(ValueError, match=fragment):
        walk.step(action)
    assert walk._steps == 0  # nothing was simulated


def test_lists_and_integer_arrays_act_like_the_float_array(walk):
    targets = []
    for action in (np.ones(28, dtype=np.float32), [1.0] * 28, np.ones(28, dtype=np.int64), np.ones(28, np.uint8)):
        walk.reset(seed=0)
        walk.step(action)
        targets.append(walk.data.ctrl.copy())
    for other in targets[1:]:
        np.testing.assert_array_equal(other, targets[0])


def test_step_before_reset_and_after_the_episode_ended_raise():
    env = HumanoidMimicEnv(motion="walk")
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step"):
        env.step(np.zeros(28))
    env.reset(seed=0, options={"phase": 0.0})
    env.data.qpos[:7] = [0.0, 0.0, 0.2, np.cos(np.pi / 4), 0.0, -np.sin(np.pi / 4), 0.0]  # on its back
    assert env.step(np.zeros(28))[2]
    with pytest.raises(RuntimeError, match=r"ended; call reset\(\)"):
        env.step(np.zeros(28))
    env.reset(seed=1)
    assert not env.step(np.zeros(28))[2]  # a new episode steps again
    kick = HumanoidMimicEnv(motion="kick")  # non-looping: the episode ends with the clip
    kick.reset(seed=0, options={"phase": 1.0})
    assert kick.step(np.zeros(28))[2]
    with pytest.raises(RuntimeError, match="reset"):
        kick.step(np.zeros(28))


def test_vector_env_autoreset_never_steps_an_ended_episode():
    # SAME_STEP (as agents.algos.trpo uses) and NEXT_STEP; episodes end by falls, by the time limit and
    # (kick, non-looping) at the clip's end
    fns = [lambda: gym.make("envs:HumanoidMimic-v1", max_episode_steps=30),
           lambda: gym.make("envs:HumanoidMimic-Kick-v1", max_episode_steps=30)]
    for mode in (gym.vector.AutoresetMode.SAME_STEP, gym.vector.AutoresetMode.NEXT_STEP):
        envs_ = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
        envs_.reset(seed=0)
        falls = ended = 0
        for _ in range(60):
            _, _, terminated, truncated, _ = envs_.step(np.ones((2, 28), dtype=np.float32))
            falls += int(terminated.sum())
            ended += int(np.sum(terminated | truncated))
        assert falls >= 1 and ended >= 3
        envs_.close()


def test_seeding_reproduces_episodes_and_phase_differs_across_seeds():
    env = HumanoidMimicEnv(motion="walk")
    policy = ReferencePolicy(env)
    a = _rollout(env, policy, 10, seed=7)
    b = _rollout(env, policy, 10, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    phases = {float(env.reset(seed=s)[0][0]) for s in range(5)}
    assert len(phases) == 5


def test_falling_terminates_and_feet_contact_does_not(walk):
    walk.reset(seed=0, options={"phase": 0.0})
    _, _, terminated, _, _ = walk.step(walk.targets_to_action(walk.reference_qpos(walk.dt)[7:]))
    assert not terminated  # standing on the feet
    # lay the character on its back, a little above the ground: the torso touches -> fall
    walk.reset(seed=0, options={"phase": 0.0})
    walk.data.qpos[:7] = [0.0, 0.0, 0.2, np.cos(np.pi / 4), 0.0, -np.sin(np.pi / 4), 0.0]
    walk.data.qvel[:] = 0.0
    _, _, terminated, truncated, _ = walk.step(np.zeros(28))
    assert terminated and not truncated
    lenient = HumanoidMimicEnv(motion="walk", early_termination=False)
    lenient.reset(seed=0)
    lenient.data.qpos[:7] = [0.0, 0.0, 0.2, np.cos(np.pi / 4), 0.0, -np.sin(np.pi / 4), 0.0]
    assert not lenient.step(np.zeros(28))[2]


def test_auto_fall_bodies_allow_the_contacts_the_clip_itself_makes():
    cartwheel = HumanoidMimicEnv(motion="cartwheel", fall_bodies="auto").fall_contact_bodies
    assert not {"left_wrist", "right_wrist", "left_ankle", "right_ankle"} & set(cartwheel)
    walk = HumanoidMimicEnv(motion="walk", fall_bodies="auto").fall_contact_bodies
    assert set(walk) == set(BODY_NAMES) - {"left_ankle", "right_ankle"}


@pytest.mark.parametrize("clip_end, ends_as", [("terminate", 2), ("truncate", 3)])
def test_non_looping_clip_ends_the_episode_at_its_end(clip_end, ends_as):
    # DeepMimic counts the end of a non-looping motion as a failure (terminal); v0 truncated there
    env = HumanoidMimicEnv(motion="kick", clip_end=clip_end)
    env.reset(seed=0, options={"phase": 0.98})
    steps, result = 0, None
    while steps < 10:
        result = env.step(env.targets_to_action(env.reference_qpos(env._t + env.dt)[7:]))
        steps += 1
        if result[2] or result[3]:
            break
    assert result is not None and result[ends_as] and not result[5 - ends_as] and steps <= 2
    assert result[1] > 0.0  # the last step of the clip is no fall: it keeps its reward
    assert result[4]["clip_ended"] and "fallen" not in result[4]
    played = Episode(env_id="HumanoidMimic-Kick-v1", seed=0, observations=(0,) * steps, actions=(0,) * steps,
                     rewards=(result[1],) * steps, terminated=bool(result[2]), truncated=bool(result[3]),
                     info=result[4])
    assert HumanoidMimicEnv.summarize_episodes([played])["fall_rate"] == 0.0  # an end of the clip is no fall


def test_registered_time_limit_truncates_at_20_seconds():
    ids = [k for k in gym.registry if k.startswith("HumanoidMimic-")]
    assert {"HumanoidMimic-Run-v0", "HumanoidMimic-Run-v1"} <= set(ids) and len(ids) == 32
    assert gym.spec("HumanoidMimic-v1").max_episode_steps == 600
    env = gym.make("envs:HumanoidMimic-v1", early_termination=False)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(np.zeros(28, dtype=np.float32))
        steps += 1
        assert not terminated
    assert steps == 600 and info["time_alive"] == pytest.approx(20.0)
    env.close()


def test_check_env_passes():
    from gymnasium.utils.env_checker import check_env

    env = gym.make("envs:HumanoidMimic-Run-v1")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_reference_policy_decodes_the_phase_for_any_env():
    probe = HumanoidMimicEnv(motion="walk")
    policy = probe.scripted_policies["reference"](probe, seed=0)
    envs_ = [HumanoidMimicEnv(motion="walk") for _ in range(2)]
    obs = [e.reset(seed=s)[0] for s, e in enumerate(envs_)]
    actions, logp = policy.act(obs)
    assert len(actions) == 2 and logp.shape == (2,)
    for env, action in zip(envs_, actions, strict=True):
        expected = env.targets_to_action(env.reference_qpos(env._t)[7:])
        np.testing.assert_allclose(action, expected, atol=1e-4)


def test_open_loop_reference_stays_up_about_a_second_then_falls(walk):
    alive = [_rollout(walk, ReferencePolicy(walk), 300, seed=s)[4]["time_alive"] for s in range(3)]
    assert all(0.4 < a < 3.0 for a in alive), alive


def test_summarize_episodes_uses_final_step_info():
    def episode(n, alive, mpjpe, terminated):
        return Episode(env_id="HumanoidMimic-v1", seed=0, observations=(0,) * n, actions=(0,) * n,
                       rewards=(0.5,) * n, terminated=terminated, truncated=not terminated,
                       info={"time_alive": alive, "episode_mpjpe_mm": mpjpe, "mpjpe_mm": 999.0})

    episodes = [episode(30, 1.0, 100.0, True), episode(10, 0.33, 300.0, False)]
    summary = HumanoidMimicEnv.summarize_episodes(episodes)
    assert summary["mean_time_alive"] == pytest.approx(0.665)
    assert summary["mean_reward_per_step"] == pytest.approx(0.5)
    assert summary["mpjpe_mm"] == pytest.approx(200.0)
    assert summary["fall_rate"] == pytest.approx(0.5)

    # A terminal end of the clip is no fall, unless the character fell on that very step.
    def ended(**info):
        return Episode(env_id="HumanoidMimic-Kick-v1", seed=0, observations=(0,), actions=(0,), rewards=(0.0,),
                       terminated=True, truncated=False, info={"time_alive": 1.0, "clip_ended": True, **info})

    assert HumanoidMimicEnv.summarize_episodes([ended(), ended(fallen=True)])["fall_rate"] == pytest.approx(0.5)


def _run_python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Rendering runs in a fresh interpreter: MuJoCo picks its GL backend when first imported, so
    ``envs.mimic`` must come first (it chooses a headless ``MUJOCO_GL``)."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


RENDER_ONE_FRAME = """
import numpy as np
from envs.mimic.env import HumanoidMimicEnv
env = HumanoidMimicEnv(motion="walk", render_mode="rgb_array", width=96, height=64)
env.reset(seed=0, options={"phase": 0.1})
for _ in range(6):
    env.step(np.zeros(28))  # drift away from the reference so the ghost shows
ghost = env.render()
plain = env.render_frame(ghost=False)
print(ghost.shape, ghost.dtype, float(ghost.std()), int(np.abs(ghost.astype(int) - plain.astype(int)).sum()))
"""


def test_render_one_frame_with_and_without_ghost():
    result = _run_python("-c", RENDER_ONE_FRAME)
    if result.returncode != 0 and "gl" in result.stderr.lower() and "Error" in result.stderr:
        pytest.skip(f"no headless OpenGL here (set MUJOCO_GL=osmesa after installing libosmesa6): "
                    f"{result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    std, ghost_diff = result.stdout.split()[-2:]
    assert result.stdout.startswith("(64, 96, 3) uint8")
    assert float(std) > 5  # not a blank image
    assert int(ghost_diff) > 0  # the ghost adds pixels


def test_render_demo_writes_video_and_gif(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    for name, extra in (("walk.mp4", ["--kinematic"]), ("ref.gif", ["--policy", "reference", "--ghost"])):
        out = tmp_path / name
        result = _run_python("-m", "demos.render_mocap", *extra, "--motion", "walk", "--seconds", "0.2",
                             "--width", "64", "--height", "48", "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert out.stat().st_size > 0 and "render walk" in result.stderr  # the progress bar
    from demos import render_mocap

    assert render_mocap.main(["--out", str(tmp_path / "x.avi")]) == 2
    assert render_mocap.main(["--motion", "moonwalk", "--out", str(tmp_path / "x.mp4")]) == 2


def test_sb3_check_env_passes_without_warnings():
    from stable_baselines3.common.env_checker import check_env

    env = gym.make("envs:HumanoidMimic-v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)
    env.close()


def test_sb3_contrib_trpo_learns_a_few_steps():
    from sb3_contrib import TRPO

    env = gym.make("envs:HumanoidMimic-v1")
    model = TRPO("MlpPolicy", env, n_steps=32, batch_size=32, n_critic_updates=1, cg_max_steps=3, seed=0,
                 device="cpu", policy_kwargs={"net_arch": [16]})
    model.learn(total_timesteps=64)  # two rollouts: the second starts from SB3's own resets
    assert env.action_space.contains(model.predict(env.reset(seed=0)[0], deterministic=True)[0])
    env.close()


RECORD_VIDEO = """
import sys
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordVideo
import envs
env = gym.make("envs:HumanoidMimic-v1", render_mode="rgb_array", width=64, height=48, ghost=False)
env = RecordVideo(env, sys.argv[1], episode_trigger=lambda episode: True, name_prefix="mimic")
env.reset(seed=0)
for _ in range(9):
    env.step(np.zeros(28, dtype=np.float32))
env.close()
"""


def test_record_video_writes_an_mp4(tmp_path):
    import imageio.v3 as imageio  # (moviepy, which RecordVideo needs, is a dependency too)

    result = _run_python("-c", RECORD_VIDEO, str(tmp_path))
    if result.returncode != 0 and re.search(r"OpenGL|EGL|OSMesa|gladLoadGL", result.stderr):
        pytest.skip(f"no headless OpenGL here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    (video,) = tmp_path.glob("*.mp4")
    frames = imageio.imread(video)
    assert frames.shape[1:] == (48, 64, 3) and len(frames) >= 5  # the reset frame and the steps
    assert frames.std() > 5  # not a blank picture


def test_sb3_ppo_runs():
    from stable_baselines3 import PPO

    env = gym.make("envs:HumanoidMimic-v1")
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=32)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(action)
    env.close()


def test_evaluate_cli_reports_time_alive_and_mpjpe():
    result = subprocess.run(
        [sys.executable, "-m", "agents.evaluate", "--env", "HumanoidMimic-v1", "--policy", "reference",
         "--episodes", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["episodes"] == 2 and summary["policy"] == "reference"
    mimic = summary["mimic"]
    assert 0.2 < mimic["mean_time_alive"] < 20.0
    assert 0.0 < mimic["mean_reward_per_step"] <= 1.0
    assert mimic["mpjpe_mm"] > 0.0


def test_a_simulation_blow_up_terminates_with_zero_reward(walk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo logs the warning to MUJOCO_LOG.TXT in the working directory
    walk.reset(seed=0)
    walk.step(np.zeros(28))
    walk.data.qvel[:] = 1e12  # MuJoCo detects the instability and resets itself
    obs, reward, terminated, _, info = walk.step(np.zeros(28))
    assert terminated and info["diverged"] and reward == 0.0
    assert np.isfinite(obs).all() and not any(info["reward_terms"].values())


def test_observation_velocities_match_mujoco_body_velocities(walk):
    walk.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, *_ = walk.step(rng.uniform(-1, 1, 28))
    m, d = walk.model, walk.data
    forward = d.xmat[walk._root].reshape(3, 3)[:, 0]
    yaw = np.arctan2(forward[1], forward[0])
    to_heading = np.array([[np.cos(yaw), np.sin(yaw), 0.0], [-np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    velocity = np.zeros(6)
    bodies = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name) for name in BODY_NAMES]  # the table's order
    for k, body in enumerate(bodies):
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, body, velocity, 0)
        np.testing.assert_allclose(obs[134 + 3 * k:137 + 3 * k], to_heading @ velocity[3:], atol=1e-4)
        np.testing.assert_allclose(obs[179 + 3 * k:182 + 3 * k], to_heading @ velocity[:3], atol=1e-4)
        rotation = to_heading @ d.xmat[body].reshape(3, 3)
        np.testing.assert_allclose(obs[44 + 6 * k:50 + 6 * k], np.r_[rotation[:, 0], rotation[:, 2]], atol=1e-6)
        if k:
            rel = to_heading @ (d.xpos[body] - d.xpos[walk._root])
            np.testing.assert_allclose(obs[2 + 3 * (k - 1):5 + 3 * (k - 1)], rel, atol=1e-5)


def test_a_step_reads_the_state_it_left_as_a_full_forward_pass_would(walk):
    """step() brings only positions, velocities and contacts up to date after mj_step (not the
    dynamics): the reward, observation and fall test must equal those after mj_forward."""
    walk.reset(seed=5, options={"phase": 0.3})
    rng = np.random.default_rng(1)
    for _ in range(8):
        obs, reward, terminated, _, info = walk.step(rng.uniform(-1, 1, 28))
        ncon = walk.data.ncon
        geoms = walk.data.contact.geom[:ncon].copy()
        mujoco.mj_forward(walk.model, walk.data)
        mujoco.mj_subtreeVel(walk.model, walk.data)
        assert walk.data.ncon == ncon and np.array_equal(walk.data.contact.geom[:ncon], geoms)
        np.testing.assert_array_equal(walk._obs(), obs)
        again, terms, mpjpe = walk._reward()
        assert again == reward or info.get("fallen")  # a fall's reward is 0 by the rule, not the terms
        assert terms == info["reward_terms"] or info.get("fallen")
        assert mpjpe == info["mpjpe_mm"]
        if terminated:
            break
