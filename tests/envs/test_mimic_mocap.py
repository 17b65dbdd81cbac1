"""Mocap parsing and conversion for HumanoidMimic (DeepMimic clip format -> MuJoCo humanoid)."""

from __future__ import annotations

import json
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.mimic import mocap
from envs.mimic.mocap import (
    EULER_AXES,
    FRAME_SIZE,
    Clip,
    EulerDecomposer,
    EulerRateMap,
    MotionError,
    SlerpPairs,
    available_clips,
    dm_quat_to_mj,
    dm_vec_to_mj,
    euler_to_quat,
    parse_motion,
    quat_angle,
    quat_conj,
    quat_mul,
    quat_slerp,
    quat_to_euler,
    quat_to_matrix,
    quat_to_rotvec,
)

pytestmark = pytest.mark.skipif(
    mocap.clip_dir() is None,
    reason="pybullet_data (pip install pybullet) ships the humanoid clips; not installed",
)

ORDERS = ["xyz", "xzy", "yxz", "yzx", "zxy", "zyx"]
angle = st.floats(-np.pi + 1e-3, np.pi - 1e-3)
middle_angle = st.floats(-np.pi / 2 + 1e-2, np.pi / 2 - 1e-2)
unit_quat = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda v: np.linalg.norm(v) > 0.1).map(
    lambda v: np.asarray(v) / np.linalg.norm(v)
)


def _rotation_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(quat_angle(quat_mul(quat_conj(a), b))))


@settings(max_examples=200, deadline=None)
@given(order=st.sampled_from(ORDERS), a=angle, b=middle_angle, c=angle)
def test_joint_angles_to_quaternion_and_back(order, a, b, c):
    angles = np.array([a, b, c])
    back = quat_to_euler(euler_to_quat(angles, order), order)
    np.testing.assert_allclose(back, angles, atol=1e-7)


@settings(max_examples=200, deadline=None)
@given(order=st.sampled_from(ORDERS), q=unit_quat)
def test_quaternion_to_joint_angles_and_back(order, q):
    angles = quat_to_euler(q, order)
    assert -np.pi / 2 <= angles[1] <= np.pi / 2
    assert _rotation_distance(euler_to_quat(angles, order), q) < 1e-6


