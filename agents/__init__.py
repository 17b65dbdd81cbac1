"""Post-training agents (SFT, GRPO, TRPO, reward-filtered SFT) behind one interface.

Seams (see DESIGN.md): a :class:`~agents.policy.Policy` acts on batches of observations;
an agent's ``learn(env, budget, demos=None, callback=None)`` trains one; a run folder owns
the outputs.
"""
