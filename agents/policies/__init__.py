"""Trainable policies behind the :class:`~agents.core.policy.Policy` seam: the language-model
policy (:mod:`agents.policies.lm`) and the Gaussian MLP (:mod:`agents.policies.mlp`). Checkpoints
name their kind in ``policy.json``; :mod:`agents.core.loading` maps kinds to these classes."""
