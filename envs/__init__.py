"""Gymnasium environments of posttrain-gym. Importing this package registers every id.

Other code reaches them with ``gym.make("envs:Wordle-v0")``: Gymnasium imports the module
named before the colon, which runs the registrations below.
"""

from gymnasium.envs.registration import register, registry


def _register(env_id: str, entry_point: str, **kwargs) -> None:
    if env_id not in registry:  # re-importing (e.g. importlib.reload) must not warn
        register(id=env_id, entry_point=entry_point, **kwargs)


# Text envs have no natural step limit beyond their own rules (Wordle ends after max_guesses
# plus the invalid-action budget), so no TimeLimit wrapper is added.
_register("Wordle-v0", "envs.wordle.env:WordleEnv", disable_env_checker=True)

# HumanoidMimic: 30 Hz control, 20 s episodes. One id per DeepMimic clip shipped with pybullet.
_register("HumanoidMimic-v0", "envs.mimic.env:HumanoidMimicEnv", max_episode_steps=600,
          kwargs={"motion": "walk"})
for _clip in ("backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup",
              "jump", "kick", "punch", "roll", "run", "spin", "spinkick", "walk"):
    _id = "HumanoidMimic-" + "".join(part.capitalize() for part in _clip.split("_")) + "-v0"
    _register(_id, "envs.mimic.env:HumanoidMimicEnv", max_episode_steps=600, kwargs={"motion": _clip})
del _clip, _id
_register("GSM8K-v0", "envs.gsm8k.env:GSM8KEnv")
