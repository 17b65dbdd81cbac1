"""The MJCF humanoid: DeepMimic's humanoid3d proportions, masses and PD gains, Z-up.

15 bodies (45 kg): root (free), chest, neck, hips, knees, ankles, shoulders, elbows, wrists
(welded to the forearm). Every 3-DOF joint is three hinges (order from
:data:`envs.mimic.mocap.EULER_AXES`); knees and elbows are single hinges. Each hinge has a
MuJoCo ``position`` actuator (PD) with DeepMimic's gains and torque limits; ``implicitfast``
integrates the derivative (kv) term implicitly, which keeps stiff PD stable at a 300 Hz
physics step. Body parts collide with the ground only (as in DeepMimic, no self-collision).
"""

from __future__ import annotations

from dataclasses import dataclass

from envs.mimic.mocap import EULER_AXES, FRAME_JOINTS


@dataclass(frozen=True)
class JointSpec:
    kp: float
    kv: float
    torque: float
    weight: float  # DeepMimic's pose/velocity weight of the joint


# DeepMimic humanoid3d: PD gains (kp, kd), torque limits (N m), joint weights of the imitation reward.
JOINTS: dict[str, JointSpec] = {
    "chest": JointSpec(1000, 100, 200, 0.5),
    "neck": JointSpec(100, 10, 50, 0.3),
    "hip": JointSpec(500, 50, 200, 0.5),
    "knee": JointSpec(500, 50, 150, 0.3),
    "ankle": JointSpec(400, 40, 90, 0.2),
    "shoulder": JointSpec(400, 40, 100, 0.3),
    "elbow": JointSpec(300, 30, 60, 0.2),
}
ROOT_WEIGHT = 1.0

# Hinge target ranges (rad): outer Euler angles wrap at +-pi, the middle one lies in [-pi/2, pi/2].
KNEE_RANGE = (-3.14159, 0.5)
ELBOW_RANGE = (-0.5, 3.14159)

BODY_NAMES: tuple[str, ...] = (
    "root", "chest", "neck",
    "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow", "right_wrist",
    "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist",
)
FOOT_BODIES = ("right_ankle", "left_ankle")
END_EFFECTORS = ("right_ankle", "left_ankle", "right_wrist", "left_wrist")

PHYSICS_HZ = 300
CONTROL_HZ = 30


def joint_kind(name: str) -> str:
    return name.split("_", 1)[-1]


def hinge_names() -> list[str]:
    """Actuated hinge names in qpos order (matches :func:`envs.mimic.mocap.pose_to_qpos`)."""
    names = []
    for joint, size in FRAME_JOINTS:
        names.extend([f"{joint}_{axis}" for axis in EULER_AXES[joint]] if size == 4 else [joint])
    return names


