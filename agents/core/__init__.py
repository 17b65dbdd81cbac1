"""Seams and plumbing every algorithm and command line shares: the policy protocol, rollout,
episode records, run folders and checkpoints, configs, envs, evaluation, task files and splits.
Core imports no algorithm, policy class or command line (policies load by kind, through
:data:`agents.core.loading.POLICY_KINDS`)."""