def test_per_joint_axes_in_one_call_match_single_calls():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 8, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    orders = [EULER_AXES[n] for n in EULER_AXES]
    together = quat_to_euler(q, orders)
    for k, order in enumerate(orders):
        np.testing.assert_allclose(together[:, k], quat_to_euler(q[:, k], order), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(orders=st.lists(st.sampled_from(ORDERS), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_euler_rates_turn_the_joint_at_the_wanted_angular_velocity(orders, seed):
    # the closed form against the definition: stepping the hinges by rates * h turns the joint
    # by omega * h (child frame), to first order
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-np.pi, np.pi, (len(orders), 3))
    angles[:, 1] = rng.uniform(-1.3, 1.3, len(orders))  # away from the +-90 degree singularity
    omega = rng.normal(0.0, 3.0, (len(orders), 3))
    rates = EulerRateMap(orders).rates(angles, omega)
    h = 1e-6
    for k, order in enumerate(orders):
        turn = quat_mul(quat_conj(euler_to_quat(angles[k], order)), euler_to_quat(angles[k] + h * rates[k], order))
        np.testing.assert_allclose(quat_to_rotvec(turn) / h, omega[k], atol=1e-4 * (1 + np.abs(omega[k]).max()))


def test_euler_decomposer_matches_quat_to_euler():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(7, 8, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    orders = [EULER_AXES[n] for n in EULER_AXES]
    np.testing.assert_allclose(EulerDecomposer(orders)(q), quat_to_euler(q, orders), atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(a=unit_quat, b=unit_quat, t=st.floats(0.0, 1.0))
def test_slerp_takes_the_short_way_at_a_constant_rate(a, b, t):
    q = quat_slerp(a, b, t)
    np.testing.assert_allclose(np.linalg.norm(q), 1.0, atol=1e-12)
    whole = quat_angle(quat_mul(quat_conj(a), b))  # the short way: at most pi
    assert _rotation_distance(q, a) == pytest.approx(t * whole, abs=1e-6)
    assert _rotation_distance(q, b) == pytest.approx((1 - t) * whole, abs=1e-6)
    # the constants of a pair, computed once, give the same quaternion
    np.testing.assert_allclose(SlerpPairs.of(a[None], b[None]).take(np.array([0])).at(t)[0], q, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(q=unit_quat, v=st.lists(st.floats(-2, 2), min_size=3, max_size=3))
def test_y_up_to_z_up_conversion_commutes_with_rotation(q, v):
    v = np.asarray(v)
    rotated_then_converted = dm_vec_to_mj(quat_to_matrix(q) @ v)
    converted_then_rotated = quat_to_matrix(dm_quat_to_mj(q)) @ dm_vec_to_mj(v)
    np.testing.assert_allclose(rotated_then_converted, converted_then_rotated, atol=1e-9)
    assert dm_vec_to_mj(np.array([0.0, 1.0, 0.0])).tolist() == [0.0, 0.0, 1.0]  # Y-up becomes Z-up


def test_all_fifteen_clips_ship_and_load():
    clips = available_clips()
    assert len(clips) == 15 and "walk" in clips and "backflip" in clips
    walk = Clip("walk")
    assert walk.loops and walk.num_frames == 39
    assert walk.duration == pytest.approx(1.266616, abs=1e-6)
    assert walk.qpos.shape == (39, 35)
    assert 0.8 < walk.qpos[0, 2] < 0.9  # the pelvis height, now on the z axis
    assert not Clip("kick").loops


def test_mujoco_forward_kinematics_reproduces_mocap_rotations():
    """qpos from the clip, through MuJoCo's hinge chains, gives back the clip's local rotations."""
    import mujoco

    from envs.mimic.env import HumanoidMimicEnv

    env = HumanoidMimicEnv(motion="cartwheel")
    m, d, clip = env.model, env.data, env.clip
    for frame in range(0, clip.num_frames, 7):
        env._set_clip_state(d, clip.qpos[frame], np.zeros(m.nv))
        mujoco.mj_kinematics(m, d)
        for name, quats in clip.pose.joint_quats.items():
            body = m.body(name)
            local = quat_mul(quat_conj(d.xquat[body.parentid[0]]), d.xquat[body.id])
            assert _rotation_distance(local, quats[frame]) < 1e-9, (name, frame)
        np.testing.assert_allclose(d.xpos[m.body("root").id], clip.pose.root_pos[frame], atol=1e-12)


@pytest.mark.parametrize("motion", ["walk", "backflip", "getup_faceup"])
def test_finite_difference_velocity_integrates_to_next_frame(motion):
    """Velocities have MuJoCo's sign conventions: integrating qvel over a frame reaches the next frame."""
    import mujoco

    from envs.mimic.env import HumanoidMimicEnv

    env = HumanoidMimicEnv(motion=motion)
    m, d, clip = env.model, env.data, env.clip
    target = mujoco.MjData(m)
    for i in range(0, clip.num_frames - 1, 3):
        env._set_clip_state(d, clip.qpos[i], clip.interval_qvel[i])
        env._set_clip_state(target, clip.qpos[i + 1], np.zeros(m.nv))
        qpos = d.qpos.copy()
        mujoco.mj_integratePos(m, qpos, d.qvel, clip.times[i + 1] - clip.times[i])
        diff = np.zeros(m.nv)
        mujoco.mj_differentiatePos(m, diff, 1.0, qpos, target.qpos)
        assert np.abs(diff).max() < 1e-9, (motion, i)


def test_interpolation_between_frames():
    clip = Clip("walk")
    for i in (0, 10, 20):
        np.testing.assert_allclose(clip.qpos_at(clip.times[i]), clip.qpos[i], atol=1e-12)
        t_mid = 0.5 * (clip.times[i] + clip.times[i + 1])
        mid = clip.qpos_at(t_mid)
        np.testing.assert_allclose(mid[:3], 0.5 * (clip.qpos[i, :3] + clip.qpos[i + 1, :3]), atol=1e-12)
        # rotations are slerped: half-way in angle from both neighbours
        quats = clip.joint_quats(t_mid)
        for name, q in clip.pose.joint_quats.items():
            assert _rotation_distance(quats[name], q[i]) == pytest.approx(
                _rotation_distance(quats[name], q[i + 1]), abs=1e-9)


def test_looping_clip_advances_root_by_cycle_displacement():
    clip = Clip("run")
    displacement = clip.pose.root_pos[-1] - clip.pose.root_pos[0]
    assert np.linalg.norm(displacement[:2]) > 1.0  # a run cycle covers ground
    for t in (0.1, 0.37):
        now, later = clip.qpos_at(t), clip.qpos_at(t + 2 * clip.duration)
        np.testing.assert_allclose(later[:2], now[:2] + 2 * displacement[:2], atol=1e-9)
        np.testing.assert_allclose(later[2:], now[2:], atol=1e-9)
        assert clip.phase(t + 2 * clip.duration) == pytest.approx(clip.phase(t))


def test_non_looping_clip_holds_its_last_pose_at_rest():
    clip = Clip("kick")
    end = clip.qpos_at(clip.duration)
    np.testing.assert_allclose(clip.qpos_at(clip.duration + 3.0), end)
    assert not clip.qvel_at(clip.duration + 0.5).any()
    assert clip.phase(clip.duration + 1.0) == 1.0 and clip.ended(clip.duration)


# ----------------------------------------------------------------------------- bad files


def _good_frame() -> list[float]:
    frame = [0.0333, 0.0, 0.85, 0.0, 1.0, 0.0, 0.0, 0.0]
    for _, size in mocap.FRAME_JOINTS:
        frame += [1.0, 0.0, 0.0, 0.0] if size == 4 else [0.0]
    assert len(frame) == FRAME_SIZE
    return frame


def _motion(frames, loop="wrap") -> str:
    return json.dumps({"Loop": loop, "Frames": frames})


def test_a_valid_synthetic_file_parses_and_loads(tmp_path):
    path = tmp_path / "stand.txt"
    path.write_text(_motion([_good_frame(), _good_frame()], loop="none"))
    clip = Clip(path)
    assert clip.name == "stand" and not clip.loops and clip.num_frames == 2
    np.testing.assert_allclose(clip.qpos_at(0.01)[7:], 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda fs: fs[1].pop(), "frame 1 must be a list of 44 numbers, got 43"),
        (lambda fs: fs[2].__setitem__(5, "x"), "frame 2 holds a value that is not a number"),
        (lambda fs: fs[1].__setitem__(10, 0.0) or fs[1].__setitem__(8, 0.0), "frame 1: chest quaternion"),
        (lambda fs: fs[0].__setitem__(0, -1.0), "frame 0 has duration"),
        (lambda fs: fs.__setitem__(1, "oops"), "frame 1 must be a list"),
    ],
)
def test_malformed_frames_are_named(tmp_path, mutate, message):
    frames = [_good_frame() for _ in range(3)]
    mutate(frames)
    path = tmp_path / "bad.txt"
    path.write_text(_motion(frames))
    with pytest.raises(MotionError, match=message.replace("(", r"\(")):
        Clip(path)


def test_bad_loop_json_and_shape_errors():
    with pytest.raises(MotionError, match="'Loop' must be"):
        parse_motion(_motion([_good_frame()] * 2, loop="forever"))
    with pytest.raises(MotionError, match="not valid JSON"):
        parse_motion("{'Frames': }")
    with pytest.raises(MotionError, match="'Frames'"):
        parse_motion(json.dumps([1, 2, 3]))
    with pytest.raises(MotionError, match="at least 2 frames"):
        parse_motion(_motion([_good_frame()]))


def test_unknown_clip_lists_the_available_ones(tmp_path):
    with pytest.raises(MotionError, match=r"unknown motion 'moonwalk'; available clips: backflip, cartwheel"):
        Clip("moonwalk")
    with pytest.raises(MotionError, match="does not exist"):
        Clip(tmp_path / "missing.txt")


def test_missing_pybullet_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(mocap, "clip_dir", lambda: None)
    with pytest.raises(MotionError, match="pip install pybullet"):
        Clip("walk")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=string.printable, max_size=200))
def test_arbitrary_text_is_rejected_with_a_motion_error(text):
    with pytest.raises(MotionError):
        parse_motion(text)


@settings(max_examples=150, deadline=None)
@given(
    frame=st.integers(0, 2),
    column=st.integers(0, FRAME_SIZE - 1),
    value=st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.just(float("nan")),
                    st.just([1.0]), st.floats(-1e6, 1e6)),
)
def test_corrupting_one_value_fails_naming_its_frame_or_parses(frame, column, value):
    frames = [_good_frame() for _ in range(3)]
    frames[frame][column] = value
    text = json.dumps({"Loop": "wrap", "Frames": frames})
    try:
        _, parsed = parse_motion(text)
    except MotionError as err:
        assert f"frame {frame}" in str(err)
    else:  # a plausible number: accepted, and kept as given
        assert parsed[frame, column] == pytest.approx(value)