def _joints_xml(joint: str, size: int, armature: float) -> str:
    if size == 1:
        return f'<joint name="{joint}" axis="0 -1 0" armature="{armature}"/>'
    axes = {"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}
    return "".join(
        f'<joint name="{joint}_{a}" axis="{axes[a]}" armature="{armature}"/>' for a in EULER_AXES[joint]
    )


def build_mjcf(armature: float = 0.01) -> str:
    """The humanoid MJCF as a string (a plane floor, a tracking camera, lights)."""

    def side(s: str, y: float) -> str:
        sy = y if s == "right" else -y
        return f"""
      <body name="{s}_hip" pos="0 {sy:.6f} 0">
        {_joints_xml(f"{s}_hip", 4, armature)}
        <geom name="{s}_thigh" type="capsule" fromto="0 0 -0.06 0 0 -0.36" size="0.055" mass="4.5"/>
        <body name="{s}_knee" pos="0 0 -0.421546">
          {_joints_xml(f"{s}_knee", 1, armature)}
          <geom name="{s}_shin" type="capsule" fromto="0 0 -0.045 0 0 -0.355" size="0.05" mass="3"/>
          <body name="{s}_ankle" pos="0 0 -0.40987">
            {_joints_xml(f"{s}_ankle", 4, armature)}
            <geom name="{s}_foot" type="box" pos="0.045 0 -0.0225" size="0.0885 0.045 0.0275" mass="1"
                  rgba="0.45 0.35 0.3 1"/>
          </body>
        </body>
      </body>"""

    def arm(s: str) -> str:
        sy = -0.18311 if s == "right" else 0.18311
        return f"""
        <body name="{s}_shoulder" pos="-0.02405 {sy} 0.2435">
          {_joints_xml(f"{s}_shoulder", 4, armature)}
          <geom name="{s}_upper_arm" type="capsule" fromto="0 0 -0.05 0 0 -0.23" size="0.045" mass="1.5"/>
          <body name="{s}_elbow" pos="0 0 -0.274788">
            {_joints_xml(f"{s}_elbow", 1, armature)}
            <geom name="{s}_forearm" type="capsule" fromto="0 0 -0.0525 0 0 -0.1875" size="0.04" mass="1"/>
            <body name="{s}_wrist" pos="0 0 -0.258947">
              <geom name="{s}_hand" type="sphere" size="0.04" mass="0.5"/>
            </body>
          </body>
        </body>"""

    actuators = []
    for name in hinge_names():
        joint = name if name.endswith(("knee", "elbow")) else name.rsplit("_", 1)[0]
        kind = joint_kind(joint)
        spec = JOINTS[kind]
        if kind == "knee":
            low, high = KNEE_RANGE
        elif kind == "elbow":
            low, high = ELBOW_RANGE
        elif EULER_AXES[joint].index(name[-1]) == 1:  # the middle Euler angle
            low, high = -1.5708, 1.5708
        else:
            low, high = -3.14159, 3.14159
        actuators.append(
            f'<position name="{name}" joint="{name}" kp="{spec.kp}" kv="{spec.kv}" ctrlrange="{low} {high}" '
            f'forcerange="{-spec.torque} {spec.torque}"/>'
        )

    return f"""<mujoco model="deepmimic_humanoid">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{1.0 / PHYSICS_HZ:.8f}" integrator="implicitfast"/>
  <visual>
    <quality shadowsize="0"/>
    <global offwidth="1280" offheight="720"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.82 0.84 0.86" rgb2="0.62 0.66 0.70"
             width="256" height="256"/>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.7 0.9" rgb2="0.95 0.97 1"
             width="64" height="64"/>
    <material name="grid" texture="grid" texrepeat="1 1" texuniform="true" reflectance="0"/>
  </asset>
  <default>
    <default class="body">
      <geom contype="1" conaffinity="0" condim="3" friction="0.9 0.02 0.01" rgba="0.8 0.6 0.45 1"/>
    </default>
  </default>
  <worldbody>
    <light name="sun" directional="true" pos="0 0 5" dir="-0.3 0.2 -1" castshadow="false"/>
    <geom name="floor" type="plane" size="0 0 0.05" material="grid" contype="0" conaffinity="1"/>
    <body name="root" pos="0 0 0.9" childclass="body">
      <freejoint name="root"/>
      <camera name="track" mode="trackcom" pos="0.2 -3.2 0.35" xyaxes="1 0 0 0 0.12 1"/>
      <geom name="pelvis" type="sphere" pos="0 0 0.07" size="0.09" mass="6"/>
      <body name="chest" pos="0 0 0.236151">
        {_joints_xml("chest", 4, armature)}
        <geom name="torso" type="sphere" pos="0 0 0.12" size="0.11" mass="14"/>
        <body name="neck" pos="0 0 0.223894">
          {_joints_xml("neck", 4, armature)}
          <geom name="head" type="sphere" pos="0 0 0.175" size="0.1025" mass="2"/>
        </body>{arm("right")}{arm("left")}
      </body>{side("right", -0.084887)}{side("left", -0.084887)}
    </body>
  </worldbody>
  <actuator>
    {chr(10).join("    " + a for a in actuators).strip()}
  </actuator>
</mujoco>
"""
