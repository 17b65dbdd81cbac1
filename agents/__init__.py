"""Post-training agents behind one interface, in four layers (imports only point down):

- :mod:`agents.cli`: the command lines (``python -m agents.train``, ``agents.evaluate``,
  ``agents.filtered``, ``agents.pipeline``, ``agents.plot`` are thin entry points to them);
- :mod:`agents.algos`: one file per algorithm (``sft``, ``bc``, ``grpo``, ``trpo``,
  ``filtered``), their configs, and the registry that names them;
- :mod:`agents.policies`: the trainable policies (a Hugging Face language model, a Gaussian MLP);
- :mod:`agents.core`: the seams and plumbing (the policy protocol, rollout, episode records, run
  folders, checkpoints, configs, envs, evaluation, task files and splits).

Seams: a :class:`~agents.core.policy.Policy` acts on batches of observations; an agent's
``learn(env, budget, demos=None, callback=None)`` trains one; a run folder owns the outputs.
Envs (the ``envs`` package) import nothing from here; what agents may ask of them is
:mod:`envs.protocol`.
"""
